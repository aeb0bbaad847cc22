//! The grid layout: curves x distinct values of the axis variable, axis
//! nodes once per value shared by every curve, a tile of values at a time
//! (with a fused power term's logs and reciprocals per tile).

use super::*;

/// Grid cells (one row of distinct axis values per curve) of `sweep`'s
/// targets and weights, or why the grid does not fit.
pub(super) fn grid_cells(sweep: &Sweep, axis_var: usize) -> Result<(Vec<f64>, Vec<f64>), String> {
    let nv = sweep.n_vars;
    // (1 << 64 would overflow: a law may have 64 variables.)
    let all_vars = if nv >= 64 { u64::MAX } else { (1u64 << nv) - 1 };
    let point_vars = !(sweep.curve_vars | 1 << axis_var) & all_vars;
    if point_vars != 0 {
        return Err("a variable other than the axis varies along a curve".into());
    }
    let (nc, na) = (sweep.curves.len(), sweep.axis_values.len());
    let mut y = vec![f64::NAN; nc * na];
    let mut w = vec![0.0; nc * na];
    for (c, r) in sweep.curves.iter().enumerate() {
        for i in r.clone() {
            let cell = c * na + sweep.axis_index[i] as usize;
            if !y[cell].is_nan() {
                return Err(format!("curve {c} has two points at one axis value"));
            }
            y[cell] = sweep.y[i];
            w[cell] = sweep.w[i];
        }
    }
    Ok((y, w))
}

/// The grid layout: each start's curve nodes over all curves, then per tile
/// of axis values and per start the tile's work (see [`grid_tile`]), last
/// each start's curve edges. The gradient is left in the start adjoints.
#[inline(always)]
pub(super) fn grid_batch<const FMA: bool>(
    cg: &CpuLaw,
    params: &[f64],
    group: usize,
    k: usize,
    ws: &mut Workspace,
    wt: Weights,
) {
    let np = cg.plan.n_params().max(1);
    let spans = cg.groups[group].clone();
    // The curves the group's spans cover: all on the grid, a few in the
    // point layout.
    let (c0, nc) = match spans.is_empty() {
        true => (0, 0),
        false => {
            let c0 = cg.spans[spans.start].curves.start;
            (c0, cg.spans[spans.end - 1].curves.end - c0)
        }
    };
    let Workspace {
        starts,
        vals,
        adj,
        seed,
        row_pred,
        eff,
        pv,
        ..
    } = ws;
    for (st, p) in starts[..k].iter_mut().zip(params.chunks(np)) {
        class_forward::<FMA>(
            cg,
            Class::Curve,
            c0,
            nc,
            p,
            &st.start,
            &mut st.cvals,
            &mut st.cadj,
        );
        // (Only a separable law keeps row sums.)
        let held = st.rsum.len().min(nc);
        st.rsum[..held].fill([0.0; 8]);
        st.c0 = c0;
    }
    // Stack arrays of the separable loop (see fused_rows).
    let mut fcol = [0.0; TILE];
    let mut gbuf = [0.0; ROWS * TILE];
    let mut tw = Tile {
        vals,
        adj,
        seed,
        row_pred,
        fcol: &mut fcol,
        gbuf: &mut gbuf,
        pv,
    };
    for (si, span) in cg.spans[spans.clone()].iter().enumerate() {
        let si = spans.start + si;
        for (j, (st, p)) in starts[..k].iter_mut().zip(params.chunks(np)).enumerate() {
            let w = wt.get(j).map(|(wk, r)| eff.get(cg, si, wk, r));
            grid_tile::<FMA>(cg, span, w, p, st, &mut tw);
        }
    }
    for st in &mut starts[..k] {
        if let Some(sep) = cg.separable {
            // The curves' row sums into the scalar term's adjoint.
            let sn = sep.scalar_node as usize;
            for (c, v) in st.rsum[..nc].iter().enumerate() {
                // (c counts from the group's first curve, as the arrays do.)
                let g = sep.scalar_sign * lanes8(v);
                match cg.plan.class[sn] {
                    Class::Start => st.start_adj[sn] += g,
                    Class::Data => {}
                    _ => st.cadj[cg.aslot[sn]][c] += g,
                }
            }
        }
        class_backward(
            cg,
            Class::Curve,
            c0,
            nc,
            &st.start,
            IntoStart::Sum(&mut st.start_adj),
            &st.cvals,
            &cg.cslot,
            &mut st.cadj,
        );
    }
}

