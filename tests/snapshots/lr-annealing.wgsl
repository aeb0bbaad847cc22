// law lr-annealing, points layout, curves along step
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
const PV: u32 = 2u;
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
    let n5 = p[2];
    let n6 = -n5;
    let n10 = p[3];
    let n11 = p[4];
    var a0 = 0.0;
    var a1 = 0.0;
    var a5 = 0.0;
    var a6 = 0.0;
    var a10 = 0.0;
    var a11 = 0.0;

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
    var s0 = 0.0;
    var s1 = 0.0;
    var s6 = 0.0;
    var s10 = 0.0;
    var s11 = 0.0;

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
                    a6 += s6;
                    a10 += s10;
                    a11 += s11;
                }
                cur = pc;
                counted = false;
                sum_f = 0.0;
                ok_curve = true;
                let cb = pc * CS;
                n2 = curves[cb + 2u];
                s0 = 0.0;
                s1 = 0.0;
                s6 = 0.0;
                s10 = 0.0;
                s11 = 0.0;
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
            let q1 = tile[j * PV + 1u];
            let n3 = q0.w;
            let n18 = q1.x;
            let cn12 = sf0(bitcast<u32>(n2), n3, array<f32, 1>(n11));
            ok = ok && cn12.ok;
            let n12 = cn12.v[0];
            let n13 = n10 * n12;
            let n17 = cn12.v[1];
            let n26 = n6 * n18;
            let n27 = exp(n26);
            let n28 = n1 * n27;
            let n29 = n0 + n28;
            let n30 = n29 - n13;
            let pred = n30;
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
                var a13 = 0.0;
                var a26 = 0.0;
                var a27 = 0.0;
                var a28 = 0.0;
                var a29 = 0.0;
                let a30 = seed;
                a29 += a30 * 1e0f;
                a13 += a30 * (-1e0f);
                s0 += a29 * 1e0f;
                a28 += a29 * 1e0f;
                s1 += a28 * n27;
                a27 += a28 * n1;
                a26 += a27 * n27;
                s6 += a26 * n18;
                s10 += a13 * n12;
                a12 += a13 * n10;
                s11 += a12 * n17;
            }
        }
        workgroupBarrier();
    }
    if (counted) {
        acc[0] += sum_f;
        a0 += s0;
        a1 += s1;
        a6 += s6;
        a10 += s10;
        a11 += s11;
    }
    a5 += a6 * (-1e0f);
    acc[1] = a0;
    acc[2] = a1;
    acc[3] = a5;
    acc[4] = a10;
    acc[5] = a11;
    if (live) {
        write_record(wid.x, k, acc);
    }
}
// Sums along a run's steps (a law's `sum(k = lo..step: body)`): what every
// generated sum function shares. Appended to a kernel whose law has sums;
// src/backend/gpu/steps.rs writes one function per family of sums (a body
// with its derivatives), the GPU twin of src/law/steps.rs.
//
// The runs' schedules live in `curves`, after the curve and axis records,
// uploaded once per sweep (all offsets in floats from the buffer's start,
// stored as u32 bits):
//   per run, a directory: for each family of the kernel, its table's
//   offset (0: none);
//   per (family, run), a table: the visited steps' count m, the schedule's
//   length, the offsets of the visited steps (m, as bits) and of the
//   per-step values on k alone (m per node), then per series of the family
//   the offset of the run's series (0: the run has none);
//   per (run, series): its values at every step, then the prefix sums'
//   high parts, then their low parts (f32 each: a window of a few steps
//   near the end of a long schedule keeps its digits).
// A schedule's handle in the point or curve records is its directory's
// offset, as bits (0: no schedule).
//
//@ a part of generated kernels: it reads their `curves` binding.

fn sched_u(i: u32) -> u32 {
    return bitcast<u32>(curves[i]);
}

// Series at `base` (length `len`) at step i: (value, 1) or (0, 0) where it
// is undefined (no series, or a step outside the schedule).
fn series_at(base: u32, len: i32, i: i32) -> vec2<f32> {
    if (base == 0u || i < 0 || i >= len) {
        return vec2<f32>(0.0, 0.0);
    }
    return vec2<f32>(curves[base + u32(i)], 1.0);
}

// The series' sum over steps a..=b: 0 when b < a, undefined outside the
// schedule. Two subtractions of the split prefix sums.
fn series_window(base: u32, len: i32, a: i32, b: i32) -> vec2<f32> {
    if (b < a) {
        return vec2<f32>(0.0, 1.0);
    }
    if (base == 0u || a < 0 || b >= len) {
        return vec2<f32>(0.0, 0.0);
    }
    let n = u32(len);
    let hb = curves[base + n + u32(b)];
    let lb = curves[base + 2u * n + u32(b)];
    if (a == 0) {
        return vec2<f32>(hb + lb, 1.0);
    }
    let ha = curves[base + n + u32(a - 1)];
    let la = curves[base + 2u * n + u32(a - 1)];
    return vec2<f32>((hb - ha) + (lb - la), 1.0);
}

