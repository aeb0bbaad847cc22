//! `sweepfit predict`: evaluate a fitted law on a grid of (N, T, tokens).
//!
//! Each axis is given as text: a comma list of items, each a number or a
//! range `START:STOP:COUNT` (COUNT evenly spaced values including both
//! ends) with an optional spacing `:lin` (the default) or `:log`. The grid
//! is the Cartesian product of the three axes, N outermost and tokens
//! innermost, each axis in the order its values were given (ranges may run
//! downwards; duplicates are kept).
//!
//! The predicted columns come from a [`Predictor`]: `pred`, the law at the
//! fitted parameters, and when the fit was bootstrapped, per resampling
//! scheme `lo_<kind>` and `hi_<kind>`: the percentile band of the
//! replicates' predictions at the fit's interval level.

use std::fmt;
use std::io::{self, Write};

use crate::law::{predict_raw, LawKind, NP, PARAM_NAMES};
use crate::report::FitReport;

/// Most values one axis, and most rows the whole grid, may have.
pub const MAX_ROWS: usize = 10_000_000;

/// One of the three grid axes: its option name and the values it admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Axis {
    /// Model size: every value > 0.
    N,
    /// Recurrent step: every value > 0.
    T,
    /// Tokens seen: every value >= 0.
    Tokens,
}

impl Axis {
    /// The command-line option that sets this axis.
    pub fn option(self) -> &'static str {
        match self {
            Axis::N => "--N",
            Axis::T => "--T",
            Axis::Tokens => "--tokens",
        }
    }

    /// The CSV column of this axis.
    pub fn column(self) -> &'static str {
        match self {
            Axis::N => "N",
            Axis::T => "T",
            Axis::Tokens => "tokens",
        }
    }

    fn admits(self, v: f64) -> bool {
        match self {
            Axis::N | Axis::T => v > 0.0,
            Axis::Tokens => v >= 0.0,
        }
    }

    fn domain(self) -> &'static str {
        match self {
            Axis::N | Axis::T => "> 0",
            Axis::Tokens => ">= 0",
        }
    }
}

/// A grid axis that could not be parsed: the option, the offending item and
/// what is wrong with it.
#[derive(Debug, Clone, PartialEq)]
pub struct AxisError {
    pub option: &'static str,
    /// The item (or the whole text, for an empty one) that failed.
    pub text: String,
    pub reason: String,
}

impl fmt::Display for AxisError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{} '{}': {}", self.option, self.text, self.reason)
    }
}

impl std::error::Error for AxisError {}

/// Parse the text of one axis: a comma list of numbers and ranges
/// `START:STOP:COUNT[:lin|:log]`. Numbers use standard float syntax
/// (`2.8e9`, `4`, `0.5`; no `_` separators) and must be finite and in the
/// axis's domain. COUNT is a whole number >= 1 (20, 1e3); COUNT 1 requires
/// START == STOP. `log` spacing needs START and STOP > 0. Spaces around
/// items and fields are ignored.
pub fn parse_axis(axis: Axis, text: &str) -> Result<Vec<f64>, AxisError> {
    parse_list(text, |v| {
        (!axis.admits(v)).then(|| format!("{} must be {}, got {v}", axis.column(), axis.domain()))
    })
    .map_err(|(item, reason)| AxisError {
        option: axis.option(),
        text: item,
        reason,
    })
}

/// The list syntax of [`parse_axis`] for any variable; `reject` says why a
/// value is not admitted. Errors are (offending item, reason).
pub fn parse_list(
    text: &str,
    reject: impl Fn(f64) -> Option<String>,
) -> Result<Vec<f64>, (String, String)> {
    let err = |item: &str, reason: String| (item.to_string(), reason);
    if text.trim().is_empty() {
        return Err(err(text, "expected a number or START:STOP:COUNT".into()));
    }
    let mut values = Vec::new();
    for item in text.split(',') {
        let item = item.trim();
        if item.is_empty() {
            return Err(err(text, "empty item in the comma list".into()));
        }
        let fields: Vec<&str> = item.split(':').map(str::trim).collect();
        let new = match fields.as_slice() {
            [v] => vec![number(v).map_err(|r| err(item, r))?],
            [start, stop, count] => range(start, stop, count, "lin").map_err(|r| err(item, r))?,
            [start, stop, count, spacing] => {
                range(start, stop, count, spacing).map_err(|r| err(item, r))?
            }
            _ => {
                return Err(err(
                    item,
                    "expected a number or START:STOP:COUNT[:lin|:log]".into(),
                ))
            }
        };
        if let Some(reason) = new.iter().find_map(|&v| reject(v)) {
            return Err(err(item, reason));
        }
        if values.len() + new.len() > MAX_ROWS {
            return Err(err(item, format!("more than {MAX_ROWS} values")));
        }
        values.extend(new);
    }
    Ok(values)
}

