//! The CPU evaluator of a compiled law's plan: objective and gradient for
//! many parameter vectors, in f64, on one of two layouts of the sweep.
//!
//! - The grid (curves x distinct axis values), for curves logged along a
//!   shared axis: start nodes once, curve nodes once per curve, axis nodes
//!   once per distinct axis value of a tile, and per grid cell only the
//!   point nodes, the loss and the adjoint sums.
//! - Points (one-point curves and no axis), for tabular data such as the
//!   final losses of many runs, whose grid would be nearly all empty
//!   cells: every node is then a start or curve node, and a block of
//!   points is one pass per node forward, one for the loss, and one per
//!   curve edge backward.
//!
//! Each node of a tile or block is one loop over its cells (operands are
//! arrays or broadcast scalars), branch-free so that it vectorises; the
//! whole pass is compiled for AVX-512, AVX2+FMA and plain SSE2 and picked
//! at run time, as the hand-written LoopLM kernel is.

use rayon::prelude::*;

use crate::backend::fastmath::{self, mul_add};
use crate::backend::Prepared;
use crate::law::dag::{Node, NodeId};
use crate::law::plan::{Class, Plan, Sweep};
use crate::objective::{LossKind, Objective, Space};

/// Distinct axis values per tile (and points per block): the arrays of a
/// law with a few dozen nodes stay in L1/L2 while every curve passes over
/// them.
const TILE: usize = 256;

/// A law's plan bound to a sweep in the grid or the point layout.
pub struct CompiledGrid {
    plan: Plan,
    n_nodes: usize,
    n_curves: usize,
    /// The data nodes' values (see [`Plan::data`]), computed once here and
    /// read by every start: node `id`'s are `data[dslot[id]]`, one per
    /// curve, per distinct axis value or (on the grid, for nodes of both)
    /// per cell, by the node's level.
    data: Vec<Vec<f64>>,
    dslot: Vec<usize>,
    layout: Layout,
    /// Curve-array slot of every curve-class node.
    cslot: Vec<usize>,
    n_cslots: usize,
    /// Distinct axis values, ascending (none in the point layout).
    axis: Vec<f64>,
    /// Targets and weights: on the grid one row of `axis.len()` per curve,
    /// in the point layout one per curve. An empty cell (or curve) has
    /// target NaN and weight 0.
    y: Vec<f64>,
    w: Vec<f64>,
    /// Tile-array slot of every axis- and point-class node.
    slot: Vec<usize>,
    n_slots: usize,
    objective: Objective,
    /// Set when the per-point part is one sum of an axis term and a curve
    /// (or start) term: the cell loop is then fused (see [`Separable`]).
    separable: Option<Separable>,
}

#[derive(Debug, Clone, Copy)]
enum Layout {
    /// Curves x distinct values of the axis variable.
    Grid,
    /// One point per curve, run in blocks of [`TILE`] curves.
    Points,
}

/// A law whose prediction per cell is `sa * u[d] + sc * s[curve]` (any law
/// of the form f(curve variables) + g(axis variable), such as LoopLM and
/// Chinchilla): prediction, loss and both adjoint sums are one loop over
/// the cells, as in the hand-written kernel, instead of a pass per node.
#[derive(Debug, Clone, Copy)]
struct Separable {
    axis_node: NodeId,
    axis_sign: f64,
    scalar_node: NodeId,
    scalar_sign: f64,
}

impl Separable {
    fn detect(plan: &Plan) -> Option<Separable> {
        let value = plan.value();
        let g = plan.graph();
        if plan.forward[Class::Point as usize] != [value] {
            return None;
        }
        let (a, b, sign_b) = match g.node(value) {
            Node::Add(a, b) => (a, b, 1.0),
            Node::Sub(a, b) => (a, b, -1.0),
            _ => return None,
        };
        let class = |id: NodeId| plan.class[id as usize];
        let (axis_node, axis_sign, scalar_node, scalar_sign) = match (class(a), class(b)) {
            (Class::Axis, Class::Curve | Class::Start) => (a, 1.0, b, sign_b),
            (Class::Curve | Class::Start, Class::Axis) => (b, sign_b, a, 1.0),
            _ => return None,
        };
        // The backward edges out of the cell are exactly those two, with
        // the constant partials of a sum.
        let edges = &plan.edges[Class::Point as usize];
        let partial_ok = |to: NodeId, sign: f64| {
            edges
                .iter()
                .any(|e| e.from == value && e.to == to && g.constant(e.partial) == Some(sign))
        };
        let param_dep = |id: NodeId| edges.iter().any(|e| e.to == id);
        if edges.len() != usize::from(param_dep(axis_node)) + usize::from(param_dep(scalar_node))
            || (param_dep(axis_node) && !partial_ok(axis_node, axis_sign))
            || (param_dep(scalar_node) && !partial_ok(scalar_node, scalar_sign))
        {
            return None;
        }
        Some(Separable {
            axis_node,
            axis_sign,
            scalar_node,
            scalar_sign,
        })
    }
}

/// The LoopLM sweep of `data` (internal units) as a plan reads it, with
/// variables N, D, T and D the axis: how today's data meets a compiled law.
pub fn looplm_sweep(data: &Prepared) -> Sweep {
    let mut vars = Vec::with_capacity(3 * data.points());
    let mut curves = Vec::with_capacity(data.configs.len());
    for c in &data.configs {
        for i in c.start..c.start + c.len {
            vars.extend([c.n, data.d[i], c.t]);
        }
        curves.push(c.start..c.start + c.len);
    }
    Sweep::new(3, curves, vars, data.y.clone(), data.w.clone(), Some(1))
}

