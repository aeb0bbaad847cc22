//! Fitting any compiled law to a table: bind the law's variables to
//! columns, split off the `--test-where` rows, group by `--by`, draw the
//! starts (non-linear parameters drawn, linear ones solved by least
//! squares), run every group's starts as problems of one lockstep batch on
//! the compiled CPU evaluator, and score the result.

use std::collections::HashMap;
use std::time::Instant;

use anyhow::{bail, Context};
use indexmap::IndexMap;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

use crate::backend::CompiledGrid;
use crate::data::{Check, Selector, Table};
use crate::law::dag::{Node, NodeId};
use crate::law::params::{rules, Transform};
use crate::law::plan::{Plan, Sweep};
use crate::law::space::LawSpace;
use crate::law::{parse, CompiledLaw, LawFile};
use crate::objective::{Objective, Space};
use crate::optim::{self, BatchObjective, Outcome, Progress, Status};
use crate::report::{
    BackendReport, GroupReport, LawFitReport, ObjectiveReport, SetMetrics, StartsReport, TestReport,
};

/// Starts per fit when `--starts` is not given.
pub const DEFAULT_STARTS: usize = 128;

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
}

/// Bind `file` to `table`: declared variables must name columns; in a bare
/// formula (no variables declared), every name that is a column of the
/// table is a variable and the others are parameters.
pub fn bind(
    mut file: LawFile,
    text: &str,
    origin: &str,
    table: &Table,
) -> anyhow::Result<BoundLaw> {
    if file.variables.is_empty() {
        let mut names = Vec::new();
        let texts = std::iter::once(&file.formula).chain(file.defs.values());
        for text in texts {
            let ast = parse::parse(text).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
            for (n, _) in parse::names(&ast) {
                let reserved = file.defs.contains_key(&n) || file.params.contains_key(&n);
                if !reserved && !names.contains(&n) {
                    names.push(n);
                }
            }
        }
        for n in names {
            let role_col = ["loss", "weight"].iter().any(|r| n.eq_ignore_ascii_case(r));
            // D and tokens name one quantity, as in the long CSV.
            let alias = match n.as_str() {
                "D" => table.find("tokens"),
                "tokens" => table.find("D"),
                _ => None,
            };
            if let Some(c) = table.find(&n).or(alias).filter(|_| !role_col) {
                file.variables.insert(n, table.headers[c].clone());
            }
        }
        if file.variables.is_empty() {
            bail!(
                "{origin}: no name of the formula is a column of {} (columns found: {}); \
                 a name that is a column is a variable, the others are parameters",
                table.path.display(),
                table.found()
            );
        }
        if file.axis.is_none() {
            file.axis = guess_axis(&file, table);
        }
    }
    let mut columns = Vec::new();
    for (v, col) in &file.variables {
        let c = table.find(col).ok_or_else(|| {
            anyhow::anyhow!(
                "{}:1: the law's variable {v} reads column '{col}', which is missing; columns found: {}",
                table.path.display(),
                table.found()
            )
        })?;
        columns.push(c);
    }
    let law = file.compile(origin)?;
    let axis = file
        .axis
        .as_ref()
        .and_then(|a| law.variables.iter().position(|v| v == a));
    Ok(BoundLaw {
        file,
        text: text.to_string(),
        law,
        columns,
        axis,
    })
}

/// For a bare formula: the variable that varies within runs (the `run`
/// column's groups), if exactly one does.
fn guess_axis(file: &LawFile, table: &Table) -> Option<String> {
    let run = table.find("run")?;
    let varying: Vec<&String> = file
        .variables
        .iter()
        .filter(|(_, col)| {
            let Some(c) = table.find(col) else {
                return false;
            };
            let mut first: HashMap<&str, &str> = HashMap::new();
            (0..table.rows()).any(|r| {
                let v = table.columns[c][r].as_str();
                *first.entry(table.columns[run][r].as_str()).or_insert(v) != v
            })
        })
        .map(|(v, _)| v)
        .collect();
    match varying.as_slice() {
        [v] => Some((*v).clone()),
        _ => None,
    }
}

/// The rows of one fit.
#[derive(Debug, Clone)]
struct Group {
    key: IndexMap<String, String>,
    /// Rows fitted and rows scored, as table row indices.
    train: Vec<usize>,
    test: Vec<usize>,
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
}

