//! Sums with a geometric kernel in the distance to the row's step:
//! `sum(k = lo..step: G(k) + H(k) * b^(step - k + c))` with G and H free of
//! the step and b free of k and the step (the LR-annealing law's S2, whose
//! momentum decays by lambda per step). Such a sum obeys a recurrence
//! along the steps, Q(t) = b^(t - t') Q(t') + H(t), so one pass over a
//! run's visited steps per parameter vector gives it at every row's step:
//! O(steps) per run, where the general sum costs O(rows x steps) with a
//! power per pair. The derivatives by the outer values ride along in
//! forward mode.
//!
//! Recognised in the written body, before it is lowered: the body must be
//! affine in the one power whose exponent is step - k + c. Anything else
//! (or a base that is not positive and finite at the values asked) is
//! summed by the general pass, which defines the same value.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use super::super::dag::{Graph, Node, NodeId};
use super::super::diff;
use super::super::plan::{lower, Class};
use super::super::vector::{node_op, V};
use super::{arg_bits, ArgBits, Family, Leaf, RunPlan};

/// The parts of a geometric body, lowered, in a graph of their own (the
/// family's, which code generators read, stays as it is).
#[derive(Debug, Clone)]
pub(super) struct Geometric {
    graph: Graph,
    /// G: the part without the power.
    alpha: NodeId,
    /// H: the power's coefficient.
    beta: NodeId,
    /// b: the power's base.
    base: NodeId,
    /// The exponent's constant c.
    c: f64,
    /// d/d(outer value j) of G, H and b.
    d_alpha: Vec<NodeId>,
    d_beta: Vec<NodeId>,
    d_base: Vec<NodeId>,
    /// Every node these read, in topological order.
    nodes: Vec<NodeId>,
}

/// `root` of `body` split as alpha + beta * base^(step - k + c), the
/// parts lowered at `level`; None when it does not split.
pub(super) fn split(
    body: &Graph,
    root: NodeId,
    leaves: &[Leaf],
    n_args: usize,
    level: &dyn Fn(u64) -> Class,
) -> Option<Geometric> {
    let (mut kmask, mut tmask) = (0u64, 0u64);
    for (i, l) in leaves.iter().enumerate() {
        let (dk, dt) = l.deps();
        kmask |= u64::from(dk) << i;
        tmask |= u64::from(dt) << i;
    }
    let mut graph = body.clone();
    let g = &mut graph;
    let masks = g.var_masks();
    let on_t = |n: NodeId| masks[n as usize] & tmask != 0;
    let on_kt = |n: NodeId| masks[n as usize] & (kmask | tmask) != 0;
    // The power: exactly one node base^(step - k + c) in the body.
    let mut cone = vec![false; root as usize + 1];
    cone[root as usize] = true;
    let mut power = None;
    for id in (0..=root).rev() {
        if !cone[id as usize] {
            continue;
        }
        let node = g.node(id);
        if let Node::Pow(b, e) = node {
            let step_less_k =
                matches!(linear(g, e, leaves), Some((t, k, _)) if t == 1.0 && k == -1.0);
            if !on_kt(b) && step_less_k {
                if power.is_some_and(|p| p != id) {
                    return None;
                }
                power = Some(id);
                continue;
            }
        }
        for o in node.operands() {
            cone[o as usize] = true;
        }
    }
    let p = power?;
    let Node::Pow(base, e) = g.node(p) else {
        return None;
    };
    let (_, _, c) = linear(g, e, leaves)?;
    let (alpha, beta) = affine(g, root, p, &on_t)?;
    let zero = g.num(0.0);
    let (alpha, beta) = (alpha.unwrap_or(zero), beta.unwrap_or(zero));
    let lowered = |g: &mut Graph, n: NodeId| {
        let l = lower(g, n, level);
        let d: Vec<NodeId> = diff::gradient(g, l, n_args)
            .into_iter()
            .map(|d| lower(g, d, level))
            .collect();
        (l, d)
    };
    let (alpha, d_alpha) = lowered(g, alpha);
    let (beta, d_beta) = lowered(g, beta);
    let (base, d_base) = lowered(g, base);
    // What the recurrence assumes: G and H free of the step, b of k too.
    let masks = g.var_masks();
    let free = |n: &NodeId, m: u64| masks[*n as usize] & m == 0;
    let ok = [alpha, beta]
        .iter()
        .chain(&d_alpha)
        .chain(&d_beta)
        .all(|n| free(n, tmask))
        && std::iter::once(&base)
            .chain(&d_base)
            .all(|n| free(n, kmask | tmask));
    if !ok {
        return None;
    }
    let mut need = vec![false; g.len()];
    let mut stack: Vec<NodeId> = [alpha, beta, base]
        .into_iter()
        .chain(d_alpha.iter().copied())
        .chain(d_beta.iter().copied())
        .chain(d_base.iter().copied())
        .collect();
    while let Some(n) = stack.pop() {
        if !need[n as usize] {
            need[n as usize] = true;
            stack.extend(g.node(n).operands());
        }
    }
    let nodes = (0..g.len() as NodeId)
        .filter(|&n| need[n as usize])
        .collect();
    Some(Geometric {
        graph,
        alpha,
        beta,
        base,
        c,
        d_alpha,
        d_beta,
        d_base,
        nodes,
    })
}

