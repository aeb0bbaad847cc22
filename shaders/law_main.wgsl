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
    //@START

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
    //@CURVE_VARS
    //@AXIS_VARS

    let tiles = row_tiles(wid.y);
    for (var i = wid.x; i < tiles.y; i += chunk.n_groups) {
        let t = load_tile(i, tiles.x, lid.x);
        // Lanes past the batch's end load the tile with the others (for
        // the barriers) and skip its points: where a batch is smaller
        // than the workgroup, whole subgroups of them do no work.
        let count = select(0u, min(TILE, chunk.n_points - t * TILE), live);
        for (var j = 0u; j < count; j++) {
            //@ROW_HEAD
            if (pc != cur) {
                // Close the previous curve and open this one (uniform
                // across the workgroup).
                if (counted) {
                    acc[0] += sum_f;
                    //@CURVE_CLOSE
                }
                cur = pc;
                counted = false;
                sum_f = 0.0;
                ok_curve = true;
                let cb = pc * CS;
                //@CURVE_OPEN
                if (WEIGHTED && weighted) {
                    let wc = weightings[problem.base + pc];
                    mult = bitcast<f32>(wc.x);
                    first_kept = wc.y;
                    curve_start = bitcast<u32>(curves[cb]);
                    curve_key = bitcast<u32>(curves[cb + 1u]);
                }
            }
            //@ROW_CELLS
        }
        workgroupBarrier();
    }
    if (counted) {
        acc[0] += sum_f;
        //@CURVE_CLOSE
    }
    //@AXIS_CLOSE
    //@FINISH
    if (live) {
        write_record(wid.x, k, acc);
    }
}