/// The scratch of one start's tile.
pub(super) struct Tile<'a> {
    pub(super) vals: &'a mut [Vec<f64>],
    pub(super) adj: &'a mut [Vec<f64>],
    pub(super) seed: &'a mut [f64],
    pub(super) row_pred: &'a mut [f64],
    pub(super) fcol: &'a mut [f64; TILE],
    pub(super) gbuf: &'a mut [f64; ROWS * TILE],
    /// A fused power term's v, ln x and 1/x over a grid tile.
    pub(super) pv: &'a mut [Vec<f64>; 3],
}

/// One start on a span (a tile of the grid, or of a curve's points): the
/// axis nodes, the cells of each of its curves (fused when the law is
/// separable, else a pass per point node over each row), and the axis
/// edges back.
#[inline(always)]
pub(super) fn grid_tile<const FMA: bool>(
    cg: &CpuLaw,
    span: &Span,
    eff: Option<&[f64]>,
    params: &[f64],
    st: &mut StartState,
    tw: &mut Tile,
) {
    let plan = &cg.plan;
    let class = &plan.class;
    let (t0, m) = (span.a0, span.m);
    let obj = cg.objective;
    // Curve c's weights on the span: the sweep's, or a weighting's.
    let wrow = |c: usize| match eff {
        Some(e) => {
            let r = c - span.curves.start;
            &e[r * m..(r + 1) * m]
        }
        None => &cg.w[span.row(c)],
    };
    let value = plan.value();
    if let (Some(pt), Some(sep)) = (cg.power, cg.separable) {
        let mask = eff.is_some() || span.zero;
        power_tile::<FMA>(cg, span, (&wrow, mask), pt, sep, st, tw);
        return;
    }
    let StartState {
        start,
        start_adj,
        cvals,
        cadj,
        rsum,
        c0,
        f: fsum,
    } = st;
    let c0 = *c0;
    let Tile {
        vals,
        adj,
        seed,
        row_pred,
        fcol,
        gbuf,
        ..
    } = tw;
    class_forward::<FMA>(cg, Class::Axis, t0, m, params, start, vals, adj);
    let row = |c: usize| span.row(c);
    if let Some(sep) = cg.separable {
        // Fused cell loop: prediction, loss and both adjoint sums. A data
        // term has no adjoint: its column sums go to scratch.
        let an = sep.axis_node as usize;
        let u = match class[an] {
            Class::Data => None,
            _ => Some(cg.aslot[an]),
        };
        let mut taken = match u {
            Some(u) => std::mem::take(&mut adj[u]),
            None => Vec::new(),
        };
        let col: &mut [f64] = match u {
            Some(_) => &mut taken[..m],
            None => &mut seed[..m],
        };
        let uv: &[f64] = match u {
            Some(_) => &vals[cg.slot[an]][..m],
            None => &cg.data_of(sep.axis_node)[t0..t0 + m],
        };
        *fsum += separable_rows::<FMA>(
            cg,
            span,
            &wrow,
            (uv, sep.axis_sign, sep.axis_sign),
            start,
            (cvals, c0),
            col,
            fcol,
            gbuf,
            rsum,
        );
        if let Some(u) = u {
            adj[u] = taken;
        }
    } else {
        // The general path: a pass per point node over each row.
        // (c indexes the curve arrays of several nodes, not one slice.)
        for c in span.curves.clone() {
            // This curve's value of a curve node.
            let cv = |o: NodeId| cvals[cg.cslot[o as usize]][c - c0];
            let src = |o: NodeId| match class[o as usize] {
                Class::Start => Src::S(start[o as usize]),
                Class::Curve => Src::S(cv(o)),
                Class::Data => cg.row_data(o, c, span),
                _ => Src::Store(cg.slot[o as usize]),
            };
            // Point nodes of this curve's row of the tile.
            for &id in &plan.forward[Class::Point as usize] {
                run_node::<FMA>(cg, id, &cg.slot, vals, m, params, &src, |_| {});
            }
            // The loss and its derivative per cell; empty cells and
            // weight-0 points contribute exactly nothing.
            let (y, w) = (&cg.y[row(c)], wrow(c));
            let pred: &[f64] = match cg.resolve(src(value), vals, m) {
                // A law without the axis: one prediction for the whole row.
                V::S(v) => {
                    row_pred[..m].fill(v);
                    &row_pred[..m]
                }
                V::A(a) => a,
            };
            *fsum += loss_cells::<FMA>(obj, pred, y, w, &mut seed[..m]);
            // Backward out of the point nodes.
            for &id in &plan.forward[Class::Point as usize] {
                if cg.zero[id as usize] {
                    adj[cg.aslot[id as usize]][..m].fill(0.0);
                }
            }
            let hoisted = &mut Hoisted {
                start: start_adj,
                curve: cadj,
                c: c - c0,
            };
            // (A prediction without parameters has no gradient.)
            if class[value as usize] != Class::Data {
                accumulate(cg, value, &seed[..m], V::S(1.0), adj, hoisted);
            }
            for &(e, step) in &cg.steps[Class::Point as usize] {
                if step == Step::Alias {
                    continue;
                }
                let af = cg.aslot[e.from as usize];
                let from = std::mem::take(&mut adj[af]);
                let p = cg.resolve(src(e.partial), vals, m);
                if step == Step::Store {
                    assign(&mut adj[cg.aslot[e.to as usize]][..m], &from[..m], p);
                } else {
                    accumulate(cg, e.to, &from[..m], p, adj, hoisted);
                }
                adj[af] = from;
            }
        }
    }
    // Backward out of the axis nodes, once per tile.
    class_backward(
        cg,
        Class::Axis,
        t0,
        m,
        start,
        IntoStart::Sum(start_adj),
        vals,
        &cg.slot,
        adj,
    );
}

