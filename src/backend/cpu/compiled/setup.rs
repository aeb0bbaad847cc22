//! The evaluator's construction: the layout's cells and spans, the
//! parallel work groups, the adjoint plan (how each backward edge adds
//! into its node), the fused ln/reciprocal pairs and the data columns.

use super::*;

impl CpuLaw {
    /// `plan` bound to `sweep` in the layout that suits it: without an
    /// axis and with one point per curve, the table; with an axis whose
    /// values the curves share densely (a grid at most [`GRID_FILL`] times
    /// the points, and fewer distinct values than points), the grid; else
    /// each curve along its own points.
    pub fn new(plan: Plan, sweep: &Sweep, objective: Objective) -> Result<CpuLaw, String> {
        CpuLaw::with_layout(plan, sweep, objective, CpuLayout::of(sweep))
    }

    /// `plan` bound to `sweep` in `layout`, or why that layout cannot hold
    /// it. The grid needs an axis, no per-point variable other than it,
    /// and no curve with two points at one axis value; the table needs one
    /// point per curve (every node is then a start or curve node). The
    /// point layout takes any sweep.
    pub fn with_layout(
        plan: Plan,
        sweep: &Sweep,
        objective: Objective,
        layout: CpuLayout,
    ) -> Result<CpuLaw, String> {
        let nc = sweep.curves.len();
        let na = sweep.axis_values.len();
        let separable = Separable::detect(&plan);
        let power = separable
            .as_ref()
            .and_then(|s| PowerTerm::detect(&plan, s, layout));
        let mut pos = Vec::new();
        let (y, w, spans) = match layout {
            CpuLayout::Grid => {
                let a = sweep
                    .axis
                    .ok_or("the grid layout needs an axis variable, and the sweep has none")?;
                let (y, w) = grid_cells(sweep, a as usize)?;
                pos = vec![u32::MAX; nc * na];
                for (c, r) in sweep.curves.iter().enumerate() {
                    for i in r.clone() {
                        pos[c * na + sweep.axis_index[i] as usize] = (i - r.start) as u32;
                    }
                }
                let spans = (0..na)
                    .step_by(TILE)
                    .map(|a0| {
                        let m = TILE.min(na - a0);
                        Span {
                            a0,
                            m,
                            curves: 0..nc,
                            stride: na,
                            base: a0,
                            zero: (0..nc).any(|c| w[c * na + a0..][..m].contains(&0.0)),
                        }
                    })
                    .collect();
                (y, w, spans)
            }
            CpuLayout::Points => {
                // A fused span keeps no arrays: longer spans only save
                // per-span work.
                let len = if power.is_some() { FUSED_SPAN } else { TILE };
                let mut spans = Vec::new();
                for (c, r) in sweep.curves.iter().enumerate() {
                    for a0 in r.clone().step_by(len) {
                        let m = len.min(r.end - a0);
                        spans.push(Span {
                            a0,
                            m,
                            curves: c..c + 1,
                            stride: 0,
                            base: a0,
                            zero: sweep.w[a0..a0 + m].contains(&0.0),
                        });
                    }
                }
                (sweep.y.clone(), sweep.w.clone(), spans)
            }
            CpuLayout::Table => {
                let (y, w) = point_cells(sweep, &plan)?;
                (y, w, Vec::new())
            }
        };
        if sweep.curves.iter().any(|r| r.len() >= u32::MAX as usize) {
            return Err("a curve has 2^32 - 1 points or more".into());
        }
        let n_nodes = plan.graph().len();
        let (data, dslot) = data_columns(&plan, sweep, layout)?;
        let mut cslot = vec![usize::MAX; n_nodes];
        let mut n_cslots = 0;
        for &id in &plan.forward[Class::Curve as usize] {
            cslot[id as usize] = n_cslots;
            n_cslots += 1;
        }
        let mut slot = vec![usize::MAX; n_nodes];
        let mut n_slots = 0;
        for c in [Class::Axis, Class::Point] {
            for &id in &plan.forward[c as usize] {
                slot[id as usize] = n_slots;
                n_slots += 1;
            }
        }
        let fuse = fuse_ln_recip(&plan);
        let (aslot, zero, steps) = adjoint_plan(&plan, &cslot, &slot, layout);
        // What a start keeps between tiles: start values and adjoints, and
        // on the grid its curve arrays and their adjoints.
        let per_start = 2 * n_nodes
            + match layout {
                CpuLayout::Grid | CpuLayout::Points => (2 * n_cslots + 8) * nc,
                CpuLayout::Table => 0,
            };
        let batch = (BATCH_VALUES / per_start.max(1)).clamp(1, MAX_BATCH);
        let target = group_cells(&plan);
        let shape = match layout {
            CpuLayout::Grid => format!(
                "shared axis grid ({nc} curves x {} values)",
                sweep.axis_values.len()
            ),
            CpuLayout::Points => format!("point layout ({} points)", sweep.points()),
            CpuLayout::Table => format!("table layout ({} rows)", sweep.points()),
        };
        Ok(CpuLaw {
            plan,
            n_nodes,
            n_curves: nc,
            data,
            dslot,
            layout,
            cslot,
            n_cslots,
            y,
            w,
            pos,
            groups: groups(layout, &spans, nc, target),
            spans,
            first_point: sweep.curves.iter().map(|r| r.start).collect(),
            shape,
            registered: Vec::new(),
            slot,
            n_slots,
            objective,
            separable,
            power,
            fuse,
            aslot,
            zero,
            steps,
            batch,
            pool: Mutex::new(Vec::new()),
            gn_pool: Mutex::new(Vec::new()),
            gn_fixed: std::sync::OnceLock::new(),
        })
    }
}

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
            let Node::Fn1(Func::Log, x) = g.node(ln) else {
                continue;
            };
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
