// law chinchilla, points layout, curves along D
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

const NP: u32 = 5u;
const RECORD: u32 = 7u;
const PV: u32 = 1u;
const CS: u32 = 3u;
const AS: u32 = 1u;
const TILE: u32 = 256u;
const TA: u32 = 16u;
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
    let n9 = p[4];
    var a0 = 0.0;
    var a1 = 0.0;
    var a3 = 0.0;
    var a7 = 0.0;
    var a9 = 0.0;

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
    var n29 = 0.0;
    var n30 = 0.0;
    var n31 = 0.0;
    var n32 = 0.0;
    var n33 = 0.0;
    var s7 = 0.0;
    var s9 = 0.0;
    var s33 = 0.0;

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
                    var c30 = 0.0;
                    var c31 = 0.0;
                    var c32 = 0.0;
                    var c33 = s33;
                    a0 += c33 * 1e0f;
                    c32 += c33 * 1e0f;
                    a1 += c32 * n31;
                    c31 += c32 * n1;
                    c30 += c31 * n31;
                    a3 += c30 * n29;
                    a7 += s7;
                    a9 += s9;
                }
                cur = pc;
                counted = false;
                sum_f = 0.0;
                ok_curve = true;
                let cb = pc * CS;
                n29 = curves[cb + 2u];
                n30 = n3 * n29;
                n31 = exp(n30);
                n32 = n1 * n31;
                n33 = n0 + n32;
                s7 = 0.0;
                s9 = 0.0;
                s33 = 0.0;
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
            let n36 = q0.w;
            let n37 = n9 * n36;
            let n38 = exp(n37);
            let n39 = n7 * n38;
            let n40 = n33 + n39;
            let pred = n40;
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
                var a37 = 0.0;
                var a38 = 0.0;
                var a39 = 0.0;
                let a40 = seed;
                s33 += a40 * 1e0f;
                a39 += a40 * 1e0f;
                s7 += a39 * n38;
                a38 += a39 * n7;
                a37 += a38 * n38;
                s9 += a37 * n36;
            }
        }
        workgroupBarrier();
    }
    if (counted) {
        acc[0] += sum_f;
        var c30 = 0.0;
        var c31 = 0.0;
        var c32 = 0.0;
        var c33 = s33;
        a0 += c33 * 1e0f;
        c32 += c33 * 1e0f;
        a1 += c32 * n31;
        c31 += c32 * n1;
        c30 += c31 * n31;
        a3 += c30 * n29;
        a7 += s7;
        a9 += s9;
    }
    acc[1] = a0;
    acc[2] = a1;
    acc[3] = a3;
    acc[4] = a7;
    acc[5] = a9;
    if (live) {
        write_record(wid.x, k, acc);
    }
}
// law chinchilla, grid layout (axis nodes once per start and value), curves along D
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

