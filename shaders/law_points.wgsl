// The points layout: each curve along its own points. The sections below
// are spliced into law_main.wgsl's `main` at the markers of their names,
// one item of a tile being one point.

//@@ ROW_HEAD
// PV vec4s per point: target, weight, curve index as bits, then the
// point's data values.
let q0 = tile[j * PV];
let pc = bitcast<u32>(q0.z);

//@@ ROW_CELLS
var pw = q0.y;
if (WEIGHTED && weighted) {
    let rank = chunk.first_point + t * TILE + j - curve_start;
    pw *= weight_factor(mult, rank, first_kept, resample, problem.seed, curve_key + rank);
}
var ok = ok_start && ok_curve;
//@POINT
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
    //@POINT_BACK
}
