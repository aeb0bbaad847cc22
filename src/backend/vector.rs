//! Operands of the CPU evaluators' vectorised passes, and the loops over
//! them: a node's values over a tile are one scalar for every cell or an
//! array, and each pass is one branch-free loop per combination.

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
            $crate::backend::vector::V::S($x) => $out.fill($e),
            $crate::backend::vector::V::A(a) => {
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
            ($crate::backend::vector::V::S($x), $crate::backend::vector::V::S($y)) => $out.fill($e),
            ($crate::backend::vector::V::A(a), $crate::backend::vector::V::S($y)) => {
                for (o, &$x) in $out.iter_mut().zip(a) {
                    *o = $e;
                }
            }
            ($crate::backend::vector::V::S($x), $crate::backend::vector::V::A(b)) => {
                for (o, &$y) in $out.iter_mut().zip(b) {
                    *o = $e;
                }
            }
            ($crate::backend::vector::V::A(a), $crate::backend::vector::V::A(b)) => {
                for ((o, &$x), &$y) in $out.iter_mut().zip(a).zip(b) {
                    *o = $e;
                }
            }
        }
    };
}

pub(crate) use binary_impl as binary;
pub(crate) use unary_impl as unary;
