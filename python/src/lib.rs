//! `sweepfit._core`: the Python package's extension module, a thin layer
//! over the sweepfit crate. Options arrive as JSON of the library's option
//! groups (`sweepfit::options`, the command line's own), data as named
//! columns, and results leave as the JSON fit.json holds and as NumPy
//! arrays; everything else is the library's. The Python code in
//! `sweepfit/` shapes these into DataFrames and figures.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use pyo3::create_exception;
use pyo3::exceptions::{PyKeyboardInterrupt, PyValueError};
use pyo3::prelude::*;
use sweepfit::lawfit::{LawFitOptions, Stage};
use sweepfit::options::BackendArgs;

mod data;
mod fit;
mod tools;

create_exception!(
    sweepfit._core,
    SweepfitError,
    PyValueError,
    "Bad input or a fit that cannot be done: the message the command line would print."
);

/// The error a Python caller sees: a `SweepfitError` (a `ValueError`)
/// with the command line's message, causes included.
pub(crate) fn error(e: anyhow::Error) -> PyErr {
    SweepfitError::new_err(format!("{e:#}"))
}

/// How often a progress callback is called at most.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// A Python progress callback, called as `callback(stage, iteration,
/// active, best)` at most every [`PROGRESS_EVERY`].
pub(crate) struct Progress {
    callback: Option<Py<PyAny>>,
    last: Option<Instant>,
}

impl Progress {
    pub(crate) fn new(callback: Option<Py<PyAny>>) -> Progress {
        Progress {
            callback,
            last: None,
        }
    }

    pub(crate) fn tell(&mut self, stage: Stage, p: sweepfit::optim::Progress) {
        let Some(cb) = &self.callback else { return };
        if self.last.is_some_and(|t| t.elapsed() < PROGRESS_EVERY) {
            return;
        }
        self.last = Some(Instant::now());
        Python::attach(|py| {
            if let Err(e) = cb.call1(py, (stage.name(), p.iteration, p.active, p.best)) {
                // A broken display must not end the fit.
                e.write_unraisable(py, None);
            }
        });
    }
}

/// Run `work` with the GIL released, so other Python threads go on, and
/// stop it within a fraction of a second when Python has a signal to
/// handle (Ctrl-C): the handler's exception (`KeyboardInterrupt`) is
/// raised here, and the interpreter is left as it was.
pub(crate) fn run_released<T: Send>(
    py: Python<'_>,
    work: impl FnOnce() -> anyhow::Result<T> + Send,
) -> PyResult<T> {
    let (out, raised) = py.detach(|| {
        let raised: Rc<RefCell<Option<PyErr>>> = Rc::default();
        let keep = raised.clone();
        let out = sweepfit::interrupt::with_check(
            move || {
                Python::attach(|py| match py.check_signals() {
                    Ok(()) => false,
                    Err(e) => {
                        *keep.borrow_mut() = Some(e);
                        true
                    }
                })
            },
            work,
        );
        let raised = raised.borrow_mut().take();
        (out, raised)
    });
    match out {
        Ok(v) => Ok(v),
        Err(e) if sweepfit::interrupt::is_interrupt(&e) => {
            Err(raised.unwrap_or_else(|| PyKeyboardInterrupt::new_err("interrupted")))
        }
        Err(e) => Err(error(e)),
    }
}

/// A law's work on the device `backend` chooses (a failed GPU run redone
/// on the CPU under `auto`), run by [`run_released`]: its result and what
/// the choice said ("note: ...", "warning: ...").
pub(crate) fn run_law<T: Send>(
    py: Python<'_>,
    backend: &BackendArgs,
    opts: &mut LawFitOptions,
    what: &str,
    work: impl FnMut(&LawFitOptions) -> anyhow::Result<T> + Send,
) -> PyResult<(T, Vec<String>)> {
    run_released(py, || {
        let mut said = Vec::new();
        let out = backend.run_law(opts, what, &mut |m| said.push(m), work)?;
        Ok((out, said))
    })
}

/// The progress line the command line shows for `stage` at this point,
/// for the Python package's own display of progress.
#[pyfunction]
fn progress_text(stage: &str, iteration: usize, active: usize, best: f64) -> PyResult<String> {
    let s = Stage::ALL
        .into_iter()
        .find(|s| s.name() == stage)
        .ok_or_else(|| error(anyhow::anyhow!("no progress stage is called {stage:?}")))?;
    Ok(s.message(sweepfit::optim::Progress {
        iteration,
        active,
        best,
    }))
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("SweepfitError", m.py().get_type::<SweepfitError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<fit::Fit>()?;
    m.add_class::<tools::Law>()?;
    m.add_function(wrap_pyfunction!(fit::fit, m)?)?;
    m.add_function(wrap_pyfunction!(fit::load, m)?)?;
    m.add_function(wrap_pyfunction!(fit::loads, m)?)?;
    m.add_function(wrap_pyfunction!(fit::bootstrap_shard, m)?)?;
    m.add_function(wrap_pyfunction!(tools::evaluate, m)?)?;
    m.add_function(wrap_pyfunction!(tools::compare, m)?)?;
    m.add_function(wrap_pyfunction!(tools::compare_sources, m)?)?;
    m.add_function(wrap_pyfunction!(tools::compare_law, m)?)?;
    m.add_function(wrap_pyfunction!(tools::compare_merge, m)?)?;
    m.add_function(wrap_pyfunction!(tools::simulate_preset, m)?)?;
    m.add_function(wrap_pyfunction!(tools::simulate_law, m)?)?;
    m.add_function(wrap_pyfunction!(tools::laws, m)?)?;
    m.add_function(wrap_pyfunction!(tools::devices, m)?)?;
    m.add_function(wrap_pyfunction!(progress_text, m)?)?;
    Ok(())
}
