//! Gauss-Newton moments on the grid for a law separable along its axis
//! (prediction `sa * u[d] + sc * s[curve]`, see `separable`): f, the
//! gradient J^T W r and the Gauss-Newton matrix J^T W J of mean squares,
//! for many parameter vectors, without a per-row Jacobian.
//!
//! A cell's Jacobian row is `ju[c] + jv[d]`: the curve term's derivatives
//! (once per curve) plus the axis term's (once per distinct axis value),
//! both taken by the evaluator's own backward passes seeded with 1 and
//! kept per curve or per axis value instead of summed. J^T W J is then
//! per-key sums: sum_d m_d jv jv^T (m_d the column of the cells' weights),
//! sum_c W_c ju ju^T and the cross terms sum_c ju[c] X_c^T with X_c =
//! sum_d w_cd jv[d]. Every sum is over the start nodes the curve and axis
//! nodes read (the coordinates the backward passes end in); the start
//! edges take them to the parameters once per start.
//!
//! Levenberg-Marquardt needs a few times fewer evaluations than L-BFGS,
//! and these moments cost a few passes over a tile's arrays beside the
//! gradient's, so on a shared grid it runs here rather than on per-row
//! Jacobians (which cost a pass over every row per start).

use super::power::tile_terms;
use super::*;
use crate::backend::gauss_newton;

/// The start nodes a separable law's Jacobian runs through (see the module
/// docs), and each node's index among them.
pub(super) struct GnCoords {
    nodes: Vec<NodeId>,
    index: Vec<usize>,
    /// The first `axis` coordinates are those the axis nodes reach: the
    /// only ones the axis term's derivatives have.
    axis: usize,
}

impl GnCoords {
    fn of(cg: &CpuLaw, sep: &Separable) -> GnCoords {
        let plan = &cg.plan;
        let class = &plan.class;
        let mut index = vec![usize::MAX; cg.n_nodes];
        let mut nodes = Vec::new();
        let mut add = |id: NodeId, nodes: &mut Vec<NodeId>| {
            if class[id as usize] == Class::Start && index[id as usize] == usize::MAX {
                index[id as usize] = nodes.len();
                nodes.push(id);
            }
        };
        match cg.power {
            // The fused term's coordinates, in the order `power_jacobian`
            // fills them.
            Some(pt) => {
                for id in [pt.s1, Some(pt.s2)].into_iter().flatten() {
                    add(id, &mut nodes);
                }
                if let Base::Shifted { s3, .. } = pt.base {
                    add(s3, &mut nodes);
                }
            }
            None => {
                for (e, _) in &cg.steps[Class::Axis as usize] {
                    add(e.to, &mut nodes);
                }
            }
        }
        let axis = nodes.len();
        add(sep.scalar_node, &mut nodes);
        for (e, _) in &cg.steps[Class::Curve as usize] {
            add(e.to, &mut nodes);
        }
        GnCoords { nodes, index, axis }
    }
}

/// What every start's pass shares: the law's split, its coordinates and
/// (linear space) the fixed weights' sums.
struct Setup<'a> {
    sep: Separable,
    coords: GnCoords,
    fixed: Option<&'a FixedWeights>,
}

/// One (start, group)'s sums, in the start-node coordinates.
#[derive(Clone, Default)]
struct Part {
    f: f64,
    /// The axis term's part of the gradient (axis coordinates).
    gs: Vec<f64>,
    /// Per curve, the sum of its cells' seed adjoints.
    rsum: Vec<f64>,
    /// Per curve, the sum of its cells' Gauss-Newton weights.
    wsum: Vec<f64>,
    /// Per curve (rows of S), X_c (axis coordinates; the rest are 0).
    x: Vec<f64>,
    /// S x S, sum_d m_d jv jv^T (upper triangle, axis coordinates).
    avv: Vec<f64>,
}

