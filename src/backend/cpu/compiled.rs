//! The CPU evaluator of a compiled law's plan on the grid layout (curves x
//! distinct axis values): objective and gradient for many parameter
//! vectors, in f64.
//!
//! It runs the schedule of [`Plan`]: start nodes once, curve nodes once
//! per curve, axis nodes once per distinct axis value of a tile, and per
//! grid cell only the point nodes, the loss and the adjoint sums. Each node
//! of a tile is one loop over the tile's cells (operands are tile arrays or
//! broadcast scalars), branch-free so that it vectorises; the whole tile
//! pass is compiled for AVX-512, AVX2+FMA and plain SSE2 and picked at run
//! time, as the hand-written LoopLM kernel is.

use rayon::prelude::*;

use crate::backend::fastmath;
use crate::law::dag::{Node, NodeId};
use crate::law::plan::{self, Class, Plan, Sweep};
use crate::objective::{LossKind, Objective, Space};

/// Distinct axis values per tile: the tile arrays of a law with a few
/// dozen nodes stay in L1/L2 while every curve passes over them.
const TILE: usize = 256;

/// A law's plan bound to a sweep in the grid layout.
pub struct CompiledGrid {
    plan: Plan,
    n_nodes: usize,
    n_vars: usize,
    /// Per curve, its variables (point-major, from the curve's first point).
    curve_vars: Vec<f64>,
    /// Distinct axis values, ascending.
    axis: Vec<f64>,
    /// Targets and weights, one row of `axis.len()` per curve; an empty
    /// cell has target NaN and weight 0.
    y: Vec<f64>,
    w: Vec<f64>,
    /// Tile-array slot of every axis- and point-class node.
    slot: Vec<usize>,
    n_slots: usize,
    objective: Objective,
}

#[derive(Clone, Copy)]
enum V<'a> {
    S(f64),
    A(&'a [f64]),
}

impl CompiledGrid {
    /// The grid of `sweep` for `plan`, or why the grid layout does not fit:
    /// no axis, a per-point variable other than the axis, or a curve with
    /// two points at one axis value.
    pub fn new(plan: Plan, sweep: &Sweep, objective: Objective) -> Result<CompiledGrid, String> {
        let Some(axis_var) = sweep.axis else {
            return Err("the sweep has no axis variable".into());
        };
        let nv = sweep.n_vars;
        let point_vars = !(sweep.curve_vars | 1 << axis_var) & ((1u64 << nv) - 1);
        if point_vars != 0 {
            return Err("a variable other than the axis varies along a curve".into());
        }
        let (nc, na) = (sweep.curves.len(), sweep.axis_values.len());
        let mut y = vec![f64::NAN; nc * na];
        let mut w = vec![0.0; nc * na];
        let mut curve_vars = vec![0.0; nc * nv];
        for (c, r) in sweep.curves.iter().enumerate() {
            if let Some(first) = r.clone().next() {
                curve_vars[c * nv..(c + 1) * nv]
                    .copy_from_slice(&sweep.vars[first * nv..(first + 1) * nv]);
            }
            for i in r.clone() {
                let cell = c * na + sweep.axis_index[i] as usize;
                if !y[cell].is_nan() {
                    return Err(format!("curve {c} has two points at one axis value"));
                }
                y[cell] = sweep.y[i];
                w[cell] = sweep.w[i];
            }
        }
        let n_nodes = plan.graph().len();
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
            n_vars: nv,
            curve_vars,
            axis: sweep.axis_values.clone(),
            y,
            w,
            slot,
            n_slots,
            objective,
        })
    }

    /// Objective and gradient for every parameter vector of `params`
    /// (`params.len() / n_params` of them), into `f` and `g` (row-major).
    pub fn evaluate(&self, params: &[f64], f: &mut [f64], g: &mut [f64]) {
        let np = self.plan.n_params();
        f.par_iter_mut()
            .zip(g.par_chunks_mut(np.max(1)))
            .zip(params.par_chunks(np.max(1)))
            .for_each(|((f, g), p)| {
                *f = dispatch(self, p, g);
            });
    }
}

