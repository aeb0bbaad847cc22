//! The CPU evaluator of a compiled law's plan: objective and gradient for
//! many parameter vectors, in f64, in one of three layouts of the sweep
//! ([`CpuLayout`]).
//!
//! - The grid (curves x distinct axis values), for curves logged along a
//!   shared axis: start nodes once, curve nodes once per curve, axis nodes
//!   once per distinct axis value of a tile, and per grid cell only the
//!   point nodes, the loss and the adjoint sums.
//! - Points: each curve along its own points, in spans inside one curve:
//!   curve nodes once per curve, axis and point nodes per point. A law
//!   whose axis term is one power of the axis variable runs each span as
//!   one loop (see `power`).
//! - The table (one-point curves, no axis), for tabular data such as the
//!   final losses of many runs: every node is then a start or curve node,
//!   and a block of points is one pass per node forward, one for the
//!   loss, and one per curve edge backward.
//!
//! Data nodes (no parameter) are computed once, when the evaluator is
//! built; every start reads them. Starts run in batches: each tile (or
//! span, or block) is evaluated for every start of a batch before the
//! next, so that its targets, weights and data stay in cache. Each node
//! of a tile is one loop over its cells (operands are arrays or broadcast
//! scalars), branch-free so that it vectorises; the whole pass is compiled
//! for AVX-512, AVX2+FMA and plain SSE2 and picked at run time.
//!
//! Weightings (bootstrap replicates, eval folds: see `backend::weights`)
//! multiply each point's weight per start, filled per tile and reused by
//! the consecutive starts that share one.
//!
//! Here: the evaluator and the batched passes every layout shares;
//! `setup` its construction; `grid`, `points` (with `power`) the layouts'
//! own passes (the table runs the shared ones); `separable` the grid's
//! fused loop for laws separable along the axis; `gauss_newton` the
//! grid's Gauss-Newton moments for such laws (what least squares runs
//! on); `loss` the loss and the fixed-order sums; `weighted` the
//! weightings' per-point factors.

mod gauss_newton;
mod grid;
mod loss;
mod points;
mod power;
mod separable;
mod setup;
mod weighted;

use std::ops::Range;
use std::sync::Mutex;

use rayon::prelude::*;

use crate::backend::gauss_newton::Separable;
use crate::backend::weights::{point_hash, poisson1, Resolved, UNWEIGHTED};
use crate::fastmath::{exact_ln_recip as ln_recip, mul_add};
use crate::law::dag::{Node, NodeId};
use crate::law::diff::Edge;
use crate::law::ops::Func;
use crate::law::plan::{Class, Plan, Sweep};
use crate::law::vector::{node_op, V};
use crate::objective::{LossKind, Objective, Space};
use grid::*;
use loss::*;
use points::*;
use power::{Base, PowerTerm};
use separable::*;
use weighted::*;

/// Distinct axis values per tile (and points per block): the arrays of a
/// law with a few dozen nodes stay in L1/L2 while every curve passes over
/// them.
const TILE: usize = 256;

/// Per-start values (start nodes, curve arrays and their adjoints) a batch
/// of starts may hold: 256 KiB, so that they stay in L2 with a tile's
/// targets and weights.
const BATCH_VALUES: usize = 1 << 15;

/// Most starts in a batch: past a few, a tile's data is reused enough.
const MAX_BATCH: usize = 16;

/// Points per span of the point layout when the span is one fused loop
/// (see `power`): its targets, weights and data stay in L1/L2, and the
/// per-span sums cost little (1024 ran 4% slower, measured).
const FUSED_SPAN: usize = 2048;

/// Cells per group of spans (the unit of parallel work within a start):
/// enough that the per-group work (the curve nodes forward and back) stays
/// small beside the cells', few enough that a single start's evaluation
/// of a large sweep runs on every core.
const GROUP_CELLS: usize = 8_192;

/// Cells of a group per pass over its curves (see `group_cells`).
const CELLS_PER_PASS: usize = 1024;

/// Work items per thread to aim for: enough to even out unequal groups.
const ITEMS_PER_THREAD: usize = 4;

/// Most grid cells per point [`CpuLaw::new`] accepts: past it, the
/// empty cells cost more than evaluating axis nodes per point.
const GRID_FILL: f64 = 1.5;