#[derive(Clone, Copy)]
enum V<'a> {
    S(f64),
    A(&'a [f64]),
}

/// `out[j] = e` with `x` bound to the operand's cell (or its scalar).
/// Macros rather than functions taking a closure: the operation must be
/// inlined into the loop of the instruction-set-specific caller, and a
/// passed-in function was measured not to be (it ran as a scalar call,
/// with its fused multiply-adds as library calls, 18x slower).
macro_rules! unary {
    ($out:expr, $a:expr, |$x:ident| $e:expr) => {
        match $a {
            V::S($x) => $out.fill($e),
            V::A(a) => {
                for (o, &$x) in $out.iter_mut().zip(a) {
                    *o = $e;
                }
            }
        }
    };
}

/// `out[j] = e` with `x`, `y` bound to the two operands' cells.
macro_rules! binary {
    ($out:expr, $a:expr, $b:expr, |$x:ident, $y:ident| $e:expr) => {
        match ($a, $b) {
            (V::S($x), V::S($y)) => $out.fill($e),
            (V::A(a), V::S($y)) => {
                for (o, &$x) in $out.iter_mut().zip(a) {
                    *o = $e;
                }
            }
            (V::S($x), V::A(b)) => {
                for (o, &$y) in $out.iter_mut().zip(b) {
                    *o = $e;
                }
            }
            (V::A(a), V::A(b)) => {
                for ((o, &$x), &$y) in $out.iter_mut().zip(a).zip(b) {
                    *o = $e;
                }
            }
        }
    };
}

impl CompiledGrid {
    /// `plan` bound to `sweep`, or why neither layout fits. With an axis,
    /// the grid: no per-point variable other than the axis, and no curve
    /// with two points at one axis value. Without one, points: no curve
    /// with more than one point (every node is then a start or curve node).
    pub fn new(plan: Plan, sweep: &Sweep, objective: Objective) -> Result<CompiledGrid, String> {
        let nc = sweep.curves.len();
        let (layout, y, w) = match sweep.axis {
            Some(a) => {
                let (y, w) = grid_cells(sweep, a as usize)?;
                (Layout::Grid, y, w)
            }
            None => {
                let (y, w) = point_cells(sweep, &plan)?;
                (Layout::Points, y, w)
            }
        };
        let separable = Separable::detect(&plan);
        let n_nodes = plan.graph().len();
        let (data, dslot) = data_columns(&plan, sweep, layout)?;
        let mut cslot = vec![usize::MAX; n_nodes];
        let mut n_cslots = 0;
        for &id in &plan.forward[Class::Curve as usize] {
            cslot[id as usize] = n_cslots;
            n_cslots += 1;
        }
        let mut slot = vec![usize::MAX; n_nodes];
        let mut n_slots = 0;
        for c in [Class::Axis, Class::Point] {
            for &id in &plan.forward[c as usize] {
                slot[id as usize] = n_slots;
                n_slots += 1;
            }
        }
        Ok(CompiledGrid {
            plan,
            n_nodes,
            n_curves: nc,
            data,
            dslot,
            layout,
            cslot,
            n_cslots,
            axis: sweep.axis_values.clone(),
            y,
            w,
            slot,
            n_slots,
            objective,
            separable,
        })
    }

    /// Objective and gradient for every parameter vector of `params`
    /// (`params.len() / n_params` of them), into `f` and `g` (row-major).
    pub fn evaluate(&self, params: &[f64], f: &mut [f64], g: &mut [f64]) {
        let np = self.plan.n_params().max(1);
        // One chunk of starts per thread, each with one workspace: rayon's
        // per-split initialisation made one per start.
        let per = f.len().div_ceil(rayon::current_num_threads()).max(1);
        f.par_chunks_mut(per)
            .zip(g.par_chunks_mut(per * np))
            .zip(params.par_chunks(per * np))
            .for_each(|((f, g), p)| {
                let mut ws = Workspace::new(self);
                for ((f, g), p) in f.iter_mut().zip(g.chunks_mut(np)).zip(p.chunks(np)) {
                    *f = dispatch(self, p, g, &mut ws);
                }
            });
    }

    /// Data node `o` over cells `t0..t0 + m` of curve `c`'s grid row: a
    /// scalar for a curve-level node, else an array.
    #[inline(always)]
    fn row_data(&self, o: NodeId, c: usize, t0: usize, m: usize) -> V<'_> {
        let d = self.data_of(o);
        match self.plan.level[o as usize] {
            Class::Curve => V::S(d[c]),
            Class::Axis => V::A(&d[t0..t0 + m]),
            _ => V::A(&d[c * self.axis.len() + t0..][..m]),
        }
    }

    /// The cached values of data node `id` (see `data`).
    #[inline(always)]
    fn data_of(&self, id: NodeId) -> &[f64] {
        &self.data[self.dslot[id as usize]]
    }

    /// Curves whose arrays are formed at once: all of them on the grid
    /// (every tile passes over every curve), a block in the point layout.
    fn curve_block(&self) -> usize {
        match self.layout {
            Layout::Grid => self.n_curves,
            Layout::Points => self.n_curves.min(TILE),
        }
    }
}