fn dispatch(cg: &CompiledGrid, p: &[f64], g: &mut [f64]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports the features the function enables.
            return unsafe { start_avx512(cg, p, g) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: as above.
            return unsafe { start_avx2(cg, p, g) };
        }
    }
    one_start::<false>(cg, p, g)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn start_avx512(cg: &CompiledGrid, p: &[f64], g: &mut [f64]) -> f64 {
    one_start::<true>(cg, p, g)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn start_avx2(cg: &CompiledGrid, p: &[f64], g: &mut [f64]) -> f64 {
    one_start::<true>(cg, p, g)
}

/// Objective and gradient (into `grad`) of one parameter vector.
#[inline(always)]
fn one_start<const FMA: bool>(cg: &CompiledGrid, params: &[f64], grad: &mut [f64]) -> f64 {
    let plan = &cg.plan;
    let graph = plan.graph();
    let (n, nv) = (cg.n_nodes, cg.n_vars);
    let nc = cg.curve_vars.len() / nv.max(1);
    let na = cg.axis.len();
    let class = &plan.class;

    // Start and curve nodes: scalars.
    let mut start = vec![0.0; n];
    for &id in &plan.forward[Class::Start as usize] {
        start[id as usize] = plan::op(
            graph.node(id),
            &|o| start[o as usize],
            &|_| f64::NAN,
            params,
        );
    }
    let mut curve = vec![0.0; nc * n];
    for c in 0..nc {
        let cv = &cg.curve_vars[c * nv..(c + 1) * nv];
        for &id in &plan.forward[Class::Curve as usize] {
            let x = {
                let row = &curve[c * n..(c + 1) * n];
                let get = |o: NodeId| match class[o as usize] {
                    Class::Start => start[o as usize],
                    _ => row[o as usize],
                };
                plan::op(graph.node(id), &get, &|v| cv[v as usize], params)
            };
            curve[c * n + id as usize] = x;
        }
    }

    let mut start_adj = vec![0.0; n];
    let mut curve_adj = vec![0.0; nc * n];
    let mut vals: Vec<Vec<f64>> = vec![vec![0.0; TILE]; cg.n_slots];
    let mut adj: Vec<Vec<f64>> = vec![vec![0.0; TILE]; cg.n_slots];
    let mut seed = vec![0.0; TILE];
    let mut fsum = 0.0;
    let obj = cg.objective;
    let value = plan.value();
    for t0 in (0..na).step_by(TILE) {
        let m = TILE.min(na - t0);
        let ax = &cg.axis[t0..t0 + m];
        // Axis nodes of the tile.
        for &id in &plan.forward[Class::Axis as usize] {
            let s = cg.slot[id as usize];
            let mut out = std::mem::take(&mut vals[s]);
            {
                let opnd = |o: NodeId| -> V {
                    match class[o as usize] {
                        Class::Start => V::S(start[o as usize]),
                        _ => V::A(&vals[cg.slot[o as usize]][..m]),
                    }
                };
                node_op::<FMA>(graph.node(id), &opnd, ax, &mut out[..m], params);
            }
            vals[s] = out;
            adj[s][..m].fill(0.0);
        }
        for c in 0..nc {
            let crow = &curve[c * n..(c + 1) * n];
            // Point nodes of this curve's row of the tile.
            for &id in &plan.forward[Class::Point as usize] {
                let s = cg.slot[id as usize];
                let mut out = std::mem::take(&mut vals[s]);
                {
                    let opnd = |o: NodeId| -> V {
                        match class[o as usize] {
                            Class::Start => V::S(start[o as usize]),
                            Class::Curve => V::S(crow[o as usize]),
                            _ => V::A(&vals[cg.slot[o as usize]][..m]),
                        }
                    };
                    node_op::<FMA>(graph.node(id), &opnd, ax, &mut out[..m], params);
                }
                vals[s] = out;
            }
            // The loss and its derivative per cell; empty cells and
            // weight-0 points contribute exactly nothing.
            let o = c * na + t0;
            let (y, w) = (&cg.y[o..o + m], &cg.w[o..o + m]);
            let pred = match class[value as usize] {
                Class::Start => V::S(start[value as usize]),
                Class::Curve => V::S(crow[value as usize]),
                _ => V::A(&vals[cg.slot[value as usize]][..m]),
            };
            fsum += loss_cells(obj, pred, y, w, &mut seed[..m]);
            // Backward out of the point nodes.
            for &id in &plan.forward[Class::Point as usize] {
                adj[cg.slot[id as usize]][..m].fill(0.0);
            }
            let seed_to = |to: NodeId,
                           v: &[f64],
                           p: V,
                           adj: &mut Vec<Vec<f64>>,
                           curve_adj: &mut [f64],
                           start_adj: &mut [f64]| {
                match class[to as usize] {
                    Class::Start => start_adj[to as usize] += dot(v, p),
                    Class::Curve => curve_adj[c * n + to as usize] += dot(v, p),
                    _ => axpy(&mut adj[cg.slot[to as usize]][..m], v, p),
                }
            };
            seed_to(
                value,
                &seed[..m],
                V::S(1.0),
                &mut adj,
                &mut curve_adj,
                &mut start_adj,
            );
            for e in &plan.edges[Class::Point as usize] {
                let from = std::mem::take(&mut adj[cg.slot[e.from as usize]]);
                let p = match class[e.partial as usize] {
                    Class::Start => V::S(start[e.partial as usize]),
                    Class::Curve => V::S(crow[e.partial as usize]),
                    _ => V::A(&vals[cg.slot[e.partial as usize]][..m]),
                };
                seed_to(
                    e.to,
                    &from[..m],
                    p,
                    &mut adj,
                    &mut curve_adj,
                    &mut start_adj,
                );
                adj[cg.slot[e.from as usize]] = from;
            }
        }
        // Backward out of the axis nodes, once per tile.
        for e in &plan.edges[Class::Axis as usize] {
            let from = std::mem::take(&mut adj[cg.slot[e.from as usize]]);
            let p = match class[e.partial as usize] {
                Class::Start => V::S(start[e.partial as usize]),
                _ => V::A(&vals[cg.slot[e.partial as usize]][..m]),
            };
            match class[e.to as usize] {
                Class::Start => start_adj[e.to as usize] += dot(&from[..m], p),
                _ => axpy(&mut adj[cg.slot[e.to as usize]][..m], &from[..m], p),
            }
            adj[cg.slot[e.from as usize]] = from;
        }
    }
    for c in 0..nc {
        for e in &plan.edges[Class::Curve as usize] {
            let a = curve_adj[c * n + e.from as usize];
            if a == 0.0 {
                continue;
            }
            let p = match class[e.partial as usize] {
                Class::Start => start[e.partial as usize],
                _ => curve[c * n + e.partial as usize],
            };
            match class[e.to as usize] {
                Class::Start => start_adj[e.to as usize] += a * p,
                _ => curve_adj[c * n + e.to as usize] += a * p,
            }
        }
    }
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
            let n = v.len();
            let mut j = 0;
            while j + 8 <= n {
                for k in 0..8 {
                    let x = v[j + k];
                    acc[k] += if x != 0.0 { x * a[j + k] } else { 0.0 };
                }
                j += 8;
            }
            let mut tail = 0.0;
            for k in j..n {
                tail += if v[k] != 0.0 { v[k] * a[k] } else { 0.0 };
            }
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

/// Objective of the tile row and the seed adjoint d rho / d pred * w per
/// cell (0 where w is 0).
#[inline(always)]
fn loss_cells(obj: Objective, pred: V, y: &[f64], w: &[f64], seed: &mut [f64]) -> f64 {
    let m = y.len();
    let mut acc = [0.0; 8];
    let delta = obj.delta;
    let huber = obj.loss == LossKind::Huber;
    let log = obj.space == Space::Log;
    for j in 0..m {
        let p = match pred {
            V::S(s) => s,
            V::A(a) => a[j],
        };
        let (r, dp) = if log {
            (p.ln() - y[j], 1.0 / p)
        } else {
            (p - y[j], 1.0)
        };
        let a = r.abs();
        let inside = !huber || a <= delta;
        let rho = if inside {
            0.5 * r * r
        } else {
            delta * (a - 0.5 * delta)
        };
        let d = if inside { r } else { delta * r.signum() };
        let keep = w[j] != 0.0;
        acc[j % 8] += if keep { w[j] * rho } else { 0.0 };
        seed[j] = if keep { w[j] * d * dp } else { 0.0 };
    }
    acc.iter().sum()
}

/// One node over a tile: `opnd` gives the operands, `ax` the axis values
/// (the only variable a tile node reads directly: the grid layout has no
/// other per-point variable, and curve variables are curve nodes).
#[inline(always)]
fn node_op<'a, const FMA: bool>(
    node: Node,
    opnd: &dyn Fn(NodeId) -> V<'a>,
    ax: &[f64],
    out: &mut [f64],
    params: &[f64],
) {
    match node {
        Node::Const(c) => out.fill(c),
        Node::Param(i) => out.fill(params[i as usize]),
        // A variable node in a tile is the axis, or (in a point node's
        // operand chain) a curve constant.
        Node::Var(_) => out.copy_from_slice(ax),
        Node::Neg(a) => unary(out, opnd(a), |x| -x),
        Node::Add(a, b) => binary(out, opnd(a), opnd(b), |x, y| x + y),
        Node::Sub(a, b) => binary(out, opnd(a), opnd(b), |x, y| x - y),
        Node::Mul(a, b) => binary(out, opnd(a), opnd(b), |x, y| x * y),
        Node::Div(a, b) => binary(out, opnd(a), opnd(b), |x, y| x / y),
        Node::Pow(a, b) => binary(out, opnd(a), opnd(b), pow::<FMA>),
        Node::Exp(a) => unary(out, opnd(a), exp::<FMA>),
        Node::Log(a) => unary(out, opnd(a), ln::<FMA>),
        Node::Sqrt(a) => unary(out, opnd(a), f64::sqrt),
        Node::Min(a, b) => binary(out, opnd(a), opnd(b), f64::min),
        Node::Max(a, b) => binary(out, opnd(a), opnd(b), f64::max),
    }
}

#[inline(always)]
fn unary(out: &mut [f64], a: V, f: impl Fn(f64) -> f64) {
    match a {
        V::S(x) => out.fill(f(x)),
        V::A(a) => {
            for (o, &x) in out.iter_mut().zip(a) {
                *o = f(x);
            }
        }
    }
}

#[inline(always)]
fn binary(out: &mut [f64], a: V, b: V, f: impl Fn(f64, f64) -> f64) {
    match (a, b) {
        (V::S(x), V::S(y)) => out.fill(f(x, y)),
        (V::A(a), V::S(y)) => {
            for (o, &x) in out.iter_mut().zip(a) {
                *o = f(x, y);
            }
        }
        (V::S(x), V::A(b)) => {
            for (o, &y) in out.iter_mut().zip(b) {
                *o = f(x, y);
            }
        }
        (V::A(a), V::A(b)) => {
            for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
                *o = f(x, y);
            }
        }
    }
}

/// ln with the standard library's values outside the fast path's domain
/// (0 -> -inf, negative -> NaN, inf -> inf), by selects.
#[inline(always)]
fn ln<const FMA: bool>(x: f64) -> f64 {
    let ok = x >= f64::MIN_POSITIVE && x < f64::INFINITY;
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
