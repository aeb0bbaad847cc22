//! Errors of data ingest. Each message names the file it is about and,
//! where one applies, the line (1-based, the header is line 1) and the
//! column (its name as in the header and its 1-based index).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be opened, created or read. The cause is part of
    /// the message rather than an error source, so that printing the error
    /// chain does not say it twice.
    #[error("{}: cannot {action}: {cause}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        cause: std::io::Error,
    },

    /// The CSV reader or writer failed (I/O error in the middle of the file).
    #[error("{}: {cause}", path.display())]
    Csv { path: PathBuf, cause: csv::Error },

    #[error("{}: empty file, expected a header row", path.display())]
    Empty { path: PathBuf },

    #[error("{}: header but no data rows", path.display())]
    NoRows { path: PathBuf },

    /// `wanted` is quoted and may list aliases: `'tokens' (or 'D')`.
    #[error("{}:1: missing required column {wanted}; columns found: {found}", path.display())]
    MissingColumn {
        path: PathBuf,
        wanted: String,
        found: String,
    },

    /// Two header columns map to the same quantity (e.g. `N` and `n`, or
    /// `tokens` and `D`), so the reader cannot tell which one is meant.
    #[error(
        "{}:1: columns '{first}' ({first_index}) and '{second}' ({second_index}) both give {what}",
        path.display()
    )]
    DuplicateColumn {
        path: PathBuf,
        what: String,
        first: String,
        first_index: usize,
        second: String,
        second_index: usize,
    },

    #[error("{}:{line}: expected {expected} fields as in the header, found {found}", path.display())]
    Ragged {
        path: PathBuf,
        line: u64,
        expected: usize,
        found: usize,
    },

    /// A field that is not a valid value for its column.
    #[error("{}:{line}: column '{column}' ({index}): {problem}", path.display())]
    Value {
        path: PathBuf,
        line: u64,
        column: String,
        index: usize,
        problem: String,
    },

    /// A cell of a table given in memory that is not a valid value.
    #[error("{place}: column '{column}': {problem}")]
    Cell {
        place: String,
        column: String,
        problem: String,
    },

    /// A problem its message states in full, place included (columns
    /// in memory that do not make a table, a schedule a row does not meet).
    #[error("{0}")]
    Message(String),

    #[error("{}: all weights are zero, nothing to fit", path.display())]
    AllWeightsZero { path: PathBuf },

    #[error("{}:{line}: log file not found: {}", manifest.display(), log.display())]
    MissingLog {
        manifest: PathBuf,
        line: u64,
        log: PathBuf,
    },

    /// A manifest's `step_col` or `loss_col` names no column of the log.
    #[error(
        "{}:{line}: {role} '{name}' is not a column of {}; columns found: {found}",
        manifest.display(),
        log.display()
    )]
    LogColumn {
        manifest: PathBuf,
        line: u64,
        role: &'static str,
        name: String,
        log: PathBuf,
        found: String,
    },

    /// Every cell of a log's loss column is empty or not finite.
    #[error(
        "{}: column '{column}' ({index}) has no values (every cell is empty or not finite)",
        path.display()
    )]
    EmptyColumn {
        path: PathBuf,
        column: String,
        index: usize,
    },

    /// Two manifest rows would make the same curve; merging them silently
    /// would hide a mistake such as reading two loss columns under one label.
    #[error(
        "{}:{line}: same run, N and T as line {first_line}; give the rows distinct 'run' labels",
        manifest.display()
    )]
    DuplicateConfig {
        manifest: PathBuf,
        line: u64,
        first_line: u64,
    },

    /// Problems not tied to a file, e.g. "no points left after filters".
    #[error("{0}")]
    Other(String),
}
