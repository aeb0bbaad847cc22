//! Fitting any compiled law to a table: bind the law's variables to
//! columns, split off the `--test-where` rows, group by `--by`, draw the
//! starts (non-linear parameters drawn, linear ones solved by least
//! squares), run every group's starts as problems of one lockstep batch,
//! and score the result.
//!
//! On the CPU, least squares (mse) runs Levenberg-Marquardt on the row
//! Jacobian, except on curves sharing an axis grid, where it runs L-BFGS
//! on the grid evaluator as other losses do (see `batch::method`). Given a
//! GPU ([`LawFitOptions::device`]), every loss runs L-BFGS on the law's
//! generated kernel, all starts of a group per dispatch; either way each
//! group's best start is then polished in f64 on the CPU.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use indexmap::IndexMap;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

use crate::backend::gpu::{evaluate_all, GpuDevice, GpuLaw, Job};
use crate::backend::jacobian::{RowJacobian, Workspace};
use crate::backend::weights::Resolved;
use crate::backend::{CompiledGrid, CpuLayout};
use crate::data::{Check, Selector, Table};
use crate::law::dag::{Node, NodeId};
use crate::law::params::{rules, ParamRule, Transform};
use crate::law::plan::{Plan, Sweep};
use crate::law::space::LawSpace;
use crate::law::{CompiledLaw, LawFile};
use crate::objective::{LossKind, Objective, Space};
use crate::optim::{self, BatchObjective, Outcome, Progress, Status};
use crate::polish::{self, LeastSquares, Polished};
use crate::profile::ProfileRequest;
mod batch;
mod binding;
mod bootstrap;
mod eval;
mod plot;
mod predict;
mod simulate;
mod space;
mod starts;

use batch::{fit_jobs, Batch, Data, JobFit};
pub use binding::{BindOptions, Binding};
pub use bootstrap::{bootstrap, Fitted};
pub use eval::{combinations, evaluate, LawEvalOptions, LawEvalOutput, Protocol, MAX_FOLDS};
pub use plot::{fold_panels, panels};
pub use predict::{extrapolation_warnings, predict_rows, read_law_fit, LawFit};
pub use simulate::{simulate, LawSimulation, Simulated, Truth};
use space::law_space;

use crate::identify::{self, Identifiability};
use crate::report::{
    BackendReport, CurveMetrics, GroupReport, LawFitReport, ObjectiveReport, PolishReport,
    SetMetrics, StartsReport, TestReport,
};

/// Starts per fit when `--starts` is not given.
pub const DEFAULT_STARTS: usize = 128;

/// A start reached the best objective when within this of it (relative).
pub const AT_BEST_RTOL: f64 = 1e-6;

#[derive(Debug, Clone)]
pub struct LawFitOptions {
    pub objective: Objective,
    /// User-fixed parameters: (name, value).
    pub fix: Vec<(String, f64)>,
    pub starts: usize,
    pub seed: u64,
    pub lbfgs: optim::Options,
    /// Fit every group of rows with equal values in these columns on its own.
    pub by: Vec<String>,
    /// Rows held out of the fit and scored.
    pub test_where: Option<Selector>,
    /// Profile-likelihood intervals to compute at the optimum.
    pub profile: Option<ProfileRequest>,
    /// Evaluate on this GPU (None: the CPU).
    pub device: Option<Arc<GpuDevice>>,
}

impl Default for LawFitOptions {
    /// A plain fit: mse in linear space from the default starts, on the CPU.
    fn default() -> Self {
        LawFitOptions {
            objective: Objective::default(),
            fix: Vec::new(),
            starts: DEFAULT_STARTS,
            seed: 0,
            lbfgs: optim::Options::default(),
            by: Vec::new(),
            test_where: None,
            profile: None,
            device: None,
        }
    }
}

/// A law bound to the columns of a table.
#[derive(Debug, Clone)]
pub struct BoundLaw {
    pub file: LawFile,
    /// The law file's text as given (for a bare formula, a minimal file).
    pub text: String,
    pub law: CompiledLaw,
    /// Table column of every variable.
    pub columns: Vec<usize>,
    /// The variable curves run along, when the law names one.
    pub axis: Option<usize>,
    /// Other columns that split curves (see [`split_columns`]).
    pub split: Vec<usize>,
    /// Which names read which columns, and which are parameters.
    pub binding: Binding,
    /// Something about the binding the user should hear.
    pub warning: Option<String>,
}