fn number(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("'{s}' is not a number (standard float syntax, e.g. 2.8e9)"))?;
    if !v.is_finite() {
        return Err(format!("'{s}' is not a finite number"));
    }
    Ok(v)
}

/// `x` rounded to 15 significant digits: a grid value computed as
/// 1e3 * 10^(1/4 * 4) or 0.1 * 3 lands a bit or two off the decimal the user
/// meant (10000.00000000001, 0.30000000000000004), which would then be
/// printed in every row; 15 digits are far below any meaningful spacing.
fn tidy(x: f64) -> f64 {
    format!("{x:.14e}").parse().unwrap_or(x)
}

fn range(start: &str, stop: &str, count: &str, spacing: &str) -> Result<Vec<f64>, String> {
    let (a, b) = (number(start)?, number(stop)?);
    // A count may be written as any number that is whole: 20, 1e3, 100.0.
    let n: usize = match count.parse::<f64>() {
        Ok(c) if c >= 1.0 && c.fract() == 0.0 && c <= MAX_ROWS as f64 => c as usize,
        Ok(c) if c.fract() == 0.0 && c > MAX_ROWS as f64 => {
            return Err(format!("COUNT {count} is more than {MAX_ROWS}"))
        }
        _ => return Err(format!("COUNT '{count}' is not a whole number >= 1")),
    };
    if n > MAX_ROWS {
        return Err(format!("COUNT {n} is more than {MAX_ROWS}"));
    }
    let log = match spacing {
        "lin" => false,
        "log" => true,
        _ => return Err(format!("spacing '{spacing}' is neither lin nor log")),
    };
    if log && !(a > 0.0 && b > 0.0) {
        return Err("log spacing needs START > 0 and STOP > 0".into());
    }
    if n == 1 {
        if a != b {
            return Err("COUNT 1 needs START == STOP (give a single number instead)".into());
        }
        return Ok(vec![a]);
    }
    let last = (n - 1) as f64;
    let (la, lb) = (a.ln(), b.ln());
    let mut v: Vec<f64> = (0..n)
        .map(|k| {
            let f = k as f64 / last;
            tidy(if log {
                (la + f * (lb - la)).exp()
            } else {
                a + f * (b - a)
            })
        })
        .collect();
    // The ends are exactly START and STOP, whatever the rounding inside.
    v[0] = a;
    v[n - 1] = b;
    if v.iter().any(|x| !x.is_finite()) {
        return Err("the range overflows".into());
    }
    Ok(v)
}

/// The Cartesian product of the three axes.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    pub n: Vec<f64>,
    pub t: Vec<f64>,
    pub tokens: Vec<f64>,
}

impl Grid {
    /// Parse the three axes (see [`parse_axis`]) and check the size of
    /// their product.
    pub fn parse(n: &str, t: &str, tokens: &str) -> Result<Grid, AxisError> {
        let g = Grid {
            n: parse_axis(Axis::N, n)?,
            t: parse_axis(Axis::T, t)?,
            tokens: parse_axis(Axis::Tokens, tokens)?,
        };
        let rows =
            g.n.len()
                .saturating_mul(g.t.len())
                .saturating_mul(g.tokens.len());
        if rows > MAX_ROWS {
            return Err(AxisError {
                option: "--N/--T/--tokens",
                text: format!("{} x {} x {}", g.n.len(), g.t.len(), g.tokens.len()),
                reason: format!("the grid has more than {MAX_ROWS} points"),
            });
        }
        Ok(g)
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.n.len() * self.t.len() * self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The points `(N, T, tokens)`: N outermost, then T, then tokens.
    pub fn points(&self) -> impl Iterator<Item = (f64, f64, f64)> + '_ {
        self.n.iter().flat_map(move |&n| {
            self.t
                .iter()
                .flat_map(move |&t| self.tokens.iter().map(move |&d| (n, t, d)))
        })
    }
}

