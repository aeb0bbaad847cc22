//! Per-step series beside the logged rows: a run's learning rate at every
//! optimiser step, which laws of the whole training curve sum over (the
//! logged rows only sample it). Two forms are read:
//!
//! - a long CSV `run,step,lr`, one row per step of each run (without a
//!   `run` column, one schedule for every run);
//! - a manifest `run,file` whose files are `step,lr` CSVs, one per run,
//!   relative to the manifest's folder (as the shared multi-power-law data
//!   ship them).
//!
//! A schedule holds every step from 0 up to its last, each once, with a
//! finite learning rate >= 0; errors name the file, line and column.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use super::{cell_key, Check, DataError, Table};

/// Most steps of all schedules together: 8 bytes each, and every law sums
/// over them.
pub const MAX_STEPS: usize = 100_000_000;

/// One run's learning rate at every step from 0.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// `lr[step]`.
    pub lr: Vec<f64>,
    /// The file it was read from, for messages.
    pub path: PathBuf,
}

/// The schedules of a sweep's runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedules {
    /// The file given (the long CSV or the manifest).
    pub path: PathBuf,
    /// By run label; one entry under [`Schedules::EVERY_RUN`] when the
    /// file has no run column.
    pub runs: IndexMap<String, Schedule>,
}

impl Schedules {
    /// The key of a schedule that applies to every run.
    pub const EVERY_RUN: &'static str = "*";

    /// Read a long CSV `run,step,lr` (or `step,lr`) or a manifest
    /// `run,file`, told apart by their columns.
    pub fn read(path: &Path) -> Result<Schedules, DataError> {
        Schedules::from_table(&Table::read(path)?)
    }

    /// The schedules of a table in either form, read or made in memory
    /// (a data frame's columns): a manifest's files are found beside the
    /// table's file, or from the working folder for one in memory.
    pub fn from_table(t: &Table) -> Result<Schedules, DataError> {
        let path = &t.path;
        if t.rows() == 0 {
            return Err(DataError::NoRows { path: path.clone() });
        }
        let runs = if t.lookup("file")?.is_some() && t.lookup("lr")?.is_none() {
            read_manifest(path, t)?
        } else {
            read_long(t)?
        };
        let total: usize = runs.values().map(|s| s.lr.len()).sum();
        if total > MAX_STEPS {
            return Err(DataError::Message(format!(
                "{}: {total} schedule steps in all, more than {MAX_STEPS}",
                path.display()
            )));
        }
        Ok(Schedules {
            path: path.clone(),
            runs,
        })
    }

    /// The schedule of run `run`: its own, else the one for every run.
    pub fn get(&self, run: &str) -> Option<&Schedule> {
        self.runs
            .get(run)
            .or_else(|| self.runs.get(Self::EVERY_RUN))
    }

    /// The index in `runs` of run `run`'s schedule: its own (labels
    /// compared as `--by` compares them), else the one for every run.
    pub fn run_index(&self, run: &str) -> Option<usize> {
        self.runs
            .get_index_of(run)
            .or_else(|| {
                let key = cell_key(run);
                self.runs.keys().position(|k| cell_key(k) == key)
            })
            .or_else(|| self.runs.get_index_of(Self::EVERY_RUN))
    }

    /// For every row of `table`, its run's schedule (an index into
    /// `runs`) and its step, checked: the run has a schedule, the step is
    /// a whole number within it, as is `reach` steps past it (what the
    /// law reads past a row's step), and where the table logs the
    /// learning rate too (`lr_col`), it is the schedule's at that step.
    pub fn rows(
        &self,
        table: &Table,
        run_col: Option<usize>,
        step_col: usize,
        lr_col: Option<usize>,
        reach: usize,
    ) -> Result<Vec<(usize, usize)>, DataError> {
        let steps = table.numbers(step_col, Check::NonNegative)?;
        let logged = match lr_col {
            Some(c) => Some(table.numbers(c, Check::NonNegative)?),
            None => None,
        };
        let mut out = Vec::with_capacity(steps.len());
        for (r, &step) in steps.iter().enumerate() {
            let run = run_col.map_or("", |c| &table.columns[c][r]);
            let Some(s) = self.run_index(run) else {
                let known: Vec<&str> = self.runs.keys().take(8).map(String::as_str).collect();
                return Err(row_error(
                    table,
                    r,
                    format!(
                        "run '{run}' has no schedule in {} (its runs: {}{})",
                        self.path.display(),
                        known.join(", "),
                        if self.runs.len() > 8 { ", ..." } else { "" }
                    ),
                ));
            };
            let lr = &self.runs[s].lr;
            if step.fract() != 0.0 {
                return Err(row_error(
                    table,
                    r,
                    format!("step {step} is not a whole number of steps"),
                ));
            }
            if step >= lr.len() as f64 {
                return Err(row_error(
                    table,
                    r,
                    format!(
                        "run '{run}' is logged at step {step}, but its schedule in {} ends at step {}",
                        self.runs[s].path.display(),
                        lr.len() - 1
                    ),
                ));
            }
            let k = step as usize;
            if k + reach >= lr.len() {
                return Err(row_error(
                    table,
                    r,
                    format!(
                        "run '{run}' is logged at step {step}, and the law reads its schedule \
                         {reach} step{} past that, but its schedule in {} ends at step {}",
                        if reach == 1 { "" } else { "s" },
                        self.runs[s].path.display(),
                        lr.len() - 1
                    ),
                ));
            }
            if let Some(l) = &logged {
                let (a, b) = (l[r], lr[k]);
                if (a - b).abs() > 1e-9 * a.abs().max(b.abs()) {
                    return Err(row_error(
                        table,
                        r,
                        format!(
                            "run '{run}' logs lr {a} at step {k}, its schedule in {} has {b}: \
                             is it the schedule of another run?",
                            self.runs[s].path.display()
                        ),
                    ));
                }
            }
            out.push((s, k));
        }
        Ok(out)
    }
}

