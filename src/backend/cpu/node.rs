//! One node of a compiled law over an array of cells, vectorised: the one
//! per-node SIMD operation of the CPU's grid evaluator and its row
//! Jacobian, compiled into each instruction-set-specific caller.

use crate::backend::fastmath::{exact_exp as exp, exact_ln_recip as ln_recip, exact_pow as pow};
use crate::backend::vector::{binary, unary, V};
use crate::law::dag::{Node, NodeId};
use crate::law::ops::Func;
use crate::law::steps;

/// One node over an array (a tile's axis values, or the curves): `opnd`
/// gives the operands.
#[inline(always)]
pub(crate) fn node_op<'a, const FMA: bool>(
    node: Node,
    opnd: &dyn Fn(NodeId) -> V<'a>,
    out: &mut [f64],
    params: &[f64],
) {
    match node {
        Node::Const(c) => out.fill(c),
        Node::Param(i) => out.fill(params[i as usize]),
        Node::Var(_) => unreachable!("variables are data nodes, computed once"),
        Node::Neg(a) => unary!(out, opnd(a), |x| -x),
        Node::Add(a, b) => binary!(out, opnd(a), opnd(b), |x, y| x + y),
        Node::Sub(a, b) => binary!(out, opnd(a), opnd(b), |x, y| x - y),
        Node::Mul(a, b) => binary!(out, opnd(a), opnd(b), |x, y| x * y),
        Node::Div(a, b) => binary!(out, opnd(a), opnd(b), |x, y| x / y),
        Node::Pow(a, b) => binary!(out, opnd(a), opnd(b), |x, y| pow::<FMA>(x, y)),
        // The functions with a vector form of their own; the others take
        // the table's f64 value cell by cell.
        Node::Fn1(Func::Exp, a) => unary!(out, opnd(a), |x| exp::<FMA>(x)),
        Node::Fn1(Func::Log, a) => unary!(out, opnd(a), |x| ln::<FMA>(x)),
        Node::Fn1(Func::Sqrt, a) => unary!(out, opnd(a), |x| x.sqrt()),
        Node::Fn2(Func::Min, a, b) => binary!(out, opnd(a), opnd(b), |x, y| x.min(y)),
        Node::Fn2(Func::Max, a, b) => binary!(out, opnd(a), opnd(b), |x, y| x.max(y)),
        Node::Fn1(f, a) => {
            let eval = f.spec().eval;
            unary!(out, opnd(a), |x| eval(x, 0.0))
        }
        Node::Fn2(f, a, b) => {
            let eval = f.spec().eval;
            binary!(out, opnd(a), opnd(b), |x, y| eval(x, y))
        }
        // A sum along the steps, cell by cell: its own evaluator
        // vectorises over the steps it sums.
        Node::Steps(d, o) => {
            let n = steps::n_args(d);
            let ops: Vec<V> = o[..2 + n].iter().map(|&x| opnd(x)).collect();
            let at = |v: &V, j: usize| match v {
                V::S(x) => *x,
                V::A(a) => a[j],
            };
            let mut args = [0.0; steps::MAX_ARGS];
            for (j, x) in out.iter_mut().enumerate() {
                for (i, a) in args[..n].iter_mut().enumerate() {
                    *a = at(&ops[2 + i], j);
                }
                *x = steps::eval(d, at(&ops[0], j), at(&ops[1], j), &args[..n]);
            }
        }
    }
}

/// ln with the standard library's values (see `fastmath::exact_ln_recip`).
#[inline(always)]
fn ln<const FMA: bool>(x: f64) -> f64 {
    ln_recip::<FMA>(x).0
}
