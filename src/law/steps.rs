//! Sums along a run's steps: the operator that laws of the whole training
//! curve are written with (the multi-power law, the LR-annealing law).
//!
//! `sum(k = 1..step: body)` is the sum of `body` over the steps k = 1, ...,
//! t of the row's run, t its `step`. Inside the body:
//! - `lr[k]`, `lr[k-1]`, `lr[step]`, `lr[0]`: a per-step series of the run
//!   (from `--schedule`) at a step that is k, the row's step or a number,
//!   plus or minus a whole number;
//! - `sum(j = k..step: lr[j])`: a window of a series (both ends of the
//!   same forms), a difference of two prefix sums, never a loop;
//! - `k` and `step` as numbers, and any name of the law (parameters,
//!   variables, defs) that does not depend on k.
//!
//! In the law's graph a sum is one node ([`Node::Steps`]) whose operands
//! are the run's schedule (the variable `schedule`, a handle registered
//! here), the step, and the outer values its body uses; its body is a
//! graph of its own whose variables are the per-step values ([`Leaf`]) and
//! whose parameters are those outer values. Its derivative with respect to
//! an outer value is the sum of the body's derivative: another sum of the
//! same family. So the plan, the gradient, the Jacobian rows and the
//! transforms treat a sum as a node with a few operands, and every
//! evaluator computes it through [`eval`], the one definition.
//!
//! What [`eval`] does less than the plain loop over k = 1..t:
//! - steps where the body's factors that depend on k alone are 0 are never
//!   visited (lr[k-1] - lr[k]: a constant stretch of a schedule adds
//!   nothing);
//! - what depends on k alone (lr[k]^-gamma's ln lr[k]) is computed once
//!   per run, what depends on k and the outer values (C lr[k]^-gamma) once
//!   per run and parameter vector, and per (step, k) only the rest, over
//!   chunks of k (vectorised);
//! - the value and its derivatives with respect to every outer value are
//!   one pass, kept per (run, step, values) for the derivative nodes that
//!   ask next;
//! - a body with a geometric kernel in step - k (the LR-annealing law's
//!   annealing area) is summed by a recurrence along the steps, once per
//!   run and values for every row ([`geometric`]).
//!
//! Definitions and schedules are interned process-wide, as the functions
//! of `ops` are in a static table: a node is `Copy` and carries an index.
//! They are small (a body graph; a run's series) and shared by equal
//! definitions and equal schedules, so a long session does not grow with
//! repeated fits.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::rc::Rc;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use super::dag::{Graph, Node, NodeId};
use super::diff;
use super::ops::Func;
use super::plan::{lower, Class};
use super::vector::{node_op, V};
use crate::fastmath::exact_ln_recip;

mod geometric;
mod hoist;

pub use hoist::Summand;

/// Outer values a sum's body may use (parameters, variables, defs).
pub const MAX_ARGS: usize = 4;
/// Operands of a sum node: the schedule, the step, the outer values.
pub const MAX_OPS: usize = 2 + MAX_ARGS;
/// An unused operand slot.
pub const NONE: NodeId = NodeId::MAX;
/// Steps k evaluated together per node (a vector loop's length).
const CHUNK: usize = 512;

/// A step a series is read at: k + c, the row's step + c, or step c.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Index {
    K(i64),
    T(i64),
    At(i64),
}

impl Index {
    fn at(self, k: i64, t: i64) -> i64 {
        match self {
            Index::K(c) => k + c,
            Index::T(c) => t + c,
            Index::At(c) => c,
        }
    }

    pub(crate) fn text(self, k: &str) -> String {
        let off = |base: &str, c: i64| match c {
            0 => base.to_string(),
            c if c > 0 => format!("{base}+{c}"),
            c => format!("{base}{c}"),
        };
        match self {
            Index::K(c) => off(k, c),
            Index::T(c) => off("step", c),
            Index::At(c) => c.to_string(),
        }
    }
}

/// A per-step value in a sum's body (a variable of the body's graph).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Leaf {
    /// `series[at]`.
    Value { series: u16, at: Index },
    /// `sum(j = from..to: series[j])`, 0 when `to < from`.
    Window { series: u16, from: Index, to: Index },
    /// The summed step k.
    K,
    /// The row's step.
    T,
}

impl Leaf {
    /// (depends on k, depends on the row's step).
    fn deps(self) -> (bool, bool) {
        let d = |i: Index| (matches!(i, Index::K(_)), matches!(i, Index::T(_)));
        match self {
            Leaf::Value { at, .. } => d(at),
            Leaf::Window { from, to, .. } => {
                let (a, b) = (d(from), d(to));
                (a.0 || b.0, a.1 || b.1)
            }
            Leaf::K => (true, false),
            Leaf::T => (false, true),
        }
    }

    fn text(self, series: &[String], k: &str) -> String {
        match self {
            Leaf::Value { series: s, at } => format!("{}[{}]", series[s as usize], at.text(k)),
            Leaf::Window {
                series: s,
                from,
                to,
            } => format!(
                "sum(j = {}..{}: {}[j])",
                from.text(k),
                to.text(k),
                series[s as usize]
            ),
            Leaf::K => k.to_string(),
            Leaf::T => "step".to_string(),
        }
    }
}

/// A sum as the compiler builds it: `sum(k = lo..step + hi: body)`, the
/// body a graph whose `Var(i)` is `leaves[i]` and whose `Param(i)` is the
/// sum node's outer value i.
#[derive(Debug, Clone)]
pub struct Body {
    pub graph: Graph,
    pub root: NodeId,
    pub leaves: Vec<Leaf>,
    /// Series names, indexed by the leaves' `series`.
    pub series: Vec<String>,
    pub n_args: usize,
    /// The summed step's name, for the text.
    pub var: String,
    pub lo: i64,
    pub hi: i64,
}

