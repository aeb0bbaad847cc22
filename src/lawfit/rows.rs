//! The rows a fit reads: the law's columns of the table, the jobs
//! (`--by` groups, folds) as row sets, and the sweeps and row Jacobians
//! the evaluators are built on.

use super::*;

/// The rows of one fit of a batch: a `--by` group, or an eval fold.
#[derive(Debug, Clone)]
pub(super) struct Group {
    pub(super) key: IndexMap<String, String>,
    /// Rows fitted and rows scored, as table row indices.
    pub(super) train: Vec<usize>,
    pub(super) test: Vec<usize>,
}

impl Group {
    /// "group run=x" or "fold ..." (`whole` when the batch is one plain fit).
    pub(super) fn name(&self, whole: &str) -> String {
        if self.key.is_empty() {
            whole.to_string()
        } else {
            format!("{} {}", self.kind(), key_text(&self.key))
        }
    }

    pub(super) fn kind(&self) -> &'static str {
        if self.key.contains_key("fold") {
            "fold"
        } else {
            "group"
        }
    }
}

/// The data of a fit read from the table.
pub(super) struct Columns {
    /// vars[v][row]
    pub(super) vars: Vec<Vec<f64>>,
    pub(super) loss: Vec<f64>,
    pub(super) weight: Vec<f64>,
}

pub(super) fn read_columns(
    b: &BoundLaw,
    table: &Table,
    obj: &Objective,
) -> anyhow::Result<Columns> {
    let mut vars = Vec::new();
    for (v, &c) in b.columns.iter().enumerate() {
        vars.push(table.numbers(c, b.check(v))?);
    }
    let lc = table.require("loss", "the loss to fit")?;
    let check = if obj.space == Space::Log {
        Check::Positive
    } else {
        Check::Loss
    };
    let loss = table.numbers(lc, check)?;
    if obj.space == Space::Linear {
        // Squared residuals of losses this small underflow: every start
        // would score 0 and the fit be called exact having fitted nothing.
        let largest = loss.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        if !loss.is_empty() && largest < MIN_LINEAR_SCALE {
            bail!(
                "every loss of {} is below {MIN_LINEAR_SCALE:e} in magnitude (the largest is \
                 {largest:e}), where squared residuals underflow in linear space; fit its log \
                 with --space log, or rescale the losses",
                table.path.display()
            );
        }
    }
    let weight = match table.lookup("weight")? {
        Some(c) => {
            let w = table.numbers(c, Check::NonNegative)?;
            check_weight_range(table, &w)?;
            w
        }
        None => vec![1.0; table.rows()],
    };
    Ok(Columns { vars, loss, weight })
}

/// Smallest largest-loss magnitude a fit in linear space takes (the
/// mirror of the largest, `data::MAX_LINEAR_LOSS`).
const MIN_LINEAR_SCALE: f64 = 1e-150;

/// Widest ratio of positive weights: past it the lightest rows add less
/// than the objective's rounding, and a fit would ignore them while
/// reporting itself converged.
const MAX_WEIGHT_RATIO: f64 = 1e15;

fn check_weight_range(table: &Table, w: &[f64]) -> anyhow::Result<()> {
    let positive = || w.iter().enumerate().filter(|(_, &v)| v > 0.0);
    let (Some(hi), Some(lo)) = (
        positive().max_by(|a, b| a.1.total_cmp(b.1)),
        positive().min_by(|a, b| a.1.total_cmp(b.1)),
    ) else {
        return Ok(());
    };
    if !w.iter().sum::<f64>().is_finite() {
        bail!(
            "the weights add up past f64's range ({} has weight {:e}); rescale them",
            table.place(hi.0),
            hi.1
        );
    }
    if hi.1 / lo.1 > MAX_WEIGHT_RATIO {
        bail!(
            "the weights span a ratio of {:.1e} ({} has weight {:e}, {} has {:e}): beyond \
             {MAX_WEIGHT_RATIO:e} the lighter rows add less than rounding to the objective and \
             the fit would ignore them; give rows to leave out weight 0, or rescale",
            hi.1 / lo.1,
            table.place(hi.0),
            hi.1,
            table.place(lo.0),
            lo.1
        );
    }
    Ok(())
}

