// law moe, points layout, curves along N
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

const NP: u32 = 6u;
const RECORD: u32 = 8u;
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
    let n4 = p[1];
    let n8 = p[2];
    let n9 = 1e0f / n8;
    let n10 = p[3];
    let n11 = 1e0f / n10;
    let n12 = n9 - n11;
    let n20 = p[4];
    let n24 = p[5];
    let n33 = n11 * n11;
    let n34 = -n33;
    let n35 = n9 * n9;
    let n36 = -n35;
    var a0 = 0.0;
    var a4 = 0.0;
    var a8 = 0.0;
    var a9 = 0.0;
    var a10 = 0.0;
    var a11 = 0.0;
    var a12 = 0.0;
    var a20 = 0.0;
    var a24 = 0.0;

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
    var n7 = 0.0;
    var n13 = 0.0;
    var n14 = 0.0;
    var n15 = 0.0;
    var n16 = 0.0;
    var n17 = 0.0;
    var n18 = 0.0;
    var n27 = 0.0;
    var n28 = 0.0;
    var n29 = 0.0;
    var n30 = 0.0;
    var n31 = 0.0;
    var s0 = 0.0;
    var s17 = 0.0;
    var s18 = 0.0;
    var s20 = 0.0;
    var s24 = 0.0;

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
                    var c13 = 0.0;
                    var c14 = 0.0;
                    var c15 = 0.0;
                    var c16 = 0.0;
                    var c17 = s17;
                    var c18 = s18;
                    a4 += c18 * n17;
                    c17 += c18 * n4;
                    c16 += c17 * n27;
                    c15 += c16 * n29;
                    a11 += c15 * 1e0f;
                    c14 += c15 * 1e0f;
                    c13 += c14 * n31;
                    a12 += c13 * 1e0f;
                    a0 += s0;
                    a20 += s20;
                    a24 += s24;
                }
                cur = pc;
                counted = false;
                sum_f = 0.0;
                ok_curve = true;
                let cb = pc * CS;
                n7 = curves[cb + 2u];
                n13 = n7 + n12;
                n14 = 1e0f / n13;
                n15 = n11 + n14;
                n16 = 1e0f / n15;
                n17 = log(n16);
                ok_curve = ok_curve && n16 > 0.0;
                n18 = n4 * n17;
                n27 = 1e0f / n16;
                n28 = n16 * n16;
                n29 = -n28;
                n30 = n14 * n14;
                n31 = -n30;
                s0 = 0.0;
                s17 = 0.0;
                s18 = 0.0;
                s20 = 0.0;
                s24 = 0.0;
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
            let n2 = q0.w;
            let n3 = n0 * n2;
            let n21 = n2 * n20;
            let n19 = n3 + n18;
            let n22 = n17 * n21;
            let n23 = n19 + n22;
            let n25 = n23 + n24;
            let n26 = exp(n25);
            let pred = n26;
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
                var a3 = 0.0;
                var a21 = 0.0;
                var a19 = 0.0;
                var a22 = 0.0;
                var a23 = 0.0;
                var a25 = 0.0;
                let a26 = seed;
                a25 += a26 * n26;
                a23 += a25 * 1e0f;
                s24 += a25 * 1e0f;
                a19 += a23 * 1e0f;
                a22 += a23 * 1e0f;
                s17 += a22 * n21;
                a21 += a22 * n17;
                a3 += a19 * 1e0f;
                s18 += a19 * 1e0f;
                s20 += a21 * n2;
                s0 += a3 * n2;
            }
        }
        workgroupBarrier();
    }
    if (counted) {
        acc[0] += sum_f;
        var c13 = 0.0;
        var c14 = 0.0;
        var c15 = 0.0;
        var c16 = 0.0;
        var c17 = s17;
        var c18 = s18;
        a4 += c18 * n17;
        c17 += c18 * n4;
        c16 += c17 * n27;
        c15 += c16 * n29;
        a11 += c15 * 1e0f;
        c14 += c15 * 1e0f;
        c13 += c14 * n31;
        a12 += c13 * 1e0f;
        a0 += s0;
        a20 += s20;
        a24 += s24;
    }
    a9 += a12 * 1e0f;
    a11 += a12 * (-1e0f);
    a10 += a11 * n34;
    a8 += a9 * n36;
    acc[1] = a0;
    acc[2] = a4;
    acc[3] = a8;
    acc[4] = a10;
    acc[5] = a20;
    acc[6] = a24;
    if (live) {
        write_record(wid.x, k, acc);
    }
}
// law moe, grid layout (axis nodes once per start and value), curves along N
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

