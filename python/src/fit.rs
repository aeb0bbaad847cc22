//! A fit from Python: `fit` runs the library's driver on a table made of
//! the caller's columns, `load` reads a fit.json, and `Fit` answers for
//! either (its report as fit.json's JSON, predictions, the picture's
//! panels).

use std::path::PathBuf;

use numpy::{IntoPyArray, PyArray1};
use pyo3::prelude::*;
use sweepfit::bootstrap::BootstrapOptions;
use sweepfit::data::{Schedules, Table};
use sweepfit::lawfit::{self, BoundLaw, LawFit, LawFitOptions};
use sweepfit::options::FitRequest;
use sweepfit::report;

use crate::data::{schedules, table, with_schedules, Source};
use crate::{error, run_law, Progress};

/// A law fit: its report, and for a fit made here the rows it was fitted
/// to with their predictions.
#[pyclass(module = "sweepfit._core", frozen)]
pub(crate) struct Fit {
    fit: LawFit,
    data: Option<FitData>,
    /// What the binding said and warned ("note: ...", "warning: ...").
    messages: Vec<String>,
}

#[derive(Clone)]
struct FitData {
    table: Table,
    /// The column of schedule handles `--schedule` added, left out of the
    /// rows (see `BoundLaw::handle_column`).
    handles: Option<usize>,
    /// The runs' schedules it was fitted with, which its predictions and
    /// picture read unless given others.
    schedules: Option<Schedules>,
    pred: Vec<f64>,
    loss: Vec<f64>,
    held_out: Vec<bool>,
}

/// Fit a law to `columns`: `request` is the JSON of the command line's
/// `fit` options (`sweepfit::options::FitRequest`), `progress` a callback
/// `(stage, iteration, active, best)`, `schedule` the runs' schedules (a
/// path, or columns run,step,lr).
#[pyfunction]
#[pyo3(signature = (columns, origin, request, progress=None, schedule=None))]
pub(crate) fn fit(
    py: Python<'_>,
    columns: Source<'_>,
    origin: &str,
    request: &str,
    progress: Option<Py<PyAny>>,
    schedule: Option<Source<'_>>,
) -> PyResult<Fit> {
    let (req, mut opts, boot) = parse_request(request)?;
    let (table, bound) = bind(&req, origin, columns, schedule)?;
    let mut messages = bound.messages();
    let mut progress = Progress::new(progress);
    let (out, said) = run_law(py, &req.backend, &mut opts, "fit", |opts| {
        lawfit::fit_and_bootstrap(&bound, &table, opts, boot.as_ref(), |(stage, p)| {
            progress.tell(stage, p)
        })
    })?;
    messages.extend(said);
    let fit = LawFit::from_report(out.report, "the fit").map_err(error)?;
    Ok(Fit {
        fit,
        data: Some(FitData {
            handles: bound.handle_column(&table),
            schedules: bound.schedules.clone(),
            table,
            pred: out.pred,
            loss: out.loss,
            held_out: out.held_out,
        }),
        messages,
    })
}

/// The fit `request` asks for (the JSON of the command line's `fit`
/// options, `sweepfit::options::FitRequest`), every option checked.
fn parse_request(request: &str) -> PyResult<(FitRequest, LawFitOptions, Option<BootstrapOptions>)> {
    let req: FitRequest =
        serde_json::from_str(request).map_err(|e| error(anyhow::anyhow!("options: {e}")))?;
    let (opts, boot) = req.options().map_err(error)?;
    Ok((req, opts, boot))
}

/// The bootstrap a request asks for; an error where it asks for none.
fn asked(boot: Option<BootstrapOptions>) -> PyResult<BootstrapOptions> {
    boot.ok_or_else(|| error(anyhow::anyhow!("the request asks for no bootstrap")))
}

/// `req`'s law bound to the table of `columns`, with the runs' schedules
/// of `schedule`.
fn bind(
    req: &FitRequest,
    origin: &str,
    columns: Source<'_>,
    schedule: Option<Source<'_>>,
) -> PyResult<(Table, BoundLaw)> {
    let (file, text, law_origin) = req.law.law_source().map_err(error)?;
    let mut table = table(origin, columns)?;
    let opts = with_schedules(req.bind_options(), schedule)?;
    let bound = lawfit::bind(file, &text, &law_origin, &mut table, &opts).map_err(error)?;
    Ok((table, bound))
}

/// One shard of a fit's bootstrap: replicates `start..end` of each scheme
/// of the bootstrap `request` asks for, refitted from the fit whose
/// fit.json JSON is `fit_json` (the same request's fit, made without its
/// bootstrap) on `columns`; the shard's reports as JSON, for
/// `Fit.with_bootstrap`.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (columns, origin, request, fit_json, start, end, schedule=None))]
pub(crate) fn bootstrap_shard(
    py: Python<'_>,
    columns: Source<'_>,
    origin: &str,
    request: &str,
    fit_json: &str,
    start: usize,
    end: usize,
    schedule: Option<Source<'_>>,
) -> PyResult<String> {
    let (req, mut opts, boot) = parse_request(request)?;
    let boot = asked(boot)?;
    let (table, bound) = bind(&req, origin, columns, schedule)?;
    let fitted = report::parse_json(fit_json)
        .map_err(|e| error(anyhow::anyhow!("the fit to bootstrap: {e}")))?;
    let (fits, held) = lawfit::fits_in(&bound, &table, &opts, &fitted).map_err(error)?;
    let (out, _) = run_law(py, &req.backend, &mut opts, "bootstrap", |opts| {
        lawfit::bootstrap_shard(
            &bound,
            &table,
            opts,
            &held,
            &fits,
            &boot,
            start..end,
            |_| {},
        )
    })?;
    report::pretty_json(&out).map_err(error)
}