/// Per problem, which group's evaluator runs it.
struct Problems<'a> {
    space: &'a LawSpace,
    grids: &'a [CompiledGrid],
    group_of: &'a [usize],
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
        // Problems of one group go to its evaluator in one call.
        let mut by_group: Vec<Vec<usize>> = vec![Vec::new(); self.grids.len()];
        for (k, &id) in ids.iter().enumerate() {
            by_group[self.group_of[id]].push(k);
        }
        for (gi, ks) in by_group.iter().enumerate() {
            if ks.is_empty() {
                continue;
            }
            let flat: Vec<f64> = ks.iter().flat_map(|&k| params[k].iter().copied()).collect();
            let mut fo = vec![0.0; ks.len()];
            let mut go = vec![0.0; ks.len() * np];
            self.grids[gi].evaluate(&flat, &mut fo, &mut go);
            for (j, &k) in ks.iter().enumerate() {
                f[k] = fo[j];
                gp[k * np..(k + 1) * np].copy_from_slice(&go[j * np..(j + 1) * np]);
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
    run: Option<usize>,
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
        Check::Finite
    };
    let loss = table.numbers(lc, check)?;
    let weight = match table.find("weight") {
        Some(c) => table.numbers(c, Check::NonNegative)?,
        None => vec![1.0; table.rows()],
    };
    Ok(Columns {
        vars,
        loss,
        weight,
        run: table.find("run"),
    })
}