/// The data nodes' values as columns (one per node, with the node's slot
/// in them): per curve, per distinct axis value, or per grid cell (NaN in
/// empty cells) by the node's level.
fn data_columns(
    plan: &Plan,
    sweep: &Sweep,
    layout: Layout,
) -> Result<(Vec<Vec<f64>>, Vec<usize>), String> {
    let dv = plan.data(sweep, None);
    let (nc, na) = (sweep.curves.len(), sweep.axis_values.len());
    let mut dslot = vec![usize::MAX; plan.graph().len()];
    let mut cols = Vec::new();
    for &id in &plan.forward[Class::Data as usize] {
        let col = match (layout, plan.level[id as usize]) {
            (_, Class::Curve) => (0..nc).map(|c| dv.get(Class::Curve, c, id)).collect(),
            (Layout::Grid, Class::Axis) => (0..na).map(|a| dv.get(Class::Axis, a, id)).collect(),
            (Layout::Grid, _) => {
                let mut col = vec![f64::NAN; nc * na];
                for (c, r) in sweep.curves.iter().enumerate() {
                    for i in r.clone() {
                        col[c * na + sweep.axis_index[i] as usize] = dv.get(Class::Point, i, id);
                    }
                }
                col
            }
            // Only a plan made for another sweep could have them.
            (Layout::Points, _) => {
                return Err(
                    "the plan has per-point nodes, which one-point curves do not have".into(),
                )
            }
        };
        dslot[id as usize] = cols.len();
        cols.push(col);
    }
    Ok((cols, dslot))
}