/// A law's plan bound to a sweep in the grid or the point layout.
pub struct CpuLaw {
    plan: Plan,
    n_nodes: usize,
    n_curves: usize,
    /// The data nodes' values (see [`Plan::data`]), computed once here and
    /// read by every start: node `id`'s are `data[dslot[id]]`, one per
    /// curve, per distinct axis value or (on the grid, for nodes of both)
    /// per cell, by the node's level.
    data: Vec<Vec<f64>>,
    dslot: Vec<usize>,
    layout: CpuLayout,
    /// Curve-array slot of every curve-class node.
    cslot: Vec<usize>,
    n_cslots: usize,
    /// Targets and weights: on the grid one row of `n_axis` per curve, in
    /// the table one per curve, else one per point. An empty cell (or
    /// curve) has target NaN and weight 0.
    y: Vec<f64>,
    w: Vec<f64>,
    /// On the grid, each cell's position in its curve (u32::MAX where
    /// empty), which weightings depend on.
    pos: Vec<u32>,
    /// The grid's tiles or the point layout's spans, in evaluation order.
    spans: Vec<Span>,
    /// Consecutive spans (or, in the table, blocks of [`TILE`] curves)
    /// evaluated as one work item: the unit of parallel work within a
    /// start. Fixed by the data alone (see [`GROUP_CELLS`]).
    groups: Vec<Range<usize>>,
    /// Each curve's first point in the sweep: with a position, the key of
    /// a point's Poisson count.
    first_point: Vec<usize>,
    /// What the layout is, for reports.
    shape: String,
    /// The weightings registered through the evaluator interface.
    registered: Vec<Resolved>,
    /// Tile-array slot of every axis- and point-class node.
    slot: Vec<usize>,
    n_slots: usize,
    objective: Objective,
    /// Set when the per-point part is one sum of an axis term and a curve
    /// (or start) term: the cell loop is then fused (see [`Separable`]).
    separable: Option<Separable>,
    /// Set in the point layout when the separable law's axis term is one
    /// power of the axis variable: each span is then one loop.
    power: Option<PowerTerm>,
    /// Per node, how its class's pass evaluates it.
    fuse: Vec<Fuse>,
    /// The adjoint array of every curve, axis and point node: its own
    /// slot (`cslot` or `slot`), or that of the node whose adjoint it
    /// equals (see [`Step::Alias`]).
    aslot: Vec<usize>,
    /// Whether a node's adjoint array must start at zero: it accumulates.
    zero: Vec<bool>,
    /// Per class, the backward edges and how each applies.
    steps: [Vec<(Edge, Step)>; 4],
    /// Starts evaluated side by side (see [`BATCH_VALUES`]).
    batch: usize,
    /// Workspaces of earlier calls, for the next.
    pool: Mutex<Vec<Workspace>>,
    /// The same for the Gauss-Newton moments, and the sums of the sweep's
    /// own weights they use in linear space (see `gauss_newton`).
    gn_pool: Mutex<Vec<gauss_newton::Scratch>>,
    gn_fixed: std::sync::OnceLock<gauss_newton::FixedWeights>,
}

/// How the evaluator arranges a sweep's points (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuLayout {
    /// Curves x distinct values of the axis variable: axis nodes once per
    /// distinct value, shared by every curve.
    Grid,
    /// Each curve along its own points, in spans of at most [`TILE`]
    /// points inside one curve: curve nodes once per curve, axis and point
    /// nodes per point.
    Points,
    /// One point per curve (a table of final losses), run in blocks of
    /// [`TILE`] curves: every node is vectorised over the curves.
    Table,
}

impl CpuLayout {
    /// The layout [`CpuLaw::new`] gives `sweep`.
    pub fn of(sweep: &Sweep) -> CpuLayout {
        match sweep.axis {
            None if sweep.curves.iter().all(|r| r.len() <= 1) => CpuLayout::Table,
            // Only when some value is shared: else the grid is each curve's
            // points over again, without the point layout's fused loop.
            Some(a)
                if (sweep.curves.len() * sweep.axis_values.len()) as f64
                    <= GRID_FILL * sweep.points() as f64
                    && sweep.axis_values.len() < sweep.points()
                    && grid_cells(sweep, a as usize).is_ok() =>
            {
                CpuLayout::Grid
            }
            _ => CpuLayout::Points,
        }
    }
}