// How many of the m visited steps at `ks` (ascending) are <= last.
fn steps_upto(ks: u32, m: u32, last: i32) -> u32 {
    var lo = 0u;
    var hi = m;
    while (lo < hi) {
        let mid = (lo + hi) / 2u;
        if (bitcast<i32>(sched_u(ks + mid)) <= last) {
            lo = mid + 1u;
        } else {
            hi = mid;
        }
    }
    return lo;
}

struct SF0 { v: array<f32, 2>, ok: bool }
fn sf0(dir: u32, tf: f32, p: array<f32, 1>) -> SF0 {
    var r: SF0;
    r.ok = false;
    if (dir == 0u) { return r; }
    let tab = sched_u(dir + 0u);
    let t = i32(tf);
    if (tab == 0u || f32(t) != tf) { return r; }
    let m_all = sched_u(tab);
    let len = i32(sched_u(tab + 1u));
    let ks = sched_u(tab + 2u);
    let kd = sched_u(tab + 3u);
    let so0 = sched_u(tab + 4u);
    let last = t + (0);
    if (last >= len) { return r; }
    var ok = true;
    let n4 = p[0];
    let n5 = f32(t);
    let n12 = 1e0f - n4;
    let n14 = log(n4);
    ok = ok && n4 > 0.0;
    let n19 = 1e0f / n12;
    let n21 = n19 * n19;
    let n22 = -n21;
    let n24 = 1e0f / n4;
    let m = steps_upto(ks, m_all, last);
    var a0 = 0.0;
    var s0 = 0.0;
    var a1 = 0.0;
    var s1 = 0.0;
    for (var j = 0u; j < m; j++) {
        let k = bitcast<i32>(sched_u(ks + j));
        let n0 = curves[kd + 0u * m_all + j];
        let n1 = curves[kd + 1u * m_all + j];
        let n2 = curves[kd + 2u * m_all + j];
        let n6 = curves[kd + 3u * m_all + j];
        let n27 = n2 * n19;
        let n28 = -n27;
        let n7 = n5 - n6;
        let n8 = 1e0f + n7;
        let n15 = n8 * n14;
        let n16 = exp(n15);
        let n17 = 1e0f - n16;
        let n18 = n2 * n17;
        let n26 = n18 * n22;
        let n29 = n16 * n28;
        let n30 = n8 * n29;
        let n31 = n24 * n30;
        let n33 = n31 - n26;
        s0 += n18;
        s1 += n33;
        if ((j % 64u) == 63u) {
            a0 += s0;
            s0 = 0.0;
            a1 += s1;
            s1 = 0.0;
        }
    }
    r.v[0] = n19 * (a0 + s0);
    r.v[1] = a1 + s1;
    r.ok = ok;
    return r;
}
// law lr-annealing, grid layout (axis nodes once per start and value), curves along step
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
const PV: u32 = 33u;
const CS: u32 = 3u;
const AS: u32 = 1u;
const TILE: u32 = 16u;
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
    let n5 = p[2];
    let n6 = -n5;
    let n10 = p[3];
    let n11 = p[4];
    var a0 = 0.0;
    var a1 = 0.0;
    var a5 = 0.0;
    var a6 = 0.0;
    var a10 = 0.0;
    var a11 = 0.0;

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
    var s0 = 0.0;
    var s1 = 0.0;
    var s6 = 0.0;
    var s10 = 0.0;
    var s11 = 0.0;
    var cur_block = NO_CURVE;
    var okx0 = true;
    var tk0 = false;
    var n3_0 = 0.0;
    var okx1 = true;
    var tk1 = false;
    var n3_1 = 0.0;
    var okx2 = true;
    var tk2 = false;
    var n3_2 = 0.0;
    var okx3 = true;
    var tk3 = false;
    var n3_3 = 0.0;
    var okx4 = true;
    var tk4 = false;
    var n3_4 = 0.0;
    var okx5 = true;
    var tk5 = false;
    var n3_5 = 0.0;
    var okx6 = true;
    var tk6 = false;
    var n3_6 = 0.0;
    var okx7 = true;
    var tk7 = false;
    var n3_7 = 0.0;
    var okx8 = true;
    var tk8 = false;
    var n3_8 = 0.0;
    var okx9 = true;
    var tk9 = false;
    var n3_9 = 0.0;
    var okx10 = true;
    var tk10 = false;
    var n3_10 = 0.0;
    var okx11 = true;
    var tk11 = false;
    var n3_11 = 0.0;
    var okx12 = true;
    var tk12 = false;
    var n3_12 = 0.0;
    var okx13 = true;
    var tk13 = false;
    var n3_13 = 0.0;
    var okx14 = true;
    var tk14 = false;
    var n3_14 = 0.0;
    var okx15 = true;
    var tk15 = false;
    var n3_15 = 0.0;

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
                }
                if (tk1) {
                }
                if (tk2) {
                }
                if (tk3) {
                }
                if (tk4) {
                }
                if (tk5) {
                }
                if (tk6) {
                }
                if (tk7) {
                }
                if (tk8) {
                }
                if (tk9) {
                }
                if (tk10) {
                }
                if (tk11) {
                }
                if (tk12) {
                }
                if (tk13) {
                }
                if (tk14) {
                }
                if (tk15) {
                }
                cur_block = pb;
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 0u, chunk.n_axis - 1u) * AS;
                    n3_0 = curves[ab + 0u];
                    okx0 = true;
                    tk0 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 1u, chunk.n_axis - 1u) * AS;
                    n3_1 = curves[ab + 0u];
                    okx1 = true;
                    tk1 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 2u, chunk.n_axis - 1u) * AS;
                    n3_2 = curves[ab + 0u];
                    okx2 = true;
                    tk2 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 3u, chunk.n_axis - 1u) * AS;
                    n3_3 = curves[ab + 0u];
                    okx3 = true;
                    tk3 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 4u, chunk.n_axis - 1u) * AS;
                    n3_4 = curves[ab + 0u];
                    okx4 = true;
                    tk4 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 5u, chunk.n_axis - 1u) * AS;
                    n3_5 = curves[ab + 0u];
                    okx5 = true;
                    tk5 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 6u, chunk.n_axis - 1u) * AS;
                    n3_6 = curves[ab + 0u];
                    okx6 = true;
                    tk6 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 7u, chunk.n_axis - 1u) * AS;
                    n3_7 = curves[ab + 0u];
                    okx7 = true;
                    tk7 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 8u, chunk.n_axis - 1u) * AS;
                    n3_8 = curves[ab + 0u];
                    okx8 = true;
                    tk8 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 9u, chunk.n_axis - 1u) * AS;
                    n3_9 = curves[ab + 0u];
                    okx9 = true;
                    tk9 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 10u, chunk.n_axis - 1u) * AS;
                    n3_10 = curves[ab + 0u];
                    okx10 = true;
                    tk10 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 11u, chunk.n_axis - 1u) * AS;
                    n3_11 = curves[ab + 0u];
                    okx11 = true;
                    tk11 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 12u, chunk.n_axis - 1u) * AS;
                    n3_12 = curves[ab + 0u];
                    okx12 = true;
                    tk12 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 13u, chunk.n_axis - 1u) * AS;
                    n3_13 = curves[ab + 0u];
                    okx13 = true;
                    tk13 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 14u, chunk.n_axis - 1u) * AS;
                    n3_14 = curves[ab + 0u];
                    okx14 = true;
                    tk14 = false;
                }
                {
                    let ab = chunk.axis_base + min(cur_block * TA + 15u, chunk.n_axis - 1u) * AS;
                    n3_15 = curves[ab + 0u];
                    okx15 = true;
                    tk15 = false;
                }
            }
            if (pc != cur) {
                // Close the previous curve and open this one (uniform
                // across the workgroup).
                if (counted) {
                    acc[0] += sum_f;
                    a0 += s0;
                    a1 += s1;
                    a6 += s6;
                    a10 += s10;
                    a11 += s11;
                }
                cur = pc;
                counted = false;
                sum_f = 0.0;
                ok_curve = true;
                let cb = pc * CS;
                n2 = curves[cb + 2u];
                s0 = 0.0;
                s1 = 0.0;
                s6 = 0.0;
                s10 = 0.0;
                s11 = 0.0;
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
                let q1 = tile[j * PV + 1u + 0u * CV + 1u];
                let n18 = q1.x;
                let cn12 = sf0(bitcast<u32>(n2), n3_0, array<f32, 1>(n11));
                ok = ok && cn12.ok;
                let n12 = cn12.v[0];
                let n13 = n10 * n12;
                let n17 = cn12.v[1];
                let n26 = n6 * n18;
                let n27 = exp(n26);
                let n28 = n1 * n27;
                let n29 = n0 + n28;
                let n30 = n29 - n13;
                let pred = n30;
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
                    var a12 = 0.0;
                    var a13 = 0.0;
                    var a26 = 0.0;
                    var a27 = 0.0;
                    var a28 = 0.0;
                    var a29 = 0.0;
                    let a30 = seed;
                    a29 += a30 * 1e0f;
                    a13 += a30 * (-1e0f);
                    s0 += a29 * 1e0f;
                    a28 += a29 * 1e0f;
                    s1 += a28 * n27;
                    a27 += a28 * n1;
                    a26 += a27 * n27;
                    s6 += a26 * n18;
                    s10 += a13 * n12;
                    a12 += a13 * n10;
                    s11 += a12 * n17;
                }
            }
            {
                let q = tile[j * PV + 1u + 1u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx1;
                let q1 = tile[j * PV + 1u + 1u * CV + 1u];
                let n18 = q1.x;
                let cn12 = sf0(bitcast<u32>(n2), n3_1, array<f32, 1>(n11));
                ok = ok && cn12.ok;
                let n12 = cn12.v[0];
                let n13 = n10 * n12;
                let n17 = cn12.v[1];
                let n26 = n6 * n18;
                let n27 = exp(n26);
                let n28 = n1 * n27;
                let n29 = n0 + n28;
                let n30 = n29 - n13;
                let pred = n30;
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
                    var a12 = 0.0;
                    var a13 = 0.0;
                    var a26 = 0.0;
                    var a27 = 0.0;
                    var a28 = 0.0;
                    var a29 = 0.0;
                    let a30 = seed;
                    a29 += a30 * 1e0f;
                    a13 += a30 * (-1e0f);
                    s0 += a29 * 1e0f;
                    a28 += a29 * 1e0f;
                    s1 += a28 * n27;
                    a27 += a28 * n1;
                    a26 += a27 * n27;
                    s6 += a26 * n18;
                    s10 += a13 * n12;
                    a12 += a13 * n10;
                    s11 += a12 * n17;
                }
            }
            {
                let q = tile[j * PV + 1u + 2u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx2;
                let q1 = tile[j * PV + 1u + 2u * CV + 1u];
                let n18 = q1.x;
                let cn12 = sf0(bitcast<u32>(n2), n3_2, array<f32, 1>(n11));
                ok = ok && cn12.ok;
                let n12 = cn12.v[0];
                let n13 = n10 * n12;
                let n17 = cn12.v[1];
                let n26 = n6 * n18;
                let n27 = exp(n26);
                let n28 = n1 * n27;
                let n29 = n0 + n28;
                let n30 = n29 - n13;
                let pred = n30;
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
                    var a12 = 0.0;
                    var a13 = 0.0;
                    var a26 = 0.0;
                    var a27 = 0.0;
                    var a28 = 0.0;
                    var a29 = 0.0;
                    let a30 = seed;
                    a29 += a30 * 1e0f;
                    a13 += a30 * (-1e0f);
                    s0 += a29 * 1e0f;
                    a28 += a29 * 1e0f;
                    s1 += a28 * n27;
                    a27 += a28 * n1;
                    a26 += a27 * n27;
                    s6 += a26 * n18;
                    s10 += a13 * n12;
                    a12 += a13 * n10;
                    s11 += a12 * n17;
                }
            }
            {
                let q = tile[j * PV + 1u + 3u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx3;
                let q1 = tile[j * PV + 1u + 3u * CV + 1u];
                let n18 = q1.x;
                let cn12 = sf0(bitcast<u32>(n2), n3_3, array<f32, 1>(n11));
                ok = ok && cn12.ok;
                let n12 = cn12.v[0];
                let n13 = n10 * n12;
                let n17 = cn12.v[1];
                let n26 = n6 * n18;
                let n27 = exp(n26);
                let n28 = n1 * n27;
                let n29 = n0 + n28;
                let n30 = n29 - n13;
                let pred = n30;
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
                    var a12 = 0.0;
                    var a13 = 0.0;
                    var a26 = 0.0;
                    var a27 = 0.0;
                    var a28 = 0.0;
                    var a29 = 0.0;
                    let a30 = seed;
                    a29 += a30 * 1e0f;
                    a13 += a30 * (-1e0f);
                    s0 += a29 * 1e0f;
                    a28 += a29 * 1e0f;
                    s1 += a28 * n27;
                    a27 += a28 * n1;
                    a26 += a27 * n27;
                    s6 += a26 * n18;
                    s10 += a13 * n12;
                    a12 += a13 * n10;
                    s11 += a12 * n17;
                }
            }
            {
                let q = tile[j * PV + 1u + 4u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx4;
                let q1 = tile[j * PV + 1u + 4u * CV + 1u];
                let n18 = q1.x;
                let cn12 = sf0(bitcast<u32>(n2), n3_4, array<f32, 1>(n11));
                ok = ok && cn12.ok;
                let n12 = cn12.v[0];
                let n13 = n10 * n12;
                let n17 = cn12.v[1];
                let n26 = n6 * n18;
                let n27 = exp(n26);
                let n28 = n1 * n27;
                let n29 = n0 + n28;
                let n30 = n29 - n13;
                let pred = n30;
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
                    var a12 = 0.0;
                    var a13 = 0.0;
                    var a26 = 0.0;
                    var a27 = 0.0;
                    var a28 = 0.0;
                    var a29 = 0.0;
                    let a30 = seed;
                    a29 += a30 * 1e0f;
                    a13 += a30 * (-1e0f);
                    s0 += a29 * 1e0f;
                    a28 += a29 * 1e0f;
                    s1 += a28 * n27;
                    a27 += a28 * n1;
                    a26 += a27 * n27;
                    s6 += a26 * n18;
                    s10 += a13 * n12;
                    a12 += a13 * n10;
                    s11 += a12 * n17;
                }
            }
            {
                let q = tile[j * PV + 1u + 5u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx5;
                let q1 = tile[j * PV + 1u + 5u * CV + 1u];
                let n18 = q1.x;
                let cn12 = sf0(bitcast<u32>(n2), n3_5, array<f32, 1>(n11));
                ok = ok && cn12.ok;
                let n12 = cn12.v[0];
                let n13 = n10 * n12;
                let n17 = cn12.v[1];
                let n26 = n6 * n18;
                let n27 = exp(n26);
                let n28 = n1 * n27;
                let n29 = n0 + n28;
                let n30 = n29 - n13;
                let pred = n30;
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
                    var a12 = 0.0;
                    var a13 = 0.0;
                    var a26 = 0.0;
                    var a27 = 0.0;
                    var a28 = 0.0;
                    var a29 = 0.0;
                    let a30 = seed;
                    a29 += a30 * 1e0f;
                    a13 += a30 * (-1e0f);
                    s0 += a29 * 1e0f;
                    a28 += a29 * 1e0f;
                    s1 += a28 * n27;
                    a27 += a28 * n1;
                    a26 += a27 * n27;
                    s6 += a26 * n18;
                    s10 += a13 * n12;
                    a12 += a13 * n10;
                    s11 += a12 * n17;
                }
            }
            {
                let q = tile[j * PV + 1u + 6u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx6;
                let q1 = tile[j * PV + 1u + 6u * CV + 1u];
                let n18 = q1.x;
                let cn12 = sf0(bitcast<u32>(n2), n3_6, array<f32, 1>(n11));
                ok = ok && cn12.ok;
                let n12 = cn12.v[0];
                let n13 = n10 * n12;
                let n17 = cn12.v[1];
                let n26 = n6 * n18;
                let n27 = exp(n26);
                let n28 = n1 * n27;
                let n29 = n0 + n28;
                let n30 = n29 - n13;
                let pred = n30;
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
                    var a12 = 0.0;
                    var a13 = 0.0;
                    var a26 = 0.0;
                    var a27 = 0.0;
                    var a28 = 0.0;
                    var a29 = 0.0;
                    let a30 = seed;
                    a29 += a30 * 1e0f;
                    a13 += a30 * (-1e0f);
                    s0 += a29 * 1e0f;
                    a28 += a29 * 1e0f;
                    s1 += a28 * n27;
                    a27 += a28 * n1;
                    a26 += a27 * n27;
                    s6 += a26 * n18;
                    s10 += a13 * n12;
                    a12 += a13 * n10;
                    s11 += a12 * n17;
                }
            }
            {
                let q = tile[j * PV + 1u + 7u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx7;
                let q1 = tile[j * PV + 1u + 7u * CV + 1u];
                let n18 = q1.x;
                let cn12 = sf0(bitcast<u32>(n2), n3_7, array<f32, 1>(n11));
                ok = ok && cn12.ok;
                let n12 = cn12.v[0];
                let n13 = n10 * n12;
                let n17 = cn12.v[1];
                let n26 = n6 * n18;
                let n27 = exp(n26);
                let n28 = n1 * n27;
                let n29 = n0 + n28;
                let n30 = n29 - n13;
                let pred = n30;
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
                    var a12 = 0.0;
                    var a13 = 0.0;
                    var a26 = 0.0;
                    var a27 = 0.0;
                    var a28 = 0.0;
                    var a29 = 0.0;
                    let a30 = seed;
                    a29 += a30 * 1e0f;
                    a13 += a30 * (-1e0f);
                    s0 += a29 * 1e0f;
                    a28 += a29 * 1e0f;
                    s1 += a28 * n27;
                    a27 += a28 * n1;
                    a26 += a27 * n27;
                    s6 += a26 * n18;
                    s10 += a13 * n12;
                    a12 += a13 * n10;
                    s11 += a12 * n17;
                }
            }
            {
                let q = tile[j * PV + 1u + 8u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx8;
                let q1 = tile[j * PV + 1u + 8u * CV + 1u];
                let n18 = q1.x;
                let cn12 = sf0(bitcast<u32>(n2), n3_8, array<f32, 1>(n11));
                ok = ok && cn12.ok;
                let n12 = cn12.v[0];
                let n13 = n10 * n12;
                let n17 = cn12.v[1];
                let n26 = n6 * n18;
                let n27 = exp(n26);
                let n28 = n1 * n27;
                let n29 = n0 + n28;
                let n30 = n29 - n13;
                let pred = n30;
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
                    var a12 = 0.0;
                    var a13 = 0.0;
                    var a26 = 0.0;
                    var a27 = 0.0;
                    var a28 = 0.0;
                    var a29 = 0.0;
                    let a30 = seed;
                    a29 += a30 * 1e0f;
                    a13 += a30 * (-1e0f);
                    s0 += a29 * 1e0f;
                    a28 += a29 * 1e0f;
                    s1 += a28 * n27;
                    a27 += a28 * n1;
                    a26 += a27 * n27;
                    s6 += a26 * n18;
                    s10 += a13 * n12;
                    a12 += a13 * n10;
                    s11 += a12 * n17;
                }
            }
            {
                let q = tile[j * PV + 1u + 9u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx9;
                let q1 = tile[j * PV + 1u + 9u * CV + 1u];
                let n18 = q1.x;
                let cn12 = sf0(bitcast<u32>(n2), n3_9, array<f32, 1>(n11));
                ok = ok && cn12.ok;
                let n12 = cn12.v[0];
                let n13 = n10 * n12;
                let n17 = cn12.v[1];
                let n26 = n6 * n18;
                let n27 = exp(n26);
                let n28 = n1 * n27;
                let n29 = n0 + n28;
                let n30 = n29 - n13;
                let pred = n30;
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
                    var a12 = 0.0;
                    var a13 = 0.0;
                    var a26 = 0.0;
                    var a27 = 0.0;
                    var a28 = 0.0;
                    var a29 = 0.0;
                    let a30 = seed;
                    a29 += a30 * 1e0f;
                    a13 += a30 * (-1e0f);
                    s0 += a29 * 1e0f;
                    a28 += a29 * 1e0f;
                    s1 += a28 * n27;
                    a27 += a28 * n1;
                    a26 += a27 * n27;
                    s6 += a26 * n18;
                    s10 += a13 * n12;
                    a12 += a13 * n10;
                    s11 += a12 * n17;
                }
            }
            {
                let q = tile[j * PV + 1u + 10u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx10;
                let q1 = tile[j * PV + 1u + 10u * CV + 1u];
                let n18 = q1.x;
                let cn12 = sf0(bitcast<u32>(n2), n3_10, array<f32, 1>(n11));
                ok = ok && cn12.ok;
                let n12 = cn12.v[0];
                let n13 = n10 * n12;
                let n17 = cn12.v[1];
                let n26 = n6 * n18;
                let n27 = exp(n26);
                let n28 = n1 * n27;
                let n29 = n0 + n28;
                let n30 = n29 - n13;
                let pred = n30;
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
                    var a12 = 0.0;
                    var a13 = 0.0;
                    var a26 = 0.0;
                    var a27 = 0.0;
                    var a28 = 0.0;
                    var a29 = 0.0;
                    let a30 = seed;
                    a29 += a30 * 1e0f;
                    a13 += a30 * (-1e0f);
                    s0 += a29 * 1e0f;
                    a28 += a29 * 1e0f;
                    s1 += a28 * n27;
                    a27 += a28 * n1;
                    a26 += a27 * n27;
                    s6 += a26 * n18;
                    s10 += a13 * n12;
                    a12 += a13 * n10;
                    s11 += a12 * n17;
                }
            }
            {
                let q = tile[j * PV + 1u + 11u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx11;
                let q1 = tile[j * PV + 1u + 11u * CV + 1u];
                let n18 = q1.x;
                let cn12 = sf0(bitcast<u32>(n2), n3_11, array<f32, 1>(n11));
                ok = ok && cn12.ok;
                let n12 = cn12.v[0];
                let n13 = n10 * n12;
                let n17 = cn12.v[1];
                let n26 = n6 * n18;
                let n27 = exp(n26);
                let n28 = n1 * n27;
                let n29 = n0 + n28;
                let n30 = n29 - n13;
                let pred = n30;
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
                    var a12 = 0.0;
                    var a13 = 0.0;
                    var a26 = 0.0;
                    var a27 = 0.0;
                    var a28 = 0.0;
                    var a29 = 0.0;
                    let a30 = seed;
                    a29 += a30 * 1e0f;
                    a13 += a30 * (-1e0f);
                    s0 += a29 * 1e0f;
                    a28 += a29 * 1e0f;
                    s1 += a28 * n27;
                    a27 += a28 * n1;
                    a26 += a27 * n27;
                    s6 += a26 * n18;
                    s10 += a13 * n12;
                    a12 += a13 * n10;
                    s11 += a12 * n17;
                }
            }
            {
                let q = tile[j * PV + 1u + 12u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx12;
                let q1 = tile[j * PV + 1u + 12u * CV + 1u];
                let n18 = q1.x;
                let cn12 = sf0(bitcast<u32>(n2), n3_12, array<f32, 1>(n11));
                ok = ok && cn12.ok;
                let n12 = cn12.v[0];
                let n13 = n10 * n12;
                let n17 = cn12.v[1];
                let n26 = n6 * n18;
                let n27 = exp(n26);
                let n28 = n1 * n27;
                let n29 = n0 + n28;
                let n30 = n29 - n13;
                let pred = n30;
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
                    var a12 = 0.0;
                    var a13 = 0.0;
                    var a26 = 0.0;
                    var a27 = 0.0;
                    var a28 = 0.0;
                    var a29 = 0.0;
                    let a30 = seed;
                    a29 += a30 * 1e0f;
                    a13 += a30 * (-1e0f);
                    s0 += a29 * 1e0f;
                    a28 += a29 * 1e0f;
                    s1 += a28 * n27;
                    a27 += a28 * n1;
                    a26 += a27 * n27;
                    s6 += a26 * n18;
                    s10 += a13 * n12;
                    a12 += a13 * n10;
                    s11 += a12 * n17;
                }
            }
            {
                let q = tile[j * PV + 1u + 13u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx13;
                let q1 = tile[j * PV + 1u + 13u * CV + 1u];
                let n18 = q1.x;
                let cn12 = sf0(bitcast<u32>(n2), n3_13, array<f32, 1>(n11));
                ok = ok && cn12.ok;
                let n12 = cn12.v[0];
                let n13 = n10 * n12;
                let n17 = cn12.v[1];
                let n26 = n6 * n18;
                let n27 = exp(n26);
                let n28 = n1 * n27;
                let n29 = n0 + n28;
                let n30 = n29 - n13;
                let pred = n30;
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
                    var a12 = 0.0;
                    var a13 = 0.0;
                    var a26 = 0.0;
                    var a27 = 0.0;
                    var a28 = 0.0;
                    var a29 = 0.0;
                    let a30 = seed;
                    a29 += a30 * 1e0f;
                    a13 += a30 * (-1e0f);
                    s0 += a29 * 1e0f;
                    a28 += a29 * 1e0f;
                    s1 += a28 * n27;
                    a27 += a28 * n1;
                    a26 += a27 * n27;
                    s6 += a26 * n18;
                    s10 += a13 * n12;
                    a12 += a13 * n10;
                    s11 += a12 * n17;
                }
            }
            {
                let q = tile[j * PV + 1u + 14u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx14;
                let q1 = tile[j * PV + 1u + 14u * CV + 1u];
                let n18 = q1.x;
                let cn12 = sf0(bitcast<u32>(n2), n3_14, array<f32, 1>(n11));
                ok = ok && cn12.ok;
                let n12 = cn12.v[0];
                let n13 = n10 * n12;
                let n17 = cn12.v[1];
                let n26 = n6 * n18;
                let n27 = exp(n26);
                let n28 = n1 * n27;
                let n29 = n0 + n28;
                let n30 = n29 - n13;
                let pred = n30;
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
                    var a12 = 0.0;
                    var a13 = 0.0;
                    var a26 = 0.0;
                    var a27 = 0.0;
                    var a28 = 0.0;
                    var a29 = 0.0;
                    let a30 = seed;
                    a29 += a30 * 1e0f;
                    a13 += a30 * (-1e0f);
                    s0 += a29 * 1e0f;
                    a28 += a29 * 1e0f;
                    s1 += a28 * n27;
                    a27 += a28 * n1;
                    a26 += a27 * n27;
                    s6 += a26 * n18;
                    s10 += a13 * n12;
                    a12 += a13 * n10;
                    s11 += a12 * n17;
                }
            }
            {
                let q = tile[j * PV + 1u + 15u * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx15;
                let q1 = tile[j * PV + 1u + 15u * CV + 1u];
                let n18 = q1.x;
                let cn12 = sf0(bitcast<u32>(n2), n3_15, array<f32, 1>(n11));
                ok = ok && cn12.ok;
                let n12 = cn12.v[0];
                let n13 = n10 * n12;
                let n17 = cn12.v[1];
                let n26 = n6 * n18;
                let n27 = exp(n26);
                let n28 = n1 * n27;
                let n29 = n0 + n28;
                let n30 = n29 - n13;
                let pred = n30;
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
                    var a12 = 0.0;
                    var a13 = 0.0;
                    var a26 = 0.0;
                    var a27 = 0.0;
                    var a28 = 0.0;
                    var a29 = 0.0;
                    let a30 = seed;
                    a29 += a30 * 1e0f;
                    a13 += a30 * (-1e0f);
                    s0 += a29 * 1e0f;
                    a28 += a29 * 1e0f;
                    s1 += a28 * n27;
                    a27 += a28 * n1;
                    a26 += a27 * n27;
                    s6 += a26 * n18;
                    s10 += a13 * n12;
                    a12 += a13 * n10;
                    s11 += a12 * n17;
                }
            }
        }
        workgroupBarrier();
    }
    if (counted) {
        acc[0] += sum_f;
        a0 += s0;
        a1 += s1;
        a6 += s6;
        a10 += s10;
        a11 += s11;
    }
    if (tk0) {
    }
    if (tk1) {
    }
    if (tk2) {
    }
    if (tk3) {
    }
    if (tk4) {
    }
    if (tk5) {
    }
    if (tk6) {
    }
    if (tk7) {
    }
    if (tk8) {
    }
    if (tk9) {
    }
    if (tk10) {
    }
    if (tk11) {
    }
    if (tk12) {
    }
    if (tk13) {
    }
    if (tk14) {
    }
    if (tk15) {
    }
    a5 += a6 * (-1e0f);
    acc[1] = a0;
    acc[2] = a1;
    acc[3] = a5;
    acc[4] = a10;
    acc[5] = a11;
    if (live) {
        write_record(wid.x, k, acc);
    }
}
// Sums along a run's steps (a law's `sum(k = lo..step: body)`): what every
// generated sum function shares. Appended to a kernel whose law has sums;
// src/backend/gpu/steps.rs writes one function per family of sums (a body
// with its derivatives), the GPU twin of src/law/steps.rs.
//
// The runs' schedules live in `curves`, after the curve and axis records,
// uploaded once per sweep (all offsets in floats from the buffer's start,
// stored as u32 bits):
//   per run, a directory: for each family of the kernel, its table's
//   offset (0: none);
//   per (family, run), a table: the visited steps' count m, the schedule's
//   length, the offsets of the visited steps (m, as bits) and of the
//   per-step values on k alone (m per node), then per series of the family
//   the offset of the run's series (0: the run has none);
//   per (run, series): its values at every step, then the prefix sums'
//   high parts, then their low parts (f32 each: a window of a few steps
//   near the end of a long schedule keeps its digits).
// A schedule's handle in the point or curve records is its directory's
// offset, as bits (0: no schedule).
//
//@ a part of generated kernels: it reads their `curves` binding.