const NP: u32 = 6u;
const RECORD: u32 = 8u;
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
    let n4 = p[1];
    let n8 = p[2];
    let n9 = 1e0f / n8;
    let n10 = p[3];
    let n11 = 1e0f / n10;
    let n12 = n9 - n11;
    let n20 = p[4];
    let n24 = p[5];
    let n33 = n11 * n11;
    let n34 = -n33;
    let n35 = n9 * n9;
    let n36 = -n35;
    var a0 = 0.0;
    var a4 = 0.0;
    var a8 = 0.0;
    var a9 = 0.0;
    var a10 = 0.0;
    var a11 = 0.0;
    var a12 = 0.0;
    var a20 = 0.0;
    var a24 = 0.0;

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
    var n7 = 0.0;
    var n13 = 0.0;
    var n14 = 0.0;
    var n15 = 0.0;
    var n16 = 0.0;
    var n17 = 0.0;
    var n18 = 0.0;
    var n27 = 0.0;
    var n28 = 0.0;
    var n29 = 0.0;
    var n30 = 0.0;
    var n31 = 0.0;
    var s17 = 0.0;
    var s18 = 0.0;
    var s24 = 0.0;
    var cur_block = NO_CURVE;
    var okx0 = true;
    var tk0 = false;
    var n2_0 = 0.0;
    var n3_0 = 0.0;
    var n21_0 = 0.0;
    var x3_0 = 0.0;
    var x21_0 = 0.0;
    var okx1 = true;
    var tk1 = false;
    var n2_1 = 0.0;
    var n3_1 = 0.0;
    var n21_1 = 0.0;
    var x3_1 = 0.0;
    var x21_1 = 0.0;
    var okx2 = true;
    var tk2 = false;
    var n2_2 = 0.0;
    var n3_2 = 0.0;
    var n21_2 = 0.0;
    var x3_2 = 0.0;
    var x21_2 = 0.0;
    var okx3 = true;
    var tk3 = false;
    var n2_3 = 0.0;
    var n3_3 = 0.0;
    var n21_3 = 0.0;
    var x3_3 = 0.0;
    var x21_3 = 0.0;
    var okx4 = true;
    var tk4 = false;
    var n2_4 = 0.0;
    var n3_4 = 0.0;
    var n21_4 = 0.0;
    var x3_4 = 0.0;
    var x21_4 = 0.0;
    var okx5 = true;
    var tk5 = false;
    var n2_5 = 0.0;
    var n3_5 = 0.0;
    var n21_5 = 0.0;
    var x3_5 = 0.0;
    var x21_5 = 0.0;
    var okx6 = true;
    var tk6 = false;
    var n2_6 = 0.0;
    var n3_6 = 0.0;
    var n21_6 = 0.0;
    var x3_6 = 0.0;
    var x21_6 = 0.0;
    var okx7 = true;
    var tk7 = false;
    var n2_7 = 0.0;
    var n3_7 = 0.0;
    var n21_7 = 0.0;
    var x3_7 = 0.0;
    var x21_7 = 0.0;
    var okx8 = true;
    var tk8 = false;
    var n2_8 = 0.0;
    var n3_8 = 0.0;
    var n21_8 = 0.0;
    var x3_8 = 0.0;
    var x21_8 = 0.0;
    var okx9 = true;
    var tk9 = false;
    var n2_9 = 0.0;
    var n3_9 = 0.0;
    var n21_9 = 0.0;
    var x3_9 = 0.0;
    var x21_9 = 0.0;
    var okx10 = true;
    var tk10 = false;
    var n2_10 = 0.0;
    var n3_10 = 0.0;
    var n21_10 = 0.0;
    var x3_10 = 0.0;
    var x21_10 = 0.0;
    var okx11 = true;
    var tk11 = false;
    var n2_11 = 0.0;
    var n3_11 = 0.0;
    var n21_11 = 0.0;
    var x3_11 = 0.0;
    var x21_11 = 0.0;
    var okx12 = true;
    var tk12 = false;
    var n2_12 = 0.0;
    var n3_12 = 0.0;
    var n21_12 = 0.0;
    var x3_12 = 0.0;
    var x21_12 = 0.0;
    var okx13 = true;
    var tk13 = false;
    var n2_13 = 0.0;
    var n3_13 = 0.0;
    var n21_13 = 0.0;
    var x3_13 = 0.0;
    var x21_13 = 0.0;
    var okx14 = true;
    var tk14 = false;
    var n2_14 = 0.0;
    var n3_14 = 0.0;
    var n21_14 = 0.0;
    var x3_14 = 0.0;
    var x21_14 = 0.0;
    var okx15 = true;
    var tk15 = false;
    var n2_15 = 0.0;
    var n3_15 = 0.0;
    var n21_15 = 0.0;
    var x3_15 = 0.0;
    var x21_15 = 0.0;

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
                    var c3 = x3_0;
                    var c21 = x21_0;
                    a20 += c21 * n2_0;
                    a0 += c3 * n2_0;
                }
                if (tk1) {
                    var c3 = x3_1;
                    var c21 = x21_1;
                    a20 += c21 * n2_1;
                    a0 += c3 * n2_1;
                }
                if (tk2) {
                    var c3 = x3_2;
                    var c21 = x21_2;
                    a20 += c21 * n2_2;
                    a0 += c3 * n2_2;
                }
                if (tk3) {
                    var c3 = x3_3;
                    var c21 = x21_3;
                    a20 += c21 * n2_3;
                    a0 += c3 * n2_3;
                }
                if (tk4) {
                    var c3 = x3_4;
                    var c21 = x21_4;
                    a20 += c21 * n2_4;
                    a0 += c3 * n2_4;
                }
                if (tk5) {
                    var c3 = x3_5;
                    var c21 = x21_5;
                    a20 += c21 * n2_5;
                    a0 += c3 * n2_5;
                }
                if (tk6) {
                    var c3 = x3_6;
                    var c21 = x21_6;
                    a20 += c21 * n2_6;
                    a0 += c3 * n2_6;
                }
                if (tk7) {
                    var c3 = x3_7;
                    var c21 = x21_7;
                    a20 += c21 * n2_7;
                    a0 += c3 * n2_7;
                }
                if (tk8) {
                    var c3 = x3_8;
                    var c21 = x21_8;
                    a20 += c21 * n2_8;
                    a0 += c3 * n2_8;
                }
                if (tk9) {
                    var c3 = x3_9;
                    var c21 = x21_9;
                    a20 += c21 * n2_9;
                    a0 += c3 * n2_9;
                }
                if (tk10) {
                    var c3 = x3_10;
                    var c21 = x21_10;
                    a20 += c21 * n2_10;
                    a0 += c3 * n2_10;
                }
                if (tk11) {
                    var c3 = x3_11;
                    var c21 = x21_11;
                    a20 += c21 * n2_11;
                    a0 += c3 * n2_11;
                }
                if (tk12) {
                    var c3 = x3_12;
                    var c21 = x21_12;
                    a20 += c21 * n2_12;
                    a0 += c3 * n2_12;
                }
                if (tk13) {
                    var c3 = x3_13;
                    var c21 = x21_13;
                    a20 += c21 * n2_13;
                    a0 += c3 * n2_13;
                }
                if (tk14) {
                    var c3 = x3_14;
                    var c21 = x21_14;
                    a20 += c21 * n2_14;
                    a0 += c3 * n2_14;
                }
                if (tk15) {
                    var c3 = x3_15;
                    var c21 = x21_15;
                    a20 += c21 * n2_15;
                    a0 += c3 * n2_15;
                }
                cur_block = pb;
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 0u, chunk.n_axis - 1u) * AS;
                    n2_0 = curves[ab + 0u];
                    okx0 = true;
                    n3_0 = n0 * n2_0;
                    n21_0 = n2_0 * n20;
                    x3_0 = 0.0;
                    x21_0 = 0.0;
                    tk0 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 1u, chunk.n_axis - 1u) * AS;
                    n2_1 = curves[ab + 0u];
                    okx1 = true;
                    n3_1 = n0 * n2_1;
                    n21_1 = n2_1 * n20;
                    x3_1 = 0.0;
                    x21_1 = 0.0;
                    tk1 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 2u, chunk.n_axis - 1u) * AS;
                    n2_2 = curves[ab + 0u];
                    okx2 = true;
                    n3_2 = n0 * n2_2;
                    n21_2 = n2_2 * n20;
                    x3_2 = 0.0;
                    x21_2 = 0.0;
                    tk2 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 3u, chunk.n_axis - 1u) * AS;
                    n2_3 = curves[ab + 0u];
                    okx3 = true;
                    n3_3 = n0 * n2_3;
                    n21_3 = n2_3 * n20;
                    x3_3 = 0.0;
                    x21_3 = 0.0;
                    tk3 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 4u, chunk.n_axis - 1u) * AS;
                    n2_4 = curves[ab + 0u];
                    okx4 = true;
                    n3_4 = n0 * n2_4;
                    n21_4 = n2_4 * n20;
                    x3_4 = 0.0;
                    x21_4 = 0.0;
                    tk4 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 5u, chunk.n_axis - 1u) * AS;
                    n2_5 = curves[ab + 0u];
                    okx5 = true;
                    n3_5 = n0 * n2_5;
                    n21_5 = n2_5 * n20;
                    x3_5 = 0.0;
                    x21_5 = 0.0;
                    tk5 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 6u, chunk.n_axis - 1u) * AS;
                    n2_6 = curves[ab + 0u];
                    okx6 = true;
                    n3_6 = n0 * n2_6;
                    n21_6 = n2_6 * n20;
                    x3_6 = 0.0;
                    x21_6 = 0.0;
                    tk6 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 7u, chunk.n_axis - 1u) * AS;
                    n2_7 = curves[ab + 0u];
                    okx7 = true;
                    n3_7 = n0 * n2_7;
                    n21_7 = n2_7 * n20;
                    x3_7 = 0.0;
                    x21_7 = 0.0;
                    tk7 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 8u, chunk.n_axis - 1u) * AS;
                    n2_8 = curves[ab + 0u];
                    okx8 = true;
                    n3_8 = n0 * n2_8;
                    n21_8 = n2_8 * n20;
                    x3_8 = 0.0;
                    x21_8 = 0.0;
                    tk8 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 9u, chunk.n_axis - 1u) * AS;
                    n2_9 = curves[ab + 0u];
                    okx9 = true;
                    n3_9 = n0 * n2_9;
                    n21_9 = n2_9 * n20;
                    x3_9 = 0.0;
                    x21_9 = 0.0;
                    tk9 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 10u, chunk.n_axis - 1u) * AS;
                    n2_10 = curves[ab + 0u];
                    okx10 = true;
                    n3_10 = n0 * n2_10;
                    n21_10 = n2_10 * n20;
                    x3_10 = 0.0;
                    x21_10 = 0.0;
                    tk10 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 11u, chunk.n_axis - 1u) * AS;
                    n2_11 = curves[ab + 0u];
                    okx11 = true;
                    n3_11 = n0 * n2_11;
                    n21_11 = n2_11 * n20;
                    x3_11 = 0.0;
                    x21_11 = 0.0;
                    tk11 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 12u, chunk.n_axis - 1u) * AS;
                    n2_12 = curves[ab + 0u];
                    okx12 = true;
                    n3_12 = n0 * n2_12;
                    n21_12 = n2_12 * n20;
                    x3_12 = 0.0;
                    x21_12 = 0.0;
                    tk12 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 13u, chunk.n_axis - 1u) * AS;
                    n2_13 = curves[ab + 0u];
                    okx13 = true;
                    n3_13 = n0 * n2_13;
                    n21_13 = n2_13 * n20;
                    x3_13 = 0.0;
                    x21_13 = 0.0;
                    tk13 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 14u, chunk.n_axis - 1u) * AS;
                    n2_14 = curves[ab + 0u];
                    okx14 = true;
                    n3_14 = n0 * n2_14;
                    n21_14 = n2_14 * n20;
                    x3_14 = 0.0;
                    x21_14 = 0.0;
                    tk14 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 15u, chunk.n_axis - 1u) * AS;
                    n2_15 = curves[ab + 0u];
                    okx15 = true;
                    n3_15 = n0 * n2_15;
                    n21_15 = n2_15 * n20;
                    x3_15 = 0.0;
                    x21_15 = 0.0;
                    tk15 = false;
                }
            }
            if (pc != cur) {
                // Close the previous curve and open this one (uniform
                // across the workgroup).
                if (counted) {
                    acc[0] += sum_f;
                    var c13 = 0.0;
                    var c14 = 0.0;
                    var c15 = 0.0;
                    var c16 = 0.0;
                    var c17 = s17;
                    var c18 = s18;
                    a4 += c18 * n17;
                    c17 += c18 * n4;
                    c16 += c17 * n27;
                    c15 += c16 * n29;
                    a11 += c15 * 1e0f;
                    c14 += c15 * 1e0f;
                    c13 += c14 * n31;
                    a12 += c13 * 1e0f;
                    a24 += s24;
                }
                cur = pc;
                counted = false;
                sum_f = 0.0;
                ok_curve = true;
                let cb = pc * CS;
                n7 = curves[cb + 2u];
                n13 = n7 + n12;
                n14 = 1e0f / n13;
                n15 = n11 + n14;
                n16 = 1e0f / n15;
                n17 = log(n16);
                ok_curve = ok_curve && n16 > 0.0;
                n18 = n4 * n17;
                n27 = 1e0f / n16;
                n28 = n16 * n16;
                n29 = -n28;
                n30 = n14 * n14;
                n31 = -n30;
                s17 = 0.0;
                s18 = 0.0;
                s24 = 0.0;
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
                let n19 = n3_0 + n18;
                let n22 = n17 * n21_0;
                let n23 = n19 + n22;
                let n25 = n23 + n24;
                let n26 = exp(n25);
                let pred = n26;
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
                    var a19 = 0.0;
                    var a22 = 0.0;
                    var a23 = 0.0;
                    var a25 = 0.0;
                    let a26 = seed;
                    a25 += a26 * n26;
                    a23 += a25 * 1e0f;
                    s24 += a25 * 1e0f;
                    a19 += a23 * 1e0f;
                    a22 += a23 * 1e0f;
                    s17 += a22 * n21_0;
                    x21_0 += a22 * n17;
                    x3_0 += a19 * 1e0f;
                    s18 += a19 * 1e0f;
                }
            }
            {
                let q = tile[j * PV + 1u + 1u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx1;
                let n19 = n3_1 + n18;
                let n22 = n17 * n21_1;
                let n23 = n19 + n22;
                let n25 = n23 + n24;
                let n26 = exp(n25);
                let pred = n26;
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
                    var a19 = 0.0;
                    var a22 = 0.0;
                    var a23 = 0.0;
                    var a25 = 0.0;
                    let a26 = seed;
                    a25 += a26 * n26;
                    a23 += a25 * 1e0f;
                    s24 += a25 * 1e0f;
                    a19 += a23 * 1e0f;
                    a22 += a23 * 1e0f;
                    s17 += a22 * n21_1;
                    x21_1 += a22 * n17;
                    x3_1 += a19 * 1e0f;
                    s18 += a19 * 1e0f;
                }
            }
            {
                let q = tile[j * PV + 1u + 2u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx2;
                let n19 = n3_2 + n18;
                let n22 = n17 * n21_2;
                let n23 = n19 + n22;
                let n25 = n23 + n24;
                let n26 = exp(n25);
                let pred = n26;
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
                    var a19 = 0.0;
                    var a22 = 0.0;
                    var a23 = 0.0;
                    var a25 = 0.0;
                    let a26 = seed;
                    a25 += a26 * n26;
                    a23 += a25 * 1e0f;
                    s24 += a25 * 1e0f;
                    a19 += a23 * 1e0f;
                    a22 += a23 * 1e0f;
                    s17 += a22 * n21_2;
                    x21_2 += a22 * n17;
                    x3_2 += a19 * 1e0f;
                    s18 += a19 * 1e0f;
                }
            }
            {
                let q = tile[j * PV + 1u + 3u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx3;
                let n19 = n3_3 + n18;
                let n22 = n17 * n21_3;
                let n23 = n19 + n22;
                let n25 = n23 + n24;
                let n26 = exp(n25);
                let pred = n26;
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
                    var a19 = 0.0;
                    var a22 = 0.0;
                    var a23 = 0.0;
                    var a25 = 0.0;
                    let a26 = seed;
                    a25 += a26 * n26;
                    a23 += a25 * 1e0f;
                    s24 += a25 * 1e0f;
                    a19 += a23 * 1e0f;
                    a22 += a23 * 1e0f;
                    s17 += a22 * n21_3;
                    x21_3 += a22 * n17;
                    x3_3 += a19 * 1e0f;
                    s18 += a19 * 1e0f;
                }
            }
            {
                let q = tile[j * PV + 1u + 4u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx4;
                let n19 = n3_4 + n18;
                let n22 = n17 * n21_4;
                let n23 = n19 + n22;
                let n25 = n23 + n24;
                let n26 = exp(n25);
                let pred = n26;
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
                    var a19 = 0.0;
                    var a22 = 0.0;
                    var a23 = 0.0;
                    var a25 = 0.0;
                    let a26 = seed;
                    a25 += a26 * n26;
                    a23 += a25 * 1e0f;
                    s24 += a25 * 1e0f;
                    a19 += a23 * 1e0f;
                    a22 += a23 * 1e0f;
                    s17 += a22 * n21_4;
                    x21_4 += a22 * n17;
                    x3_4 += a19 * 1e0f;
                    s18 += a19 * 1e0f;
                }
            }
            {
                let q = tile[j * PV + 1u + 5u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx5;
                let n19 = n3_5 + n18;
                let n22 = n17 * n21_5;
                let n23 = n19 + n22;
                let n25 = n23 + n24;
                let n26 = exp(n25);
                let pred = n26;
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
                    var a19 = 0.0;
                    var a22 = 0.0;
                    var a23 = 0.0;
                    var a25 = 0.0;
                    let a26 = seed;
                    a25 += a26 * n26;
                    a23 += a25 * 1e0f;
                    s24 += a25 * 1e0f;
                    a19 += a23 * 1e0f;
                    a22 += a23 * 1e0f;
                    s17 += a22 * n21_5;
                    x21_5 += a22 * n17;
                    x3_5 += a19 * 1e0f;
                    s18 += a19 * 1e0f;
                }
            }
            {
                let q = tile[j * PV + 1u + 6u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx6;
                let n19 = n3_6 + n18;
                let n22 = n17 * n21_6;
                let n23 = n19 + n22;
                let n25 = n23 + n24;
                let n26 = exp(n25);
                let pred = n26;
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
                    var a19 = 0.0;
                    var a22 = 0.0;
                    var a23 = 0.0;
                    var a25 = 0.0;
                    let a26 = seed;
                    a25 += a26 * n26;
                    a23 += a25 * 1e0f;
                    s24 += a25 * 1e0f;
                    a19 += a23 * 1e0f;
                    a22 += a23 * 1e0f;
                    s17 += a22 * n21_6;
                    x21_6 += a22 * n17;
                    x3_6 += a19 * 1e0f;
                    s18 += a19 * 1e0f;
                }
            }
            {
                let q = tile[j * PV + 1u + 7u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx7;
                let n19 = n3_7 + n18;
                let n22 = n17 * n21_7;
                let n23 = n19 + n22;
                let n25 = n23 + n24;
                let n26 = exp(n25);
                let pred = n26;
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
                    var a19 = 0.0;
                    var a22 = 0.0;
                    var a23 = 0.0;
                    var a25 = 0.0;
                    let a26 = seed;
                    a25 += a26 * n26;
                    a23 += a25 * 1e0f;
                    s24 += a25 * 1e0f;
                    a19 += a23 * 1e0f;
                    a22 += a23 * 1e0f;
                    s17 += a22 * n21_7;
                    x21_7 += a22 * n17;
                    x3_7 += a19 * 1e0f;
                    s18 += a19 * 1e0f;
                }
            }
            {
                let q = tile[j * PV + 1u + 8u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx8;
                let n19 = n3_8 + n18;
                let n22 = n17 * n21_8;
                let n23 = n19 + n22;
                let n25 = n23 + n24;
                let n26 = exp(n25);
                let pred = n26;
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
                    var a19 = 0.0;
                    var a22 = 0.0;
                    var a23 = 0.0;
                    var a25 = 0.0;
                    let a26 = seed;
                    a25 += a26 * n26;
                    a23 += a25 * 1e0f;
                    s24 += a25 * 1e0f;
                    a19 += a23 * 1e0f;
                    a22 += a23 * 1e0f;
                    s17 += a22 * n21_8;
                    x21_8 += a22 * n17;
                    x3_8 += a19 * 1e0f;
                    s18 += a19 * 1e0f;
                }
            }
            {
                let q = tile[j * PV + 1u + 9u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx9;
                let n19 = n3_9 + n18;
                let n22 = n17 * n21_9;
                let n23 = n19 + n22;
                let n25 = n23 + n24;
                let n26 = exp(n25);
                let pred = n26;
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
                    var a19 = 0.0;
                    var a22 = 0.0;
                    var a23 = 0.0;
                    var a25 = 0.0;
                    let a26 = seed;
                    a25 += a26 * n26;
                    a23 += a25 * 1e0f;
                    s24 += a25 * 1e0f;
                    a19 += a23 * 1e0f;
                    a22 += a23 * 1e0f;
                    s17 += a22 * n21_9;
                    x21_9 += a22 * n17;
                    x3_9 += a19 * 1e0f;
                    s18 += a19 * 1e0f;
                }
            }
            {
                let q = tile[j * PV + 1u + 10u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx10;
                let n19 = n3_10 + n18;
                let n22 = n17 * n21_10;
                let n23 = n19 + n22;
                let n25 = n23 + n24;
                let n26 = exp(n25);
                let pred = n26;
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
                    var a19 = 0.0;
                    var a22 = 0.0;
                    var a23 = 0.0;
                    var a25 = 0.0;
                    let a26 = seed;
                    a25 += a26 * n26;
                    a23 += a25 * 1e0f;
                    s24 += a25 * 1e0f;
                    a19 += a23 * 1e0f;
                    a22 += a23 * 1e0f;
                    s17 += a22 * n21_10;
                    x21_10 += a22 * n17;
                    x3_10 += a19 * 1e0f;
                    s18 += a19 * 1e0f;
                }
            }
            {
                let q = tile[j * PV + 1u + 11u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx11;
                let n19 = n3_11 + n18;
                let n22 = n17 * n21_11;
                let n23 = n19 + n22;
                let n25 = n23 + n24;
                let n26 = exp(n25);
                let pred = n26;
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
                    var a19 = 0.0;
                    var a22 = 0.0;
                    var a23 = 0.0;
                    var a25 = 0.0;
                    let a26 = seed;
                    a25 += a26 * n26;
                    a23 += a25 * 1e0f;
                    s24 += a25 * 1e0f;
                    a19 += a23 * 1e0f;
                    a22 += a23 * 1e0f;
                    s17 += a22 * n21_11;
                    x21_11 += a22 * n17;
                    x3_11 += a19 * 1e0f;
                    s18 += a19 * 1e0f;
                }
            }
            {
                let q = tile[j * PV + 1u + 12u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx12;
                let n19 = n3_12 + n18;
                let n22 = n17 * n21_12;
                let n23 = n19 + n22;
                let n25 = n23 + n24;
                let n26 = exp(n25);
                let pred = n26;
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
                    var a19 = 0.0;
                    var a22 = 0.0;
                    var a23 = 0.0;
                    var a25 = 0.0;
                    let a26 = seed;
                    a25 += a26 * n26;
                    a23 += a25 * 1e0f;
                    s24 += a25 * 1e0f;
                    a19 += a23 * 1e0f;
                    a22 += a23 * 1e0f;
                    s17 += a22 * n21_12;
                    x21_12 += a22 * n17;
                    x3_12 += a19 * 1e0f;
                    s18 += a19 * 1e0f;
                }
            }
            {
                let q = tile[j * PV + 1u + 13u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx13;
                let n19 = n3_13 + n18;
                let n22 = n17 * n21_13;
                let n23 = n19 + n22;
                let n25 = n23 + n24;
                let n26 = exp(n25);
                let pred = n26;
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
                    var a19 = 0.0;
                    var a22 = 0.0;
                    var a23 = 0.0;
                    var a25 = 0.0;
                    let a26 = seed;
                    a25 += a26 * n26;
                    a23 += a25 * 1e0f;
                    s24 += a25 * 1e0f;
                    a19 += a23 * 1e0f;
                    a22 += a23 * 1e0f;
                    s17 += a22 * n21_13;
                    x21_13 += a22 * n17;
                    x3_13 += a19 * 1e0f;
                    s18 += a19 * 1e0f;
                }
            }
            {
                let q = tile[j * PV + 1u + 14u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx14;
                let n19 = n3_14 + n18;
                let n22 = n17 * n21_14;
                let n23 = n19 + n22;
                let n25 = n23 + n24;
                let n26 = exp(n25);
                let pred = n26;
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
                    var a19 = 0.0;
                    var a22 = 0.0;
                    var a23 = 0.0;
                    var a25 = 0.0;
                    let a26 = seed;
                    a25 += a26 * n26;
                    a23 += a25 * 1e0f;
                    s24 += a25 * 1e0f;
                    a19 += a23 * 1e0f;
                    a22 += a23 * 1e0f;
                    s17 += a22 * n21_14;
                    x21_14 += a22 * n17;
                    x3_14 += a19 * 1e0f;
                    s18 += a19 * 1e0f;
                }
            }
            {
                let q = tile[j * PV + 1u + 15u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx15;
                let n19 = n3_15 + n18;
                let n22 = n17 * n21_15;
                let n23 = n19 + n22;
                let n25 = n23 + n24;
                let n26 = exp(n25);
                let pred = n26;
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
                    var a19 = 0.0;
                    var a22 = 0.0;
                    var a23 = 0.0;
                    var a25 = 0.0;
                    let a26 = seed;
                    a25 += a26 * n26;
                    a23 += a25 * 1e0f;
                    s24 += a25 * 1e0f;
                    a19 += a23 * 1e0f;
                    a22 += a23 * 1e0f;
                    s17 += a22 * n21_15;
                    x21_15 += a22 * n17;
                    x3_15 += a19 * 1e0f;
                    s18 += a19 * 1e0f;
                }
            }
        }
        workgroupBarrier();
    }
    if (counted) {
        acc[0] += sum_f;
        var c13 = 0.0;
        var c14 = 0.0;
        var c15 = 0.0;
        var c16 = 0.0;
        var c17 = s17;
        var c18 = s18;
        a4 += c18 * n17;
        c17 += c18 * n4;
        c16 += c17 * n27;
        c15 += c16 * n29;
        a11 += c15 * 1e0f;
        c14 += c15 * 1e0f;
        c13 += c14 * n31;
        a12 += c13 * 1e0f;
        a24 += s24;
    }
    if (tk0) {
        var c3 = x3_0;
        var c21 = x21_0;
        a20 += c21 * n2_0;
        a0 += c3 * n2_0;
    }
    if (tk1) {
        var c3 = x3_1;
        var c21 = x21_1;
        a20 += c21 * n2_1;
        a0 += c3 * n2_1;
    }
    if (tk2) {
        var c3 = x3_2;
        var c21 = x21_2;
        a20 += c21 * n2_2;
        a0 += c3 * n2_2;
    }
    if (tk3) {
        var c3 = x3_3;
        var c21 = x21_3;
        a20 += c21 * n2_3;
        a0 += c3 * n2_3;
    }
    if (tk4) {
        var c3 = x3_4;
        var c21 = x21_4;
        a20 += c21 * n2_4;
        a0 += c3 * n2_4;
    }
    if (tk5) {
        var c3 = x3_5;
        var c21 = x21_5;
        a20 += c21 * n2_5;
        a0 += c3 * n2_5;
    }
    if (tk6) {
        var c3 = x3_6;
        var c21 = x21_6;
        a20 += c21 * n2_6;
        a0 += c3 * n2_6;
    }
    if (tk7) {
        var c3 = x3_7;
        var c21 = x21_7;
        a20 += c21 * n2_7;
        a0 += c3 * n2_7;
    }
    if (tk8) {
        var c3 = x3_8;
        var c21 = x21_8;
        a20 += c21 * n2_8;
        a0 += c3 * n2_8;
    }
    if (tk9) {
        var c3 = x3_9;
        var c21 = x21_9;
        a20 += c21 * n2_9;
        a0 += c3 * n2_9;
    }
    if (tk10) {
        var c3 = x3_10;
        var c21 = x21_10;
        a20 += c21 * n2_10;
        a0 += c3 * n2_10;
    }
    if (tk11) {
        var c3 = x3_11;
        var c21 = x21_11;
        a20 += c21 * n2_11;
        a0 += c3 * n2_11;
    }
    if (tk12) {
        var c3 = x3_12;
        var c21 = x21_12;
        a20 += c21 * n2_12;
        a0 += c3 * n2_12;
    }
    if (tk13) {
        var c3 = x3_13;
        var c21 = x21_13;
        a20 += c21 * n2_13;
        a0 += c3 * n2_13;
    }
    if (tk14) {
        var c3 = x3_14;
        var c21 = x21_14;
        a20 += c21 * n2_14;
        a0 += c3 * n2_14;
    }
    if (tk15) {
        var c3 = x3_15;
        var c21 = x21_15;
        a20 += c21 * n2_15;
        a0 += c3 * n2_15;
    }
    a9 += a12 * 1e0f;
    a11 += a12 * (-1e0f);
    a10 += a11 * n34;
    a8 += a9 * n36;
    acc[1] = a0;
    acc[2] = a4;
    acc[3] = a8;
    acc[4] = a10;
    acc[5] = a20;
    acc[6] = a24;
    if (live) {
        write_record(wid.x, k, acc);
    }
}