/// How often a body node is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Not on k: once per (step, values).
    Call,
    /// On k alone: once per run.
    KData,
    /// On k and the outer values, not the step: once per run and values.
    KArg,
    /// On k and the step: per (step, k).
    Pair,
}

/// Pair nodes computed together (by their place in the Pair order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Twin {
    None,
    /// The first of `ln(u)` and `1/u`: both, from one exact ln.
    LnRecip {
        ln: usize,
        recip: usize,
    },
    /// The second: computed with the first.
    Done,
}

/// A body and its derivatives with respect to every outer value, lowered
/// and planned: one pass evaluates them all. `body.graph` holds them all
/// lowered, and the written body (`body.root`) for the text.
struct Family {
    id: u32,
    body: Body,
    /// The value and its derivative by each outer value.
    roots: Vec<NodeId>,
    /// What is summed for each root (see [`hoist`]).
    summands: Vec<Summand>,
    kind: Vec<Kind>,
    /// Nodes needed, by kind, in topological order.
    order: [Vec<NodeId>; 4],
    /// Per Pair node, whether it is computed with another.
    twin: Vec<Twin>,
    /// Per node, its row in its kind's arrays.
    slot: Vec<usize>,
    /// Factors of the value on k alone: steps where one is 0 add nothing.
    factors: Vec<NodeId>,
    /// The body as a geometric kernel in step - k, summed by recurrence.
    geometric: Option<geometric::Geometric>,
    runs: Mutex<HashMap<u32, Arc<RunPlan>>>,
    /// Derivatives of the non-primary roots (second derivatives), as defs.
    higher: Mutex<HashMap<(usize, usize), u32>>,
}

/// One run's series: values at every step from 0, and their prefix sums
/// in two parts (high and low: a window of a few steps near the end of a
/// long schedule keeps its digits).
#[derive(Debug)]
pub struct Series {
    names: Vec<String>,
    values: Vec<Vec<f64>>,
    prefix: Vec<(Vec<f64>, Vec<f64>)>,
}

impl Series {
    fn new(names: Vec<String>, values: Vec<Vec<f64>>) -> Series {
        let prefix = values
            .iter()
            .map(|v| {
                let (mut hi, mut lo) = (Vec::with_capacity(v.len()), Vec::with_capacity(v.len()));
                let (mut s, mut c) = (0.0f64, 0.0f64);
                for &x in v {
                    // Two-sum: s + c is the exact running sum to ~2^-106.
                    let t = s + x;
                    let bp = t - s;
                    c += (s - (t - bp)) + (x - bp);
                    s = t;
                    hi.push(s);
                    lo.push(c);
                }
                (hi, lo)
            })
            .collect();
        Series {
            names,
            values,
            prefix,
        }
    }

    fn len(&self) -> usize {
        self.values.first().map_or(0, Vec::len)
    }

    fn value(&self, s: usize, i: i64) -> f64 {
        usize::try_from(i)
            .ok()
            .and_then(|i| self.values[s].get(i))
            .copied()
            .unwrap_or(f64::NAN)
    }

    /// Sum of series `s` over steps a..=b: 0 when b < a, NaN outside the
    /// schedule.
    fn window(&self, s: usize, a: i64, b: i64) -> f64 {
        if b < a {
            return 0.0;
        }
        if a < 0 || b >= self.len() as i64 {
            return f64::NAN;
        }
        let (hi, lo) = &self.prefix[s];
        let (b, a) = (b as usize, a as usize);
        let (h, l) = if a == 0 {
            (hi[b], lo[b])
        } else {
            (hi[b] - hi[a - 1], lo[b] - lo[a - 1])
        };
        h + l
    }
}

/// What a family needs of one run: the steps visited and the per-k values.
struct RunPlan {
    handle: u32,
    series: Arc<Series>,
    /// The family's series index -> the run's; None where the run lacks it.
    map: Vec<Option<usize>>,
    /// Visited steps k, ascending.
    ks: Vec<i64>,
    /// KData arrays over `ks`, by slot.
    kdata: Vec<Vec<f64>>,
    /// Per leaf, for windows from k + a to the row's step: the prefix sum
    /// (high, low) before k + a over `ks` (0 before step 0), so that a
    /// window is two subtractions per step.
    before: Vec<Option<(Vec<f64>, Vec<f64>)>>,
}

#[derive(Default)]
struct Registry {
    families: Vec<Arc<Family>>,
    by_text: HashMap<String, u32>,
    /// Def -> (family, root).
    defs: Vec<(u32, usize)>,
    def_of: HashMap<(u32, usize), u32>,
    runs: Vec<Arc<Series>>,
    run_of: HashMap<u64, Vec<u32>>,
}

fn registry() -> &'static RwLock<Registry> {
    static R: OnceLock<RwLock<Registry>> = OnceLock::new();
    R.get_or_init(Default::default)
}

/// Register a run's series (names and values at every step from 0, all
/// of one length); returns its handle, the value of the law's `schedule`
/// variable on the run's rows. Equal series share a handle.
pub fn register_run(names: Vec<String>, values: Vec<Vec<f64>>) -> u32 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    names.hash(&mut h);
    for v in &values {
        v.len().hash(&mut h);
        for x in v {
            x.to_bits().hash(&mut h);
        }
    }
    let key = h.finish();
    let mut r = registry().write().unwrap_or_else(|e| e.into_inner());
    if let Some(ids) = r.run_of.get(&key) {
        for &id in ids {
            let s = &r.runs[id as usize];
            if s.names == names && s.values == values {
                return id;
            }
        }
    }
    let id = r.runs.len() as u32;
    r.runs.push(Arc::new(Series::new(names, values)));
    r.run_of.entry(key).or_default().push(id);
    id
}

