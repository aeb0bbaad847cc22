// law rectified, points layout, curves along D
// Objective and gradient of a compiled law for a batch of parameter
// vectors: the template of the generated kernel, in three files. This one
// holds the bindings, weighting, loss and output format; law_main.wgsl
// holds `main`, the walk over a sweep's tiles and curves; law_points.wgsl
// and law_grid.wgsl hold what each layout reads per item of a tile. The
// generator writes this file, then law_main.wgsl with the layout's
// sections spliced in.
//
// src/backend/gpu/codegen.rs fills the lines `//@NAME` with the law's own
// code, generated from its evaluation plan; everything else (the tiling,
// the weighting, the loss and the output) is written here once for every
// law. The generated parts:
//   //@DEFS           sizes: NP parameters, RECORD floats per start's
//                     record, PV vec4s per point (grid: per row), CS
//                     floats per curve, AS per axis value, TILE points
//                     (grid: rows) per tile, TA cells per grid row;
//   //@START          parameter-only nodes, once per invocation;
//   //@CURVE_VARS     declarations of curve nodes and per-curve sums;
//   //@CURVE_OPEN     a curve's data read and its nodes computed, once per
//                     curve the invocation meets;
//   //@POINT          per point: the point's data, its nodes, `pred`;
//   //@POINT_BACK     per point: the adjoints of point nodes, added into
//                     the per-curve sums (grid: and the per-value sums);
//   //@CURVE_CLOSE    the per-curve sums pushed back through the curve
//                     nodes into the start adjoints;
//   //@FINISH         the start nodes' adjoints pushed back to the
//                     parameters, written into `acc`;
// and in the grid layout only:
//   //@AXIS_VARS      declarations of the axis nodes of the TA values of a
//                     block and of their per-value sums;
//   //@AXIS_OPEN      a block's axis data read and its axis nodes
//                     computed, once per start and axis value;
//   //@AXIS_CLOSE     the per-value sums pushed back through the axis nodes
//                     into the start adjoints.
//
// One invocation is one parameter vector (a "start"); a workgroup is 64
// starts. The workgroup walks over tiles of points: each tile is loaded
// into workgroup memory once and then read by all 64 starts; every
// invocation sees the same points, so the hoisted nodes are opened and
// closed uniformly across the workgroup.
//
// Output: per (workgroup slot, start) RECORD floats: objective, NP
// gradient entries, and the weight of the points where the law is
// undefined (a log of a non-positive number, a square root of a negative
// one). A second pass (reduce.wgsl) adds the slots up. The Gauss-Newton
// kernel of a separable law (grid only) writes, in place of the gradient,
// J^T W r and the upper triangle of J^T W J in the start nodes the law's
// two terms read (see src/backend/gauss_newton.rs): its slots below
// accumulate them per cell, per curve and per axis value instead of
// pushing adjoints back.
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
    // Points (grid: rows) in this chunk.
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
    // Grid: where the axis records start in `curves`, and how many there
    // are.
    axis_base: u32,
    n_axis: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
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

// Points layout: PV vec4s per point: target, weight, curve index as bits,
// then the point's data values (variables and parameter-free expressions
// of them). Grid layout: per row (one curve's cells at the TA axis values
// of one block) a header (curve and block index as bits), then per cell
// target, weight, and as bits the point's index in the host's sweep (the
// Poisson hash key) and in its curve (a cell without a point has weight
// 0).
@group(0) @binding(0) var<storage, read> points: array<vec4<f32>>;
// CS floats per curve: as bits the global index of its first point and
// that point's index in the host's sweep (the Poisson hash key), then the
// curve's data values. Grid: then AS floats per distinct axis value, its
// data values.
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

const NP: u32 = 4u;
const RECORD: u32 = 6u;
const PV: u32 = 1u;
const CS: u32 = 2u;
const AS: u32 = 1u;
const TILE: u32 = 256u;
const TA: u32 = 8u;
const CV: u32 = 2u;

const WG: u32 = 64u;
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

// A point's loss: rho(r) of its residual r in the fitted space, d rho /
// d pred, and whether it is defined there.
struct Loss {
    rho: f32,
    drho: f32,
    ok: bool,
}