/// Grid cells (one row of distinct axis values per curve) of `sweep`'s
/// targets and weights, or why the grid does not fit.
fn grid_cells(sweep: &Sweep, axis_var: usize) -> Result<(Vec<f64>, Vec<f64>), String> {
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

/// Targets and weights of the point layout, one per curve, or why it does
/// not fit.
fn point_cells(sweep: &Sweep, plan: &Plan) -> Result<(Vec<f64>, Vec<f64>), String> {
    let nc = sweep.curves.len();
    let (mut y, mut w) = (vec![f64::NAN; nc], vec![0.0; nc]);
    for (c, r) in sweep.curves.iter().enumerate() {
        match r.len() {
            0 => {}
            1 => {
                y[c] = sweep.y[r.start];
                w[c] = sweep.w[r.start];
            }
            k => {
                return Err(format!(
                    "the sweep has no axis variable, yet curve {c} has {k} points: \
                     without an axis every curve must be a single point"
                ))
            }
        }
    }
    // Only a plan made for another sweep could have them.
    if !plan.forward[Class::Axis as usize].is_empty()
        || !plan.forward[Class::Point as usize].is_empty()
    {
        return Err("the plan has per-point nodes, which one-point curves do not have".into());
    }
    Ok((y, w))
}

/// Per-thread arrays of one start's evaluation, reused across starts.
struct Workspace {
    start: Vec<f64>,
    start_adj: Vec<f64>,
    /// Curve nodes' values and adjoints as arrays over a block of curves
    /// (slot `cslot[id]`): every curve edge is then one vectorised pass.
    cvals: Vec<Vec<f64>>,
    cadj: Vec<Vec<f64>>,
    vals: Vec<Vec<f64>>,
    adj: Vec<Vec<f64>>,
    seed: Vec<f64>,
    row_pred: Vec<f64>,
}

impl Workspace {
    fn new(cg: &CompiledGrid) -> Workspace {
        let n = cg.n_nodes;
        let block = cg.curve_block();
        Workspace {
            start: vec![0.0; n],
            start_adj: vec![0.0; n],
            cvals: vec![vec![0.0; block]; cg.n_cslots],
            cadj: vec![vec![0.0; block]; cg.n_cslots],
            vals: vec![vec![0.0; TILE]; cg.n_slots],
            adj: vec![vec![0.0; TILE]; cg.n_slots],
            seed: vec![0.0; TILE],
            row_pred: vec![0.0; TILE],
        }
    }
}

fn dispatch(cg: &CompiledGrid, p: &[f64], g: &mut [f64], ws: &mut Workspace) -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports the features the function enables.
            return unsafe { start_avx512(cg, p, g, ws) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: as above.
            return unsafe { start_avx2(cg, p, g, ws) };
        }
    }
    one_start::<false>(cg, p, g, ws)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn start_avx512(cg: &CompiledGrid, p: &[f64], g: &mut [f64], ws: &mut Workspace) -> f64 {
    one_start::<true>(cg, p, g, ws)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn start_avx2(cg: &CompiledGrid, p: &[f64], g: &mut [f64], ws: &mut Workspace) -> f64 {
    one_start::<true>(cg, p, g, ws)
}

/// Objective and gradient (into `grad`) of one parameter vector.
#[inline(always)]
fn one_start<const FMA: bool>(
    cg: &CompiledGrid,
    params: &[f64],
    grad: &mut [f64],
    ws: &mut Workspace,
) -> f64 {
    let plan = &cg.plan;
    let graph = plan.graph();
    ws.start_adj.fill(0.0);
    // Start nodes: scalars.
    for &id in &plan.forward[Class::Start as usize] {
        let start = &ws.start;
        ws.start[id as usize] = graph
            .node(id)
            .eval(&|o| start[o as usize], &|_| f64::NAN, params);
    }
    let fsum = match cg.layout {
        Layout::Grid => grid_pass::<FMA>(cg, params, ws),
        Layout::Points => point_pass::<FMA>(cg, params, ws),
    };
    let Workspace {
        start, start_adj, ..
    } = ws;
    for e in &plan.edges[Class::Start as usize] {
        let a = start_adj[e.from as usize];
        if a != 0.0 {
            start_adj[e.to as usize] += a * start[e.partial as usize];
        }
    }
    for (gk, id) in grad.iter_mut().zip(plan.param_nodes()) {
        *gk = id.map_or(0.0, |id| start_adj[id as usize]);
    }
    fsum
}

/// The curve nodes of curves `c0..c0 + m` as arrays (vectorised, with the
/// fast transcendentals), their adjoints zeroed.
#[inline(always)]
fn curve_forward<const FMA: bool>(
    cg: &CompiledGrid,
    c0: usize,
    m: usize,
    params: &[f64],
    ws: &mut Workspace,
) {
    let Workspace {
        start, cvals, cadj, ..
    } = ws;
    let (ids, at) = (&cg.plan.forward[Class::Curve as usize], &cg.cslot);
    array_nodes::<FMA>(cg, ids, at, cvals, c0, m, start, params, |id, _| {
        cadj[at[id as usize]][..m].fill(0.0);
    });
}

/// Backward along the curve edges over a block of `m` curves, each edge
/// one pass over the block (as the axis edges over a tile).
#[inline(always)]
fn curve_backward(cg: &CompiledGrid, c0: usize, m: usize, ws: &mut Workspace) {
    let class = &cg.plan.class;
    let Workspace {
        start,
        start_adj,
        cvals,
        cadj,
        ..
    } = ws;
    for e in &cg.plan.edges[Class::Curve as usize] {
        let from = std::mem::take(&mut cadj[cg.cslot[e.from as usize]]);
        let p = match class[e.partial as usize] {
            Class::Start => V::S(start[e.partial as usize]),
            Class::Data => V::A(&cg.data_of(e.partial)[c0..c0 + m]),
            _ => V::A(&cvals[cg.cslot[e.partial as usize]][..m]),
        };
        match class[e.to as usize] {
            Class::Start => start_adj[e.to as usize] += dot(&from[..m], p),
            _ => axpy(&mut cadj[cg.cslot[e.to as usize]][..m], &from[..m], p),
        }
        cadj[cg.cslot[e.from as usize]] = from;
    }
}

/// The point layout: per block of curves (one point each), the curve
/// nodes, the loss over the prediction's array, its derivative as the seed
/// of the prediction's adjoint, and the curve edges back.
#[inline(always)]
fn point_pass<const FMA: bool>(cg: &CompiledGrid, params: &[f64], ws: &mut Workspace) -> f64 {
    let value = cg.plan.value();
    let nc = cg.n_curves;
    let mut fsum = 0.0;
    for c0 in (0..nc).step_by(TILE) {
        let m = TILE.min(nc - c0);
        curve_forward::<FMA>(cg, c0, m, params, ws);
        // Weight-0 points add exactly nothing, whatever their target and
        // prediction: their seed is 0 (see cell_loss), and a 0 adjoint
        // passes nothing back (see dot).
        let (y, w) = (&cg.y[c0..c0 + m], &cg.w[c0..c0 + m]);
        let Workspace {
            start,
            start_adj,
            cvals,
            cadj,
            seed,
            row_pred,
            ..
        } = ws;
        match cg.plan.class[value as usize] {
            Class::Curve => {
                let s = cg.cslot[value as usize];
                fsum += loss_cells::<FMA>(cg.objective, &cvals[s][..m], y, w, &mut cadj[s][..m]);
            }
            // A prediction without parameters: no gradient.
            Class::Data => {
                let pred = &cg.data_of(value)[c0..c0 + m];
                fsum += loss_cells::<FMA>(cg.objective, pred, y, w, &mut seed[..m]);
            }
            // A law without variables: one prediction for every point.
            _ => {
                row_pred[..m].fill(start[value as usize]);
                fsum += loss_cells::<FMA>(cg.objective, &row_pred[..m], y, w, &mut seed[..m]);
                start_adj[value as usize] += lane_sum(&seed[..m]);
            }
        }
        curve_backward(cg, c0, m, ws);
    }
    fsum
}

/// The grid layout: curve nodes over all curves, then per tile of axis
/// values the axis nodes, the cells of every curve, and the axis edges
/// back; last the curve edges. Returns the objective; the gradient is left
/// in the start adjoints.
#[inline(always)]
fn grid_pass<const FMA: bool>(cg: &CompiledGrid, params: &[f64], ws: &mut Workspace) -> f64 {
    let plan = &cg.plan;
    let nc = cg.n_curves;
    curve_forward::<FMA>(cg, 0, nc, params, ws);
    let Workspace {
        start,
        start_adj,
        cvals,
        cadj,
        vals,
        adj,
        seed,
        row_pred,
    } = ws;
    // Stack arrays of the separable loop (see fused_rows).
    let mut fcol = [0.0; TILE];
    let mut gbuf = [0.0; ROWS * TILE];
    let graph = plan.graph();
    let na = cg.axis.len();
    let class = &plan.class;

    let mut fsum = 0.0;
    let obj = cg.objective;
    let value = plan.value();
    for t0 in (0..na).step_by(TILE) {
        let m = TILE.min(na - t0);
        // Axis nodes of the tile.
        let (ids, at) = (&plan.forward[Class::Axis as usize], &cg.slot);
        array_nodes::<FMA>(cg, ids, at, vals, t0, m, start, params, |id, _| {
            adj[at[id as usize]][..m].fill(0.0);
        });
        if let Some(sep) = cg.separable {
            // Fused cell loop: prediction, loss and both adjoint sums.
            let u = match class[sep.axis_node as usize] {
                Class::Axis => cg.slot[sep.axis_node as usize],
                _ => unreachable!("detected as an axis node"),
            };
            let mut col = std::mem::take(&mut adj[u]);
            fcol[..m].fill(0.0);
            let sn = sep.scalar_node as usize;
            let scalar = |c: usize| match class[sn] {
                Class::Start => start[sn],
                _ => cvals[cg.cslot[sn]][c],
            };
            let mut add_row = |c: usize, rowsum: f64| {
                let g = rowsum * sep.scalar_sign;
                match class[sn] {
                    Class::Start => start_adj[sn] += g,
                    _ => cadj[cg.cslot[sn]][c] += g,
                }
            };
            let row = |c: usize| (c * na + t0)..(c * na + t0 + m);
            // Rows in fours: each axis value and its adjoint sum are
            // loaded and stored once for four curves.
            let mut c = 0;
            while c + ROWS <= nc {
                let sums = fused_rows::<FMA, ROWS>(
                    obj,
                    &vals[u][..m],
                    sep.axis_sign,
                    std::array::from_fn(|r| sep.scalar_sign * scalar(c + r)),
                    std::array::from_fn(|r| &cg.y[row(c + r)]),
                    std::array::from_fn(|r| &cg.w[row(c + r)]),
                    &mut col[..m],
                    &mut fcol,
                    &mut gbuf,
                );
                for (r, v) in sums.into_iter().enumerate() {
                    add_row(c + r, v);
                }
                c += ROWS;
            }
            for c in c..nc {
                let [v] = fused_rows::<FMA, 1>(
                    obj,
                    &vals[u][..m],
                    sep.axis_sign,
                    [sep.scalar_sign * scalar(c)],
                    [&cg.y[row(c)]],
                    [&cg.w[row(c)]],
                    &mut col[..m],
                    &mut fcol,
                    &mut gbuf,
                );
                add_row(c, v);
            }
            adj[u] = col;
            fsum += lane_sum(&fcol[..m]);
        }
        // The general path: a pass per point node over each row.
        let general_rows = if cg.separable.is_some() { 0 } else { nc };
        // (c indexes the curve arrays of several nodes, not one slice.)
        #[allow(clippy::needless_range_loop)]
        for c in 0..general_rows {
            // This curve's value of a curve node.
            let cv = |o: NodeId| cvals[cg.cslot[o as usize]][c];
            // Point nodes of this curve's row of the tile.
            for &id in &plan.forward[Class::Point as usize] {
                let s = cg.slot[id as usize];
                let mut out = std::mem::take(&mut vals[s]);
                {
                    let opnd = |o: NodeId| -> V {
                        match class[o as usize] {
                            Class::Start => V::S(start[o as usize]),
                            Class::Curve => V::S(cv(o)),
                            Class::Data => cg.row_data(o, c, t0, m),
                            _ => V::A(&vals[cg.slot[o as usize]][..m]),
                        }
                    };
                    node_op::<FMA>(graph.node(id), &opnd, &mut out[..m], params);
                }
                vals[s] = out;
            }
            // The loss and its derivative per cell; empty cells and
            // weight-0 points contribute exactly nothing.
            let o = c * na + t0;
            let (y, w) = (&cg.y[o..o + m], &cg.w[o..o + m]);
            let pred: &[f64] = match class[value as usize] {
                // A law without the axis: one prediction for the whole row.
                Class::Start | Class::Curve => {
                    let v = match class[value as usize] {
                        Class::Start => start[value as usize],
                        _ => cv(value),
                    };
                    row_pred[..m].fill(v);
                    &row_pred[..m]
                }
                Class::Data => match cg.row_data(value, c, t0, m) {
                    V::S(v) => {
                        row_pred[..m].fill(v);
                        &row_pred[..m]
                    }
                    V::A(a) => a,
                },
                _ => &vals[cg.slot[value as usize]][..m],
            };
            fsum += loss_cells::<FMA>(obj, pred, y, w, &mut seed[..m]);
            // Backward out of the point nodes.
            for &id in &plan.forward[Class::Point as usize] {
                adj[cg.slot[id as usize]][..m].fill(0.0);
            }
            let hoisted = &mut Hoisted {
                start: start_adj,
                curve: cadj,
                c,
            };
            // (A prediction without parameters has no gradient.)
            if class[value as usize] != Class::Data {
                accumulate(cg, value, &seed[..m], V::S(1.0), adj, hoisted);
            }
            for e in &plan.edges[Class::Point as usize] {
                let from = std::mem::take(&mut adj[cg.slot[e.from as usize]]);
                let p = match class[e.partial as usize] {
                    Class::Start => V::S(start[e.partial as usize]),
                    Class::Curve => V::S(cv(e.partial)),
                    Class::Data => cg.row_data(e.partial, c, t0, m),
                    _ => V::A(&vals[cg.slot[e.partial as usize]][..m]),
                };
                accumulate(cg, e.to, &from[..m], p, adj, hoisted);
                adj[cg.slot[e.from as usize]] = from;
            }
        }
        // Backward out of the axis nodes, once per tile.
        for e in &plan.edges[Class::Axis as usize] {
            let from = std::mem::take(&mut adj[cg.slot[e.from as usize]]);
            let p = match class[e.partial as usize] {
                Class::Start => V::S(start[e.partial as usize]),
                Class::Data => V::A(&cg.data_of(e.partial)[t0..t0 + m]),
                _ => V::A(&vals[cg.slot[e.partial as usize]][..m]),
            };
            match class[e.to as usize] {
                Class::Start => start_adj[e.to as usize] += dot(&from[..m], p),
                _ => axpy(&mut adj[cg.slot[e.to as usize]][..m], &from[..m], p),
            }
            adj[cg.slot[e.from as usize]] = from;
        }
    }
    curve_backward(cg, 0, nc, ws);
    fsum
}

/// The adjoints a row's cells add into: the starts', and curve `c`'s.
struct Hoisted<'a> {
    start: &'a mut [f64],
    curve: &'a mut [Vec<f64>],
    c: usize,
}