/// Whether `handle` is a run registered in this process.
pub fn known_run(handle: f64) -> bool {
    handle >= 0.0
        && handle.fract() == 0.0
        && (handle as usize)
            < registry()
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .runs
                .len()
}

/// Define a sum; returns the def of its value (the index a
/// [`Node::Steps`] carries).
pub fn define(body: Body) -> u32 {
    // Equal bodies share a family: the key is the root's cone, node by
    // node (as text its shared sub-expressions would be written out again
    // at every use, exponentially in a derivative's body).
    let mut cone = vec![false; body.graph.len()];
    cone[body.root as usize] = true;
    for i in (0..=body.root as usize).rev() {
        if cone[i] {
            for o in body.graph.node(i as NodeId).operands() {
                cone[o as usize] = true;
            }
        }
    }
    let nodes: Vec<(usize, Node)> = (0..=body.root as usize)
        .filter(|&i| cone[i])
        .map(|i| (i, body.graph.node(i as NodeId)))
        .collect();
    let text = format!(
        "{:?}|{:?}|{}|{}|{}|{nodes:?}",
        body.leaves, body.series, body.lo, body.hi, body.n_args
    );
    let mut r = registry().write().unwrap_or_else(|e| e.into_inner());
    let fam = match r.by_text.get(&text) {
        Some(&f) => f,
        None => {
            let id = r.families.len() as u32;
            r.families.push(Arc::new(Family::new(id, body)));
            r.by_text.insert(text, id);
            id
        }
    };
    intern(&mut r, fam, 0)
}

fn intern(r: &mut Registry, fam: u32, root: usize) -> u32 {
    if let Some(&d) = r.def_of.get(&(fam, root)) {
        return d;
    }
    let d = r.defs.len() as u32;
    r.defs.push((fam, root));
    r.def_of.insert((fam, root), d);
    d
}

fn leaf_names(b: &Body) -> Vec<String> {
    b.leaves.iter().map(|l| l.text(&b.series, &b.var)).collect()
}

/// A def: its family and which root.
type Def = (Arc<Family>, usize);

fn family(def: u32) -> Def {
    thread_local! {
        static SEEN: RefCell<Vec<Option<Def>>> = const { RefCell::new(Vec::new()) };
    }
    SEEN.with(|seen| {
        let mut seen = seen.borrow_mut();
        if let Some(Some(f)) = seen.get(def as usize) {
            return f.clone();
        }
        let r = registry().read().unwrap_or_else(|e| e.into_inner());
        let (fam, root) = r.defs[def as usize];
        let f = (r.families[fam as usize].clone(), root);
        if seen.len() <= def as usize {
            seen.resize(def as usize + 1, None);
        }
        seen[def as usize] = Some(f.clone());
        f
    })
}

/// Whether def `def` is summed by a recurrence along the steps (a
/// geometric kernel in step - k): O(steps) per run and parameter vector
/// rather than per row.
pub fn by_recurrence(def: u32) -> bool {
    family(def).0.geometric.is_some()
}

/// The number of outer values def `def`'s body uses.
pub fn n_args(def: u32) -> usize {
    family(def).0.body.n_args
}

/// The def of d(sum def)/d(outer value `arg`).
pub fn derivative(def: u32, arg: usize) -> u32 {
    let (fam, root) = family(def);
    if root == 0 {
        let mut r = registry().write().unwrap_or_else(|e| e.into_inner());
        return intern(&mut r, fam.id, 1 + arg);
    }
    let known = fam
        .higher
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&(root, arg))
        .copied();
    if let Some(d) = known {
        return d;
    }
    // A derivative of a derivative: the derivative's body as a family of
    // its own (rare: second derivatives of the transforms).
    let mut body = fam.body.clone();
    body.root = fam.roots[root];
    let d = derivative(define(body), arg);
    fam.higher
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert((root, arg), d);
    d
}

/// How far past the row's step the sum reads its series: a row at step t
/// needs the schedule up to step t + reach (`lr[k+1]` summed to `step`
/// reaches 1; most laws 0).
pub fn reach(def: u32) -> i64 {
    let (fam, _) = family(def);
    let b = &fam.body;
    let past = |i: Index| match i {
        Index::K(c) => b.hi + c,
        Index::T(c) => c,
        Index::At(_) => 0,
    };
    b.leaves
        .iter()
        .map(|l| match *l {
            Leaf::Value { at, .. } => past(at),
            Leaf::Window { to, .. } => past(to),
            Leaf::K | Leaf::T => 0,
        })
        .max()
        .unwrap_or(0)
        .max(0)
}

/// The furthest step the sum reads at a fixed index (`lr[1000]`),
/// whatever the row's step: every run's schedule must reach it. `None`
/// when it reads none.
pub fn fixed_reach(def: u32) -> Option<i64> {
    let (fam, _) = family(def);
    let at = |i: Index| match i {
        Index::At(c) => Some(c),
        _ => None,
    };
    fam.body
        .leaves
        .iter()
        .filter_map(|l| match *l {
            Leaf::Value { at: i, .. } => at(i),
            Leaf::Window { to, .. } => at(to),
            Leaf::K | Leaf::T => None,
        })
        .max()
}

/// The sum as formula text, its outer values written by `arg`.
pub fn text(def: u32, arg: &dyn Fn(usize) -> String) -> String {
    let (fam, root) = family(def);
    let b = &fam.body;
    let args: Vec<String> = (0..b.n_args).map(arg).collect();
    // A derivative is named as d/dx of the written sum.
    let body = b.graph.expr(b.root, &leaf_names(b), &args, 12);
    let hi = Index::T(b.hi).text(&b.var);
    let sum = format!("sum({} = {}..{hi}: {body})", b.var, b.lo);
    match root {
        0 => sum,
        r => format!("d/d{} {sum}", args[r - 1]),
    }
}

