// law looplm, points layout, curves along D
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

const NP: u32 = 10u;
const RECORD: u32 = 12u;
const PV: u32 = 1u;
const CS: u32 = 4u;
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
    let n5 = p[3];
    let n9 = p[4];
    let n11 = p[5];
    let n13 = p[6];
    let n17 = p[7];
    let n19 = p[8];
    let n21 = p[9];
    let n59 = -n5;
    let n66 = -n13;
    let n73 = -n21;
    var a0 = 0.0;
    var a1 = 0.0;
    var a3 = 0.0;
    var a5 = 0.0;
    var a9 = 0.0;
    var a11 = 0.0;
    var a13 = 0.0;
    var a17 = 0.0;
    var a19 = 0.0;
    var a21 = 0.0;
    var a59 = 0.0;
    var a66 = 0.0;
    var a73 = 0.0;

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
    var n2 = 0.0;
    var n18 = 0.0;
    var n4 = 0.0;
    var n20 = 0.0;
    var n32 = 0.0;
    var n48 = 0.0;
    var n60 = 0.0;
    var n61 = 0.0;
    var n62 = 0.0;
    var n63 = 0.0;
    var n74 = 0.0;
    var n75 = 0.0;
    var n76 = 0.0;
    var n78 = 0.0;
    var n81 = 0.0;
    var n83 = 0.0;
    var s9 = 0.0;
    var s11 = 0.0;
    var s66 = 0.0;
    var s78 = 0.0;

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
                    var c4 = 0.0;
                    var c20 = 0.0;
                    var c32 = 0.0;
                    var c48 = 0.0;
                    var c60 = 0.0;
                    var c61 = 0.0;
                    var c62 = 0.0;
                    var c63 = 0.0;
                    var c74 = 0.0;
                    var c75 = 0.0;
                    var c76 = 0.0;
                    var c78 = s78;
                    c63 += c78 * 1e0f;
                    c76 += c78 * 1e0f;
                    a17 += c76 * n75;
                    c75 += c76 * n17;
                    c74 += c75 * n75;
                    c32 += c74 * n73;
                    a73 += c74 * n32;
                    a0 += c63 * 1e0f;
                    c62 += c63 * 1e0f;
                    a1 += c62 * n61;
                    c61 += c62 * n1;
                    c60 += c61 * n61;
                    c48 += c60 * n59;
                    a59 += c60 * n48;
                    c4 += c48 * n81;
                    c20 += c32 * n83;
                    a19 += c20 * 1e0f;
                    a3 += c4 * 1e0f;
                    a9 += s9;
                    a11 += s11;
                    a66 += s66;
                }
                cur = pc;
                counted = false;
                sum_f = 0.0;
                ok_curve = true;
                let cb = pc * CS;
                n2 = curves[cb + 2u];
                n18 = curves[cb + 3u];
                n4 = n2 + n3;
                n20 = n18 + n19;
                n32 = log(n20);
                ok_curve = ok_curve && n20 > 0.0;
                n48 = log(n4);
                ok_curve = ok_curve && n4 > 0.0;
                n60 = n48 * n59;
                n61 = exp(n60);
                n62 = n1 * n61;
                n63 = n0 + n62;
                n74 = n32 * n73;
                n75 = exp(n74);
                n76 = n17 * n75;
                n78 = n63 + n76;
                n81 = 1e0f / n4;
                n83 = 1e0f / n20;
                s9 = 0.0;
                s11 = 0.0;
                s66 = 0.0;
                s78 = 0.0;
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
            let n10 = q0.w;
            let n12 = n10 + n11;
            let n40 = log(n12);
            ok = ok && n12 > 0.0;
            let n67 = n40 * n66;
            let n68 = exp(n67);
            let n69 = n9 * n68;
            let n82 = 1e0f / n12;
            let n79 = n69 + n78;
            let pred = n79;
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
                var a12 = 0.0;
                var a40 = 0.0;
                var a67 = 0.0;
                var a68 = 0.0;
                var a69 = 0.0;
                let a79 = seed;
                a69 += a79 * 1e0f;
                s78 += a79 * 1e0f;
                s9 += a69 * n68;
                a68 += a69 * n9;
                a67 += a68 * n68;
                a40 += a67 * n66;
                s66 += a67 * n40;
                a12 += a40 * n82;
                s11 += a12 * 1e0f;
            }
        }
        workgroupBarrier();
    }
    if (counted) {
        acc[0] += sum_f;
        var c4 = 0.0;
        var c20 = 0.0;
        var c32 = 0.0;
        var c48 = 0.0;
        var c60 = 0.0;
        var c61 = 0.0;
        var c62 = 0.0;
        var c63 = 0.0;
        var c74 = 0.0;
        var c75 = 0.0;
        var c76 = 0.0;
        var c78 = s78;
        c63 += c78 * 1e0f;
        c76 += c78 * 1e0f;
        a17 += c76 * n75;
        c75 += c76 * n17;
        c74 += c75 * n75;
        c32 += c74 * n73;
        a73 += c74 * n32;
        a0 += c63 * 1e0f;
        c62 += c63 * 1e0f;
        a1 += c62 * n61;
        c61 += c62 * n1;
        c60 += c61 * n61;
        c48 += c60 * n59;
        a59 += c60 * n48;
        c4 += c48 * n81;
        c20 += c32 * n83;
        a19 += c20 * 1e0f;
        a3 += c4 * 1e0f;
        a9 += s9;
        a11 += s11;
        a66 += s66;
    }
    a21 += a73 * (-1e0f);
    a13 += a66 * (-1e0f);
    a5 += a59 * (-1e0f);
    acc[1] = a0;
    acc[2] = a1;
    acc[3] = a3;
    acc[4] = a5;
    acc[5] = a9;
    acc[6] = a11;
    acc[7] = a13;
    acc[8] = a17;
    acc[9] = a19;
    acc[10] = a21;
    if (live) {
        write_record(wid.x, k, acc);
    }
}
// law looplm, grid layout (axis nodes once per start and value), curves along D
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

