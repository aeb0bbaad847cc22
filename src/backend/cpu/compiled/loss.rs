//! The loss of a tile's cells and the lane-wise sums the passes reduce
//! with (fixed order, so that no value depends on the batch).

use super::*;

/// Partial sums of a reduction: four vectors of accumulators, so that a
/// sum over a tile is not bound by the latency of one add (a single vector
/// of them made the row sums an eighth of the grid's time, measured).
pub(super) const LANES: usize = 32;

/// Sum of `v` in [`LANES`] interleaved partial sums; the order is fixed,
/// so results do not depend on the machine.
#[inline(always)]
pub(super) fn lane_sum(v: &[f64]) -> f64 {
    let mut acc = [0.0; LANES];
    let mut chunks = v.chunks_exact(LANES);
    for ch in &mut chunks {
        for k in 0..LANES {
            acc[k] += ch[k];
        }
    }
    // The tail in its own sum: adding it into one lane makes that lane
    // special and the compiler then splits the loop's vectors.
    let tail: f64 = chunks.remainder().iter().sum();
    lanes32(acc) + tail
}

/// The total of [`LANES`] partial sums.
#[inline(always)]
pub(super) fn lanes32(acc: [f64; LANES]) -> f64 {
    // black_box hides the lanes from the vectoriser, which otherwise
    // shapes the summing loop's vectors after this epilogue: it kept the
    // lanes in 2-wide registers, at a quarter of the speed.
    let acc = std::hint::black_box(acc);
    let mut t = [0.0; 8];
    for k in 0..8 {
        t[k] = (acc[k] + acc[k + 16]) + (acc[k + 8] + acc[k + 24]);
    }
    lanes8(&t)
}

/// Add `v` into the eight lanes `out`: [`LANES`] partial sums over `v`
/// (four vectors of eight), then folded to eight.
#[inline(always)]
pub(super) fn lane_fold(v: &[f64], out: &mut [f64; 8]) {
    // Four vectors of lanes, folded lane by lane: every step is eight
    // wide, so the compiler keeps whole vectors (a flat array folded
    // pairwise was cut into 2-wide pieces, or, behind black_box, reloaded
    // across two stores, which stalled).
    let mut acc = [[0.0; 8]; 4];
    let mut chunks = v.chunks_exact(LANES);
    for ch in &mut chunks {
        let ch: &[f64; LANES] = ch.try_into().expect("a whole chunk");
        for k in 0..8 {
            acc[0][k] += ch[k];
            acc[1][k] += ch[k + 8];
            acc[2][k] += ch[k + 16];
            acc[3][k] += ch[k + 24];
        }
    }
    fold(&acc, out);
    // The tail in its own sum: adding it into one lane makes that lane
    // special and the compiler then splits the loop's vectors. (Only the
    // last tile has one.)
    let rem = chunks.remainder();
    if !rem.is_empty() {
        out[0] += rem.iter().sum::<f64>();
    }
}

/// Add four vectors of partial sums into eight lanes.
#[inline(always)]
pub(super) fn fold(acc: &[[f64; 8]; 4], out: &mut [f64; 8]) {
    for k in 0..8 {
        out[k] += (acc[0][k] + acc[2][k]) + (acc[1][k] + acc[3][k]);
    }
}

/// The total of eight lanes, pairwise.
#[inline(always)]
pub(super) fn lanes8(v: &[f64; 8]) -> f64 {
    ((v[0] + v[4]) + (v[2] + v[6])) + ((v[1] + v[5]) + (v[3] + v[7]))
}

/// Objective of the tile row and the seed adjoint w * d rho / d pred per
/// cell (exactly 0 where w is 0, whatever the prediction there).
#[inline(always)]
pub(super) fn loss_cells<const FMA: bool>(
    obj: Objective,
    pred: &[f64],
    y: &[f64],
    w: &[f64],
    seed: &mut [f64],
) -> f64 {
    let d = obj.delta;
    match (obj.space, obj.loss) {
        (Space::Linear, LossKind::Mse) => loss_impl::<FMA, false, false>(d, pred, y, w, seed),
        (Space::Linear, LossKind::Huber) => loss_impl::<FMA, false, true>(d, pred, y, w, seed),
        (Space::Log, LossKind::Mse) => loss_impl::<FMA, true, false>(d, pred, y, w, seed),
        (Space::Log, LossKind::Huber) => loss_impl::<FMA, true, true>(d, pred, y, w, seed),
    }
}

#[inline(always)]
pub(super) fn loss_impl<const FMA: bool, const LOG: bool, const HUBER: bool>(
    delta: f64,
    pred: &[f64],
    y: &[f64],
    w: &[f64],
    seed: &mut [f64],
) -> f64 {
    let m = pred.len();
    let (y, w, seed) = (&y[..m], &w[..m], &mut seed[..m]);
    let mut fbuf = [0.0; TILE];
    for j in 0..m {
        let (d, q, g) = cell::<FMA, LOG, HUBER>(delta, pred[j], y[j], w[j]);
        fbuf[j] = d * q;
        seed[j] = g;
    }
    0.5 * lane_sum(&fbuf[..m])
}
