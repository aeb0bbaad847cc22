// Objective and gradient of the LoopLM law for a batch of parameter vectors.
//
// L = E + A (n + t1)^-alpha + B (d + t2)^-beta + C (T + t3)^-gamma
//
// One invocation is one parameter vector (a "start"); a workgroup is 64
// starts. The workgroup walks over tiles of points: each tile is loaded
// into workgroup memory once and then read by all 64 starts, so every
// point fetched from memory serves the whole workgroup.
//
// The law is separable: the N and T terms are constant within a
// configuration, so per point only v = (d + t2)^-beta costs one log and one
// exp. Per configuration the kernel keeps five running sums (objective,
// and sum g, g v, g v ln(d+t2), g v/(d+t2) with g = w rho'(r) dr/dpred) and
// turns them into the ten gradient entries when the configuration ends.
//
// Output: per (workgroup slot, start) 12 floats: objective, 10 gradient
// entries, and the number of points where the law was undefined (log of
// a non-positive prediction, or d + t2 <= 0). A second pass (reduce.wgsl)
// adds the slots up.
//
// Weighted evaluation (src/backend/weights.rs): the pipeline built with
// WEIGHTED = true multiplies each point's weight by its start's weighting
// factor: the configuration's multiplier if the point is among the first
// `first` of its configuration, times a Poisson(1) count hashed from
// (seed, point index) when the weighting resamples points. The multiplier
// and limit are read when a configuration opens, so per point this costs
// a compare and a few selects (plus the hash when resampling). With
// WEIGHTED = false the compiler drops all of it and plain evaluation runs
// the original code.

// Whether starts carry weightings (a pipeline constant: one module, two
// pipelines).
override WEIGHTED: bool = false;

struct Meta {
    // Points in this chunk.
    n_points: u32,
    // Workgroups along x: slot g handles tiles g, g + n_groups, ...
    n_groups: u32,
    // Stride (in starts) of the partial-sum records.
    k_stride: u32,
    // Index of this chunk's first slot in the partial-sum buffer.
    slot_base: u32,
    // 0 = mse, 1 = huber.
    loss: u32,
    // 0 = linear, 1 = log.
    space: u32,
    delta: f32,
    // Global index (over all chunks) of this chunk's first point.
    first_point: u32,
}

struct Batch {
    // Starts in this dispatch, and the first one's index in `params`.
    k: u32,
    k_offset: u32,
    _pad0: u32,
    _pad1: u32,
}

// A start's weighting: `base` indexes its row in `weightings`, flags bit 0
// = weighted (else the dataset's own weights), bit 1 = Poisson counts with
// mixed seed `seed`.
struct Problem {
    base: u32,
    flags: u32,
    seed: u32,
    _pad: u32,
}

// (d, y, w, configuration index as bits) per point.
@group(0) @binding(0) var<storage, read> points: array<vec4<f32>>;
// Per configuration: n, T, and as bits the global index of its first point
// and that point's index in the host's data (the Poisson hash key). A
// plain vec4: reading a struct with u32 members here made the whole
// kernel ~10% slower on a software driver.
@group(0) @binding(1) var<storage, read> configs: array<vec4<f32>>;
// 10 internal parameters per start.
@group(0) @binding(2) var<storage, read> params: array<f32>;
@group(0) @binding(3) var<storage, read_write> partials: array<f32>;
@group(0) @binding(4) var<uniform> chunk: Meta;
// One per start (read only when WEIGHTED).
@group(0) @binding(5) var<storage, read> problems: array<Problem>;
@group(1) @binding(0) var<uniform> batch: Batch;
// Per (weighting, configuration): multiplier as f32 bits, points kept.
@group(2) @binding(0) var<storage, read> weightings: array<vec2<u32>>;

const WG: u32 = 64u;
const TILE: u32 = 256u;
const RECORD: u32 = 12u;
const NO_CONFIG: u32 = 0xffffffffu;
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

var<workgroup> tile: array<vec4<f32>, TILE>;

// Running sums over the points of one configuration: objective, and of
// g = w rho'(r) dr/dpred: g, g v, g v ln(d+t2), g v/(d+t2).
struct Sums {
    f: f32,
    s0: f32,
    sv: f32,
    sl: f32,
    sq: f32,
}

// A configuration's N or T term: x = n + t1 (or T + t3), ln x, u = x^-exponent.
struct Term {
    x: f32,
    ln_x: f32,
    u: f32,
}

fn term(x: f32, exponent: f32) -> Term {
    let l = log(x);
    return Term(x, l, exp(-exponent * l));
}

