//! What the evaluator is built from, besides the layouts' cells: the
//! parallel work groups, the adjoint plan (how each backward edge adds
//! into its node), the fused ln/reciprocal pairs and the data columns.

use super::*;

/// Cells per group for `plan`: at least [`GROUP_CELLS`], and enough that
/// each group's passes over its curves (forward and back, a fixed cost
/// per pass however few the curves) stay small beside its cells.
pub(super) fn group_cells(plan: &Plan) -> usize {
    let passes =
        plan.forward[Class::Curve as usize].len() + plan.edges[Class::Curve as usize].len();
    GROUP_CELLS.max(CELLS_PER_PASS * passes)
}

/// Consecutive spans (table: blocks) of about `target` cells each; one
/// (empty) group for an empty sweep.
pub(super) fn groups(
    layout: CpuLayout,
    spans: &[Span],
    nc: usize,
    target: usize,
) -> Vec<Range<usize>> {
    let sizes: Vec<usize> = match layout {
        CpuLayout::Table => (0..nc).step_by(TILE).map(|c0| TILE.min(nc - c0)).collect(),
        _ => spans.iter().map(|s| s.m * s.curves.len()).collect(),
    };
    let mut groups = Vec::new();
    let (mut first, mut cells) = (0, 0);
    for (i, &n) in sizes.iter().enumerate() {
        cells += n;
        if cells >= target {
            groups.push(first..i + 1);
            (first, cells) = (i + 1, 0);
        }
    }
    if first < sizes.len() || groups.is_empty() {
        groups.push(first..sizes.len());
    }
    groups
}

/// Where each node's adjoint lives, which adjoints start at zero, and how
/// each backward edge applies (see [`Step`]). A node's adjoint that comes
/// from one edge of its own class alone is formed by that edge (or is its
/// consumer's); every other one accumulates into a zeroed array.
#[allow(clippy::type_complexity)]
pub(super) fn adjoint_plan(
    plan: &Plan,
    cslot: &[usize],
    slot: &[usize],
    layout: CpuLayout,
) -> (Vec<usize>, Vec<bool>, [Vec<(Edge, Step)>; 4]) {
    let g = plan.graph();
    let class = &plan.class;
    let value = plan.value();
    let mut incoming = vec![0usize; g.len()];
    for e in plan.edges.iter().flatten() {
        incoming[e.to as usize] += 1;
    }
    let mut aslot: Vec<usize> = (0..g.len())
        .map(|i| match class[i] {
            Class::Curve => cslot[i],
            Class::Axis | Class::Point => slot[i],
            _ => usize::MAX,
        })
        .collect();
    let mut zero: Vec<bool> = incoming.iter().map(|&k| k > 0).collect();
    // The prediction's adjoint is the seed: written by the loss in the
    // point layout, added on the grid.
    zero[value as usize] = layout != CpuLayout::Table && class[value as usize] != Class::Data;
    let mut steps: [Vec<(Edge, Step)>; 4] = Default::default();
    for k in [Class::Curve, Class::Axis, Class::Point] {
        for &e in &plan.edges[k as usize] {
            let (to, from) = (e.to as usize, e.from as usize);
            let step = if class[to] == k && incoming[to] == 1 {
                if g.constant(e.partial) == Some(1.0) {
                    aslot[to] = aslot[from];
                    Step::Alias
                } else {
                    Step::Store
                }
            } else {
                Step::Add
            };
            if step != Step::Add {
                zero[to] = false;
            }
            steps[k as usize].push((e, step));
        }
    }
    (aslot, zero, steps)
}

/// Log and reciprocal pairs to evaluate together (see [`Fuse`]).
pub(super) fn fuse_ln_recip(plan: &Plan) -> Vec<Fuse> {
    let g = plan.graph();
    let mut fuse = vec![Fuse::Alone; g.len()];
    for c in [Class::Curve, Class::Axis, Class::Point] {
        let ids = &plan.forward[c as usize];
        for &ln in ids {
            let Node::Log(x) = g.node(ln) else { continue };
            let recip = ids.iter().copied().find(|&r| match g.node(r) {
                Node::Div(one, d) => d == x && g.constant(one) == Some(1.0),
                _ => false,
            });
            if let Some(recip) = recip {
                // Forward lists are in topological (index) order.
                let (first, second) = (ln.min(recip), ln.max(recip));
                fuse[first as usize] = Fuse::LnRecip { ln, recip };
                fuse[second as usize] = Fuse::Done;
            }
        }
    }
    fuse
}

/// The data nodes' values as columns (one per node, with the node's slot
/// in them): per curve, per distinct axis value, or per grid cell (NaN in
/// empty cells) by the node's level.
pub(super) fn data_columns(
    plan: &Plan,
    sweep: &Sweep,
    layout: CpuLayout,
) -> Result<(Vec<Vec<f64>>, Vec<usize>), String> {
    let dv = plan.data(sweep, None);
    let (nc, na) = (sweep.curves.len(), sweep.axis_values.len());
    let mut dslot = vec![usize::MAX; plan.graph().len()];
    let mut cols = Vec::new();
    for &id in &plan.forward[Class::Data as usize] {
        let col = match (layout, plan.level[id as usize]) {
            (_, Class::Curve) => (0..nc).map(|c| dv.get(Class::Curve, c, id)).collect(),
            (CpuLayout::Grid, Class::Axis) => (0..na).map(|a| dv.get(Class::Axis, a, id)).collect(),
            (CpuLayout::Grid, _) => {
                let mut col = vec![f64::NAN; nc * na];
                for (c, r) in sweep.curves.iter().enumerate() {
                    for i in r.clone() {
                        col[c * na + sweep.axis_index[i] as usize] = dv.get(Class::Point, i, id);
                    }
                }
                col
            }
            (CpuLayout::Points, Class::Axis) => (0..sweep.points())
                .map(|i| dv.get(Class::Axis, sweep.axis_index[i] as usize, id))
                .collect(),
            (CpuLayout::Points, _) => (0..sweep.points())
                .map(|i| dv.get(Class::Point, i, id))
                .collect(),
            // Only a plan made for another sweep could have them.
            (CpuLayout::Table, _) => {
                return Err(
                    "the plan has per-point nodes, which one-point curves do not have".into(),
                )
            }
        };
        dslot[id as usize] = cols.len();
        cols.push(col);
    }
    Ok((cols, dslot))
}
