//! `simulate` for any law: the law at every combination of given variable
//! values, with Gaussian noise, as a CSV a fit reads back.

use anyhow::bail;
use indexmap::IndexMap;
use rand::{rngs::StdRng, SeedableRng};
use rand_distr::{Distribution, Normal};
use serde::Serialize;

use super::schedule::schedule_handles;
use crate::data::Schedules;
use crate::law::parse::SCHEDULE;
use crate::law::LawFile;
use crate::report::format_count;

/// What to simulate.
#[derive(Debug, Clone)]
pub struct LawSimulation {
    /// Every parameter's value.
    pub params: Vec<(String, f64)>,
    /// Every variable's values; rows are all combinations.
    pub at: Vec<(String, Vec<f64>)>,
    /// Standard deviation of the noise, in loss units.
    pub noise: f64,
    pub seed: u64,
    /// The runs' schedules, for a law that sums along the steps: one curve
    /// per run, which a fit given the same `--schedule` reads back.
    pub schedules: Option<Schedules>,
}

/// The simulated rows and what made them.
pub struct Simulated {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub truth: Truth,
}

/// FILE.truth.json of a simulated law.
#[derive(Debug, Clone, Serialize)]
pub struct Truth {
    pub law: String,
    pub law_file: String,
    pub variables: IndexMap<String, String>,
    pub params: IndexMap<String, f64>,
    pub noise: f64,
    pub seed: u64,
    /// The schedule file of a law that sums along the steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
}

/// Simulate `file` (text `text`, `origin` for errors). The columns are the
/// law's (its `[variables]`, or the `--at` names for a bare formula), then
/// `loss`; `run` labels a curve: the values of every variable but the axis.
pub fn simulate(
    mut file: LawFile,
    text: &str,
    origin: &str,
    sim: &LawSimulation,
) -> anyhow::Result<Simulated> {
    if !(sim.noise >= 0.0 && sim.noise.is_finite()) {
        bail!("--noise must be a non-negative number, got {}", sim.noise);
    }
    let bare = file.variables.is_empty();
    if bare {
        if sim.at.is_empty() {
            bail!(
                "give the variables' values with --at VAR=LIST: in a formula, the names \
                 given values are its variables"
            );
        }
        // A bare formula: the names given values are the variables.
        for (v, _) in &sim.at {
            // Written as a column of its own, it would clash with the
            // CSV's own, and fit refuses it as a law's name.
            if ["loss", "weight", "run"]
                .iter()
                .any(|r| v.eq_ignore_ascii_case(r))
            {
                bail!(
                    "--at {v}: '{v}' is a column of the simulated CSV of its own, never a \
                     law's variable; rename it in the formula"
                );
            }
            file.variables.insert(v.clone(), v.clone());
        }
    }
    let law = file.compile(origin)?;
    let used = law.graph.var_masks()[law.value as usize];
    if let Some(v) = (0..law.variables.len()).find(|&v| bare && used >> v & 1 == 0) {
        bail!(
            "--at {}: the formula has no name {0}, so the column would be written unused",
            law.variables[v]
        );
    }
    // A law that sums along the steps reads its `schedule` variable from
    // the schedule file: a curve per run, labelled by the run, with no
    // column of its own (the fit attaches it from --schedule again).
    let sched = law.variables.iter().position(|v| v == SCHEDULE);
    let runs: Vec<String> = match (sched, &sim.schedules) {
        (Some(_), None) => bail!(
            "law {} sums along the steps: give the runs' learning rates with --schedule FILE \
             (a CSV run,step,lr with every step of every run)",
            file.name
        ),
        (None, Some(s)) => bail!(
            "--schedule {}: law {} sums along no steps (sum(k = 1..step: ...)), so nothing \
             reads the schedules",
            s.path.display(),
            file.name
        ),
        (Some(_), Some(s)) => s
            .runs
            .keys()
            .map(|r| match r.as_str() {
                Schedules::EVERY_RUN => s
                    .path
                    .file_stem()
                    .map_or("run".into(), |f| f.to_string_lossy().into_owned()),
                r => r.to_string(),
            })
            .collect(),
        (None, None) => Vec::new(),
    };
    let mut axes = Vec::new();
    for (i, v) in law.variables.iter().enumerate() {
        if Some(i) == sched {
            if sim.at.iter().any(|(n, _)| n == v) {
                bail!("--at {v}: the schedules are the runs of --schedule");
            }
            let handles = schedule_handles(sim.schedules.as_ref().expect("checked above"));
            axes.push(handles.into_iter().map(f64::from).collect());
            continue;
        }
        let Some((_, values)) = sim.at.iter().find(|(n, _)| n == v) else {
            bail!(
                "give --at {v}=LIST: the law's variables are {}",
                law.variables.join(", ")
            );
        };
        axes.push(values.clone());
    }
    if let Some((n, _)) = sim.at.iter().find(|(n, _)| !law.variables.contains(n)) {
        bail!(
            "--at {n}: the law has no variable {n} (its variables: {})",
            law.variables.join(", ")
        );
    }
    let mut params = Vec::new();
    for p in &law.params {
        match sim.params.iter().find(|(n, _)| n == p) {
            Some((_, v)) if v.is_finite() => params.push(*v),
            Some((_, v)) => bail!("--param {p}={v}: the value must be a finite number"),
            None => bail!(
                "give --param {p}=VALUE: the law's parameters are {}",
                law.params.join(", ")
            ),
        }
    }
    if let Some((n, _)) = sim.params.iter().find(|(n, _)| !law.params.contains(n)) {
        bail!(
            "--param {n}: the law has no parameter {n} (its parameters: {})",
            law.params.join(", ")
        );
    }
    // Each run's rows are the steps within its schedule (runs differ in
    // length); a step must be a whole number.
    let step_vars = super::schedule::step_vars(&law);
    let lens: Vec<usize> = sim.schedules.as_ref().map_or(Vec::new(), |s| {
        s.runs.values().map(|r| r.lr.len()).collect()
    });
    for &(v, _) in &step_vars {
        super::predict::whole_steps(&law.variables[v], &axes[v])?;
    }
    let total: usize = axes.iter().map(Vec::len).product();
    if total > crate::values::MAX_ROWS {
        bail!(
            "{total} rows asked for, more than {}",
            crate::values::MAX_ROWS
        );
    }
    let axis = file
        .axis
        .as_ref()
        .and_then(|a| law.variables.iter().position(|v| v == a))
        .unwrap_or(axes.len() - 1);
    let noise = Normal::new(0.0, sim.noise).expect("a finite sd >= 0");
    let mut rng = StdRng::seed_from_u64(sim.seed);
    let written: Vec<usize> = (0..axes.len()).filter(|&v| Some(v) != sched).collect();
    let mut header = vec!["run".to_string()];
    header.extend(
        written
            .iter()
            .map(|&v| file.variables[&law.variables[v]].clone()),
    );
    header.push("loss".into());
    let mut rows = Vec::with_capacity(total);
    let mut per_run = vec![0usize; runs.len()];
    let mut point = vec![0.0; axes.len()];
    // Each variable's index among its values: a schedule's is its run's.
    let mut index = vec![0usize; axes.len()];
    for mut k in 0..total {
        // The axis fastest, so that a curve's rows are together.
        let order: Vec<usize> = (0..axes.len())
            .filter(|&v| v != axis)
            .chain([axis])
            .collect();
        for &v in order.iter().rev() {
            index[v] = k % axes[v].len();
            point[v] = axes[v][index[v]];
            k /= axes[v].len();
        }
        let run_of = sched.map(|v| index[v]);
        if let Some(r) = run_of {
            let past = step_vars
                .iter()
                .any(|&(v, reach)| point[v] as usize + reach >= lens[r]);
            if past {
                continue;
            }
            per_run[r] += 1;
        }
        let clean = law.eval(&point, &params);
        if !clean.is_finite() {
            let at: Vec<String> = law
                .variables
                .iter()
                .zip(&point)
                .map(|(n, x)| format!("{n} = {x}"))
                .collect();
            bail!("the law is {clean} at {}", at.join(", "));
        }
        let run: Vec<String> = (0..axes.len())
            .filter(|&v| v != axis)
            .map(|v| match Some(v) == sched {
                true => runs[index[v]].clone(),
                false => format!("{}={}", law.variables[v], format_count(point[v])),
            })
            .collect();
        let mut row = vec![run.join(",")];
        row.extend(written.iter().map(|&v| point[v].to_string()));
        row.push((clean + noise.sample(&mut rng)).to_string());
        rows.push(row);
    }
    // A run whose schedule ends before every step asked for has no rows.
    for (r, name) in runs.iter().enumerate() {
        if per_run[r] == 0 {
            bail!(
                "run '{name}' has no rows: its schedule ends at step {}, before every \
                     step of --at{}",
                lens[r].saturating_sub(1),
                match step_vars.first() {
                    Some(&(s, _)) => format!(" {}", law.variables[s]),
                    None => String::new(),
                }
            );
        }
    }
    let truth = Truth {
        law: file.name.clone(),
        law_file: text.to_string(),
        variables: file.variables.clone(),
        params: law.params.iter().cloned().zip(params).collect(),
        noise: sim.noise,
        seed: sim.seed,
        schedule: sim.schedules.as_ref().map(|s| s.path.display().to_string()),
    };
    Ok(Simulated {
        header,
        rows,
        truth,
    })
}

