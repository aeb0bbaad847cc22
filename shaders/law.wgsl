// Objective and gradient of a compiled law for a batch of parameter
// vectors: the template of the generated kernel.
//
// src/backend/gpu/codegen.rs fills the lines `//@NAME` with the law's own
// code, generated from its evaluation plan; everything else (the tiling,
// the weighting, the loss and the output) is written here once for every
// law. The generated parts:
//   //@DEFS           sizes: NP parameters, PV vec4s per point, CS floats
//                     per curve, TILE points per tile;
//   //@START          parameter-only nodes, once per invocation;
//   //@CURVE_VARS     declarations of curve nodes and per-curve sums;
//   //@CURVE_OPEN     a curve's data read and its nodes computed, once per
//                     curve the invocation meets;
//   //@POINT          per point: the point's data, its nodes, `pred`;
//   //@POINT_BACK     per point: the adjoints of point nodes, added into
//                     the per-curve sums;
//   //@CURVE_CLOSE    the per-curve sums pushed back through the curve
//                     nodes into the start adjoints;
//   //@FINISH         the start nodes' adjoints pushed back to the
//                     parameters, written into `acc`.
//
// One invocation is one parameter vector (a "start"); a workgroup is 64
// starts. The workgroup walks over tiles of points: each tile is loaded
// into workgroup memory once and then read by all 64 starts. Points come
// curve by curve, so a curve's hoisted nodes are computed when its first
// point arrives (uniformly across the workgroup: every invocation sees the
// same points) and its adjoint sums are pushed back when it ends.
//
// Output: per (workgroup slot, start) RECORD floats: objective, NP
// gradient entries, and the weight of the points where the law is
// undefined (a log of a non-positive number, a square root of a negative
// one). A second pass (reduce.wgsl) adds the slots up.
//
// Weighted evaluation (src/backend/weights.rs): with WEIGHTED set, each
// point's weight is multiplied by its start's weighting factor: the
// curve's multiplier if the point is among the first `first` of its curve,
// times a Poisson(1) count hashed from (seed, point index) when the
// weighting resamples points.

override WEIGHTED: bool = false;
// 0 = mse, 1 = huber.
override LOSS: u32 = 0u;
// Residuals of the log of the prediction.
override LOG_SPACE: bool = false;
override DELTA: f32 = 1.0;

struct Meta {
    // Points in this chunk.
    n_points: u32,
    // Workgroups along x: slot g handles tiles g, g + n_groups, ...
    n_groups: u32,
    // Stride (in starts) of the partial-sum records.
    k_stride: u32,
    // Index of this chunk's first slot in the partial-sum buffer.
    slot_base: u32,
    // Global index (over all chunks) of this chunk's first point.
    first_point: u32,
    // This chunk's index, and the number of chunks.
    chunk_index: u32,
    n_chunks: u32,
    _pad0: u32,
}

struct Batch {
    // Starts in this dispatch, and the first one's index in `params`.
    k: u32,
    k_offset: u32,
    _pad0: u32,
    _pad1: u32,
}

// A start's weighting: `base` indexes its row in `weightings`, flags bit 0
// = weighted (else the sweep's own weights), bit 1 = Poisson counts with
// mixed seed `seed`.
struct Problem {
    base: u32,
    flags: u32,
    seed: u32,
    _pad: u32,
}

// PV vec4s per point: target, weight, curve index as bits, then the
// point's data values (variables and parameter-free expressions of them).
@group(0) @binding(0) var<storage, read> points: array<vec4<f32>>;
// CS floats per curve: as bits the global index of its first point and
// that point's index in the host's sweep (the Poisson hash key), then the
// curve's data values.
@group(0) @binding(1) var<storage, read> curves: array<f32>;
// NP parameters per start.
@group(0) @binding(2) var<storage, read> params: array<f32>;
@group(0) @binding(3) var<storage, read_write> partials: array<f32>;
@group(0) @binding(4) var<uniform> chunk: Meta;
// One per start (read only when WEIGHTED).
@group(0) @binding(5) var<storage, read> problems: array<Problem>;
@group(1) @binding(0) var<uniform> batch: Batch;
// Per (weighting, curve): multiplier as f32 bits, points kept.
@group(2) @binding(0) var<storage, read> weightings: array<vec2<u32>>;
// The tiles a workgroup row of weighted starts reads: per (row, chunk) the
// offset and length of its list of tiles, then the lists. Tiles whose
// curves every start of the row leaves out are not in the list.
@group(2) @binding(1) var<storage, read> tile_lists: array<u32>;

//@DEFS

const WG: u32 = 64u;
const RECORD: u32 = NP + 2u;
const NO_CURVE: u32 = 0xffffffffu;
const ALL_POINTS: u32 = 0xffffffffu;

// mix, point_hash and poisson1 of weights.rs, in the same u32 arithmetic
// (multiplication wraps in both), so the counts are bit-identical.
fn mix(x0: u32) -> u32 {
    var x = x0;
    x ^= x >> 16u;
    x *= 0x7feb352du;
    x ^= x >> 15u;
    x *= 0x846ca68bu;
    x ^= x >> 16u;
    return x;
}

fn point_hash(s: u32, key: u32) -> u32 {
    return mix(mix(key ^ s));
}

// Inverse CDF of Poisson(1) on a uniform u32: how many of
// floor(P(X <= k) 2^32), k = 0..8, h reaches.
fn poisson1(h: u32) -> u32 {
    return u32(h >= 1580030168u) + u32(h >= 3160060337u) + u32(h >= 3950075421u)
        + u32(h >= 4213413783u) + u32(h >= 4279248373u) + u32(h >= 4292415291u)
        + u32(h >= 4294609777u) + u32(h >= 4294923276u) + u32(h >= 4294962463u);
}