fn row_error(table: &Table, r: usize, problem: String) -> DataError {
    DataError::Message(format!("{}: {problem}", table.place(r)))
}

/// A long CSV's schedules: `run,step,lr` or, without `run`, one for every
/// run.
fn read_long(t: &Table) -> Result<IndexMap<String, Schedule>, DataError> {
    let step_col = t.require("step", "the optimiser step")?;
    let lr_col = t.require("lr", "the learning rate at that step")?;
    let run_col = t.lookup("run")?;
    let steps = t.numbers(step_col, Check::NonNegative)?;
    let lrs = t.numbers(lr_col, Check::NonNegative)?;
    // Rows by run, in file order.
    let mut by_run: IndexMap<String, Vec<usize>> = IndexMap::new();
    for r in 0..t.rows() {
        let run = run_col.map_or(Schedules::EVERY_RUN, |c| &t.columns[c][r]);
        by_run.entry(run.to_string()).or_default().push(r);
    }
    let mut out = IndexMap::new();
    for (run, rows) in by_run {
        let lr = series(t, &rows, &steps, &lrs, &run)?;
        out.insert(
            run,
            Schedule {
                lr,
                path: t.path.clone(),
            },
        );
    }
    Ok(out)
}

/// A manifest's schedules: one `step,lr` file per run.
fn read_manifest(path: &Path, m: &Table) -> Result<IndexMap<String, Schedule>, DataError> {
    let run_col = m.require("run", "the run each schedule file is of")?;
    let file_col = m.require("file", "a schedule file, step,lr")?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut out: IndexMap<String, Schedule> = IndexMap::new();
    for r in 0..m.rows() {
        let run = m.columns[run_col][r].to_string();
        if run.is_empty() {
            return Err(row_error(m, r, "the run is empty".into()));
        }
        if out.contains_key(&run) {
            return Err(row_error(
                m,
                r,
                format!("run '{run}' is given twice: give each run one schedule"),
            ));
        }
        let file = dir.join(&m.columns[file_col][r]);
        if !file.is_file() {
            return Err(row_error(
                m,
                r,
                format!("schedule file {} not found", file.display()),
            ));
        }
        let t = Table::read(&file)?;
        if t.rows() == 0 {
            return Err(DataError::NoRows { path: file });
        }
        if t.lookup("run")?.is_some() {
            return Err(DataError::Message(format!(
                "{}:1: a manifest's schedule file holds one run: step,lr without a run column",
                file.display()
            )));
        }
        let steps = t.numbers(t.require("step", "the optimiser step")?, Check::NonNegative)?;
        let lrs = t.numbers(
            t.require("lr", "the learning rate at that step")?,
            Check::NonNegative,
        )?;
        let rows: Vec<usize> = (0..t.rows()).collect();
        let lr = series(&t, &rows, &steps, &lrs, &run)?;
        out.insert(run, Schedule { lr, path: file });
    }
    Ok(out)
}