/// Bind `file` to `table` (see [`binding`] for the rule): every variable
/// to a column, every other name a parameter. A bare formula whose
/// parameters look like an unbound variable while the table has numeric
/// columns it does not read is refused. A variable the table has no
/// column for but the file gives a default is added to the table as a
/// column of that value.
pub fn bind(
    file: LawFile,
    text: &str,
    origin: &str,
    table: &mut Table,
    opts: &BindOptions,
) -> anyhow::Result<BoundLaw> {
    let bare = file.variables.is_empty();
    binding::fill_defaults(&file, table, opts)?;
    let table = &*table;
    let (mut file, mut binding) = binding::resolve(file, origin, table, opts)?;
    binding.axis = if let Some(a) = &opts.axis {
        if !file.variables.contains_key(a) {
            bail!(
                "--axis {a}: not a variable of the law (its variables: {})",
                file.variables
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        file.axis = Some(a.clone());
        Some((a.clone(), "--axis".to_string()))
    } else if let Some(a) = &file.axis {
        Some((a.clone(), "the law's axis".to_string()))
    } else if bare {
        let guess = guess_axis(&file, table);
        file.axis = guess.as_ref().map(|(a, _)| a.clone());
        guess.map(|(a, density)| {
            let why = format!(
                "chosen: the variable whose values the curves share best, their grid {:.0}% \
                 full; --axis VAR chooses another",
                100.0 * density
            );
            (a, why)
        })
    } else {
        None
    };
    let mut columns = Vec::new();
    for col in file.variables.values() {
        columns.push(table.find(col).expect("a column the binding found"));
    }
    let law = file.compile(origin)?;
    binding.params = law.params.clone();
    let warning = if bare {
        binding::check_unbound(&law, &file, table, opts)?
    } else {
        None
    };
    let axis = file
        .axis
        .as_ref()
        .and_then(|a| law.variables.iter().position(|v| v == a));
    let split = match axis {
        Some(a) => {
            let vars = columns
                .iter()
                .map(|&c| table.numbers(c, Check::Finite))
                .collect::<Result<Vec<_>, _>>();
            // Unreadable values are reported when the columns are read.
            vars.map_or(Vec::new(), |v| split_columns(table, &v, &columns, a))
        }
        None => Vec::new(),
    };
    binding.split = split.iter().map(|&c| table.headers[c].clone()).collect();
    Ok(BoundLaw {
        file,
        text: text.to_string(),
        law,
        columns,
        axis,
        split,
        binding,
        warning,
    })
}

/// For a bare formula: the variable its curves run along. Each candidate
/// makes curves of the rows with equal run and equal other variables; the
/// one whose curves share their values best (the densest grid of curves x
/// distinct values, as tokens logged at the same steps) is the axis, if
/// that grid is at least a quarter full. Otherwise there is none, and every
/// row is evaluated on its own.
fn guess_axis(file: &LawFile, table: &Table) -> Option<(String, f64)> {
    let mut vars = Vec::new();
    let mut var_cols = Vec::new();
    for col in file.variables.values() {
        let c = table.find(col)?;
        vars.push(table.numbers(c, Check::Finite).ok()?);
        var_cols.push(c);
    }
    let rows: Vec<usize> = (0..table.rows()).collect();
    let mut best: Option<(f64, usize)> = None;
    for v in 0..vars.len() {
        let split = split_columns(table, &vars, &var_cols, v);
        let curves = curves_in(table, &vars, v, &rows, &split);
        // A variable constant along every curve runs along nothing.
        if curves.iter().all(|c| c.len() == 1) {
            continue;
        }
        let mut distinct: Vec<u64> = vars[v].iter().map(|x| x.to_bits()).collect();
        distinct.sort_unstable();
        distinct.dedup();
        // Repeated values within a curve (duplicates) do not fill it more.
        let density = (rows.len() as f64 / (curves.len() * distinct.len()) as f64).min(1.0);
        if density >= 0.25 && best.is_none_or(|(d, _)| density > d) {
            best = Some((density, v));
        }
    }
    best.map(|(density, v)| {
        let name = file.variables.keys().nth(v).expect("an index of variables");
        (name.clone(), density)
    })
}

/// The rows of one fit of a batch: a `--by` group, or an eval fold.
#[derive(Debug, Clone)]
struct Group {
    key: IndexMap<String, String>,
    /// Rows fitted and rows scored, as table row indices.
    train: Vec<usize>,
    test: Vec<usize>,
}

impl Group {
    /// "group run=x" or "fold ..." (`whole` when the batch is one plain fit).
    fn name(&self, whole: &str) -> String {
        if self.key.is_empty() {
            whole.to_string()
        } else {
            format!("{} {}", self.kind(), key_text(&self.key))
        }
    }

    fn kind(&self) -> &'static str {
        if self.key.contains_key("fold") {
            "fold"
        } else {
            "group"
        }
    }
}

/// A finished fit: the report and every row's prediction.
#[derive(Debug, Clone)]
pub struct LawFitOutput {
    pub report: LawFitReport,
    /// Per table row: prediction, and whether it was held out.
    pub pred: Vec<f64>,
    pub held_out: Vec<bool>,
    /// Per table row: the loss read.
    pub loss: Vec<f64>,
    /// Per fit (the plain fit, or each group in `report.groups` order): the
    /// rows it was fitted to and its best parameters.
    pub fits: Vec<Fitted>,
    /// Every start's parameters (the law's order), fit by fit, `starts` of
    /// each.
    pub starts: Vec<Vec<f64>>,
}

/// One job's objective: the compiled law on the CPU, or its generated
/// kernel on the GPU.
enum Evaluator {
    Cpu(Box<CompiledGrid>),
    Gpu(Box<GpuLaw>),
}

/// Per problem, which group's evaluator runs it.
struct Problems<'a> {
    space: &'a LawSpace,
    grids: &'a mut [Evaluator],
    group_of: &'a [usize],
    /// Per problem, which weighting of its evaluator weighs it (bootstrap
    /// replicates); `None` when all keep their sweep's own weights.
    weighted: Option<Weighted<'a>>,
}

