//! A node's values over an array of cells (a tile's axis values, the
//! curves, a run's steps) and the vectorised operation of every node,
//! [`node_op`]: the one the CPU evaluators, the row Jacobian and the sums
//! along the steps compile into their instruction-set-specific loops. An
//! operand is one scalar for every cell or an array, and each operation is
//! one branch-free loop per combination.

use super::dag::{Node, NodeId};
use super::ops::Func;
use super::steps;
use crate::fastmath::{exact_exp as exp, exact_ln_recip as ln_recip, exact_pow as pow};

/// A node's values over a tile's cells: one for all, or one each.
#[derive(Clone, Copy)]
pub(crate) enum V<'a> {
    S(f64),
    A(&'a [f64]),
}

/// `out[j] = e` with `x` bound to the operand's cell (or its scalar).
/// Macros rather than functions taking a closure: the operation must be
/// inlined into the loop of the instruction-set-specific caller, and a
/// passed-in function was measured not to be (it ran as a scalar call,
/// with its fused multiply-adds as library calls, 18x slower).
macro_rules! unary_impl {
    ($out:expr, $a:expr, |$x:ident| $e:expr) => {
        match $a {
            $crate::law::vector::V::S($x) => $out.fill($e),
            $crate::law::vector::V::A(a) => {
                for (o, &$x) in $out.iter_mut().zip(a) {
                    *o = $e;
                }
            }
        }
    };
}

/// `out[j] = e` with `x`, `y` bound to the two operands' cells.
macro_rules! binary_impl {
    ($out:expr, $a:expr, $b:expr, |$x:ident, $y:ident| $e:expr) => {
        match ($a, $b) {
            ($crate::law::vector::V::S($x), $crate::law::vector::V::S($y)) => $out.fill($e),
            ($crate::law::vector::V::A(a), $crate::law::vector::V::S($y)) => {
                for (o, &$x) in $out.iter_mut().zip(a) {
                    *o = $e;
                }
            }
            ($crate::law::vector::V::S($x), $crate::law::vector::V::A(b)) => {
                for (o, &$y) in $out.iter_mut().zip(b) {
                    *o = $e;
                }
            }
            ($crate::law::vector::V::A(a), $crate::law::vector::V::A(b)) => {
                for ((o, &$x), &$y) in $out.iter_mut().zip(a).zip(b) {
                    *o = $e;
                }
            }
        }
    };
}

pub(crate) use binary_impl as binary;
pub(crate) use unary_impl as unary;

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
            // Outer values shared by every cell (parameters): the cells'
            // sums together, spread over the threads.
            if ops[2..].iter().all(|v| matches!(v, V::S(_))) {
                for (a, v) in args[..n].iter_mut().zip(&ops[2..]) {
                    *a = at(v, 0);
                }
                let (h, t) = (&ops[0], &ops[1]);
                return steps::eval_cells(d, &|j| at(h, j), &|j| at(t, j), &args[..n], out);
            }
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