/// The columns `simulate --law` writes the variables to: --var's, else the
/// law file's, else (a bare formula, whose variables are the --at names)
/// their own names. Each its own, and none the loss, weight or run column
/// a fit reads back.
pub fn bind_columns(
    file: &mut crate::law::LawFile,
    at: &[(String, Vec<f64>)],
    vars: &[(String, String)],
) -> anyhow::Result<()> {
    if vars.is_empty() {
        return Ok(());
    }
    if file.variables.is_empty() {
        for (n, _) in at {
            file.variables.insert(n.clone(), n.clone());
        }
    }
    for (i, (n, col)) in vars.iter().enumerate() {
        if vars[..i].iter().any(|(m, _)| m == n) {
            bail!("--var {n} is given twice");
        }
        let Some(c) = file.variables.get_mut(n) else {
            let names: Vec<&str> = file.variables.keys().map(String::as_str).collect();
            bail!(
                "--var {n}={col}: the law has no variable {n} (its variables: {})",
                names.join(", ")
            );
        };
        if ["loss", "weight", "run"]
            .iter()
            .any(|r| col.eq_ignore_ascii_case(r))
        {
            bail!("--var {n}={col}: the simulated CSV's '{col}' column is not a variable's");
        }
        *c = col.clone();
    }
    let cols: Vec<&String> = file.variables.values().collect();
    for (i, c) in cols.iter().enumerate() {
        if cols[..i].iter().any(|d| d.eq_ignore_ascii_case(c)) {
            bail!("two variables would be written to column '{c}': give each its own with --var");
        }
    }
    Ok(())
}
