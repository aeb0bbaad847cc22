// The grid layout: curves x the distinct values of the axis variable, in
// blocks of TA values (see law_common.wgsl). A row is one curve's TA
// cells in one block, and rows come block by block: a block's axis nodes
// (the token term of most laws) are computed once per start and value
// when its first row arrives, serve every curve of the block, and have
// their adjoints summed over those curves before they are pushed back.
// Per cell only the point nodes and the loss remain. A curve's own nodes
// are reopened in each block it has points in. The generator writes the
// cell body below once per value of a row (TA times, `$a` the value), so
// that a block's values and sums live in registers.

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
    // multiplier and points kept.
    var cur = NO_CURVE;
    var ok_curve = true;
    var counted = false;
    var sum_f = 0.0;
    var mult = 1.0;
    var first_kept = ALL_POINTS;
    //@CURVE_VARS
    // The current block, and per value of it whether its axis nodes are
    // defined (okx) and whether any of its cells counted (tk).
    var cur_block = NO_CURVE;
    //@AXIS_VARS

    let tiles = row_tiles(wid.y);
    for (var i = wid.x; i < tiles.y; i += chunk.n_groups) {
        let t = load_tile(i, tiles.x, lid.x);
        let count = min(TILE, chunk.n_points - t * TILE);
        for (var j = 0u; j < count; j++) {
            let head = tile[j * PV];
            let pc = bitcast<u32>(head.x);
            let pb = bitcast<u32>(head.y);
            if (pb != cur_block) {
                // Close the previous block and open this one (uniform
                // across the workgroup).
                //@AXIS_CLOSE
                cur_block = pb;
                //@AXIS_OPEN
            }
            if (pc != cur) {
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
                }
            }
            //@CELL_BEGIN
            {
                let q = tile[j * PV + 1u + $au * CV];
                var pw = q.y;
                if (WEIGHTED && weighted) {
                    pw *= weight_factor(mult, bitcast<u32>(q.w), first_kept, resample, problem.seed, bitcast<u32>(q.z));
                }
                var ok = ok_start && ok_curve && okx$a;
                //@POINT
                let l = loss(pred, q.x, ok);
                // As in the points layout: cells without a point (weight
                // 0) and undefined ones add exactly nothing.
                if (!l.ok) {
                    acc[NP + 1u] += pw;
                }
                if (l.ok && pw != 0.0) {
                    counted = true;
                    tk$a = true;
                    sum_f += pw * l.rho;
                    let seed = pw * l.drho;
                    //@POINT_BACK
                }
            }
            //@CELL_END
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