impl Family {
    fn new(id: u32, body: Body) -> Family {
        let mut graph = body.graph.clone();
        let (mut kmask, mut tmask) = (0u64, 0u64);
        for (i, l) in body.leaves.iter().enumerate() {
            let (dk, dt) = l.deps();
            kmask |= u64::from(dk) << i;
            tmask |= u64::from(dt) << i;
        }
        // Negations go to what is evaluated least often.
        let level = |m: u64| {
            if m & tmask != 0 {
                Class::Point
            } else if m & kmask != 0 {
                Class::Axis
            } else {
                Class::Start
            }
        };
        // Split before lowering, where the power is still one node.
        let geometric = geometric::split(&graph, body.root, &body.leaves, body.n_args, &level);
        // Lowered before it is differentiated, as the plan does: the
        // derivatives of exp(y ln x) reuse its exp and its log.
        let value = lower(&mut graph, body.root, &level);
        let grads = diff::gradient(&mut graph, value, body.n_args);
        let mut roots = vec![value];
        roots.extend(grads.iter().map(|&r| lower(&mut graph, r, &level)));
        let summands = hoist::hoist(&mut graph, &roots, kmask, tmask);
        let masks = graph.var_masks();
        let dep = diff::param_dependent(&graph);
        let kind: Vec<Kind> = (0..graph.len())
            .map(|i| {
                let (dk, dt) = (masks[i] & kmask != 0, masks[i] & tmask != 0);
                match (dk, dt, dep[i]) {
                    (false, _, _) => Kind::Call,
                    (true, true, _) => Kind::Pair,
                    (true, false, false) => Kind::KData,
                    (true, false, true) => Kind::KArg,
                }
            })
            .collect();
        // The value's factors on k alone, through products and signs.
        let mut factors = Vec::new();
        let mut stack = vec![roots[0]];
        while let Some(n) = stack.pop() {
            match graph.node(n) {
                Node::Mul(a, b) => stack.extend([a, b]),
                Node::Neg(a) => stack.push(a),
                _ if kind[n as usize] == Kind::KData => factors.push(n),
                _ => {}
            }
        }
        // What is evaluated: the summands' cones and the factors'.
        let mut needed = vec![false; graph.len()];
        let mut stack: Vec<NodeId> = summands
            .iter()
            .flat_map(|s| s.scale.into_iter().chain([s.base]))
            .chain(factors.iter().copied())
            .collect();
        while let Some(n) = stack.pop() {
            if !needed[n as usize] {
                needed[n as usize] = true;
                stack.extend(graph.node(n).operands());
            }
        }
        let mut order: [Vec<NodeId>; 4] = Default::default();
        let mut slot = vec![usize::MAX; graph.len()];
        for (i, &need) in needed.iter().enumerate() {
            if need {
                let k = kind[i] as usize;
                slot[i] = order[k].len();
                order[k].push(i as NodeId);
            }
        }
        // ln u and 1/u of one u, as the derivatives of u^-beta have them:
        // one exact ln gives both (its reciprocal shares its division).
        let pairs = &order[Kind::Pair as usize];
        let mut twin = vec![Twin::None; pairs.len()];
        for (j, &id) in pairs.iter().enumerate() {
            let Node::Fn1(Func::Log, u) = graph.node(id) else {
                continue;
            };
            let recip = pairs.iter().position(|&r| {
                matches!(graph.node(r), Node::Div(one, d) if d == u && graph.is_const(one, 1.0))
            });
            if let Some(r) = recip {
                let (first, second) = (j.min(r), j.max(r));
                twin[first] = Twin::LnRecip { ln: j, recip: r };
                twin[second] = Twin::Done;
            }
        }
        Family {
            id,
            body: Body { graph, ..body },
            roots,
            summands,
            kind,
            order,
            twin,
            slot,
            factors,
            geometric,
            runs: Mutex::new(HashMap::new()),
            higher: Mutex::new(HashMap::new()),
        }
    }

    fn leaf(&self, id: NodeId) -> Option<Leaf> {
        match self.body.graph.node(id) {
            Node::Var(v) => Some(self.body.leaves[v as usize]),
            _ => None,
        }
    }

    /// A leaf's value at (k, t) on run `p`.
    fn leaf_at(&self, leaf: Leaf, p: &RunPlan, k: i64, t: i64) -> f64 {
        let series = |s: u16| p.map[s as usize];
        match leaf {
            Leaf::Value { series: s, at } => {
                series(s).map_or(f64::NAN, |s| p.series.value(s, at.at(k, t)))
            }
            Leaf::Window {
                series: s,
                from,
                to,
            } => series(s).map_or(f64::NAN, |s| p.series.window(s, from.at(k, t), to.at(k, t))),
            Leaf::K => k as f64,
            Leaf::T => t as f64,
        }
    }