const NP: u32 = 5u;
const RECORD: u32 = 7u;
const PV: u32 = 17u;
const CS: u32 = 3u;
const AS: u32 = 1u;
const TILE: u32 = 16u;
const TA: u32 = 16u;
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
    let n9 = p[4];
    var a0 = 0.0;
    var a1 = 0.0;
    var a3 = 0.0;
    var a7 = 0.0;
    var a9 = 0.0;

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
    var n29 = 0.0;
    var n30 = 0.0;
    var n31 = 0.0;
    var n32 = 0.0;
    var n33 = 0.0;
    var s33 = 0.0;
    var cur_block = NO_CURVE;
    var okx0 = true;
    var tk0 = false;
    var n36_0 = 0.0;
    var n37_0 = 0.0;
    var n38_0 = 0.0;
    var n39_0 = 0.0;
    var x39_0 = 0.0;
    var okx1 = true;
    var tk1 = false;
    var n36_1 = 0.0;
    var n37_1 = 0.0;
    var n38_1 = 0.0;
    var n39_1 = 0.0;
    var x39_1 = 0.0;
    var okx2 = true;
    var tk2 = false;
    var n36_2 = 0.0;
    var n37_2 = 0.0;
    var n38_2 = 0.0;
    var n39_2 = 0.0;
    var x39_2 = 0.0;
    var okx3 = true;
    var tk3 = false;
    var n36_3 = 0.0;
    var n37_3 = 0.0;
    var n38_3 = 0.0;
    var n39_3 = 0.0;
    var x39_3 = 0.0;
    var okx4 = true;
    var tk4 = false;
    var n36_4 = 0.0;
    var n37_4 = 0.0;
    var n38_4 = 0.0;
    var n39_4 = 0.0;
    var x39_4 = 0.0;
    var okx5 = true;
    var tk5 = false;
    var n36_5 = 0.0;
    var n37_5 = 0.0;
    var n38_5 = 0.0;
    var n39_5 = 0.0;
    var x39_5 = 0.0;
    var okx6 = true;
    var tk6 = false;
    var n36_6 = 0.0;
    var n37_6 = 0.0;
    var n38_6 = 0.0;
    var n39_6 = 0.0;
    var x39_6 = 0.0;
    var okx7 = true;
    var tk7 = false;
    var n36_7 = 0.0;
    var n37_7 = 0.0;
    var n38_7 = 0.0;
    var n39_7 = 0.0;
    var x39_7 = 0.0;
    var okx8 = true;
    var tk8 = false;
    var n36_8 = 0.0;
    var n37_8 = 0.0;
    var n38_8 = 0.0;
    var n39_8 = 0.0;
    var x39_8 = 0.0;
    var okx9 = true;
    var tk9 = false;
    var n36_9 = 0.0;
    var n37_9 = 0.0;
    var n38_9 = 0.0;
    var n39_9 = 0.0;
    var x39_9 = 0.0;
    var okx10 = true;
    var tk10 = false;
    var n36_10 = 0.0;
    var n37_10 = 0.0;
    var n38_10 = 0.0;
    var n39_10 = 0.0;
    var x39_10 = 0.0;
    var okx11 = true;
    var tk11 = false;
    var n36_11 = 0.0;
    var n37_11 = 0.0;
    var n38_11 = 0.0;
    var n39_11 = 0.0;
    var x39_11 = 0.0;
    var okx12 = true;
    var tk12 = false;
    var n36_12 = 0.0;
    var n37_12 = 0.0;
    var n38_12 = 0.0;
    var n39_12 = 0.0;
    var x39_12 = 0.0;
    var okx13 = true;
    var tk13 = false;
    var n36_13 = 0.0;
    var n37_13 = 0.0;
    var n38_13 = 0.0;
    var n39_13 = 0.0;
    var x39_13 = 0.0;
    var okx14 = true;
    var tk14 = false;
    var n36_14 = 0.0;
    var n37_14 = 0.0;
    var n38_14 = 0.0;
    var n39_14 = 0.0;
    var x39_14 = 0.0;
    var okx15 = true;
    var tk15 = false;
    var n36_15 = 0.0;
    var n37_15 = 0.0;
    var n38_15 = 0.0;
    var n39_15 = 0.0;
    var x39_15 = 0.0;

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
                    var c37 = 0.0;
                    var c38 = 0.0;
                    var c39 = x39_0;
                    a7 += c39 * n38_0;
                    c38 += c39 * n7;
                    c37 += c38 * n38_0;
                    a9 += c37 * n36_0;
                }
                if (tk1) {
                    var c37 = 0.0;
                    var c38 = 0.0;
                    var c39 = x39_1;
                    a7 += c39 * n38_1;
                    c38 += c39 * n7;
                    c37 += c38 * n38_1;
                    a9 += c37 * n36_1;
                }
                if (tk2) {
                    var c37 = 0.0;
                    var c38 = 0.0;
                    var c39 = x39_2;
                    a7 += c39 * n38_2;
                    c38 += c39 * n7;
                    c37 += c38 * n38_2;
                    a9 += c37 * n36_2;
                }
                if (tk3) {
                    var c37 = 0.0;
                    var c38 = 0.0;
                    var c39 = x39_3;
                    a7 += c39 * n38_3;
                    c38 += c39 * n7;
                    c37 += c38 * n38_3;
                    a9 += c37 * n36_3;
                }
                if (tk4) {
                    var c37 = 0.0;
                    var c38 = 0.0;
                    var c39 = x39_4;
                    a7 += c39 * n38_4;
                    c38 += c39 * n7;
                    c37 += c38 * n38_4;
                    a9 += c37 * n36_4;
                }
                if (tk5) {
                    var c37 = 0.0;
                    var c38 = 0.0;
                    var c39 = x39_5;
                    a7 += c39 * n38_5;
                    c38 += c39 * n7;
                    c37 += c38 * n38_5;
                    a9 += c37 * n36_5;
                }
                if (tk6) {
                    var c37 = 0.0;
                    var c38 = 0.0;
                    var c39 = x39_6;
                    a7 += c39 * n38_6;
                    c38 += c39 * n7;
                    c37 += c38 * n38_6;
                    a9 += c37 * n36_6;
                }
                if (tk7) {
                    var c37 = 0.0;
                    var c38 = 0.0;
                    var c39 = x39_7;
                    a7 += c39 * n38_7;
                    c38 += c39 * n7;
                    c37 += c38 * n38_7;
                    a9 += c37 * n36_7;
                }
                if (tk8) {
                    var c37 = 0.0;
                    var c38 = 0.0;
                    var c39 = x39_8;
                    a7 += c39 * n38_8;
                    c38 += c39 * n7;
                    c37 += c38 * n38_8;
                    a9 += c37 * n36_8;
                }
                if (tk9) {
                    var c37 = 0.0;
                    var c38 = 0.0;
                    var c39 = x39_9;
                    a7 += c39 * n38_9;
                    c38 += c39 * n7;
                    c37 += c38 * n38_9;
                    a9 += c37 * n36_9;
                }
                if (tk10) {
                    var c37 = 0.0;
                    var c38 = 0.0;
                    var c39 = x39_10;
                    a7 += c39 * n38_10;
                    c38 += c39 * n7;
                    c37 += c38 * n38_10;
                    a9 += c37 * n36_10;
                }
                if (tk11) {
                    var c37 = 0.0;
                    var c38 = 0.0;
                    var c39 = x39_11;
                    a7 += c39 * n38_11;
                    c38 += c39 * n7;
                    c37 += c38 * n38_11;
                    a9 += c37 * n36_11;
                }
                if (tk12) {
                    var c37 = 0.0;
                    var c38 = 0.0;
                    var c39 = x39_12;
                    a7 += c39 * n38_12;
                    c38 += c39 * n7;
                    c37 += c38 * n38_12;
                    a9 += c37 * n36_12;
                }
                if (tk13) {
                    var c37 = 0.0;
                    var c38 = 0.0;
                    var c39 = x39_13;
                    a7 += c39 * n38_13;
                    c38 += c39 * n7;
                    c37 += c38 * n38_13;
                    a9 += c37 * n36_13;
                }
                if (tk14) {
                    var c37 = 0.0;
                    var c38 = 0.0;
                    var c39 = x39_14;
                    a7 += c39 * n38_14;
                    c38 += c39 * n7;
                    c37 += c38 * n38_14;
                    a9 += c37 * n36_14;
                }
                if (tk15) {
                    var c37 = 0.0;
                    var c38 = 0.0;
                    var c39 = x39_15;
                    a7 += c39 * n38_15;
                    c38 += c39 * n7;
                    c37 += c38 * n38_15;
                    a9 += c37 * n36_15;
                }
                cur_block = pb;
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 0u, chunk.n_axis - 1u) * AS;
                    n36_0 = curves[ab + 0u];
                    okx0 = true;
                    n37_0 = n9 * n36_0;
                    n38_0 = exp(n37_0);
                    n39_0 = n7 * n38_0;
                    x39_0 = 0.0;
                    tk0 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 1u, chunk.n_axis - 1u) * AS;
                    n36_1 = curves[ab + 0u];
                    okx1 = true;
                    n37_1 = n9 * n36_1;
                    n38_1 = exp(n37_1);
                    n39_1 = n7 * n38_1;
                    x39_1 = 0.0;
                    tk1 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 2u, chunk.n_axis - 1u) * AS;
                    n36_2 = curves[ab + 0u];
                    okx2 = true;
                    n37_2 = n9 * n36_2;
                    n38_2 = exp(n37_2);
                    n39_2 = n7 * n38_2;
                    x39_2 = 0.0;
                    tk2 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 3u, chunk.n_axis - 1u) * AS;
                    n36_3 = curves[ab + 0u];
                    okx3 = true;
                    n37_3 = n9 * n36_3;
                    n38_3 = exp(n37_3);
                    n39_3 = n7 * n38_3;
                    x39_3 = 0.0;
                    tk3 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 4u, chunk.n_axis - 1u) * AS;
                    n36_4 = curves[ab + 0u];
                    okx4 = true;
                    n37_4 = n9 * n36_4;
                    n38_4 = exp(n37_4);
                    n39_4 = n7 * n38_4;
                    x39_4 = 0.0;
                    tk4 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 5u, chunk.n_axis - 1u) * AS;
                    n36_5 = curves[ab + 0u];
                    okx5 = true;
                    n37_5 = n9 * n36_5;
                    n38_5 = exp(n37_5);
                    n39_5 = n7 * n38_5;
                    x39_5 = 0.0;
                    tk5 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 6u, chunk.n_axis - 1u) * AS;
                    n36_6 = curves[ab + 0u];
                    okx6 = true;
                    n37_6 = n9 * n36_6;
                    n38_6 = exp(n37_6);
                    n39_6 = n7 * n38_6;
                    x39_6 = 0.0;
                    tk6 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 7u, chunk.n_axis - 1u) * AS;
                    n36_7 = curves[ab + 0u];
                    okx7 = true;
                    n37_7 = n9 * n36_7;
                    n38_7 = exp(n37_7);
                    n39_7 = n7 * n38_7;
                    x39_7 = 0.0;
                    tk7 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 8u, chunk.n_axis - 1u) * AS;
                    n36_8 = curves[ab + 0u];
                    okx8 = true;
                    n37_8 = n9 * n36_8;
                    n38_8 = exp(n37_8);
                    n39_8 = n7 * n38_8;
                    x39_8 = 0.0;
                    tk8 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 9u, chunk.n_axis - 1u) * AS;
                    n36_9 = curves[ab + 0u];
                    okx9 = true;
                    n37_9 = n9 * n36_9;
                    n38_9 = exp(n37_9);
                    n39_9 = n7 * n38_9;
                    x39_9 = 0.0;
                    tk9 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 10u, chunk.n_axis - 1u) * AS;
                    n36_10 = curves[ab + 0u];
                    okx10 = true;
                    n37_10 = n9 * n36_10;
                    n38_10 = exp(n37_10);
                    n39_10 = n7 * n38_10;
                    x39_10 = 0.0;
                    tk10 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 11u, chunk.n_axis - 1u) * AS;
                    n36_11 = curves[ab + 0u];
                    okx11 = true;
                    n37_11 = n9 * n36_11;
                    n38_11 = exp(n37_11);
                    n39_11 = n7 * n38_11;
                    x39_11 = 0.0;
                    tk11 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 12u, chunk.n_axis - 1u) * AS;
                    n36_12 = curves[ab + 0u];
                    okx12 = true;
                    n37_12 = n9 * n36_12;
                    n38_12 = exp(n37_12);
                    n39_12 = n7 * n38_12;
                    x39_12 = 0.0;
                    tk12 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 13u, chunk.n_axis - 1u) * AS;
                    n36_13 = curves[ab + 0u];
                    okx13 = true;
                    n37_13 = n9 * n36_13;
                    n38_13 = exp(n37_13);
                    n39_13 = n7 * n38_13;
                    x39_13 = 0.0;
                    tk13 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 14u, chunk.n_axis - 1u) * AS;
                    n36_14 = curves[ab + 0u];
                    okx14 = true;
                    n37_14 = n9 * n36_14;
                    n38_14 = exp(n37_14);
                    n39_14 = n7 * n38_14;
                    x39_14 = 0.0;
                    tk14 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 15u, chunk.n_axis - 1u) * AS;
                    n36_15 = curves[ab + 0u];
                    okx15 = true;
                    n37_15 = n9 * n36_15;
                    n38_15 = exp(n37_15);
                    n39_15 = n7 * n38_15;
                    x39_15 = 0.0;
                    tk15 = false;
                }
            }
            if (pc != cur) {
                // Close the previous curve and open this one (uniform
                // across the workgroup).
                if (counted) {
                    acc[0] += sum_f;
                    var c30 = 0.0;
                    var c31 = 0.0;
                    var c32 = 0.0;
                    var c33 = s33;
                    a0 += c33 * 1e0f;
                    c32 += c33 * 1e0f;
                    a1 += c32 * n31;
                    c31 += c32 * n1;
                    c30 += c31 * n31;
                    a3 += c30 * n29;
                }
                cur = pc;
                counted = false;
                sum_f = 0.0;
                ok_curve = true;
                let cb = pc * CS;
                n29 = curves[cb + 2u];
                n30 = n3 * n29;
                n31 = exp(n30);
                n32 = n1 * n31;
                n33 = n0 + n32;
                s33 = 0.0;
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
                let n40 = n33 + n39_0;
                let pred = n40;
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
                    let a40 = seed;
                    s33 += a40 * 1e0f;
                    x39_0 += a40 * 1e0f;
                }
            }
            {
                let q = tile[j * PV + 1u + 1u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx1;
                let n40 = n33 + n39_1;
                let pred = n40;
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
                    let a40 = seed;
                    s33 += a40 * 1e0f;
                    x39_1 += a40 * 1e0f;
                }
            }
            {
                let q = tile[j * PV + 1u + 2u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx2;
                let n40 = n33 + n39_2;
                let pred = n40;
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
                    let a40 = seed;
                    s33 += a40 * 1e0f;
                    x39_2 += a40 * 1e0f;
                }
            }
            {
                let q = tile[j * PV + 1u + 3u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx3;
                let n40 = n33 + n39_3;
                let pred = n40;
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
                    let a40 = seed;
                    s33 += a40 * 1e0f;
                    x39_3 += a40 * 1e0f;
                }
            }
            {
                let q = tile[j * PV + 1u + 4u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx4;
                let n40 = n33 + n39_4;
                let pred = n40;
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
                    let a40 = seed;
                    s33 += a40 * 1e0f;
                    x39_4 += a40 * 1e0f;
                }
            }
            {
                let q = tile[j * PV + 1u + 5u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx5;
                let n40 = n33 + n39_5;
                let pred = n40;
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
                    let a40 = seed;
                    s33 += a40 * 1e0f;
                    x39_5 += a40 * 1e0f;
                }
            }
            {
                let q = tile[j * PV + 1u + 6u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx6;
                let n40 = n33 + n39_6;
                let pred = n40;
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
                    let a40 = seed;
                    s33 += a40 * 1e0f;
                    x39_6 += a40 * 1e0f;
                }
            }
            {
                let q = tile[j * PV + 1u + 7u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx7;
                let n40 = n33 + n39_7;
                let pred = n40;
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
                    let a40 = seed;
                    s33 += a40 * 1e0f;
                    x39_7 += a40 * 1e0f;
                }
            }
            {
                let q = tile[j * PV + 1u + 8u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx8;
                let n40 = n33 + n39_8;
                let pred = n40;
                let l = loss(pred, q.x, ok);
                // As in the points layout: cells without a point (weight 0) and
                // undefined ones add exactly nothing.
                if (!l.ok) {
                    acc[RECORD - 1u] += pw;
                }
                if (l.ok && pw != 0.0) {
                    counted = true;
                    tk8 = true;
                    sum_f += pw * l.rho;
                    let seed = pw * l.drho;
                    let a40 = seed;
                    s33 += a40 * 1e0f;
                    x39_8 += a40 * 1e0f;
                }
            }
            {
                let q = tile[j * PV + 1u + 9u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx9;
                let n40 = n33 + n39_9;
                let pred = n40;
                let l = loss(pred, q.x, ok);
                // As in the points layout: cells without a point (weight 0) and
                // undefined ones add exactly nothing.
                if (!l.ok) {
                    acc[RECORD - 1u] += pw;
                }
                if (l.ok && pw != 0.0) {
                    counted = true;
                    tk9 = true;
                    sum_f += pw * l.rho;
                    let seed = pw * l.drho;
                    let a40 = seed;
                    s33 += a40 * 1e0f;
                    x39_9 += a40 * 1e0f;
                }
            }
            {
                let q = tile[j * PV + 1u + 10u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx10;
                let n40 = n33 + n39_10;
                let pred = n40;
                let l = loss(pred, q.x, ok);
                // As in the points layout: cells without a point (weight 0) and
                // undefined ones add exactly nothing.
                if (!l.ok) {
                    acc[RECORD - 1u] += pw;
                }
                if (l.ok && pw != 0.0) {
                    counted = true;
                    tk10 = true;
                    sum_f += pw * l.rho;
                    let seed = pw * l.drho;
                    let a40 = seed;
                    s33 += a40 * 1e0f;
                    x39_10 += a40 * 1e0f;
                }
            }
            {
                let q = tile[j * PV + 1u + 11u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx11;
                let n40 = n33 + n39_11;
                let pred = n40;
                let l = loss(pred, q.x, ok);
                // As in the points layout: cells without a point (weight 0) and
                // undefined ones add exactly nothing.
                if (!l.ok) {
                    acc[RECORD - 1u] += pw;
                }
                if (l.ok && pw != 0.0) {
                    counted = true;
                    tk11 = true;
                    sum_f += pw * l.rho;
                    let seed = pw * l.drho;
                    let a40 = seed;
                    s33 += a40 * 1e0f;
                    x39_11 += a40 * 1e0f;
                }
            }
            {
                let q = tile[j * PV + 1u + 12u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx12;
                let n40 = n33 + n39_12;
                let pred = n40;
                let l = loss(pred, q.x, ok);
                // As in the points layout: cells without a point (weight 0) and
                // undefined ones add exactly nothing.
                if (!l.ok) {
                    acc[RECORD - 1u] += pw;
                }
                if (l.ok && pw != 0.0) {
                    counted = true;
                    tk12 = true;
                    sum_f += pw * l.rho;
                    let seed = pw * l.drho;
                    let a40 = seed;
                    s33 += a40 * 1e0f;
                    x39_12 += a40 * 1e0f;
                }
            }
            {
                let q = tile[j * PV + 1u + 13u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx13;
                let n40 = n33 + n39_13;
                let pred = n40;
                let l = loss(pred, q.x, ok);
                // As in the points layout: cells without a point (weight 0) and
                // undefined ones add exactly nothing.
                if (!l.ok) {
                    acc[RECORD - 1u] += pw;
                }
                if (l.ok && pw != 0.0) {
                    counted = true;
                    tk13 = true;
                    sum_f += pw * l.rho;
                    let seed = pw * l.drho;
                    let a40 = seed;
                    s33 += a40 * 1e0f;
                    x39_13 += a40 * 1e0f;
                }
            }
            {
                let q = tile[j * PV + 1u + 14u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx14;
                let n40 = n33 + n39_14;
                let pred = n40;
                let l = loss(pred, q.x, ok);
                // As in the points layout: cells without a point (weight 0) and
                // undefined ones add exactly nothing.
                if (!l.ok) {
                    acc[RECORD - 1u] += pw;
                }
                if (l.ok && pw != 0.0) {
                    counted = true;
                    tk14 = true;
                    sum_f += pw * l.rho;
                    let seed = pw * l.drho;
                    let a40 = seed;
                    s33 += a40 * 1e0f;
                    x39_14 += a40 * 1e0f;
                }
            }
            {
                let q = tile[j * PV + 1u + 15u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx15;
                let n40 = n33 + n39_15;
                let pred = n40;
                let l = loss(pred, q.x, ok);
                // As in the points layout: cells without a point (weight 0) and
                // undefined ones add exactly nothing.
                if (!l.ok) {
                    acc[RECORD - 1u] += pw;
                }
                if (l.ok && pw != 0.0) {
                    counted = true;
                    tk15 = true;
                    sum_f += pw * l.rho;
                    let seed = pw * l.drho;
                    let a40 = seed;
                    s33 += a40 * 1e0f;
                    x39_15 += a40 * 1e0f;
                }
            }
        }
        workgroupBarrier();
    }
    if (counted) {
        acc[0] += sum_f;
        var c30 = 0.0;
        var c31 = 0.0;
        var c32 = 0.0;
        var c33 = s33;
        a0 += c33 * 1e0f;
        c32 += c33 * 1e0f;
        a1 += c32 * n31;
        c31 += c32 * n1;
        c30 += c31 * n31;
        a3 += c30 * n29;
    }
    if (tk0) {
        var c37 = 0.0;
        var c38 = 0.0;
        var c39 = x39_0;
        a7 += c39 * n38_0;
        c38 += c39 * n7;
        c37 += c38 * n38_0;
        a9 += c37 * n36_0;
    }
    if (tk1) {
        var c37 = 0.0;
        var c38 = 0.0;
        var c39 = x39_1;
        a7 += c39 * n38_1;
        c38 += c39 * n7;
        c37 += c38 * n38_1;
        a9 += c37 * n36_1;
    }
    if (tk2) {
        var c37 = 0.0;
        var c38 = 0.0;
        var c39 = x39_2;
        a7 += c39 * n38_2;
        c38 += c39 * n7;
        c37 += c38 * n38_2;
        a9 += c37 * n36_2;
    }
    if (tk3) {
        var c37 = 0.0;
        var c38 = 0.0;
        var c39 = x39_3;
        a7 += c39 * n38_3;
        c38 += c39 * n7;
        c37 += c38 * n38_3;
        a9 += c37 * n36_3;
    }
    if (tk4) {
        var c37 = 0.0;
        var c38 = 0.0;
        var c39 = x39_4;
        a7 += c39 * n38_4;
        c38 += c39 * n7;
        c37 += c38 * n38_4;
        a9 += c37 * n36_4;
    }
    if (tk5) {
        var c37 = 0.0;
        var c38 = 0.0;
        var c39 = x39_5;
        a7 += c39 * n38_5;
        c38 += c39 * n7;
        c37 += c38 * n38_5;
        a9 += c37 * n36_5;
    }
    if (tk6) {
        var c37 = 0.0;
        var c38 = 0.0;
        var c39 = x39_6;
        a7 += c39 * n38_6;
        c38 += c39 * n7;
        c37 += c38 * n38_6;
        a9 += c37 * n36_6;
    }
    if (tk7) {
        var c37 = 0.0;
        var c38 = 0.0;
        var c39 = x39_7;
        a7 += c39 * n38_7;
        c38 += c39 * n7;
        c37 += c38 * n38_7;
        a9 += c37 * n36_7;
    }
    if (tk8) {
        var c37 = 0.0;
        var c38 = 0.0;
        var c39 = x39_8;
        a7 += c39 * n38_8;
        c38 += c39 * n7;
        c37 += c38 * n38_8;
        a9 += c37 * n36_8;
    }
    if (tk9) {
        var c37 = 0.0;
        var c38 = 0.0;
        var c39 = x39_9;
        a7 += c39 * n38_9;
        c38 += c39 * n7;
        c37 += c38 * n38_9;
        a9 += c37 * n36_9;
    }
    if (tk10) {
        var c37 = 0.0;
        var c38 = 0.0;
        var c39 = x39_10;
        a7 += c39 * n38_10;
        c38 += c39 * n7;
        c37 += c38 * n38_10;
        a9 += c37 * n36_10;
    }
    if (tk11) {
        var c37 = 0.0;
        var c38 = 0.0;
        var c39 = x39_11;
        a7 += c39 * n38_11;
        c38 += c39 * n7;
        c37 += c38 * n38_11;
        a9 += c37 * n36_11;
    }
    if (tk12) {
        var c37 = 0.0;
        var c38 = 0.0;
        var c39 = x39_12;
        a7 += c39 * n38_12;
        c38 += c39 * n7;
        c37 += c38 * n38_12;
        a9 += c37 * n36_12;
    }
    if (tk13) {
        var c37 = 0.0;
        var c38 = 0.0;
        var c39 = x39_13;
        a7 += c39 * n38_13;
        c38 += c39 * n7;
        c37 += c38 * n38_13;
        a9 += c37 * n36_13;
    }
    if (tk14) {
        var c37 = 0.0;
        var c38 = 0.0;
        var c39 = x39_14;
        a7 += c39 * n38_14;
        c38 += c39 * n7;
        c37 += c38 * n38_14;
        a9 += c37 * n36_14;
    }
    if (tk15) {
        var c37 = 0.0;
        var c38 = 0.0;
        var c39 = x39_15;
        a7 += c39 * n38_15;
        c38 += c39 * n7;
        c37 += c38 * n38_15;
        a9 += c37 * n36_15;
    }
    acc[1] = a0;
    acc[2] = a1;
    acc[3] = a3;
    acc[4] = a7;
    acc[5] = a9;
    if (live) {
        write_record(wid.x, k, acc);
    }
}
// law chinchilla, grid layout (axis nodes once per start and value), Gauss-Newton moments, curves along D
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

const NP: u32 = 5u;
const RECORD: u32 = 22u;
const PV: u32 = 9u;
const CS: u32 = 3u;
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
    let n9 = p[4];
    var a0 = 0.0;
    var a1 = 0.0;
    var a3 = 0.0;
    var a7 = 0.0;
    var a9 = 0.0;

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
    var n29 = 0.0;
    var n30 = 0.0;
    var n31 = 0.0;
    var n32 = 0.0;
    var n33 = 0.0;
    var s33 = 0.0;
    var ju2 = 0.0;
    var ju3 = 0.0;
    var ju4 = 0.0;
    var rs = 0.0;
    var rw = 0.0;
    var rx0 = 0.0;
    var rx1 = 0.0;
    var cur_block = NO_CURVE;
    var okx0 = true;
    var tk0 = false;
    var n36_0 = 0.0;
    var n37_0 = 0.0;
    var n38_0 = 0.0;
    var n39_0 = 0.0;
    var x39_0 = 0.0;
    var jv0_0 = 0.0;
    var jv1_0 = 0.0;
    var col0 = 0.0;
    var om0 = 0.0;
    var okx1 = true;
    var tk1 = false;
    var n36_1 = 0.0;
    var n37_1 = 0.0;
    var n38_1 = 0.0;
    var n39_1 = 0.0;
    var x39_1 = 0.0;
    var jv0_1 = 0.0;
    var jv1_1 = 0.0;
    var col1 = 0.0;
    var om1 = 0.0;
    var okx2 = true;
    var tk2 = false;
    var n36_2 = 0.0;
    var n37_2 = 0.0;
    var n38_2 = 0.0;
    var n39_2 = 0.0;
    var x39_2 = 0.0;
    var jv0_2 = 0.0;
    var jv1_2 = 0.0;
    var col2 = 0.0;
    var om2 = 0.0;
    var okx3 = true;
    var tk3 = false;
    var n36_3 = 0.0;
    var n37_3 = 0.0;
    var n38_3 = 0.0;
    var n39_3 = 0.0;
    var x39_3 = 0.0;
    var jv0_3 = 0.0;
    var jv1_3 = 0.0;
    var col3 = 0.0;
    var om3 = 0.0;
    var okx4 = true;
    var tk4 = false;
    var n36_4 = 0.0;
    var n37_4 = 0.0;
    var n38_4 = 0.0;
    var n39_4 = 0.0;
    var x39_4 = 0.0;
    var jv0_4 = 0.0;
    var jv1_4 = 0.0;
    var col4 = 0.0;
    var om4 = 0.0;
    var okx5 = true;
    var tk5 = false;
    var n36_5 = 0.0;
    var n37_5 = 0.0;
    var n38_5 = 0.0;
    var n39_5 = 0.0;
    var x39_5 = 0.0;
    var jv0_5 = 0.0;
    var jv1_5 = 0.0;
    var col5 = 0.0;
    var om5 = 0.0;
    var okx6 = true;
    var tk6 = false;
    var n36_6 = 0.0;
    var n37_6 = 0.0;
    var n38_6 = 0.0;
    var n39_6 = 0.0;
    var x39_6 = 0.0;
    var jv0_6 = 0.0;
    var jv1_6 = 0.0;
    var col6 = 0.0;
    var om6 = 0.0;
    var okx7 = true;
    var tk7 = false;
    var n36_7 = 0.0;
    var n37_7 = 0.0;
    var n38_7 = 0.0;
    var n39_7 = 0.0;
    var x39_7 = 0.0;
    var jv0_7 = 0.0;
    var jv1_7 = 0.0;
    var col7 = 0.0;
    var om7 = 0.0;

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
                    acc[1u] += col0 * jv0_0;
                    acc[6u] += om0 * jv0_0 * jv0_0;
                    acc[7u] += om0 * jv0_0 * jv1_0;
                    acc[2u] += col0 * jv1_0;
                    acc[11u] += om0 * jv1_0 * jv1_0;
                }
                if (tk1) {
                    acc[1u] += col1 * jv0_1;
                    acc[6u] += om1 * jv0_1 * jv0_1;
                    acc[7u] += om1 * jv0_1 * jv1_1;
                    acc[2u] += col1 * jv1_1;
                    acc[11u] += om1 * jv1_1 * jv1_1;
                }
                if (tk2) {
                    acc[1u] += col2 * jv0_2;
                    acc[6u] += om2 * jv0_2 * jv0_2;
                    acc[7u] += om2 * jv0_2 * jv1_2;
                    acc[2u] += col2 * jv1_2;
                    acc[11u] += om2 * jv1_2 * jv1_2;
                }
                if (tk3) {
                    acc[1u] += col3 * jv0_3;
                    acc[6u] += om3 * jv0_3 * jv0_3;
                    acc[7u] += om3 * jv0_3 * jv1_3;
                    acc[2u] += col3 * jv1_3;
                    acc[11u] += om3 * jv1_3 * jv1_3;
                }
                if (tk4) {
                    acc[1u] += col4 * jv0_4;
                    acc[6u] += om4 * jv0_4 * jv0_4;
                    acc[7u] += om4 * jv0_4 * jv1_4;
                    acc[2u] += col4 * jv1_4;
                    acc[11u] += om4 * jv1_4 * jv1_4;
                }
                if (tk5) {
                    acc[1u] += col5 * jv0_5;
                    acc[6u] += om5 * jv0_5 * jv0_5;
                    acc[7u] += om5 * jv0_5 * jv1_5;
                    acc[2u] += col5 * jv1_5;
                    acc[11u] += om5 * jv1_5 * jv1_5;
                }
                if (tk6) {
                    acc[1u] += col6 * jv0_6;
                    acc[6u] += om6 * jv0_6 * jv0_6;
                    acc[7u] += om6 * jv0_6 * jv1_6;
                    acc[2u] += col6 * jv1_6;
                    acc[11u] += om6 * jv1_6 * jv1_6;
                }
                if (tk7) {
                    acc[1u] += col7 * jv0_7;
                    acc[6u] += om7 * jv0_7 * jv0_7;
                    acc[7u] += om7 * jv0_7 * jv1_7;
                    acc[2u] += col7 * jv1_7;
                    acc[11u] += om7 * jv1_7 * jv1_7;
                }
                cur_block = pb;
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 0u, chunk.n_axis - 1u) * AS;
                    n36_0 = curves[ab + 0u];
                    okx0 = true;
                    n37_0 = n9 * n36_0;
                    n38_0 = exp(n37_0);
                    n39_0 = n7 * n38_0;
                    x39_0 = 0.0;
                    jv0_0 = 0.0;
                    jv1_0 = 0.0;
                    {
                        var c37 = 0.0;
                        var c38 = 0.0;
                        var c39 = 0.0;
                        c39 = 1e0f;
                        jv0_0 += c39 * n38_0;
                        c38 += c39 * n7;
                        c37 += c38 * n38_0;
                        jv1_0 += c37 * n36_0;
                    }
                    col0 = 0.0;
                    om0 = 0.0;
                    tk0 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 1u, chunk.n_axis - 1u) * AS;
                    n36_1 = curves[ab + 0u];
                    okx1 = true;
                    n37_1 = n9 * n36_1;
                    n38_1 = exp(n37_1);
                    n39_1 = n7 * n38_1;
                    x39_1 = 0.0;
                    jv0_1 = 0.0;
                    jv1_1 = 0.0;
                    {
                        var c37 = 0.0;
                        var c38 = 0.0;
                        var c39 = 0.0;
                        c39 = 1e0f;
                        jv0_1 += c39 * n38_1;
                        c38 += c39 * n7;
                        c37 += c38 * n38_1;
                        jv1_1 += c37 * n36_1;
                    }
                    col1 = 0.0;
                    om1 = 0.0;
                    tk1 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 2u, chunk.n_axis - 1u) * AS;
                    n36_2 = curves[ab + 0u];
                    okx2 = true;
                    n37_2 = n9 * n36_2;
                    n38_2 = exp(n37_2);
                    n39_2 = n7 * n38_2;
                    x39_2 = 0.0;
                    jv0_2 = 0.0;
                    jv1_2 = 0.0;
                    {
                        var c37 = 0.0;
                        var c38 = 0.0;
                        var c39 = 0.0;
                        c39 = 1e0f;
                        jv0_2 += c39 * n38_2;
                        c38 += c39 * n7;
                        c37 += c38 * n38_2;
                        jv1_2 += c37 * n36_2;
                    }
                    col2 = 0.0;
                    om2 = 0.0;
                    tk2 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 3u, chunk.n_axis - 1u) * AS;
                    n36_3 = curves[ab + 0u];
                    okx3 = true;
                    n37_3 = n9 * n36_3;
                    n38_3 = exp(n37_3);
                    n39_3 = n7 * n38_3;
                    x39_3 = 0.0;
                    jv0_3 = 0.0;
                    jv1_3 = 0.0;
                    {
                        var c37 = 0.0;
                        var c38 = 0.0;
                        var c39 = 0.0;
                        c39 = 1e0f;
                        jv0_3 += c39 * n38_3;
                        c38 += c39 * n7;
                        c37 += c38 * n38_3;
                        jv1_3 += c37 * n36_3;
                    }
                    col3 = 0.0;
                    om3 = 0.0;
                    tk3 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 4u, chunk.n_axis - 1u) * AS;
                    n36_4 = curves[ab + 0u];
                    okx4 = true;
                    n37_4 = n9 * n36_4;
                    n38_4 = exp(n37_4);
                    n39_4 = n7 * n38_4;
                    x39_4 = 0.0;
                    jv0_4 = 0.0;
                    jv1_4 = 0.0;
                    {
                        var c37 = 0.0;
                        var c38 = 0.0;
                        var c39 = 0.0;
                        c39 = 1e0f;
                        jv0_4 += c39 * n38_4;
                        c38 += c39 * n7;
                        c37 += c38 * n38_4;
                        jv1_4 += c37 * n36_4;
                    }
                    col4 = 0.0;
                    om4 = 0.0;
                    tk4 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 5u, chunk.n_axis - 1u) * AS;
                    n36_5 = curves[ab + 0u];
                    okx5 = true;
                    n37_5 = n9 * n36_5;
                    n38_5 = exp(n37_5);
                    n39_5 = n7 * n38_5;
                    x39_5 = 0.0;
                    jv0_5 = 0.0;
                    jv1_5 = 0.0;
                    {
                        var c37 = 0.0;
                        var c38 = 0.0;
                        var c39 = 0.0;
                        c39 = 1e0f;
                        jv0_5 += c39 * n38_5;
                        c38 += c39 * n7;
                        c37 += c38 * n38_5;
                        jv1_5 += c37 * n36_5;
                    }
                    col5 = 0.0;
                    om5 = 0.0;
                    tk5 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 6u, chunk.n_axis - 1u) * AS;
                    n36_6 = curves[ab + 0u];
                    okx6 = true;
                    n37_6 = n9 * n36_6;
                    n38_6 = exp(n37_6);
                    n39_6 = n7 * n38_6;
                    x39_6 = 0.0;
                    jv0_6 = 0.0;
                    jv1_6 = 0.0;
                    {
                        var c37 = 0.0;
                        var c38 = 0.0;
                        var c39 = 0.0;
                        c39 = 1e0f;
                        jv0_6 += c39 * n38_6;
                        c38 += c39 * n7;
                        c37 += c38 * n38_6;
                        jv1_6 += c37 * n36_6;
                    }
                    col6 = 0.0;
                    om6 = 0.0;
                    tk6 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 7u, chunk.n_axis - 1u) * AS;
                    n36_7 = curves[ab + 0u];
                    okx7 = true;
                    n37_7 = n9 * n36_7;
                    n38_7 = exp(n37_7);
                    n39_7 = n7 * n38_7;
                    x39_7 = 0.0;
                    jv0_7 = 0.0;
                    jv1_7 = 0.0;
                    {
                        var c37 = 0.0;
                        var c38 = 0.0;
                        var c39 = 0.0;
                        c39 = 1e0f;
                        jv0_7 += c39 * n38_7;
                        c38 += c39 * n7;
                        c37 += c38 * n38_7;
                        jv1_7 += c37 * n36_7;
                    }
                    col7 = 0.0;
                    om7 = 0.0;
                    tk7 = false;
                }
            }
            if (pc != cur) {
                // Close the previous curve and open this one (uniform
                // across the workgroup).
                if (counted) {
                    acc[0] += sum_f;
                    acc[3u] += rs * ju2;
                    acc[4u] += rs * ju3;
                    acc[5u] += rs * ju4;
                    acc[8u] += rx0 * ju2;
                    acc[9u] += rx0 * ju3;
                    acc[10u] += rx0 * ju4;
                    acc[12u] += rx1 * ju2;
                    acc[13u] += rx1 * ju3;
                    acc[14u] += rx1 * ju4;
                    acc[15u] += rw * ju2 * ju2;
                    acc[16u] += rw * ju2 * ju3;
                    acc[17u] += rw * ju2 * ju4;
                    acc[18u] += rw * ju3 * ju3;
                    acc[19u] += rw * ju3 * ju4;
                    acc[20u] += rw * ju4 * ju4;
                }
                cur = pc;
                counted = false;
                sum_f = 0.0;
                ok_curve = true;
                let cb = pc * CS;
                n29 = curves[cb + 2u];
                n30 = n3 * n29;
                n31 = exp(n30);
                n32 = n1 * n31;
                n33 = n0 + n32;
                s33 = 0.0;
                ju2 = 0.0;
                ju3 = 0.0;
                ju4 = 0.0;
                {
                    var c30 = 0.0;
                    var c31 = 0.0;
                    var c32 = 0.0;
                    var c33 = 0.0;
                    c33 = 1e0f;
                    ju2 += c33 * 1e0f;
                    c32 += c33 * 1e0f;
                    ju3 += c32 * n31;
                    c31 += c32 * n1;
                    c30 += c31 * n31;
                    ju4 += c30 * n29;
                }
                rs = 0.0;
                rw = 0.0;
                rx0 = 0.0;
                rx1 = 0.0;
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
                let n40 = n33 + n39_0;
                let pred = n40;
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
                    let wo = select(pw, pw / (pred * pred), LOG_SPACE);
                    rs += seed;
                    rw += wo;
                    rx0 += wo * jv0_0;
                    rx1 += wo * jv1_0;
                    col0 += seed;
                    om0 += wo;
                }
            }
            {
                let q = tile[j * PV + 1u + 1u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx1;
                let n40 = n33 + n39_1;
                let pred = n40;
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
                    let wo = select(pw, pw / (pred * pred), LOG_SPACE);
                    rs += seed;
                    rw += wo;
                    rx0 += wo * jv0_1;
                    rx1 += wo * jv1_1;
                    col1 += seed;
                    om1 += wo;
                }
            }
            {
                let q = tile[j * PV + 1u + 2u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx2;
                let n40 = n33 + n39_2;
                let pred = n40;
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
                    let wo = select(pw, pw / (pred * pred), LOG_SPACE);
                    rs += seed;
                    rw += wo;
                    rx0 += wo * jv0_2;
                    rx1 += wo * jv1_2;
                    col2 += seed;
                    om2 += wo;
                }
            }
            {
                let q = tile[j * PV + 1u + 3u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx3;
                let n40 = n33 + n39_3;
                let pred = n40;
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
                    let wo = select(pw, pw / (pred * pred), LOG_SPACE);
                    rs += seed;
                    rw += wo;
                    rx0 += wo * jv0_3;
                    rx1 += wo * jv1_3;
                    col3 += seed;
                    om3 += wo;
                }
            }
            {
                let q = tile[j * PV + 1u + 4u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx4;
                let n40 = n33 + n39_4;
                let pred = n40;
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
                    let wo = select(pw, pw / (pred * pred), LOG_SPACE);
                    rs += seed;
                    rw += wo;
                    rx0 += wo * jv0_4;
                    rx1 += wo * jv1_4;
                    col4 += seed;
                    om4 += wo;
                }
            }
            {
                let q = tile[j * PV + 1u + 5u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx5;
                let n40 = n33 + n39_5;
                let pred = n40;
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
                    let wo = select(pw, pw / (pred * pred), LOG_SPACE);
                    rs += seed;
                    rw += wo;
                    rx0 += wo * jv0_5;
                    rx1 += wo * jv1_5;
                    col5 += seed;
                    om5 += wo;
                }
            }
            {
                let q = tile[j * PV + 1u + 6u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx6;
                let n40 = n33 + n39_6;
                let pred = n40;
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
                    let wo = select(pw, pw / (pred * pred), LOG_SPACE);
                    rs += seed;
                    rw += wo;
                    rx0 += wo * jv0_6;
                    rx1 += wo * jv1_6;
                    col6 += seed;
                    om6 += wo;
                }
            }
            {
                let q = tile[j * PV + 1u + 7u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx7;
                let n40 = n33 + n39_7;
                let pred = n40;
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
                    let wo = select(pw, pw / (pred * pred), LOG_SPACE);
                    rs += seed;
                    rw += wo;
                    rx0 += wo * jv0_7;
                    rx1 += wo * jv1_7;
                    col7 += seed;
                    om7 += wo;
                }
            }
        }
        workgroupBarrier();
    }
    if (counted) {
        acc[0] += sum_f;
        acc[3u] += rs * ju2;
        acc[4u] += rs * ju3;
        acc[5u] += rs * ju4;
        acc[8u] += rx0 * ju2;
        acc[9u] += rx0 * ju3;
        acc[10u] += rx0 * ju4;
        acc[12u] += rx1 * ju2;
        acc[13u] += rx1 * ju3;
        acc[14u] += rx1 * ju4;
        acc[15u] += rw * ju2 * ju2;
        acc[16u] += rw * ju2 * ju3;
        acc[17u] += rw * ju2 * ju4;
        acc[18u] += rw * ju3 * ju3;
        acc[19u] += rw * ju3 * ju4;
        acc[20u] += rw * ju4 * ju4;
    }
    if (tk0) {
        acc[1u] += col0 * jv0_0;
        acc[6u] += om0 * jv0_0 * jv0_0;
        acc[7u] += om0 * jv0_0 * jv1_0;
        acc[2u] += col0 * jv1_0;
        acc[11u] += om0 * jv1_0 * jv1_0;
    }
    if (tk1) {
        acc[1u] += col1 * jv0_1;
        acc[6u] += om1 * jv0_1 * jv0_1;
        acc[7u] += om1 * jv0_1 * jv1_1;
        acc[2u] += col1 * jv1_1;
        acc[11u] += om1 * jv1_1 * jv1_1;
    }
    if (tk2) {
        acc[1u] += col2 * jv0_2;
        acc[6u] += om2 * jv0_2 * jv0_2;
        acc[7u] += om2 * jv0_2 * jv1_2;
        acc[2u] += col2 * jv1_2;
        acc[11u] += om2 * jv1_2 * jv1_2;
    }
    if (tk3) {
        acc[1u] += col3 * jv0_3;
        acc[6u] += om3 * jv0_3 * jv0_3;
        acc[7u] += om3 * jv0_3 * jv1_3;
        acc[2u] += col3 * jv1_3;
        acc[11u] += om3 * jv1_3 * jv1_3;
    }
    if (tk4) {
        acc[1u] += col4 * jv0_4;
        acc[6u] += om4 * jv0_4 * jv0_4;
        acc[7u] += om4 * jv0_4 * jv1_4;
        acc[2u] += col4 * jv1_4;
        acc[11u] += om4 * jv1_4 * jv1_4;
    }
    if (tk5) {
        acc[1u] += col5 * jv0_5;
        acc[6u] += om5 * jv0_5 * jv0_5;
        acc[7u] += om5 * jv0_5 * jv1_5;
        acc[2u] += col5 * jv1_5;
        acc[11u] += om5 * jv1_5 * jv1_5;
    }
    if (tk6) {
        acc[1u] += col6 * jv0_6;
        acc[6u] += om6 * jv0_6 * jv0_6;
        acc[7u] += om6 * jv0_6 * jv1_6;
        acc[2u] += col6 * jv1_6;
        acc[11u] += om6 * jv1_6 * jv1_6;
    }
    if (tk7) {
        acc[1u] += col7 * jv0_7;
        acc[6u] += om7 * jv0_7 * jv0_7;
        acc[7u] += om7 * jv0_7 * jv1_7;
        acc[2u] += col7 * jv1_7;
        acc[11u] += om7 * jv1_7 * jv1_7;
    }
    if (live) {
        write_record(wid.x, k, acc);
    }
}