fn loss(pred: f32, y: f32, ok_in: bool) -> Loss {
    var ok = ok_in;
    var r = pred - y;
    var drdp = 1.0;
    if (LOG_SPACE) {
        ok = ok && pred > 0.0;
        r = log(select(1.0, pred, ok)) - y;
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
    return Loss(rho, drho * drdp, ok);
}

// A weighted start's factor on a point: its curve's multiplier if the
// point is among the first `first_kept` of its curve (`rank` is its place
// there; ALL_POINTS keeps them all), times its Poisson(1) count hashed
// from (seed, key) when the weighting resamples.
fn weight_factor(mult: f32, rank: u32, first_kept: u32, resample: bool, seed: u32, key: u32) -> f32 {
    var factor = select(0.0, mult, rank < first_kept);
    if (resample) {
        factor *= f32(poisson1(point_hash(seed, key)));
    }
    return factor;
}

// Each layout's tile of points (grid: rows), shared by the workgroup.
var<workgroup> tile: array<vec4<f32>, TILE * PV>;

// A start's parameters; zeros for the lanes past the batch's end.
fn start_params(kk: u32, live: bool) -> array<f32, NP> {
    var p: array<f32, NP>;
    for (var i = 0u; i < NP; i++) {
        p[i] = select(0.0, params[kk * NP + i], live);
    }
    return p;
}

// The tiles workgroup row `row` reads in this chunk: the offset of its
// list in `tile_lists` and their count when WEIGHTED, else all of them.
fn row_tiles(row: u32) -> vec2<u32> {
    if (WEIGHTED) {
        let h = ((batch.k_offset / WG + row) * chunk.n_chunks + chunk.chunk_index) * 2u;
        return vec2<u32>(tile_lists[h], tile_lists[h + 1u]);
    }
    return vec2<u32>(0u, (chunk.n_points + TILE - 1u) / TILE);
}

// Load the row's i-th tile into `tile`, every lane of the workgroup
// together, and return its index in the chunk.
fn load_tile(i: u32, list: u32, lane: u32) -> u32 {
    var t = i;
    if (WEIGHTED) {
        t = tile_lists[list + i];
    }
    for (var j = lane; j < TILE * PV; j += WG) {
        let idx = t * TILE * PV + j;
        if (idx < chunk.n_points * PV) { tile[j] = points[idx]; }
    }
    workgroupBarrier();
    return t;
}

// A start's record for workgroup slot `slot` of this chunk.
fn write_record(slot: u32, k: u32, acc: array<f32, RECORD>) {
    let rec = ((chunk.slot_base + slot) * chunk.k_stride + k) * RECORD;
    for (var i = 0u; i < RECORD; i++) {
        partials[rec + i] = acc[i];
    }
}

// The kernel's `main`, shared by both layouts (see law_common.wgsl): the
// start's parameters and weighting, the walk over tiles of the sweep, the
// switch from one curve to the next, and the record written at the end.
// What a layout reads per item of a tile (a point, or a grid row of TA
// cells) comes from its own file, law_points.wgsl or law_grid.wgsl, whose
// sections the generator splices in at //@ROW_HEAD (before the curve
// switch: the item's curve `pc`) and //@ROW_CELLS (after it: the item's
// points or cells).

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let k = wid.y * WG + lid.x;
    let live = k < batch.k;
    let kk = batch.k_offset + min(k, batch.k - 1u);
    let p = start_params(kk, live);
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
    let n0 = p[0];
    let n1 = p[1];
    let n3 = p[2];
    let n7 = p[3];
    var a0 = 0.0;
    var a1 = 0.0;
    var a3 = 0.0;
    var a7 = 0.0;

    // The current curve: its index, whether its nodes are defined, whether
    // any of its points counted, its objective sum; its weighting:
    // multiplier and points kept; the global index and the hash key of
    // its first point (read by the points layout).
    var cur = NO_CURVE;
    var ok_curve = true;
    var counted = false;
    var sum_f = 0.0;
    var mult = 1.0;
    var first_kept = ALL_POINTS;
    var curve_start = 0u;
    var curve_key = 0u;
    var s0 = 0.0;
    var s1 = 0.0;
    var s3 = 0.0;
    var s7 = 0.0;

    let tiles = row_tiles(wid.y);
    for (var i = wid.x; i < tiles.y; i += chunk.n_groups) {
        let t = load_tile(i, tiles.x, lid.x);
        // Lanes past the batch's end load the tile with the others (for
        // the barriers) and skip its points: where a batch is smaller
        // than the workgroup, whole subgroups of them do no work.
        let count = select(0u, min(TILE, chunk.n_points - t * TILE), live);
        for (var j = 0u; j < count; j++) {
            // PV vec4s per point: target, weight, curve index as bits, then the
            // point's data values.
            let q0 = tile[j * PV];
            let pc = bitcast<u32>(q0.z);
            if (pc != cur) {
                // Close the previous curve and open this one (uniform
                // across the workgroup).
                if (counted) {
                    acc[0] += sum_f;
                    a0 += s0;
                    a1 += s1;
                    a3 += s3;
                    a7 += s7;
                }
                cur = pc;
                counted = false;
                sum_f = 0.0;
                ok_curve = true;
                let cb = pc * CS;
                s0 = 0.0;
                s1 = 0.0;
                s3 = 0.0;
                s7 = 0.0;
                if (WEIGHTED && weighted) {
                    let wc = weightings[problem.base + pc];
                    mult = bitcast<f32>(wc.x);
                    first_kept = wc.y;
                    curve_start = bitcast<u32>(curves[cb]);
                    curve_key = bitcast<u32>(curves[cb + 1u]);
                }
            }
            var pw = q0.y;
            if (WEIGHTED && weighted) {
                let rank = chunk.first_point + t * TILE + j - curve_start;
                pw *= weight_factor(mult, rank, first_kept, resample, problem.seed, curve_key + rank);
            }
            var ok = ok_start && ok_curve;
            let n13 = q0.w;
            let n17 = n3 * n13;
            let n18 = exp(n17);
            let n19 = n1 + n18;
            let n20 = 1e0f / n19;
            let n21 = n0 * n20;
            let n22 = n7 + n21;
            let n23 = n20 * n20;
            let n24 = -n23;
            let pred = n22;
            let l = loss(pred, q0.x, ok);
            // Points left out (weight 0) and undefined ones add exactly nothing, even
            // where the law overflows there (0 * inf). Undefined points are counted,
            // and the host decides what they mean. Branches this small are
            // predicated, not divergent: on an H200 they ran 1.05-1.1x faster than
            // selecting zeros.
            if (!l.ok) {
                acc[RECORD - 1u] += pw;
            }
            if (l.ok && pw != 0.0) {
                counted = true;
                sum_f += pw * l.rho;
                let seed = pw * l.drho;
                var a17 = 0.0;
                var a18 = 0.0;
                var a19 = 0.0;
                var a20 = 0.0;
                var a21 = 0.0;
                let a22 = seed;
                s7 += a22 * 1e0f;
                a21 += a22 * 1e0f;
                s0 += a21 * n20;
                a20 += a21 * n0;
                a19 += a20 * n24;
                s1 += a19 * 1e0f;
                a18 += a19 * 1e0f;
                a17 += a18 * n18;
                s3 += a17 * n13;
            }
        }
        workgroupBarrier();
    }
    if (counted) {
        acc[0] += sum_f;
        a0 += s0;
        a1 += s1;
        a3 += s3;
        a7 += s7;
    }
    acc[1] = a0;
    acc[2] = a1;
    acc[3] = a3;
    acc[4] = a7;
    if (live) {
        write_record(wid.x, k, acc);
    }
}
// law rectified, grid layout (axis nodes once per start and value), curves along D
// Objective and gradient of a compiled law for a batch of parameter
// vectors: the template of the generated kernel, in three files. This one
// holds the bindings, weighting, loss and output format; law_main.wgsl
// holds `main`, the walk over a sweep's tiles and curves; law_points.wgsl
// and law_grid.wgsl hold what each layout reads per item of a tile. The
// generator writes this file, then law_main.wgsl with the layout's
// sections spliced in.
//
// src/backend/gpu/codegen.rs fills the lines `//@NAME` with the law's own
// code, generated from its evaluation plan; everything else (the tiling,
// the weighting, the loss and the output) is written here once for every
// law. The generated parts:
//   //@DEFS           sizes: NP parameters, RECORD floats per start's
//                     record, PV vec4s per point (grid: per row), CS
//                     floats per curve, AS per axis value, TILE points
//                     (grid: rows) per tile, TA cells per grid row;
//   //@START          parameter-only nodes, once per invocation;
//   //@CURVE_VARS     declarations of curve nodes and per-curve sums;
//   //@CURVE_OPEN     a curve's data read and its nodes computed, once per
//                     curve the invocation meets;
//   //@POINT          per point: the point's data, its nodes, `pred`;
//   //@POINT_BACK     per point: the adjoints of point nodes, added into
//                     the per-curve sums (grid: and the per-value sums);
//   //@CURVE_CLOSE    the per-curve sums pushed back through the curve
//                     nodes into the start adjoints;
//   //@FINISH         the start nodes' adjoints pushed back to the
//                     parameters, written into `acc`;
// and in the grid layout only:
//   //@AXIS_VARS      declarations of the axis nodes of the TA values of a
//                     block and of their per-value sums;
//   //@AXIS_OPEN      a block's axis data read and its axis nodes
//                     computed, once per start and axis value;
//   //@AXIS_CLOSE     the per-value sums pushed back through the axis nodes
//                     into the start adjoints.
//
// One invocation is one parameter vector (a "start"); a workgroup is 64
// starts. The workgroup walks over tiles of points: each tile is loaded
// into workgroup memory once and then read by all 64 starts; every
// invocation sees the same points, so the hoisted nodes are opened and
// closed uniformly across the workgroup.
//
// Output: per (workgroup slot, start) RECORD floats: objective, NP
// gradient entries, and the weight of the points where the law is
// undefined (a log of a non-positive number, a square root of a negative
// one). A second pass (reduce.wgsl) adds the slots up. The Gauss-Newton
// kernel of a separable law (grid only) writes, in place of the gradient,
// J^T W r and the upper triangle of J^T W J in the start nodes the law's
// two terms read (see src/backend/gauss_newton.rs): its slots below
// accumulate them per cell, per curve and per axis value instead of
// pushing adjoints back.
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
    // Points (grid: rows) in this chunk.
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
    // Grid: where the axis records start in `curves`, and how many there
    // are.
    axis_base: u32,
    n_axis: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
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