    /// What this family needs of run `handle`, made once.
    fn run(&self, handle: u32) -> Option<Arc<RunPlan>> {
        if let Some(p) = self
            .runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&handle)
        {
            return Some(p.clone());
        }
        let series = registry()
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .runs
            .get(handle as usize)?
            .clone();
        let map = self
            .body
            .series
            .iter()
            .map(|n| series.names.iter().position(|m| m == n))
            .collect();
        let mut p = RunPlan {
            handle,
            series,
            map,
            ks: Vec::new(),
            kdata: Vec::new(),
            before: Vec::new(),
        };
        let all: Vec<i64> = (self.body.lo..p.series.len() as i64).collect();
        let kdata = self.kdata(&p, &all);
        // Steps where a factor on k alone is 0 add nothing (NaN is kept:
        // an undefined term stays undefined).
        let keep: Vec<bool> = (0..all.len())
            .map(|j| {
                self.factors
                    .iter()
                    .all(|&f| kdata[self.slot[f as usize]][j] != 0.0)
            })
            .collect();
        p.ks = all
            .iter()
            .zip(&keep)
            .filter(|(_, &k)| k)
            .map(|(&k, _)| k)
            .collect();
        p.kdata = kdata
            .into_iter()
            .map(|a| {
                a.into_iter()
                    .zip(&keep)
                    .filter(|(_, &k)| k)
                    .map(|(x, _)| x)
                    .collect()
            })
            .collect();
        p.before = self
            .body
            .leaves
            .iter()
            .map(|l| match *l {
                Leaf::Window {
                    series,
                    from: Index::K(a),
                    to: Index::T(_),
                } => {
                    let s = p.map[series as usize]?;
                    let (hi, lo) = &p.series.prefix[s];
                    let at = |v: &Vec<f64>, k: i64| match k + a - 1 {
                        i if i < 0 => 0.0,
                        i => v.get(i as usize).copied().unwrap_or(f64::NAN),
                    };
                    Some((
                        p.ks.iter().map(|&k| at(hi, k)).collect(),
                        p.ks.iter().map(|&k| at(lo, k)).collect(),
                    ))
                }
                _ => None,
            })
            .collect();
        let p = Arc::new(p);
        self.runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(handle, p.clone());
        Some(p)
    }

    /// The Call nodes' values at step `t` for outer values `args`.
    fn calls(&self, p: &RunPlan, t: i64, args: &[f64]) -> Vec<f64> {
        let calls = &self.order[Kind::Call as usize];
        let mut call = vec![0.0; calls.len()];
        for (j, &id) in calls.iter().enumerate() {
            let v = match self.leaf(id) {
                Some(leaf) => self.leaf_at(leaf, p, 0, t),
                None => self.body.graph.node(id).eval(
                    &|o| call[self.slot[o as usize]],
                    &|_| f64::NAN,
                    args,
                ),
            };
            call[j] = v;
        }
        call
    }

    /// The KData nodes over steps `ks` of a run.
    fn kdata(&self, p: &RunPlan, ks: &[i64]) -> Vec<Vec<f64>> {
        // The Call nodes a KData node reads are on neither the step nor
        // the outer values (it would be on them too).
        let nan = [f64::NAN; MAX_ARGS];
        let call = self.calls(p, 0, &nan[..self.body.n_args]);
        let nodes = &self.order[Kind::KData as usize];
        let mut out: Vec<Vec<f64>> = vec![vec![0.0; ks.len()]; nodes.len()];
        for (j, &id) in nodes.iter().enumerate() {
            let (done, rest) = out.split_at_mut(j);
            let o = &mut rest[0];
            if let Some(leaf) = self.leaf(id) {
                for (x, &k) in o.iter_mut().zip(ks) {
                    *x = self.leaf_at(leaf, p, k, 0);
                }
                continue;
            }
            let opnd = |n: NodeId| match self.kind[n as usize] {
                Kind::Call => V::S(call[self.slot[n as usize]]),
                _ => V::A(&done[self.slot[n as usize]]),
            };
            node_op::<false>(self.body.graph.node(id), &opnd, o, &[]);
        }
        out
    }

    /// The KArg nodes over a run's visited steps, for outer values `args`
    /// (`call`: the Call nodes' values).
    fn karg(&self, p: &RunPlan, call: &[f64], args: &[f64]) -> Vec<Vec<f64>> {
        let nodes = &self.order[Kind::KArg as usize];
        let n = p.ks.len();
        let mut out: Vec<Vec<f64>> = vec![vec![0.0; n]; nodes.len()];
        for (j, &id) in nodes.iter().enumerate() {
            let (done, rest) = out.split_at_mut(j);
            let opnd = |o: NodeId| match self.kind[o as usize] {
                Kind::Call => V::S(call[self.slot[o as usize]]),
                Kind::KData => V::A(&p.kdata[self.slot[o as usize]]),
                _ => V::A(&done[self.slot[o as usize]]),
            };
            node_op::<false>(self.body.graph.node(id), &opnd, &mut rest[0], args);
        }
        out
    }

    /// Every root's sum at step `t` of run `p` for outer values `args`.
    fn sums(&self, p: &RunPlan, t: i64, args: &[f64]) -> Vec<f64> {
        let last = t + self.body.hi;
        if last >= p.series.len() as i64 {
            // The sum runs past the run's schedule.
            return vec![f64::NAN; self.roots.len()];
        }
        if let Some(geo) = &self.geometric {
            if let Some(v) = geometric::sums(self, geo, p, t, last, args) {
                return v;
            }
        }
        let karg = self.karg_of(p, t, args);
        self.pass_sums(p, t, args, &karg)
    }

    /// The KArg arrays of run `p` for outer values `args` (cached per
    /// thread); `t` is any step (KArg nodes read no Call node on it).
    fn karg_of(&self, p: &RunPlan, t: i64, args: &[f64]) -> KArgs {
        if self.order[Kind::KArg as usize].is_empty() {
            Rc::new(Vec::new())
        } else {
            karg_cached(self, p, t, args)
        }
    }

    /// Whether the sums at steps up to `last` are those of the pass (not
    /// past the schedule, not by recurrence).
    fn by_pass(&self, p: &RunPlan, t: i64) -> bool {
        t + self.body.hi < p.series.len() as i64 && self.geometric.is_none()
    }

    /// [`Family::sums`] by the pass over (step, k) pairs, with the run's
    /// KArg arrays `karg`.
    fn pass_sums(&self, p: &RunPlan, t: i64, args: &[f64], karg: &[Vec<f64>]) -> Vec<f64> {
        let last = t + self.body.hi;
        if last >= p.series.len() as i64 {
            return vec![f64::NAN; self.roots.len()];
        }
        let call = self.calls(p, t, args);
        let m = p.ks.partition_point(|&k| k <= last);
        let mut sums = vec![0.0; self.roots.len()];
        let w = Work {
            p,
            t,
            m,
            call: &call,
            karg,
            args,
        };
        dispatch(self, &w, &mut sums);
        // A root that is a series at k alone (the area under the
        // schedule): a window, exact where the loop rounds.
        for (r, &root) in self.roots.iter().enumerate() {
            if let Some(Leaf::Value {
                series,
                at: Index::K(c),
            }) = self.leaf(root)
            {
                if let (Some(s), true) = (p.map[series as usize], self.factors == [root]) {
                    sums[r] = p.series.window(s, self.body.lo + c, last + c);
                }
            }
        }
        sums
    }

    /// The per-(step, k) pass: the Pair nodes over chunks of the visited
    /// steps up to the row's, and every root's sum.
    #[inline(always)]
    fn pass<const FMA: bool>(&self, w: &Work, sums: &mut [f64]) {
        let (p, call, karg, args) = (w.p, w.call, w.karg, w.args);
        let g = &self.body.graph;
        let pairs = &self.order[Kind::Pair as usize];
        let mut buf = vec![0.0; pairs.len() * CHUNK];
        for c0 in (0..w.m).step_by(CHUNK) {
            let len = CHUNK.min(w.m - c0);
            for (j, &id) in pairs.iter().enumerate() {
                let (done, rest) = buf.split_at_mut(j * CHUNK);
                match self.twin[j] {
                    Twin::None => {}
                    Twin::Done => continue,
                    Twin::LnRecip { ln, recip } => {
                        let Node::Fn1(_, u) = g.node(pairs[ln]) else {
                            unreachable!("a twin is a log")
                        };
                        let s = self.slot[u as usize];
                        let u = &done[s * CHUNK..s * CHUNK + len];
                        let (lo, hi) = rest.split_at_mut((recip.max(ln) - j) * CHUNK);
                        let (lo, hi) = (&mut lo[..len], &mut hi[..len]);
                        let (l, r) = if ln < recip { (lo, hi) } else { (hi, lo) };
                        for ((x, l), r) in u.iter().zip(l).zip(r) {
                            (*l, *r) = exact_ln_recip::<FMA>(*x);
                        }
                        continue;
                    }
                }
                let out = &mut rest[..len];
                if let Some(leaf) = self.leaf(id) {
                    self.fill::<FMA>(leaf, id, w, c0, out);
                    continue;
                }
                let opnd = |o: NodeId| {
                    let s = self.slot[o as usize];
                    match self.kind[o as usize] {
                        Kind::Call => V::S(call[s]),
                        Kind::KData => V::A(&p.kdata[s][c0..c0 + len]),
                        Kind::KArg => V::A(&karg[s][c0..c0 + len]),
                        Kind::Pair => V::A(&done[s * CHUNK..s * CHUNK + len]),
                    }
                };
                node_op::<FMA>(g.node(id), &opnd, out, args);
            }
            for (r, m) in self.summands.iter().enumerate() {
                let s = self.slot[m.base as usize];
                sums[r] += match self.kind[m.base as usize] {
                    Kind::Call => call[s] * len as f64,
                    Kind::KData => lane_sum(&p.kdata[s][c0..c0 + len]),
                    Kind::KArg => lane_sum(&karg[s][c0..c0 + len]),
                    Kind::Pair => lane_sum(&buf[s * CHUNK..s * CHUNK + len]),
                };
            }
        }
        for (sum, m) in sums.iter_mut().zip(&self.summands) {
            if let Some(c) = m.scale {
                *sum *= call[self.slot[c as usize]];
            }
        }
    }

    /// Leaf `leaf` (node `id`) over steps `c0..` of a pass.
    #[inline(always)]
    fn fill<const FMA: bool>(&self, leaf: Leaf, id: NodeId, w: &Work, c0: usize, out: &mut [f64]) {
        let (p, t) = (w.p, w.t);
        let ks = &p.ks[c0..c0 + out.len()];
        let Node::Var(v) = self.body.graph.node(id) else {
            unreachable!("a leaf is a variable")
        };
        if let (
            Leaf::Window {
                series,
                from: Index::K(a),
                to: Index::T(b),
            },
            Some((hb, lb)),
        ) = (leaf, &p.before[v as usize])
        {
            let Some(s) = p.map[series as usize] else {
                return out.fill(f64::NAN);
            };
            let last = t + b;
            let (hi, lo) = &p.series.prefix[s];
            let Some((&h, &l)) = usize::try_from(last)
                .ok()
                .and_then(|i| hi.get(i).zip(lo.get(i)))
            else {
                return out.fill(f64::NAN);
            };
            let (hb, lb) = (&hb[c0..c0 + out.len()], &lb[c0..c0 + out.len()]);
            // k + a > last, with the sum out of the loop: a checked add
            // per step kept the loop scalar.
            let end = last - a;
            for (((x, &k), &hk), &lk) in out.iter_mut().zip(ks).zip(hb).zip(lb) {
                let v = (h - hk) + (l - lk);
                *x = if k > end { 0.0 } else { v };
            }
            return;
        }
        for (x, &k) in out.iter_mut().zip(ks) {
            *x = self.leaf_at(leaf, p, k, t);
        }
    }
}

