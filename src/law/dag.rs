//! Expression DAG: an arena of nodes addressed by index, with common
//! sub-expressions shared (hash-consing) and constants folded as nodes are
//! made.
//!
//! A node's operands always have smaller indices, so the arena is in
//! topological order: evaluating nodes by increasing index is a valid
//! schedule, and walking them backwards is reverse mode.

use std::collections::HashMap;

use super::ops::Func;
use super::steps::{self, MAX_ARGS, MAX_OPS, NONE};

/// Index of a node in its [`Graph`].
pub type NodeId = u32;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Node {
    Const(f64),
    /// A data column, by its index in the law's variables.
    Var(u16),
    /// A parameter, by its index in the law's parameters.
    Param(u16),
    Neg(NodeId),
    Add(NodeId, NodeId),
    Sub(NodeId, NodeId),
    Mul(NodeId, NodeId),
    Div(NodeId, NodeId),
    Pow(NodeId, NodeId),
    /// A function of one operand (see [`super::ops`]).
    Fn1(Func, NodeId),
    /// A function of two operands.
    Fn2(Func, NodeId, NodeId),
    /// A sum along the run's steps (see [`super::steps`]): its def, and
    /// as operands the run's schedule, the step and the outer values its
    /// body uses ([`NONE`] past them).
    Steps(u32, [NodeId; MAX_OPS]),
}

impl Node {
    /// The operands, in order.
    pub fn operands(&self) -> impl Iterator<Item = NodeId> {
        let mut ops = [NONE; MAX_OPS];
        match *self {
            Node::Const(_) | Node::Var(_) | Node::Param(_) => {}
            Node::Neg(a) | Node::Fn1(_, a) => ops[0] = a,
            Node::Add(a, b)
            | Node::Sub(a, b)
            | Node::Mul(a, b)
            | Node::Div(a, b)
            | Node::Pow(a, b)
            | Node::Fn2(_, a, b) => (ops[0], ops[1]) = (a, b),
            Node::Steps(_, o) => ops = o,
        }
        ops.into_iter().filter(|&o| o != NONE)
    }

    /// The node as text, its operands written by `opnd` and its leaves
    /// named by `vars` and `params`: `a + b`, `exp(a)`. Sums and
    /// differences come in parentheses, so that the text of a whole
    /// expression reads unambiguously.
    pub fn text(
        &self,
        opnd: &dyn Fn(NodeId) -> String,
        vars: &[String],
        params: &[String],
    ) -> String {
        let s = opnd;
        match *self {
            Node::Const(v) => format!("{v}"),
            Node::Var(v) => vars[v as usize].clone(),
            Node::Param(p) => params[p as usize].clone(),
            Node::Neg(a) => format!("-{}", s(a)),
            Node::Add(a, b) => format!("({} + {})", s(a), s(b)),
            Node::Sub(a, b) => format!("({} - {})", s(a), s(b)),
            Node::Mul(a, b) => format!("{}*{}", s(a), s(b)),
            Node::Div(a, b) => format!("{}/{}", s(a), s(b)),
            Node::Pow(a, b) => format!("{}^{}", s(a), s(b)),
            Node::Fn1(f, a) => format!("{}({})", f.name(), s(a)),
            Node::Fn2(f, a, b) => format!("{}({}, {})", f.name(), s(a), s(b)),
            Node::Steps(d, o) => steps::text(d, &|i| s(o[2 + i])),
        }
    }

    /// The node's value from its operands' (`get`), a variable's (`var`)
    /// or a parameter's: the one scalar definition of every operation.
    #[inline(always)]
    pub fn eval(
        &self,
        get: &dyn Fn(NodeId) -> f64,
        var: &dyn Fn(u16) -> f64,
        params: &[f64],
    ) -> f64 {
        match *self {
            Node::Const(c) => c,
            Node::Var(i) => var(i),
            Node::Param(i) => params[i as usize],
            Node::Neg(a) => -get(a),
            Node::Add(a, b) => get(a) + get(b),
            Node::Sub(a, b) => get(a) - get(b),
            Node::Mul(a, b) => get(a) * get(b),
            Node::Div(a, b) => get(a) / get(b),
            Node::Pow(a, b) => get(a).powf(get(b)),
            Node::Fn1(f, a) => f.eval(get(a), 0.0),
            Node::Fn2(f, a, b) => f.eval(get(a), get(b)),
            Node::Steps(d, o) => {
                let mut args = [0.0; MAX_ARGS];
                let n = steps::n_args(d);
                for (x, &op) in args.iter_mut().zip(&o[2..2 + n]) {
                    *x = get(op);
                }
                steps::eval(d, get(o[0]), get(o[1]), &args[..n])
            }
        }
    }