/// `n` as t*step + k*k + c, constant coefficients, or None.
fn linear(g: &Graph, n: NodeId, leaves: &[Leaf]) -> Option<(f64, f64, f64)> {
    let add = |a: (f64, f64, f64), b: (f64, f64, f64), s: f64| {
        (a.0 + s * b.0, a.1 + s * b.1, a.2 + s * b.2)
    };
    let scale = |a: (f64, f64, f64), s: f64| (s * a.0, s * a.1, s * a.2);
    match g.node(n) {
        Node::Const(c) => Some((0.0, 0.0, c)),
        Node::Var(v) => match leaves.get(v as usize)? {
            Leaf::T => Some((1.0, 0.0, 0.0)),
            Leaf::K => Some((0.0, 1.0, 0.0)),
            _ => None,
        },
        Node::Neg(a) => Some(scale(linear(g, a, leaves)?, -1.0)),
        Node::Add(a, b) => Some(add(linear(g, a, leaves)?, linear(g, b, leaves)?, 1.0)),
        Node::Sub(a, b) => Some(add(linear(g, a, leaves)?, linear(g, b, leaves)?, -1.0)),
        Node::Mul(a, b) => match (g.constant(a), g.constant(b)) {
            (Some(s), _) => Some(scale(linear(g, b, leaves)?, s)),
            (_, Some(s)) => Some(scale(linear(g, a, leaves)?, s)),
            _ => None,
        },
        _ => None,
    }
}

/// `n` as alpha + beta * p with alpha and beta free of the step (None for
/// a zero part), built in `g`; None when `n` is not affine in `p`.
fn affine(
    g: &mut Graph,
    n: NodeId,
    p: NodeId,
    on_t: &dyn Fn(NodeId) -> bool,
) -> Option<(Option<NodeId>, Option<NodeId>)> {
    type Part = Option<NodeId>;
    // a + b, or a - b: a missing part is zero.
    fn join(g: &mut Graph, a: Part, b: Part, minus: bool) -> Part {
        match (a, b, minus) {
            (Some(a), Some(b), false) => Some(g.add(a, b)),
            (Some(a), Some(b), true) => Some(g.sub(a, b)),
            (x, None, _) => x,
            (None, Some(b), false) => Some(b),
            (None, Some(b), true) => Some(g.neg(b)),
        }
    }
    if n == p {
        return Some((None, Some(g.num(1.0))));
    }
    if !on_t(n) {
        return Some((Some(n), None));
    }
    let scale = |g: &mut Graph, x: Part, s: NodeId, div: bool| {
        x.map(|x| if div { g.div(x, s) } else { g.mul(x, s) })
    };
    match g.node(n) {
        Node::Add(a, b) | Node::Sub(a, b) => {
            let minus = matches!(g.node(n), Node::Sub(..));
            let (a0, a1) = affine(g, a, p, on_t)?;
            let (b0, b1) = affine(g, b, p, on_t)?;
            Some((join(g, a0, b0, minus), join(g, a1, b1, minus)))
        }
        Node::Neg(a) => {
            let (a0, a1) = affine(g, a, p, on_t)?;
            Some((a0.map(|x| g.neg(x)), a1.map(|x| g.neg(x))))
        }
        Node::Mul(a, b) if !on_t(a) || !on_t(b) => {
            let (s, x) = if on_t(a) { (b, a) } else { (a, b) };
            let (x0, x1) = affine(g, x, p, on_t)?;
            Some((scale(g, x0, s, false), scale(g, x1, s, false)))
        }
        Node::Div(a, b) if !on_t(b) => {
            let (a0, a1) = affine(g, a, p, on_t)?;
            Some((scale(g, a0, b, true), scale(g, a1, b, true)))
        }
        _ => None,
    }
}

