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