/// Read a fit.json written by `sweepfit fit` or by `Fit.write_json`.
#[pyfunction]
pub(crate) fn load(path: PathBuf) -> PyResult<Fit> {
    let fit = lawfit::read_law_fit(&path).map_err(error)?;
    Ok(Fit {
        fit,
        data: None,
        messages: Vec::new(),
    })
}

/// A fit from fit.json's JSON text (a fit made elsewhere: a Ray task's),
/// with the notes and warnings its fit said.
#[pyfunction]
pub(crate) fn loads(text: &str, messages: Vec<String>) -> PyResult<Fit> {
    let r = report::parse_json(text).map_err(|e| error(anyhow::anyhow!("the fit: {e}")))?;
    Ok(Fit {
        fit: LawFit::from_report(r, "the fit").map_err(error)?,
        data: None,
        messages,
    })
}

#[pymethods]
impl Fit {
    /// This fit with its bootstrap joined from `shards` (the JSON of
    /// `bootstrap_shard`'s reports, in the order of their replicates) as
    /// the bootstrap `request` asks for; `seconds`, its wall time.
    fn with_bootstrap(&self, shards: Vec<String>, request: &str, seconds: f64) -> PyResult<Fit> {
        let boot = asked(parse_request(request)?.2)?;
        let shards = shards
            .iter()
            .map(|s| report::parse_json(s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| error(anyhow::anyhow!("a bootstrap shard: {e}")))?;
        let joined =
            lawfit::join_shards(shards, &boot, &self.fit.law.params, seconds).map_err(error)?;
        let mut r = self.fit.report.clone();
        if r.groups.is_empty() {
            r.bootstrap = joined.into_iter().next();
        } else {
            for (g, b) in r.groups.iter_mut().zip(joined) {
                g.bootstrap = Some(b);
            }
        }
        Ok(Fit {
            fit: LawFit::from_report(r, "the fit").map_err(error)?,
            data: self.data.clone(),
            messages: self.messages.clone(),
        })
    }

    /// The report, as the JSON text of fit.json.
    fn report_json(&self) -> PyResult<String> {
        report::pretty_json(&self.fit.report).map_err(error)
    }

    /// The command line's table of the fit.
    fn summary(&self) -> String {
        report::law_summary(&self.fit.report)
    }

    /// Notes and warnings about how the law was read.
    fn messages(&self) -> Vec<String> {
        self.messages.clone()
    }

    /// The law's parameter names, in its order.
    fn param_names(&self) -> Vec<String> {
        self.fit.law.params.clone()
    }

    /// Whether the fitted rows are at hand (a fit made here, not loaded).
    fn has_data(&self) -> bool {
        self.data.is_some()
    }

    /// The fitted rows: every column as text (as given), then the loss
    /// read, the prediction and whether the row was held out.
    #[allow(clippy::type_complexity)]
    fn rows<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(
        Vec<(String, Vec<String>)>,
        Bound<'py, PyArray1<f64>>,
        Bound<'py, PyArray1<f64>>,
        Bound<'py, PyArray1<bool>>,
    )> {
        let d = self.data()?;
        // Without the schedule handles, as pred.csv.
        let cols = d
            .table
            .headers
            .iter()
            .zip(&d.table.columns)
            .enumerate()
            .filter(|&(c, _)| Some(c) != d.handles)
            .map(|(_, (h, c))| (h.clone(), c.iter().map(String::from).collect()))
            .collect();
        Ok((
            cols,
            d.loss.clone().into_pyarray(py),
            d.pred.clone().into_pyarray(py),
            d.held_out.clone().into_pyarray(py),
        ))
    }

    /// Predictions at the rows of `columns`, and per bootstrap scheme its
    /// band (kind, lo, hi); a law that sums along the steps reads the runs'
    /// schedules of `schedule`, else those it was fitted with.
    #[allow(clippy::type_complexity)]
    #[pyo3(signature = (columns, origin, schedule=None))]
    fn predict<'py>(
        &self,
        py: Python<'py>,
        columns: Source<'py>,
        origin: &str,
        schedule: Option<Source<'py>>,
    ) -> PyResult<(
        Bound<'py, PyArray1<f64>>,
        Vec<(String, Bound<'py, PyArray1<f64>>, Bound<'py, PyArray1<f64>>)>,
    )> {
        let mut t = table(origin, columns)?;
        let given = schedules(schedule)?;
        let p = lawfit::predict_table(&self.fit, &mut t, self.schedules(given.as_ref()))
            .map_err(error)?;
        let bands = p
            .bands
            .into_iter()
            .map(|(k, lo, hi)| (k, lo.into_pyarray(py), hi.into_pyarray(py)))
            .collect();
        Ok((p.pred.into_pyarray(py), bands))
    }