/// A scratch from the evaluator's pool (or new), back to it when
/// dropped: allocating them took a few per cent of a fit.
struct Pooled<'a> {
    pool: &'a Mutex<Vec<Scratch>>,
    ws: Option<Scratch>,
}

impl<'a> Pooled<'a> {
    fn take(cg: &'a CpuLaw, s: usize, batch: usize) -> Pooled<'a> {
        let held = cg.gn_pool.lock().ok().and_then(|mut p| p.pop());
        let fits = |w: &Scratch| w.jv.len() == s && w.starts.len() == batch;
        Pooled {
            pool: &cg.gn_pool,
            ws: Some(
                held.filter(fits)
                    .unwrap_or_else(|| Scratch::new(cg, s, batch)),
            ),
        }
    }
}

impl std::ops::Deref for Pooled<'_> {
    type Target = Scratch;
    fn deref(&self) -> &Scratch {
        self.ws.as_ref().expect("held until dropped")
    }
}

impl std::ops::DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut Scratch {
        self.ws.as_mut().expect("held until dropped")
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let (Ok(mut p), Some(ws)) = (self.pool.lock(), self.ws.take()) {
            p.push(ws);
        }
    }
}

/// A thread's arrays.
pub(super) struct Scratch {
    start: Vec<f64>,
    cvals: Vec<Vec<f64>>,
    cadj: Vec<Vec<f64>>,
    vals: Vec<Vec<f64>>,
    adj: Vec<Vec<f64>>,
    /// Per coordinate, the axis term's derivatives over a tile.
    jv: Vec<Vec<f64>>,
    /// Per coordinate, the curve term's derivatives over the curves.
    ju: Vec<Vec<f64>>,
    /// A tile's column sums of the Gauss-Newton weights (log space).
    om: Vec<f64>,
    /// A fused power term's v, ln x and 1/x over a tile (see `power`).
    pv: [Vec<f64>; 3],
    /// The starts of a batch (see `gn_batch`).
    starts: Vec<StartGn>,
    /// A tile's weights under a start's weighting.
    eff: Effective,
}

/// One start's values that live across the tiles of a batch.
#[derive(Default)]
struct StartGn {
    start: Vec<f64>,
    cvals: Vec<Vec<f64>>,
    cadj: Vec<Vec<f64>>,
    /// Per curve, the prediction's curve part (the scalar term, signed).
    scalar: Vec<f64>,
    /// The group's sums, in eight lanes each (see `gn_batch`).
    lanes: Vec<[f64; 8]>,
    f: f64,
    /// Whether a weighting weighs it.
    weighted: bool,
}

impl Scratch {
    fn new(cg: &CpuLaw, s: usize, batch: usize) -> Scratch {
        let (n, nc) = (cg.n_nodes, cg.n_curves);
        Scratch {
            start: vec![0.0; n],
            cvals: vec![vec![0.0; nc]; cg.n_cslots],
            cadj: vec![vec![0.0; nc]; cg.n_cslots],
            vals: vec![vec![0.0; TILE]; cg.n_slots],
            adj: vec![vec![0.0; TILE]; cg.n_slots],
            jv: vec![vec![0.0; TILE]; s],
            ju: vec![vec![0.0; nc]; s],
            om: vec![0.0; TILE],
            pv: std::array::from_fn(|_| vec![0.0; TILE]),
            eff: Effective::default(),
            starts: (0..batch)
                .map(|_| StartGn {
                    start: vec![0.0; n],
                    cvals: vec![vec![0.0; nc]; cg.n_cslots],
                    cadj: vec![vec![0.0; nc]; cg.n_cslots],
                    scalar: vec![0.0; nc],
                    ..Default::default()
                })
                .collect(),
        }
    }
}

impl CpuLaw {
    /// Whether the evaluator of `plan` on `sweep` forms Gauss-Newton
    /// moments (see [`CpuLaw::has_gauss_newton`]), without building it.
    pub fn gauss_newton_on(plan: &Plan, sweep: &Sweep, objective: Objective) -> bool {
        CpuLayout::of(sweep) == CpuLayout::Grid
            && objective.loss == LossKind::Mse
            && Separable::detect(plan).is_some()
    }