/// A run of cells that one pass of a tile covers: axis cells `a0..a0 + m`
/// (distinct axis values on the grid, points otherwise) for each curve of
/// `curves`, whose own cells start at `c * stride + base`.
#[derive(Debug, Clone)]
struct Span {
    a0: usize,
    m: usize,
    curves: Range<usize>,
    stride: usize,
    base: usize,
    /// Whether a cell weighs 0 (an empty grid cell, or a point of weight
    /// 0): fused loops must then keep it out even where the law is not
    /// finite there.
    zero: bool,
}

impl Span {
    /// Curve `c`'s cells.
    #[inline(always)]
    fn row(&self, c: usize) -> Range<usize> {
        let o = c * self.stride + self.base;
        o..o + self.m
    }
}

/// How a node is evaluated in its class's pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fuse {
    /// On its own.
    Alone,
    /// ln x and 1/x (the log's derivative) of one class, in one pass: the
    /// fast log forms the reciprocal on the way, so both cost one
    /// division. Set on whichever of the two comes first.
    LnRecip { ln: NodeId, recip: NodeId },
    /// Formed with the other of its pair.
    Done,
}

/// How a backward edge adds its part to its node's adjoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The node's only adjoint, through a partial of 1 (a sum's operand):
    /// the node reads its consumer's array, no pass at all.
    Alias,
    /// The node's only adjoint: one pass that writes, with no zeroed
    /// array to add into.
    Store,
    /// One of several parts: added into a zeroed array (or a start's
    /// scalar).
    Add,
}

/// Where an operand's values are, without borrowing them: a scalar, an
/// array of the pass's store (by slot), or a data column from an offset.
#[derive(Clone, Copy)]
enum Src {
    S(f64),
    Store(usize),
    Data(usize, usize),
}

impl CpuLaw {
    /// The layout in use.
    pub fn layout(&self) -> CpuLayout {
        self.layout
    }

    /// Parameters per vector.
    pub fn n_params(&self) -> usize {
        self.plan.n_params()
    }

    /// Whether each span of the point layout runs as one loop (the law's
    /// axis term is one power of the axis variable, see `power`).
    pub fn fused_power(&self) -> bool {
        self.power.is_some()
    }

    /// Objective and gradient for every parameter vector of `params`
    /// (`params.len() / n_params` of them), into `f` and `g` (row-major).
    pub fn evaluate(&self, params: &[f64], f: &mut [f64], g: &mut [f64]) {
        self.run(params, None, &[], f, g);
    }

    /// [`CpuLaw::evaluate`] with parameter vector k weighed by
    /// `weightings[which[k]]`, or by the sweep's own weights where
    /// `which[k]` is [`UNWEIGHTED`]. The weightings are resolved against
    /// this sweep's curves (see [`weights::resolve_curves`]); the
    /// [`Evaluator`](crate::backend::Evaluator) interface registers them
    /// instead, as the GPU must.
    pub fn evaluate_with(
        &self,
        params: &[f64],
        which: &[u32],
        weightings: &[Resolved],
        f: &mut [f64],
        g: &mut [f64],
    ) -> anyhow::Result<()> {
        let np = self.plan.n_params().max(1);
        anyhow::ensure!(
            which.len() == f.len() && params.len() == f.len() * np && g.len() == params.len(),
            "params, which, f and g differ in length"
        );
        crate::backend::weights::check_curves(weightings, self.n_curves)?;
        let (order, ps, ws) = by_weighting(params, which, np, weightings.len())?;
        let (mut fo, mut go) = (vec![0.0; f.len()], vec![0.0; g.len()]);
        self.run(&ps, Some(&ws), weightings, &mut fo, &mut go);
        for (j, &k) in order.iter().enumerate() {
            f[k] = fo[j];
            g[k * np..(k + 1) * np].copy_from_slice(&go[j * np..(j + 1) * np]);
        }
        Ok(())
    }