/// Rows grouped by `--by` and split by `--test-where`.
pub(super) fn groups(
    table: &Table,
    opts: &LawFitOptions,
) -> anyhow::Result<(Vec<Group>, Vec<bool>)> {
    let held: Vec<bool> = match &opts.test_where {
        Some(s) => s.rows(table)?,
        None => vec![false; table.rows()],
    };
    let (keys, group_of) = by_groups(table, &opts.by)?;
    let mut out: Vec<Group> = keys
        .into_iter()
        .map(|key| Group {
            key,
            train: Vec::new(),
            test: Vec::new(),
        })
        .collect();
    for (r, &test) in held.iter().enumerate() {
        let g = &mut out[group_of[r]];
        if test {
            g.test.push(r);
        } else {
            g.train.push(r);
        }
    }
    if let Some(g) = out.iter().find(|g| g.train.is_empty()) {
        let which = if g.key.is_empty() {
            String::new()
        } else {
            format!(" of group {}", key_text(&g.key))
        };
        bail!("every row{which} is selected by --test-where: nothing is left to fit");
    }
    Ok((out, held))
}

/// A group's key: each `--by` column and its first row's text there.
pub(super) type GroupKey = IndexMap<String, String>;

/// The groups of `table`'s rows by the columns `by` (one group without
/// any): each group's key, in the order they first occur, and each row's
/// group.
pub(super) fn by_groups(
    table: &Table,
    by: &[String],
) -> anyhow::Result<(Vec<GroupKey>, Vec<usize>)> {
    let mut by_cols = Vec::new();
    for name in by {
        let c = table.lookup(name)?.ok_or_else(|| {
            anyhow::anyhow!(
                "{}:1: --by column '{name}' is missing; columns found: {}",
                table.path.display(),
                table.found()
            )
        })?;
        if by_cols.contains(&c) {
            bail!("--by names column '{}' twice", table.headers[c]);
        }
        // Grouping by the fitted values makes groups of one row each,
        // every one "fitted" exactly.
        for role in ["loss", "weight"] {
            if table.lookup(role)? == Some(c) {
                bail!(
                    "--by {name}: that is the {role} column, not a label of the rows; group by \
                     a column that labels them (run, N, ...)"
                );
            }
        }
        by_cols.push(c);
    }
    let mut keys: Vec<GroupKey> = Vec::new();
    // Cells group by value as --test-where matches them (1e3 is 1000);
    // a group is labelled by its first row's text.
    let mut index: HashMap<Vec<String>, usize> = HashMap::new();
    let mut group_of = Vec::with_capacity(table.rows());
    for r in 0..table.rows() {
        let cells: Vec<String> = by_cols
            .iter()
            .map(|&c| crate::data::cell_key(&table.columns[c][r]))
            .collect();
        let g = *index.entry(cells).or_insert_with(|| {
            keys.push(
                by_cols
                    .iter()
                    .map(|&c| (table.headers[c].clone(), table.columns[c][r].to_string()))
                    .collect(),
            );
            keys.len() - 1
        });
        group_of.push(g);
    }
    Ok((keys, group_of))
}

