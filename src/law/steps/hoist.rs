//! Factors that do not depend on k taken out of a sum: sum_k c x_k is
//! c sum_k x_k, one product per row instead of one per (step, k) pair.
//!
//! A derivative of a body is mostly products: the multi-power law's
//! d/dC is (lr[k-1] - lr[k]) beta (1 + x)^-beta-1 ... with beta, C and
//! signs among its factors. Written out, each such factor is a
//! multiplication per pair, and chains that differ only by them (d/dC and
//! d/dgamma share all but a parameter and ln lr[k]) are evaluated twice.
//! Here every node on both k and the step is written as `scale * base`,
//! `scale` a product of factors on neither (computed once per row) and
//! `base` what is left; products, quotients and signs multiply the
//! scales and the bases apart, so bases that differ only by a scale
//! become one node (the graph shares equal nodes). Any other operation
//! takes its operands whole (`scale * base` as one node). A sum is then
//! `scale * sum(base)`.

use std::collections::HashMap;

use super::super::dag::{Graph, Node, NodeId};

/// A sum as its factor on neither k nor the step (`None`: 1) and the
/// node whose values are summed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summand {
    pub scale: Option<NodeId>,
    pub base: NodeId,
}

/// Rewrites `roots` of `g` (already lowered and differentiated); `kmask`
/// and `tmask`: the variables on k and on the step. Roots not on both
/// keep their node and no scale.
pub(super) fn hoist(g: &mut Graph, roots: &[NodeId], kmask: u64, tmask: u64) -> Vec<Summand> {
    let mut h = Hoist {
        masks: Vec::new(),
        memo: HashMap::new(),
        kmask,
        tmask,
    };
    roots
        .iter()
        .map(|&r| {
            if !h.pair(g, r) {
                return Summand {
                    scale: None,
                    base: r,
                };
            }
            let (scale, base) = h.split(g, r);
            Summand { scale, base }
        })
        .collect()
}

struct Hoist {
    /// Per node of the graph so far, the variables it depends on.
    masks: Vec<u64>,
    memo: HashMap<NodeId, (Option<NodeId>, NodeId)>,
    kmask: u64,
    tmask: u64,
}

impl Hoist {
    fn mask(&mut self, g: &Graph, id: NodeId) -> u64 {
        // Nodes are appended with their operands before them, so the
        // masks grow in order.
        for i in self.masks.len()..g.len() {
            let m = match g.node(i as NodeId) {
                Node::Var(v) => 1u64 << v,
                n => n.operands().fold(0, |m, o| m | self.masks[o as usize]),
            };
            self.masks.push(m);
        }
        self.masks[id as usize]
    }

    /// On k and the step: evaluated per pair.
    fn pair(&mut self, g: &Graph, id: NodeId) -> bool {
        let m = self.mask(g, id);
        m & self.kmask != 0 && m & self.tmask != 0
    }

    /// On neither k nor the step: a scale.
    fn scalar(&mut self, g: &Graph, id: NodeId) -> bool {
        self.mask(g, id) & (self.kmask | self.tmask) == 0
    }

    /// `id` as (scale, base), their product its value.
    fn split(&mut self, g: &mut Graph, id: NodeId) -> (Option<NodeId>, NodeId) {
        if let Some(&s) = self.memo.get(&id) {
            return s;
        }
        let s = if self.scalar(g, id) {
            (Some(id), g.num(1.0))
        } else if !self.pair(g, id) {
            // Evaluated per run (and values), not per pair: kept whole.
            (None, id)
        } else {
            match g.node(id) {
                Node::Mul(a, b) => {
                    let ((sa, ba), (sb, bb)) = (self.split(g, a), self.split(g, b));
                    let s = times(g, sa, sb);
                    (s, g.mul(ba, bb))
                }
                Node::Div(a, b) => {
                    let ((sa, ba), (sb, bb)) = (self.split(g, a), self.split(g, b));
                    let s = match (sa, sb) {
                        (s, None) => s,
                        (None, Some(d)) => {
                            let one = g.num(1.0);
                            Some(g.div(one, d))
                        }
                        (Some(n), Some(d)) => Some(g.div(n, d)),
                    };
                    (s, g.div(ba, bb))
                }
                Node::Neg(a) => {
                    let (sa, ba) = self.split(g, a);
                    let s = match sa {
                        None => g.num(-1.0),
                        Some(s) => g.neg(s),
                    };
                    (Some(s), ba)
                }
                n => (None, self.rebuild(g, n).unwrap_or(id)),
            }
        };
        // A scale of exactly 1 is none.
        let s = match s {
            (Some(c), b) if g.is_const(c, 1.0) => (None, b),
            s => s,
        };
        self.memo.insert(id, s);
        s
    }

    /// `id`'s value as one node.
    fn whole(&mut self, g: &mut Graph, id: NodeId) -> NodeId {
        match self.split(g, id) {
            (None, b) => b,
            (Some(s), b) => g.mul(s, b),
        }
    }

    /// Node `n` over its operands whole; `None` for a node kept as it is.
    fn rebuild(&mut self, g: &mut Graph, n: Node) -> Option<NodeId> {
        Some(match n {
            Node::Add(a, b) => {
                let (a, b) = (self.whole(g, a), self.whole(g, b));
                g.add(a, b)
            }
            Node::Sub(a, b) => {
                let (a, b) = (self.whole(g, a), self.whole(g, b));
                g.sub(a, b)
            }
            Node::Pow(a, b) => {
                let (a, b) = (self.whole(g, a), self.whole(g, b));
                g.pow(a, b)
            }
            Node::Fn1(f, a) => {
                let a = self.whole(g, a);
                g.call(f, &[a])
            }
            Node::Fn2(f, a, b) => {
                let (a, b) = (self.whole(g, a), self.whole(g, b));
                g.call(f, &[a, b])
            }
            _ => return None,
        })
    }
}

/// The product of two optional scales.
fn times(g: &mut Graph, a: Option<NodeId>, b: Option<NodeId>) -> Option<NodeId> {
    match (a, b) {
        (None, s) | (s, None) => s,
        (Some(a), Some(b)) => Some(g.mul(a, b)),
    }
}