/// The sum of `xs` in eight interleaved partial sums: a sum in order is
/// a chain of dependent additions the compiler may not reorder, and it
/// took a third of a pass's time.
#[inline(always)]
fn lane_sum(xs: &[f64]) -> f64 {
    let mut acc = [0.0; 8];
    let mut it = xs.chunks_exact(8);
    for c in &mut it {
        for (a, x) in acc.iter_mut().zip(c) {
            *a += x;
        }
    }
    for (a, x) in acc.iter_mut().zip(it.remainder()) {
        *a += x;
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
}

/// What one pass reads.
struct Work<'a> {
    p: &'a RunPlan,
    t: i64,
    /// Visited steps summed: the first `m` of `p.ks`.
    m: usize,
    call: &'a [f64],
    karg: &'a [Vec<f64>],
    args: &'a [f64],
}

/// [`Family::pass`] compiled for the widest vector instructions the CPU
/// has, as the compiled plan's passes are.
fn dispatch(f: &Family, w: &Work, sums: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports the features the function enables.
            return unsafe { pass_avx512(f, w, sums) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: as above.
            return unsafe { pass_avx2(f, w, sums) };
        }
    }
    f.pass::<false>(w, sums)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn pass_avx512(f: &Family, w: &Work, sums: &mut [f64]) {
    f.pass::<true>(w, sums)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn pass_avx2(f: &Family, w: &Work, sums: &mut [f64]) {
    f.pass::<true>(w, sums)
}

type ArgBits = [u64; MAX_ARGS];
/// A family's KArg arrays for one run and parameter vector.
type KArgs = Rc<Vec<Vec<f64>>>;
/// (family, run, step, outer values).
type SumKey = (u32, u32, i64, ArgBits);

fn arg_bits(args: &[f64]) -> ArgBits {
    let mut b = [0u64; MAX_ARGS];
    for (x, a) in b.iter_mut().zip(args) {
        *x = a.to_bits();
    }
    b
}

/// Entries kept per thread before a cache starts afresh: the sums must
/// outlive one tile of cells of a batch of starts (the value node, then
/// its derivatives, ask for the same sums) and stay small on many threads
/// (about 3 MB each here).
const KARG_KEEP: usize = 64;
const SUMS_KEEP: usize = 1 << 15;

thread_local! {
    static KARGS: RefCell<HashMap<(u32, u32, ArgBits), KArgs>> =
        RefCell::new(HashMap::new());
    static SUMS: RefCell<HashMap<SumKey, Rc<[f64]>>> =
        RefCell::new(HashMap::new());
}

/// A family's KArg arrays for run `p` and outer values `args`, from this
/// thread's cache or made (with the Call nodes at step `t`, which the KArg
/// nodes read only where they are free of the step).
fn karg_cached(f: &Family, p: &RunPlan, t: i64, args: &[f64]) -> KArgs {
    let key = (f.id, p.handle, arg_bits(args));
    if let Some(v) = KARGS.with(|c| c.borrow().get(&key).cloned()) {
        return v;
    }
    let v = Rc::new(f.karg(p, &f.calls(p, t, args), args));
    KARGS.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= KARG_KEEP {
            c.clear();
        }
        c.insert(key, v.clone());
    });
    v
}