/// A span of a separable law whose axis term is fused (see `power`): in
/// the point layout one curve's span in one loop, on the grid a pass for
/// the term, the rows, and a pass for its three sums. The gradient goes
/// straight to the start adjoints.
#[inline(always)]
pub(super) fn power_tile<'a, const FMA: bool>(
    cg: &'a CpuLaw,
    span: &Span,
    (wrow, mask): (&dyn Fn(usize) -> &'a [f64], bool),
    pt: PowerTerm,
    sep: Separable,
    st: &mut StartState,
    tw: &mut Tile,
) {
    let (t0, m, obj) = (span.a0, span.m, cg.objective);
    let StartState {
        start,
        start_adj,
        cvals,
        rsum,
        c0,
        f: fsum,
        ..
    } = st;
    let c0 = *c0;
    let s = |id: NodeId| start[id as usize];
    let sa = sep.axis_sign * pt.s1.map_or(1.0, s);
    let s2 = s(pt.s2);
    let (col, s3) = match pt.base {
        Base::Shifted { d, s3 } => (&cg.data_of(d)[t0..t0 + m], s(s3)),
        Base::Log(l) => (&cg.data_of(l)[t0..t0 + m], 0.0),
    };
    let shift = matches!(pt.base, Base::Shifted { .. });
    let [sgv, sgvl, sgvi] = if cg.layout == CpuLayout::Points {
        let c = span.curves.start;
        let sn = sep.scalar_node as usize;
        let scalar = match cg.plan.class[sn] {
            Class::Start => start[sn],
            Class::Data => cg.data_of(sn as NodeId)[c],
            _ => cvals[cg.cslot[sn]][c - c0],
        };
        let sc = sep.scalar_sign * scalar;
        let (y, w) = (&cg.y[span.row(c)], wrow(c));
        let sums = match (shift, mask) {
            (true, true) => power::span_sums::<FMA, true, true>(obj, col, s3, s2, sa, sc, y, w),
            (true, false) => power::span_sums::<FMA, true, false>(obj, col, s3, s2, sa, sc, y, w),
            (false, true) => power::span_sums::<FMA, false, true>(obj, col, s3, s2, sa, sc, y, w),
            (false, false) => power::span_sums::<FMA, false, false>(obj, col, s3, s2, sa, sc, y, w),
        };
        let [f2, sg, sgv, sgvl, sgvi] = sums;
        *fsum += 0.5 * f2;
        rsum[c - c0][0] += sg;
        [sgv, sgvl, sgvi]
    } else {
        let Tile {
            seed,
            fcol,
            gbuf,
            pv: [v, lx, inv],
            ..
        } = tw;
        if shift {
            power::tile_terms::<FMA, true>(col, s3, s2, v, lx, inv);
        } else {
            power::tile_terms::<FMA, false>(col, s3, s2, v, lx, inv);
        }
        // The column sums of the seed adjoints, unscaled.
        let g = &mut seed[..m];
        g.fill(0.0);
        *fsum += separable_rows::<FMA>(
            cg,
            span,
            wrow,
            (&v[..m], sa, 1.0),
            start,
            (cvals, c0),
            g,
            fcol,
            gbuf,
            rsum,
        );
        // g v (0 where g is 0), then the sums of it, of it times ln x and
        // of it times 1/x, with dot's zero rule: passes that vectorise.
        for (g, &v) in g.iter_mut().zip(&v[..m]) {
            let gv = *g * v;
            *g = if *g != 0.0 { gv } else { 0.0 };
        }
        [lane_sum(g), dot(g, V::A(&lx[..m])), dot(g, V::A(&inv[..m]))]
    };
    if let Some(s1) = pt.s1 {
        start_adj[s1 as usize] += sep.axis_sign * sgv;
    }
    start_adj[pt.s2 as usize] += sa * sgvl;
    if let Base::Shifted { s3, .. } = pt.base {
        start_adj[s3 as usize] += sa * s2 * sgvi;
    }
}

