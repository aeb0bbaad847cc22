//! The runs' schedules of a law that sums along the steps (`--schedule`):
//! each row's run's schedule becomes the value of the law's `schedule`
//! variable (a handle of `law::steps`), and the rows' steps are checked
//! against it once the law says which variable is the step.

use anyhow::bail;

use crate::data::{Schedules, Table, TextColumn};
use crate::law::dag::Node;
use crate::law::parse::SCHEDULE;
use crate::law::{steps, CompiledLaw};

/// Give `table` the column `schedule`: each row's run's schedule of `s`
/// (by the `run` column; one schedule for every run when the file has
/// none). Errors name the file, or the row whose run has no schedule.
pub(super) fn attach(table: &mut Table, s: &Schedules) -> anyhow::Result<()> {
    if table.lookup(SCHEDULE)?.is_some() {
        bail!(
            "{}: the data has a column '{SCHEDULE}' already, and --schedule adds one of that \
             name (rename the column)",
            table.path.display()
        );
    }
    let handles = schedule_handles(s);
    let run_col = table.lookup("run")?;
    let mut values = Vec::with_capacity(table.rows());
    for r in 0..table.rows() {
        let run = run_col.map_or("", |c| &table.columns[c][r]);
        let Some(i) = s.run_index(run) else {
            let known: Vec<&str> = s.runs.keys().take(8).map(String::as_str).collect();
            bail!(
                "{}: run '{run}' has no schedule in {} (its runs: {}{})",
                table.place(r),
                s.path.display(),
                known.join(", "),
                if s.runs.len() > 8 { ", ..." } else { "" }
            );
        };
        values.push(handles[i] as f64);
    }
    table.headers.push(SCHEDULE.to_string());
    table.columns.push(TextColumn::from_numbers(values));
    Ok(())
}

/// [`attach`], then [`check_steps`] with the law's variables read from the
/// columns `variables` names (a fit report's; a variable's own name
/// otherwise): rows predicted or drawn from a fit.
pub(super) fn attach_checked(
    table: &mut Table,
    s: &Schedules,
    law: &CompiledLaw,
    variables: &indexmap::IndexMap<String, String>,
) -> anyhow::Result<()> {
    attach(table, s)?;
    let columns = law
        .variables
        .iter()
        .map(|v| {
            table.require(
                variables.get(v).unwrap_or(v),
                &format!("the law's variable {v}"),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    check_steps(s, law, &columns, table)
}

/// Each run's schedule registered for the laws' sums (see
/// [`steps::register_run`]): its handle, in the order of `s.runs`.
pub fn schedule_handles(s: &Schedules) -> Vec<u32> {
    s.runs
        .values()
        .map(|r| steps::register_run(vec!["lr".into()], vec![r.lr.clone()]))
        .collect()
}

/// Check every row's step against its run's schedule, for each variable
/// `law` sums up to (`columns`: each variable's column): a whole step
/// within the schedule, and where the table logs `lr`, the schedule's.
/// Errors when the law sums along no steps: the schedule would be unused.
pub(super) fn check_steps(
    s: &Schedules,
    law: &CompiledLaw,
    columns: &[usize],
    table: &Table,
) -> anyhow::Result<()> {
    let step_vars = step_vars(law);
    if step_vars.is_empty() {
        bail!(
            "--schedule {}: the law sums along no steps (sum(k = 1..step: ...)), so nothing \
             reads the schedules",
            s.path.display()
        );
    }
    let (run_col, lr_col) = (table.lookup("run")?, table.lookup("lr")?);
    // A fixed index (`lr[1000]`) reads the same step for every row: each
    // run's schedule must reach it, or every row would be undefined.
    let fixed = law
        .graph
        .nodes()
        .iter()
        .filter_map(|n| match n {
            Node::Steps(def, _) => steps::fixed_reach(*def),
            _ => None,
        })
        .max();
    for (v, reach) in step_vars {
        let rows = s.rows(table, run_col, columns[v], lr_col, reach)?;
        let Some(at) = fixed else { continue };
        for (r, &(run, _)) in rows.iter().enumerate() {
            let sched = &s.runs[run];
            if at >= sched.lr.len() as i64 {
                bail!(
                    "{}: the law's sums read step {at} of every run's schedule, but the \
                     schedule in {} that this row's run follows ends at step {}",
                    table.place(r),
                    sched.path.display(),
                    sched.lr.len() - 1
                );
            }
        }
    }
    Ok(())
}

/// The variables (indices) the law's sums run their steps up to, each
/// with how far past its step the sums read (see [`steps::reach`]).
pub(super) fn step_vars(law: &CompiledLaw) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for n in law.graph.nodes() {
        if let Node::Steps(def, ops) = n {
            if let Node::Var(v) = law.graph.node(ops[1]) {
                let reach = steps::reach(*def) as usize;
                match out.iter_mut().find(|(w, _)| *w == v as usize) {
                    Some((_, r)) => *r = (*r).max(reach),
                    None => out.push((v as usize, reach)),
                }
            }
        }
    }
    out
}