/// The sum `def` on run `handle` at step `t` with outer values `args`: the
/// one definition every evaluator calls. NaN when the handle or the step
/// is not one (a row without a schedule), or the sum reads past its run's
/// schedule.
pub fn eval(def: u32, handle: f64, t: f64, args: &[f64]) -> f64 {
    let (fam, root) = family(def);
    if !(handle >= 0.0 && handle.fract() == 0.0 && t.fract() == 0.0 && t.is_finite()) {
        return f64::NAN;
    }
    let (h, t) = (handle as u32, t as i64);
    let key = (fam.id, h, t, arg_bits(args));
    if let Some(v) = SUMS.with(|c| c.borrow().get(&key).map(|v| v[root])) {
        return v;
    }
    let Some(p) = fam.run(h) else {
        return f64::NAN;
    };
    let sums: Rc<[f64]> = fam.sums(&p, t, args).into();
    let v = sums[root];
    SUMS.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= SUMS_KEEP {
            c.clear();
        }
        c.insert(key, sums);
    });
    v
}

/// Below this many (step, k) pairs in all, the sums of [`eval_cells`] are
/// summed on the calling thread: spreading them would cost more.
const PARALLEL_PAIRS: usize = 1 << 16;

/// [`eval`] at cells `0..out.len()` with the same outer values `args`,
/// cell `j` on run `handle(j)` at step `step(j)`. The sums not yet known
/// are summed once per (run, step), spread over the threads where they
/// are many: a row's sum costs O(steps), and a fit of a few hundred rows
/// of one run per start would otherwise keep one core busy. They are kept
/// as [`eval`] keeps them, for the derivatives that ask next.
pub fn eval_cells(
    def: u32,
    handle: &dyn Fn(usize) -> f64,
    step: &dyn Fn(usize) -> f64,
    args: &[f64],
    out: &mut [f64],
) {
    let (fam, root) = family(def);
    let bits = arg_bits(args);
    // The (run, step)s to sum, and the cells that wait on each.
    let mut todo: Vec<(Arc<RunPlan>, i64)> = Vec::new();
    let mut index: HashMap<(u32, i64), usize> = HashMap::new();
    let mut waiting: Vec<(usize, usize)> = Vec::new();
    let mut pairs = 0;
    for (j, o) in out.iter_mut().enumerate() {
        let (h, t) = (handle(j), step(j));
        if !(h >= 0.0 && h.fract() == 0.0 && t.fract() == 0.0 && t.is_finite()) {
            *o = f64::NAN;
            continue;
        }
        let (h, t) = (h as u32, t as i64);
        if let Some(v) = SUMS.with(|c| c.borrow().get(&(fam.id, h, t, bits)).map(|v| v[root])) {
            *o = v;
            continue;
        }
        let Some(p) = fam.run(h) else {
            *o = f64::NAN;
            continue;
        };
        if !fam.by_pass(&p, t) {
            *o = eval(def, h as f64, t as f64, args);
            continue;
        }
        let i = *index.entry((h, t)).or_insert_with(|| {
            pairs += p.ks.partition_point(|&k| k <= t + fam.body.hi);
            todo.push((p, t));
            todo.len() - 1
        });
        waiting.push((j, i));
    }
    if todo.is_empty() {
        return;
    }
    // A run's KArg arrays once, here: every thread reads them.
    let mut kargs: HashMap<u32, KArgs> = HashMap::new();
    for (p, t) in &todo {
        kargs
            .entry(p.handle)
            .or_insert_with(|| fam.karg_of(p, *t, args));
    }
    let reads: Vec<&[Vec<f64>]> = todo.iter().map(|(p, _)| &kargs[&p.handle][..]).collect();
    let sum =
        |((p, t), karg): (&(Arc<RunPlan>, i64), &&[Vec<f64>])| fam.pass_sums(p, *t, args, karg);
    let sums: Vec<Vec<f64>> = if pairs >= PARALLEL_PAIRS && todo.len() > 1 {
        use rayon::prelude::*;
        todo.par_iter().zip(&reads).map(sum).collect()
    } else {
        todo.iter().zip(&reads).map(sum).collect()
    };
    for (j, i) in waiting {
        out[j] = sums[i][root];
    }
    SUMS.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() + todo.len() > SUMS_KEEP {
            c.clear();
        }
        for ((p, t), s) in todo.iter().zip(sums) {
            c.insert((fam.id, p.handle, *t, bits), s.into());
        }
    });
}