/// Every curve's row of a span for a separable law (see [`fused_rows`]):
/// prediction `sa * u[j] + scalar term`, `col[j] += ca * sum of the seed
/// adjoints` over the rows, each row's seed sum into `rsum`. Curve arrays
/// (`cvals`, `rsum`) start at curve `c0`. Returns the span's objective.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) fn separable_rows<'a, const FMA: bool>(
    cg: &'a CpuLaw,
    span: &Span,
    wrow: &dyn Fn(usize) -> &'a [f64],
    (uv, sa, ca): (&[f64], f64, f64),
    start: &[f64],
    (cvals, c0): (&[Vec<f64>], usize),
    col: &mut [f64],
    fcol: &mut [f64; TILE],
    gbuf: &mut [f64; ROWS * TILE],
    rsum: &mut [[f64; 8]],
) -> f64 {
    let Some(sep) = cg.separable else {
        unreachable!("a separable law")
    };
    let (class, obj, m) = (&cg.plan.class, cg.objective, span.m);
    fcol[..m].fill(0.0);
    let sn = sep.scalar_node as usize;
    let scalar = |c: usize| match class[sn] {
        Class::Start => start[sn],
        Class::Data => cg.data_of(sn as NodeId)[c],
        _ => cvals[cg.cslot[sn]][c - c0],
    };
    let row = |c: usize| span.row(c);
    // Rows in groups: each axis value and its adjoint sum are loaded and
    // stored once for ROWS curves.
    let (mut c, nc) = (span.curves.start, span.curves.end);
    while c + ROWS <= nc {
        // Loops, not array::from_fn, whose closures were left as calls.
        let (mut sc, mut ys, mut ws) = ([0.0; ROWS], [&[][..]; ROWS], [&[][..]; ROWS]);
        for r in 0..ROWS {
            sc[r] = sep.scalar_sign * scalar(c + r);
            ys[r] = &cg.y[row(c + r)];
            ws[r] = wrow(c + r);
        }
        fused_rows::<FMA, ROWS>(
            obj,
            uv,
            (sa, ca),
            sc,
            ys,
            ws,
            col,
            fcol,
            gbuf,
            &mut rsum[c - c0..c - c0 + ROWS],
        );
        c += ROWS;
    }
    for c in c..nc {
        fused_rows::<FMA, 1>(
            obj,
            uv,
            (sa, ca),
            [sep.scalar_sign * scalar(c)],
            [&cg.y[row(c)]],
            [wrow(c)],
            col,
            fcol,
            gbuf,
            &mut rsum[c - c0..c - c0 + 1],
        );
    }
    // The cells hold 2 w rho (see cell).
    0.5 * lane_sum(&fcol[..m])
}