fn sched_u(i: u32) -> u32 {
    return bitcast<u32>(curves[i]);
}

// Series at `base` (length `len`) at step i: (value, 1) or (0, 0) where it
// is undefined (no series, or a step outside the schedule).
fn series_at(base: u32, len: i32, i: i32) -> vec2<f32> {
    if (base == 0u || i < 0 || i >= len) {
        return vec2<f32>(0.0, 0.0);
    }
    return vec2<f32>(curves[base + u32(i)], 1.0);
}

// The series' sum over steps a..=b: 0 when b < a, undefined outside the
// schedule. Two subtractions of the split prefix sums.
fn series_window(base: u32, len: i32, a: i32, b: i32) -> vec2<f32> {
    if (b < a) {
        return vec2<f32>(0.0, 1.0);
    }
    if (base == 0u || a < 0 || b >= len) {
        return vec2<f32>(0.0, 0.0);
    }
    let n = u32(len);
    let hb = curves[base + n + u32(b)];
    let lb = curves[base + 2u * n + u32(b)];
    if (a == 0) {
        return vec2<f32>(hb + lb, 1.0);
    }
    let ha = curves[base + n + u32(a - 1)];
    let la = curves[base + 2u * n + u32(a - 1)];
    return vec2<f32>((hb - ha) + (lb - la), 1.0);
}