    /// Work items of (a chunk of starts, a group of spans), each chunk in
    /// batches; then per start the groups' sums added in group order and
    /// the start edges back, so that no value depends on the thread count
    /// or on the batch.
    fn run(
        &self,
        params: &[f64],
        which: Option<&[u32]>,
        resolved: &[Resolved],
        f: &mut [f64],
        g: &mut [f64],
    ) {
        let (np, n) = (self.plan.n_params().max(1), self.n_nodes);
        let k = f.len();
        if k == 0 {
            return;
        }
        let ng = self.groups.len();
        let threads = rayon::current_num_threads();
        // Enough items for every thread, split by starts as far as the
        // groups do not.
        let per = k.div_ceil((ITEMS_PER_THREAD * threads).div_ceil(ng).min(k));
        let chunks = k.div_ceil(per);
        // Chunk `c` of the starts over group `gi`: `emit` sees each start
        // (by index) when its batch is done.
        let item = |c: usize, gi: usize, emit: &mut dyn FnMut(usize, &mut StartState)| {
            // Workspaces outlive the call: allocating them took longer
            // than a small sweep's evaluation.
            let mut held = self.pool.lock().map(|mut p| p.pop()).ok().flatten();
            let ws = held.get_or_insert_with(|| Workspace::new(self));
            let starts = c * per..((c + 1) * per).min(k);
            for b in starts.clone().step_by(self.batch) {
                let e = (b + self.batch).min(starts.end);
                let wt = Weights {
                    which: which.map(|w| &w[b..e]),
                    resolved,
                };
                dispatch(self, &params[b * np..e * np], gi, ws, wt);
                for (j, st) in ws.starts[..e - b].iter_mut().enumerate() {
                    emit(b + j, st);
                }
            }
            if let (Ok(mut p), Some(ws)) = (self.pool.lock(), held.take()) {
                p.push(ws);
            }
        };
        if ng == 1 {
            // One group (most sweeps): each item finishes its own starts.
            f.par_chunks_mut(per)
                .zip(g.par_chunks_mut(per * np))
                .enumerate()
                .for_each(|(c, (fc, gc))| {
                    item(c, 0, &mut |j, st| {
                        let l = j - c * per;
                        fc[l] = st.f;
                        self.finish(&st.start, &mut st.start_adj, &mut gc[l * np..(l + 1) * np]);
                    })
                });
            return;
        }
        let parts: Vec<Vec<f64>> = (0..ng * chunks)
            .into_par_iter()
            .map(|i| {
                let mut out = Vec::with_capacity(per * (1 + n));
                item(i % chunks, i / chunks, &mut |_, st| {
                    out.push(st.f);
                    out.extend_from_slice(&st.start_adj);
                });
                out
            })
            .collect();
        let plan = &self.plan;
        let graph = plan.graph();
        let reduce = |j: usize, f: &mut f64, grad: &mut [f64], p: &[f64]| {
            let (c, at) = (j / per, (j % per) * (1 + n));
            let (mut fs, mut adj) = (0.0, vec![0.0; n]);
            for gi in 0..ng {
                let part = &parts[gi * chunks + c][at..at + 1 + n];
                fs += part[0];
                for (a, v) in adj.iter_mut().zip(&part[1..]) {
                    *a += v;
                }
            }
            let mut start = vec![0.0; n];
            for &id in &plan.forward[Class::Start as usize] {
                start[id as usize] = graph
                    .node(id)
                    .eval(&|o| start[o as usize], &|_| f64::NAN, p);
            }
            self.finish(&start, &mut adj, grad);
            *f = fs;
        };
        let each = f.iter_mut().zip(g.chunks_mut(np)).zip(params.chunks(np));
        if k < 64 {
            // Another parallel region costs more than a few starts' sums.
            each.enumerate()
                .for_each(|(j, ((f, grad), p))| reduce(j, f, grad, p));
        } else {
            f.par_iter_mut()
                .zip(g.par_chunks_mut(np))
                .zip(params.par_chunks(np))
                .enumerate()
                .for_each(|(j, ((f, grad), p))| reduce(j, f, grad, p));
        }
    }

