//! A separable law's axis term when it is one power of the axis variable,
//! `u = s1 (d + s3)^s2` (lowered to `s1 exp(s2 ln(d + s3))`), or more
//! generally `s1 exp(s2 a)` for a data column `a` of the axis (`ln d`
//! when there is no shift, or `d` itself), with `s1`, `s2`, `s3`
//! per-start values: the form of almost every scaling law's data term
//! (LoopLM's B/(D + t2)^beta, Chinchilla's B/D^beta).
//!
//! In the point layout the axis nodes are evaluated per point, and a pass
//! per node and per backward edge costs more than the arithmetic: for
//! this form the whole span is one loop that forms the term, the
//! prediction and the loss, and sums the five numbers the gradient needs
//! (2 w rho, g, g v, g v ln x, g v / x with g the seed adjoint), as a
//! kernel written for the law would. On the grid, with few curves to
//! share a tile's axis values, the passes cost as much: there the term is
//! one pass forward (v, ln x, 1/x per value) and one back (three sums).
//! The plan's nodes and edges of the axis class are then skipped; the
//! sums go straight to the start adjoints.

use super::{cell, CpuLayout, Separable};
use crate::fastmath::{self, mul_add};
use crate::law::dag::{Node, NodeId};
use crate::law::ops::Func;
use crate::law::plan::{Class, Plan};
use crate::objective::{LossKind, Objective, Space};

/// The matched term (see the module docs).
#[derive(Debug, Clone, Copy)]
pub(super) struct PowerTerm {
    /// The coefficient; None for 1.
    pub s1: Option<NodeId>,
    pub s2: NodeId,
    pub base: Base,
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Base {
    /// x = d + s3, with d an axis-level data node.
    Shifted { d: NodeId, s3: NodeId },
    /// The exponent's data factor (ln x, or any other axis-level data
    /// node) is a cached column.
    Log(NodeId),
}

impl PowerTerm {
    /// The term, when `sep`'s axis node has this form and the axis class
    /// holds nothing else (so that skipping it skips no other work).
    pub fn detect(plan: &Plan, sep: &Separable, layout: CpuLayout) -> Option<PowerTerm> {
        if layout == CpuLayout::Table {
            return None;
        }
        let g = plan.graph();
        let class = |id: NodeId| plan.class[id as usize];
        let start = |id: NodeId| class(id) == Class::Start;
        let axis_data =
            |id: NodeId| class(id) == Class::Data && plan.level[id as usize] == Class::Axis;
        let u = sep.axis_node;
        if class(u) != Class::Axis {
            return None;
        }
        let is_exp = |id: NodeId| matches!(g.node(id), Node::Fn1(Func::Exp, _));
        let (s1, ex) = match g.node(u) {
            Node::Mul(a, b) if start(a) && is_exp(b) => (Some(a), b),
            Node::Mul(a, b) if start(b) && is_exp(a) => (Some(b), a),
            Node::Fn1(Func::Exp, _) => (None, u),
            _ => return None,
        };
        let Node::Fn1(Func::Exp, m) = g.node(ex) else {
            return None;
        };
        let (l, s2) = match g.node(m) {
            Node::Mul(a, b) if start(b) && !start(a) => (a, b),
            Node::Mul(a, b) if start(a) && !start(b) => (b, a),
            _ => return None,
        };
        let mut nodes = vec![u, ex, m, l];
        let base = if axis_data(l) {
            Base::Log(l)
        } else {
            let Node::Fn1(Func::Log, x) = g.node(l) else {
                return None;
            };
            let (d, s3) = match g.node(x) {
                Node::Add(a, b) if axis_data(a) && start(b) => (a, b),
                Node::Add(a, b) if start(a) && axis_data(b) => (b, a),
                _ => return None,
            };
            nodes.push(x);
            Base::Shifted { d, s3 }
        };
        let recip_of_x = |id: NodeId| match (g.node(id), base) {
            (Node::Div(one, x), Base::Shifted { .. }) => {
                g.constant(one) == Some(1.0) && Some(x) == nodes.get(4).copied()
            }
            _ => false,
        };
        plan.forward[Class::Axis as usize]
            .iter()
            .all(|&id| nodes.contains(&id) || recip_of_x(id))
            .then_some(PowerTerm { s1, s2, base })
    }
}

/// One span's sums for prediction `sa * v + sc`, v = exp(s2 ln x): `col`
/// is d (x = d + s3) when SHIFT, else ln x. Returns [sum 2 w rho, sum g,
/// sum g v, sum g v ln x, sum g v / x]; with MASK (some weight is 0) a
/// point whose seed adjoint is 0 adds exactly nothing, as [`super::dot`]
/// has it.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) fn span_sums<const FMA: bool, const SHIFT: bool, const MASK: bool>(
    obj: Objective,
    col: &[f64],
    s3: f64,
    s2: f64,
    sa: f64,
    sc: f64,
    y: &[f64],
    w: &[f64],
) -> [f64; 5] {
    let d = obj.delta;
    match (obj.space, obj.loss) {
        (Space::Linear, LossKind::Mse) => {
            sums_impl::<FMA, SHIFT, false, false, MASK>(d, col, s3, s2, sa, sc, y, w)
        }
        (Space::Linear, LossKind::Huber) => {
            sums_impl::<FMA, SHIFT, false, true, MASK>(d, col, s3, s2, sa, sc, y, w)
        }
        (Space::Log, LossKind::Mse) => {
            sums_impl::<FMA, SHIFT, true, false, MASK>(d, col, s3, s2, sa, sc, y, w)
        }
        (Space::Log, LossKind::Huber) => {
            sums_impl::<FMA, SHIFT, true, true, MASK>(d, col, s3, s2, sa, sc, y, w)
        }
    }
}

