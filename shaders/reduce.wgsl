// Second pass: add up the per-slot partial sums of the law kernels for every
// start and every one of its RECORD values (objective, gradient, undefined
// weight). One workgroup per (value, start): its lanes take every 64th
// slot with compensated (Kahan) sums, then a tree adds the 64 lanes, so a
// sweep split over thousands of workgroups neither loses accuracy nor
// waits on one lane's serial walk over them.

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

const WG: u32 = 64u;

var<workgroup> lanes: array<f32, WG>;

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    // Dispatched as (RECORD, batch.k): every workgroup is in range.
    let c = wid.x;
    let k = wid.y;
    var s = 0.0;
    var comp = 0.0;
    for (var slot = lid.x; slot < red.n_slots; slot += WG) {
        let y = partials[(slot * red.k_stride + k) * RECORD + c] - comp;
        let t = s + y;
        comp = (t - s) - y;
        s = t;
    }
    lanes[lid.x] = s;
    workgroupBarrier();
    for (var w = WG / 2u; w > 0u; w >>= 1u) {
        if (lid.x < w) {
            lanes[lid.x] += lanes[lid.x + w];
        }
        workgroupBarrier();
    }
    if (lid.x == 0u) {
        sums[(batch.k_offset + k) * RECORD + c] = lanes[0];
    }
}