/// One run's rows as its series: every step from 0, each once, in order.
fn series(
    t: &Table,
    rows: &[usize],
    steps: &[f64],
    lrs: &[f64],
    run: &str,
) -> Result<Vec<f64>, DataError> {
    let shown = if run == Schedules::EVERY_RUN {
        String::from("the schedule")
    } else {
        format!("run '{run}'")
    };
    let mut lr = Vec::with_capacity(rows.len());
    for &r in rows {
        let step = steps[r];
        let want = lr.len();
        if step != want as f64 {
            let why = if step.fract() != 0.0 {
                format!("step {step} is not a whole number")
            } else if want == 0 {
                format!("{shown} starts at step {step}: a schedule needs every step from 0")
            } else if step < want as f64 {
                format!(
                    "{shown} has step {step} again (or out of order): one row per step, in order"
                )
            } else {
                format!(
                    "{shown} jumps from step {} to step {step}: a schedule needs every step from 0",
                    want as f64 - 1.0
                )
            };
            return Err(row_error(t, r, why));
        }
        lr.push(lrs[r]);
    }
    Ok(lr)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn long_and_manifest_forms_read_the_same_schedules() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let long = write(
            d,
            "s.csv",
            "run,step,lr\na,0,0\na,1,1e-3\nb,0,0\na,2,5e-4\nb,1,2e-3\n",
        );
        let s = Schedules::read(&long).unwrap();
        assert_eq!(s.runs["a"].lr, [0.0, 1e-3, 5e-4]);
        assert_eq!(s.runs["b"].lr, [0.0, 2e-3]);
        write(d, "a.csv", "step,lr\n0,0\n1,1e-3\n2,5e-4\n");
        write(d, "b.csv", "step,lr\n0,0\n1,2e-3\n");
        let m = write(d, "m.csv", "run,file\na,a.csv\nb,b.csv\n");
        let t = Schedules::read(&m).unwrap();
        assert_eq!(t.runs["a"].lr, s.runs["a"].lr);
        assert_eq!(t.runs["b"].lr, s.runs["b"].lr);
        // Without a run column: one schedule for every run.
        let one = Schedules::read(&write(d, "one.csv", "step,lr\n0,1\n1,2\n")).unwrap();
        assert_eq!(one.get("anything").unwrap().lr, [1.0, 2.0]);
    }

    #[test]
    fn bad_schedules_are_refused_with_their_place() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for (text, says) in [
            ("run,step,lr\na,0,0\na,2,1\n", "line 3"),
            ("run,step,lr\na,0,0\na,2,1\n", "jumps from step 0 to step 2"),
            ("run,step,lr\na,1,0\n", "starts at step 1"),
            ("run,step,lr\na,0,0\na,0,1\n", "step 0 again"),
            ("run,step,lr\na,0,0\na,1.5,1\n", "not a whole number"),
            ("run,step,lr\na,0,-1\n", "negative"),
            ("run,step,lr\na,0,x\n", "'x' is not a number"),
            ("run,step\na,0\n", "missing required column 'lr'"),
        ] {
            let p = write(d, "bad.csv", text);
            let e = Schedules::read(&p).unwrap_err().to_string();
            assert!(e.contains(says), "{text:?}: {e}");
            assert!(e.contains("bad.csv"), "{e}");
        }
        write(d, "a.csv", "step,lr\n0,0\n");
        let m = write(d, "m.csv", "run,file\na,a.csv\na,a.csv\n");
        let e = Schedules::read(&m).unwrap_err().to_string();
        assert!(e.contains("given twice") && e.contains("line 3"), "{e}");
        let m = write(d, "m.csv", "run,file\na,nope.csv\n");
        let e = Schedules::read(&m).unwrap_err().to_string();
        assert!(e.contains("nope.csv") && e.contains("not found"), "{e}");
    }

    #[test]
    fn logged_rows_meet_their_schedule_step_by_step() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let s = Schedules::read(&write(
            d,
            "s.csv",
            "run,step,lr\na,0,0\na,1,1e-3\na,2,5e-4\nb,0,0\nb,1,2e-3\n",
        ))
        .unwrap();
        let rows = |text: &str| {
            let t = Table::read(&write(d, "log.csv", text)).unwrap();
            let lr = t.find("lr");
            s.rows(&t, t.find("run"), t.find("step").unwrap(), lr, 0)
        };
        assert_eq!(
            rows("run,step,loss\nb,1,3.0\na,2,2.5\n").unwrap(),
            [(1, 1), (0, 2)]
        );
        assert!(rows("run,step,loss,lr\na,1,3.0,0.001\n").is_ok());
        for (text, says) in [
            ("run,step,loss\nc,1,3.0\n", "run 'c' has no schedule"),
            ("run,step,loss\na,3,3.0\n", "ends at step 2"),
            ("run,step,loss\na,3,3.0\n", "log.csv line 2"),
            (
                "run,step,loss,lr\na,1,3.0,0.002\n",
                "logs lr 0.002 at step 1",
            ),
            ("run,step,loss\na,1.5,3.0\n", "not a whole number"),
        ] {
            let e = rows(text).unwrap_err().to_string();
            assert!(e.contains(says), "{text:?}: {e}");
        }
    }

    #[test]
    fn the_shared_multipower_schedules_match_their_logged_rows() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/multipower");
        assert!(
            root.is_dir(),
            "{} is missing: the shared data sit beside the clone",
            root.display()
        );
        let schedules = root.join("schedules");
        for size in ["25", "100", "400"] {
            for entry in std::fs::read_dir(root.join(size)).unwrap() {
                let log = entry.unwrap().path();
                let name = log.file_stem().unwrap().to_str().unwrap().to_string();
                let s = Schedules::read(&schedules.join(format!("{name}.csv"))).unwrap();
                let t = Table::read(&log).unwrap();
                let rows = s
                    .rows(&t, None, t.find("step").unwrap(), t.find("lr"), 0)
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(rows.len(), t.rows());
            }
        }
    }
}