    /// Hash key: the node with its constant's bits (f64 is not `Hash`).
    fn key(&self) -> Key {
        let two = |a: u32, b: u32| (a as u64) << 32 | b as u64;
        match *self {
            Node::Const(v) => (0, [v.to_bits(), 0, 0, 0]),
            Node::Var(i) => (1, [i as u64, 0, 0, 0]),
            Node::Param(i) => (2, [i as u64, 0, 0, 0]),
            Node::Neg(a) => (3, [a as u64, 0, 0, 0]),
            Node::Add(a, b) => (4, [two(a, b), 0, 0, 0]),
            Node::Sub(a, b) => (5, [two(a, b), 0, 0, 0]),
            Node::Mul(a, b) => (6, [two(a, b), 0, 0, 0]),
            Node::Div(a, b) => (7, [two(a, b), 0, 0, 0]),
            Node::Pow(a, b) => (8, [two(a, b), 0, 0, 0]),
            Node::Fn1(f, a) => (9, [two(f as u32, a), 0, 0, 0]),
            Node::Fn2(f, a, b) => (10, [two(f as u32, a), b as u64, 0, 0]),
            Node::Steps(d, o) => (
                11,
                [two(d, o[0]), two(o[1], o[2]), two(o[3], o[4]), o[5] as u64],
            ),
        }
    }
}

type Key = (u8, [u64; 4]);

/// The arena. Build nodes only through the methods below, which fold
/// constants, apply identities that hold for every finite input (x + 0,
/// x * 1, x * 0, x ^ 1, ...) and share equal nodes.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    nodes: Vec<Node>,
    index: HashMap<Key, NodeId>,
}