/// What is predicted at each point: the law at the fitted parameters
/// (`pred`) and any bootstrap bands.
#[derive(Debug, Clone, PartialEq)]
pub struct Predictor {
    pub params: [f64; NP],
    pub bands: Vec<Band>,
}

/// A percentile band from bootstrap replicates.
#[derive(Debug, Clone, PartialEq)]
pub struct Band {
    /// Resampling scheme, as in fit.json ("curves", "points").
    pub kind: String,
    /// Central coverage, e.g. 0.95.
    pub level: f64,
    /// Replicate parameters, raw units.
    pub samples: Vec<[f64; NP]>,
}

impl Predictor {
    pub fn new(params: [f64; NP]) -> Predictor {
        Predictor {
            params,
            bands: Vec::new(),
        }
    }

    /// Read the fitted parameters from a report. The law must be one this
    /// build knows, and every parameter present and finite.
    pub fn from_report(r: &FitReport) -> anyhow::Result<Predictor> {
        let known = [LawKind::Looplm, LawKind::Chinchilla];
        if !known.iter().any(|k| k.name() == r.law) {
            anyhow::bail!("unknown law '{}'", r.law);
        }
        let mut params = [0.0; NP];
        for (i, name) in PARAM_NAMES.iter().enumerate() {
            let v = *r
                .params
                .get(*name)
                .ok_or_else(|| anyhow::anyhow!("parameter '{name}' is missing"))?;
            if !v.is_finite() {
                anyhow::bail!("parameter '{name}' is not finite ({v})");
            }
            params[i] = v;
        }
        let mut bands = Vec::new();
        if let Some(b) = &r.bootstrap {
            for rs in &b.resamples {
                let samples = rs
                    .samples
                    .iter()
                    .map(|s| {
                        <[f64; NP]>::try_from(s.as_slice()).map_err(|_| {
                            anyhow::anyhow!(
                                "a {} bootstrap sample has {} values, not {NP}",
                                rs.kind,
                                s.len()
                            )
                        })
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?;
                if samples.len() >= 2 {
                    bands.push(Band {
                        kind: rs.kind.clone(),
                        level: b.level,
                        samples,
                    });
                }
            }
        }
        Ok(Predictor { params, bands })
    }

    /// Names of the predicted columns, in the order [`Predictor::eval`]
    /// writes them.
    pub fn columns(&self) -> Vec<String> {
        let mut c = vec!["pred".to_string()];
        for b in &self.bands {
            c.push(format!("lo_{}", b.kind));
            c.push(format!("hi_{}", b.kind));
        }
        c
    }

    /// The predicted columns at one point, into `out` (cleared first).
    pub fn eval(&self, n: f64, t: f64, tokens: f64, out: &mut Vec<f64>) {
        out.clear();
        out.push(predict_raw(&self.params, n, tokens, t));
        let mut v = Vec::new();
        for b in &self.bands {
            v.clear();
            v.extend(b.samples.iter().map(|p| predict_raw(p, n, tokens, t)));
            v.sort_by(f64::total_cmp);
            let tail = (1.0 - b.level) / 2.0;
            out.push(crate::stats::quantile(&v, tail));
            out.push(crate::stats::quantile(&v, 1.0 - tail));
        }
    }
}

/// What [`write_csv`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub rows: usize,
    /// Rows with a non-finite predicted value (e.g. tokens = 0 with t2 = 0).
    pub non_finite: usize,
}

/// Write the header `N,T,tokens,<predictor columns>` and one row per grid
/// point. Floats use Rust's shortest representation that parses back to the
/// same `f64`.
pub fn write_csv<W: Write>(w: &mut W, grid: &Grid, p: &Predictor) -> io::Result<Written> {
    let mut header = vec![Axis::N.column(), Axis::T.column(), Axis::Tokens.column()];
    let columns = p.columns();
    header.extend(columns.iter().map(String::as_str));
    writeln!(w, "{}", header.join(","))?;
    let mut vals = Vec::with_capacity(p.columns().len());
    let mut out = Written {
        rows: 0,
        non_finite: 0,
    };
    for (n, t, d) in grid.points() {
        p.eval(n, t, d, &mut vals);
        write!(w, "{n},{t},{d}")?;
        for v in &vals {
            write!(w, ",{v}")?;
        }
        writeln!(w)?;
        out.rows += 1;
        if vals.iter().any(|v| !v.is_finite()) {
            out.non_finite += 1;
        }
    }
    w.flush()?;
    Ok(out)
}

/// Warnings for N, T and tokens outside the range of the fitted
/// configurations (`metrics.per_config` in fit.json; tokens only where the
/// file records each curve's token range).
pub fn extrapolation_warnings(r: &FitReport, grid: &Grid) -> Vec<String> {
    let mut warnings = Vec::new();
    if r.metrics.per_config.is_empty() {
        return warnings;
    }
    let pc = &r.metrics.per_config;
    let fitted_n: Vec<f64> = pc.iter().map(|c| c.n).collect();
    let fitted_t: Vec<f64> = pc.iter().map(|c| c.t).collect();
    // Token ranges are only in fit.json files that record them.
    let fitted_d: Vec<f64> = pc
        .iter()
        .flat_map(|c| [c.tokens_min, c.tokens_max])
        .filter(|v| !v.is_nan())
        .collect();
    for (axis, fitted, asked) in [
        (Axis::N, fitted_n, &grid.n),
        (Axis::T, fitted_t, &grid.t),
        (Axis::Tokens, fitted_d, &grid.tokens),
    ] {
        let (Some((lo, hi)), Some((alo, ahi))) = (min_max(&fitted), min_max(asked)) else {
            continue;
        };
        if alo < lo || ahi > hi {
            let asked = if alo == ahi {
                short(alo)
            } else {
                format!("{}..{}", short(alo), short(ahi))
            };
            warnings.push(format!(
                "{} {asked} lies outside the fitted range {}..{} (extrapolation)",
                axis.column(),
                short(lo),
                short(hi)
            ));
        }
    }
    warnings
}

/// Large numbers in exponent form (2.8e9), small ones as they are (4, 0.5).
fn short(v: f64) -> String {
    if v.abs() >= 1e5 {
        format!("{v:e}")
    } else {
        v.to_string()
    }
}

fn min_max(v: &[f64]) -> Option<(f64, f64)> {
    let mut it = v.iter().copied().filter(|x| x.is_finite());
    let first = it.next()?;
    Some(it.fold((first, first), |(lo, hi), x| (lo.min(x), hi.max(x))))
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: [f64; NP] = [1.8, 268.0, 0.30, 1e7, 2018.0, 0.35, 1.06e7, 0.675, 1.0, 0.5];

    fn err(axis: Axis, text: &str) -> AxisError {
        parse_axis(axis, text).expect_err(text)
    }

    #[test]
    fn lists_of_numbers() {
        assert_eq!(parse_axis(Axis::N, "2.8e9").unwrap(), [2.8e9]);
        assert_eq!(
            parse_axis(Axis::T, "1,2, 4 ,0.5").unwrap(),
            [1.0, 2.0, 4.0, 0.5]
        );
        assert_eq!(parse_axis(Axis::Tokens, "0,1e9").unwrap(), [0.0, 1e9]);
        assert_eq!(parse_axis(Axis::T, "3,3").unwrap(), [3.0, 3.0]);
        assert_eq!(parse_axis(Axis::N, "+5,.5,5.").unwrap(), [5.0, 0.5, 5.0]);
    }

    #[test]
    fn linear_ranges_include_both_ends() {
        assert_eq!(
            parse_axis(Axis::Tokens, "0:1:5").unwrap(),
            [0.0, 0.25, 0.5, 0.75, 1.0]
        );
        assert_eq!(
            parse_axis(Axis::T, "1:4:4:lin").unwrap(),
            [1.0, 2.0, 3.0, 4.0]
        );
        assert_eq!(parse_axis(Axis::T, "4:1:4").unwrap(), [4.0, 3.0, 2.0, 1.0]);
        let v = parse_axis(Axis::Tokens, "1e9:40e9:100").unwrap();
        assert_eq!(v.len(), 100);
        assert_eq!((v[0], v[99]), (1e9, 40e9));
        let step = (40e9 - 1e9) / 99.0;
        for (k, x) in v.iter().enumerate() {
            assert!((x - (1e9 + step * k as f64)).abs() <= 1e-6 * step, "{k}");
        }
        assert_eq!(parse_axis(Axis::N, "7:7:1").unwrap(), [7.0]);
        assert_eq!(parse_axis(Axis::N, "7:7:3").unwrap(), [7.0; 3]);
    }

    #[test]
    fn grid_values_are_the_decimals_meant() {
        assert_eq!(
            parse_axis(Axis::Tokens, "1e3:1e7:5:log").unwrap(),
            [1e3, 1e4, 1e5, 1e6, 1e7]
        );
        assert_eq!(
            parse_axis(Axis::Tokens, "0:1:11").unwrap(),
            [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
        );
        let v = parse_axis(Axis::Tokens, "1e9:40e9:100").unwrap();
        // At most 15 significant digits, none of them rounding noise.
        let digits = |x: &f64| {
            let m = format!("{x:e}");
            m[..m.find('e').unwrap()]
                .chars()
                .filter(char::is_ascii_digit)
                .count()
        };
        assert!(v.iter().all(|x| digits(x) <= 15), "{v:?}");
    }

    #[test]
    fn log_ranges_are_geometric() {
        let v = parse_axis(Axis::N, "1e6:1e9:4:log").unwrap();
        assert_eq!(v.len(), 4);
        assert_eq!((v[0], v[3]), (1e6, 1e9));
        assert!(
            (v[1] - 1e7).abs() < 1e-6 && (v[2] - 1e8).abs() < 1e-5,
            "{v:?}"
        );
        let v = parse_axis(Axis::Tokens, " 1e8 : 1e10 : 3 : log ").unwrap();
        assert_eq!(v[0], 1e8);
        assert!((v[1] - 1e9).abs() < 1e-4);
        assert_eq!(v[2], 1e10);
    }

    #[test]
    fn lists_mix_numbers_and_ranges_in_order() {
        assert_eq!(
            parse_axis(Axis::T, "8,1:3:3,0.5:0.5:1").unwrap(),
            [8.0, 1.0, 2.0, 3.0, 0.5]
        );
    }

    #[test]
    fn a_count_is_any_whole_number_however_written() {
        assert_eq!(parse_axis(Axis::T, "1:3:3e0").unwrap(), [1.0, 2.0, 3.0]);
        assert_eq!(parse_axis(Axis::T, "1:1e3:1e3").unwrap().len(), 1000);
        assert_eq!(parse_axis(Axis::T, "1:3:3.0").unwrap().len(), 3);
        for count in ["2.5", "0", "-3", "nan", "inf"] {
            let e = err(Axis::T, &format!("1:3:{count}"));
            assert!(e.reason.contains("not a whole number >= 1"), "{count}: {e}");
        }
        let e = err(Axis::T, "1:3:1e30");
        assert!(e.reason.contains("is more than"), "{e}");
    }

    #[test]
    fn errors_name_the_option_and_the_bad_text() {
        let e = err(Axis::N, "1e9,abc");
        assert_eq!((e.option, e.text.as_str()), ("--N", "abc"));
        let msg = e.to_string();
        assert!(msg.contains("--N") && msg.contains("'abc'"), "{msg}");

        let e = err(Axis::Tokens, "1e9:40e9:x");
        assert_eq!((e.option, e.text.as_str()), ("--tokens", "1e9:40e9:x"));
        assert!(e.reason.contains("COUNT"), "{e}");

        let e = err(Axis::T, "1:2");
        assert_eq!(e.text, "1:2");
        assert!(e.reason.contains("START:STOP:COUNT"), "{e}");
    }

    #[test]
    fn bad_numbers_are_rejected() {
        for (axis, text, needle) in [
            (Axis::N, "1_000", "not a number"),
            (Axis::N, "1e9x", "not a number"),
            (Axis::N, "0x10", "not a number"),
            (Axis::N, "inf", "finite"),
            (Axis::N, "NaN", "finite"),
            (Axis::N, "1e400", "finite"),
            (Axis::Tokens, "0:inf:3", "finite"),
            (Axis::N, "", "expected"),
            (Axis::N, "  ", "expected"),
            (Axis::N, "1,,2", "empty item"),
            (Axis::N, "1,", "empty item"),
            (Axis::N, "1:2:3:4:5", "START:STOP:COUNT"),
        ] {
            let e = err(axis, text);
            assert!(e.reason.contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn domains_are_enforced() {
        for (axis, text) in [
            (Axis::N, "0"),
            (Axis::N, "-1e9"),
            (Axis::N, "0:1e9:3"),
            (Axis::T, "0"),
            (Axis::T, "-1:4:6"),
            (Axis::Tokens, "-1"),
            (Axis::Tokens, "1e9:-1e9:3"),
        ] {
            let e = err(axis, text);
            assert!(e.reason.contains("must be"), "{text}: {e}");
            assert_eq!(e.text, text);
        }
        assert_eq!(parse_axis(Axis::Tokens, "0:2:3").unwrap(), [0.0, 1.0, 2.0]);
    }

    #[test]
    fn bad_counts_and_spacings() {
        for (text, needle) in [
            ("1:2:0", "COUNT '0'"),
            ("1:2:-3", "COUNT"),
            ("1:2:2.5", "COUNT"),
            ("1:2:1", "COUNT 1 needs START == STOP"),
            ("1:2:3:geo", "spacing 'geo'"),
            ("1:2:99999999999", "more than"),
        ] {
            let e = err(Axis::T, text);
            assert!(e.reason.contains(needle), "{text}: {e}");
        }
        let e = err(Axis::Tokens, "0:1e9:5:log");
        assert!(e.reason.contains("log spacing"), "{e}");
        let e = err(Axis::Tokens, "-1.7e308:1.7e308:3");
        assert!(e.reason.contains("overflows"), "{e}");
    }

    #[test]
    fn grid_order_is_n_then_t_then_tokens() {
        let g = Grid::parse("2,1", "1:2:2", "0,5,3").unwrap();
        assert_eq!(g.len(), 12);
        let pts: Vec<_> = g.points().collect();
        let mut want = Vec::new();
        for n in [2.0, 1.0] {
            for t in [1.0, 2.0] {
                for d in [0.0, 5.0, 3.0] {
                    want.push((n, t, d));
                }
            }
        }
        assert_eq!(pts, want);
    }

    #[test]
    fn grid_size_is_capped() {
        let e = Grid::parse("1:2:10000", "1:2:10000", "1").unwrap_err();
        assert!(e.reason.contains("more than"), "{e}");
        let e = Grid::parse("1", "x", "1").unwrap_err();
        assert_eq!(e.option, "--T");
    }

    #[test]
    fn csv_values_equal_predict_raw() {
        let g = Grid::parse("5.3e7,2.8e9", "1:4:4", "0:4e10:7,1e12").unwrap();
        let p = Predictor::new(P);
        let mut buf = Vec::new();
        let w = write_csv(&mut buf, &g, &p).unwrap();
        assert_eq!(
            w,
            Written {
                rows: 64,
                non_finite: 0
            }
        );
        let text = String::from_utf8(buf).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("N,T,tokens,pred"));
        let rows: Vec<Vec<f64>> = lines
            .map(|l| l.split(',').map(|x| x.parse().unwrap()).collect())
            .collect();
        assert_eq!(rows.len(), g.len());
        for (row, (n, t, d)) in rows.iter().zip(g.points()) {
            assert_eq!(row[..3], [n, t, d]);
            assert_eq!(row[3], predict_raw(&P, n, d, t));
        }
    }

    #[test]
    fn non_finite_predictions_are_counted() {
        let mut p = P;
        p[crate::law::T2] = 0.0;
        let g = Grid::parse("1e9", "1", "0,1e9").unwrap();
        let mut buf = Vec::new();
        let w = write_csv(&mut buf, &g, &Predictor::new(p)).unwrap();
        assert_eq!(
            w,
            Written {
                rows: 2,
                non_finite: 1
            }
        );
    }

    fn report(law: &str, params: &[(&str, f64)]) -> FitReport {
        let text = format!(
            r#"{{"law":"{law}","params":{{}},"fixed":[],
            "objective":{{"loss":"mse","space":"linear","delta":0.001,"value":0.0}},
            "metrics":{{"r2":1,"rmse":0,"mae":0,"mape":0,"per_config":[
              {{"run":"a","N":5.3e7,"T":1,"points":2,"r2":1,"rmse":0,"mape":0}},
              {{"run":"b","N":1.36e9,"T":4,"points":2,"r2":1,"rmse":0,"mape":0}}]}},
            "starts":{{"count":1,"at_best":1,"status_counts":{{}},"iterations":1,
                       "evaluations":1,"start_evaluations":1}},
            "backend":{{"kind":"cpu","device":"x"}},
            "seconds":0,"points":4,"configs":2,"notes":[]}}"#
        );
        let mut r: FitReport = serde_json::from_str(&text).unwrap();
        for (k, v) in params {
            r.params.insert(k.to_string(), *v);
        }
        r
    }

    fn all_params() -> Vec<(&'static str, f64)> {
        PARAM_NAMES.iter().copied().zip(P).collect()
    }

    #[test]
    fn predictor_reads_params_by_name() {
        // Order in the file does not matter.
        let mut params = all_params();
        params.reverse();
        let p = Predictor::from_report(&report("looplm", &params)).unwrap();
        assert_eq!(p.params, P);
        assert_eq!(p.columns(), ["pred"]);
        assert!(Predictor::from_report(&report("chinchilla", &params)).is_ok());
    }

    #[test]
    fn predictor_rejects_bad_reports() {
        let msg = Predictor::from_report(&report("other", &all_params()))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("unknown law 'other'"), "{msg}");

        let missing: Vec<_> = all_params()
            .into_iter()
            .filter(|(k, _)| *k != "t2")
            .collect();
        let msg = Predictor::from_report(&report("looplm", &missing))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("'t2' is missing"), "{msg}");

        let mut nan = all_params();
        nan[4].1 = f64::NAN;
        let msg = Predictor::from_report(&report("looplm", &nan))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("'B' is not finite"), "{msg}");
    }

    #[test]
    fn extrapolation_warns_outside_fitted_n_and_t() {
        let r = report("looplm", &all_params());
        let inside = Grid::parse("1e8:1e9:3", "1:4:4", "1e12").unwrap();
        assert!(extrapolation_warnings(&r, &inside).is_empty());
        let outside = Grid::parse("2.8e9", "1,8", "1").unwrap();
        let w = extrapolation_warnings(&r, &outside);
        assert_eq!(w.len(), 2, "{w:?}");
        assert_eq!(
            w[0],
            "N 2.8e9 lies outside the fitted range 5.3e7..1.36e9 (extrapolation)"
        );
        assert_eq!(
            w[1],
            "T 1..8 lies outside the fitted range 1..4 (extrapolation)"
        );
        let mut empty = r.clone();
        empty.metrics.per_config.clear();
        assert!(extrapolation_warnings(&empty, &outside).is_empty());
    }

    #[test]
    fn extrapolation_in_tokens_warns_when_fit_json_records_the_range() {
        let mut r = report("looplm", &all_params());
        let grid = Grid::parse("1e8", "1", "1e9:4e10:5").unwrap();
        // Older fit.json files have no token range: nothing to compare.
        assert!(extrapolation_warnings(&r, &grid).is_empty());
        for (c, (lo, hi)) in r
            .metrics
            .per_config
            .iter_mut()
            .zip([(0.0, 2e10), (1e9, 1e10)])
        {
            c.tokens_min = lo;
            c.tokens_max = hi;
        }
        let w = extrapolation_warnings(&r, &grid);
        assert_eq!(
            w,
            ["tokens 1e9..4e10 lies outside the fitted range 0..2e10 (extrapolation)"]
        );
        let inside = Grid::parse("1e8", "1", "0:2e10:5").unwrap();
        assert!(extrapolation_warnings(&r, &inside).is_empty());
    }

    #[test]
    fn bootstrap_bands_are_percentiles_of_the_replicates() {
        let mut r = report("looplm", &all_params());
        // 101 replicates that differ only in E = 0, 0.01, ..., 1: the
        // prediction moves one for one with E, so the band is the fitted
        // prediction shifted by E's percentiles (less the fitted E).
        let samples: Vec<Vec<f64>> = (0..=100)
            .map(|k| {
                let mut p = P.to_vec();
                p[0] = k as f64 / 100.0;
                p
            })
            .collect();
        r.bootstrap = Some(crate::report::BootstrapReport {
            seed: 0,
            level: 0.9,
            seconds: 0.0,
            resamples: vec![crate::report::ResampleReport {
                kind: "points".into(),
                replicates: 101,
                converged: 101,
                converged_fraction: 1.0,
                used: 101,
                params: Default::default(),
                samples,
            }],
            notes: vec![],
        });
        let p = Predictor::from_report(&r).unwrap();
        assert_eq!(p.columns(), ["pred", "lo_points", "hi_points"]);
        let mut out = Vec::new();
        p.eval(1e9, 2.0, 5e9, &mut out);
        let base = out[0] - P[0];
        assert!((out[1] - (base + 0.05)).abs() < 1e-12, "{out:?}");
        assert!((out[2] - (base + 0.95)).abs() < 1e-12, "{out:?}");

        r.bootstrap.as_mut().unwrap().resamples[0].samples[3].pop();
        assert!(Predictor::from_report(&r).is_err());
    }
}