    /// The start edges back from the start adjoints `adj` (start values
    /// `start`), and the gradient into `grad`.
    fn finish(&self, start: &[f64], adj: &mut [f64], grad: &mut [f64]) {
        let plan = &self.plan;
        for e in &plan.edges[Class::Start as usize] {
            let a = adj[e.from as usize];
            if a != 0.0 {
                adj[e.to as usize] += a * start[e.partial as usize];
            }
        }
        for (gk, id) in grad.iter_mut().zip(plan.param_nodes()) {
            *gk = id.map_or(0.0, |id| adj[id as usize]);
        }
    }

    /// Data node `o` over curve `c`'s cells of `span`: a scalar for a
    /// curve-level node, else an array.
    #[inline(always)]
    fn row_data(&self, o: NodeId, c: usize, span: &Span) -> Src {
        let (s, d) = (self.dslot[o as usize], self.data_of(o));
        match self.plan.level[o as usize] {
            Class::Curve => Src::S(d[c]),
            Class::Axis => Src::Data(s, span.a0),
            _ => Src::Data(s, span.row(c).start),
        }
    }

    /// The cached values of data node `id` (see `data`).
    #[inline(always)]
    fn data_of(&self, id: NodeId) -> &[f64] {
        &self.data[self.dslot[id as usize]]
    }

    /// `src`'s values over `len` cells.
    #[inline(always)]
    fn resolve<'a>(&'a self, src: Src, store: &'a [Vec<f64>], len: usize) -> V<'a> {
        match src {
            Src::S(x) => V::S(x),
            Src::Store(s) => V::A(&store[s][..len]),
            Src::Data(s, first) => V::A(&self.data[s][first..first + len]),
        }
    }
}

/// One start's values that live across the tiles (or blocks) of a batch.
struct StartState {
    start: Vec<f64>,
    start_adj: Vec<f64>,
    /// On the grid, curve nodes' values and adjoints as arrays over all
    /// curves (slot `cslot[id]`): every curve edge is then one vectorised
    /// pass.
    cvals: Vec<Vec<f64>>,
    cadj: Vec<Vec<f64>>,
    /// On the grid of a separable law, each curve's sum of seed adjoints
    /// over the tiles so far, in eight lanes: added up once, after the
    /// last tile, rather than once per tile.
    rsum: Vec<[f64; 8]>,
    /// The first curve of `cvals`, `cadj` and `rsum`: the group's.
    c0: usize,
    /// The objective so far.
    f: f64,
}

/// Per-thread arrays, reused across batches.
struct Workspace {
    starts: Vec<StartState>,
    /// Tile arrays of the axis and point nodes and their adjoints, of the
    /// start being evaluated.
    vals: Vec<Vec<f64>>,
    adj: Vec<Vec<f64>>,
    /// In the point layout, a block's curve arrays, of the start being
    /// evaluated.
    cvals: Vec<Vec<f64>>,
    cadj: Vec<Vec<f64>>,
    seed: Vec<f64>,
    row_pred: Vec<f64>,
    eff: Effective,
    /// A fused power term's arrays over a grid tile (see `power`).
    pv: [Vec<f64>; 3],
}

impl Workspace {
    fn new(cg: &CpuLaw) -> Workspace {
        let n = cg.n_nodes;
        let (held, block) = match cg.layout {
            CpuLayout::Grid | CpuLayout::Points => (cg.n_curves, 0),
            CpuLayout::Table => (0, cg.n_curves.min(TILE)),
        };
        Workspace {
            starts: (0..cg.batch)
                .map(|_| StartState {
                    start: vec![0.0; n],
                    start_adj: vec![0.0; n],
                    cvals: vec![vec![0.0; held]; cg.n_cslots],
                    cadj: vec![vec![0.0; held]; cg.n_cslots],
                    rsum: vec![[0.0; 8]; if cg.separable.is_some() { held } else { 0 }],
                    c0: 0,
                    f: 0.0,
                })
                .collect(),
            vals: vec![vec![0.0; TILE]; cg.n_slots],
            adj: vec![vec![0.0; TILE]; cg.n_slots],
            cvals: vec![vec![0.0; block]; cg.n_cslots],
            cadj: vec![vec![0.0; block]; cg.n_cslots],
            seed: vec![0.0; TILE],
            row_pred: vec![0.0; TILE],
            eff: Effective::default(),
            pv: std::array::from_fn(|_| vec![0.0; TILE]),
        }
    }
}