/// The weightings of a batch's problems (see [`Problems::weighted`]).
#[derive(Clone, Copy)]
struct Weighted<'a> {
    /// Per problem, an index into its evaluator's weightings.
    which: &'a [u32],
    /// Per evaluator, its weightings, resolved against its sweep (the
    /// GPU's are registered on it too).
    resolved: &'a [Vec<Resolved>],
}

impl BatchObjective for Problems<'_> {
    fn dim(&self) -> usize {
        self.space.dim()
    }

    fn bounds(&self) -> (Vec<f64>, Vec<f64>) {
        self.space.bounds()
    }

    fn evaluate(
        &mut self,
        ids: &[usize],
        xs: &[f64],
        f: &mut [f64],
        g: &mut [f64],
    ) -> anyhow::Result<()> {
        let (m, np) = (self.space.dim(), self.space.n_params());
        let params: Vec<Vec<f64>> = (0..ids.len())
            .into_par_iter()
            .map(|k| self.space.to_params(&xs[k * m..(k + 1) * m]))
            .collect();
        let mut gp = vec![0.0; ids.len() * np];
        // Problems of one group go to its evaluator in one call; the GPU
        // groups all in one submission.
        let mut by_group: Vec<Vec<usize>> = vec![Vec::new(); self.grids.len()];
        for (k, &id) in ids.iter().enumerate() {
            by_group[self.group_of[id]].push(k);
        }
        let flats: Vec<Vec<f64>> = by_group
            .iter()
            .map(|ks| ks.iter().flat_map(|&k| params[k].iter().copied()).collect())
            .collect();
        let mut fo: Vec<Vec<f64>> = by_group.iter().map(|ks| vec![0.0; ks.len()]).collect();
        let mut go: Vec<Vec<f64>> = by_group.iter().map(|ks| vec![0.0; ks.len() * np]).collect();
        let mut gpu_jobs = Vec::new();
        for (gi, (((grid, flat), fo), go)) in self
            .grids
            .iter_mut()
            .zip(&flats)
            .zip(&mut fo)
            .zip(&mut go)
            .enumerate()
        {
            if flat.is_empty() {
                continue;
            }
            if let Some(w) = self.weighted {
                // Weighted problems run evaluator by evaluator (a bootstrap
                // has one per fit, mostly one).
                let which: Vec<u32> = by_group[gi].iter().map(|&k| w.which[ids[k]]).collect();
                match grid {
                    Evaluator::Cpu(grid) => {
                        grid.evaluate_weighted(flat, &which, &w.resolved[gi], fo, go)?
                    }
                    Evaluator::Gpu(law) => law.evaluate_weighted(flat, &which, fo, go)?,
                }
                continue;
            }
            match grid {
                Evaluator::Cpu(grid) => grid.evaluate(flat, fo, go),
                Evaluator::Gpu(law) => gpu_jobs.push(Job {
                    law,
                    params: flat,
                    f: fo,
                    g: go,
                }),
            }
        }
        evaluate_all(&mut gpu_jobs)?;
        drop(gpu_jobs);
        for (gi, ks) in by_group.iter().enumerate() {
            for (j, &k) in ks.iter().enumerate() {
                f[k] = fo[gi][j];
                gp[k * np..(k + 1) * np].copy_from_slice(&go[gi][j * np..(j + 1) * np]);
            }
        }
        g.par_chunks_mut(m).enumerate().for_each(|(k, gk)| {
            self.space
                .grad_to_theta(&params[k], &gp[k * np..(k + 1) * np], gk)
        });
        Ok(())
    }
}

