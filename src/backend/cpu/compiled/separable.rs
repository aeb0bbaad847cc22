//! The fused loop of a law separable along its axis (prediction
//! `sa * u[d] + sc * s[curve]` per cell: LoopLM, Chinchilla): prediction,
//! loss and both adjoint sums in one pass over a tile's cells instead of a
//! pass per node.

use super::*;

/// Curves whose rows of a tile the separable loop handles together.
pub(super) const ROWS: usize = 4;

/// `R` curves' rows of a tile for a separable law: prediction
/// `sa * u[j] + s[r]`, `fcol[j] +=` the cells' 2 w rho, `col[j] += ca *
/// sum_r g[r][j]` and each row's sum of g into its `rsum` lanes, with g
/// the seed adjoint. `fcol` and `gbuf` are the caller's stack arrays: heap
/// scratch would leave the compiler unsure they do not overlap `col`, and
/// it then kept the loop scalar (1.8x slower, measured).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) fn fused_rows<const FMA: bool, const R: usize>(
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
pub(super) fn fused_impl<const FMA: bool, const LOG: bool, const HUBER: bool, const R: usize>(
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
pub(super) fn cell<const FMA: bool, const LOG: bool, const HUBER: bool>(
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