const NP: u32 = 10u;
const RECORD: u32 = 12u;
const PV: u32 = 9u;
const CS: u32 = 4u;
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
    let n5 = p[3];
    let n9 = p[4];
    let n11 = p[5];
    let n13 = p[6];
    let n17 = p[7];
    let n19 = p[8];
    let n21 = p[9];
    let n59 = -n5;
    let n66 = -n13;
    let n73 = -n21;
    var a0 = 0.0;
    var a1 = 0.0;
    var a3 = 0.0;
    var a5 = 0.0;
    var a9 = 0.0;
    var a11 = 0.0;
    var a13 = 0.0;
    var a17 = 0.0;
    var a19 = 0.0;
    var a21 = 0.0;
    var a59 = 0.0;
    var a66 = 0.0;
    var a73 = 0.0;

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
    var n2 = 0.0;
    var n18 = 0.0;
    var n4 = 0.0;
    var n20 = 0.0;
    var n32 = 0.0;
    var n48 = 0.0;
    var n60 = 0.0;
    var n61 = 0.0;
    var n62 = 0.0;
    var n63 = 0.0;
    var n74 = 0.0;
    var n75 = 0.0;
    var n76 = 0.0;
    var n78 = 0.0;
    var n81 = 0.0;
    var n83 = 0.0;
    var s78 = 0.0;
    var cur_block = NO_CURVE;
    var okx0 = true;
    var tk0 = false;
    var n10_0 = 0.0;
    var n12_0 = 0.0;
    var n40_0 = 0.0;
    var n67_0 = 0.0;
    var n68_0 = 0.0;
    var n69_0 = 0.0;
    var n82_0 = 0.0;
    var x69_0 = 0.0;
    var okx1 = true;
    var tk1 = false;
    var n10_1 = 0.0;
    var n12_1 = 0.0;
    var n40_1 = 0.0;
    var n67_1 = 0.0;
    var n68_1 = 0.0;
    var n69_1 = 0.0;
    var n82_1 = 0.0;
    var x69_1 = 0.0;
    var okx2 = true;
    var tk2 = false;
    var n10_2 = 0.0;
    var n12_2 = 0.0;
    var n40_2 = 0.0;
    var n67_2 = 0.0;
    var n68_2 = 0.0;
    var n69_2 = 0.0;
    var n82_2 = 0.0;
    var x69_2 = 0.0;
    var okx3 = true;
    var tk3 = false;
    var n10_3 = 0.0;
    var n12_3 = 0.0;
    var n40_3 = 0.0;
    var n67_3 = 0.0;
    var n68_3 = 0.0;
    var n69_3 = 0.0;
    var n82_3 = 0.0;
    var x69_3 = 0.0;
    var okx4 = true;
    var tk4 = false;
    var n10_4 = 0.0;
    var n12_4 = 0.0;
    var n40_4 = 0.0;
    var n67_4 = 0.0;
    var n68_4 = 0.0;
    var n69_4 = 0.0;
    var n82_4 = 0.0;
    var x69_4 = 0.0;
    var okx5 = true;
    var tk5 = false;
    var n10_5 = 0.0;
    var n12_5 = 0.0;
    var n40_5 = 0.0;
    var n67_5 = 0.0;
    var n68_5 = 0.0;
    var n69_5 = 0.0;
    var n82_5 = 0.0;
    var x69_5 = 0.0;
    var okx6 = true;
    var tk6 = false;
    var n10_6 = 0.0;
    var n12_6 = 0.0;
    var n40_6 = 0.0;
    var n67_6 = 0.0;
    var n68_6 = 0.0;
    var n69_6 = 0.0;
    var n82_6 = 0.0;
    var x69_6 = 0.0;
    var okx7 = true;
    var tk7 = false;
    var n10_7 = 0.0;
    var n12_7 = 0.0;
    var n40_7 = 0.0;
    var n67_7 = 0.0;
    var n68_7 = 0.0;
    var n69_7 = 0.0;
    var n82_7 = 0.0;
    var x69_7 = 0.0;

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
                    var c12 = 0.0;
                    var c40 = 0.0;
                    var c67 = 0.0;
                    var c68 = 0.0;
                    var c69 = x69_0;
                    a9 += c69 * n68_0;
                    c68 += c69 * n9;
                    c67 += c68 * n68_0;
                    c40 += c67 * n66;
                    a66 += c67 * n40_0;
                    c12 += c40 * n82_0;
                    a11 += c12 * 1e0f;
                }
                if (tk1) {
                    var c12 = 0.0;
                    var c40 = 0.0;
                    var c67 = 0.0;
                    var c68 = 0.0;
                    var c69 = x69_1;
                    a9 += c69 * n68_1;
                    c68 += c69 * n9;
                    c67 += c68 * n68_1;
                    c40 += c67 * n66;
                    a66 += c67 * n40_1;
                    c12 += c40 * n82_1;
                    a11 += c12 * 1e0f;
                }
                if (tk2) {
                    var c12 = 0.0;
                    var c40 = 0.0;
                    var c67 = 0.0;
                    var c68 = 0.0;
                    var c69 = x69_2;
                    a9 += c69 * n68_2;
                    c68 += c69 * n9;
                    c67 += c68 * n68_2;
                    c40 += c67 * n66;
                    a66 += c67 * n40_2;
                    c12 += c40 * n82_2;
                    a11 += c12 * 1e0f;
                }
                if (tk3) {
                    var c12 = 0.0;
                    var c40 = 0.0;
                    var c67 = 0.0;
                    var c68 = 0.0;
                    var c69 = x69_3;
                    a9 += c69 * n68_3;
                    c68 += c69 * n9;
                    c67 += c68 * n68_3;
                    c40 += c67 * n66;
                    a66 += c67 * n40_3;
                    c12 += c40 * n82_3;
                    a11 += c12 * 1e0f;
                }
                if (tk4) {
                    var c12 = 0.0;
                    var c40 = 0.0;
                    var c67 = 0.0;
                    var c68 = 0.0;
                    var c69 = x69_4;
                    a9 += c69 * n68_4;
                    c68 += c69 * n9;
                    c67 += c68 * n68_4;
                    c40 += c67 * n66;
                    a66 += c67 * n40_4;
                    c12 += c40 * n82_4;
                    a11 += c12 * 1e0f;
                }
                if (tk5) {
                    var c12 = 0.0;
                    var c40 = 0.0;
                    var c67 = 0.0;
                    var c68 = 0.0;
                    var c69 = x69_5;
                    a9 += c69 * n68_5;
                    c68 += c69 * n9;
                    c67 += c68 * n68_5;
                    c40 += c67 * n66;
                    a66 += c67 * n40_5;
                    c12 += c40 * n82_5;
                    a11 += c12 * 1e0f;
                }
                if (tk6) {
                    var c12 = 0.0;
                    var c40 = 0.0;
                    var c67 = 0.0;
                    var c68 = 0.0;
                    var c69 = x69_6;
                    a9 += c69 * n68_6;
                    c68 += c69 * n9;
                    c67 += c68 * n68_6;
                    c40 += c67 * n66;
                    a66 += c67 * n40_6;
                    c12 += c40 * n82_6;
                    a11 += c12 * 1e0f;
                }
                if (tk7) {
                    var c12 = 0.0;
                    var c40 = 0.0;
                    var c67 = 0.0;
                    var c68 = 0.0;
                    var c69 = x69_7;
                    a9 += c69 * n68_7;
                    c68 += c69 * n9;
                    c67 += c68 * n68_7;
                    c40 += c67 * n66;
                    a66 += c67 * n40_7;
                    c12 += c40 * n82_7;
                    a11 += c12 * 1e0f;
                }
                cur_block = pb;
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 0u, chunk.n_axis - 1u) * AS;
                    n10_0 = curves[ab + 0u];
                    okx0 = true;
                    n12_0 = n10_0 + n11;
                    n40_0 = log(n12_0);
                    okx0 = okx0 && n12_0 > 0.0;
                    n67_0 = n40_0 * n66;
                    n68_0 = exp(n67_0);
                    n69_0 = n9 * n68_0;
                    n82_0 = 1e0f / n12_0;
                    x69_0 = 0.0;
                    tk0 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 1u, chunk.n_axis - 1u) * AS;
                    n10_1 = curves[ab + 0u];
                    okx1 = true;
                    n12_1 = n10_1 + n11;
                    n40_1 = log(n12_1);
                    okx1 = okx1 && n12_1 > 0.0;
                    n67_1 = n40_1 * n66;
                    n68_1 = exp(n67_1);
                    n69_1 = n9 * n68_1;
                    n82_1 = 1e0f / n12_1;
                    x69_1 = 0.0;
                    tk1 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 2u, chunk.n_axis - 1u) * AS;
                    n10_2 = curves[ab + 0u];
                    okx2 = true;
                    n12_2 = n10_2 + n11;
                    n40_2 = log(n12_2);
                    okx2 = okx2 && n12_2 > 0.0;
                    n67_2 = n40_2 * n66;
                    n68_2 = exp(n67_2);
                    n69_2 = n9 * n68_2;
                    n82_2 = 1e0f / n12_2;
                    x69_2 = 0.0;
                    tk2 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 3u, chunk.n_axis - 1u) * AS;
                    n10_3 = curves[ab + 0u];
                    okx3 = true;
                    n12_3 = n10_3 + n11;
                    n40_3 = log(n12_3);
                    okx3 = okx3 && n12_3 > 0.0;
                    n67_3 = n40_3 * n66;
                    n68_3 = exp(n67_3);
                    n69_3 = n9 * n68_3;
                    n82_3 = 1e0f / n12_3;
                    x69_3 = 0.0;
                    tk3 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 4u, chunk.n_axis - 1u) * AS;
                    n10_4 = curves[ab + 0u];
                    okx4 = true;
                    n12_4 = n10_4 + n11;
                    n40_4 = log(n12_4);
                    okx4 = okx4 && n12_4 > 0.0;
                    n67_4 = n40_4 * n66;
                    n68_4 = exp(n67_4);
                    n69_4 = n9 * n68_4;
                    n82_4 = 1e0f / n12_4;
                    x69_4 = 0.0;
                    tk4 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 5u, chunk.n_axis - 1u) * AS;
                    n10_5 = curves[ab + 0u];
                    okx5 = true;
                    n12_5 = n10_5 + n11;
                    n40_5 = log(n12_5);
                    okx5 = okx5 && n12_5 > 0.0;
                    n67_5 = n40_5 * n66;
                    n68_5 = exp(n67_5);
                    n69_5 = n9 * n68_5;
                    n82_5 = 1e0f / n12_5;
                    x69_5 = 0.0;
                    tk5 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 6u, chunk.n_axis - 1u) * AS;
                    n10_6 = curves[ab + 0u];
                    okx6 = true;
                    n12_6 = n10_6 + n11;
                    n40_6 = log(n12_6);
                    okx6 = okx6 && n12_6 > 0.0;
                    n67_6 = n40_6 * n66;
                    n68_6 = exp(n67_6);
                    n69_6 = n9 * n68_6;
                    n82_6 = 1e0f / n12_6;
                    x69_6 = 0.0;
                    tk6 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 7u, chunk.n_axis - 1u) * AS;
                    n10_7 = curves[ab + 0u];
                    okx7 = true;
                    n12_7 = n10_7 + n11;
                    n40_7 = log(n12_7);
                    okx7 = okx7 && n12_7 > 0.0;
                    n67_7 = n40_7 * n66;
                    n68_7 = exp(n67_7);
                    n69_7 = n9 * n68_7;
                    n82_7 = 1e0f / n12_7;
                    x69_7 = 0.0;
                    tk7 = false;
                }
            }
            if (pc != cur) {
                // Close the previous curve and open this one (uniform
                // across the workgroup).
                if (counted) {
                    acc[0] += sum_f;
                    var c4 = 0.0;
                    var c20 = 0.0;
                    var c32 = 0.0;
                    var c48 = 0.0;
                    var c60 = 0.0;
                    var c61 = 0.0;
                    var c62 = 0.0;
                    var c63 = 0.0;
                    var c74 = 0.0;
                    var c75 = 0.0;
                    var c76 = 0.0;
                    var c78 = s78;
                    c63 += c78 * 1e0f;
                    c76 += c78 * 1e0f;
                    a17 += c76 * n75;
                    c75 += c76 * n17;
                    c74 += c75 * n75;
                    c32 += c74 * n73;
                    a73 += c74 * n32;
                    a0 += c63 * 1e0f;
                    c62 += c63 * 1e0f;
                    a1 += c62 * n61;
                    c61 += c62 * n1;
                    c60 += c61 * n61;
                    c48 += c60 * n59;
                    a59 += c60 * n48;
                    c4 += c48 * n81;
                    c20 += c32 * n83;
                    a19 += c20 * 1e0f;
                    a3 += c4 * 1e0f;
                }
                cur = pc;
                counted = false;
                sum_f = 0.0;
                ok_curve = true;
                let cb = pc * CS;
                n2 = curves[cb + 2u];
                n18 = curves[cb + 3u];
                n4 = n2 + n3;
                n20 = n18 + n19;
                n32 = log(n20);
                ok_curve = ok_curve && n20 > 0.0;
                n48 = log(n4);
                ok_curve = ok_curve && n4 > 0.0;
                n60 = n48 * n59;
                n61 = exp(n60);
                n62 = n1 * n61;
                n63 = n0 + n62;
                n74 = n32 * n73;
                n75 = exp(n74);
                n76 = n17 * n75;
                n78 = n63 + n76;
                n81 = 1e0f / n4;
                n83 = 1e0f / n20;
                s78 = 0.0;
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
                let n79 = n69_0 + n78;
                let pred = n79;
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
                    let a79 = seed;
                    x69_0 += a79 * 1e0f;
                    s78 += a79 * 1e0f;
                }
            }
            {
                let q = tile[j * PV + 1u + 1u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx1;
                let n79 = n69_1 + n78;
                let pred = n79;
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
                    let a79 = seed;
                    x69_1 += a79 * 1e0f;
                    s78 += a79 * 1e0f;
                }
            }
            {
                let q = tile[j * PV + 1u + 2u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx2;
                let n79 = n69_2 + n78;
                let pred = n79;
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
                    let a79 = seed;
                    x69_2 += a79 * 1e0f;
                    s78 += a79 * 1e0f;
                }
            }
            {
                let q = tile[j * PV + 1u + 3u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx3;
                let n79 = n69_3 + n78;
                let pred = n79;
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
                    let a79 = seed;
                    x69_3 += a79 * 1e0f;
                    s78 += a79 * 1e0f;
                }
            }
            {
                let q = tile[j * PV + 1u + 4u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx4;
                let n79 = n69_4 + n78;
                let pred = n79;
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
                    let a79 = seed;
                    x69_4 += a79 * 1e0f;
                    s78 += a79 * 1e0f;
                }
            }
            {
                let q = tile[j * PV + 1u + 5u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx5;
                let n79 = n69_5 + n78;
                let pred = n79;
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
                    let a79 = seed;
                    x69_5 += a79 * 1e0f;
                    s78 += a79 * 1e0f;
                }
            }
            {
                let q = tile[j * PV + 1u + 6u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx6;
                let n79 = n69_6 + n78;
                let pred = n79;
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
                    let a79 = seed;
                    x69_6 += a79 * 1e0f;
                    s78 += a79 * 1e0f;
                }
            }
            {
                let q = tile[j * PV + 1u + 7u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx7;
                let n79 = n69_7 + n78;
                let pred = n79;
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
                    let a79 = seed;
                    x69_7 += a79 * 1e0f;
                    s78 += a79 * 1e0f;
                }
            }
        }
        workgroupBarrier();
    }
    if (counted) {
        acc[0] += sum_f;
        var c4 = 0.0;
        var c20 = 0.0;
        var c32 = 0.0;
        var c48 = 0.0;
        var c60 = 0.0;
        var c61 = 0.0;
        var c62 = 0.0;
        var c63 = 0.0;
        var c74 = 0.0;
        var c75 = 0.0;
        var c76 = 0.0;
        var c78 = s78;
        c63 += c78 * 1e0f;
        c76 += c78 * 1e0f;
        a17 += c76 * n75;
        c75 += c76 * n17;
        c74 += c75 * n75;
        c32 += c74 * n73;
        a73 += c74 * n32;
        a0 += c63 * 1e0f;
        c62 += c63 * 1e0f;
        a1 += c62 * n61;
        c61 += c62 * n1;
        c60 += c61 * n61;
        c48 += c60 * n59;
        a59 += c60 * n48;
        c4 += c48 * n81;
        c20 += c32 * n83;
        a19 += c20 * 1e0f;
        a3 += c4 * 1e0f;
    }
    if (tk0) {
        var c12 = 0.0;
        var c40 = 0.0;
        var c67 = 0.0;
        var c68 = 0.0;
        var c69 = x69_0;
        a9 += c69 * n68_0;
        c68 += c69 * n9;
        c67 += c68 * n68_0;
        c40 += c67 * n66;
        a66 += c67 * n40_0;
        c12 += c40 * n82_0;
        a11 += c12 * 1e0f;
    }
    if (tk1) {
        var c12 = 0.0;
        var c40 = 0.0;
        var c67 = 0.0;
        var c68 = 0.0;
        var c69 = x69_1;
        a9 += c69 * n68_1;
        c68 += c69 * n9;
        c67 += c68 * n68_1;
        c40 += c67 * n66;
        a66 += c67 * n40_1;
        c12 += c40 * n82_1;
        a11 += c12 * 1e0f;
    }
    if (tk2) {
        var c12 = 0.0;
        var c40 = 0.0;
        var c67 = 0.0;
        var c68 = 0.0;
        var c69 = x69_2;
        a9 += c69 * n68_2;
        c68 += c69 * n9;
        c67 += c68 * n68_2;
        c40 += c67 * n66;
        a66 += c67 * n40_2;
        c12 += c40 * n82_2;
        a11 += c12 * 1e0f;
    }
    if (tk3) {
        var c12 = 0.0;
        var c40 = 0.0;
        var c67 = 0.0;
        var c68 = 0.0;
        var c69 = x69_3;
        a9 += c69 * n68_3;
        c68 += c69 * n9;
        c67 += c68 * n68_3;
        c40 += c67 * n66;
        a66 += c67 * n40_3;
        c12 += c40 * n82_3;
        a11 += c12 * 1e0f;
    }
    if (tk4) {
        var c12 = 0.0;
        var c40 = 0.0;
        var c67 = 0.0;
        var c68 = 0.0;
        var c69 = x69_4;
        a9 += c69 * n68_4;
        c68 += c69 * n9;
        c67 += c68 * n68_4;
        c40 += c67 * n66;
        a66 += c67 * n40_4;
        c12 += c40 * n82_4;
        a11 += c12 * 1e0f;
    }
    if (tk5) {
        var c12 = 0.0;
        var c40 = 0.0;
        var c67 = 0.0;
        var c68 = 0.0;
        var c69 = x69_5;
        a9 += c69 * n68_5;
        c68 += c69 * n9;
        c67 += c68 * n68_5;
        c40 += c67 * n66;
        a66 += c67 * n40_5;
        c12 += c40 * n82_5;
        a11 += c12 * 1e0f;
    }
    if (tk6) {
        var c12 = 0.0;
        var c40 = 0.0;
        var c67 = 0.0;
        var c68 = 0.0;
        var c69 = x69_6;
        a9 += c69 * n68_6;
        c68 += c69 * n9;
        c67 += c68 * n68_6;
        c40 += c67 * n66;
        a66 += c67 * n40_6;
        c12 += c40 * n82_6;
        a11 += c12 * 1e0f;
    }
    if (tk7) {
        var c12 = 0.0;
        var c40 = 0.0;
        var c67 = 0.0;
        var c68 = 0.0;
        var c69 = x69_7;
        a9 += c69 * n68_7;
        c68 += c69 * n9;
        c67 += c68 * n68_7;
        c40 += c67 * n66;
        a66 += c67 * n40_7;
        c12 += c40 * n82_7;
        a11 += c12 * 1e0f;
    }
    a21 += a73 * (-1e0f);
    a13 += a66 * (-1e0f);
    a5 += a59 * (-1e0f);
    acc[1] = a0;
    acc[2] = a1;
    acc[3] = a3;
    acc[4] = a5;
    acc[5] = a9;
    acc[6] = a11;
    acc[7] = a13;
    acc[8] = a17;
    acc[9] = a19;
    acc[10] = a21;
    if (live) {
        write_record(wid.x, k, acc);
    }
}
// law looplm, grid layout (axis nodes once per start and value), Gauss-Newton moments, curves along D
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