/// The batch of parameter vectors `p` over group `group`: each start's
/// objective and start adjoints left in `ws.starts`.
fn dispatch(cg: &CpuLaw, p: &[f64], group: usize, ws: &mut Workspace, wt: Weights) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports the features the function enables.
            return unsafe { batch_avx512(cg, p, group, ws, wt) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: as above.
            return unsafe { batch_avx2(cg, p, group, ws, wt) };
        }
    }
    batch::<false>(cg, p, group, ws, wt)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn batch_avx512(cg: &CpuLaw, p: &[f64], group: usize, ws: &mut Workspace, wt: Weights) {
    batch::<true>(cg, p, group, ws, wt)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn batch_avx2(cg: &CpuLaw, p: &[f64], group: usize, ws: &mut Workspace, wt: Weights) {
    batch::<true>(cg, p, group, ws, wt)
}

/// A batch of starts: each one's start nodes, then the layout's passes
/// (tile by tile, every start of the batch on a tile before the next),
/// then each one's start edges back to its gradient.
#[inline(always)]
fn batch<const FMA: bool>(
    cg: &CpuLaw,
    params: &[f64],
    group: usize,
    ws: &mut Workspace,
    wt: Weights,
) {
    let plan = &cg.plan;
    let graph = plan.graph();
    let np = plan.n_params().max(1);
    let k = params.len() / np;
    for (st, p) in ws.starts[..k].iter_mut().zip(params.chunks(np)) {
        let start = &mut st.start;
        for &id in &plan.forward[Class::Start as usize] {
            let x = graph
                .node(id)
                .eval(&|o| start[o as usize], &|_| f64::NAN, p);
            start[id as usize] = x;
        }
        st.start_adj.fill(0.0);
        st.f = 0.0;
    }
    match cg.layout {
        CpuLayout::Grid | CpuLayout::Points => grid_batch::<FMA>(cg, params, group, k, ws, wt),
        CpuLayout::Table => point_batch::<FMA>(cg, params, group, k, ws, wt),
    }
}

/// Node `id` of a pass over `len` cells into `store[at[id]]` (with its
/// fused partner, see [`Fuse`]), operands where `src` says; `each` sees
/// every node formed.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn run_node<const FMA: bool>(
    cg: &CpuLaw,
    id: NodeId,
    at: &[usize],
    store: &mut [Vec<f64>],
    len: usize,
    params: &[f64],
    src: &dyn Fn(NodeId) -> Src,
    mut each: impl FnMut(NodeId),
) {
    let graph = cg.plan.graph();
    match cg.fuse[id as usize] {
        Fuse::Done => {}
        Fuse::LnRecip { ln, recip } => {
            let Node::Fn1(Func::Log, x) = graph.node(ln) else {
                unreachable!("a fused log")
            };
            let mut lo = std::mem::take(&mut store[at[ln as usize]]);
            let mut ro = std::mem::take(&mut store[at[recip as usize]]);
            {
                let (lo, ro) = (&mut lo[..len], &mut ro[..len]);
                match cg.resolve(src(x), store, len) {
                    V::S(x) => {
                        let (l, r) = ln_recip::<FMA>(x);
                        lo.fill(l);
                        ro.fill(r);
                    }
                    V::A(x) => {
                        for ((l, r), &x) in lo.iter_mut().zip(ro.iter_mut()).zip(x) {
                            (*l, *r) = ln_recip::<FMA>(x);
                        }
                    }
                }
            }
            store[at[ln as usize]] = lo;
            store[at[recip as usize]] = ro;
            each(ln);
            each(recip);
        }
        Fuse::Alone => {
            let s = at[id as usize];
            let mut out = std::mem::take(&mut store[s]);
            {
                let opnd = |o: NodeId| cg.resolve(src(o), store, len);
                node_op::<FMA>(graph.node(id), &opnd, &mut out[..len], params);
            }
            store[s] = out;
            each(id);
        }
    }
}