/// The adjoints a row's cells add into: the starts', and curve `c`'s.
pub(super) struct Hoisted<'a> {
    pub(super) start: &'a mut [f64],
    pub(super) curve: &'a mut [Vec<f64>],
    pub(super) c: usize,
}

/// Add adjoint cells `v` times partial `p` into node `to`'s adjoint: a
/// start's or this curve's scalar (summed over the tile), or a tile array.
#[inline(always)]
pub(super) fn accumulate(
    cg: &CpuLaw,
    to: NodeId,
    v: &[f64],
    p: V,
    adj: &mut [Vec<f64>],
    hoisted: &mut Hoisted,
) {
    match cg.plan.class[to as usize] {
        Class::Start => hoisted.start[to as usize] += dot(v, p),
        Class::Curve => hoisted.curve[cg.aslot[to as usize]][hoisted.c] += dot(v, p),
        _ => {
            let m = v.len();
            axpy(&mut adj[cg.aslot[to as usize]][..m], v, p)
        }
    }
}

/// Sum of v * p over the tile, where v is 0 (the adjoint of a cell that
/// weighs nothing) p may be undefined: such cells add exactly nothing.
/// In [`LANES`] partial sums, as [`lane_sum`].
#[inline(always)]
pub(super) fn dot(v: &[f64], p: V) -> f64 {
    match p {
        V::S(s) => {
            let t = lane_sum(v);
            // All cells 0: nothing, even where s is undefined.
            if t == 0.0 && v.iter().all(|&x| x == 0.0) {
                return 0.0;
            }
            t * s
        }
        V::A(a) => {
            let mut acc = [0.0; LANES];
            // Whole chunks through fixed-size arrays: no bounds checks, so
            // the lanes vectorise.
            let a = &a[..v.len()];
            let (mut vc, mut ac) = (v.chunks_exact(LANES), a.chunks_exact(LANES));
            for (xs, qs) in (&mut vc).zip(&mut ac) {
                let xs: &[f64; LANES] = xs.try_into().expect("a whole chunk");
                let qs: &[f64; LANES] = qs.try_into().expect("a whole chunk");
                for k in 0..LANES {
                    // The product formed unconditionally: with it inside
                    // the branch the lanes stayed scalar, with a jump each.
                    let q = xs[k] * qs[k];
                    acc[k] += if xs[k] != 0.0 { q } else { 0.0 };
                }
            }
            let tail: f64 = vc
                .remainder()
                .iter()
                .zip(ac.remainder())
                .map(|(&x, &q)| if x != 0.0 { x * q } else { 0.0 })
                .sum();
            lanes32(acc) + tail
        }
    }
}

/// out = v * p, cell by cell, with the same zero rule as [`dot`].
#[inline(always)]
pub(super) fn assign(out: &mut [f64], v: &[f64], p: V) {
    match p {
        V::S(s) => {
            for (o, &x) in out.iter_mut().zip(v) {
                *o = if x != 0.0 { x * s } else { 0.0 };
            }
        }
        V::A(a) => {
            for ((o, &x), &q) in out.iter_mut().zip(v).zip(a) {
                *o = if x != 0.0 { x * q } else { 0.0 };
            }
        }
    }
}

/// out += v * p, cell by cell, with the same zero rule as [`dot`].
#[inline(always)]
pub(super) fn axpy(out: &mut [f64], v: &[f64], p: V) {
    match p {
        V::S(s) => {
            for (o, &x) in out.iter_mut().zip(v) {
                *o += if x != 0.0 { x * s } else { 0.0 };
            }
        }
        V::A(a) => {
            for ((o, &x), &q) in out.iter_mut().zip(v).zip(a) {
                *o += if x != 0.0 { x * q } else { 0.0 };
            }
        }
    }
}
