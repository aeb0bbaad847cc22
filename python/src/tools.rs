//! The rest of the command line's work from Python: hold-out evaluation,
//! simulation, the built-in laws, a law on its own, and the GPU adapters.

use std::path::PathBuf;

use numpy::{IntoPyArray, PyArray1};
use pyo3::prelude::*;
use serde::Deserialize;
use sweepfit::concurrent::Event;
use sweepfit::data::Check;
use sweepfit::law::LawFile;
use sweepfit::lawfit::{self, BindOptions, LawEvalOptions, LawFitOptions, Stage};
use sweepfit::options::{
    law_source, sim_options, BackendArgs, EvalSettings, FitFlags, LawArgs, SimFlags,
};
use sweepfit::report;

use crate::data::{table, with_schedules, Source};
use crate::{error, run_law, Progress};

/// `eval`'s options: a fit's, the protocols', the device.
#[derive(Deserialize, Default)]
#[serde(default)]
struct EvalRequest {
    #[serde(flatten)]
    law: LawArgs,
    #[serde(flatten)]
    fit: FitFlags,
    #[serde(flatten)]
    eval: EvalSettings,
    #[serde(flatten)]
    backend: BackendArgs,
}

impl EvalRequest {
    /// The request in `text`, with its fit's and evaluation's options,
    /// every option checked before any work starts.
    fn parse(text: &str) -> PyResult<(EvalRequest, LawFitOptions, LawEvalOptions)> {
        let req: EvalRequest =
            serde_json::from_str(text).map_err(|e| error(anyhow::anyhow!("options: {e}")))?;
        let fit = req
            .fit
            .law_fit_options(&req.eval.by, req.eval.test_where.clone())
            .map_err(error)?;
        let opts = req.eval.options().map_err(error)?;
        req.backend.check().map_err(error)?;
        Ok((req, fit, opts))
    }
}

/// The hold-out protocols on `columns` (with the runs' schedules of
/// `schedule`, a path or columns run,step,lr): eval.json's JSON, and the
/// notes and warnings said on the way.
#[pyfunction]
#[pyo3(signature = (columns, origin, request, progress=None, schedule=None))]
pub(crate) fn evaluate(
    py: Python<'_>,
    columns: Source<'_>,
    origin: &str,
    request: &str,
    progress: Option<Py<PyAny>>,
    schedule: Option<Source<'_>>,
) -> PyResult<(String, Vec<String>)> {
    let (req, mut fit, opts) = EvalRequest::parse(request)?;
    let (file, text, law_origin) = req.law.law_source().map_err(error)?;
    let mut table = table(origin, columns)?;
    let bind = with_schedules(
        req.fit
            .bind_options(&req.eval.by, req.eval.test_where.as_ref()),
        schedule,
    )?;
    let bound = lawfit::bind(file, &text, &law_origin, &mut table, &bind).map_err(error)?;
    let mut messages = bound.messages();
    let mut progress = Progress::new(progress);
    let (out, said) = run_law(py, &req.backend, &mut fit, "evaluation", |fit| {
        lawfit::evaluate(&bound, &table, fit, &opts, |p| {
            progress.tell(Stage::Folds, p)
        })
    })?;
    messages.extend(said);
    let json = report::pretty_json(&out.report).map_err(error)?;
    Ok((json, messages))
}