/// Add adjoint cells `v` times partial `p` into node `to`'s adjoint: a
/// start's or this curve's scalar (summed over the tile), or a tile array.
#[inline(always)]
fn accumulate(
    cg: &CompiledGrid,
    to: NodeId,
    v: &[f64],
    p: V,
    adj: &mut [Vec<f64>],
    hoisted: &mut Hoisted,
) {
    match cg.plan.class[to as usize] {
        Class::Start => hoisted.start[to as usize] += dot(v, p),
        Class::Curve => hoisted.curve[cg.cslot[to as usize]][hoisted.c] += dot(v, p),
        _ => {
            let m = v.len();
            axpy(&mut adj[cg.slot[to as usize]][..m], v, p)
        }
    }
}

/// Sum of v * p over the tile, where v is 0 (the adjoint of a cell that
/// weighs nothing) p may be undefined: such cells add exactly nothing.
#[inline(always)]
fn dot(v: &[f64], p: V) -> f64 {
    let mut acc = [0.0; 8];
    match p {
        V::S(s) => {
            let mut c = v.chunks_exact(8);
            for ch in &mut c {
                for k in 0..8 {
                    acc[k] += ch[k];
                }
            }
            let tail: f64 = c.remainder().iter().sum();
            if tail == 0.0 && acc.iter().all(|&a| a == 0.0) {
                return 0.0;
            }
            (acc.iter().sum::<f64>() + tail) * s
        }
        V::A(a) => {
            // Whole chunks of eight through fixed-size arrays: no bounds
            // checks, so the lanes vectorise.
            let a = &a[..v.len()];
            let (mut vc, mut ac) = (v.chunks_exact(8), a.chunks_exact(8));
            for (x8, a8) in (&mut vc).zip(&mut ac) {
                let x8: &[f64; 8] = x8.try_into().expect("a chunk of eight");
                let a8: &[f64; 8] = a8.try_into().expect("a chunk of eight");
                for k in 0..8 {
                    // The product formed unconditionally: with it inside
                    // the branch the lanes stayed scalar, with a jump each.
                    let q = x8[k] * a8[k];
                    acc[k] += if x8[k] != 0.0 { q } else { 0.0 };
                }
            }
            let tail: f64 = vc
                .remainder()
                .iter()
                .zip(ac.remainder())
                .map(|(&x, &q)| if x != 0.0 { x * q } else { 0.0 })
                .sum();
            acc.iter().sum::<f64>() + tail
        }
    }
}

