// The grid layout: curves x the distinct values of the axis variable, in
// blocks of TA values. A row is one curve's TA cells in one block, and
// rows come block by block: a block's axis nodes (the token term of most
// laws) are computed once per start and value when its first row
// arrives, serve every curve of the block, and have their adjoints summed
// over those curves before they are pushed back. Per cell only the point
// nodes and the loss remain. A curve's own nodes are reopened in each
// block it has points in. The sections below are spliced into
// law_main.wgsl's `main` at the markers of their names, one item of a
// tile being one row. The generator writes the cell body once per value
// of a row (TA times, `$a` the value), so that a block's values and sums
// live in registers.

//@@ ROW_HEAD
// A row's header: its curve and block index as bits.
let head = tile[j * PV];
let pc = bitcast<u32>(head.x);
let pb = bitcast<u32>(head.y);
if (pb != cur_block) {
    // Close the previous block and open this one (uniform across the
    // workgroup).
    //@AXIS_CLOSE
    cur_block = pb;
    //@AXIS_OPEN
}

//@@ ROW_CELLS
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
    // As in the points layout: cells without a point (weight 0) and
    // undefined ones add exactly nothing.
    if (!l.ok) {
        acc[RECORD - 1u] += pw;
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