/// Several laws compared on `columns` under the same protocols: the JSON
/// of compare.json, and the notes and warnings said on the way. `laws` are
/// built-ins' names or formulas, `law_files` law files; `schedule` as for
/// [`evaluate`].
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (columns, origin, laws, law_files, request, progress=None, schedule=None))]
pub(crate) fn compare(
    py: Python<'_>,
    columns: Source<'_>,
    origin: &str,
    laws: Vec<String>,
    law_files: Vec<PathBuf>,
    request: &str,
    progress: Option<Py<PyAny>>,
    schedule: Option<Source<'_>>,
) -> PyResult<(String, Vec<String>)> {
    let (req, mut fit, opts) = EvalRequest::parse(request)?;
    let mut sources = Vec::new();
    for l in &laws {
        sources.push(law_source(Some(l), None).map_err(error)?);
    }
    for f in &law_files {
        sources.push(law_source(None, Some(f)).map_err(error)?);
    }
    let table = table(origin, columns)?;
    let binding = with_schedules(
        req.fit
            .bind_options(&req.eval.by, req.eval.test_where.as_ref()),
        schedule,
    )?;
    let mut progress = Progress::new(progress);
    let (out, said) = run_law(py, &req.backend, &mut fit, "comparison", |fit| {
        lawfit::compare(&sources, &table, &binding, fit, &opts, |e| {
            if let Event::Progress(_, p) = e {
                progress.tell(Stage::Folds, p)
            }
        })
    })?;
    let json = report::pretty_json(&out).map_err(error)?;
    Ok((json, said))
}

/// The laws of a comparison checked, with every option, before any of its
/// work is handed out: per law, what [`compare_law`] takes, `("law",
/// name or formula, "")` or `("file", text, origin)` (a law file read
/// here, so that workers on other machines need not see it).
#[pyfunction]
pub(crate) fn compare_sources(
    laws: Vec<String>,
    law_files: Vec<PathBuf>,
    request: &str,
) -> PyResult<Vec<(String, String, String)>> {
    EvalRequest::parse(request)?;
    if laws.is_empty() && law_files.is_empty() {
        return Err(error(anyhow::anyhow!(
            "give at least one law to compare (laws= or law_files=)"
        )));
    }
    let mut out = Vec::new();
    for l in laws {
        law_source(Some(&l), None).map_err(error)?;
        out.push(("law".into(), l, String::new()));
    }
    for f in &law_files {
        let (_, text, origin) = law_source(None, Some(f)).map_err(error)?;
        out.push(("file".into(), text, origin));
    }
    Ok(out)
}

/// One law of a comparison (a law of [`compare_sources`]) evaluated on
/// `columns`: its part of compare.json as JSON (see
/// `sweepfit::lawfit::LawResult`), and the notes and warnings said;
/// `schedule` as for [`evaluate`].
#[pyfunction]
#[pyo3(signature = (columns, origin, law, request, schedule=None))]
pub(crate) fn compare_law(
    py: Python<'_>,
    columns: Source<'_>,
    origin: &str,
    law: (String, String, String),
    request: &str,
    schedule: Option<Source<'_>>,
) -> PyResult<(String, Vec<String>)> {
    let (req, mut fit, opts) = EvalRequest::parse(request)?;
    let source = match law.0.as_str() {
        "law" => law_source(Some(&law.1), None).map_err(error)?,
        "file" => (LawFile::parse(&law.1, &law.2).map_err(error)?, law.1, law.2),
        other => return Err(error(anyhow::anyhow!("no kind of law is called {other:?}"))),
    };
    let table = table(origin, columns)?;
    let binding = with_schedules(
        req.fit
            .bind_options(&req.eval.by, req.eval.test_where.as_ref()),
        schedule,
    )?;
    let (out, said) = run_law(py, &req.backend, &mut fit, "comparison", |fit| {
        lawfit::compare_law(&source, &table, &binding, fit, &opts, |_| {})
    })?;
    let json = report::pretty_json(&out).map_err(error)?;
    Ok((json, said))
}