pub(super) fn key_text(key: &IndexMap<String, String>) -> String {
    key.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The sweep of every row of `table` as a fit of `b` lays it out for its
/// evaluators (what `bench` times them on).
pub fn table_sweep(b: &BoundLaw, table: &Table, obj: &Objective) -> anyhow::Result<Sweep> {
    let cols = read_columns(b, table, obj)?;
    let rows: Vec<usize> = (0..table.rows()).collect();
    Ok(sweep_of(b, &cols, table, &rows, obj))
}

/// The sweep of `rows`: curves of rows with equal run and equal values of
/// every variable but the axis, on the grid layout when the grid is dense
/// enough, otherwise one curve per row (the point layout).
pub(super) fn sweep_of(
    b: &BoundLaw,
    cols: &Columns,
    table: &Table,
    rows: &[usize],
    obj: &Objective,
) -> Sweep {
    let (order, ranges, axis) = sweep_order(b, cols, table, rows);
    sweep_from(b, cols, &order, ranges, axis, obj, rows)
}

/// The sweep of the rows `order` laid out as [`sweep_order`] says, weights
/// normalised over `rows` (the same rows).
pub(super) fn sweep_from(
    b: &BoundLaw,
    cols: &Columns,
    order: &[usize],
    ranges: Vec<std::ops::Range<usize>>,
    axis: Option<u16>,
    obj: &Objective,
    rows: &[usize],
) -> Sweep {
    let nv = b.columns.len();
    let total: f64 = rows.iter().map(|&r| cols.weight[r]).sum();
    let vars = order
        .iter()
        .flat_map(|&r| (0..nv).map(move |v| cols.vars[v][r]))
        .collect();
    let y = order
        .iter()
        .map(|&r| match obj.space {
            Space::Linear => cols.loss[r],
            Space::Log => cols.loss[r].ln(),
        })
        .collect();
    let w = order.iter().map(|&r| cols.weight[r] / total).collect();
    Sweep::new(nv, ranges, vars, y, w, axis)
}

/// How [`sweep_of`] lays out `rows`: the rows in the sweep's point order,
/// the curves' point ranges and the axis.
pub(super) fn sweep_order(
    b: &BoundLaw,
    cols: &Columns,
    table: &Table,
    rows: &[usize],
) -> (Vec<usize>, Vec<std::ops::Range<usize>>, Option<u16>) {
    if let Some(axis) = b.axis {
        let curves = curves_in(table, &cols.vars, axis, rows, &b.split);
        let mut distinct: Vec<u64> = rows.iter().map(|&r| cols.vars[axis][r].to_bits()).collect();
        distinct.sort_unstable();
        distinct.dedup();
        let duplicate = curves.iter().any(|c| {
            c.windows(2)
                .any(|w| cols.vars[axis][w[0]] == cols.vars[axis][w[1]])
        });
        // Curves along the axis, for the evaluator's grid (when their
        // values are shared densely: it pays for every cell, filled or
        // not) or its point layout (curve terms once per curve), unless
        // the curves are too short for either to gain over a table.
        let dense = !duplicate && curves.len() * distinct.len() <= 4 * rows.len();
        if dense || rows.len() >= 8 * curves.len() {
            let mut ranges = Vec::with_capacity(curves.len());
            let mut order = Vec::with_capacity(rows.len());
            for c in curves {
                let s = order.len();
                order.extend(c);
                ranges.push(s..order.len());
            }
            return (order, ranges, Some(axis as u16));
        }
    }
    let ranges = (0..rows.len()).map(|i| i..i + 1).collect();
    (rows.to_vec(), ranges, None)
}

/// The least-squares evaluator of `rows`: targets in the fitted space,
/// weights normalised as in [`sweep_of`] (so that f is the same
/// objective), derivatives by the free parameters in theta order.
pub(super) fn row_jacobian(
    b: &BoundLaw,
    cols: &Columns,
    rows: &[usize],
    obj: &Objective,
    space: &LawSpace,
) -> RowJacobian {
    row_jacobian_of(b, cols, rows, obj, space.free())
}

/// [`row_jacobian`] with columns for the parameters `wanted`.
pub(super) fn row_jacobian_of(
    b: &BoundLaw,
    cols: &Columns,
    rows: &[usize],
    obj: &Objective,
    wanted: &[usize],
) -> RowJacobian {
    let total: f64 = rows.iter().map(|&r| cols.weight[r]).sum();
    let vars: Vec<Vec<f64>> = cols
        .vars
        .iter()
        .map(|col| rows.iter().map(|&r| col[r]).collect())
        .collect();
    let y: Vec<f64> = rows
        .iter()
        .map(|&r| match obj.space {
            Space::Linear => cols.loss[r],
            Space::Log => cols.loss[r].ln(),
        })
        .collect();
    let w: Vec<f64> = rows.iter().map(|&r| cols.weight[r] / total).collect();
    RowJacobian::new(&b.law, &vars, &y, &w, *obj, wanted)
}

/// Columns that must also be equal along a curve: where rows of one run
/// with equal values of every variable but the axis repeat an axis value
/// (a formula without T on a sweep of T = 1..4 would otherwise join four
/// curves into one that runs back and forth), the one other column (not
/// the law's, not run, loss or weight; fewest distinct values first) that
/// separates them so that no curve repeats an axis value, and is no row
/// id. Empty where no curve repeats one, or no such column separates them
/// (a table of configurations, each its own row, has no curves to
/// recover).
pub(crate) fn split_columns(
    table: &Table,
    vars: &[Vec<f64>],
    var_cols: &[usize],
    axis: usize,
) -> Vec<usize> {
    let all: Vec<usize> = (0..table.rows()).collect();
    let repeating: Vec<Vec<usize>> = curves_in(table, vars, axis, &all, &[])
        .into_iter()
        .filter(|c| c.windows(2).any(|w| vars[axis][w[0]] == vars[axis][w[1]]))
        .collect();
    if repeating.is_empty() {
        return Vec::new();
    }
    let distinct = |c: usize| {
        let mut v: Vec<&str> = table.columns[c].iter().collect();
        v.sort_unstable();
        v.dedup();
        v.len()
    };
    let mut candidates: Vec<usize> = (0..table.headers.len())
        .filter(|c| !var_cols.contains(c))
        .filter(|&c| {
            let h = table.headers[c].to_ascii_lowercase();
            !["run", "loss", "weight"].contains(&h.as_str())
        })
        // A column with a value per row or nearly (an id) labels rows, not
        // curves: splitting by it would leave no curves at all.
        .filter(|&c| 2 * distinct(c) <= table.rows())
        .collect();
    candidates.sort_by_key(|&c| distinct(c));
    // Split by `c`, a curve repeats no axis value.
    let separates = |c: usize| {
        repeating.iter().all(|curve| {
            let mut seen: HashMap<(&str, u64), ()> = HashMap::new();
            curve.iter().all(|&r| {
                let key = (&table.columns[c][r], vars[axis][r].to_bits());
                seen.insert(key, ()).is_none()
            })
        })
    };
    candidates
        .into_iter()
        .find(|&c| separates(c))
        .map_or(Vec::new(), |c| vec![c])
}

/// The curves of `rows`: rows with equal run, equal values of every
/// variable but the axis and equal `split` columns (see [`split_columns`]),
/// in order of first appearance, each sorted along the axis.
pub(super) fn curves_in(
    table: &Table,
    vars: &[Vec<f64>],
    axis: usize,
    rows: &[usize],
    split: &[usize],
) -> Vec<Vec<usize>> {
    let run = table.find("run");
    let mut curves: Vec<Vec<usize>> = Vec::new();
    type Key<'a> = (Option<&'a str>, Vec<u64>, Vec<&'a str>);
    let mut index: HashMap<Key, usize> = HashMap::new();
    // Rows of a curve mostly come together: a row like the one before
    // joins its curve without building and hashing a key.
    let same = |a: usize, b: usize| {
        (0..vars.len()).all(|v| v == axis || vars[v][a].to_bits() == vars[v][b].to_bits())
            && run.is_none_or(|c| table.columns[c][a] == table.columns[c][b])
            && split
                .iter()
                .all(|&c| table.columns[c][a] == table.columns[c][b])
    };
    let mut last: Option<(usize, usize)> = None;
    for &r in rows {
        if let Some((prev, ci)) = last.filter(|&(prev, _)| same(prev, r)) {
            curves[ci].push(r);
            last = Some((prev, ci));
            continue;
        }
        let key: Vec<u64> = (0..vars.len())
            .filter(|&v| v != axis)
            .map(|v| vars[v][r].to_bits())
            .collect();
        let label = run.map(|c| &table.columns[c][r]);
        let parts: Vec<&str> = split.iter().map(|&c| &table.columns[c][r]).collect();
        let ci = *index.entry((label, key, parts)).or_insert_with(|| {
            curves.push(Vec::new());
            curves.len() - 1
        });
        curves[ci].push(r);
        last = Some((r, ci));
    }
    for c in &mut curves {
        c.sort_by(|&x, &y| vars[axis][x].total_cmp(&vars[axis][y]));
    }
    curves
}

/// The curves of every row of `table` along `axis`.
pub(super) fn curves_of(
    table: &Table,
    vars: &[Vec<f64>],
    axis: usize,
    split: &[usize],
) -> Vec<Vec<usize>> {
    let all: Vec<usize> = (0..table.rows()).collect();
    curves_in(table, vars, axis, &all, split)
}

/// Reference point of the linear parameters' terms over `rows`.
pub(super) fn reference(cols: &Columns, rows: &[usize]) -> Vec<f64> {
    polish::reference(&cols.vars, &cols.weight, rows)
}