/// Lanes of independent accumulators per sum: the loop vectorises across
/// them without reordering any one lane's sum.
const LANES: usize = 8;

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn sums_impl<
    const FMA: bool,
    const SHIFT: bool,
    const LOG: bool,
    const HUBER: bool,
    const MASK: bool,
>(
    delta: f64,
    col: &[f64],
    s3: f64,
    s2: f64,
    sa: f64,
    sc: f64,
    y: &[f64],
    w: &[f64],
) -> [f64; 5] {
    let k = Term {
        delta,
        s3,
        s2,
        sa,
        sc,
    };
    let n = col.len().min(y.len()).min(w.len());
    let mut acc = [[0.0f64; LANES]; 5];
    let whole = n - n % LANES;
    for c in (0..whole).step_by(LANES) {
        let (cs, ys, ws) = (&col[c..c + LANES], &y[c..c + LANES], &w[c..c + LANES]);
        for l in 0..LANES {
            // Index loops over fixed-size arrays: they vectorise.
            let t = point::<FMA, SHIFT, LOG, HUBER, MASK>(&k, cs[l], ys[l], ws[l]);
            for k in 0..5 {
                acc[k][l] += t[k];
            }
        }
    }
    let mut tail = [0.0; 5];
    for j in whole..n {
        let t = point::<FMA, SHIFT, LOG, HUBER, MASK>(&k, col[j], y[j], w[j]);
        for k in 0..5 {
            tail[k] += t[k];
        }
    }
    let mut out = [0.0; 5];
    for k in 0..5 {
        let a = &acc[k];
        out[k] = ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7])) + tail[k];
    }
    out
}

/// What a point of the span needs besides its own data.
struct Term {
    delta: f64,
    s3: f64,
    s2: f64,
    sa: f64,
    sc: f64,
}

/// One point's five terms. A function, not a closure: the closure was left
/// as a call, with its fused multiply-adds as library calls (50x slower,
/// measured).
#[inline(always)]
fn point<
    const FMA: bool,
    const SHIFT: bool,
    const LOG: bool,
    const HUBER: bool,
    const MASK: bool,
>(
    k: &Term,
    c: f64,
    y: f64,
    w: f64,
) -> [f64; 5] {
    let (v, lx, inv) = term::<FMA, SHIFT>(c, k.s3, k.s2);
    let (wd, q, g) = cell::<FMA, LOG, HUBER>(k.delta, mul_add::<FMA>(k.sa, v, k.sc), y, w);
    if !MASK {
        // No point of the span weighs 0: nothing to keep out.
        let gv = g * v;
        return [wd * q, g, gv, gv * lx, gv * inv];
    }
    let gv = if g != 0.0 { g * v } else { 0.0 };
    let keep = gv != 0.0;
    [
        wd * q,
        g,
        gv,
        if keep { gv * lx } else { 0.0 },
        if keep { gv * inv } else { 0.0 },
    ]
}

/// v = exp(s2 ln x), ln x and 1/x at data value `c` (x = c + s3 when SHIFT;
/// else c is ln x and 1/x is unused). The plain fast ln and exp, guarded
/// only for x <= 0 (NaN): the evaluator's exact-at-the-edges versions cost
/// 30% of the point loop, and at those edges (a base of 0, an overflowing
/// power) the law is not finite either way.
#[inline(always)]
fn term<const FMA: bool, const SHIFT: bool>(c: f64, s3: f64, s2: f64) -> (f64, f64, f64) {
    let (lx, inv) = if SHIFT {
        let x = c + s3;
        let ok = x > 0.0;
        let (l, r) = fastmath::ln_recip::<FMA>(if ok { x } else { 1.0 });
        (if ok { l } else { f64::NAN }, r)
    } else {
        (c, 0.0)
    };
    (fastmath::exp::<FMA>(s2 * lx), lx, inv)
}

/// The grid's forward pass over a tile's distinct axis values: v, ln x and
/// 1/x per value, for every curve's row to read.
#[inline(always)]
pub(super) fn tile_terms<const FMA: bool, const SHIFT: bool>(
    col: &[f64],
    s3: f64,
    s2: f64,
    v: &mut [f64],
    lx: &mut [f64],
    inv: &mut [f64],
) {
    let m = col.len();
    let (v, lx, inv) = (&mut v[..m], &mut lx[..m], &mut inv[..m]);
    for j in 0..m {
        (v[j], lx[j], inv[j]) = term::<FMA, SHIFT>(col[j], s3, s2);
    }
}
