// Second pass: add up the per-slot partial sums of law.wgsl for every
// start and every one of its RECORD values (objective, gradient, undefined
// weight), with compensated (Kahan) summation so the result does not lose
// accuracy as the number of slots grows.

struct Reduce {
    // Slots (workgroups along x, over all chunks) to add per start.
    n_slots: u32,
    // Stride (in starts) of the partial-sum records.
    k_stride: u32,
    _pad0: u32,
    _pad1: u32,
}

struct Batch {
    k: u32,
    k_offset: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> partials: array<f32>;
@group(0) @binding(1) var<storage, read_write> sums: array<f32>;
@group(0) @binding(2) var<uniform> red: Reduce;
@group(1) @binding(0) var<uniform> batch: Batch;

// Floats per start: set per law (its parameters + 2).
override RECORD: u32;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let idx = gid.x;
    if (idx >= batch.k * RECORD) { return; }
    let k = idx / RECORD;
    let c = idx % RECORD;
    var s = 0.0;
    var comp = 0.0;
    for (var slot = 0u; slot < red.n_slots; slot++) {
        let y = partials[(slot * red.k_stride + k) * RECORD + c] - comp;
        let t = s + y;
        comp = (t - s) - y;
        s = t;
    }
    sums[(batch.k_offset + k) * RECORD + c] = s;
}