    /// Whether [`CpuLaw::evaluate_gn`] can run: the grid layout, a law
    /// separable along its axis, and mean squares.
    pub fn has_gauss_newton(&self) -> bool {
        self.layout == CpuLayout::Grid
            && self.separable.is_some()
            && self.objective.loss == LossKind::Mse
    }

    /// f (1/2 sum w r^2), the gradient J^T W r into `g` and the
    /// Gauss-Newton matrix J^T W J (row-major, n_params^2 per vector)
    /// into `h`, for every parameter vector of `params`. Panics unless
    /// [`CpuLaw::has_gauss_newton`].
    pub fn evaluate_gn(&self, params: &[f64], f: &mut [f64], g: &mut [f64], h: &mut [f64]) {
        self.run_gn(params, None, f, g, h);
    }

    /// [`CpuLaw::evaluate_gn`] with parameter vector k weighed by the
    /// registered weighting `which[k]` (see
    /// [`Evaluator::set_weightings`](crate::backend::Evaluator)), or by
    /// the sweep's own weights where it is [`UNWEIGHTED`].
    pub fn evaluate_gn_weighted(
        &self,
        params: &[f64],
        which: &[u32],
        f: &mut [f64],
        g: &mut [f64],
        h: &mut [f64],
    ) -> anyhow::Result<()> {
        let np = self.plan.n_params().max(1);
        anyhow::ensure!(
            which.len() == f.len()
                && params.len() == f.len() * np
                && g.len() == params.len()
                && h.len() == g.len() * np,
            "params, which, f, g and h differ in length"
        );
        let (order, ps, ws) = by_weighting(params, which, np, self.registered.len())?;
        let (mut fo, mut go, mut ho) = (vec![0.0; f.len()], vec![0.0; g.len()], vec![0.0; h.len()]);
        self.run_gn(&ps, Some(&ws), &mut fo, &mut go, &mut ho);
        for (j, &k) in order.iter().enumerate() {
            f[k] = fo[j];
            g[k * np..(k + 1) * np].copy_from_slice(&go[j * np..(j + 1) * np]);
            h[k * np * np..(k + 1) * np * np].copy_from_slice(&ho[j * np * np..(j + 1) * np * np]);
        }
        Ok(())
    }

    fn run_gn(
        &self,
        params: &[f64],
        which: Option<&[u32]>,
        f: &mut [f64],
        g: &mut [f64],
        h: &mut [f64],
    ) {
        let sep = self
            .separable
            .expect("Gauss-Newton moments need a separable law on the grid");
        assert!(
            self.has_gauss_newton(),
            "Gauss-Newton moments need the grid"
        );
        let np = self.plan.n_params().max(1);
        let k = f.len();
        assert!(params.len() == k * np && g.len() == k * np && h.len() == k * np * np);
        let su = Setup {
            sep,
            coords: GnCoords::of(self, &sep),
            fixed: (self.objective.space == Space::Linear)
                .then(|| self.gn_fixed.get_or_init(|| FixedWeights::of(self))),
        };
        let s = su.coords.nodes.len();
        let ng = self.groups.len();
        // Starts side by side on each tile (its targets and weights read
        // once for all of them), as many as keep their sums in L2.
        let nc = self.n_curves;
        let per_start = 8 * (2 * nc + nc * s + s + s * s) + 2 * self.n_cslots * nc + self.n_nodes;
        let batch = (BATCH_VALUES / per_start.max(1)).clamp(1, MAX_BATCH);
        let chunks = k.div_ceil(batch);
        let parts: Vec<Vec<Part>> = (0..chunks * ng)
            .into_par_iter()
            .map_init(
                || Pooled::take(self, s, batch),
                |ws, i| {
                    let (c, gi) = (i / ng, i % ng);
                    let js = c * batch..((c + 1) * batch).min(k);
                    let mut out = vec![Part::default(); js.len()];
                    let wt = Weights {
                        which: which.map(|w| &w[js.clone()]),
                        resolved: &self.registered,
                    };
                    let p = &params[js.start * np..js.end * np];
                    gn_dispatch(self, &su, (p, wt), gi, ws, &mut out);
                    out
                },
            )
            .collect();
        f.par_iter_mut()
            .zip(g.par_chunks_mut(np))
            .zip(h.par_chunks_mut(np * np))
            .enumerate()
            .for_each_init(
                || Pooled::take(self, s, batch),
                |ws, (j, ((f, g), h))| {
                    let p = &params[j * np..(j + 1) * np];
                    let (c, at) = (j / batch, j % batch);
                    let mine: Vec<&Part> = (0..ng).map(|gi| &parts[c * ng + gi][at]).collect();
                    *f = self.gn_finish(&su.sep, &su.coords, p, &mine, ws, g, h);
                },
            );
    }