// How many of the m visited steps at `ks` (ascending) are <= last.
fn steps_upto(ks: u32, m: u32, last: i32) -> u32 {
    var lo = 0u;
    var hi = m;
    while (lo < hi) {
        let mid = (lo + hi) / 2u;
        if (bitcast<i32>(sched_u(ks + mid)) <= last) {
            lo = mid + 1u;
        } else {
            hi = mid;
        }
    }
    return lo;
}

struct SF0 { v: array<f32, 2>, ok: bool }
fn sf0(dir: u32, tf: f32, p: array<f32, 1>) -> SF0 {
    var r: SF0;
    r.ok = false;
    if (dir == 0u) { return r; }
    let tab = sched_u(dir + 0u);
    let t = i32(tf);
    if (tab == 0u || f32(t) != tf) { return r; }
    let m_all = sched_u(tab);
    let len = i32(sched_u(tab + 1u));
    let ks = sched_u(tab + 2u);
    let kd = sched_u(tab + 3u);
    let so0 = sched_u(tab + 4u);
    let last = t + (0);
    if (last >= len) { return r; }
    var ok = true;
    let n4 = p[0];
    let n5 = f32(t);
    let n12 = 1e0f - n4;
    let n14 = log(n4);
    ok = ok && n4 > 0.0;
    let n19 = 1e0f / n12;
    let n21 = n19 * n19;
    let n22 = -n21;
    let n24 = 1e0f / n4;
    let m = steps_upto(ks, m_all, last);
    var a0 = 0.0;
    var s0 = 0.0;
    var a1 = 0.0;
    var s1 = 0.0;
    for (var j = 0u; j < m; j++) {
        let k = bitcast<i32>(sched_u(ks + j));
        let n0 = curves[kd + 0u * m_all + j];
        let n1 = curves[kd + 1u * m_all + j];
        let n2 = curves[kd + 2u * m_all + j];
        let n6 = curves[kd + 3u * m_all + j];
        let n27 = n2 * n19;
        let n28 = -n27;
        let n7 = n5 - n6;
        let n8 = 1e0f + n7;
        let n15 = n8 * n14;
        let n16 = exp(n15);
        let n17 = 1e0f - n16;
        let n18 = n2 * n17;
        let n26 = n18 * n22;
        let n29 = n16 * n28;
        let n30 = n8 * n29;
        let n31 = n24 * n30;
        let n33 = n31 - n26;
        s0 += n18;
        s1 += n33;
        if ((j % 64u) == 63u) {
            a0 += s0;
            s0 = 0.0;
            a1 += s1;
            s1 = 0.0;
        }
    }
    r.v[0] = n19 * (a0 + s0);
    r.v[1] = a1 + s1;
    r.ok = ok;
    return r;
}