// x^n for a small integer n by repeated squaring (WGSL's pow is exp2 of
// log2, undefined for x < 0).
fn powi(x: f32, n: i32) -> f32 {
    var base = x;
    var e = abs(n);
    var r = 1.0;
    while (e > 0) {
        if ((e & 1) != 0) { r *= base; }
        base *= base;
        e >>= 1u;
    }
    return select(r, 1.0 / r, n < 0);
}

var<workgroup> tile: array<vec4<f32>, TILE * PV>;

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let k = wid.y * WG + lid.x;
    let live = k < batch.k;
    let kk = batch.k_offset + min(k, batch.k - 1u);
    var p: array<f32, NP>;
    for (var i = 0u; i < NP; i++) {
        p[i] = select(0.0, params[kk * NP + i], live);
    }
    var problem = Problem(0u, 0u, 0u, 0u);
    if (WEIGHTED) {
        problem = problems[kk];
    }
    let weighted = (problem.flags & 1u) != 0u;
    let resample = (problem.flags & 2u) != 0u;

    // Whole-fit accumulators: the gradient, objective and undefined weight
    // in `acc`; the start nodes' adjoints (declared by //@START).
    var acc: array<f32, RECORD>;
    for (var i = 0u; i < RECORD; i++) { acc[i] = 0.0; }
    // Whether the start's own nodes are defined.
    var ok_start = true;
    //@START

    // The current curve: its index, whether its nodes are defined, whether
    // any of its points counted, its objective sum; its weighting:
    // multiplier, end (global index) of its kept points, and the offset
    // from global point index to hash key.
    var cur = NO_CURVE;
    var ok_curve = true;
    var counted = false;
    var sum_f = 0.0;
    var mult = 1.0;
    var limit = ALL_POINTS;
    var key_shift = 0u;
    //@CURVE_VARS

    var n_tiles = (chunk.n_points + TILE - 1u) / TILE;
    var list = 0u;
    if (WEIGHTED) {
        let h = ((batch.k_offset / WG + wid.y) * chunk.n_chunks + chunk.chunk_index) * 2u;
        list = tile_lists[h];
        n_tiles = tile_lists[h + 1u];
    }
    for (var i = wid.x; i < n_tiles; i += chunk.n_groups) {
        var t = i;
        if (WEIGHTED) {
            t = tile_lists[list + i];
        }
        for (var j = lid.x; j < TILE * PV; j += WG) {
            let idx = t * TILE * PV + j;
            if (idx < chunk.n_points * PV) { tile[j] = points[idx]; }
        }
        workgroupBarrier();
        let count = min(TILE, chunk.n_points - t * TILE);
        for (var j = 0u; j < count; j++) {
            let q0 = tile[j * PV];
            let pc = bitcast<u32>(q0.z);
            if (pc != cur) {
                // Close the previous curve and open this one (uniform
                // across the workgroup).
                if (counted) {
                    acc[0] += sum_f;
                    //@CURVE_CLOSE
                }
                cur = pc;
                counted = false;
                sum_f = 0.0;
                ok_curve = true;
                let cb = pc * CS;
                //@CURVE_OPEN
                if (WEIGHTED && weighted) {
                    let wc = weightings[problem.base + pc];
                    mult = bitcast<f32>(wc.x);
                    // start + first, saturating: ALL_POINTS keeps them all.
                    let start = bitcast<u32>(curves[cb]);
                    limit = start + min(wc.y, ALL_POINTS - start);
                    key_shift = bitcast<u32>(curves[cb + 1u]) - start;
                }
            }
            var pw = q0.y;
            if (WEIGHTED && weighted) {
                let gi = chunk.first_point + t * TILE + j;
                var factor = select(0.0, mult, gi < limit);
                if (resample) {
                    factor *= f32(poisson1(point_hash(problem.seed, gi + key_shift)));
                }
                pw *= factor;
            }
            var ok = ok_start && ok_curve;
            //@POINT
            var r = pred - q0.x;
            var drdp = 1.0;
            if (LOG_SPACE) {
                ok = ok && pred > 0.0;
                r = log(select(1.0, pred, ok)) - q0.x;
                drdp = 1.0 / pred;
            }
            var rho = 0.5 * r * r;
            var drho = r;
            if (LOSS == 1u) {
                let ar = abs(r);
                let inside = ar <= DELTA;
                rho = select(DELTA * (ar - 0.5 * DELTA), rho, inside);
                drho = select(DELTA * sign(r), r, inside);
            }
            // Points left out (weight 0) and undefined ones add exactly
            // nothing, even where the law overflows there (0 * inf):
            // selects rather than branches keep the loop free of divergent
            // control flow. Undefined points are counted, and the host
            // decides what they mean.
            let take = ok && pw != 0.0;
            acc[NP + 1u] += select(pw, 0.0, ok);
            counted = counted || take;
            sum_f += select(0.0, pw * rho, take);
            let seed = pw * drho * drdp;
            //@POINT_BACK
        }
        workgroupBarrier();
    }
    if (counted) {
        acc[0] += sum_f;
        //@CURVE_CLOSE
    }
    //@FINISH
    if (live) {
        let rec = ((chunk.slot_base + wid.x) * chunk.k_stride + k) * RECORD;
        for (var i = 0u; i < RECORD; i++) {
            partials[rec + i] = acc[i];
        }
    }
}