const NP: u32 = 10u;
const RECORD: u32 = 67u;
const PV: u32 = 9u;
const CS: u32 = 4u;
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
    let n5 = p[3];
    let n9 = p[4];
    let n11 = p[5];
    let n13 = p[6];
    let n17 = p[7];
    let n19 = p[8];
    let n21 = p[9];
    let n59 = -n5;
    let n66 = -n13;
    let n73 = -n21;
    var a0 = 0.0;
    var a1 = 0.0;
    var a3 = 0.0;
    var a5 = 0.0;
    var a9 = 0.0;
    var a11 = 0.0;
    var a13 = 0.0;
    var a17 = 0.0;
    var a19 = 0.0;
    var a21 = 0.0;
    var a59 = 0.0;
    var a66 = 0.0;
    var a73 = 0.0;

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
    var n2 = 0.0;
    var n18 = 0.0;
    var n4 = 0.0;
    var n20 = 0.0;
    var n32 = 0.0;
    var n48 = 0.0;
    var n60 = 0.0;
    var n61 = 0.0;
    var n62 = 0.0;
    var n63 = 0.0;
    var n74 = 0.0;
    var n75 = 0.0;
    var n76 = 0.0;
    var n78 = 0.0;
    var n81 = 0.0;
    var n83 = 0.0;
    var s78 = 0.0;
    var ju3 = 0.0;
    var ju4 = 0.0;
    var ju5 = 0.0;
    var ju6 = 0.0;
    var ju7 = 0.0;
    var ju8 = 0.0;
    var ju9 = 0.0;
    var rs = 0.0;
    var rw = 0.0;
    var rx0 = 0.0;
    var rx1 = 0.0;
    var rx2 = 0.0;
    var cur_block = NO_CURVE;
    var okx0 = true;
    var tk0 = false;
    var n10_0 = 0.0;
    var n12_0 = 0.0;
    var n40_0 = 0.0;
    var n67_0 = 0.0;
    var n68_0 = 0.0;
    var n69_0 = 0.0;
    var n82_0 = 0.0;
    var x69_0 = 0.0;
    var jv0_0 = 0.0;
    var jv1_0 = 0.0;
    var jv2_0 = 0.0;
    var col0 = 0.0;
    var om0 = 0.0;
    var okx1 = true;
    var tk1 = false;
    var n10_1 = 0.0;
    var n12_1 = 0.0;
    var n40_1 = 0.0;
    var n67_1 = 0.0;
    var n68_1 = 0.0;
    var n69_1 = 0.0;
    var n82_1 = 0.0;
    var x69_1 = 0.0;
    var jv0_1 = 0.0;
    var jv1_1 = 0.0;
    var jv2_1 = 0.0;
    var col1 = 0.0;
    var om1 = 0.0;
    var okx2 = true;
    var tk2 = false;
    var n10_2 = 0.0;
    var n12_2 = 0.0;
    var n40_2 = 0.0;
    var n67_2 = 0.0;
    var n68_2 = 0.0;
    var n69_2 = 0.0;
    var n82_2 = 0.0;
    var x69_2 = 0.0;
    var jv0_2 = 0.0;
    var jv1_2 = 0.0;
    var jv2_2 = 0.0;
    var col2 = 0.0;
    var om2 = 0.0;
    var okx3 = true;
    var tk3 = false;
    var n10_3 = 0.0;
    var n12_3 = 0.0;
    var n40_3 = 0.0;
    var n67_3 = 0.0;
    var n68_3 = 0.0;
    var n69_3 = 0.0;
    var n82_3 = 0.0;
    var x69_3 = 0.0;
    var jv0_3 = 0.0;
    var jv1_3 = 0.0;
    var jv2_3 = 0.0;
    var col3 = 0.0;
    var om3 = 0.0;
    var okx4 = true;
    var tk4 = false;
    var n10_4 = 0.0;
    var n12_4 = 0.0;
    var n40_4 = 0.0;
    var n67_4 = 0.0;
    var n68_4 = 0.0;
    var n69_4 = 0.0;
    var n82_4 = 0.0;
    var x69_4 = 0.0;
    var jv0_4 = 0.0;
    var jv1_4 = 0.0;
    var jv2_4 = 0.0;
    var col4 = 0.0;
    var om4 = 0.0;
    var okx5 = true;
    var tk5 = false;
    var n10_5 = 0.0;
    var n12_5 = 0.0;
    var n40_5 = 0.0;
    var n67_5 = 0.0;
    var n68_5 = 0.0;
    var n69_5 = 0.0;
    var n82_5 = 0.0;
    var x69_5 = 0.0;
    var jv0_5 = 0.0;
    var jv1_5 = 0.0;
    var jv2_5 = 0.0;
    var col5 = 0.0;
    var om5 = 0.0;
    var okx6 = true;
    var tk6 = false;
    var n10_6 = 0.0;
    var n12_6 = 0.0;
    var n40_6 = 0.0;
    var n67_6 = 0.0;
    var n68_6 = 0.0;
    var n69_6 = 0.0;
    var n82_6 = 0.0;
    var x69_6 = 0.0;
    var jv0_6 = 0.0;
    var jv1_6 = 0.0;
    var jv2_6 = 0.0;
    var col6 = 0.0;
    var om6 = 0.0;
    var okx7 = true;
    var tk7 = false;
    var n10_7 = 0.0;
    var n12_7 = 0.0;
    var n40_7 = 0.0;
    var n67_7 = 0.0;
    var n68_7 = 0.0;
    var n69_7 = 0.0;
    var n82_7 = 0.0;
    var x69_7 = 0.0;
    var jv0_7 = 0.0;
    var jv1_7 = 0.0;
    var jv2_7 = 0.0;
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
                    acc[11u] += om0 * jv0_0 * jv0_0;
                    acc[12u] += om0 * jv0_0 * jv1_0;
                    acc[13u] += om0 * jv0_0 * jv2_0;
                    acc[2u] += col0 * jv1_0;
                    acc[21u] += om0 * jv1_0 * jv1_0;
                    acc[22u] += om0 * jv1_0 * jv2_0;
                    acc[3u] += col0 * jv2_0;
                    acc[30u] += om0 * jv2_0 * jv2_0;
                }
                if (tk1) {
                    acc[1u] += col1 * jv0_1;
                    acc[11u] += om1 * jv0_1 * jv0_1;
                    acc[12u] += om1 * jv0_1 * jv1_1;
                    acc[13u] += om1 * jv0_1 * jv2_1;
                    acc[2u] += col1 * jv1_1;
                    acc[21u] += om1 * jv1_1 * jv1_1;
                    acc[22u] += om1 * jv1_1 * jv2_1;
                    acc[3u] += col1 * jv2_1;
                    acc[30u] += om1 * jv2_1 * jv2_1;
                }
                if (tk2) {
                    acc[1u] += col2 * jv0_2;
                    acc[11u] += om2 * jv0_2 * jv0_2;
                    acc[12u] += om2 * jv0_2 * jv1_2;
                    acc[13u] += om2 * jv0_2 * jv2_2;
                    acc[2u] += col2 * jv1_2;
                    acc[21u] += om2 * jv1_2 * jv1_2;
                    acc[22u] += om2 * jv1_2 * jv2_2;
                    acc[3u] += col2 * jv2_2;
                    acc[30u] += om2 * jv2_2 * jv2_2;
                }
                if (tk3) {
                    acc[1u] += col3 * jv0_3;
                    acc[11u] += om3 * jv0_3 * jv0_3;
                    acc[12u] += om3 * jv0_3 * jv1_3;
                    acc[13u] += om3 * jv0_3 * jv2_3;
                    acc[2u] += col3 * jv1_3;
                    acc[21u] += om3 * jv1_3 * jv1_3;
                    acc[22u] += om3 * jv1_3 * jv2_3;
                    acc[3u] += col3 * jv2_3;
                    acc[30u] += om3 * jv2_3 * jv2_3;
                }
                if (tk4) {
                    acc[1u] += col4 * jv0_4;
                    acc[11u] += om4 * jv0_4 * jv0_4;
                    acc[12u] += om4 * jv0_4 * jv1_4;
                    acc[13u] += om4 * jv0_4 * jv2_4;
                    acc[2u] += col4 * jv1_4;
                    acc[21u] += om4 * jv1_4 * jv1_4;
                    acc[22u] += om4 * jv1_4 * jv2_4;
                    acc[3u] += col4 * jv2_4;
                    acc[30u] += om4 * jv2_4 * jv2_4;
                }
                if (tk5) {
                    acc[1u] += col5 * jv0_5;
                    acc[11u] += om5 * jv0_5 * jv0_5;
                    acc[12u] += om5 * jv0_5 * jv1_5;
                    acc[13u] += om5 * jv0_5 * jv2_5;
                    acc[2u] += col5 * jv1_5;
                    acc[21u] += om5 * jv1_5 * jv1_5;
                    acc[22u] += om5 * jv1_5 * jv2_5;
                    acc[3u] += col5 * jv2_5;
                    acc[30u] += om5 * jv2_5 * jv2_5;
                }
                if (tk6) {
                    acc[1u] += col6 * jv0_6;
                    acc[11u] += om6 * jv0_6 * jv0_6;
                    acc[12u] += om6 * jv0_6 * jv1_6;
                    acc[13u] += om6 * jv0_6 * jv2_6;
                    acc[2u] += col6 * jv1_6;
                    acc[21u] += om6 * jv1_6 * jv1_6;
                    acc[22u] += om6 * jv1_6 * jv2_6;
                    acc[3u] += col6 * jv2_6;
                    acc[30u] += om6 * jv2_6 * jv2_6;
                }
                if (tk7) {
                    acc[1u] += col7 * jv0_7;
                    acc[11u] += om7 * jv0_7 * jv0_7;
                    acc[12u] += om7 * jv0_7 * jv1_7;
                    acc[13u] += om7 * jv0_7 * jv2_7;
                    acc[2u] += col7 * jv1_7;
                    acc[21u] += om7 * jv1_7 * jv1_7;
                    acc[22u] += om7 * jv1_7 * jv2_7;
                    acc[3u] += col7 * jv2_7;
                    acc[30u] += om7 * jv2_7 * jv2_7;
                }
                cur_block = pb;
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 0u, chunk.n_axis - 1u) * AS;
                    n10_0 = curves[ab + 0u];
                    okx0 = true;
                    n12_0 = n10_0 + n11;
                    n40_0 = log(n12_0);
                    okx0 = okx0 && n12_0 > 0.0;
                    n67_0 = n40_0 * n66;
                    n68_0 = exp(n67_0);
                    n69_0 = n9 * n68_0;
                    n82_0 = 1e0f / n12_0;
                    x69_0 = 0.0;
                    jv0_0 = 0.0;
                    jv1_0 = 0.0;
                    jv2_0 = 0.0;
                    {
                        var c12 = 0.0;
                        var c40 = 0.0;
                        var c67 = 0.0;
                        var c68 = 0.0;
                        var c69 = 0.0;
                        c69 = 1e0f;
                        jv0_0 += c69 * n68_0;
                        c68 += c69 * n9;
                        c67 += c68 * n68_0;
                        c40 += c67 * n66;
                        jv1_0 += c67 * n40_0;
                        c12 += c40 * n82_0;
                        jv2_0 += c12 * 1e0f;
                    }
                    col0 = 0.0;
                    om0 = 0.0;
                    tk0 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 1u, chunk.n_axis - 1u) * AS;
                    n10_1 = curves[ab + 0u];
                    okx1 = true;
                    n12_1 = n10_1 + n11;
                    n40_1 = log(n12_1);
                    okx1 = okx1 && n12_1 > 0.0;
                    n67_1 = n40_1 * n66;
                    n68_1 = exp(n67_1);
                    n69_1 = n9 * n68_1;
                    n82_1 = 1e0f / n12_1;
                    x69_1 = 0.0;
                    jv0_1 = 0.0;
                    jv1_1 = 0.0;
                    jv2_1 = 0.0;
                    {
                        var c12 = 0.0;
                        var c40 = 0.0;
                        var c67 = 0.0;
                        var c68 = 0.0;
                        var c69 = 0.0;
                        c69 = 1e0f;
                        jv0_1 += c69 * n68_1;
                        c68 += c69 * n9;
                        c67 += c68 * n68_1;
                        c40 += c67 * n66;
                        jv1_1 += c67 * n40_1;
                        c12 += c40 * n82_1;
                        jv2_1 += c12 * 1e0f;
                    }
                    col1 = 0.0;
                    om1 = 0.0;
                    tk1 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 2u, chunk.n_axis - 1u) * AS;
                    n10_2 = curves[ab + 0u];
                    okx2 = true;
                    n12_2 = n10_2 + n11;
                    n40_2 = log(n12_2);
                    okx2 = okx2 && n12_2 > 0.0;
                    n67_2 = n40_2 * n66;
                    n68_2 = exp(n67_2);
                    n69_2 = n9 * n68_2;
                    n82_2 = 1e0f / n12_2;
                    x69_2 = 0.0;
                    jv0_2 = 0.0;
                    jv1_2 = 0.0;
                    jv2_2 = 0.0;
                    {
                        var c12 = 0.0;
                        var c40 = 0.0;
                        var c67 = 0.0;
                        var c68 = 0.0;
                        var c69 = 0.0;
                        c69 = 1e0f;
                        jv0_2 += c69 * n68_2;
                        c68 += c69 * n9;
                        c67 += c68 * n68_2;
                        c40 += c67 * n66;
                        jv1_2 += c67 * n40_2;
                        c12 += c40 * n82_2;
                        jv2_2 += c12 * 1e0f;
                    }
                    col2 = 0.0;
                    om2 = 0.0;
                    tk2 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 3u, chunk.n_axis - 1u) * AS;
                    n10_3 = curves[ab + 0u];
                    okx3 = true;
                    n12_3 = n10_3 + n11;
                    n40_3 = log(n12_3);
                    okx3 = okx3 && n12_3 > 0.0;
                    n67_3 = n40_3 * n66;
                    n68_3 = exp(n67_3);
                    n69_3 = n9 * n68_3;
                    n82_3 = 1e0f / n12_3;
                    x69_3 = 0.0;
                    jv0_3 = 0.0;
                    jv1_3 = 0.0;
                    jv2_3 = 0.0;
                    {
                        var c12 = 0.0;
                        var c40 = 0.0;
                        var c67 = 0.0;
                        var c68 = 0.0;
                        var c69 = 0.0;
                        c69 = 1e0f;
                        jv0_3 += c69 * n68_3;
                        c68 += c69 * n9;
                        c67 += c68 * n68_3;
                        c40 += c67 * n66;
                        jv1_3 += c67 * n40_3;
                        c12 += c40 * n82_3;
                        jv2_3 += c12 * 1e0f;
                    }
                    col3 = 0.0;
                    om3 = 0.0;
                    tk3 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 4u, chunk.n_axis - 1u) * AS;
                    n10_4 = curves[ab + 0u];
                    okx4 = true;
                    n12_4 = n10_4 + n11;
                    n40_4 = log(n12_4);
                    okx4 = okx4 && n12_4 > 0.0;
                    n67_4 = n40_4 * n66;
                    n68_4 = exp(n67_4);
                    n69_4 = n9 * n68_4;
                    n82_4 = 1e0f / n12_4;
                    x69_4 = 0.0;
                    jv0_4 = 0.0;
                    jv1_4 = 0.0;
                    jv2_4 = 0.0;
                    {
                        var c12 = 0.0;
                        var c40 = 0.0;
                        var c67 = 0.0;
                        var c68 = 0.0;
                        var c69 = 0.0;
                        c69 = 1e0f;
                        jv0_4 += c69 * n68_4;
                        c68 += c69 * n9;
                        c67 += c68 * n68_4;
                        c40 += c67 * n66;
                        jv1_4 += c67 * n40_4;
                        c12 += c40 * n82_4;
                        jv2_4 += c12 * 1e0f;
                    }
                    col4 = 0.0;
                    om4 = 0.0;
                    tk4 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 5u, chunk.n_axis - 1u) * AS;
                    n10_5 = curves[ab + 0u];
                    okx5 = true;
                    n12_5 = n10_5 + n11;
                    n40_5 = log(n12_5);
                    okx5 = okx5 && n12_5 > 0.0;
                    n67_5 = n40_5 * n66;
                    n68_5 = exp(n67_5);
                    n69_5 = n9 * n68_5;
                    n82_5 = 1e0f / n12_5;
                    x69_5 = 0.0;
                    jv0_5 = 0.0;
                    jv1_5 = 0.0;
                    jv2_5 = 0.0;
                    {
                        var c12 = 0.0;
                        var c40 = 0.0;
                        var c67 = 0.0;
                        var c68 = 0.0;
                        var c69 = 0.0;
                        c69 = 1e0f;
                        jv0_5 += c69 * n68_5;
                        c68 += c69 * n9;
                        c67 += c68 * n68_5;
                        c40 += c67 * n66;
                        jv1_5 += c67 * n40_5;
                        c12 += c40 * n82_5;
                        jv2_5 += c12 * 1e0f;
                    }
                    col5 = 0.0;
                    om5 = 0.0;
                    tk5 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 6u, chunk.n_axis - 1u) * AS;
                    n10_6 = curves[ab + 0u];
                    okx6 = true;
                    n12_6 = n10_6 + n11;
                    n40_6 = log(n12_6);
                    okx6 = okx6 && n12_6 > 0.0;
                    n67_6 = n40_6 * n66;
                    n68_6 = exp(n67_6);
                    n69_6 = n9 * n68_6;
                    n82_6 = 1e0f / n12_6;
                    x69_6 = 0.0;
                    jv0_6 = 0.0;
                    jv1_6 = 0.0;
                    jv2_6 = 0.0;
                    {
                        var c12 = 0.0;
                        var c40 = 0.0;
                        var c67 = 0.0;
                        var c68 = 0.0;
                        var c69 = 0.0;
                        c69 = 1e0f;
                        jv0_6 += c69 * n68_6;
                        c68 += c69 * n9;
                        c67 += c68 * n68_6;
                        c40 += c67 * n66;
                        jv1_6 += c67 * n40_6;
                        c12 += c40 * n82_6;
                        jv2_6 += c12 * 1e0f;
                    }
                    col6 = 0.0;
                    om6 = 0.0;
                    tk6 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 7u, chunk.n_axis - 1u) * AS;
                    n10_7 = curves[ab + 0u];
                    okx7 = true;
                    n12_7 = n10_7 + n11;
                    n40_7 = log(n12_7);
                    okx7 = okx7 && n12_7 > 0.0;
                    n67_7 = n40_7 * n66;
                    n68_7 = exp(n67_7);
                    n69_7 = n9 * n68_7;
                    n82_7 = 1e0f / n12_7;
                    x69_7 = 0.0;
                    jv0_7 = 0.0;
                    jv1_7 = 0.0;
                    jv2_7 = 0.0;
                    {
                        var c12 = 0.0;
                        var c40 = 0.0;
                        var c67 = 0.0;
                        var c68 = 0.0;
                        var c69 = 0.0;
                        c69 = 1e0f;
                        jv0_7 += c69 * n68_7;
                        c68 += c69 * n9;
                        c67 += c68 * n68_7;
                        c40 += c67 * n66;
                        jv1_7 += c67 * n40_7;
                        c12 += c40 * n82_7;
                        jv2_7 += c12 * 1e0f;
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
                    acc[4u] += rs * ju3;
                    acc[5u] += rs * ju4;
                    acc[6u] += rs * ju5;
                    acc[7u] += rs * ju6;
                    acc[8u] += rs * ju7;
                    acc[9u] += rs * ju8;
                    acc[10u] += rs * ju9;
                    acc[14u] += rx0 * ju3;
                    acc[15u] += rx0 * ju4;
                    acc[16u] += rx0 * ju5;
                    acc[17u] += rx0 * ju6;
                    acc[18u] += rx0 * ju7;
                    acc[19u] += rx0 * ju8;
                    acc[20u] += rx0 * ju9;
                    acc[23u] += rx1 * ju3;
                    acc[24u] += rx1 * ju4;
                    acc[25u] += rx1 * ju5;
                    acc[26u] += rx1 * ju6;
                    acc[27u] += rx1 * ju7;
                    acc[28u] += rx1 * ju8;
                    acc[29u] += rx1 * ju9;
                    acc[31u] += rx2 * ju3;
                    acc[32u] += rx2 * ju4;
                    acc[33u] += rx2 * ju5;
                    acc[34u] += rx2 * ju6;
                    acc[35u] += rx2 * ju7;
                    acc[36u] += rx2 * ju8;
                    acc[37u] += rx2 * ju9;
                    acc[38u] += rw * ju3 * ju3;
                    acc[39u] += rw * ju3 * ju4;
                    acc[40u] += rw * ju3 * ju5;
                    acc[41u] += rw * ju3 * ju6;
                    acc[42u] += rw * ju3 * ju7;
                    acc[43u] += rw * ju3 * ju8;
                    acc[44u] += rw * ju3 * ju9;
                    acc[45u] += rw * ju4 * ju4;
                    acc[46u] += rw * ju4 * ju5;
                    acc[47u] += rw * ju4 * ju6;
                    acc[48u] += rw * ju4 * ju7;
                    acc[49u] += rw * ju4 * ju8;
                    acc[50u] += rw * ju4 * ju9;
                    acc[51u] += rw * ju5 * ju5;
                    acc[52u] += rw * ju5 * ju6;
                    acc[53u] += rw * ju5 * ju7;
                    acc[54u] += rw * ju5 * ju8;
                    acc[55u] += rw * ju5 * ju9;
                    acc[56u] += rw * ju6 * ju6;
                    acc[57u] += rw * ju6 * ju7;
                    acc[58u] += rw * ju6 * ju8;
                    acc[59u] += rw * ju6 * ju9;
                    acc[60u] += rw * ju7 * ju7;
                    acc[61u] += rw * ju7 * ju8;
                    acc[62u] += rw * ju7 * ju9;
                    acc[63u] += rw * ju8 * ju8;
                    acc[64u] += rw * ju8 * ju9;
                    acc[65u] += rw * ju9 * ju9;
                }
                cur = pc;
                counted = false;
                sum_f = 0.0;
                ok_curve = true;
                let cb = pc * CS;
                n2 = curves[cb + 2u];
                n18 = curves[cb + 3u];
                n4 = n2 + n3;
                n20 = n18 + n19;
                n32 = log(n20);
                ok_curve = ok_curve && n20 > 0.0;
                n48 = log(n4);
                ok_curve = ok_curve && n4 > 0.0;
                n60 = n48 * n59;
                n61 = exp(n60);
                n62 = n1 * n61;
                n63 = n0 + n62;
                n74 = n32 * n73;
                n75 = exp(n74);
                n76 = n17 * n75;
                n78 = n63 + n76;
                n81 = 1e0f / n4;
                n83 = 1e0f / n20;
                s78 = 0.0;
                ju3 = 0.0;
                ju4 = 0.0;
                ju5 = 0.0;
                ju6 = 0.0;
                ju7 = 0.0;
                ju8 = 0.0;
                ju9 = 0.0;
                {
                    var c4 = 0.0;
                    var c20 = 0.0;
                    var c32 = 0.0;
                    var c48 = 0.0;
                    var c60 = 0.0;
                    var c61 = 0.0;
                    var c62 = 0.0;
                    var c63 = 0.0;
                    var c74 = 0.0;
                    var c75 = 0.0;
                    var c76 = 0.0;
                    var c78 = 0.0;
                    c78 = 1e0f;
                    c63 += c78 * 1e0f;
                    c76 += c78 * 1e0f;
                    ju3 += c76 * n75;
                    c75 += c76 * n17;
                    c74 += c75 * n75;
                    c32 += c74 * n73;
                    ju4 += c74 * n32;
                    ju5 += c63 * 1e0f;
                    c62 += c63 * 1e0f;
                    ju6 += c62 * n61;
                    c61 += c62 * n1;
                    c60 += c61 * n61;
                    c48 += c60 * n59;
                    ju7 += c60 * n48;
                    c4 += c48 * n81;
                    c20 += c32 * n83;
                    ju8 += c20 * 1e0f;
                    ju9 += c4 * 1e0f;
                }
                rs = 0.0;
                rw = 0.0;
                rx0 = 0.0;
                rx1 = 0.0;
                rx2 = 0.0;
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
                let n79 = n69_0 + n78;
                let pred = n79;
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
                    rx2 += wo * jv2_0;
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
                let n79 = n69_1 + n78;
                let pred = n79;
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
                    rx2 += wo * jv2_1;
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
                let n79 = n69_2 + n78;
                let pred = n79;
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
                    rx2 += wo * jv2_2;
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
                let n79 = n69_3 + n78;
                let pred = n79;
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
                    rx2 += wo * jv2_3;
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
                let n79 = n69_4 + n78;
                let pred = n79;
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
                    rx2 += wo * jv2_4;
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
                let n79 = n69_5 + n78;
                let pred = n79;
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
                    rx2 += wo * jv2_5;
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
                let n79 = n69_6 + n78;
                let pred = n79;
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
                    rx2 += wo * jv2_6;
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
                let n79 = n69_7 + n78;
                let pred = n79;
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
                    rx2 += wo * jv2_7;
                    col7 += seed;
                    om7 += wo;
                }
            }
        }
        workgroupBarrier();
    }
    if (counted) {
        acc[0] += sum_f;
        acc[4u] += rs * ju3;
        acc[5u] += rs * ju4;
        acc[6u] += rs * ju5;
        acc[7u] += rs * ju6;
        acc[8u] += rs * ju7;
        acc[9u] += rs * ju8;
        acc[10u] += rs * ju9;
        acc[14u] += rx0 * ju3;
        acc[15u] += rx0 * ju4;
        acc[16u] += rx0 * ju5;
        acc[17u] += rx0 * ju6;
        acc[18u] += rx0 * ju7;
        acc[19u] += rx0 * ju8;
        acc[20u] += rx0 * ju9;
        acc[23u] += rx1 * ju3;
        acc[24u] += rx1 * ju4;
        acc[25u] += rx1 * ju5;
        acc[26u] += rx1 * ju6;
        acc[27u] += rx1 * ju7;
        acc[28u] += rx1 * ju8;
        acc[29u] += rx1 * ju9;
        acc[31u] += rx2 * ju3;
        acc[32u] += rx2 * ju4;
        acc[33u] += rx2 * ju5;
        acc[34u] += rx2 * ju6;
        acc[35u] += rx2 * ju7;
        acc[36u] += rx2 * ju8;
        acc[37u] += rx2 * ju9;
        acc[38u] += rw * ju3 * ju3;
        acc[39u] += rw * ju3 * ju4;
        acc[40u] += rw * ju3 * ju5;
        acc[41u] += rw * ju3 * ju6;
        acc[42u] += rw * ju3 * ju7;
        acc[43u] += rw * ju3 * ju8;
        acc[44u] += rw * ju3 * ju9;
        acc[45u] += rw * ju4 * ju4;
        acc[46u] += rw * ju4 * ju5;
        acc[47u] += rw * ju4 * ju6;
        acc[48u] += rw * ju4 * ju7;
        acc[49u] += rw * ju4 * ju8;
        acc[50u] += rw * ju4 * ju9;
        acc[51u] += rw * ju5 * ju5;
        acc[52u] += rw * ju5 * ju6;
        acc[53u] += rw * ju5 * ju7;
        acc[54u] += rw * ju5 * ju8;
        acc[55u] += rw * ju5 * ju9;
        acc[56u] += rw * ju6 * ju6;
        acc[57u] += rw * ju6 * ju7;
        acc[58u] += rw * ju6 * ju8;
        acc[59u] += rw * ju6 * ju9;
        acc[60u] += rw * ju7 * ju7;
        acc[61u] += rw * ju7 * ju8;
        acc[62u] += rw * ju7 * ju9;
        acc[63u] += rw * ju8 * ju8;
        acc[64u] += rw * ju8 * ju9;
        acc[65u] += rw * ju9 * ju9;
    }
    if (tk0) {
        acc[1u] += col0 * jv0_0;
        acc[11u] += om0 * jv0_0 * jv0_0;
        acc[12u] += om0 * jv0_0 * jv1_0;
        acc[13u] += om0 * jv0_0 * jv2_0;
        acc[2u] += col0 * jv1_0;
        acc[21u] += om0 * jv1_0 * jv1_0;
        acc[22u] += om0 * jv1_0 * jv2_0;
        acc[3u] += col0 * jv2_0;
        acc[30u] += om0 * jv2_0 * jv2_0;
    }
    if (tk1) {
        acc[1u] += col1 * jv0_1;
        acc[11u] += om1 * jv0_1 * jv0_1;
        acc[12u] += om1 * jv0_1 * jv1_1;
        acc[13u] += om1 * jv0_1 * jv2_1;
        acc[2u] += col1 * jv1_1;
        acc[21u] += om1 * jv1_1 * jv1_1;
        acc[22u] += om1 * jv1_1 * jv2_1;
        acc[3u] += col1 * jv2_1;
        acc[30u] += om1 * jv2_1 * jv2_1;
    }
    if (tk2) {
        acc[1u] += col2 * jv0_2;
        acc[11u] += om2 * jv0_2 * jv0_2;
        acc[12u] += om2 * jv0_2 * jv1_2;
        acc[13u] += om2 * jv0_2 * jv2_2;
        acc[2u] += col2 * jv1_2;
        acc[21u] += om2 * jv1_2 * jv1_2;
        acc[22u] += om2 * jv1_2 * jv2_2;
        acc[3u] += col2 * jv2_2;
        acc[30u] += om2 * jv2_2 * jv2_2;
    }
    if (tk3) {
        acc[1u] += col3 * jv0_3;
        acc[11u] += om3 * jv0_3 * jv0_3;
        acc[12u] += om3 * jv0_3 * jv1_3;
        acc[13u] += om3 * jv0_3 * jv2_3;
        acc[2u] += col3 * jv1_3;
        acc[21u] += om3 * jv1_3 * jv1_3;
        acc[22u] += om3 * jv1_3 * jv2_3;
        acc[3u] += col3 * jv2_3;
        acc[30u] += om3 * jv2_3 * jv2_3;
    }
    if (tk4) {
        acc[1u] += col4 * jv0_4;
        acc[11u] += om4 * jv0_4 * jv0_4;
        acc[12u] += om4 * jv0_4 * jv1_4;
        acc[13u] += om4 * jv0_4 * jv2_4;
        acc[2u] += col4 * jv1_4;
        acc[21u] += om4 * jv1_4 * jv1_4;
        acc[22u] += om4 * jv1_4 * jv2_4;
        acc[3u] += col4 * jv2_4;
        acc[30u] += om4 * jv2_4 * jv2_4;
    }
    if (tk5) {
        acc[1u] += col5 * jv0_5;
        acc[11u] += om5 * jv0_5 * jv0_5;
        acc[12u] += om5 * jv0_5 * jv1_5;
        acc[13u] += om5 * jv0_5 * jv2_5;
        acc[2u] += col5 * jv1_5;
        acc[21u] += om5 * jv1_5 * jv1_5;
        acc[22u] += om5 * jv1_5 * jv2_5;
        acc[3u] += col5 * jv2_5;
        acc[30u] += om5 * jv2_5 * jv2_5;
    }
    if (tk6) {
        acc[1u] += col6 * jv0_6;
        acc[11u] += om6 * jv0_6 * jv0_6;
        acc[12u] += om6 * jv0_6 * jv1_6;
        acc[13u] += om6 * jv0_6 * jv2_6;
        acc[2u] += col6 * jv1_6;
        acc[21u] += om6 * jv1_6 * jv1_6;
        acc[22u] += om6 * jv1_6 * jv2_6;
        acc[3u] += col6 * jv2_6;
        acc[30u] += om6 * jv2_6 * jv2_6;
    }
    if (tk7) {
        acc[1u] += col7 * jv0_7;
        acc[11u] += om7 * jv0_7 * jv0_7;
        acc[12u] += om7 * jv0_7 * jv1_7;
        acc[13u] += om7 * jv0_7 * jv2_7;
        acc[2u] += col7 * jv1_7;
        acc[21u] += om7 * jv1_7 * jv1_7;
        acc[22u] += om7 * jv1_7 * jv2_7;
        acc[3u] += col7 * jv2_7;
        acc[30u] += om7 * jv2_7 * jv2_7;
    }
    if (live) {
        write_record(wid.x, k, acc);
    }
}
