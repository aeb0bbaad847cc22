//! Law files: a law written as TOML, with its formula (text, compiled
//! elsewhere), the data columns its variables are bound to, named
//! sub-expressions and per-parameter declarations.
//!
//! ```toml
//! name = "chinchilla"
//! description = "Loss of dense language models"
//! formula = "E + A/N^alpha + B/D^beta"
//! axis = "D"
//!
//! [variables]
//! N = "N"
//! D = "tokens"
//!
//! [params.alpha]
//! lower = 1e-4
//! upper = 8.0
//! ```
//!
//! Unknown keys are errors, so that a misspelt declaration is never
//! silently ignored. Every error names the file, line and column.
//! Formulas are not parsed here: which names they use is for the compiler
//! to check.

use std::ops::Range;
use std::path::Path;

use anyhow::{anyhow, Context};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// Functions of the formula language: not usable as names.
pub const FUNCTIONS: [&str; 6] = ["exp", "log", "sqrt", "min", "max", "sum"];

/// A law as written in a law file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LawFile {
    /// `[a-z0-9-]+`, not starting with `-` (it is typed on command lines).
    pub name: String,
    /// One line; may be empty.
    #[serde(default)]
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    pub formula: String,
    /// The variable each curve runs along (x axis of plots, token-fraction
    /// folds); one of `variables` when those are declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub axis: Option<String>,
    /// Formula name -> data column, in file order.
    #[serde(default)]
    pub variables: IndexMap<String, String>,
    /// A variable's value on data without its column (a sweep of ordinary
    /// models has no recurrent-step column: T = 1).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub defaults: IndexMap<String, f64>,
    /// What the data's values of a variable must be, `"> 0"` or `">= 0"`
    /// (see [`Domain`]): a row outside is an error naming it, not a fit
    /// of a law outside the range it was written for.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub domain: IndexMap<String, String>,
    /// Named sub-expressions, in file order; each may use those before it.
    #[serde(default)]
    pub defs: IndexMap<String, String>,
    /// Declarations of parameters; undeclared parameters are free and
    /// unbounded.
    #[serde(default)]
    pub params: IndexMap<String, ParamDecl>,
}

/// The values a variable's data may take (a law file's `[domain]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Domain {
    /// `"> 0"`.
    Positive,
    /// `">= 0"`.
    NonNegative,
}

impl Domain {
    /// `"> 0"` or `">= 0"`, spaces anywhere.
    pub fn parse(text: &str) -> Option<Domain> {
        let t: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        match t.as_str() {
            ">0" => Some(Domain::Positive),
            ">=0" => Some(Domain::NonNegative),
            _ => None,
        }
    }

    /// What is wrong with `v` as a value of variable `name`, if anything.
    pub fn problem(self, name: &str, v: f64) -> Option<String> {
        match self {
            Domain::Positive if v <= 0.0 => {
                Some(format!("{v} is outside the law's domain ({name} > 0)"))
            }
            Domain::NonNegative if v < 0.0 => {
                Some(format!("{v} is outside the law's domain ({name} >= 0)"))
            }
            _ => None,
        }
    }
}

/// What a law file declares about one parameter (raw units).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamDecl {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lower: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upper: Option<f64>,
    /// Fitted as a log; may still be fixed at 0 (a term switched off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub positive: Option<bool>,
    /// Range the starting values are drawn from.
    #[serde(
        default,
        deserialize_with = "start_pair",
        skip_serializing_if = "Option::is_none"
    )]
    pub start: Option<[f64; 2]>,
    /// How `start` is drawn: "linear" (uniformly; the default unless the
    /// parameter is positive) or "log" (log-uniformly: as many starts per
    /// octave).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_scale: Option<StartScale>,
    /// Held at this value instead of fitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed: Option<f64>,
}

/// How a start range is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartScale {
    Linear,
    Log,
}

/// `[low, high]`: exactly two numbers (an array of three would otherwise
/// lose its last one without a word).
fn start_pair<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<[f64; 2]>, D::Error> {
    match Option::<Vec<f64>>::deserialize(d)? {
        None => Ok(None),
        Some(v) if v.len() == 2 => Ok(Some([v[0], v[1]])),
        Some(v) => Err(serde::de::Error::custom(format!(
            "start must be two numbers [low, high], not {}",
            v.len()
        ))),
    }
}