/// A family as code generators read it: the lowered body with its value
/// and derivatives, and how often each node runs (see [`Family`]).
#[derive(Debug, Clone)]
pub struct Shape {
    /// The family, as [`family_of`] names it.
    pub id: u32,
    pub graph: Graph,
    /// The value, then its derivative by each outer value.
    pub roots: Vec<NodeId>,
    /// Per root, what is summed and its scale (see [`Summand`]).
    pub summands: Vec<Summand>,
    /// The body's variables (`Var(i)` is `leaves[i]`).
    pub leaves: Vec<Leaf>,
    /// Series the leaves read (their `series` indexes these).
    pub n_series: usize,
    pub n_args: usize,
    /// The summed steps: lo..=step + hi.
    pub lo: i64,
    pub hi: i64,
    /// Needed nodes, in topological order: on neither k nor anything
    /// per pair (once per row); on k alone (in [`RunTable::kdata`], by
    /// position); on k and the outer values; on k and the row's step.
    pub call: Vec<NodeId>,
    pub kdata: Vec<NodeId>,
    pub karg: Vec<NodeId>,
    pub pair: Vec<NodeId>,
    /// Per root, `Some((series, c))` where it is `series[k + c]` alone:
    /// the sum is a window of the series, exact where a loop rounds.
    pub windows: Vec<Option<(u16, i64)>>,
}

/// A def's family and which of its roots the def is.
pub fn family_of(def: u32) -> (u32, usize) {
    let (fam, root) = family(def);
    (fam.id, root)
}

/// The family `id`'s shape.
pub fn shape(id: u32) -> Shape {
    let fam = registry()
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .families[id as usize]
        .clone();
    let windows = fam
        .roots
        .iter()
        .map(|&root| match fam.leaf(root) {
            Some(Leaf::Value {
                series,
                at: Index::K(c),
            }) if fam.factors == [root] => Some((series, c)),
            _ => None,
        })
        .collect();
    let b = &fam.body;
    let [call, kdata, karg, pair] = fam.order.clone();
    Shape {
        id,
        graph: b.graph.clone(),
        roots: fam.roots.clone(),
        summands: fam.summands.clone(),
        leaves: b.leaves.clone(),
        n_series: b.series.len(),
        n_args: b.n_args,
        lo: b.lo,
        hi: b.hi,
        call,
        kdata,
        karg,
        pair,
        windows,
    }
}

/// What a family reads of one run, laid out for upload: the steps it
/// visits, its values on k alone there, and the run's series.
pub struct RunTable {
    /// Steps in the run's schedule (0..len).
    pub len: usize,
    /// Visited steps k, ascending (those where no factor on k alone is 0).
    pub ks: Vec<i64>,
    /// Per [`Shape::kdata`] node, its value at each visited step.
    pub kdata: Vec<Vec<f64>>,
    /// Per series of the family, the run's series of that name, if it has
    /// one (an index for [`RunTable::series`]).
    pub map: Vec<Option<usize>>,
    series: Arc<Series>,
}

impl RunTable {
    /// The run's series `s`: its values at every step, and their prefix
    /// sums in two parts (high, low; their sum is exact to about 2^-106).
    pub fn series(&self, s: usize) -> (&[f64], &[f64], &[f64]) {
        let (hi, lo) = &self.series.prefix[s];
        (&self.series.values[s], hi, lo)
    }
}

/// Family `id`'s table for run `handle` (None when the handle is not a
/// registered run).
pub fn run_table(id: u32, handle: f64) -> Option<RunTable> {
    if !(handle >= 0.0 && handle.fract() == 0.0 && handle < u32::MAX as f64) {
        return None;
    }
    let fam = registry()
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .families[id as usize]
        .clone();
    let p = fam.run(handle as u32)?;
    Some(RunTable {
        len: p.series.len(),
        ks: p.ks.clone(),
        kdata: p.kdata.clone(),
        map: p.map.clone(),
        series: p.series.clone(),
    })
}