    /// One start's groups added in order, the curve term's Jacobian, and
    /// the sums taken to the parameters by the start edges. Returns f.
    #[allow(clippy::too_many_arguments)]
    fn gn_finish(
        &self,
        sep: &Separable,
        coords: &GnCoords,
        p: &[f64],
        parts: &[&Part],
        ws: &mut Scratch,
        g: &mut [f64],
        h: &mut [f64],
    ) -> f64 {
        let (s, nc) = (coords.nodes.len(), self.n_curves);
        gauss_newton::start_values(&self.plan, p, &mut ws.start);
        curve_jacobian(self, sep, coords, p, ws);
        let mut f = 0.0;
        let mut gs = vec![0.0; s];
        let mut rsum = vec![0.0; nc];
        let mut wsum = vec![0.0; nc];
        let mut x = vec![0.0; nc * s];
        let mut a = vec![0.0; s * s];
        for part in parts {
            f += part.f;
            add(&mut gs, &part.gs);
            add(&mut rsum, &part.rsum);
            add(&mut wsum, &part.wsum);
            add(&mut x, &part.x);
            add(&mut a, &part.avv);
        }
        let ju = &ws.ju;
        for c in 0..nc {
            for u in 0..s {
                gs[u] += rsum[c] * ju[u][c];
                for v in u..s {
                    a[u * s + v] += wsum[c] * ju[u][c] * ju[v][c]
                        + ju[u][c] * x[c * s + v]
                        + x[c * s + u] * ju[v][c];
                }
            }
        }
        // To the parameters: M (s x np) row by row from a unit adjoint
        // of each coordinate, then g = M^T gs and H = M^T A M.
        let m = gauss_newton::start_jacobian(&self.plan, &ws.start, &coords.nodes);
        gauss_newton::to_params(&m, &gs, &a, g, h);
        f
    }
}

fn add(to: &mut Vec<f64>, from: &[f64]) {
    if to.len() < from.len() {
        to.resize(from.len(), 0.0);
    }
    for (t, v) in to.iter_mut().zip(from) {
        *t += v;
    }
}

/// The curve nodes over every curve, then the curve term's derivatives
/// per curve into `ws.ju` (the curve backward seeded with the term's
/// sign, ending per curve rather than summed).
fn curve_jacobian(cg: &CpuLaw, sep: &Separable, coords: &GnCoords, p: &[f64], ws: &mut Scratch) {
    let nc = cg.n_curves;
    class_forward::<false>(
        cg,
        Class::Curve,
        0,
        nc,
        p,
        &ws.start,
        &mut ws.cvals,
        &mut ws.cadj,
    );
    for j in &mut ws.ju {
        j[..nc].fill(0.0);
    }
    let sn = sep.scalar_node as usize;
    match cg.plan.class[sn] {
        Class::Start => ws.ju[coords.index[sn]][..nc].fill(sep.scalar_sign),
        Class::Curve => {
            ws.cadj[cg.aslot[sn]][..nc].fill(sep.scalar_sign);
            let into = IntoStart::PerCell {
                jac: &mut ws.ju,
                index: &coords.index,
            };
            class_backward(
                cg,
                Class::Curve,
                0,
                nc,
                &ws.start,
                into,
                &ws.cvals,
                &cg.cslot,
                &mut ws.cadj,
            );
        }
        _ => {}
    }
}

