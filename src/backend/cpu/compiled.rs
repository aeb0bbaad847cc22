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

mod power;

use std::ops::Range;
use std::sync::Mutex;

use rayon::prelude::*;

use super::node::node_op;
use crate::backend::fastmath::{exact_ln_recip as ln_recip, mul_add};
use crate::backend::vector::V;
use crate::backend::weights::{point_hash, poisson1, Resolved, UNWEIGHTED};
use crate::law::dag::{Node, NodeId};
use crate::law::diff::Edge;
use crate::law::plan::{Class, Plan, Sweep};
use crate::objective::{LossKind, Objective, Space};
use power::{Base, PowerTerm};

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

/// A law whose prediction per cell is `sa * u[d] + sc * s[curve]` (any law
/// of the form f(curve variables) + g(axis variable), such as LoopLM and
/// Chinchilla): prediction, loss and both adjoint sums are one loop over
/// the cells instead of a pass per node.
/// Either term may be a data node (no parameter), which then has no
/// adjoint.
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
        // By level: an axis term with or without parameters, and a term
        // constant along each curve.
        let level = |id: NodeId| plan.level[id as usize];
        let (axis_node, axis_sign, scalar_node, scalar_sign) = match (level(a), level(b)) {
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

/// Where an operand's values are, without borrowing them: a scalar, an
/// array of the pass's store (by slot), or a data column from an offset.
#[derive(Clone, Copy)]
enum Src {
    S(f64),
    Store(usize),
    Data(usize, usize),
}

impl CpuLaw {
    /// `plan` bound to `sweep` in the layout that suits it: without an
    /// axis and with one point per curve, the table; with an axis whose
    /// values the curves share densely (a grid at most [`GRID_FILL`] times
    /// the points, and fewer distinct values than points), the grid; else
    /// each curve along its own points.
    pub fn new(plan: Plan, sweep: &Sweep, objective: Objective) -> Result<CpuLaw, String> {
        CpuLaw::with_layout(plan, sweep, objective, CpuLayout::of(sweep))
    }

    /// `plan` bound to `sweep` in `layout`, or why that layout cannot hold
    /// it. The grid needs an axis, no per-point variable other than it,
    /// and no curve with two points at one axis value; the table needs one
    /// point per curve (every node is then a start or curve node). The
    /// point layout takes any sweep.
    pub fn with_layout(
        plan: Plan,
        sweep: &Sweep,
        objective: Objective,
        layout: CpuLayout,
    ) -> Result<CpuLaw, String> {
        let nc = sweep.curves.len();
        let na = sweep.axis_values.len();
        let separable = Separable::detect(&plan);
        let power = separable
            .as_ref()
            .and_then(|s| PowerTerm::detect(&plan, s, layout));
        let mut pos = Vec::new();
        let (y, w, spans) = match layout {
            CpuLayout::Grid => {
                let a = sweep
                    .axis
                    .ok_or("the grid layout needs an axis variable, and the sweep has none")?;
                let (y, w) = grid_cells(sweep, a as usize)?;
                pos = vec![u32::MAX; nc * na];
                for (c, r) in sweep.curves.iter().enumerate() {
                    for i in r.clone() {
                        pos[c * na + sweep.axis_index[i] as usize] = (i - r.start) as u32;
                    }
                }
                let spans = (0..na)
                    .step_by(TILE)
                    .map(|a0| {
                        let m = TILE.min(na - a0);
                        Span {
                            a0,
                            m,
                            curves: 0..nc,
                            stride: na,
                            base: a0,
                            zero: (0..nc).any(|c| w[c * na + a0..][..m].contains(&0.0)),
                        }
                    })
                    .collect();
                (y, w, spans)
            }
            CpuLayout::Points => {
                // A fused span keeps no arrays: longer spans only save
                // per-span work.
                let len = if power.is_some() { FUSED_SPAN } else { TILE };
                let mut spans = Vec::new();
                for (c, r) in sweep.curves.iter().enumerate() {
                    for a0 in r.clone().step_by(len) {
                        let m = len.min(r.end - a0);
                        spans.push(Span {
                            a0,
                            m,
                            curves: c..c + 1,
                            stride: 0,
                            base: a0,
                            zero: sweep.w[a0..a0 + m].contains(&0.0),
                        });
                    }
                }
                (sweep.y.clone(), sweep.w.clone(), spans)
            }
            CpuLayout::Table => {
                let (y, w) = point_cells(sweep, &plan)?;
                (y, w, Vec::new())
            }
        };
        if sweep.curves.iter().any(|r| r.len() >= u32::MAX as usize) {
            return Err("a curve has 2^32 - 1 points or more".into());
        }
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
        let fuse = fuse_ln_recip(&plan);
        let (aslot, zero, steps) = adjoint_plan(&plan, &cslot, &slot, layout);
        // What a start keeps between tiles: start values and adjoints, and
        // on the grid its curve arrays and their adjoints.
        let per_start = 2 * n_nodes
            + match layout {
                CpuLayout::Grid | CpuLayout::Points => (2 * n_cslots + 8) * nc,
                CpuLayout::Table => 0,
            };
        let batch = (BATCH_VALUES / per_start.max(1)).clamp(1, MAX_BATCH);
        let target = group_cells(&plan);
        let shape = match layout {
            CpuLayout::Grid => format!(
                "shared axis grid ({nc} curves x {} values)",
                sweep.axis_values.len()
            ),
            CpuLayout::Points => format!("point layout ({} points)", sweep.points()),
            CpuLayout::Table => format!("table layout ({} rows)", sweep.points()),
        };
        Ok(CpuLaw {
            plan,
            n_nodes,
            n_curves: nc,
            data,
            dslot,
            layout,
            cslot,
            n_cslots,
            y,
            w,
            pos,
            groups: groups(layout, &spans, nc, target),
            spans,
            first_point: sweep.curves.iter().map(|r| r.start).collect(),
            shape,
            registered: Vec::new(),
            slot,
            n_slots,
            objective,
            separable,
            power,
            fuse,
            aslot,
            zero,
            steps,
            batch,
            pool: Mutex::new(Vec::new()),
        })
    }

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
        let n = weightings.len();
        if let Some(k) = which.iter().find(|&&k| k != UNWEIGHTED && k as usize >= n) {
            anyhow::bail!("weighting index {k} is out of range: there are {n} weightings");
        }
        if let Some(r) = weightings
            .iter()
            .find(|r| r.mult.len() != self.n_curves || r.first.len() != self.n_curves)
        {
            anyhow::bail!(
                "a weighting of {} curves for a sweep of {}",
                r.mult.len(),
                self.n_curves
            );
        }
        // Starts that share a weighting side by side, so that a span's
        // weights are filled once for all of them. A start's value does
        // not depend on the others in its batch, so the order changes no
        // bits.
        let mut order: Vec<usize> = (0..f.len()).collect();
        order.sort_by_key(|&k| which[k]);
        let ps: Vec<f64> = order
            .iter()
            .flat_map(|&k| params[k * np..(k + 1) * np].iter().copied())
            .collect();
        let ws: Vec<u32> = order.iter().map(|&k| which[k]).collect();
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

/// Cells per group for `plan`: at least [`GROUP_CELLS`], and enough that
/// each group's passes over its curves (forward and back, a fixed cost
/// per pass however few the curves) stay small beside its cells.
fn group_cells(plan: &Plan) -> usize {
    let passes =
        plan.forward[Class::Curve as usize].len() + plan.edges[Class::Curve as usize].len();
    GROUP_CELLS.max(CELLS_PER_PASS * passes)
}

/// Consecutive spans (table: blocks) of about `target` cells each; one
/// (empty) group for an empty sweep.
fn groups(layout: CpuLayout, spans: &[Span], nc: usize, target: usize) -> Vec<Range<usize>> {
    let sizes: Vec<usize> = match layout {
        CpuLayout::Table => (0..nc).step_by(TILE).map(|c0| TILE.min(nc - c0)).collect(),
        _ => spans.iter().map(|s| s.m * s.curves.len()).collect(),
    };
    let mut groups = Vec::new();
    let (mut first, mut cells) = (0, 0);
    for (i, &n) in sizes.iter().enumerate() {
        cells += n;
        if cells >= target {
            groups.push(first..i + 1);
            (first, cells) = (i + 1, 0);
        }
    }
    if first < sizes.len() || groups.is_empty() {
        groups.push(first..sizes.len());
    }
    groups
}

/// Where each node's adjoint lives, which adjoints start at zero, and how
/// each backward edge applies (see [`Step`]). A node's adjoint that comes
/// from one edge of its own class alone is formed by that edge (or is its
/// consumer's); every other one accumulates into a zeroed array.
#[allow(clippy::type_complexity)]
fn adjoint_plan(
    plan: &Plan,
    cslot: &[usize],
    slot: &[usize],
    layout: CpuLayout,
) -> (Vec<usize>, Vec<bool>, [Vec<(Edge, Step)>; 4]) {
    let g = plan.graph();
    let class = &plan.class;
    let value = plan.value();
    let mut incoming = vec![0usize; g.len()];
    for e in plan.edges.iter().flatten() {
        incoming[e.to as usize] += 1;
    }
    let mut aslot: Vec<usize> = (0..g.len())
        .map(|i| match class[i] {
            Class::Curve => cslot[i],
            Class::Axis | Class::Point => slot[i],
            _ => usize::MAX,
        })
        .collect();
    let mut zero: Vec<bool> = incoming.iter().map(|&k| k > 0).collect();
    // The prediction's adjoint is the seed: written by the loss in the
    // point layout, added on the grid.
    zero[value as usize] = layout != CpuLayout::Table && class[value as usize] != Class::Data;
    let mut steps: [Vec<(Edge, Step)>; 4] = Default::default();
    for k in [Class::Curve, Class::Axis, Class::Point] {
        for &e in &plan.edges[k as usize] {
            let (to, from) = (e.to as usize, e.from as usize);
            let step = if class[to] == k && incoming[to] == 1 {
                if g.constant(e.partial) == Some(1.0) {
                    aslot[to] = aslot[from];
                    Step::Alias
                } else {
                    Step::Store
                }
            } else {
                Step::Add
            };
            if step != Step::Add {
                zero[to] = false;
            }
            steps[k as usize].push((e, step));
        }
    }
    (aslot, zero, steps)
}

/// Log and reciprocal pairs to evaluate together (see [`Fuse`]).
fn fuse_ln_recip(plan: &Plan) -> Vec<Fuse> {
    let g = plan.graph();
    let mut fuse = vec![Fuse::Alone; g.len()];
    for c in [Class::Curve, Class::Axis, Class::Point] {
        let ids = &plan.forward[c as usize];
        for &ln in ids {
            let Node::Log(x) = g.node(ln) else { continue };
            let recip = ids.iter().copied().find(|&r| match g.node(r) {
                Node::Div(one, d) => d == x && g.constant(one) == Some(1.0),
                _ => false,
            });
            if let Some(recip) = recip {
                // Forward lists are in topological (index) order.
                let (first, second) = (ln.min(recip), ln.max(recip));
                fuse[first as usize] = Fuse::LnRecip { ln, recip };
                fuse[second as usize] = Fuse::Done;
            }
        }
    }
    fuse
}

/// The data nodes' values as columns (one per node, with the node's slot
/// in them): per curve, per distinct axis value, or per grid cell (NaN in
/// empty cells) by the node's level.
fn data_columns(
    plan: &Plan,
    sweep: &Sweep,
    layout: CpuLayout,
) -> Result<(Vec<Vec<f64>>, Vec<usize>), String> {
    let dv = plan.data(sweep, None);
    let (nc, na) = (sweep.curves.len(), sweep.axis_values.len());
    let mut dslot = vec![usize::MAX; plan.graph().len()];
    let mut cols = Vec::new();
    for &id in &plan.forward[Class::Data as usize] {
        let col = match (layout, plan.level[id as usize]) {
            (_, Class::Curve) => (0..nc).map(|c| dv.get(Class::Curve, c, id)).collect(),
            (CpuLayout::Grid, Class::Axis) => (0..na).map(|a| dv.get(Class::Axis, a, id)).collect(),
            (CpuLayout::Grid, _) => {
                let mut col = vec![f64::NAN; nc * na];
                for (c, r) in sweep.curves.iter().enumerate() {
                    for i in r.clone() {
                        col[c * na + sweep.axis_index[i] as usize] = dv.get(Class::Point, i, id);
                    }
                }
                col
            }
            (CpuLayout::Points, Class::Axis) => (0..sweep.points())
                .map(|i| dv.get(Class::Axis, sweep.axis_index[i] as usize, id))
                .collect(),
            (CpuLayout::Points, _) => (0..sweep.points())
                .map(|i| dv.get(Class::Point, i, id))
                .collect(),
            // Only a plan made for another sweep could have them.
            (CpuLayout::Table, _) => {
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

/// A span's (or block's) effective weights under one weighting, one row of
/// the span's length per curve: filled when a start of another weighting
/// (or span) comes, reused by the starts after it.
#[derive(Default)]
struct Effective {
    w: Vec<f64>,
    /// (span, weighting) of `w`.
    filled: Option<(usize, u32)>,
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

impl Effective {
    /// The effective weights of span `si` (or the table's block `si`)
    /// under weighting `k`, filled unless they already are.
    #[inline(always)]
    fn get(&mut self, cg: &CpuLaw, si: usize, k: u32, r: &Resolved) -> &[f64] {
        if self.filled != Some((si, k)) {
            match cg.layout {
                CpuLayout::Table => {
                    let c0 = si * TILE;
                    let m = TILE.min(cg.n_curves - c0);
                    self.w.resize(m, 0.0);
                    for (j, e) in self.w.iter_mut().enumerate() {
                        let c = c0 + j;
                        *e = cg.w[c] * factor(r, c, 0, cg.first_point[c]);
                    }
                }
                _ => fill_span(cg, &cg.spans[si], r, &mut self.w),
            }
            self.filled = Some((si, k));
        }
        &self.w
    }
}

/// The factor weighting `r` gives point `pos` of curve `c`, whose first
/// point is `first`: the same products, in the same order, as
/// [`Resolved::factor`].
#[inline(always)]
fn factor(r: &Resolved, c: usize, pos: u32, first: usize) -> f64 {
    if pos >= r.first[c] {
        return 0.0;
    }
    match r.poisson {
        Some(s) => r.mult[c] * poisson1(point_hash(s, (first as u32).wrapping_add(pos))) as f64,
        None => r.mult[c],
    }
}

/// Effective weights of `span`'s cells under `r` into `out`, one row of
/// `span.m` per curve. Empty grid cells have position u32::MAX, never
/// below a limit, so they get 0. Inlined into the instruction-set-specific
/// pass, and branch-free per cell, so that it vectorises.
#[inline(always)]
fn fill_span(cg: &CpuLaw, span: &Span, r: &Resolved, out: &mut Vec<f64>) {
    let m = span.m;
    out.resize(span.curves.len() * m, 0.0);
    for (row, c) in span.curves.clone().enumerate() {
        let out = &mut out[row * m..(row + 1) * m];
        let cells = span.row(c);
        let (mult, limit, first) = (r.mult[c], r.first[c], cg.first_point[c] as u32);
        if mult == 0.0 || limit == 0 {
            out.fill(0.0);
            continue;
        }
        let w = &cg.w[cells.clone()];
        // Positions: the grid's per cell, else consecutive. One loop per
        // case, each branch-free so that it vectorises.
        match (cg.layout, r.poisson) {
            (CpuLayout::Grid, None) => {
                let pos = &cg.pos[cells];
                for j in 0..m {
                    out[j] = if pos[j] < limit { w[j] * mult } else { 0.0 };
                }
            }
            (CpuLayout::Grid, Some(s)) => {
                let pos = &cg.pos[cells];
                for j in 0..m {
                    let k = poisson1(point_hash(s, first.wrapping_add(pos[j])));
                    out[j] = if pos[j] < limit {
                        w[j] * (mult * k as f64)
                    } else {
                        0.0
                    };
                }
            }
            (_, None) => {
                let p0 = cells.start as u32 - first;
                for j in 0..m {
                    out[j] = if p0 + (j as u32) < limit {
                        w[j] * mult
                    } else {
                        0.0
                    };
                }
            }
            (_, Some(s)) => {
                let p0 = cells.start as u32 - first;
                for j in 0..m {
                    let p = p0 + j as u32;
                    let k = poisson1(point_hash(s, first.wrapping_add(p)));
                    out[j] = if p < limit {
                        w[j] * (mult * k as f64)
                    } else {
                        0.0
                    };
                }
            }
        }
    }
}

/// The weighting of each start of a batch.
#[derive(Clone, Copy)]
struct Weights<'a> {
    /// Per start, an index into `resolved` or UNWEIGHTED; None when every
    /// start has the sweep's own weights.
    which: Option<&'a [u32]>,
    resolved: &'a [Resolved],
}

impl Weights<'_> {
    /// Start `j`'s weighting with its index, None for the sweep's own.
    #[inline(always)]
    fn get(&self, j: usize) -> Option<(u32, &Resolved)> {
        let k = self.which?[j];
        (k != UNWEIGHTED).then(|| (k, &self.resolved[k as usize]))
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
            let Node::Log(x) = graph.node(ln) else {
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

/// The curve nodes of curves `c0..c0 + m` as arrays (vectorised, with the
/// fast transcendentals) into `cvals`, their adjoints in `cadj` zeroed.
#[inline(always)]
fn curve_forward<const FMA: bool>(
    cg: &CpuLaw,
    c0: usize,
    m: usize,
    params: &[f64],
    start: &[f64],
    cvals: &mut [Vec<f64>],
    cadj: &mut [Vec<f64>],
) {
    let class = &cg.plan.class;
    let src = |o: NodeId| match class[o as usize] {
        Class::Start => Src::S(start[o as usize]),
        Class::Data => Src::Data(cg.dslot[o as usize], c0),
        _ => Src::Store(cg.cslot[o as usize]),
    };
    for &id in &cg.plan.forward[Class::Curve as usize] {
        run_node::<FMA>(cg, id, &cg.cslot, cvals, m, params, &src, |id| {
            if cg.zero[id as usize] {
                cadj[cg.aslot[id as usize]][..m].fill(0.0);
            }
        });
    }
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
    start_adj: &mut [f64],
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
        match (class[to], step) {
            (Class::Start, _) => start_adj[to] += dot(&from[..m], p),
            (_, Step::Store) => assign(&mut adj[cg.aslot[to]][..m], &from[..m], p),
            _ => axpy(&mut adj[cg.aslot[to]][..m], &from[..m], p),
        }
        adj[af] = from;
    }
}

/// The point layout: per block of curves (one point each) and per start of
/// the batch, the curve nodes, the loss over the prediction's array, its
/// derivative as the seed of the prediction's adjoint, and the curve edges
/// back.
#[inline(always)]
fn point_batch<const FMA: bool>(
    cg: &CpuLaw,
    params: &[f64],
    group: usize,
    k: usize,
    ws: &mut Workspace,
    wt: Weights,
) {
    let value = cg.plan.value();
    let np = cg.plan.n_params().max(1);
    let nc = cg.n_curves;
    let Workspace {
        starts,
        cvals,
        cadj,
        seed,
        row_pred,
        eff,
        ..
    } = ws;
    for bi in cg.groups[group].clone() {
        let c0 = bi * TILE;
        let m = TILE.min(nc - c0);
        // Weight-0 points add exactly nothing, whatever their target and
        // prediction: their seed is 0 (see cell), and a 0 adjoint passes
        // nothing back (see dot).
        let y = &cg.y[c0..c0 + m];
        for (j, (st, p)) in starts[..k].iter_mut().zip(params.chunks(np)).enumerate() {
            let w = match wt.get(j) {
                Some((wk, r)) => &eff.get(cg, bi, wk, r)[..m],
                None => &cg.w[c0..c0 + m],
            };
            let StartState {
                start, start_adj, ..
            } = st;
            curve_forward::<FMA>(cg, c0, m, p, start, cvals, cadj);
            st.f += match cg.plan.class[value as usize] {
                Class::Curve => {
                    let (s, a) = (cg.cslot[value as usize], cg.aslot[value as usize]);
                    loss_cells::<FMA>(cg.objective, &cvals[s][..m], y, w, &mut cadj[a][..m])
                }
                // A prediction without parameters: no gradient.
                Class::Data => {
                    let pred = &cg.data_of(value)[c0..c0 + m];
                    loss_cells::<FMA>(cg.objective, pred, y, w, &mut seed[..m])
                }
                // A law without variables: one prediction for every point.
                _ => {
                    row_pred[..m].fill(start[value as usize]);
                    let f = loss_cells::<FMA>(cg.objective, &row_pred[..m], y, w, &mut seed[..m]);
                    start_adj[value as usize] += lane_sum(&seed[..m]);
                    f
                }
            };
            class_backward(
                cg,
                Class::Curve,
                c0,
                m,
                start,
                start_adj,
                cvals,
                &cg.cslot,
                cadj,
            );
        }
    }
}

/// The grid layout: each start's curve nodes over all curves, then per tile
/// of axis values and per start the tile's work (see [`grid_tile`]), last
/// each start's curve edges. The gradient is left in the start adjoints.
#[inline(always)]
fn grid_batch<const FMA: bool>(
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
        curve_forward::<FMA>(cg, c0, nc, p, &st.start, &mut st.cvals, &mut st.cadj);
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
            &mut st.start_adj,
            &st.cvals,
            &cg.cslot,
            &mut st.cadj,
        );
    }
}

/// The scratch of one start's tile.
struct Tile<'a> {
    vals: &'a mut [Vec<f64>],
    adj: &'a mut [Vec<f64>],
    seed: &'a mut [f64],
    row_pred: &'a mut [f64],
    fcol: &'a mut [f64; TILE],
    gbuf: &'a mut [f64; ROWS * TILE],
    /// A fused power term's v, ln x and 1/x over a grid tile.
    pv: &'a mut [Vec<f64>; 3],
}

/// One start on a span (a tile of the grid, or of a curve's points): the
/// axis nodes, the cells of each of its curves (fused when the law is
/// separable, else a pass per point node over each row), and the axis
/// edges back.
#[inline(always)]
fn grid_tile<const FMA: bool>(
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
    // Axis nodes of the tile.
    {
        let src = |o: NodeId| match class[o as usize] {
            Class::Start => Src::S(start[o as usize]),
            Class::Data => Src::Data(cg.dslot[o as usize], t0),
            _ => Src::Store(cg.slot[o as usize]),
        };
        for &id in &plan.forward[Class::Axis as usize] {
            run_node::<FMA>(cg, id, &cg.slot, vals, m, params, &src, |id| {
                if cg.zero[id as usize] {
                    adj[cg.aslot[id as usize]][..m].fill(0.0);
                }
            });
        }
    }
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
        start_adj,
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
fn power_tile<'a, const FMA: bool>(
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
fn separable_rows<'a, const FMA: bool>(
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
struct Hoisted<'a> {
    start: &'a mut [f64],
    curve: &'a mut [Vec<f64>],
    c: usize,
}

/// Add adjoint cells `v` times partial `p` into node `to`'s adjoint: a
/// start's or this curve's scalar (summed over the tile), or a tile array.
#[inline(always)]
fn accumulate(
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
fn dot(v: &[f64], p: V) -> f64 {
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
fn assign(out: &mut [f64], v: &[f64], p: V) {
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
/// `sa * u[j] + s[r]`, `fcol[j] +=` the cells' 2 w rho, `col[j] += ca *
/// sum_r g[r][j]` and each row's sum of g into its `rsum` lanes, with g
/// the seed adjoint. `fcol` and `gbuf` are the caller's stack arrays: heap
/// scratch would leave the compiler unsure they do not overlap `col`, and
/// it then kept the loop scalar (1.8x slower, measured).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn fused_rows<const FMA: bool, const R: usize>(
    obj: Objective,
    u: &[f64],
    (sa, ca): (f64, f64),
    s: [f64; R],
    y: [&[f64]; R],
    w: [&[f64]; R],
    col: &mut [f64],
    fcol: &mut [f64; TILE],
    gbuf: &mut [f64; ROWS * TILE],
    rsum: &mut [[f64; 8]],
) {
    let d = obj.delta;
    match (obj.space, obj.loss) {
        (Space::Linear, LossKind::Mse) => {
            fused_impl::<FMA, false, false, R>(d, u, (sa, ca), s, y, w, col, fcol, gbuf, rsum)
        }
        (Space::Linear, LossKind::Huber) => {
            fused_impl::<FMA, false, true, R>(d, u, (sa, ca), s, y, w, col, fcol, gbuf, rsum)
        }
        (Space::Log, LossKind::Mse) => {
            fused_impl::<FMA, true, false, R>(d, u, (sa, ca), s, y, w, col, fcol, gbuf, rsum)
        }
        (Space::Log, LossKind::Huber) => {
            fused_impl::<FMA, true, true, R>(d, u, (sa, ca), s, y, w, col, fcol, gbuf, rsum)
        }
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn fused_impl<const FMA: bool, const LOG: bool, const HUBER: bool, const R: usize>(
    delta: f64,
    u: &[f64],
    (sa, ca): (f64, f64),
    s: [f64; R],
    y: [&[f64]; R],
    w: [&[f64]; R],
    col: &mut [f64],
    fcol: &mut [f64; TILE],
    gbuf: &mut [f64; ROWS * TILE],
    rsum: &mut [[f64; 8]],
) {
    let m = u.len();
    let col = &mut col[..m];
    // A plain map first (it vectorises), then the sums with lane
    // accumulators: a reduction inside the map kept the loop scalar (2.4x
    // slower, measured; 2x with the cells in fixed-size arrays of eight),
    // as did lane accumulators across rows.
    if R == 4 {
        // Four rows spelled out: with a loop over the rows inside, the
        // compiler kept the cell loop scalar.
        let (y0, y1, y2, y3) = (&y[0][..m], &y[1][..m], &y[2][..m], &y[3][..m]);
        let (w0, w1, w2, w3) = (&w[0][..m], &w[1][..m], &w[2][..m], &w[3][..m]);
        let (g0, rest) = gbuf.split_at_mut(TILE);
        let (g1, rest) = rest.split_at_mut(TILE);
        let (g2, g3) = rest.split_at_mut(TILE);
        let (g0, g1, g2, g3) = (&mut g0[..m], &mut g1[..m], &mut g2[..m], &mut g3[..m]);
        let fb = &mut fcol[..m];
        for j in 0..m {
            let uj = sa * u[j];
            let (d0, q0, a0) = cell::<FMA, LOG, HUBER>(delta, uj + s[0], y0[j], w0[j]);
            let (d1, q1, a1) = cell::<FMA, LOG, HUBER>(delta, uj + s[1], y1[j], w1[j]);
            let (d2, q2, a2) = cell::<FMA, LOG, HUBER>(delta, uj + s[2], y2[j], w2[j]);
            let (d3, q3, a3) = cell::<FMA, LOG, HUBER>(delta, uj + s[3], y3[j], w3[j]);
            g0[j] = a0;
            g1[j] = a1;
            g2[j] = a2;
            g3[j] = a3;
            // 2 w rho = wd q, one fused multiply-add per cell.
            let f = mul_add::<FMA>(d0, q0, fb[j]);
            let f = mul_add::<FMA>(d1, q1, f);
            let f = mul_add::<FMA>(d2, q2, f);
            fb[j] = mul_add::<FMA>(d3, q3, f);
            col[j] += ca * ((a0 + a1) + (a2 + a3));
        }
    } else {
        for j in 0..m {
            let (mut fj, mut gj) = (fcol[j], 0.0);
            for r in 0..R {
                let p = mul_add::<FMA>(sa, u[j], s[r]);
                let (d, q, g) = cell::<FMA, LOG, HUBER>(delta, p, y[r][j], w[r][j]);
                fj = mul_add::<FMA>(d, q, fj);
                gj += g;
                gbuf[r * TILE + j] = g;
            }
            fcol[j] = fj;
            col[j] += ca * gj;
        }
    }
    // A loop, not array::from_fn, whose closure would not be compiled
    // for the caller's instruction set.
    for (r, t) in rsum[..R].iter_mut().enumerate() {
        lane_fold(&gbuf[r * TILE..r * TILE + m], t);
    }
}

/// One cell's loss at prediction p, target y and weight w, as the
/// fused loops need it: (wd, q, g) with wd = w rho'(r), wd q = 2 w
/// rho(r) (one fused multiply-add per cell for the objective, halved once
/// at the end) and g = wd dr/dpred, the seed adjoint. All exactly 0 where
/// w is 0 (an empty cell, whose prediction and target may be anything).
#[inline(always)]
fn cell<const FMA: bool, const LOG: bool, const HUBER: bool>(
    delta: f64,
    p: f64,
    y: f64,
    w: f64,
) -> (f64, f64, f64) {
    let (r, dp) = if LOG {
        let (l, inv) = ln_recip::<FMA>(p);
        (l - y, inv)
    } else {
        (p - y, 1.0)
    };
    // An integer test: measurably faster than w == 0.0 in the loops.
    let empty = (w.to_bits() << 1) == 0;
    let r = if empty { 0.0 } else { r };
    let (wd, q) = if HUBER {
        // Outside, 2 rho = delta (2|r| - delta) = copysign(delta, r) q.
        let inside = r.abs() <= delta;
        let sd = delta.copysign(r);
        (
            w * if inside { r } else { sd },
            if inside { r } else { 2.0 * r - sd },
        )
    } else {
        (w * r, r)
    };
    // In log space 1/p may be infinite or NaN at an empty cell; in linear
    // space wd is already 0 there.
    let g = if !LOG {
        wd
    } else if empty {
        0.0
    } else {
        wd * dp
    };
    (wd, q, g)
}

/// Partial sums of a reduction: four vectors of accumulators, so that a
/// sum over a tile is not bound by the latency of one add (a single vector
/// of them made the row sums an eighth of the grid's time, measured).
const LANES: usize = 32;

/// Sum of `v` in [`LANES`] interleaved partial sums; the order is fixed,
/// so results do not depend on the machine.
#[inline(always)]
fn lane_sum(v: &[f64]) -> f64 {
    let mut acc = [0.0; LANES];
    let mut chunks = v.chunks_exact(LANES);
    for ch in &mut chunks {
        for k in 0..LANES {
            acc[k] += ch[k];
        }
    }
    // The tail in its own sum: adding it into one lane makes that lane
    // special and the compiler then splits the loop's vectors.
    let tail: f64 = chunks.remainder().iter().sum();
    lanes32(acc) + tail
}

/// The total of [`LANES`] partial sums.
#[inline(always)]
fn lanes32(acc: [f64; LANES]) -> f64 {
    // black_box hides the lanes from the vectoriser, which otherwise
    // shapes the summing loop's vectors after this epilogue: it kept the
    // lanes in 2-wide registers, at a quarter of the speed.
    let acc = std::hint::black_box(acc);
    let mut t = [0.0; 8];
    for k in 0..8 {
        t[k] = (acc[k] + acc[k + 16]) + (acc[k + 8] + acc[k + 24]);
    }
    lanes8(&t)
}

/// Add `v` into the eight lanes `out`: [`LANES`] partial sums over `v`
/// (four vectors of eight), then folded to eight.
#[inline(always)]
fn lane_fold(v: &[f64], out: &mut [f64; 8]) {
    // Four vectors of lanes, folded lane by lane: every step is eight
    // wide, so the compiler keeps whole vectors (a flat array folded
    // pairwise was cut into 2-wide pieces, or, behind black_box, reloaded
    // across two stores, which stalled).
    let mut acc = [[0.0; 8]; 4];
    let mut chunks = v.chunks_exact(LANES);
    for ch in &mut chunks {
        let ch: &[f64; LANES] = ch.try_into().expect("a whole chunk");
        for k in 0..8 {
            acc[0][k] += ch[k];
            acc[1][k] += ch[k + 8];
            acc[2][k] += ch[k + 16];
            acc[3][k] += ch[k + 24];
        }
    }
    fold(&acc, out);
    // The tail in its own sum: adding it into one lane makes that lane
    // special and the compiler then splits the loop's vectors. (Only the
    // last tile has one.)
    let rem = chunks.remainder();
    if !rem.is_empty() {
        out[0] += rem.iter().sum::<f64>();
    }
}

/// Add four vectors of partial sums into eight lanes.
#[inline(always)]
fn fold(acc: &[[f64; 8]; 4], out: &mut [f64; 8]) {
    for k in 0..8 {
        out[k] += (acc[0][k] + acc[2][k]) + (acc[1][k] + acc[3][k]);
    }
}

/// The total of eight lanes, pairwise.
#[inline(always)]
fn lanes8(v: &[f64; 8]) -> f64 {
    ((v[0] + v[4]) + (v[2] + v[6])) + ((v[1] + v[5]) + (v[3] + v[7]))
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
        let (d, q, g) = cell::<FMA, LOG, HUBER>(delta, pred[j], y[j], w[j]);
        fbuf[j] = d * q;
        seed[j] = g;
    }
    0.5 * lane_sum(&fbuf[..m])
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
        if let Some(r) = weightings
            .iter()
            .find(|r| r.mult.len() != self.n_curves || r.first.len() != self.n_curves)
        {
            anyhow::bail!(
                "a weighting of {} curves for a sweep of {}",
                r.mult.len(),
                self.n_curves
            );
        }
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