impl Graph {
    pub fn new() -> Graph {
        Graph::default()
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn node(&self, id: NodeId) -> Node {
        self.nodes[id as usize]
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    fn intern(&mut self, n: Node) -> NodeId {
        let key = n.key();
        if let Some(&id) = self.index.get(&key) {
            return id;
        }
        let id = self.nodes.len() as NodeId;
        self.nodes.push(n);
        self.index.insert(key, id);
        id
    }

    pub fn constant(&self, id: NodeId) -> Option<f64> {
        match self.node(id) {
            Node::Const(v) => Some(v),
            _ => None,
        }
    }

    pub fn num(&mut self, v: f64) -> NodeId {
        // One zero: -0.0 and 0.0 behave alike everywhere a law uses them.
        let v = if v == 0.0 { 0.0 } else { v };
        self.intern(Node::Const(v))
    }

    pub fn var(&mut self, i: u16) -> NodeId {
        self.intern(Node::Var(i))
    }

    pub fn param(&mut self, i: u16) -> NodeId {
        self.intern(Node::Param(i))
    }

    pub fn neg(&mut self, a: NodeId) -> NodeId {
        match self.node(a) {
            Node::Const(v) => self.num(-v),
            Node::Neg(x) => x,
            _ => self.intern(Node::Neg(a)),
        }
    }

    pub fn add(&mut self, a: NodeId, b: NodeId) -> NodeId {
        match (self.constant(a), self.constant(b)) {
            (Some(x), Some(y)) => self.num(x + y),
            (Some(0.0), None) => b,
            (None, Some(0.0)) => a,
            _ => {
                if let Node::Neg(nb) = self.node(b) {
                    return self.sub(a, nb);
                }
                // Commutative: one order, so a + b and b + a share a node.
                let (a, b) = (a.min(b), a.max(b));
                self.intern(Node::Add(a, b))
            }
        }
    }

    pub fn sub(&mut self, a: NodeId, b: NodeId) -> NodeId {
        if a == b {
            return self.num(0.0);
        }
        match (self.constant(a), self.constant(b)) {
            (Some(x), Some(y)) => self.num(x - y),
            (None, Some(0.0)) => a,
            (Some(0.0), None) => self.neg(b),
            _ => self.intern(Node::Sub(a, b)),
        }
    }

    pub fn mul(&mut self, a: NodeId, b: NodeId) -> NodeId {
        match (self.constant(a), self.constant(b)) {
            (Some(x), Some(y)) => self.num(x * y),
            (Some(x), _) | (_, Some(x)) if x == 0.0 => self.num(0.0),
            (Some(1.0), None) => b,
            (None, Some(1.0)) => a,
            (Some(-1.0), None) => self.neg(b),
            (None, Some(-1.0)) => self.neg(a),
            _ => {
                let (a, b) = (a.min(b), a.max(b));
                self.intern(Node::Mul(a, b))
            }
        }
    }

    pub fn div(&mut self, a: NodeId, b: NodeId) -> NodeId {
        match (self.constant(a), self.constant(b)) {
            (Some(x), Some(y)) => self.num(x / y),
            (Some(0.0), None) => self.num(0.0),
            (None, Some(1.0)) => a,
            _ => self.intern(Node::Div(a, b)),
        }
    }

    pub fn pow(&mut self, a: NodeId, b: NodeId) -> NodeId {
        match (self.constant(a), self.constant(b)) {
            (Some(x), Some(y)) => self.num(x.powf(y)),
            (_, Some(1.0)) => a,
            (_, Some(0.0)) => self.num(1.0),
            _ => self.intern(Node::Pow(a, b)),
        }
    }

    /// `f` of `args` (one or two, as `f` takes), folded when the
    /// operands are constants.
    pub fn call(&mut self, f: Func, args: &[NodeId]) -> NodeId {
        let spec = f.spec();
        debug_assert_eq!(args.len(), spec.arity);
        let (a, b) = (args[0], args.get(1).copied());
        let (x, y) = (self.constant(a), b.and_then(|b| self.constant(b)));
        match b {
            None => match x {
                Some(x) => self.num((spec.eval)(x, 0.0)),
                None => self.intern(Node::Fn1(f, a)),
            },
            Some(b) => match (x, y) {
                (Some(x), Some(y)) => self.num((spec.eval)(x, y)),
                _ if a == b && spec.idempotent => a,
                _ if spec.commutative => self.intern(Node::Fn2(f, a.min(b), a.max(b))),
                _ => self.intern(Node::Fn2(f, a, b)),
            },
        }
    }

    /// Sum `def` (see [`super::steps`]) on the run `schedule` at `step`,
    /// its body reading `args`.
    pub fn steps(&mut self, def: u32, schedule: NodeId, step: NodeId, args: &[NodeId]) -> NodeId {
        let mut ops = [NONE; MAX_OPS];
        ops[0] = schedule;
        ops[1] = step;
        ops[2..2 + args.len()].copy_from_slice(args);
        self.intern(Node::Steps(def, ops))
    }

    pub fn exp(&mut self, a: NodeId) -> NodeId {
        self.call(Func::Exp, &[a])
    }

    pub fn log(&mut self, a: NodeId) -> NodeId {
        self.call(Func::Log, &[a])
    }

    /// Per node, bit i set when it depends on variable i.
    pub fn var_masks(&self) -> Vec<u64> {
        let mut mask = vec![0u64; self.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            mask[i] = match n {
                Node::Var(v) => 1u64 << v,
                _ => n.operands().fold(0, |m, o| m | mask[o as usize]),
            };
        }
        mask
    }

    /// Node `id` as formula text, cut `depth` levels down with "...".
    pub fn expr(&self, id: NodeId, vars: &[String], params: &[String], depth: usize) -> String {
        if depth == 0 {
            return "...".into();
        }
        self.node(id)
            .text(&|o| self.expr(o, vars, params, depth - 1), vars, params)
    }

    /// `true` when `id` is the constant `v`.
    pub fn is_const(&self, id: NodeId, v: f64) -> bool {
        self.constant(id) == Some(v)
    }

    /// Evaluate every node up to and including `upto` in f64 into `out`
    /// (resized), given variable and parameter values. A plain reference
    /// interpreter: the fast evaluators hoist and batch what this repeats.
    pub fn eval_all(&self, upto: NodeId, vars: &[f64], params: &[f64], out: &mut Vec<f64>) {
        out.clear();
        out.reserve(upto as usize + 1);
        for n in &self.nodes[..=upto as usize] {
            let x = n.eval(&|i| out[i as usize], &|i| vars[i as usize], params);
            out.push(x);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_subexpressions_share_a_node() {
        let mut g = Graph::new();
        let (n, t1) = (g.var(0), g.param(0));
        let s1 = g.add(n, t1);
        let s2 = g.add(t1, n);
        assert_eq!(s1, s2, "a + b and b + a are one node");
        let before = g.len();
        let again = g.add(n, t1);
        assert_eq!(again, s1);
        assert_eq!(g.len(), before, "no new node for a repeat");
    }

    #[test]
    fn constants_fold_and_identities_hold() {
        let mut g = Graph::new();
        let x = g.var(0);
        let (zero, one, two) = (g.num(0.0), g.num(1.0), g.num(2.0));
        assert_eq!(g.add(x, zero), x);
        assert_eq!(g.mul(x, one), x);
        let z = g.mul(x, zero);
        assert!(g.is_const(z, 0.0));
        assert_eq!(g.pow(x, one), x);
        let three = g.add(one, two);
        assert_eq!(g.constant(three), Some(3.0));
        let nx = g.neg(x);
        assert_eq!(g.neg(nx), x);
        let d = g.sub(x, x);
        assert_eq!(g.constant(d), Some(0.0));
        let mnx = g.add(two, nx);
        assert!(matches!(g.node(mnx), Node::Sub(..)), "a + -b is a - b");
    }

    #[test]
    fn operands_precede_their_node() {
        let mut g = Graph::new();
        let (n, a) = (g.var(0), g.param(0));
        let p = g.pow(n, a);
        let e = g.exp(p);
        let f = g.div(e, n);
        for (i, node) in g.nodes().iter().enumerate() {
            for o in node.operands() {
                assert!((o as usize) < i);
            }
        }
        let mut out = Vec::new();
        g.eval_all(f, &[2.0], &[3.0], &mut out);
        assert_eq!(out[f as usize], 8f64.exp() / 2.0);
    }
}