fn gn_dispatch(
    cg: &CpuLaw,
    su: &Setup,
    p: (&[f64], Weights),
    group: usize,
    ws: &mut Scratch,
    out: &mut [Part],
) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports the features the function enables.
            return unsafe { gn_avx512(cg, su, p, group, ws, out) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: as above.
            return unsafe { gn_avx2(cg, su, p, group, ws, out) };
        }
    }
    gn_batch::<false>(cg, su, p, group, ws, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn gn_avx512(
    cg: &CpuLaw,
    su: &Setup,
    p: (&[f64], Weights),
    group: usize,
    ws: &mut Scratch,
    out: &mut [Part],
) {
    gn_batch::<true>(cg, su, p, group, ws, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn gn_avx2(
    cg: &CpuLaw,
    su: &Setup,
    p: (&[f64], Weights),
    group: usize,
    ws: &mut Scratch,
    out: &mut [Part],
) {
    gn_batch::<true>(cg, su, p, group, ws, out)
}

/// A batch of starts over one group of tiles, each start's sums into
/// `out`: tile by tile, every start of the batch on a tile before the
/// next. The cells run through the gradient's fused loop
/// (`separable_rows`); the Gauss-Newton weights w (dr/dpred)^2 are the
/// sweep's weights in linear space (their sums over curves and cells
/// formed once, in `fixed`), else formed per row. Sums run in eight lanes
/// to the group's end.
#[inline(always)]
fn gn_batch<const FMA: bool>(
    cg: &CpuLaw,
    su: &Setup,
    (params, wt): (&[f64], Weights),
    group: usize,
    ws: &mut Scratch,
    out: &mut [Part],
) {
    let (sep, coords, fixed) = (&su.sep, &su.coords, su.fixed);
    let (s, sa, nc) = (coords.nodes.len(), coords.axis, cg.n_curves);
    let np = cg.plan.n_params().max(1);
    let k = out.len();
    let plan = &cg.plan;
    let class = &plan.class;
    // Lanes: per curve the seed sum and the weight sum, per curve and
    // axis coordinate X, per axis coordinate the gradient, and the upper
    // triangle of the axis block.
    let (l_r, l_w, l_x, l_g, l_a) = (0, nc, 2 * nc, 2 * nc + nc * sa, 2 * nc + nc * sa + sa);
    for (st, p) in ws.starts[..k].iter_mut().zip(params.chunks(np)) {
        gauss_newton::start_values(&cg.plan, p, &mut st.start);
        class_forward::<FMA>(
            cg,
            Class::Curve,
            0,
            nc,
            p,
            &st.start,
            &mut st.cvals,
            &mut st.cadj,
        );
        for c in 0..nc {
            st.scalar[c] = sep.scalar_sign * scalar_of(cg, sep, &st.start, &st.cvals, c);
        }
        st.lanes.clear();
        st.lanes.resize(l_a + sa * sa, [0.0; 8]);
        st.f = 0.0;
    }
    for (j, st) in ws.starts[..k].iter_mut().enumerate() {
        st.weighted = wt.get(j).is_some();
    }
    let an = sep.axis_node as usize;
    let Scratch {
        vals,
        adj,
        jv,
        om,
        pv,
        starts,
        eff,
        ..
    } = ws;
    let mut fcol = [0.0; TILE];
    let mut gbuf = [0.0; ROWS * TILE];
    let mut col = [0.0; TILE];
    let mut tmp = [0.0; TILE];
    for si in cg.groups[group].clone() {
        let span = &cg.spans[si];
        let (t0, m) = (span.a0, span.m);
        for (j, (st, p)) in starts[..k].iter_mut().zip(params.chunks(np)).enumerate() {
            // A weighted start's weights (a bootstrap replicate): not the
            // sweep's, so none of `fixed`'s sums hold for it.
            let weighted = wt.get(j).map(|(wk, r)| eff.get(cg, si, wk, r));
            let fixed = fixed.filter(|_| weighted.is_none());
            let wrow = |c: usize| match weighted {
                Some(e) => &e[c * m..(c + 1) * m],
                None => &cg.w[span.row(c)],
            };
            let StartGn {
                start,
                cvals,
                scalar,
                lanes,
                f,
                ..
            } = st;
            // The axis term and its derivatives per axis value.
            let (u, sa_u): (&[f64], f64) = match cg.power {
                Some(pt) => {
                    let s1 = pt.s1.map_or(1.0, |id| start[id as usize]);
                    (
                        power_jacobian::<FMA>(cg, sep, pt, t0, m, start, pv, jv),
                        sep.axis_sign * s1,
                    )
                }
                None => {
                    class_forward::<FMA>(cg, Class::Axis, t0, m, p, start, vals, adj);
                    for j in &mut jv[..sa] {
                        j[..m].fill(0.0);
                    }
                    if class[an] != Class::Data {
                        adj[cg.aslot[an]][..m].fill(sep.axis_sign);
                        let into = IntoStart::PerCell {
                            jac: jv,
                            index: &coords.index,
                        };
                        class_backward(cg, Class::Axis, t0, m, start, into, vals, &cg.slot, adj);
                    }
                    let u: &[f64] = match class[an] {
                        Class::Data => &cg.data_of(sep.axis_node)[t0..t0 + m],
                        _ => &vals[cg.slot[an]][..m],
                    };
                    (u, sep.axis_sign)
                }
            };
            // Objective, the column sums of seed adjoints, each row's
            // seed sum.
            col[..m].fill(0.0);
            *f += separable_rows::<FMA>(
                cg,
                span,
                &wrow,
                (u, sa_u, 1.0),
                start,
                (cvals, 0),
                &mut col[..m],
                &mut fcol,
                &mut gbuf,
                &mut lanes[l_r..l_r + nc],
            );
            // The Gauss-Newton weights, row by row, and their column sums.
            if fixed.is_none() {
                om[..m].fill(0.0);
            }
            // Rows of one weight throughout take the tile's sums.
            let mut jsum = [f64::NAN; 8];
            for c in 0..nc {
                let w = wrow(c);
                if let Some(fw) = fixed {
                    let wc = fw.uniform[si * nc + c];
                    if wc == 0.0 {
                        continue;
                    }
                    if !wc.is_nan() && sa <= jsum.len() {
                        if jsum[0].is_nan() {
                            for a in 0..sa {
                                jsum[a] = lane_sum(&jv[a][..m]);
                            }
                        }
                        for a in 0..sa {
                            lanes[l_x + c * sa + a][0] += wc * jsum[a];
                        }
                        continue;
                    }
                }
                let wo: &[f64] = match (fixed, cg.objective.space) {
                    (Some(_), _) => w,
                    (None, space) => {
                        let wo = &mut tmp[..m];
                        if space == Space::Log {
                            log_weights::<FMA>(u, sa_u, scalar[c], w, wo);
                        } else {
                            wo.copy_from_slice(w);
                        }
                        lane_fold(wo, &mut lanes[l_w + c]);
                        for (o, &v) in om[..m].iter_mut().zip(wo.iter()) {
                            *o += v;
                        }
                        wo
                    }
                };
                for a in 0..sa {
                    dot_fold(wo, &jv[a][..m], &mut lanes[l_x + c * sa + a]);
                }
            }
            let om: &[f64] = match fixed {
                Some(fw) => &fw.column[t0..t0 + m],
                None => &om[..m],
            };
            for a in 0..sa {
                dot_fold(&col[..m], &jv[a][..m], &mut lanes[l_g + a]);
                assign(&mut tmp[..m], om, V::A(&jv[a][..m]));
                for b in a..sa {
                    dot_fold(&tmp[..m], &jv[b][..m], &mut lanes[l_a + a * sa + b]);
                }
            }
        }
    }
    for (st, out) in starts[..k].iter().zip(out.iter_mut()) {
        let total = |i: usize| lanes8(&st.lanes[i]);
        let mut x = vec![0.0; nc * s];
        for c in 0..nc {
            for a in 0..sa {
                x[c * s + a] = total(l_x + c * sa + a);
            }
        }
        let mut avv = vec![0.0; s * s];
        for a in 0..sa {
            for b in a..sa {
                avv[a * s + b] = total(l_a + a * sa + b);
            }
        }
        *out = Part {
            f: st.f,
            gs: (0..sa).map(|a| total(l_g + a)).collect(),
            rsum: (0..nc).map(|c| total(l_r + c)).collect(),
            wsum: match fixed.filter(|_| !st.weighted) {
                Some(fw) => fw.rows[group].clone(),
                None => (0..nc).map(|c| total(l_w + c)).collect(),
            },
            x,
            avv,
        };
    }
}

/// In linear space the Gauss-Newton weights are the sweep's own: their
/// sums over the curves per axis value, and per group over each curve's
/// cells, formed once per call.
pub(super) struct FixedWeights {
    column: Vec<f64>,
    rows: Vec<Vec<f64>>,
    /// Per tile and curve (`span * n_curves + c`), the one weight every
    /// cell of the curve's row has there, NaN where they differ: X_c is
    /// then that weight times the tile's sums of the derivatives, not a
    /// dot product per curve (most rows of most sweeps).
    uniform: Vec<f64>,
}

impl FixedWeights {
    fn of(cg: &CpuLaw) -> FixedWeights {
        let (nc, na) = (
            cg.n_curves,
            cg.spans.iter().map(|s| s.a0 + s.m).max().unwrap_or(0),
        );
        let mut column = vec![0.0; na];
        for c in 0..nc {
            for (o, &w) in column.iter_mut().zip(&cg.w[c * na..(c + 1) * na]) {
                *o += w;
            }
        }
        let rows = cg
            .groups
            .iter()
            .map(|g| {
                (0..nc)
                    .map(|c| {
                        cg.spans[g.clone()]
                            .iter()
                            .map(|sp| cg.w[sp.row(c)].iter().sum::<f64>())
                            .sum()
                    })
                    .collect()
            })
            .collect();
        let mut uniform = Vec::with_capacity(cg.spans.len() * nc);
        for sp in &cg.spans {
            for c in 0..nc {
                let w = &cg.w[sp.row(c)];
                let first = w.first().copied().unwrap_or(0.0);
                uniform.push(match w.iter().all(|&v| v == first) {
                    true => first,
                    false => f64::NAN,
                });
            }
        }
        FixedWeights {
            column,
            rows,
            uniform,
        }
    }
}

/// Curve `c`'s value of the separable law's scalar term.
#[inline(always)]
fn scalar_of(cg: &CpuLaw, sep: &Separable, start: &[f64], cvals: &[Vec<f64>], c: usize) -> f64 {
    let sn = sep.scalar_node as usize;
    match cg.plan.class[sn] {
        Class::Start => start[sn],
        Class::Data => cg.data_of(sep.scalar_node)[c],
        _ => cvals[cg.cslot[sn]][c],
    }
}

/// A row's Gauss-Newton weights in log space, w / pred^2 (exactly 0
/// where w is 0, whatever the prediction there).
#[inline(always)]
fn log_weights<const FMA: bool>(u: &[f64], sa: f64, sc: f64, w: &[f64], wo: &mut [f64]) {
    let m = u.len();
    for ((o, &w), &u) in wo[..m].iter_mut().zip(&w[..m]).zip(u) {
        let inv = 1.0 / mul_add::<FMA>(sa, u, sc);
        let empty = (w.to_bits() << 1) == 0;
        *o = if empty { 0.0 } else { w * inv * inv };
    }
}

/// A fused power term `s1 (d + s3)^s2` (see `power`) over a tile: its
/// raw power v (returned; the prediction's axis part is sign * s1 * v)
/// and its derivatives by s1, s2 and s3 into `jv`, in the coordinates'
/// order (see [`GnCoords`]).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn power_jacobian<'a, const FMA: bool>(
    cg: &CpuLaw,
    sep: &Separable,
    pt: PowerTerm,
    t0: usize,
    m: usize,
    start: &[f64],
    pv: &'a mut [Vec<f64>; 3],
    jv: &mut [Vec<f64>],
) -> &'a [f64] {
    let s = |id: NodeId| start[id as usize];
    let sa = sep.axis_sign * pt.s1.map_or(1.0, s);
    let s2 = s(pt.s2);
    let [v, lx, inv] = pv;
    let (v, lx, inv) = (&mut v[..m], &mut lx[..m], &mut inv[..m]);
    match pt.base {
        Base::Shifted { d, s3 } => {
            tile_terms::<FMA, true>(&cg.data_of(d)[t0..t0 + m], s(s3), s2, v, lx, inv)
        }
        Base::Log(l) => tile_terms::<FMA, false>(&cg.data_of(l)[t0..t0 + m], 0.0, s2, v, lx, inv),
    }
    let mut k = 0;
    if pt.s1.is_some() {
        for (o, &v) in jv[k][..m].iter_mut().zip(v.iter()) {
            *o = sep.axis_sign * v;
        }
        k += 1;
    }
    for ((o, &v), &l) in jv[k][..m].iter_mut().zip(v.iter()).zip(lx.iter()) {
        *o = sa * v * l;
    }
    if matches!(pt.base, Base::Shifted { .. }) {
        for ((o, &v), &i) in jv[k + 1][..m].iter_mut().zip(v.iter()).zip(inv.iter()) {
            *o = sa * s2 * v * i;
        }
    }
    v
}

/// Add the products v * a into eight lanes (four vectors of partial sums
/// folded lane by lane, as [`lane_fold`]), with [`dot`]'s zero rule:
/// where v is 0, a may be undefined and adds nothing.
#[inline(always)]
fn dot_fold(v: &[f64], a: &[f64], out: &mut [f64; 8]) {
    let mut acc = [[0.0; 8]; 4];
    let a = &a[..v.len()];
    let (mut vc, mut ac) = (v.chunks_exact(LANES), a.chunks_exact(LANES));
    for (xs, qs) in (&mut vc).zip(&mut ac) {
        let xs: &[f64; LANES] = xs.try_into().expect("a whole chunk");
        let qs: &[f64; LANES] = qs.try_into().expect("a whole chunk");
        for k in 0..8 {
            // Spelled out per vector, as `lane_fold`: whole vectors of
            // eight, with dot's zero rule.
            // (The products formed unconditionally: inside the branch
            // they kept the lanes scalar, as in `dot`.)
            let p = [0, 8, 16, 24].map(|o| xs[k + o] * qs[k + o]);
            acc[0][k] += if xs[k] != 0.0 { p[0] } else { 0.0 };
            acc[1][k] += if xs[k + 8] != 0.0 { p[1] } else { 0.0 };
            acc[2][k] += if xs[k + 16] != 0.0 { p[2] } else { 0.0 };
            acc[3][k] += if xs[k + 24] != 0.0 { p[3] } else { 0.0 };
        }
    }
    fold(&acc, out);
    let tail: f64 = vc
        .remainder()
        .iter()
        .zip(ac.remainder())
        .map(|(&x, &q)| if x != 0.0 { x * q } else { 0.0 })
        .sum();
    out[0] += tail;
}