/// compare.json's JSON from the laws' parts ([`compare_law`]'s), in the
/// order the laws were given, as one comparison of them all reports it;
/// `seconds`, the wall time it took.
#[pyfunction]
pub(crate) fn compare_merge(parts: Vec<String>, request: &str, seconds: f64) -> PyResult<String> {
    let (_, fit, _) = EvalRequest::parse(request)?;
    let results = parts
        .iter()
        .map(|p| report::parse_json::<lawfit::LawResult>(p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error(anyhow::anyhow!("a law's part of the comparison: {e}")))?;
    report::pretty_json(&lawfit::merge_laws(results, &fit, seconds)).map_err(error)
}

/// The looplm20 sweep simulated (`sweepfit simulate`): its columns run,
/// N, T, tokens, loss, weight, and the truth as JSON.
#[pyfunction]
#[allow(clippy::type_complexity)]
pub(crate) fn simulate_preset<'py>(
    py: Python<'py>,
    options: &str,
    seed: u64,
) -> PyResult<(
    Vec<String>,
    Vec<(String, Bound<'py, PyArray1<f64>>)>,
    String,
)> {
    let flags: SimFlags =
        serde_json::from_str(options).map_err(|e| error(anyhow::anyhow!("options: {e}")))?;
    let o = sim_options(seed, &flags).map_err(error)?;
    let ds = sweepfit::simulate::simulate_looplm20(&o);
    let mut run = Vec::with_capacity(ds.points());
    let (mut n, mut t) = (
        Vec::with_capacity(ds.points()),
        Vec::with_capacity(ds.points()),
    );
    for c in &ds.configs {
        for _ in c.range() {
            run.push(c.run.clone());
            n.push(c.n);
            t.push(c.t);
        }
    }
    let truth: serde_json::Map<String, serde_json::Value> =
        sweepfit::simulate::looplm20_truth_by_name()
            .map(|(k, v)| (k.to_string(), v.into()))
            .collect();
    let truth = serde_json::to_string(&truth).map_err(|e| error(e.into()))?;
    Ok((
        run,
        vec![
            ("N".into(), n.into_pyarray(py)),
            ("T".into(), t.into_pyarray(py)),
            ("tokens".into(), ds.tokens.into_pyarray(py)),
            ("loss".into(), ds.loss.into_pyarray(py)),
            ("weight".into(), ds.weight.into_pyarray(py)),
        ],
        truth,
    ))
}

/// A law simulated at every combination of `at` (`sweepfit simulate
/// --law`): header, rows as text, and the truth as JSON.
#[pyfunction]
#[pyo3(signature = (law, law_file, params, at, vars, noise, seed, schedule=None))]
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
pub(crate) fn simulate_law(
    law: Option<&str>,
    law_file: Option<PathBuf>,
    params: Vec<(String, f64)>,
    at: Vec<(String, Vec<f64>)>,
    vars: Vec<(String, String)>,
    noise: f64,
    seed: u64,
    schedule: Option<crate::data::Source<'_>>,
) -> PyResult<(Vec<String>, Vec<Vec<String>>, String)> {
    let (mut file, text, origin) = law_source(law, law_file.as_deref()).map_err(error)?;
    lawfit::bind_columns(&mut file, &at, &vars).map_err(error)?;
    let schedules = crate::data::schedules(schedule)?;
    let sim = lawfit::LawSimulation {
        params,
        at,
        noise,
        seed,
        schedules,
    };
    let out = lawfit::simulate(file, &text, &origin, &sim).map_err(error)?;
    let truth = report::pretty_json(&out.truth).map_err(error)?;
    Ok((out.header, out.rows, truth))
}

/// The built-in laws: (name, description, formula).
#[pyfunction]
pub(crate) fn laws() -> Vec<(String, String, String)> {
    sweepfit::law::builtin_names()
        .iter()
        .filter_map(|n| sweepfit::law::builtin_law(n))
        .map(|f| (f.name, f.description, f.formula))
        .collect()
}

/// The GPU adapters wgpu sees, as `sweepfit devices --json` prints them.
#[pyfunction]
pub(crate) fn devices() -> PyResult<String> {
    use sweepfit::backend::gpu;
    let inst = gpu::instance().map_err(error)?;
    let adapters: Vec<gpu::AdapterSummary> = gpu::all_adapters(&inst)
        .iter()
        .map(gpu::AdapterSummary::of)
        .collect();
    serde_json::to_string(&adapters).map_err(|e| error(e.into()))
}

/// A law: a built-in's name, a formula, or a law file.
#[pyclass(module = "sweepfit._core", frozen)]
pub(crate) struct Law {
    file: LawFile,
    text: String,
    origin: String,
}

#[pymethods]
impl Law {
    #[new]
    #[pyo3(signature = (law=None, law_file=None))]
    fn new(law: Option<&str>, law_file: Option<PathBuf>) -> PyResult<Law> {
        let (file, text, origin) = law_source(law, law_file.as_deref()).map_err(error)?;
        Ok(Law { file, text, origin })
    }

    #[getter]
    fn name(&self) -> String {
        self.file.name.clone()
    }

    #[getter]
    fn description(&self) -> String {
        self.file.description.clone()
    }

    #[getter]
    fn formula(&self) -> String {
        self.file.formula.clone()
    }

    /// The law file's text (TOML).
    #[getter]
    fn text(&self) -> String {
        self.text.clone()
    }

    /// Declared variables and the columns they read (empty for a bare
    /// formula, whose variables are the names that name a data column).
    #[getter]
    fn variables(&self) -> Vec<(String, String)> {
        self.file
            .variables
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The parameters, in the law's order, where the variables are
    /// declared; None for a bare formula until it meets data.
    #[getter]
    fn parameters(&self) -> PyResult<Option<Vec<String>>> {
        if self.file.variables.is_empty() {
            return Ok(None);
        }
        let law = self.file.compile(&self.origin).map_err(error)?;
        Ok(Some(law.params))
    }

    /// The law at every row of `columns` with parameters `params`
    /// (every one of the law's, by name); names bind to columns as in a
    /// fit (`vars` as --var), and a law that sums along the steps reads
    /// the runs' schedules of `schedule`.
    #[pyo3(signature = (columns, origin, params, vars, schedule=None))]
    fn evaluate<'py>(
        &self,
        py: Python<'py>,
        columns: Source<'py>,
        origin: &str,
        params: Vec<(String, f64)>,
        vars: Vec<(String, String)>,
        schedule: Option<Source<'py>>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let mut t = table(origin, columns)?;
        let bind = BindOptions {
            vars,
            ..Default::default()
        };
        let bind = with_schedules(bind, schedule)?;
        let b = lawfit::bind(self.file.clone(), &self.text, &self.origin, &mut t, &bind)
            .map_err(error)?;
        let law = &b.law;
        let mut p = Vec::with_capacity(law.params.len());
        for name in &law.params {
            match params.iter().find(|(n, _)| n == name) {
                Some((_, v)) => p.push(*v),
                None => {
                    return Err(error(anyhow::anyhow!(
                        "no value for the parameter {name} (the law's parameters: {})",
                        law.params.join(", ")
                    )))
                }
            }
        }
        if let Some((n, _)) = params.iter().find(|(n, _)| !law.params.contains(n)) {
            return Err(error(anyhow::anyhow!(
                "{n} is not a parameter of the law (its parameters: {}; its variables: {})",
                law.params.join(", "),
                law.variables.join(", ")
            )));
        }
        let mut cols = Vec::with_capacity(b.columns.len());
        for &c in &b.columns {
            cols.push(t.numbers(c, Check::Finite).map_err(|e| error(e.into()))?);
        }
        let mut point = vec![0.0; cols.len()];
        let out: Vec<f64> = (0..t.rows())
            .map(|r| {
                for (x, c) in point.iter_mut().zip(&cols) {
                    *x = c[r];
                }
                law.eval(&point, &p)
            })
            .collect();
        Ok(out.into_pyarray(py))
    }

    fn __repr__(&self) -> String {
        format!("Law({:?}: {})", self.file.name, self.file.formula)
    }
}