/// Per visited step of a run (by position in `ks`), for one parameter
/// vector: the running sums the rows read.
struct Prefix {
    b: f64,
    db: Vec<f64>,
    /// Sum of G, and of dG/d(value j).
    sg: Vec<f64>,
    sgd: Vec<Vec<f64>>,
    /// Q(i) = sum over j <= i of H(k_j) b^(k_i - k_j), and its dH part.
    q: Vec<f64>,
    qd: Vec<Vec<f64>>,
    /// R(i) = sum over j <= i of H(k_j) (k_i - k_j) b^(k_i - k_j - 1):
    /// dQ/db.
    r: Vec<f64>,
}

/// Prefixes kept per thread, and the numbers they may hold in all (64 MB,
/// for runs of millions of steps): a batch's rows of one run and start
/// ask one after another.
const KEEP: usize = 16;
const KEEP_NUMBERS: usize = 1 << 23;

/// The prefixes a thread keeps (None where the general pass sums, so
/// that each row does not find that out again), and the numbers they hold.
type Kept = (HashMap<(u32, u32, ArgBits), Option<Rc<Prefix>>>, usize);

thread_local! {
    static PREFIXES: RefCell<Kept> = RefCell::new((HashMap::new(), 0));
}

/// The sum and its derivatives by every outer value at step `t` (summed
/// to `last`), or None where the base is not positive and finite (the
/// general pass then defines them).
pub(super) fn sums(
    f: &Family,
    geo: &Geometric,
    p: &RunPlan,
    t: i64,
    last: i64,
    args: &[f64],
) -> Option<Vec<f64>> {
    let key = (f.id, p.handle, arg_bits(args));
    let pre = match PREFIXES.with(|c| c.borrow().0.get(&key).cloned()) {
        Some(v) => v?,
        None => {
            let v = prefix(f, geo, p, args).map(Rc::new);
            let size = v.as_ref().map_or(0, |v| v.q.len() * (3 + 2 * args.len()));
            PREFIXES.with(|c| {
                let (kept, numbers) = &mut *c.borrow_mut();
                if kept.len() >= KEEP || *numbers + size > KEEP_NUMBERS {
                    kept.clear();
                    *numbers = 0;
                }
                kept.insert(key, v.clone());
                *numbers += size;
            });
            v?
        }
    };
    let n = args.len();
    let m = p.ks.partition_point(|&k| k <= last);
    if m == 0 {
        return Some(vec![0.0; 1 + n]);
    }
    let i = m - 1;
    let e = (t - p.ks[i]) as f64 + geo.c;
    let be = pre.b.powf(e);
    // d(b^e)/db; e b^(e-1) is 0 at e = 0 for any positive b.
    let dbe = if e == 0.0 {
        0.0
    } else {
        e * pre.b.powf(e - 1.0)
    };
    let mut out = Vec::with_capacity(1 + n);
    out.push(pre.sg[i] + pre.q[i] * be);
    for j in 0..n {
        out.push(
            pre.sgd[j][i] + (pre.qd[j][i] + pre.db[j] * pre.r[i]) * be + pre.q[i] * dbe * pre.db[j],
        );
    }
    Some(out)
}