    /// Predictions on the product of `at`'s values (variable, values), as
    /// `sweepfit predict --at` writes them: header, rows, warnings. A law
    /// that sums along the steps predicts each run of `schedule`, else of
    /// the schedules it was fitted with.
    #[allow(clippy::type_complexity)]
    #[pyo3(signature = (at, schedule=None))]
    fn predict_at(
        &self,
        at: Vec<(String, Vec<f64>)>,
        schedule: Option<Source<'_>>,
    ) -> PyResult<(Vec<String>, Vec<Vec<String>>, Vec<String>)> {
        let r = &self.fit.report;
        for (name, values) in &at {
            let domain = self.fit.file.domain_of(name);
            if let Some(why) = values.iter().find_map(|&v| domain?.problem(name, v)) {
                return Err(error(anyhow::anyhow!("{name}: {why}")));
            }
        }
        let given = schedules(schedule)?;
        let (header, rows) = lawfit::predict_rows(
            r,
            &self.fit.law,
            self.fit.axis.as_deref(),
            &at,
            self.schedules(given.as_ref()),
        )
        // The library speaks the command line's `--at NAME`; here a value
        // is given as the keyword NAME.
        .map_err(|e| error(anyhow::anyhow!(format!("{e:#}").replace("--at ", ""))))?;
        Ok((header, rows, lawfit::extrapolation_warnings(r, &at)))
    }

    /// The Real-vs-Pred picture as JSON: its title, axes and panels (each
    /// with its title, place in the grid, x, loss, prediction, held-out
    /// marks and band, and for a law that sums along the steps its run's
    /// learning rate, from `schedule` or the schedules it was fitted with),
    /// over the fitted rows or over `columns`.
    #[pyo3(signature = (columns=None, origin="the data", schedule=None))]
    fn panels(
        &self,
        columns: Option<Source<'_>>,
        origin: &str,
        schedule: Option<Source<'_>>,
    ) -> PyResult<String> {
        let given = schedules(schedule)?;
        let schedules = self.schedules(given.as_ref());
        let mut given;
        let t = match (columns, &self.data) {
            (Some(c), _) => {
                given = table(origin, c)?;
                self.fit.fill_defaults(&mut given).map_err(error)?;
                &given
            }
            (None, Some(d)) => &d.table,
            (None, None) => {
                return Err(error(anyhow::anyhow!(
                    "a loaded fit has no rows to draw: pass the data (plot(data=...))"
                )))
            }
        };
        let (panels, opts) = lawfit::panels(
            &self.fit.law,
            self.fit.axis.as_deref(),
            &self.fit.report,
            t,
            schedules,
        )
        .map_err(error)?;
        let layout = report::grid_layout(&panels);
        let x_scale = match report::resolve_x_scale(&panels, &opts) {
            report::XScale::Log => "log",
            _ => "linear",
        };
        let items: Vec<serde_json::Value> = panels
            .iter()
            .enumerate()
            .map(|(i, p)| {
                serde_json::json!({
                    "title": report::panel_title(p, layout.dup[i]),
                    "row": layout.cells[i].0,
                    "col": layout.cells[i].1,
                    "x": p.tokens,
                    "loss": p.loss,
                    "pred": p.pred,
                    "held_out": p.held_out,
                    "band": p.band,
                    "schedule": p.schedule,
                })
            })
            .collect();
        let json = serde_json::json!({
            "title": opts.title.clone().unwrap_or_else(|| report::DEFAULT_TITLE.to_string()),
            "x_label": opts.x_label,
            "x_scale": x_scale,
            "band_label": opts.band_label,
            "rows": layout.rows.len(),
            "cols": layout.cols.len(),
            "panels": items,
        });
        serde_json::to_string(&json).map_err(|e| error(e.into()))
    }

    /// Write the report as fit.json to `path`, which the command line's
    /// `predict` and `plot` read; an existing file only when `overwrite`.
    fn write_json(&self, path: PathBuf, overwrite: bool) -> PyResult<()> {
        if path.exists() && !overwrite {
            return Err(error(anyhow::anyhow!(
                "{}: exists (pass overwrite=True to replace it)",
                path.display()
            )));
        }
        report::write_pretty(&path, &self.fit.report).map_err(error)
    }
}

impl Fit {
    /// `given`, else the schedules of the fit's own rows.
    fn schedules<'a>(&'a self, given: Option<&'a Schedules>) -> Option<&'a Schedules> {
        given.or_else(|| self.data.as_ref().and_then(|d| d.schedules.as_ref()))
    }

    fn data(&self) -> PyResult<&FitData> {
        self.data.as_ref().ok_or_else(|| {
            error(anyhow::anyhow!(
                "a loaded fit has no fitted rows (they are not in fit.json)"
            ))
        })
    }
}
