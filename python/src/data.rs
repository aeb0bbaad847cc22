//! Data from Python: named columns, each a float64 array or a list of
//! strings, as a table of the library's.

use std::path::PathBuf;

use numpy::PyReadonlyArray1;
use pyo3::prelude::*;
use sweepfit::data::{Schedules, Table, TextColumn};
use sweepfit::lawfit::{BindOptions, ScheduleSource};

/// One column as the Python side hands it over.
#[derive(FromPyObject)]
pub(crate) enum Column<'py> {
    /// Numbers (float64), read in place.
    Numbers(PyReadonlyArray1<'py, f64>),
    /// Anything else, as text (labels, a split column).
    Text(Vec<String>),
}

/// Where a table comes from: columns in memory, or a CSV file read as the
/// command line reads it.
#[derive(FromPyObject)]
pub(crate) enum Source<'py> {
    Columns(Vec<(String, Column<'py>)>),
    Path(PathBuf),
}

/// The table of `source`; `origin` names columns in memory in messages.
pub(crate) fn table(origin: &str, source: Source<'_>) -> PyResult<Table> {
    let columns = match source {
        Source::Path(p) => return Table::read(&p).map_err(|e| crate::error(e.into())),
        Source::Columns(c) => c,
    };
    let mut out = Vec::with_capacity(columns.len());
    for (name, c) in columns {
        let text = match c {
            // Copied once, as numbers (never through text): a view would
            // let another Python thread change the data under a running
            // fit, which holds no lock on it.
            Column::Numbers(a) => TextColumn::from_numbers(a.as_array().to_vec()),
            Column::Text(cells) => {
                let mut t = TextColumn::with_capacity(cells.len());
                for s in &cells {
                    t.push(s.trim());
                }
                t
            }
        };
        out.push((name, text));
    }
    Table::from_columns(origin, out).map_err(|e| crate::error(e.into()))
}

/// The runs' schedules of a law that sums along the steps: a file read as
/// `--schedule` reads it, or columns `run,step,lr` in memory.
pub(crate) fn schedules(source: Option<Source<'_>>) -> PyResult<Option<Schedules>> {
    let read = match source {
        None => return Ok(None),
        Some(Source::Path(p)) => Schedules::read(&p),
        Some(columns) => Schedules::from_table(&table("the schedules given", columns)?),
    };
    read.map(Some).map_err(|e| crate::error(e.into()))
}

/// `opts` with the schedules of `source`, where there are any.
pub(crate) fn with_schedules(
    mut opts: BindOptions,
    source: Option<Source<'_>>,
) -> PyResult<BindOptions> {
    if let Some(s) = schedules(source)? {
        opts.schedule = Some(ScheduleSource::Read(s));
    }
    Ok(opts)
}