/// out += v * p, cell by cell, with the same zero rule as [`dot`].
#[inline(always)]
fn axpy(out: &mut [f64], v: &[f64], p: V) {
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

/// Curves whose rows of a tile the separable loop handles together.
const ROWS: usize = 4;

/// `R` curves' rows of a tile for a separable law: prediction
/// `sa * u[j] + s[r]`, `fcol[j] +=` the objective's cells, `col[j] += sa *
/// sum_r g[r][j]` and each row's sum of g (returned), with g the seed
/// adjoint. `fcol` and `gbuf` are the caller's stack arrays: heap scratch
/// would leave the compiler unsure they do not overlap `col`, and it then
/// kept the loop scalar (1.8x slower, measured).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn fused_rows<const FMA: bool, const R: usize>(
    obj: Objective,
    u: &[f64],
    sa: f64,
    s: [f64; R],
    y: [&[f64]; R],
    w: [&[f64]; R],
    col: &mut [f64],
    fcol: &mut [f64; TILE],
    gbuf: &mut [f64; ROWS * TILE],
) -> [f64; R] {
    let d = obj.delta;
    match (obj.space, obj.loss) {
        (Space::Linear, LossKind::Mse) => {
            fused_impl::<FMA, false, false, R>(d, u, sa, s, y, w, col, fcol, gbuf)
        }
        (Space::Linear, LossKind::Huber) => {
            fused_impl::<FMA, false, true, R>(d, u, sa, s, y, w, col, fcol, gbuf)
        }
        (Space::Log, LossKind::Mse) => {
            fused_impl::<FMA, true, false, R>(d, u, sa, s, y, w, col, fcol, gbuf)
        }
        (Space::Log, LossKind::Huber) => {
            fused_impl::<FMA, true, true, R>(d, u, sa, s, y, w, col, fcol, gbuf)
        }
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn fused_impl<const FMA: bool, const LOG: bool, const HUBER: bool, const R: usize>(
    delta: f64,
    u: &[f64],
    sa: f64,
    s: [f64; R],
    y: [&[f64]; R],
    w: [&[f64]; R],
    col: &mut [f64],
    fcol: &mut [f64; TILE],
    gbuf: &mut [f64; ROWS * TILE],
) -> [f64; R] {
    let m = u.len();
    let col = &mut col[..m];
    let y: [&[f64]; R] = std::array::from_fn(|r| &y[r][..m]);
    let w: [&[f64]; R] = std::array::from_fn(|r| &w[r][..m]);
    // A plain map first (it vectorises), then the sums with lane
    // accumulators: a reduction inside the map kept the loop scalar (2.4x
    // slower, measured), as did lane accumulators across rows.
    if R == 4 {
        // Four rows spelled out: with a loop over the rows inside, the
        // compiler kept the cell loop scalar.
        let (y0, y1, y2, y3) = (y[0], y[1], y[2], y[3]);
        let (w0, w1, w2, w3) = (w[0], w[1], w[2], w[3]);
        let (g0, rest) = gbuf.split_at_mut(TILE);
        let (g1, rest) = rest.split_at_mut(TILE);
        let (g2, g3) = rest.split_at_mut(TILE);
        let (g0, g1, g2, g3) = (&mut g0[..m], &mut g1[..m], &mut g2[..m], &mut g3[..m]);
        let fb = &mut fcol[..m];
        for j in 0..m {
            let uj = sa * u[j];
            let (f0, a0) = cell_loss::<FMA, LOG, HUBER>(delta, uj + s[0], y0[j], w0[j]);
            let (f1, a1) = cell_loss::<FMA, LOG, HUBER>(delta, uj + s[1], y1[j], w1[j]);
            let (f2, a2) = cell_loss::<FMA, LOG, HUBER>(delta, uj + s[2], y2[j], w2[j]);
            let (f3, a3) = cell_loss::<FMA, LOG, HUBER>(delta, uj + s[3], y3[j], w3[j]);
            g0[j] = a0;
            g1[j] = a1;
            g2[j] = a2;
            g3[j] = a3;
            fb[j] += (f0 + f1) + (f2 + f3);
            col[j] += sa * ((a0 + a1) + (a2 + a3));
        }
    } else {
        for j in 0..m {
            let (mut fj, mut gj) = (0.0, 0.0);
            for r in 0..R {
                let p = mul_add::<FMA>(sa, u[j], s[r]);
                let (f, g) = cell_loss::<FMA, LOG, HUBER>(delta, p, y[r][j], w[r][j]);
                fj += f;
                gj += g;
                gbuf[r * TILE + j] = g;
            }
            fcol[j] += fj;
            col[j] += sa * gj;
        }
    }
    // A loop, not array::from_fn, whose closure would not be compiled
    // for the caller's instruction set.
    let mut sums = [0.0; R];
    for (r, t) in sums.iter_mut().enumerate() {
        *t = lane_sum(&gbuf[r * TILE..r * TILE + m]);
    }
    sums
}

/// w rho(r) and the seed w rho'(r) d r / d pred of one cell, both exactly
/// 0 where w is 0 (an empty cell, whose prediction may be anything).
#[inline(always)]
fn cell_loss<const FMA: bool, const LOG: bool, const HUBER: bool>(
    delta: f64,
    p: f64,
    y: f64,
    w: f64,
) -> (f64, f64) {
    let (r, dp) = if LOG {
        (ln::<FMA>(p) - y, 1.0 / p)
    } else {
        (p - y, 1.0)
    };
    let a = r.abs();
    let inside = !HUBER || a <= delta;
    let rho = if inside {
        0.5 * r * r
    } else {
        delta * (a - 0.5 * delta)
    };
    let dr = if inside { r } else { delta.copysign(r) };
    // An integer test: measurably faster than w != 0.0 in the loops.
    let keep = (w.to_bits() << 1) != 0;
    (
        if keep { w * rho } else { 0.0 },
        if keep { w * dr * dp } else { 0.0 },
    )
}

/// Sum with eight lane accumulators (vectorises; the order is fixed, so
/// results do not depend on the machine).
#[inline(always)]
fn lane_sum(v: &[f64]) -> f64 {
    let mut acc = [0.0; 8];
    let mut chunks = v.chunks_exact(8);
    for ch in &mut chunks {
        for k in 0..8 {
            acc[k] += ch[k];
        }
    }
    let tail: f64 = chunks.remainder().iter().sum();
    acc.iter().sum::<f64>() + tail
}

/// Objective of the tile row and the seed adjoint w * d rho / d pred per
/// cell (exactly 0 where w is 0, whatever the prediction there).
#[inline(always)]
fn loss_cells<const FMA: bool>(
    obj: Objective,
    pred: &[f64],
    y: &[f64],
    w: &[f64],
    seed: &mut [f64],
) -> f64 {
    let d = obj.delta;
    match (obj.space, obj.loss) {
        (Space::Linear, LossKind::Mse) => loss_impl::<FMA, false, false>(d, pred, y, w, seed),
        (Space::Linear, LossKind::Huber) => loss_impl::<FMA, false, true>(d, pred, y, w, seed),
        (Space::Log, LossKind::Mse) => loss_impl::<FMA, true, false>(d, pred, y, w, seed),
        (Space::Log, LossKind::Huber) => loss_impl::<FMA, true, true>(d, pred, y, w, seed),
    }
}

#[inline(always)]
fn loss_impl<const FMA: bool, const LOG: bool, const HUBER: bool>(
    delta: f64,
    pred: &[f64],
    y: &[f64],
    w: &[f64],
    seed: &mut [f64],
) -> f64 {
    let m = pred.len();
    let (y, w, seed) = (&y[..m], &w[..m], &mut seed[..m]);
    let mut fbuf = [0.0; TILE];
    for j in 0..m {
        let (f, g) = cell_loss::<FMA, LOG, HUBER>(delta, pred[j], y[j], w[j]);
        fbuf[j] = f;
        seed[j] = g;
    }
    lane_sum(&fbuf[..m])
}

/// Nodes `ids` as arrays of `len` values in `store` (node `id` at
/// `store[at[id]]`), operands start scalars, arrays of the same store, or
/// data nodes' values from `first` on; `each` sees every node's values
/// once computed.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn array_nodes<const FMA: bool>(
    cg: &CompiledGrid,
    ids: &[NodeId],
    at: &[usize],
    store: &mut [Vec<f64>],
    first: usize,
    len: usize,
    start: &[f64],
    params: &[f64],
    mut each: impl FnMut(NodeId, &[f64]),
) {
    let (graph, class) = (cg.plan.graph(), &cg.plan.class);
    for &id in ids {
        let s = at[id as usize];
        let mut out = std::mem::take(&mut store[s]);
        {
            let opnd = |o: NodeId| -> V {
                match class[o as usize] {
                    Class::Start => V::S(start[o as usize]),
                    Class::Data => V::A(&cg.data_of(o)[first..first + len]),
                    _ => V::A(&store[at[o as usize]][..len]),
                }
            };
            node_op::<FMA>(graph.node(id), &opnd, &mut out[..len], params);
        }
        each(id, &out[..len]);
        store[s] = out;
    }
}

/// One node over an array (a tile's axis values, or the curves): `opnd`
/// gives the operands.
#[inline(always)]
fn node_op<'a, const FMA: bool>(
    node: Node,
    opnd: &dyn Fn(NodeId) -> V<'a>,
    out: &mut [f64],
    params: &[f64],
) {
    match node {
        Node::Const(c) => out.fill(c),
        Node::Param(i) => out.fill(params[i as usize]),
        Node::Var(_) => unreachable!("variables are data nodes, read from the cache"),
        Node::Neg(a) => unary!(out, opnd(a), |x| -x),
        Node::Add(a, b) => binary!(out, opnd(a), opnd(b), |x, y| x + y),
        Node::Sub(a, b) => binary!(out, opnd(a), opnd(b), |x, y| x - y),
        Node::Mul(a, b) => binary!(out, opnd(a), opnd(b), |x, y| x * y),
        Node::Div(a, b) => binary!(out, opnd(a), opnd(b), |x, y| x / y),
        Node::Pow(a, b) => binary!(out, opnd(a), opnd(b), |x, y| pow::<FMA>(x, y)),
        Node::Exp(a) => unary!(out, opnd(a), |x| exp::<FMA>(x)),
        Node::Log(a) => unary!(out, opnd(a), |x| ln::<FMA>(x)),
        Node::Sqrt(a) => unary!(out, opnd(a), |x| x.sqrt()),
        Node::Min(a, b) => binary!(out, opnd(a), opnd(b), |x, y| x.min(y)),
        Node::Max(a, b) => binary!(out, opnd(a), opnd(b), |x, y| x.max(y)),
    }
}