/// The nodes of `class` (per curve, or per axis value) over `m` cells from
/// `first` (vectorised, with the fast transcendentals) into `vals` at the
/// class's slots, the adjoints that accumulate zeroed: one forward pass
/// for the curves and for a tile's axis values.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn class_forward<const FMA: bool>(
    cg: &CpuLaw,
    class: Class,
    first: usize,
    m: usize,
    params: &[f64],
    start: &[f64],
    vals: &mut [Vec<f64>],
    adj: &mut [Vec<f64>],
) {
    let slots = if class == Class::Curve {
        &cg.cslot
    } else {
        &cg.slot
    };
    let classes = &cg.plan.class;
    let src = |o: NodeId| match classes[o as usize] {
        Class::Start => Src::S(start[o as usize]),
        Class::Data => Src::Data(cg.dslot[o as usize], first),
        _ => Src::Store(slots[o as usize]),
    };
    for &id in &cg.plan.forward[class as usize] {
        run_node::<FMA>(cg, id, slots, vals, m, params, &src, |id| {
            if cg.zero[id as usize] {
                adj[cg.aslot[id as usize]][..m].fill(0.0);
            }
        });
    }
}

/// Where a backward pass's edges into start nodes go.
enum IntoStart<'a> {
    /// Summed over the cells into the start adjoints: the gradient.
    Sum(&'a mut [f64]),
    /// Kept per cell, in `jac[index[node]]`: the Jacobian columns of the
    /// Gauss-Newton moments (see `gauss_newton`).
    PerCell {
        jac: &'a mut [Vec<f64>],
        index: &'a [usize],
    },
}

/// Backward along the edges of a hoisted class (curve nodes over curves
/// `off..off + m`, or axis nodes over a tile's axis values), each edge one
/// pass over them; `vals` and `slot` hold the class's node arrays.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn class_backward(
    cg: &CpuLaw,
    cls: Class,
    off: usize,
    m: usize,
    start: &[f64],
    mut into: IntoStart,
    vals: &[Vec<f64>],
    slot: &[usize],
    adj: &mut [Vec<f64>],
) {
    let class = &cg.plan.class;
    for &(e, step) in &cg.steps[cls as usize] {
        if step == Step::Alias {
            continue;
        }
        let af = cg.aslot[e.from as usize];
        let from = std::mem::take(&mut adj[af]);
        let p = match class[e.partial as usize] {
            Class::Start => V::S(start[e.partial as usize]),
            Class::Data => V::A(&cg.data_of(e.partial)[off..off + m]),
            _ => V::A(&vals[slot[e.partial as usize]][..m]),
        };
        let to = e.to as usize;
        match (class[to], step, &mut into) {
            (Class::Start, _, IntoStart::Sum(start_adj)) => start_adj[to] += dot(&from[..m], p),
            (Class::Start, _, IntoStart::PerCell { jac, index }) => {
                axpy(&mut jac[index[to]][..m], &from[..m], p)
            }
            (_, Step::Store, _) => assign(&mut adj[cg.aslot[to]][..m], &from[..m], p),
            _ => axpy(&mut adj[cg.aslot[to]][..m], &from[..m], p),
        }
        adj[af] = from;
    }
}

impl crate::backend::Evaluator for CpuLaw {
    fn n_params(&self) -> usize {
        CpuLaw::n_params(self)
    }

    fn describe(&self) -> String {
        format!(
            "{} threads, f64, {}",
            rayon::current_num_threads(),
            self.shape
        )
    }

    fn evaluate(&mut self, params: &[f64], f: &mut [f64], g: &mut [f64]) -> anyhow::Result<()> {
        let np = self.n_params().max(1);
        anyhow::ensure!(
            params.len() == f.len() * np && g.len() == params.len(),
            "params, f and g differ in length"
        );
        CpuLaw::evaluate(self, params, f, g);
        Ok(())
    }

    fn set_weightings(&mut self, weightings: &[Resolved]) -> anyhow::Result<()> {
        crate::backend::weights::check_curves(weightings, self.n_curves)?;
        self.registered = weightings.to_vec();
        Ok(())
    }

    fn evaluate_weighted(
        &mut self,
        params: &[f64],
        which: &[u32],
        f: &mut [f64],
        g: &mut [f64],
    ) -> anyhow::Result<()> {
        self.evaluate_with(params, which, &self.registered, f, g)
    }
}