/// Rows grouped by `--by` and split by `--test-where`.
fn groups(table: &Table, opts: &LawFitOptions) -> anyhow::Result<(Vec<Group>, Vec<bool>)> {
    let held: Vec<bool> = match &opts.test_where {
        Some(s) => s.rows(table)?,
        None => vec![false; table.rows()],
    };
    let mut by_cols = Vec::new();
    for name in &opts.by {
        let c = table.find(name).ok_or_else(|| {
            anyhow::anyhow!(
                "{}:1: --by column '{name}' is missing; columns found: {}",
                table.path.display(),
                table.found()
            )
        })?;
        by_cols.push(c);
    }
    let mut out: Vec<Group> = Vec::new();
    let mut index: HashMap<Vec<&str>, usize> = HashMap::new();
    for (r, &test) in held.iter().enumerate() {
        let key: Vec<&str> = by_cols
            .iter()
            .map(|&c| table.columns[c][r].as_str())
            .collect();
        let gi = *index.entry(key.clone()).or_insert_with(|| {
            out.push(Group {
                key: by_cols
                    .iter()
                    .zip(&key)
                    .map(|(&c, v)| (table.headers[c].clone(), v.to_string()))
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

/// The sweep of `rows`: curves of rows with equal run and equal values of
/// every variable but the axis, on the grid layout when the grid is dense
/// enough, otherwise one curve per row (the point layout).
fn sweep_of(b: &BoundLaw, cols: &Columns, table: &Table, rows: &[usize], obj: &Objective) -> Sweep {
    let nv = b.columns.len();
    let total: f64 = rows.iter().map(|&r| cols.weight[r]).sum();
    let y_of = |r: usize| match obj.space {
        Space::Linear => cols.loss[r],
        Space::Log => cols.loss[r].ln(),
    };
    let w_of = |r: usize| cols.weight[r] / total;
    if let Some(axis) = b.axis {
        let mut curves: Vec<Vec<usize>> = Vec::new();
        let mut index: HashMap<(Option<&str>, Vec<u64>), usize> = HashMap::new();
        for &r in rows {
            let key: Vec<u64> = (0..nv)
                .filter(|&v| v != axis)
                .map(|v| cols.vars[v][r].to_bits())
                .collect();
            let run = cols.run.map(|c| table.columns[c][r].as_str());
            let ci = *index.entry((run, key)).or_insert_with(|| {
                curves.push(Vec::new());
                curves.len() - 1
            });
            curves[ci].push(r);
        }
        let mut distinct: Vec<u64> = rows.iter().map(|&r| cols.vars[axis][r].to_bits()).collect();
        distinct.sort_unstable();
        distinct.dedup();
        let mut duplicate = false;
        for c in &mut curves {
            c.sort_by(|&x, &y| cols.vars[axis][x].total_cmp(&cols.vars[axis][y]));
            duplicate |= c
                .windows(2)
                .any(|w| cols.vars[axis][w[0]] == cols.vars[axis][w[1]]);
        }
        // The grid pays for every cell, filled or not.
        if !duplicate && curves.len() * distinct.len() <= 4 * rows.len() {
            let (mut vars, mut y, mut w, mut ranges) = (vec![], vec![], vec![], vec![]);
            for c in &curves {
                let s = y.len();
                for &r in c {
                    vars.extend((0..nv).map(|v| cols.vars[v][r]));
                    y.push(y_of(r));
                    w.push(w_of(r));
                }
                ranges.push(s..y.len());
            }
            return Sweep::new(nv, ranges, vars, y, w, Some(axis as u16));
        }
    }
    let vars = rows
        .iter()
        .flat_map(|&r| (0..nv).map(move |v| cols.vars[v][r]))
        .collect();
    let y = rows.iter().map(|&r| y_of(r)).collect();
    let w = rows.iter().map(|&r| w_of(r)).collect();
    let ranges = (0..rows.len()).map(|i| i..i + 1).collect();
    Sweep::new(nv, ranges, vars, y, w, None)
}

/// Reference point of the linear parameters' terms: per variable, the
/// weighted geometric mean when every value is positive, else the mean.
fn reference(cols: &Columns, rows: &[usize]) -> Vec<f64> {
    let total: f64 = rows
        .iter()
        .map(|&r| cols.weight[r])
        .sum::<f64>()
        .max(1e-300);
    cols.vars
        .iter()
        .map(|col| {
            if rows.iter().all(|&r| col[r] > 0.0) {
                (rows
                    .iter()
                    .map(|&r| cols.weight[r] * col[r].ln())
                    .sum::<f64>()
                    / total)
                    .exp()
            } else {
                rows.iter().map(|&r| cols.weight[r] * col[r]).sum::<f64>() / total
            }
        })
        .collect()
}

/// The non-linear free parameters of `count` starts, drawn from their
/// ranges, reproducible from `seed`: (parameter, value) lists.
fn draw(space: &LawSpace, count: usize, seed: u64) -> Vec<Vec<(usize, f64)>> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..count)
        .map(|_| {
            space
                .free()
                .iter()
                .filter_map(|&p| {
                    let s = space.rules[p].start?;
                    let u: f64 = rng.random();
                    let v = if s.log {
                        (s.lo.ln() + (s.hi.ln() - s.lo.ln()) * u).exp()
                    } else {
                        s.lo + (s.hi - s.lo) * u
                    };
                    Some((p, v))
                })
                .collect()
        })
        .collect()
}

/// Complete a start: the free linear parameters by weighted least squares
/// on `rows` given the others, inside their bounds (a parameter whose
/// solution leaves its bounds is held at the bound and the rest solved
/// again, as in an active-set method). Positive ones stay above a small
/// floor, since they are fitted as logs.
fn solve_linear(
    law: &CompiledLaw,
    space: &LawSpace,
    cols: &Columns,
    rows: &[usize],
    p: &mut [f64],
) {
    let lin: Vec<usize> = space
        .free()
        .iter()
        .copied()
        .filter(|&i| space.rules[i].linear)
        .collect();
    if lin.is_empty() {
        return;
    }
    for &i in &lin {
        p[i] = 0.0;
    }
    let m = lin.len();
    let mut ata = vec![0.0; m * m];
    let mut atb = vec![0.0; m];
    let mut point = vec![0.0; cols.vars.len()];
    let mut grad = vec![0.0; p.len()];
    let (mut mean_y, mut wsum) = (0.0, 0.0);
    let mut mean_phi = vec![0.0; m];
    for &r in rows {
        for (v, col) in cols.vars.iter().enumerate() {
            point[v] = col[r];
        }
        let base = law.eval_grad(&point, p, &mut grad);
        let (w, y) = (cols.weight[r], cols.loss[r]);
        if !(base.is_finite() && lin.iter().all(|&i| grad[i].is_finite())) || w == 0.0 {
            continue;
        }
        wsum += w;
        mean_y += w * y.abs();
        for a in 0..m {
            let pa = grad[lin[a]];
            mean_phi[a] += w * pa.abs();
            atb[a] += w * pa * (y - base);
            for c in 0..m {
                ata[a * m + c] += w * pa * grad[lin[c]];
            }
        }
    }
    if wsum == 0.0 {
        return;
    }
    let (mut lo, mut hi) = (vec![0.0; m], vec![0.0; m]);
    for a in 0..m {
        let r = &space.rules[lin[a]];
        lo[a] = r.lower;
        hi[a] = r.upper;
        if r.transform == Transform::Log {
            let floor = 1e-3 * mean_y / wsum / (mean_phi[a] / wsum).max(1e-300);
            lo[a] = lo[a].max(floor);
        }
    }
    let mut free: Vec<usize> = (0..m).collect();
    let mut held = vec![f64::NAN; m];
    while !free.is_empty() {
        let k = free.len();
        let mut a = vec![0.0; k * k];
        let mut b = vec![0.0; k];
        for (r, &i) in free.iter().enumerate() {
            b[r] = atb[i]
                - (0..m)
                    .filter(|j| !free.contains(j))
                    .map(|j| ata[i * m + j] * held[j])
                    .sum::<f64>();
            for (c, &j) in free.iter().enumerate() {
                a[r * k + c] = ata[i * m + j];
            }
        }
        let sol = optim::solve_small(&mut a, &mut b, k)
            .unwrap_or_else(|| free.iter().map(|&i| lo[i].max(0.0).min(hi[i])).collect());
        // The worst violation is held at its bound.
        let worst = (0..k)
            .filter(|&r| sol[r].is_nan() || sol[r] < lo[free[r]] || sol[r] > hi[free[r]])
            .max_by(|&x, &y| {
                let over = |r: usize| {
                    let i = free[r];
                    if sol[r].is_nan() {
                        f64::INFINITY
                    } else {
                        (lo[i] - sol[r]).max(sol[r] - hi[i])
                    }
                };
                over(x).total_cmp(&over(y))
            });
        match worst {
            Some(r) => {
                let i = free[r];
                held[i] = if sol[r] > hi[i] { hi[i] } else { lo[i] };
                if !held[i].is_finite() {
                    held[i] = 0.0;
                }
                free.remove(r);
            }
            None => {
                for (r, &i) in free.iter().enumerate() {
                    held[i] = sol[r];
                }
                break;
            }
        }
    }
    for a in 0..m {
        p[lin[a]] = held[a];
    }
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
    for &r in rows {
        for (v, col) in cols.vars.iter().enumerate() {
            point[v] = col[r];
        }
        law.graph.eval_all(law.value, &point, p, &mut buf);
        if buf[law.value as usize].is_finite() {
            continue;
        }
        let bad = (0..=law.value).find(|&id| !buf[id as usize].is_finite())?;
        let at: Vec<String> = law
            .variables
            .iter()
            .zip(&point)
            .map(|(n, v)| format!("{n} = {v}"))
            .collect();
        return Some(format!(
            "at {} line {} ({}), {} is {}",
            table.path.display(),
            r + 2,
            at.join(", "),
            show(law, bad, 0),
            buf[bad as usize]
        ));
    }
    None
}

/// A node as formula text (sub-expressions beyond a depth elided).
fn show(law: &CompiledLaw, id: NodeId, depth: usize) -> String {
    if depth > 6 {
        return "...".into();
    }
    let s = |o: NodeId| show(law, o, depth + 1);
    match law.graph.node(id) {
        Node::Const(v) => format!("{v}"),
        Node::Var(v) => law.variables[v as usize].clone(),
        Node::Param(p) => law.params[p as usize].clone(),
        Node::Neg(a) => format!("-{}", s(a)),
        Node::Add(a, b) => format!("({} + {})", s(a), s(b)),
        Node::Sub(a, b) => format!("({} - {})", s(a), s(b)),
        Node::Mul(a, b) => format!("{}*{}", s(a), s(b)),
        Node::Div(a, b) => format!("{}/{}", s(a), s(b)),
        Node::Pow(a, b) => format!("{}^{}", s(a), s(b)),
        Node::Exp(a) => format!("exp({})", s(a)),
        Node::Log(a) => format!("log({})", s(a)),
        Node::Sqrt(a) => format!("sqrt({})", s(a)),
        Node::Min(a, b) => format!("min({}, {})", s(a), s(b)),
        Node::Max(a, b) => format!("max({}, {})", s(a), s(b)),
    }
}

/// Fit `b` to `table`.
pub fn fit_table(
    b: &BoundLaw,
    table: &Table,
    opts: &LawFitOptions,
    mut progress: impl FnMut(Progress),
) -> anyhow::Result<LawFitOutput> {
    let started = Instant::now();
    if opts.starts == 0 {
        bail!("--starts must be at least 1");
    }
    let cols = read_columns(b, table, &opts.objective)?;
    let (groups, held) = groups(table, opts)?;
    let law = &b.law;
    let mut notes = Vec::new();

    // Parameter rules: declarations, defaults, then --fix.
    let mut rules = rules(&b.file, law, &cols.vars);
    for (name, v) in &opts.fix {
        let Some(r) = rules.iter_mut().find(|r| &r.name == name) else {
            bail!(
                "--fix {name}: the law has no parameter {name} (its parameters: {})",
                law.params.join(", ")
            );
        };
        if !v.is_finite() {
            bail!("--fix {name}={v}: the value must be a finite number");
        }
        r.fixed = Some(*v);
    }
    let all_train: Vec<usize> = (0..table.rows()).filter(|&r| !held[r]).collect();
    let space = LawSpace::new(law, rules, reference(&cols, &all_train));
    if space.dim() == 0 {
        bail!("every parameter is fixed: nothing to fit");
    }
    for g in &groups {
        if g.train.len() < space.dim() {
            let which = if g.key.is_empty() {
                "the data has".to_string()
            } else {
                format!("group {} has", key_text(&g.key))
            };
            bail!(
                "{which} {} rows to fit but the law has {} free parameters: a fit needs at \
                 least as many rows as free parameters",
                g.train.len(),
                space.dim()
            );
        }
        if g.train.iter().all(|&r| cols.weight[r] == 0.0) {
            bail!("every weight of the rows to fit is zero: nothing to fit");
        }
    }

    // One evaluator per group, and every group's starts.
    let mut grids = Vec::with_capacity(groups.len());
    for g in &groups {
        let sweep = sweep_of(b, &cols, table, &g.train, &opts.objective);
        let plan = Plan::for_sweep(law, &sweep);
        let grid = CompiledGrid::new(plan, &sweep, opts.objective)
            .map_err(|e| anyhow::anyhow!("cannot lay out the data for the evaluator: {e}"))?;
        grids.push(grid);
    }
    let draws = draw(&space, opts.starts, opts.seed);
    let mut x0 = Vec::with_capacity(groups.len() * opts.starts);
    let mut group_of = Vec::with_capacity(x0.capacity());
    let base: Vec<f64> = space.to_params(&vec![0.0; space.dim()]);
    for (gi, g) in groups.iter().enumerate() {
        let starts: Vec<Vec<f64>> = draws
            .par_iter()
            .map(|d| {
                let mut p = base.clone();
                for &(i, v) in d {
                    p[i] = v;
                }
                solve_linear(law, &space, &cols, &g.train, &mut p);
                space.to_theta(&p)
            })
            .collect();
        x0.extend(starts);
        group_of.extend(std::iter::repeat_n(gi, opts.starts));
    }
    let mut problems = Problems {
        space: &space,
        grids: &grids,
        group_of: &group_of,
    };
    let (outcomes, calls) = optim::minimize_batch(&mut problems, &x0, &opts.lbfgs, &mut progress)
        .context("optimisation failed")?;

    // Each group's best.
    let mut pred = vec![f64::NAN; table.rows()];
    let mut reports = Vec::new();
    let mut point = vec![0.0; cols.vars.len()];
    let mut objective_sum = 0.0;
    let mut best_params = Vec::new();
    for (gi, g) in groups.iter().enumerate() {
        let mine: Vec<&Outcome> = outcomes
            .iter()
            .zip(&group_of)
            .filter(|(_, &k)| k == gi)
            .map(|(o, _)| o)
            .collect();
        let best = (0..mine.len())
            .filter(|&i| mine[i].f.is_finite())
            .min_by(|&x, &y| mine[x].f.total_cmp(&mine[y].f));
        let Some(best) = best else {
            let p = space.to_params(&x0[gi * opts.starts]);
            let site = non_finite_site(b, &cols, &g.train, &p, table)
                .map(|s| format!(": {s}"))
                .unwrap_or_default();
            let which = if g.key.is_empty() {
                String::new()
            } else {
                format!(" (group {})", key_text(&g.key))
            };
            bail!(
                "the law is not finite at any start{which}{site}; check the law's domain \
                 (logs and powers of values that can reach 0 or below) and the start ranges"
            );
        };
        let f_best = mine[best].f;
        let at_best = mine
            .iter()
            .filter(|o| o.f.is_finite() && o.f - f_best <= crate::fit::AT_BEST_RTOL * f_best.abs())
            .count();
        let p = space.to_params(&mine[best].x);
        for &r in g.train.iter().chain(&g.test) {
            for (v, col) in cols.vars.iter().enumerate() {
                point[v] = col[r];
            }
            pred[r] = law.eval(&point, &p);
        }
        if let Some(&r) = g.train.iter().find(|&&r| !pred[r].is_finite()) {
            bail!(
                "the best fit predicts {} at {} line {}: the law overflows there",
                pred[r],
                table.path.display(),
                r + 2
            );
        }
        let set = |rows: &[usize]| {
            let loss: Vec<f64> = rows.iter().map(|&r| cols.loss[r]).collect();
            let pr: Vec<f64> = rows.iter().map(|&r| pred[r]).collect();
            SetMetrics::new(&loss, &pr)
        };
        objective_sum += f_best * g.train.len() as f64;
        reports.push(GroupReport {
            key: g.key.clone(),
            params: law.params.iter().cloned().zip(p.iter().copied()).collect(),
            objective: f_best,
            at_best,
            metrics: set(&g.train),
            test: (!g.test.is_empty()).then(|| set(&g.test)),
        });
        best_params = p;
    }
    let rows_of =
        |test: bool| -> Vec<usize> { (0..table.rows()).filter(|&r| held[r] == test).collect() };
    let pooled = |rows: &[usize]| {
        let loss: Vec<f64> = rows.iter().map(|&r| cols.loss[r]).collect();
        let pr: Vec<f64> = rows.iter().map(|&r| pred[r]).collect();
        SetMetrics::new(&loss, &pr)
    };
    let train_rows = rows_of(false);
    let test = opts.test_where.as_ref().map(|s| TestReport {
        protocol: "test-where".into(),
        selector: format!("{}={}", s.column, s.value),
        metrics: pooled(&rows_of(true)),
    });
    let mut status_counts = IndexMap::new();
    for s in Status::ENDED {
        status_counts.insert(
            s.name().to_string(),
            outcomes.iter().filter(|o| o.status == s).count(),
        );
    }
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
    let report = LawFitReport {
        law: b.file.name.clone(),
        law_file: b.text.clone(),
        formula: b.file.formula.clone(),
        variables: b.file.variables.clone(),
        params: if grouped {
            IndexMap::new()
        } else {
            law.params
                .iter()
                .cloned()
                .zip(best_params.iter().copied())
                .collect()
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
        metrics: pooled(&train_rows),
        test,
        by: opts.by.clone(),
        groups: if grouped { reports } else { Vec::new() },
        starts: StartsReport {
            count: outcomes.len(),
            at_best,
            status_counts,
            iterations: outcomes.iter().map(|o| o.iterations).max().unwrap_or(0),
            evaluations: calls,
            start_evaluations: outcomes.iter().map(|o| o.evaluations).sum(),
        },
        backend: BackendReport {
            kind: "cpu".into(),
            device: format!(
                "{} threads, f64, compiled law",
                rayon::current_num_threads()
            ),
        },
        seconds: started.elapsed().as_secs_f64(),
        points: train_rows.len(),
        notes,
    };
    Ok(LawFitOutput {
        report,
        pred,
        held_out: held,
        loss: cols.loss,
    })
}

/// A law fit read back from its fit.json.
pub struct LawFit {
    pub report: LawFitReport,
    /// The law compiled with the variables it was fitted with.
    pub law: CompiledLaw,
    pub axis: Option<String>,
}

/// Read a law fit's fit.json, checking that it has every parameter.
pub fn read_law_fit(path: &std::path::Path) -> anyhow::Result<LawFit> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read it", path.display()))?;
    let r: LawFitReport = crate::report::parse_json(&text)
        .with_context(|| format!("{}: not a fit.json of a law fit", path.display()))?;
    let origin = format!("{} (law_file)", path.display());
    let mut file = LawFile::parse(&r.law_file, &origin)?;
    file.variables = r.variables.clone();
    let law = file.compile(&origin)?;
    let sets: Vec<&IndexMap<String, f64>> = if r.groups.is_empty() {
        vec![&r.params]
    } else {
        r.groups.iter().map(|g| &g.params).collect()
    };
    for params in sets {
        for name in &law.params {
            match params.get(name) {
                Some(v) if v.is_finite() => {}
                Some(v) => bail!("{}: parameter {name} is {v}", path.display()),
                None => bail!("{}: parameter {name} is missing", path.display()),
            }
        }
    }
    Ok(LawFit {
        report: r,
        law,
        axis: file.axis,
    })
}

/// Predictions of a law fit on the product of `at` (variable, values) in
/// the law's variable order: a header and rows (group key columns first
/// when the fit has groups).
pub fn predict_rows(
    r: &LawFitReport,
    law: &CompiledLaw,
    at: &[(String, Vec<f64>)],
) -> anyhow::Result<(Vec<String>, Vec<Vec<String>>)> {
    if let Some((n, _)) = at.iter().find(|(n, _)| !law.variables.contains(n)) {
        bail!(
            "--at {n}: the law has no variable {n} (its variables: {})",
            law.variables.join(", ")
        );
    }
    let mut axes = Vec::new();
    for v in &law.variables {
        let Some((_, values)) = at.iter().find(|(n, _)| n == v) else {
            bail!(
                "give --at {v}=LIST: the law's variables are {}",
                law.variables.join(", ")
            );
        };
        axes.push(values.clone());
    }
    let sets: Vec<(Vec<String>, Vec<f64>)> = if r.groups.is_empty() {
        vec![(Vec::new(), law.params.iter().map(|n| r.params[n]).collect())]
    } else {
        r.groups
            .iter()
            .map(|g| {
                let key = g.key.values().cloned().collect();
                (key, law.params.iter().map(|n| g.params[n]).collect())
            })
            .collect()
    };
    let total: usize = axes.iter().map(Vec::len).product::<usize>() * sets.len();
    if total > crate::predict::MAX_ROWS {
        bail!(
            "{total} rows asked for, more than {}",
            crate::predict::MAX_ROWS
        );
    }
    let mut header: Vec<String> = r.by.clone();
    header.extend(law.variables.iter().cloned());
    header.push("pred".into());
    let mut rows = Vec::with_capacity(total);
    let mut point = vec![0.0; axes.len()];
    for (key, p) in &sets {
        let count: usize = axes.iter().map(Vec::len).product();
        for mut k in 0..count {
            // Last variable fastest.
            for (v, values) in axes.iter().enumerate().rev() {
                point[v] = values[k % values.len()];
                k /= values.len();
            }
            let mut row = key.clone();
            row.extend(point.iter().map(|x| x.to_string()));
            row.push(law.eval(&point, p).to_string());
            rows.push(row);
        }
    }
    Ok((header, rows))
}

/// The Real-vs-Pred picture of a law fit over the rows of `table` (the
/// fitted CSV, or the pred.csv written beside fit.json): one panel per
/// curve, x along the law's axis (else the variable with the most distinct
/// values), panels placed in columns and rows by the two per-curve
/// variables that vary most, each with its values in its title.
pub fn panels(
    law: &CompiledLaw,
    axis: Option<&str>,
    r: &LawFitReport,
    table: &Table,
) -> anyhow::Result<(Vec<crate::report::Panel>, crate::report::PlotOptions)> {
    use crate::report::{format_count, Panel, PlotOptions, DEFAULT_TITLE};
    let mut vars = Vec::new();
    for v in &law.variables {
        let col = r.variables.get(v).map_or(v.as_str(), String::as_str);
        vars.push(table.numbers(table.require(col, &format!("variable {v}"))?, Check::Finite)?);
    }
    let loss = table.numbers(table.require("loss", "the loss")?, Check::Finite)?;
    let rows = table.rows();
    let held: Vec<bool> = match (table.find("set"), &r.test) {
        (Some(c), _) => table.columns[c].iter().map(|s| s == "test").collect(),
        (None, Some(t)) => Selector::parse(&t.selector)
            .map_err(|e| anyhow::anyhow!(e))?
            .rows(table)?,
        (None, None) => vec![false; rows],
    };
    // Parameters of every row: its group's, or the fit's.
    let by_cols: Vec<usize> =
        r.by.iter()
            .map(|b| table.require(b, "a --by column of the fit"))
            .collect::<Result<_, _>>()?;
    let key_of = |row: usize| -> Vec<String> {
        by_cols
            .iter()
            .map(|&c| table.columns[c][row].clone())
            .collect()
    };
    let param_vec = |m: &IndexMap<String, f64>| -> Vec<f64> {
        law.params
            .iter()
            .map(|n| m.get(n).copied().unwrap_or(f64::NAN))
            .collect()
    };
    let group_params: HashMap<Vec<String>, Vec<f64>> = r
        .groups
        .iter()
        .map(|g| (g.key.values().cloned().collect(), param_vec(&g.params)))
        .collect();
    let top = param_vec(&r.params);
    let nv = vars.len();
    let distinct = |v: usize| {
        let mut d: Vec<u64> = vars[v].iter().map(|x| x.to_bits()).collect();
        d.sort_unstable();
        d.dedup();
        d.len()
    };
    let x = axis
        .and_then(|a| law.variables.iter().position(|v| v == a))
        .or_else(|| (0..nv).max_by_key(|&v| distinct(v)))
        .unwrap_or(0);
    let run = table.find("run");
    // Curves: rows with equal run, group and values of all but x.
    let mut curves: Vec<Vec<usize>> = Vec::new();
    // (group key, run, bits of the other variables' values)
    type CurveKey = (Vec<String>, Option<String>, Vec<u64>);
    let mut index: HashMap<CurveKey, usize> = HashMap::new();
    let others: Vec<&Vec<f64>> = (0..nv).filter(|&v| v != x).map(|v| &vars[v]).collect();
    for row in 0..rows {
        let k = (
            key_of(row),
            run.map(|c| table.columns[c][row].clone()),
            others.iter().map(|col| col[row].to_bits()).collect(),
        );
        let ci = *index.entry(k).or_insert_with(|| {
            curves.push(Vec::new());
            curves.len() - 1
        });
        curves[ci].push(row);
    }
    for c in &mut curves {
        c.sort_by(|&a, &b| vars[x][a].total_cmp(&vars[x][b]));
    }
    // Per-curve variables that vary across curves, most values first.
    let mut per_curve: Vec<usize> = (0..nv).filter(|&v| v != x && distinct(v) > 1).collect();
    per_curve.sort_by_key(|&v| std::cmp::Reverse(distinct(v)));
    // Panels in order of those variables' values (groups and runs keep
    // their order of appearance).
    curves.sort_by(|a, b| {
        per_curve
            .iter()
            .rev()
            .map(|&v| vars[v][a[0]].total_cmp(&vars[v][b[0]]))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let wrap = per_curve.is_empty() || (per_curve.len() == 1 && distinct(per_curve[0]) > 8);
    let cols_wrap = (curves.len() as f64).sqrt().ceil().max(1.0) as usize;
    let mut panels = Vec::with_capacity(curves.len());
    let mut point = vec![0.0; nv];
    for (ci, c) in curves.iter().enumerate() {
        let first = c[0];
        let params = if by_cols.is_empty() {
            &top
        } else {
            group_params.get(&key_of(first)).ok_or_else(|| {
                anyhow::anyhow!(
                    "{} line {}: no group of the fit has {}",
                    table.path.display(),
                    first + 2,
                    key_of(first).join(",")
                )
            })?
        };
        let pred = c
            .iter()
            .map(|&row| {
                for (v, col) in vars.iter().enumerate() {
                    point[v] = col[row];
                }
                law.eval(&point, params)
            })
            .collect();
        let mut label: Vec<String> = key_of(first);
        if let Some(rc) = run.filter(|_| by_cols.is_empty()) {
            if !table.columns[rc][first].is_empty() {
                label.push(table.columns[rc][first].clone());
            }
        }
        for &v in &per_curve {
            label.push(format!(
                "{} = {}",
                law.variables[v],
                format_count(vars[v][first])
            ));
        }
        let (n, t) = if wrap {
            ((ci % cols_wrap) as f64, (ci / cols_wrap) as f64)
        } else {
            (
                vars[per_curve[0]][first],
                per_curve.get(1).map_or(0.0, |&v| vars[v][first]),
            )
        };
        panels.push(Panel {
            run: label.join(", "),
            n,
            t,
            label: label.join(", "),
            tokens: c.iter().map(|&row| vars[x][row]).collect(),
            loss: c.iter().map(|&row| loss[row]).collect(),
            pred,
            held_out: c.iter().map(|&row| held[row]).collect(),
            band: Vec::new(),
        });
    }
    let xs = &vars[x];
    let (lo, hi) = xs
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    // Spans of more than a decade or so read better on a log axis.
    let x_log = lo > 0.0 && hi / lo >= 20.0;
    let (x_unit, suffix) = match hi.abs() {
        _ if x_log => (1.0, ""),
        m if m >= 1e9 => (1e9, " (B)"),
        m if m >= 1e6 => (1e6, " (M)"),
        m if m >= 1e3 => (1e3, " (K)"),
        _ => (1.0, ""),
    };
    let mut title = format!("{DEFAULT_TITLE} · {} law · R² = {:.4}", r.law, r.metrics.r2);
    if let Some(t) = &r.test {
        title.push_str(&format!(" · test R² = {:.4}", t.metrics.r2));
    }
    let opts = PlotOptions {
        title: Some(title),
        x_label: format!("{}{suffix}", law.variables[x]),
        x_unit,
        x_log,
        ..PlotOptions::default()
    };
    Ok((panels, opts))
}