/// A semantic error and where it points in the file: the key at `path`
/// (for names) or its value.
struct Problem {
    path: Vec<String>,
    at_key: bool,
    message: String,
}

fn problem(path: &[&str], at_key: bool, message: String) -> Problem {
    Problem {
        path: path.iter().map(|s| s.to_string()).collect(),
        at_key,
        message,
    }
}

impl LawFile {
    /// Parse and check a law file; `origin` (a path, or a built-in's name)
    /// starts every error message, as `origin:line:column: message`.
    pub fn parse(text: &str, origin: &str) -> anyhow::Result<LawFile> {
        let law: LawFile = toml::from_str(text).map_err(|e| {
            let at = e.span().map(|s| position(text, s.start));
            located(origin, at, e.message().trim_end())
        })?;
        let compiled = |p: Problem| {
            let at = locate(text, &p).map(|s| position(text, s.start));
            located(origin, at, &p.message)
        };
        law.check().map_err(compiled)?;
        // A declaration of a name the formula does not use is found here,
        // where its line is known; other compile errors wait for `compile`.
        if let Ok(c) = law.compile_source(origin) {
            law.undeclared(&c).map_or(Ok(()), |p| Err(compiled(p)))?;
        }
        Ok(law)
    }

    /// Read and parse a law file.
    pub fn read(path: &Path) -> anyhow::Result<LawFile> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read the law file", path.display()))?;
        LawFile::parse(&text, &path.display().to_string())
    }

    /// The declared domain of variable `v`, if any.
    pub fn domain_of(&self, v: &str) -> Option<Domain> {
        self.domain.get(v).and_then(|t| Domain::parse(t))
    }

    /// A bare formula, with nothing declared: every name is a parameter
    /// until the law is bound to data.
    pub fn from_formula(formula: &str) -> anyhow::Result<LawFile> {
        let law = LawFile {
            name: "custom".into(),
            description: String::new(),
            reference: None,
            formula: formula.into(),
            axis: None,
            variables: IndexMap::new(),
            defaults: IndexMap::new(),
            domain: IndexMap::new(),
            defs: IndexMap::new(),
            params: IndexMap::new(),
        };
        law.validate()?;
        Ok(law)
    }

    /// The law compiled: its formula and defs over its variables. Every
    /// declared parameter must be one the formula uses (a declaration of
    /// any other name is a typo). `origin` starts error messages.
    pub fn compile(&self, origin: &str) -> anyhow::Result<super::CompiledLaw> {
        let law = self.compile_source(origin)?;
        if let Some(p) = self.undeclared(&law) {
            anyhow::bail!("{origin}: {}", p.message);
        }
        // Checked here as well as in `check`: without [variables] the
        // formula's names are bound later, and an axis that became a
        // parameter would otherwise be dropped without a word.
        if let Some(axis) = self.axis.as_ref().filter(|a| !law.variables.contains(a)) {
            anyhow::bail!(
                "{origin}: axis: {axis} is not a variable of the law (its variables: {})",
                law.variables.join(", ")
            );
        }
        Ok(law)
    }

    /// A declared parameter the compiled formula does not have (a typo).
    fn undeclared(&self, law: &super::CompiledLaw) -> Option<Problem> {
        let p = self.params.keys().find(|p| !law.params.contains(p))?;
        Some(problem(
            &["params", p],
            true,
            format!(
                "params.{p} is declared but the formula has no parameter {p} (its parameters: {})",
                law.params.join(", ")
            ),
        ))
    }

    fn compile_source(&self, origin: &str) -> anyhow::Result<super::CompiledLaw> {
        let src = super::Source {
            formula: self.formula.clone(),
            defs: self
                .defs
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            variables: self.variables.keys().cloned().collect(),
            origin: origin.to_string(),
        };
        super::CompiledLaw::compile(&src).map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// The checks of [`LawFile::parse`], for a law built in code.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.check()
            .map_err(|p| anyhow!("law {}: {}", self.name, p.message))
    }

    fn check(&self) -> Result<(), Problem> {
        check_name(&self.name)?;
        if self.description.contains(['\n', '\r']) {
            return Err(problem(
                &["description"],
                false,
                "description: must be one line".into(),
            ));
        }
        if self.formula.trim().is_empty() {
            return Err(problem(&["formula"], false, "formula is empty".into()));
        }
        for (v, column) in &self.variables {
            check_ident(v, "variables")?;
            if column.trim().is_empty() {
                return Err(problem(
                    &["variables", v],
                    false,
                    format!("variables.{v}: the column name is empty"),
                ));
            }
        }
        for (v, text) in &self.domain {
            if !self.variables.contains_key(v) {
                return Err(problem(
                    &["domain", v],
                    true,
                    format!("domain.{v}: {v} is not a declared variable ([variables])"),
                ));
            }
            if Domain::parse(text).is_none() {
                return Err(problem(
                    &["domain", v],
                    false,
                    format!("domain.{v}: write \"> 0\" or \">= 0\", not \"{text}\""),
                ));
            }
        }
        for (v, value) in &self.defaults {
            if !self.variables.contains_key(v) {
                return Err(problem(
                    &["defaults", v],
                    true,
                    format!("defaults.{v}: {v} is not a declared variable ([variables])"),
                ));
            }
            if !value.is_finite() {
                return Err(problem(
                    &["defaults", v],
                    false,
                    format!("defaults.{v}: must be a finite number"),
                ));
            }
        }
        for (d, expr) in &self.defs {
            check_ident(d, "defs")?;
            if self.variables.contains_key(d) {
                return Err(problem(
                    &["defs", d],
                    true,
                    format!("defs.{d}: {d} is already a variable"),
                ));
            }
            if expr.trim().is_empty() {
                return Err(problem(
                    &["defs", d],
                    false,
                    format!("defs.{d}: the expression is empty"),
                ));
            }
            // Its syntax here, under its own name: whoever parses the defs
            // later would otherwise report a def's error as the formula's.
            if let Err(mut e) = super::parse::parse(expr) {
                e.origin = format!("defs.{d}");
                return Err(problem(&["defs", d], false, e.to_string()));
            }
        }
        for (p, decl) in &self.params {
            check_ident(p, "params")?;
            for (kind, names) in [("variable", "variables"), ("def", "defs")] {
                let taken = match names {
                    "variables" => self.variables.contains_key(p),
                    _ => self.defs.contains_key(p),
                };
                if taken {
                    return Err(problem(
                        &["params", p],
                        true,
                        format!("params.{p}: {p} is a {kind}, so it cannot be a parameter"),
                    ));
                }
            }
            decl.check(p)?;
        }
        if let Some(axis) = &self.axis {
            if self.variables.is_empty() {
                check_ident(axis, "axis")?;
            } else if !self.variables.contains_key(axis) {
                let names: Vec<&str> = self.variables.keys().map(String::as_str).collect();
                return Err(problem(
                    &["axis"],
                    false,
                    format!(
                        "axis: {axis} is not a variable (the variables are {})",
                        names.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl ParamDecl {
    /// Whether the parameter may be held at `v` (a `fixed` value, or
    /// `--fix`): inside the declared bounds, and not below 0 when
    /// positive. The message says why not.
    pub fn allows(&self, v: f64) -> Result<(), String> {
        let lower = self.lower.unwrap_or(f64::NEG_INFINITY);
        let upper = self.upper.unwrap_or(f64::INFINITY);
        if !(lower <= v && v <= upper) {
            return Err(format!(
                "{v} lies outside the bounds [{}, {}]",
                self.lower.map_or("-inf".into(), |v| v.to_string()),
                self.upper.map_or("inf".into(), |v| v.to_string())
            ));
        }
        if self.positive == Some(true) && v < 0.0 {
            return Err(format!("{v} contradicts positive = true"));
        }
        Ok(())
    }

    fn check(&self, name: &str) -> Result<(), Problem> {
        let at = |field: &str, message: String| {
            problem(
                &["params", name, field],
                false,
                format!("params.{name}.{field}: {message}"),
            )
        };
        let numbers = [
            ("lower", self.lower),
            ("upper", self.upper),
            ("start", self.start.map(|s| s[0])),
            ("start", self.start.map(|s| s[1])),
            ("fixed", self.fixed),
        ];
        for (field, v) in numbers {
            if let Some(v) = v.filter(|v| !v.is_finite()) {
                return Err(at(field, format!("{v} is not a finite number")));
            }
        }
        let positive = self.positive == Some(true);
        let lower = self.lower.unwrap_or(f64::NEG_INFINITY);
        let upper = self.upper.unwrap_or(f64::INFINITY);
        if let (Some(lo), Some(hi)) = (self.lower, self.upper) {
            if lo >= hi {
                return Err(at(
                    "upper",
                    format!("{hi} must be above lower ({lo}); to hold a value, use fixed"),
                ));
            }
        }
        if positive {
            if let Some(lo) = self.lower.filter(|&lo| lo < 0.0) {
                return Err(at(
                    "lower",
                    format!("{lo} contradicts positive = true (a bound below 0)"),
                ));
            }
            if let Some(hi) = self.upper.filter(|&hi| hi <= 0.0) {
                return Err(at(
                    "upper",
                    format!("{hi} contradicts positive = true (no positive value is allowed)"),
                ));
            }
        }
        let inside = |v: f64| lower <= v && v <= upper;
        let bounds = || {
            format!(
                "[{}, {}]",
                self.lower.map_or("-inf".into(), |v| v.to_string()),
                self.upper.map_or("inf".into(), |v| v.to_string())
            )
        };
        if let Some([a, b]) = self.start {
            if a > b {
                return Err(at(
                    "start",
                    format!("[{a}, {b}] must be increasing (low, high; a start value twice)"),
                ));
            }
            if !inside(a) || !inside(b) {
                return Err(at(
                    "start",
                    format!("[{a}, {b}] must lie inside the bounds {}", bounds()),
                ));
            }
            if positive && a <= 0.0 {
                return Err(at(
                    "start",
                    format!("[{a}, {b}] must be above 0 for a positive parameter"),
                ));
            }
            if self.start_scale == Some(StartScale::Log) && a <= 0.0 {
                return Err(at(
                    "start_scale",
                    format!("\"log\" needs a start range above 0, not [{a}, {b}]"),
                ));
            }
        } else if self.start_scale.is_some() {
            return Err(at(
                "start_scale",
                "says how the start range is drawn; give the range too (start = [low, high])"
                    .to_string(),
            ));
        }
        if let Some(v) = self.fixed {
            self.allows(v).map_err(|m| at("fixed", m))?;
        }
        Ok(())
    }
}

fn check_name(name: &str) -> Result<(), Problem> {
    let ok = !name.is_empty()
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(problem(
            &["name"],
            false,
            format!(
                "name: {name:?} must be lower-case letters, digits and '-' (not first), e.g. \"my-law\""
            ),
        ))
    }
}

/// `[A-Za-z_][A-Za-z0-9_]*`, and not a function of the language.
fn check_ident(name: &str, table: &str) -> Result<(), Problem> {
    let mut bytes = name.bytes();
    let ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_');
    // `axis` is a value, the others are keys of their table.
    let (path, at_key): (Vec<&str>, bool) = if table == "axis" {
        (vec!["axis"], false)
    } else {
        (vec![table, name], true)
    };
    let what = if table == "axis" {
        "axis".to_string()
    } else {
        format!("{table}.{name}")
    };
    if !ok {
        return Err(problem(
            &path,
            at_key,
            format!(
                "{what}: {name:?} is not a name (letters, digits and _, not starting with a digit)"
            ),
        ));
    }
    if FUNCTIONS.contains(&name) {
        return Err(problem(
            &path,
            at_key,
            format!("{what}: {name} is a function of the formula language"),
        ));
    }
    Ok(())
}

/// `origin:line:column: message`, or `origin: message` without a position.
fn located(origin: &str, at: Option<(usize, usize)>, message: &str) -> anyhow::Error {
    match at {
        Some((line, col)) => anyhow!("{origin}:{line}:{col}: {message}"),
        None => anyhow!("{origin}: {message}"),
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Span of a problem's key or value in the text (the text has parsed
/// once already, so parsing it again succeeds).
fn locate(text: &str, p: &Problem) -> Option<Range<usize>> {
    let root = DeTable::parse(text).ok()?;
    let mut table: &DeTable = root.get_ref();
    let (last, parents) = p.path.split_last()?;
    for key in parents {
        table = entry(table, key)?.1.get_ref().as_table()?;
    }
    let (k, v) = entry(table, last)?;
    Some(if p.at_key { k.span() } else { v.span() })
}

type Entry<'a, 'i> = (
    &'a Spanned<std::borrow::Cow<'i, str>>,
    &'a Spanned<DeValue<'i>>,
);

fn entry<'a, 'i>(table: &'a DeTable<'i>, key: &str) -> Option<Entry<'a, 'i>> {
    table.iter().find(|(k, _)| k.get_ref() == key)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "test-law"
description = "A law for tests"
formula = "E + A/Dp^beta"
axis = "D"

[variables]
D = "tokens"
U = "unique_tokens"

[defs]
Z = "min(D, U)"
Dp = "Z + Z*R*(1 - exp(-(D/Z - 1)/R))"

[params.beta]
lower = 1e-4
upper = 8
start = [0.1, 1.0]

[params.R]
positive = true
fixed = 15
"#;

    // Lines of GOOD (1-based; it starts with a newline).
    const LOWER: usize = 16;
    const UPPER: usize = 17;
    const START: usize = 18;
    const FIXED: usize = 22;

    #[test]
    fn line_constants_match_good() {
        assert_eq!(line_of(GOOD, "lower = 1e-4"), LOWER);
        assert_eq!(line_of(GOOD, "upper = 8"), UPPER);
        assert_eq!(line_of(GOOD, "start = [0.1"), START);
        assert_eq!(line_of(GOOD, "fixed = 15"), FIXED);
        assert_eq!(line_of(GOOD, "U = "), 9);
        assert_eq!(line_of(GOOD, "Z = "), 12);
        assert_eq!(line_of(GOOD, "axis"), 5);
    }

    fn err(text: &str) -> String {
        format!("{:#}", LawFile::parse(text, "t.toml").unwrap_err())
    }

    /// GOOD with `line` (1-based) replaced by `new`.
    fn with_line(line: usize, new: &str) -> String {
        let mut lines: Vec<&str> = GOOD.split('\n').collect();
        lines[line - 1] = new;
        lines.join("\n")
    }

    /// GOOD with `extra` appended.
    fn plus(extra: &str) -> String {
        format!("{GOOD}{extra}")
    }

    fn line_of(text: &str, needle: &str) -> usize {
        text.split('\n').position(|l| l.contains(needle)).unwrap() + 1
    }

    #[test]
    fn parses_everything_in_file_order() {
        let law = LawFile::parse(GOOD, "t.toml").unwrap();
        assert_eq!(law.name, "test-law");
        assert_eq!(law.reference, None);
        assert_eq!(law.axis.as_deref(), Some("D"));
        // Order as written, not alphabetical: defs are evaluated in order.
        assert_eq!(law.defs.keys().collect::<Vec<_>>(), ["Z", "Dp"]);
        assert_eq!(law.variables.keys().collect::<Vec<_>>(), ["D", "U"]);
        assert_eq!(law.params.keys().collect::<Vec<_>>(), ["beta", "R"]);
        assert_eq!(law.variables["U"], "unique_tokens");
        let beta = &law.params["beta"];
        // An integer in TOML is a number like any other.
        assert_eq!(beta.upper, Some(8.0));
        assert_eq!(beta.start, Some([0.1, 1.0]));
        assert_eq!(beta.positive, None);
        assert_eq!(law.params["R"].fixed, Some(15.0));
    }

    #[test]
    fn minimal_file_and_bare_formula() {
        let law = LawFile::parse("name = \"x1\"\nformula = \"a*x\"\n", "t").unwrap();
        assert_eq!(law.description, "");
        assert!(law.variables.is_empty() && law.defs.is_empty() && law.params.is_empty());
        let bare = LawFile::from_formula("E + A/N^alpha").unwrap();
        assert_eq!(bare.name, "custom");
        assert_eq!(bare.formula, "E + A/N^alpha");
        assert!(bare.params.is_empty() && bare.variables.is_empty());
        assert!(format!("{:#}", LawFile::from_formula("  ").unwrap_err()).contains("empty"));
    }

    #[test]
    fn syntax_errors_name_line_and_column() {
        let text = with_line(9, "U = \"unique_tokens");
        assert!(err(&text).starts_with("t.toml:9:"), "{}", err(&text));
        let text = with_line(LOWER, "lower = 1e-4 2");
        assert!(
            err(&text).starts_with(&format!("t.toml:{LOWER}:9: ")),
            "{}",
            err(&text)
        );
        // Duplicate keys are a TOML error.
        let text = with_line(UPPER, "lower = 1");
        assert!(
            err(&text).starts_with(&format!("t.toml:{UPPER}:")),
            "{}",
            err(&text)
        );
    }

    #[test]
    fn unknown_keys_are_errors_at_their_line() {
        let e = err(&with_line(UPPER, "uper = 8"));
        assert!(e.starts_with(&format!("t.toml:{UPPER}:1: ")), "{e}");
        assert!(e.contains("uper"), "{e}");
        let e = err(&with_line(5, "axes = \"D\""));
        assert!(e.starts_with("t.toml:5:1: ") && e.contains("axes"), "{e}");
        let e = err(&plus("[param.x]\nlower = 1\n"));
        assert!(e.contains("param"), "{e}");
        assert!(
            e.starts_with(&format!(
                "t.toml:{}:",
                line_of(&plus("[param.x]"), "[param.x]")
            )),
            "{e}"
        );
    }

    #[test]
    fn wrong_types_and_missing_fields() {
        let e = err(&with_line(LOWER, "lower = \"small\""));
        assert!(e.starts_with(&format!("t.toml:{LOWER}:9: ")), "{e}");
        let e = err(&with_line(START, "start = [0.1, 1.0, 2.0]"));
        assert!(
            e.starts_with(&format!("t.toml:{START}:9: start must be two numbers")),
            "{e}"
        );
        let e = err(&with_line(START, "start = 0.5"));
        assert!(e.starts_with(&format!("t.toml:{START}:9: ")), "{e}");
        let e = err(&with_line(4, "# no formula"));
        assert!(e.contains("formula"), "{e}");
    }

    #[test]
    fn start_scale_needs_its_range() {
        let f = LawFile::parse(
            &with_line(START, "start = [0.1, 1.0]\nstart_scale = \"log\""),
            "t.toml",
        )
        .unwrap();
        assert_eq!(f.params["beta"].start_scale, Some(StartScale::Log));
        // Without a range, or with one that reaches 0, it is refused.
        let e = err(&with_line(START, "start_scale = \"log\""));
        assert!(
            e.starts_with(&format!("t.toml:{START}:")) && e.contains("give the range too"),
            "{e}"
        );
        let e = err(&GOOD.replace("lower = 1e-4", "lower = -1").replace(
            "start = [0.1, 1.0]",
            "start = [0.0, 1.0]\nstart_scale = \"log\"",
        ));
        assert!(e.contains("start_scale") && e.contains("above 0"), "{e}");
        let e = err(&with_line(
            START,
            "start = [0.1, 1.0]\nstart_scale = \"octaves\"",
        ));
        assert!(e.contains("octaves"), "{e}");
    }

    #[test]
    fn name_syntax() {
        for bad in ["My-law", "my_law", "", "-law", "law 2", "läw"] {
            let e = err(&with_line(2, &format!("name = {bad:?}")));
            assert!(e.starts_with("t.toml:2:8: name: "), "{bad:?}: {e}");
        }
        for good in ["looplm", "data-constrained", "v2", "2-step"] {
            LawFile::parse(&with_line(2, &format!("name = {good:?}")), "t").unwrap();
        }
    }

    #[test]
    fn empty_formula_and_multiline_description() {
        let e = err(&with_line(4, "formula = \"  \""));
        assert!(e.starts_with("t.toml:4:11: formula is empty"), "{e}");
        let e = err(&with_line(3, "description = \"two\\nlines\""));
        assert!(e.starts_with("t.toml:3:15: description"), "{e}");
    }

    #[test]
    fn names_may_not_be_shared() {
        // A param named like a variable, at its table header.
        let text = plus("\n[params.U]\nlower = 0\n");
        let e = err(&text);
        let line = line_of(&text, "[params.U]");
        assert!(
            e.starts_with(&format!("t.toml:{line}:9: params.U: U is a variable")),
            "{e}"
        );
        let e = err(&plus("\n[params.Dp]\nlower = 0\n"));
        assert!(e.contains("params.Dp: Dp is a def"), "{e}");
        let e = err(&with_line(12, "D = \"min(D, U)\""));
        assert!(
            e.starts_with("t.toml:12:1: defs.D: D is already a variable"),
            "{e}"
        );
    }

    #[test]
    fn defaults_belong_to_declared_variables_and_are_numbers() {
        let text = plus("\n[defaults]\nU = 1e9\n");
        assert_eq!(LawFile::parse(&text, "t.toml").unwrap().defaults["U"], 1e9);
        let text = plus("\n[defaults]\nZ = 1\n");
        let e = err(&text);
        let line = line_of(&text, "Z = 1");
        assert!(
            e.starts_with(&format!(
                "t.toml:{line}:1: defaults.Z: Z is not a declared variable"
            )),
            "{e}"
        );
        let e = err(&plus("\n[defaults]\nU = \"one\"\n"));
        assert!(e.contains("t.toml:") && e.contains("expected"), "{e}");
        let e = err(&plus("\n[defaults]\nU = inf\n"));
        assert!(e.contains("defaults.U: must be a finite number"), "{e}");
    }

    #[test]
    fn names_must_be_identifiers() {
        let e = err(&with_line(9, "2U = \"unique_tokens\""));
        assert!(e.starts_with("t.toml:9:1: variables.2U"), "{e}");
        let e = err(&with_line(12, "\"Z z\" = \"min(D, U)\""));
        assert!(e.starts_with("t.toml:12:1: defs.Z z"), "{e}");
        let e = err(&plus("\n[params.\"al-pha\"]\nlower = 0\n"));
        assert!(e.contains("params.al-pha"), "{e}");
        // Function names are taken.
        let e = err(&plus("\n[params.exp]\nlower = 0\n"));
        assert!(e.contains("exp is a function"), "{e}");
        let e = err(&with_line(9, "U = \"\""));
        assert!(
            e.starts_with("t.toml:9:5: variables.U: the column name is empty"),
            "{e}"
        );
        let e = err(&with_line(12, "Z = \"\""));
        assert!(e.contains("defs.Z: the expression is empty"), "{e}");
    }

    #[test]
    fn a_syntax_error_in_a_def_is_the_defs() {
        let text = "name = \"x\"\nformula = \"E + B/Dp^beta\"\n\n[defs]\nDp = \"D * (1 + \"\n";
        let e = format!("{:#}", LawFile::parse(text, "t.toml").unwrap_err());
        assert!(
            e.starts_with("t.toml:5:6: defs.Dp, column 10: expected a number"),
            "{e}"
        );
    }

    /// Without [variables] the names are bound later: an axis that is
    /// not among the variables is refused when the law is compiled.
    #[test]
    fn an_axis_bound_to_no_variable_is_refused_on_compile() {
        let text = "name = \"x\"\nformula = \"E + A/N^alpha\"\naxis = \"alpha\"\n";
        let mut f = LawFile::parse(text, "t.toml").unwrap();
        f.variables.insert("N".into(), "N".into());
        let e = f.compile("t.toml").unwrap_err().to_string();
        assert!(
            e.contains("t.toml: axis: alpha is not a variable of the law (its variables: N)"),
            "{e}"
        );
    }

    /// A declaration whose name the formula lacks (a typo of beta) is
    /// refused where it is written.
    #[test]
    fn a_declared_parameter_the_formula_lacks_is_found_at_its_line() {
        let text = GOOD.replace("[params.beta]", "[params.bta]");
        let e = err(&text);
        assert!(
            e.starts_with("t.toml:15:9: params.bta is declared but the formula has no parameter bta (its parameters: E, A, R, beta)"),
            "{e}"
        );
    }

    #[test]
    fn axis_must_be_a_variable() {
        let e = err(&with_line(5, "axis = \"N\""));
        assert!(
            e.starts_with("t.toml:5:8: axis: N is not a variable (the variables are D, U)"),
            "{e}"
        );
        // Without declared variables the axis is only checked as a name.
        LawFile::parse("name = \"x\"\nformula = \"a*x\"\naxis = \"x\"\n", "t").unwrap();
        let e = err("name = \"x\"\nformula = \"a*x\"\naxis = \"x y\"\n");
        assert!(e.starts_with("t.toml:3:8: axis"), "{e}");
    }

    #[test]
    fn bounds_must_be_ordered() {
        let e = err(&with_line(UPPER, "upper = 1e-4"));
        assert!(
            e.starts_with(&format!("t.toml:{UPPER}:9: params.beta.upper: ")),
            "{e}"
        );
        assert!(e.contains("above lower"), "{e}");
        let e = err(&with_line(UPPER, "upper = 1e-5"));
        assert!(e.starts_with(&format!("t.toml:{UPPER}:9: ")), "{e}");
    }

    #[test]
    fn positive_contradictions() {
        let e = err(&with_line(LOWER, "lower = -1\npositive = true"));
        assert!(
            e.starts_with(&format!(
                "t.toml:{LOWER}:9: params.beta.lower: -1 contradicts positive"
            )),
            "{e}"
        );
        // A lower bound of 0 is fine with positivity.
        LawFile::parse(&with_line(LOWER, "lower = 0\npositive = true"), "t").unwrap();
        let e = err(&with_line(LOWER, "lower = -3\npositive = true"));
        assert!(e.contains("contradicts positive"), "{e}");
        // A positive parameter may be held at 0 (its term switched off),
        // not below.
        LawFile::parse(&with_line(FIXED, "fixed = 0"), "t").unwrap();
        let e = err(&with_line(FIXED, "fixed = -2"));
        assert!(
            e.starts_with(&format!(
                "t.toml:{FIXED}:9: params.R.fixed: -2 contradicts positive"
            )),
            "{e}"
        );
        let e = err(&with_line(FIXED, "start = [0, 10]"));
        assert!(
            e.starts_with(&format!("t.toml:{FIXED}:9: params.R.start: ")),
            "{e}"
        );
    }

    #[test]
    fn start_inside_bounds_and_increasing() {
        let e = err(&with_line(START, "start = [1.0, 0.1]"));
        assert!(
            e.starts_with(&format!(
                "t.toml:{START}:9: params.beta.start: [1, 0.1] must be increasing"
            )),
            "{e}"
        );
        // One value twice is a start value.
        LawFile::parse(&with_line(START, "start = [0.1, 0.1]"), "t").unwrap();
        let e = err(&with_line(START, "start = [0.1, 9]"));
        assert!(e.starts_with(&format!("t.toml:{START}:9: params.beta.start: [0.1, 9] must lie inside the bounds [0.0001, 8]")), "{e}");
        let e = err(&with_line(START, "start = [0, 1]"));
        assert!(e.contains("inside the bounds"), "{e}");
        // Bounds are inclusive.
        LawFile::parse(&with_line(START, "start = [1e-4, 8]"), "t").unwrap();
    }

    #[test]
    fn fixed_inside_bounds() {
        let e = err(&with_line(START, "fixed = 9"));
        assert!(
            e.starts_with(&format!(
                "t.toml:{START}:9: params.beta.fixed: 9 lies outside the bounds [0.0001, 8]"
            )),
            "{e}"
        );
        LawFile::parse(&with_line(START, "fixed = 8"), "t").unwrap();
    }

    #[test]
    fn numbers_must_be_finite() {
        for (line, text, field) in [
            (LOWER, "lower = -inf", "lower"),
            (UPPER, "upper = inf", "upper"),
            (START, "start = [0.1, nan]", "start"),
            (START, "fixed = nan", "fixed"),
        ] {
            let e = err(&with_line(line, text));
            assert!(
                e.starts_with(&format!("t.toml:{line}:9: params.beta.{field}: "))
                    && e.contains("not a finite number"),
                "{text}: {e}"
            );
        }
    }

    #[test]
    fn validate_without_a_file() {
        let mut law = LawFile::parse(GOOD, "t").unwrap();
        law.validate().unwrap();
        law.params.get_mut("beta").unwrap().lower = Some(10.0);
        let e = format!("{:#}", law.validate().unwrap_err());
        assert!(e.starts_with("law test-law: params.beta.upper: "), "{e}");
    }

    #[test]
    fn positions_count_characters() {
        assert_eq!(position("ab\ncd", 0), (1, 1));
        assert_eq!(position("ab\ncd", 4), (2, 2));
        assert_eq!(position("é = 1\nx", 4), (1, 4));
        assert_eq!(position("ab", 99), (1, 3));
    }

    #[test]
    fn read_names_the_path() {
        let dir = std::env::temp_dir().join(format!("sweepfit-law-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.toml");
        std::fs::write(&path, "name = \"x\"\nformula = \"a\"\nfoo = 1\n").unwrap();
        let e = format!("{:#}", LawFile::read(&path).unwrap_err());
        assert!(e.starts_with(&format!("{}:3:1: ", path.display())), "{e}");
        let e = format!(
            "{:#}",
            LawFile::read(&dir.join("missing.toml")).unwrap_err()
        );
        assert!(e.contains("cannot read the law file"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