/// The data of a fit read from the table.
struct Columns {
    /// vars[v][row]
    vars: Vec<Vec<f64>>,
    loss: Vec<f64>,
    weight: Vec<f64>,
}

fn read_columns(b: &BoundLaw, table: &Table, obj: &Objective) -> anyhow::Result<Columns> {
    let mut vars = Vec::new();
    for &c in &b.columns {
        vars.push(table.numbers(c, Check::Finite)?);
    }
    let lc = table.require("loss", "the loss to fit")?;
    let check = if obj.space == Space::Log {
        Check::Positive
    } else {
        Check::Loss
    };
    let loss = table.numbers(lc, check)?;
    let weight = match table.lookup("weight")? {
        Some(c) => table.numbers(c, Check::NonNegative)?,
        None => vec![1.0; table.rows()],
    };
    Ok(Columns { vars, loss, weight })
}

/// Rows grouped by `--by` and split by `--test-where`.
fn groups(table: &Table, opts: &LawFitOptions) -> anyhow::Result<(Vec<Group>, Vec<bool>)> {
    let held: Vec<bool> = match &opts.test_where {
        Some(s) => s.rows(table)?,
        None => vec![false; table.rows()],
    };
    let mut by_cols = Vec::new();
    for name in &opts.by {
        let c = table.lookup(name)?.ok_or_else(|| {
            anyhow::anyhow!(
                "{}:1: --by column '{name}' is missing; columns found: {}",
                table.path.display(),
                table.found()
            )
        })?;
        by_cols.push(c);
    }
    let mut out: Vec<Group> = Vec::new();
    // Cells group by value as --test-where matches them (1e3 is 1000);
    // a group is labelled by its first row's text.
    let mut index: HashMap<Vec<String>, usize> = HashMap::new();
    for (r, &test) in held.iter().enumerate() {
        let key: Vec<String> = by_cols
            .iter()
            .map(|&c| crate::data::cell_key(&table.columns[c][r]))
            .collect();
        let gi = *index.entry(key).or_insert_with(|| {
            out.push(Group {
                key: by_cols
                    .iter()
                    .map(|&c| (table.headers[c].clone(), table.columns[c][r].clone()))
                    .collect(),
                train: Vec::new(),
                test: Vec::new(),
            });
            out.len() - 1
        });
        if test {
            out[gi].test.push(r);
        } else {
            out[gi].train.push(r);
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

fn key_text(key: &IndexMap<String, String>) -> String {
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
fn sweep_of(b: &BoundLaw, cols: &Columns, table: &Table, rows: &[usize], obj: &Objective) -> Sweep {
    let (order, ranges, axis) = sweep_order(b, cols, table, rows);
    sweep_from(b, cols, &order, ranges, axis, obj, rows)
}

/// The sweep of the rows `order` laid out as [`sweep_order`] says, weights
/// normalised over `rows` (the same rows).
fn sweep_from(
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
fn sweep_order(
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
fn row_jacobian(
    b: &BoundLaw,
    cols: &Columns,
    rows: &[usize],
    obj: &Objective,
    space: &LawSpace,
) -> RowJacobian {
    row_jacobian_of(b, cols, rows, obj, space.free())
}

/// [`row_jacobian`] with columns for the parameters `wanted`.
fn row_jacobian_of(
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
        let mut v: Vec<&str> = table.columns[c].iter().map(String::as_str).collect();
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
                let key = (table.columns[c][r].as_str(), vars[axis][r].to_bits());
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
fn curves_in(
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
        let label = run.map(|c| table.columns[c][r].as_str());
        let parts: Vec<&str> = split
            .iter()
            .map(|&c| table.columns[c][r].as_str())
            .collect();
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
fn curves_of(table: &Table, vars: &[Vec<f64>], axis: usize, split: &[usize]) -> Vec<Vec<usize>> {
    let all: Vec<usize> = (0..table.rows()).collect();
    curves_in(table, vars, axis, &all, split)
}

/// Reference point of the linear parameters' terms over `rows`.
fn reference(cols: &Columns, rows: &[usize]) -> Vec<f64> {
    polish::reference(&cols.vars, &cols.weight, rows)
}

/// Where the law is not finite: the first row and the smallest
/// sub-expression there that is not, as text.
fn non_finite_site(
    b: &BoundLaw,
    cols: &Columns,
    rows: &[usize],
    p: &[f64],
    table: &Table,
) -> Option<String> {
    let law = &b.law;
    let mut point = vec![0.0; cols.vars.len()];
    let mut buf = Vec::new();
    let mut first = None;
    let mut bad_rows = Vec::new();
    for &r in rows {
        for (v, col) in cols.vars.iter().enumerate() {
            point[v] = col[r];
        }
        law.graph.eval_all(law.value, &point, p, &mut buf);
        if buf[law.value as usize].is_finite() {
            continue;
        }
        bad_rows.push(r);
        if first.is_some() {
            continue;
        }
        let Some(bad) = (0..=law.value).find(|&id| !buf[id as usize].is_finite()) else {
            continue;
        };
        let at: Vec<String> = law
            .variables
            .iter()
            .zip(&point)
            .map(|(n, v)| format!("{n} = {v}"))
            .collect();
        first = Some(format!(
            "at {} ({}), {} is {}",
            table.place(r),
            at.join(", "),
            show(law, bad),
            buf[bad as usize]
        ));
    }
    let mut site = first?;
    // Which rows, and what they share: rows at tokens = 0 under B/D^beta
    // are dropped with a filter, not fixed by the start ranges.
    let shared: Vec<(usize, f64)> = (0..cols.vars.len())
        .filter_map(|v| {
            let x = cols.vars[v][bad_rows[0]];
            bad_rows
                .iter()
                .all(|&r| cols.vars[v][r].to_bits() == x.to_bits())
                .then_some((v, x))
        })
        .filter(|&(_, x)| x == 0.0)
        .collect();
    site.push_str(&format!(
        "; {} of the {} rows are not finite there",
        bad_rows.len(),
        rows.len()
    ));
    if let Some(&(v, _)) = shared.first() {
        let name = &law.variables[v];
        let col = b
            .file
            .variables
            .get(name)
            .map_or(name.as_str(), String::as_str);
        let filter = if col.eq_ignore_ascii_case("tokens") {
            " (--min-tokens 1 for the tokens column, or a filter of the data)"
        } else {
            " (a filter of the data)"
        };
        site.push_str(&format!(
            ", all with {name} = 0: drop those rows{filter}, or give the law an offset \
             ({name} + t)"
        ));
    }
    Some(site)
}

/// A node as formula text (sub-expressions beyond a depth elided).
fn show(law: &CompiledLaw, id: NodeId) -> String {
    law.graph.expr(id, &law.variables, &law.params, 7)
}

/// What a job's polished optimum says: how far it converged, and what the
/// data determine there.
fn optimum_reports(
    data: Data,
    space: &LawSpace,
    g: &Group,
    fit: &JobFit,
    objective: &Objective,
) -> (PolishReport, Identifiability) {
    let Data { b, cols, .. } = data;
    let p = &fit.polished;
    let polish = PolishReport {
        grad_norm: p.grad_norm,
        newton_steps: p.steps,
        converged: p.grad_norm <= polish::GRAD_TOL,
    };
    let rows = row_jacobian(b, cols, &g.train, objective, space);
    let distinct = polish::distinct_values(&b.law.variables, &cols.vars, &g.train);
    let c = polish::curvature(&b.law, space, &rows, p, *objective, distinct);
    (polish, identify::analyse(&c))
}

/// A note naming the groups whose polish did not converge, if any.
fn unconverged(reports: &[GroupReport]) -> Option<String> {
    let names: Vec<String> = reports
        .iter()
        .filter(|g| g.polish.is_some_and(|p| !p.converged))
        .map(|g| key_text(&g.key))
        .collect();
    (!names.is_empty()).then(|| {
        format!(
            "the optimum of {} of {} groups did not converge to grad_norm 1e-6 ({})",
            names.len(),
            reports.len(),
            names.join("; ")
        )
    })
}

/// Predict `rows` with `params` into `pred`.
fn predict_into(b: &BoundLaw, cols: &Columns, params: &[f64], rows: &[usize], pred: &mut [f64]) {
    let mut point = vec![0.0; cols.vars.len()];
    for &r in rows {
        for (v, col) in cols.vars.iter().enumerate() {
            point[v] = col[r];
        }
        pred[r] = b.law.eval(&point, params);
    }
}

/// The metrics of the fitted `rows`: [`set_metrics`], and per curve where
/// the rows form curves along the law's axis.
fn fit_metrics(
    b: &BoundLaw,
    table: &Table,
    cols: &Columns,
    pred: &[f64],
    rows: &[usize],
    space: Space,
) -> SetMetrics {
    let mut m = set_metrics(cols, pred, rows, space);
    let Some(axis) = b.axis else {
        return m;
    };
    let curves = curves_in(table, &cols.vars, axis, rows, &b.split);
    if curves.iter().all(|c| c.len() <= 1) {
        return m;
    }
    let mut label_cols: Vec<usize> = table.find("run").into_iter().collect();
    for &c in &b.split {
        if !label_cols.contains(&c) {
            label_cols.push(c);
        }
    }
    m.per_curve = curves
        .iter()
        .map(|c| {
            let first = c[0];
            let loss: Vec<f64> = c.iter().map(|&r| cols.loss[r]).collect();
            let pr: Vec<f64> = c.iter().map(|&r| pred[r]).collect();
            let all = SetMetrics::new(&loss, &pr);
            let along = c.iter().map(|&r| cols.vars[axis][r]);
            CurveMetrics {
                labels: label_cols
                    .iter()
                    .map(|&k| (table.headers[k].clone(), table.columns[k][first].clone()))
                    .collect(),
                at: (0..cols.vars.len())
                    .filter(|&v| v != axis)
                    .map(|v| (b.law.variables[v].clone(), cols.vars[v][first]))
                    .collect(),
                points: c.len(),
                axis: [
                    along.clone().fold(f64::INFINITY, f64::min),
                    along.fold(f64::NEG_INFINITY, f64::max),
                ],
                r2: all.r2,
                rmse: all.rmse,
                mape: all.mape,
            }
        })
        .collect();
    m
}

/// The metrics of `rows`, with the log-space ones for `--space log` fits.
fn set_metrics(cols: &Columns, pred: &[f64], rows: &[usize], space: Space) -> SetMetrics {
    let loss: Vec<f64> = rows.iter().map(|&r| cols.loss[r]).collect();
    let pr: Vec<f64> = rows.iter().map(|&r| pred[r]).collect();
    SetMetrics {
        log: (space == Space::Log)
            .then(|| crate::report::LogMetrics::new(&loss, &pr))
            .flatten(),
        ..SetMetrics::new(&loss, &pr)
    }
}

fn status_counts(outcomes: &[Outcome]) -> IndexMap<String, usize> {
    Status::ENDED
        .iter()
        .map(|s| {
            (
                s.name().to_string(),
                outcomes.iter().filter(|o| o.status == *s).count(),
            )
        })
        .collect()
}

/// What evaluates a law fit with `opts`.
fn backend_report(opts: &LawFitOptions) -> BackendReport {
    match &opts.device {
        Some(dev) => BackendReport {
            kind: "gpu".into(),
            device: format!("{}, f32, generated law kernel", dev.summary().short()),
        },
        None => cpu_report(),
    }
}

fn cpu_report() -> BackendReport {
    BackendReport {
        kind: "cpu".into(),
        device: format!(
            "{} threads, f64, compiled law",
            rayon::current_num_threads()
        ),
    }
}

/// A report with nothing fitted yet: the law's identity only.
fn empty_report(b: &BoundLaw) -> LawFitReport {
    LawFitReport {
        law: b.file.name.clone(),
        law_file: b.text.clone(),
        formula: b.file.formula.clone(),
        variables: b.file.variables.clone(),
        ranges: IndexMap::new(),
        params: IndexMap::new(),
        fixed: Vec::new(),
        objective: ObjectiveReport {
            loss: String::new(),
            space: String::new(),
            delta: 0.0,
            value: f64::NAN,
        },
        metrics: SetMetrics::default(),
        test: None,
        by: Vec::new(),
        groups: Vec::new(),
        starts: StartsReport {
            count: 0,
            at_best: 0,
            status_counts: IndexMap::new(),
            iterations: 0,
            evaluations: 0,
            start_evaluations: 0,
        },
        backend: cpu_report(),
        seconds: 0.0,
        points: 0,
        notes: Vec::new(),
        polish: None,
        identifiability: None,
        profile: None,
        bootstrap: None,
    }
}

/// Fit `b` to `table`.
pub fn fit_table(
    b: &BoundLaw,
    table: &Table,
    opts: &LawFitOptions,
    progress: impl FnMut(Progress),
) -> anyhow::Result<LawFitOutput> {
    let started = Instant::now();
    if opts.starts == 0 {
        bail!("--starts must be at least 1");
    }
    if opts.profile.is_some() && !opts.by.is_empty() {
        bail!("--profile works on one fit at a time, not with --by");
    }
    let cols = read_columns(b, table, &opts.objective)?;
    let (groups, held) = groups(table, opts)?;
    let law = &b.law;
    // fit.json says what the reader skipped, then how the law was read,
    // as stderr did.
    let mut notes = table.notes.clone();
    notes.push(b.binding.describe());
    notes.extend(b.warning.clone());
    let all_train: Vec<usize> = (0..table.rows()).filter(|&r| !held[r]).collect();
    let (space, constants) = law_space(b, &cols, &all_train, &opts.fix)?;
    notes.extend(constants);
    let Batch {
        fits,
        outcomes,
        calls,
        starts,
    } = fit_jobs(
        Data {
            b,
            table,
            cols: &cols,
        },
        &space,
        &groups,
        opts,
        None,
        progress,
    )?;

    let mut pred = vec![f64::NAN; table.rows()];
    let mut reports = Vec::new();
    let mut objective_sum = 0.0;
    let data = Data {
        b,
        table,
        cols: &cols,
    };
    for (g, fit) in groups.iter().zip(&fits) {
        let (polish, identifiability) = optimum_reports(data, &space, g, fit, &opts.objective);
        predict_into(b, &cols, &fit.params, &g.train, &mut pred);
        predict_into(b, &cols, &fit.params, &g.test, &mut pred);
        if let Some(&r) = g.train.iter().find(|&&r| !pred[r].is_finite()) {
            bail!(
                "the best fit predicts {} at {}: the law overflows there",
                pred[r],
                table.place(r)
            );
        }
        objective_sum += fit.objective * g.train.len() as f64;
        reports.push(GroupReport {
            key: g.key.clone(),
            params: law
                .params
                .iter()
                .cloned()
                .zip(fit.params.iter().copied())
                .collect(),
            objective: fit.objective,
            at_best: fit.at_best,
            metrics: fit_metrics(b, table, &cols, &pred, &g.train, opts.objective.space),
            test: (!g.test.is_empty())
                .then(|| set_metrics(&cols, &pred, &g.test, opts.objective.space)),
            polish: Some(polish),
            identifiability: Some(identifiability),
            bootstrap: None,
        });
    }
    let rows_of =
        |test: bool| -> Vec<usize> { (0..table.rows()).filter(|&r| held[r] == test).collect() };
    let train_rows = rows_of(false);
    let test = opts.test_where.as_ref().map(|s| TestReport {
        protocol: "test-where".into(),
        selector: format!("{}={}", s.column, s.value),
        metrics: set_metrics(&cols, &pred, &rows_of(true), opts.objective.space),
    });
    let grouped = !opts.by.is_empty();
    // Summed over groups: each group's starts at its own best.
    let at_best = reports.iter().map(|g| g.at_best).sum();
    if grouped {
        notes.push(format!(
            "fitted {} groups of --by {} separately, {} starts each, in one batch",
            groups.len(),
            opts.by.join(","),
            opts.starts
        ));
    }
    // A plain fit's reports are the fit's own; groups keep theirs.
    let (polish, identifiability) = if grouped {
        (None, None)
    } else {
        (reports[0].polish, reports[0].identifiability.take())
    };
    let profile = match (&opts.profile, &identifiability) {
        (Some(req), Some(ident)) => {
            let rows = &groups[0].train;
            Some(crate::profile::profile(
                law,
                &space,
                &|wanted| row_jacobian_of(b, &cols, rows, &opts.objective, wanted),
                &fits[0].polished,
                // The rows the statistic sums over: those of nonzero weight.
                rows.iter().filter(|&&r| cols.weight[r] != 0.0).count(),
                ident,
                opts.objective,
                &req.names,
                req.level,
            )?)
        }
        _ => None,
    };
    if grouped {
        notes.extend(unconverged(&reports));
    }
    if opts.device.is_some() {
        notes.push(
            "the starts ran in single precision on the GPU; the best of each fit was refined \
             on the CPU in f64, so fewer starts may count as reaching the best (1e-6)"
                .into(),
        );
    }
    let report = LawFitReport {
        law: b.file.name.clone(),
        law_file: b.text.clone(),
        formula: b.file.formula.clone(),
        variables: b.file.variables.clone(),
        ranges: b
            .law
            .variables
            .iter()
            .zip(&cols.vars)
            .map(|(name, col)| {
                let range = train_rows
                    .iter()
                    .fold([f64::INFINITY, f64::NEG_INFINITY], |[lo, hi], &r| {
                        [lo.min(col[r]), hi.max(col[r])]
                    });
                (name.clone(), range)
            })
            .collect(),
        params: if grouped {
            IndexMap::new()
        } else {
            reports[0].params.clone()
        },
        fixed: space
            .rules
            .iter()
            .filter(|r| r.fixed.is_some())
            .map(|r| r.name.clone())
            .collect(),
        objective: ObjectiveReport {
            loss: opts.objective.loss_name().into(),
            space: opts.objective.space_name().into(),
            delta: opts.objective.delta,
            value: objective_sum / train_rows.len().max(1) as f64,
        },
        metrics: fit_metrics(b, table, &cols, &pred, &train_rows, opts.objective.space),
        test,
        by: opts.by.clone(),
        groups: if grouped { reports } else { Vec::new() },
        starts: StartsReport {
            count: outcomes.len(),
            at_best,
            status_counts: status_counts(&outcomes),
            iterations: outcomes.iter().map(|o| o.iterations).max().unwrap_or(0),
            evaluations: calls,
            start_evaluations: outcomes.iter().map(|o| o.evaluations).sum(),
        },
        backend: backend_report(opts),
        seconds: started.elapsed().as_secs_f64(),
        points: train_rows.len(),
        notes,
        polish,
        identifiability,
        profile,
        bootstrap: None,
    };
    Ok(LawFitOutput {
        report,
        pred,
        held_out: held,
        loss: cols.loss,
        starts: starts.iter().map(|x| space.to_params(x)).collect(),
        fits: groups
            .iter()
            .zip(fits)
            .map(|(g, f)| Fitted {
                rows: g.train.clone(),
                best: f.params,
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::batch::{fit_jobs_by, Method};
    use super::*;
    use crate::law::builtin_law;

    /// Levenberg-Marquardt and L-BFGS from the same starts on a built-in
    /// law reach the same best objective, in linear and in log space.
    #[test]
    fn least_squares_and_lbfgs_agree_on_a_builtin_law() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sweep.csv");
        let mut text = String::from("run,N,tokens,loss\n");
        let mut k = 0u64;
        for n in [5e7f64, 1e8, 2e8, 4e8, 8e8] {
            for i in 1..=30 {
                let d = 5e8 * i as f64;
                k += 1;
                let wobble = 1.0 + 0.003 * (k as f64 * 0.7).sin();
                let l = (1.8 + 400.0 / n.powf(0.34) + 900.0 / d.powf(0.29)) * wobble;
                text.push_str(&format!("m{n},{n},{d},{l}\n"));
            }
        }
        std::fs::write(&path, text).unwrap();
        let mut table = Table::read(&path).unwrap();
        let file = builtin_law("chinchilla").unwrap();
        let b = bind(file, "", "chinchilla", &mut table, &BindOptions::default()).unwrap();
        for space in [Space::Linear, Space::Log] {
            let opts = LawFitOptions {
                objective: Objective {
                    space,
                    ..Objective::default()
                },
                fix: Vec::new(),
                starts: 16,
                seed: 3,
                lbfgs: optim::Options::default(),
                by: Vec::new(),
                test_where: None,
                profile: None,
                device: None,
            };
            let cols = read_columns(&b, &table, &opts.objective).unwrap();
            let (jobs, _) = groups(&table, &opts).unwrap();
            let space_ = law_space(&b, &cols, &jobs[0].train, &[]).unwrap().0;
            let data = Data {
                b: &b,
                table: &table,
                cols: &cols,
            };
            let best = |method| {
                fit_jobs_by(data, &space_, &jobs, &opts, None, |_| {}, method, None)
                    .unwrap()
                    .fits[0]
                    .objective
            };
            let (lm, lbfgs) = (best(Method::LeastSquares), best(Method::Lbfgs));
            assert!(
                (lm - lbfgs).abs() <= 1e-9 * lbfgs,
                "{space:?}: least squares {lm:e}, L-BFGS {lbfgs:e}"
            );
        }
    }
}