// Fold one configuration's sums into the whole-fit accumulators: objective
// and the ten gradient entries (law order E, A, alpha, t1, B, beta, t2, C,
// gamma, t3).
fn close_config(acc: ptr<function, array<f32, 12>>, p: array<f32, 10>, s: Sums, n: Term, t: Term) {
    // A configuration whose points were all left out adds nothing: every
    // term below is a multiple of these sums, and skipping avoids 0 * inf
    // where its N or T term overflows f32.
    if (WEIGHTED && s.f == 0.0 && s.s0 == 0.0 && s.sv == 0.0 && s.sl == 0.0 && s.sq == 0.0) {
        return;
    }
    (*acc)[0] += s.f;
    (*acc)[1] += s.s0;
    (*acc)[2] += s.s0 * n.u;
    (*acc)[3] -= s.s0 * p[1] * n.u * n.ln_x;
    (*acc)[4] -= s.s0 * p[2] * p[1] * n.u / n.x;
    (*acc)[5] += s.sv;
    (*acc)[6] -= p[4] * s.sl;
    (*acc)[7] -= p[5] * p[4] * s.sq;
    (*acc)[8] += s.s0 * t.u;
    (*acc)[9] -= s.s0 * p[7] * t.u * t.ln_x;
    (*acc)[10] -= s.s0 * p[8] * p[7] * t.u / t.x;
}

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let k = wid.y * WG + lid.x;
    let live = k < batch.k;
    var p: array<f32, 10>;
    for (var i = 0u; i < 10u; i++) {
        p[i] = select(0.0, params[(batch.k_offset + min(k, batch.k - 1u)) * 10u + i], live);
    }
    let e = p[0]; let a = p[1]; let alpha = p[2]; let t1 = p[3];
    let b = p[4]; let beta = p[5]; let t2 = p[6];
    let c = p[7]; let gamma = p[8]; let t3 = p[9];

    var problem = Problem(0u, 0u, 0u, 0u);
    if (WEIGHTED) {
        problem = problems[batch.k_offset + min(k, batch.k - 1u)];
    }
    let weighted = (problem.flags & 1u) != 0u;
    let resample = (problem.flags & 2u) != 0u;

    // Whole-fit accumulators: objective, gradient, undefined points.
    var acc: array<f32, 12>;
    for (var i = 0u; i < 12u; i++) { acc[i] = 0.0; }
    var sums = Sums(0.0, 0.0, 0.0, 0.0, 0.0);
    // Constants of the current configuration.
    var cfg = NO_CONFIG;
    var k_n = Term(1.0, 0.0, 0.0);
    var k_t = Term(1.0, 0.0, 0.0);
    var base = 0.0;
    // The current configuration's weighting: multiplier, end (global
    // index) of its kept points, and the offset from global point index to
    // hash key.
    var mult = 1.0;
    var limit = ALL_POINTS;
    var key_shift = 0u;

    let n_tiles = (chunk.n_points + TILE - 1u) / TILE;
    for (var t = wid.x; t < n_tiles; t += chunk.n_groups) {
        for (var j = lid.x; j < TILE; j += WG) {
            let idx = t * TILE + j;
            if (idx < chunk.n_points) { tile[j] = points[idx]; }
        }
        workgroupBarrier();
        let count = min(TILE, chunk.n_points - t * TILE);
        for (var j = 0u; j < count; j++) {
            let pt = tile[j];
            let pc = bitcast<u32>(pt.w);
            if (pc != cfg) {
                // Close the previous configuration (uniform across the
                // workgroup: every invocation sees the same points).
                close_config(&acc, p, sums, k_n, k_t);
                sums = Sums(0.0, 0.0, 0.0, 0.0, 0.0);
                cfg = pc;
                let nt = configs[pc];
                k_n = term(nt.x + t1, alpha);
                k_t = term(nt.y + t3, gamma);
                base = e + a * k_n.u + c * k_t.u;
                if (WEIGHTED && weighted) {
                    let wc = weightings[problem.base + pc];
                    mult = bitcast<f32>(wc.x);
                    // start + first, saturating: ALL_POINTS keeps them all.
                    let start = bitcast<u32>(nt.z);
                    limit = start + min(wc.y, ALL_POINTS - start);
                    key_shift = bitcast<u32>(nt.w) - start;
                }
            }
            var pw = pt.z;
            if (WEIGHTED && weighted) {
                let gi = chunk.first_point + t * TILE + j;
                var factor = select(0.0, mult, gi < limit);
                if (resample) {
                    factor *= f32(poisson1(point_hash(problem.seed, gi + key_shift)));
                }
                pw *= factor;
            }
            // Points left out (weight 0) add exactly nothing, even where
            // the law overflows (0 * inf); selects rather than a branch
            // keep the loop free of divergent control flow.
            let keep = !WEIGHTED || pw != 0.0;
            let x = pt.x + t2;
            var ok = x > 0.0;
            let lx = log(select(1.0, x, ok));
            let v = exp(-beta * lx);
            let pred = base + b * v;
            var r = pred - pt.y;
            var drdp = 1.0;
            if (chunk.space == 1u) {
                ok = ok && pred > 0.0;
                r = log(select(1.0, pred, ok)) - pt.y;
                drdp = 1.0 / pred;
            }
            var rho = 0.5 * r * r;
            var drho = r;
            if (chunk.loss == 1u) {
                let ar = abs(r);
                let inside = ar <= chunk.delta;
                rho = select(chunk.delta * (ar - 0.5 * chunk.delta), rho, inside);
                drho = select(chunk.delta * sign(r), r, inside);
            }
            // Undefined points are counted and contribute nothing, so the
            // sums stay finite and the host decides what they mean.
            let w = select(0.0, pw, ok);
            acc[11] += select(pw, 0.0, ok);
            let g = w * drho * drdp;
            let gv = g * v;
            sums.f += select(0.0, w * rho, keep);
            sums.s0 += select(0.0, g, keep);
            sums.sv += select(0.0, gv, keep);
            sums.sl += select(0.0, gv * lx, keep);
            sums.sq += select(0.0, gv / x, keep);
        }
        workgroupBarrier();
    }
    close_config(&acc, p, sums, k_n, k_t);
    if (live) {
        let rec = ((chunk.slot_base + wid.x) * chunk.k_stride + k) * RECORD;
        for (var i = 0u; i < RECORD; i++) {
            partials[rec + i] = acc[i];
        }
    }
}