/// ln with the standard library's values outside the fast path's domain
/// (0 -> -inf, negative -> NaN, inf -> inf), by selects.
#[inline(always)]
fn ln<const FMA: bool>(x: f64) -> f64 {
    let ok = (f64::MIN_POSITIVE..f64::INFINITY).contains(&x);
    let fast = fastmath::ln_recip::<FMA>(if ok { x } else { 1.0 }).0;
    if ok {
        fast
    } else if x == 0.0 {
        f64::NEG_INFINITY
    } else if x == f64::INFINITY {
        f64::INFINITY
    } else {
        f64::NAN
    }
}

#[inline(always)]
fn exp<const FMA: bool>(x: f64) -> f64 {
    let e = fastmath::exp::<FMA>(x);
    if x > 709.78 {
        f64::INFINITY
    } else if x < -745.2 {
        0.0
    } else {
        e
    }
}

/// x^y as exp(y ln |x|), with powf's values elsewhere: 0^y, and for a
/// negative base the signed power when y is an integer, else NaN.
#[inline(always)]
fn pow<const FMA: bool>(x: f64, y: f64) -> f64 {
    let e = exp::<FMA>(y * ln::<FMA>(x.abs()));
    let half = 0.5 * y;
    let integer = y == y.round();
    let odd = integer && half != half.round();
    if x > 0.0 {
        e
    } else if x == 0.0 {
        if y > 0.0 {
            0.0
        } else if y == 0.0 {
            1.0
        } else {
            f64::INFINITY
        }
    } else if integer {
        if odd {
            -e
        } else {
            e
        }
    } else {
        f64::NAN
    }
}