/// One pass over the run's visited steps at `args`.
fn prefix(f: &Family, geo: &Geometric, p: &RunPlan, args: &[f64]) -> Option<Prefix> {
    let cols = columns(f, geo, p, args);
    let scalar = |n: NodeId| match &cols[n as usize] {
        Col::S(x) => Some(*x),
        _ => None,
    };
    let b = scalar(geo.base)?;
    if !(b > 0.0 && b.is_finite()) {
        return None;
    }
    let db: Vec<f64> = geo
        .d_base
        .iter()
        .map(|&d| scalar(d))
        .collect::<Option<_>>()?;
    let at = |n: NodeId, i: usize| match &cols[n as usize] {
        Col::S(x) => *x,
        Col::A(a) => a[i],
        Col::None => f64::NAN,
    };
    let len = p.ks.len();
    let n = args.len();
    let mut pre = Prefix {
        b,
        db,
        sg: Vec::with_capacity(len),
        sgd: vec![Vec::with_capacity(len); n],
        q: Vec::with_capacity(len),
        qd: vec![Vec::with_capacity(len); n],
        r: Vec::with_capacity(len),
    };
    let (mut sg, mut q, mut r) = (0.0, 0.0, 0.0);
    let (mut sgd, mut qd) = (vec![0.0; n], vec![0.0; n]);
    for i in 0..len {
        let gap = if i == 0 { 0 } else { p.ks[i] - p.ks[i - 1] };
        let (bg, dbg) = power(b, gap);
        r = bg * r + dbg * q;
        q = bg * q + at(geo.beta, i);
        sg += at(geo.alpha, i);
        pre.sg.push(sg);
        pre.q.push(q);
        pre.r.push(r);
        for j in 0..n {
            qd[j] = bg * qd[j] + at(geo.d_beta[j], i);
            sgd[j] += at(geo.d_alpha[j], i);
            pre.qd[j].push(qd[j]);
            pre.sgd[j].push(sgd[j]);
        }
    }
    Some(pre)
}

/// b^g and its derivative g b^(g-1), for a whole number of steps g >= 0.
fn power(b: f64, g: i64) -> (f64, f64) {
    match i32::try_from(g) {
        Ok(0) => (1.0, 0.0),
        Ok(g) => (b.powi(g), f64::from(g) * b.powi(g - 1)),
        Err(_) => (b.powf(g as f64), g as f64 * b.powf(g as f64 - 1.0)),
    }
}

/// A node's values over a run's visited steps.
enum Col {
    None,
    S(f64),
    A(Vec<f64>),
}

/// The values of the geometric parts' nodes at `args`, over the run's
/// visited steps (a scalar for a node not on k).
fn columns(f: &Family, geo: &Geometric, p: &RunPlan, args: &[f64]) -> Vec<Col> {
    let g = &geo.graph;
    let mut cols: Vec<Col> = (0..g.len()).map(|_| Col::None).collect();
    for &id in &geo.nodes {
        let leaf = match g.node(id) {
            Node::Var(v) => f.body.leaves.get(v as usize).copied(),
            _ => None,
        };
        let col = if let Some(leaf) = leaf {
            if leaf.deps().0 {
                Col::A(p.ks.iter().map(|&k| f.leaf_at(leaf, p, k, 0)).collect())
            } else {
                Col::S(f.leaf_at(leaf, p, 0, 0))
            }
        } else {
            let node = g.node(id);
            if node
                .operands()
                .all(|o| matches!(cols[o as usize], Col::S(_)))
            {
                let s = |o: NodeId| match cols[o as usize] {
                    Col::S(x) => x,
                    _ => f64::NAN,
                };
                Col::S(node.eval(&s, &|_| f64::NAN, args))
            } else {
                let mut out = vec![0.0; p.ks.len()];
                let opnd = |o: NodeId| match &cols[o as usize] {
                    Col::S(x) => V::S(*x),
                    Col::A(a) => V::A(a),
                    Col::None => V::S(f64::NAN),
                };
                node_op::<false>(node, &opnd, &mut out, args);
                Col::A(out)
            }
        };
        cols[id as usize] = col;
    }
    cols
}