// Points layout: PV vec4s per point: target, weight, curve index as bits,
// then the point's data values (variables and parameter-free expressions
// of them). Grid layout: per row (one curve's cells at the TA axis values
// of one block) a header (curve and block index as bits), then per cell
// target, weight, and as bits the point's index in the host's sweep (the
// Poisson hash key) and in its curve (a cell without a point has weight
// 0).
@group(0) @binding(0) var<storage, read> points: array<vec4<f32>>;
// CS floats per curve: as bits the global index of its first point and
// that point's index in the host's sweep (the Poisson hash key), then the
// curve's data values. Grid: then AS floats per distinct axis value, its
// data values.
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

const NP: u32 = 4u;
const RECORD: u32 = 6u;
const PV: u32 = 9u;
const CS: u32 = 2u;
const AS: u32 = 1u;
const TILE: u32 = 32u;
const TA: u32 = 8u;
const CV: u32 = 1u;

const WG: u32 = 64u;
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

// A point's loss: rho(r) of its residual r in the fitted space, d rho /
// d pred, and whether it is defined there.
struct Loss {
    rho: f32,
    drho: f32,
    ok: bool,
}

fn loss(pred: f32, y: f32, ok_in: bool) -> Loss {
    var ok = ok_in;
    var r = pred - y;
    var drdp = 1.0;
    if (LOG_SPACE) {
        ok = ok && pred > 0.0;
        r = log(select(1.0, pred, ok)) - y;
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
    return Loss(rho, drho * drdp, ok);
}

// A weighted start's factor on a point: its curve's multiplier if the
// point is among the first `first_kept` of its curve (`rank` is its place
// there; ALL_POINTS keeps them all), times its Poisson(1) count hashed
// from (seed, key) when the weighting resamples.
fn weight_factor(mult: f32, rank: u32, first_kept: u32, resample: bool, seed: u32, key: u32) -> f32 {
    var factor = select(0.0, mult, rank < first_kept);
    if (resample) {
        factor *= f32(poisson1(point_hash(seed, key)));
    }
    return factor;
}

// Each layout's tile of points (grid: rows), shared by the workgroup.
var<workgroup> tile: array<vec4<f32>, TILE * PV>;

// A start's parameters; zeros for the lanes past the batch's end.
fn start_params(kk: u32, live: bool) -> array<f32, NP> {
    var p: array<f32, NP>;
    for (var i = 0u; i < NP; i++) {
        p[i] = select(0.0, params[kk * NP + i], live);
    }
    return p;
}

// The tiles workgroup row `row` reads in this chunk: the offset of its
// list in `tile_lists` and their count when WEIGHTED, else all of them.
fn row_tiles(row: u32) -> vec2<u32> {
    if (WEIGHTED) {
        let h = ((batch.k_offset / WG + row) * chunk.n_chunks + chunk.chunk_index) * 2u;
        return vec2<u32>(tile_lists[h], tile_lists[h + 1u]);
    }
    return vec2<u32>(0u, (chunk.n_points + TILE - 1u) / TILE);
}

// Load the row's i-th tile into `tile`, every lane of the workgroup
// together, and return its index in the chunk.
fn load_tile(i: u32, list: u32, lane: u32) -> u32 {
    var t = i;
    if (WEIGHTED) {
        t = tile_lists[list + i];
    }
    for (var j = lane; j < TILE * PV; j += WG) {
        let idx = t * TILE * PV + j;
        if (idx < chunk.n_points * PV) { tile[j] = points[idx]; }
    }
    workgroupBarrier();
    return t;
}

// A start's record for workgroup slot `slot` of this chunk.
fn write_record(slot: u32, k: u32, acc: array<f32, RECORD>) {
    let rec = ((chunk.slot_base + slot) * chunk.k_stride + k) * RECORD;
    for (var i = 0u; i < RECORD; i++) {
        partials[rec + i] = acc[i];
    }
}

// The kernel's `main`, shared by both layouts (see law_common.wgsl): the
// start's parameters and weighting, the walk over tiles of the sweep, the
// switch from one curve to the next, and the record written at the end.
// What a layout reads per item of a tile (a point, or a grid row of TA
// cells) comes from its own file, law_points.wgsl or law_grid.wgsl, whose
// sections the generator splices in at //@ROW_HEAD (before the curve
// switch: the item's curve `pc`) and //@ROW_CELLS (after it: the item's
// points or cells).

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let k = wid.y * WG + lid.x;
    let live = k < batch.k;
    let kk = batch.k_offset + min(k, batch.k - 1u);
    let p = start_params(kk, live);
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
    let n0 = p[0];
    let n1 = p[1];
    let n3 = p[2];
    let n7 = p[3];
    var a0 = 0.0;
    var a1 = 0.0;
    var a3 = 0.0;
    var a7 = 0.0;

    // The current curve: its index, whether its nodes are defined, whether
    // any of its points counted, its objective sum; its weighting:
    // multiplier and points kept; the global index and the hash key of
    // its first point (read by the points layout).
    var cur = NO_CURVE;
    var ok_curve = true;
    var counted = false;
    var sum_f = 0.0;
    var mult = 1.0;
    var first_kept = ALL_POINTS;
    var curve_start = 0u;
    var curve_key = 0u;
    var cur_block = NO_CURVE;
    var okx0 = true;
    var tk0 = false;
    var n13_0 = 0.0;
    var n17_0 = 0.0;
    var n18_0 = 0.0;
    var n19_0 = 0.0;
    var n20_0 = 0.0;
    var n21_0 = 0.0;
    var n22_0 = 0.0;
    var n23_0 = 0.0;
    var n24_0 = 0.0;
    var x22_0 = 0.0;
    var okx1 = true;
    var tk1 = false;
    var n13_1 = 0.0;
    var n17_1 = 0.0;
    var n18_1 = 0.0;
    var n19_1 = 0.0;
    var n20_1 = 0.0;
    var n21_1 = 0.0;
    var n22_1 = 0.0;
    var n23_1 = 0.0;
    var n24_1 = 0.0;
    var x22_1 = 0.0;
    var okx2 = true;
    var tk2 = false;
    var n13_2 = 0.0;
    var n17_2 = 0.0;
    var n18_2 = 0.0;
    var n19_2 = 0.0;
    var n20_2 = 0.0;
    var n21_2 = 0.0;
    var n22_2 = 0.0;
    var n23_2 = 0.0;
    var n24_2 = 0.0;
    var x22_2 = 0.0;
    var okx3 = true;
    var tk3 = false;
    var n13_3 = 0.0;
    var n17_3 = 0.0;
    var n18_3 = 0.0;
    var n19_3 = 0.0;
    var n20_3 = 0.0;
    var n21_3 = 0.0;
    var n22_3 = 0.0;
    var n23_3 = 0.0;
    var n24_3 = 0.0;
    var x22_3 = 0.0;
    var okx4 = true;
    var tk4 = false;
    var n13_4 = 0.0;
    var n17_4 = 0.0;
    var n18_4 = 0.0;
    var n19_4 = 0.0;
    var n20_4 = 0.0;
    var n21_4 = 0.0;
    var n22_4 = 0.0;
    var n23_4 = 0.0;
    var n24_4 = 0.0;
    var x22_4 = 0.0;
    var okx5 = true;
    var tk5 = false;
    var n13_5 = 0.0;
    var n17_5 = 0.0;
    var n18_5 = 0.0;
    var n19_5 = 0.0;
    var n20_5 = 0.0;
    var n21_5 = 0.0;
    var n22_5 = 0.0;
    var n23_5 = 0.0;
    var n24_5 = 0.0;
    var x22_5 = 0.0;
    var okx6 = true;
    var tk6 = false;
    var n13_6 = 0.0;
    var n17_6 = 0.0;
    var n18_6 = 0.0;
    var n19_6 = 0.0;
    var n20_6 = 0.0;
    var n21_6 = 0.0;
    var n22_6 = 0.0;
    var n23_6 = 0.0;
    var n24_6 = 0.0;
    var x22_6 = 0.0;
    var okx7 = true;
    var tk7 = false;
    var n13_7 = 0.0;
    var n17_7 = 0.0;
    var n18_7 = 0.0;
    var n19_7 = 0.0;
    var n20_7 = 0.0;
    var n21_7 = 0.0;
    var n22_7 = 0.0;
    var n23_7 = 0.0;
    var n24_7 = 0.0;
    var x22_7 = 0.0;

    let tiles = row_tiles(wid.y);
    for (var i = wid.x; i < tiles.y; i += chunk.n_groups) {
        let t = load_tile(i, tiles.x, lid.x);
        // Lanes past the batch's end load the tile with the others (for
        // the barriers) and skip its points: where a batch is smaller
        // than the workgroup, whole subgroups of them do no work.
        let count = select(0u, min(TILE, chunk.n_points - t * TILE), live);
        for (var j = 0u; j < count; j++) {
            // A row's header: its curve and block index as bits.
            let head = tile[j * PV];
            let pc = bitcast<u32>(head.x);
            let pb = bitcast<u32>(head.y);
            if (pb != cur_block) {
                // Close the previous block and open this one (uniform across the
                // workgroup).
                if (tk0) {
                    var c17 = 0.0;
                    var c18 = 0.0;
                    var c19 = 0.0;
                    var c20 = 0.0;
                    var c21 = 0.0;
                    var c22 = x22_0;
                    a7 += c22 * 1e0f;
                    c21 += c22 * 1e0f;
                    a0 += c21 * n20_0;
                    c20 += c21 * n0;
                    c19 += c20 * n24_0;
                    a1 += c19 * 1e0f;
                    c18 += c19 * 1e0f;
                    c17 += c18 * n18_0;
                    a3 += c17 * n13_0;
                }
                if (tk1) {
                    var c17 = 0.0;
                    var c18 = 0.0;
                    var c19 = 0.0;
                    var c20 = 0.0;
                    var c21 = 0.0;
                    var c22 = x22_1;
                    a7 += c22 * 1e0f;
                    c21 += c22 * 1e0f;
                    a0 += c21 * n20_1;
                    c20 += c21 * n0;
                    c19 += c20 * n24_1;
                    a1 += c19 * 1e0f;
                    c18 += c19 * 1e0f;
                    c17 += c18 * n18_1;
                    a3 += c17 * n13_1;
                }
                if (tk2) {
                    var c17 = 0.0;
                    var c18 = 0.0;
                    var c19 = 0.0;
                    var c20 = 0.0;
                    var c21 = 0.0;
                    var c22 = x22_2;
                    a7 += c22 * 1e0f;
                    c21 += c22 * 1e0f;
                    a0 += c21 * n20_2;
                    c20 += c21 * n0;
                    c19 += c20 * n24_2;
                    a1 += c19 * 1e0f;
                    c18 += c19 * 1e0f;
                    c17 += c18 * n18_2;
                    a3 += c17 * n13_2;
                }
                if (tk3) {
                    var c17 = 0.0;
                    var c18 = 0.0;
                    var c19 = 0.0;
                    var c20 = 0.0;
                    var c21 = 0.0;
                    var c22 = x22_3;
                    a7 += c22 * 1e0f;
                    c21 += c22 * 1e0f;
                    a0 += c21 * n20_3;
                    c20 += c21 * n0;
                    c19 += c20 * n24_3;
                    a1 += c19 * 1e0f;
                    c18 += c19 * 1e0f;
                    c17 += c18 * n18_3;
                    a3 += c17 * n13_3;
                }
                if (tk4) {
                    var c17 = 0.0;
                    var c18 = 0.0;
                    var c19 = 0.0;
                    var c20 = 0.0;
                    var c21 = 0.0;
                    var c22 = x22_4;
                    a7 += c22 * 1e0f;
                    c21 += c22 * 1e0f;
                    a0 += c21 * n20_4;
                    c20 += c21 * n0;
                    c19 += c20 * n24_4;
                    a1 += c19 * 1e0f;
                    c18 += c19 * 1e0f;
                    c17 += c18 * n18_4;
                    a3 += c17 * n13_4;
                }
                if (tk5) {
                    var c17 = 0.0;
                    var c18 = 0.0;
                    var c19 = 0.0;
                    var c20 = 0.0;
                    var c21 = 0.0;
                    var c22 = x22_5;
                    a7 += c22 * 1e0f;
                    c21 += c22 * 1e0f;
                    a0 += c21 * n20_5;
                    c20 += c21 * n0;
                    c19 += c20 * n24_5;
                    a1 += c19 * 1e0f;
                    c18 += c19 * 1e0f;
                    c17 += c18 * n18_5;
                    a3 += c17 * n13_5;
                }
                if (tk6) {
                    var c17 = 0.0;
                    var c18 = 0.0;
                    var c19 = 0.0;
                    var c20 = 0.0;
                    var c21 = 0.0;
                    var c22 = x22_6;
                    a7 += c22 * 1e0f;
                    c21 += c22 * 1e0f;
                    a0 += c21 * n20_6;
                    c20 += c21 * n0;
                    c19 += c20 * n24_6;
                    a1 += c19 * 1e0f;
                    c18 += c19 * 1e0f;
                    c17 += c18 * n18_6;
                    a3 += c17 * n13_6;
                }
                if (tk7) {
                    var c17 = 0.0;
                    var c18 = 0.0;
                    var c19 = 0.0;
                    var c20 = 0.0;
                    var c21 = 0.0;
                    var c22 = x22_7;
                    a7 += c22 * 1e0f;
                    c21 += c22 * 1e0f;
                    a0 += c21 * n20_7;
                    c20 += c21 * n0;
                    c19 += c20 * n24_7;
                    a1 += c19 * 1e0f;
                    c18 += c19 * 1e0f;
                    c17 += c18 * n18_7;
                    a3 += c17 * n13_7;
                }
                cur_block = pb;
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 0u, chunk.n_axis - 1u) * AS;
                    n13_0 = curves[ab + 0u];
                    okx0 = true;
                    n17_0 = n3 * n13_0;
                    n18_0 = exp(n17_0);
                    n19_0 = n1 + n18_0;
                    n20_0 = 1e0f / n19_0;
                    n21_0 = n0 * n20_0;
                    n22_0 = n7 + n21_0;
                    n23_0 = n20_0 * n20_0;
                    n24_0 = -n23_0;
                    x22_0 = 0.0;
                    tk0 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 1u, chunk.n_axis - 1u) * AS;
                    n13_1 = curves[ab + 0u];
                    okx1 = true;
                    n17_1 = n3 * n13_1;
                    n18_1 = exp(n17_1);
                    n19_1 = n1 + n18_1;
                    n20_1 = 1e0f / n19_1;
                    n21_1 = n0 * n20_1;
                    n22_1 = n7 + n21_1;
                    n23_1 = n20_1 * n20_1;
                    n24_1 = -n23_1;
                    x22_1 = 0.0;
                    tk1 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 2u, chunk.n_axis - 1u) * AS;
                    n13_2 = curves[ab + 0u];
                    okx2 = true;
                    n17_2 = n3 * n13_2;
                    n18_2 = exp(n17_2);
                    n19_2 = n1 + n18_2;
                    n20_2 = 1e0f / n19_2;
                    n21_2 = n0 * n20_2;
                    n22_2 = n7 + n21_2;
                    n23_2 = n20_2 * n20_2;
                    n24_2 = -n23_2;
                    x22_2 = 0.0;
                    tk2 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 3u, chunk.n_axis - 1u) * AS;
                    n13_3 = curves[ab + 0u];
                    okx3 = true;
                    n17_3 = n3 * n13_3;
                    n18_3 = exp(n17_3);
                    n19_3 = n1 + n18_3;
                    n20_3 = 1e0f / n19_3;
                    n21_3 = n0 * n20_3;
                    n22_3 = n7 + n21_3;
                    n23_3 = n20_3 * n20_3;
                    n24_3 = -n23_3;
                    x22_3 = 0.0;
                    tk3 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 4u, chunk.n_axis - 1u) * AS;
                    n13_4 = curves[ab + 0u];
                    okx4 = true;
                    n17_4 = n3 * n13_4;
                    n18_4 = exp(n17_4);
                    n19_4 = n1 + n18_4;
                    n20_4 = 1e0f / n19_4;
                    n21_4 = n0 * n20_4;
                    n22_4 = n7 + n21_4;
                    n23_4 = n20_4 * n20_4;
                    n24_4 = -n23_4;
                    x22_4 = 0.0;
                    tk4 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 5u, chunk.n_axis - 1u) * AS;
                    n13_5 = curves[ab + 0u];
                    okx5 = true;
                    n17_5 = n3 * n13_5;
                    n18_5 = exp(n17_5);
                    n19_5 = n1 + n18_5;
                    n20_5 = 1e0f / n19_5;
                    n21_5 = n0 * n20_5;
                    n22_5 = n7 + n21_5;
                    n23_5 = n20_5 * n20_5;
                    n24_5 = -n23_5;
                    x22_5 = 0.0;
                    tk5 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 6u, chunk.n_axis - 1u) * AS;
                    n13_6 = curves[ab + 0u];
                    okx6 = true;
                    n17_6 = n3 * n13_6;
                    n18_6 = exp(n17_6);
                    n19_6 = n1 + n18_6;
                    n20_6 = 1e0f / n19_6;
                    n21_6 = n0 * n20_6;
                    n22_6 = n7 + n21_6;
                    n23_6 = n20_6 * n20_6;
                    n24_6 = -n23_6;
                    x22_6 = 0.0;
                    tk6 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 7u, chunk.n_axis - 1u) * AS;
                    n13_7 = curves[ab + 0u];
                    okx7 = true;
                    n17_7 = n3 * n13_7;
                    n18_7 = exp(n17_7);
                    n19_7 = n1 + n18_7;
                    n20_7 = 1e0f / n19_7;
                    n21_7 = n0 * n20_7;
                    n22_7 = n7 + n21_7;
                    n23_7 = n20_7 * n20_7;
                    n24_7 = -n23_7;
                    x22_7 = 0.0;
                    tk7 = false;
                }
            }
            if (pc != cur) {
                // Close the previous curve and open this one (uniform
                // across the workgroup).
                if (counted) {
                    acc[0] += sum_f;
                }
                cur = pc;
                counted = false;
                sum_f = 0.0;
                ok_curve = true;
                let cb = pc * CS;
                if (WEIGHTED && weighted) {
                    let wc = weightings[problem.base + pc];
                    mult = bitcast<f32>(wc.x);
                    first_kept = wc.y;
                    curve_start = bitcast<u32>(curves[cb]);
                    curve_key = bitcast<u32>(curves[cb + 1u]);
                }
            }
            {
                let q = tile[j * PV + 1u + 0u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx0;
                let pred = n22_0;
                let l = loss(pred, q.x, ok);
                // As in the points layout: cells without a point (weight 0) and
                // undefined ones add exactly nothing.
                if (!l.ok) {
                    acc[RECORD - 1u] += pw;
                }
                if (l.ok && pw != 0.0) {
                    counted = true;
                    tk0 = true;
                    sum_f += pw * l.rho;
                    let seed = pw * l.drho;
                    x22_0 += seed;
                }
            }
            {
                let q = tile[j * PV + 1u + 1u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx1;
                let pred = n22_1;
                let l = loss(pred, q.x, ok);
                // As in the points layout: cells without a point (weight 0) and
                // undefined ones add exactly nothing.
                if (!l.ok) {
                    acc[RECORD - 1u] += pw;
                }
                if (l.ok && pw != 0.0) {
                    counted = true;
                    tk1 = true;
                    sum_f += pw * l.rho;
                    let seed = pw * l.drho;
                    x22_1 += seed;
                }
            }
            {
                let q = tile[j * PV + 1u + 2u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx2;
                let pred = n22_2;
                let l = loss(pred, q.x, ok);
                // As in the points layout: cells without a point (weight 0) and
                // undefined ones add exactly nothing.
                if (!l.ok) {
                    acc[RECORD - 1u] += pw;
                }
                if (l.ok && pw != 0.0) {
                    counted = true;
                    tk2 = true;
                    sum_f += pw * l.rho;
                    let seed = pw * l.drho;
                    x22_2 += seed;
                }
            }
            {
                let q = tile[j * PV + 1u + 3u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx3;
                let pred = n22_3;
                let l = loss(pred, q.x, ok);
                // As in the points layout: cells without a point (weight 0) and
                // undefined ones add exactly nothing.
                if (!l.ok) {
                    acc[RECORD - 1u] += pw;
                }
                if (l.ok && pw != 0.0) {
                    counted = true;
                    tk3 = true;
                    sum_f += pw * l.rho;
                    let seed = pw * l.drho;
                    x22_3 += seed;
                }
            }
            {
                let q = tile[j * PV + 1u + 4u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx4;
                let pred = n22_4;
                let l = loss(pred, q.x, ok);
                // As in the points layout: cells without a point (weight 0) and
                // undefined ones add exactly nothing.
                if (!l.ok) {
                    acc[RECORD - 1u] += pw;
                }
                if (l.ok && pw != 0.0) {
                    counted = true;
                    tk4 = true;
                    sum_f += pw * l.rho;
                    let seed = pw * l.drho;
                    x22_4 += seed;
                }
            }
            {
                let q = tile[j * PV + 1u + 5u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx5;
                let pred = n22_5;
                let l = loss(pred, q.x, ok);
                // As in the points layout: cells without a point (weight 0) and
                // undefined ones add exactly nothing.
                if (!l.ok) {
                    acc[RECORD - 1u] += pw;
                }
                if (l.ok && pw != 0.0) {
                    counted = true;
                    tk5 = true;
                    sum_f += pw * l.rho;
                    let seed = pw * l.drho;
                    x22_5 += seed;
                }
            }
            {
                let q = tile[j * PV + 1u + 6u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx6;
                let pred = n22_6;
                let l = loss(pred, q.x, ok);
                // As in the points layout: cells without a point (weight 0) and
                // undefined ones add exactly nothing.
                if (!l.ok) {
                    acc[RECORD - 1u] += pw;
                }
                if (l.ok && pw != 0.0) {
                    counted = true;
                    tk6 = true;
                    sum_f += pw * l.rho;
                    let seed = pw * l.drho;
                    x22_6 += seed;
                }
            }
            {
                let q = tile[j * PV + 1u + 7u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx7;
                let pred = n22_7;
                let l = loss(pred, q.x, ok);
                // As in the points layout: cells without a point (weight 0) and
                // undefined ones add exactly nothing.
                if (!l.ok) {
                    acc[RECORD - 1u] += pw;
                }
                if (l.ok && pw != 0.0) {
                    counted = true;
                    tk7 = true;
                    sum_f += pw * l.rho;
                    let seed = pw * l.drho;
                    x22_7 += seed;
                }
            }
        }
        workgroupBarrier();
    }
    if (counted) {
        acc[0] += sum_f;
    }
    if (tk0) {
        var c17 = 0.0;
        var c18 = 0.0;
        var c19 = 0.0;
        var c20 = 0.0;
        var c21 = 0.0;
        var c22 = x22_0;
        a7 += c22 * 1e0f;
        c21 += c22 * 1e0f;
        a0 += c21 * n20_0;
        c20 += c21 * n0;
        c19 += c20 * n24_0;
        a1 += c19 * 1e0f;
        c18 += c19 * 1e0f;
        c17 += c18 * n18_0;
        a3 += c17 * n13_0;
    }
    if (tk1) {
        var c17 = 0.0;
        var c18 = 0.0;
        var c19 = 0.0;
        var c20 = 0.0;
        var c21 = 0.0;
        var c22 = x22_1;
        a7 += c22 * 1e0f;
        c21 += c22 * 1e0f;
        a0 += c21 * n20_1;
        c20 += c21 * n0;
        c19 += c20 * n24_1;
        a1 += c19 * 1e0f;
        c18 += c19 * 1e0f;
        c17 += c18 * n18_1;
        a3 += c17 * n13_1;
    }
    if (tk2) {
        var c17 = 0.0;
        var c18 = 0.0;
        var c19 = 0.0;
        var c20 = 0.0;
        var c21 = 0.0;
        var c22 = x22_2;
        a7 += c22 * 1e0f;
        c21 += c22 * 1e0f;
        a0 += c21 * n20_2;
        c20 += c21 * n0;
        c19 += c20 * n24_2;
        a1 += c19 * 1e0f;
        c18 += c19 * 1e0f;
        c17 += c18 * n18_2;
        a3 += c17 * n13_2;
    }
    if (tk3) {
        var c17 = 0.0;
        var c18 = 0.0;
        var c19 = 0.0;
        var c20 = 0.0;
        var c21 = 0.0;
        var c22 = x22_3;
        a7 += c22 * 1e0f;
        c21 += c22 * 1e0f;
        a0 += c21 * n20_3;
        c20 += c21 * n0;
        c19 += c20 * n24_3;
        a1 += c19 * 1e0f;
        c18 += c19 * 1e0f;
        c17 += c18 * n18_3;
        a3 += c17 * n13_3;
    }
    if (tk4) {
        var c17 = 0.0;
        var c18 = 0.0;
        var c19 = 0.0;
        var c20 = 0.0;
        var c21 = 0.0;
        var c22 = x22_4;
        a7 += c22 * 1e0f;
        c21 += c22 * 1e0f;
        a0 += c21 * n20_4;
        c20 += c21 * n0;
        c19 += c20 * n24_4;
        a1 += c19 * 1e0f;
        c18 += c19 * 1e0f;
        c17 += c18 * n18_4;
        a3 += c17 * n13_4;
    }
    if (tk5) {
        var c17 = 0.0;
        var c18 = 0.0;
        var c19 = 0.0;
        var c20 = 0.0;
        var c21 = 0.0;
        var c22 = x22_5;
        a7 += c22 * 1e0f;
        c21 += c22 * 1e0f;
        a0 += c21 * n20_5;
        c20 += c21 * n0;
        c19 += c20 * n24_5;
        a1 += c19 * 1e0f;
        c18 += c19 * 1e0f;
        c17 += c18 * n18_5;
        a3 += c17 * n13_5;
    }
    if (tk6) {
        var c17 = 0.0;
        var c18 = 0.0;
        var c19 = 0.0;
        var c20 = 0.0;
        var c21 = 0.0;
        var c22 = x22_6;
        a7 += c22 * 1e0f;
        c21 += c22 * 1e0f;
        a0 += c21 * n20_6;
        c20 += c21 * n0;
        c19 += c20 * n24_6;
        a1 += c19 * 1e0f;
        c18 += c19 * 1e0f;
        c17 += c18 * n18_6;
        a3 += c17 * n13_6;
    }
    if (tk7) {
        var c17 = 0.0;
        var c18 = 0.0;
        var c19 = 0.0;
        var c20 = 0.0;
        var c21 = 0.0;
        var c22 = x22_7;
        a7 += c22 * 1e0f;
        c21 += c22 * 1e0f;
        a0 += c21 * n20_7;
        c20 += c21 * n0;
        c19 += c20 * n24_7;
        a1 += c19 * 1e0f;
        c18 += c19 * 1e0f;
        c17 += c18 * n18_7;
        a3 += c17 * n13_7;
    }
    acc[1] = a0;
    acc[2] = a1;
    acc[3] = a3;
    acc[4] = a7;
    if (live) {
        write_record(wid.x, k, acc);
    }
}
