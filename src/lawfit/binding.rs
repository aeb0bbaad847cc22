//! Which names of a law read which columns of a table, and which are
//! parameters: decided here once, stated with every fit, and never a
//! guess. A variable reads, in this order, the column given by `--var
//! NAME=COLUMN`, a column of its own name (exact spelling first, then
//! ignoring case), or the column its law file declares (`D = "tokens"`); in
//! a bare formula `D` also finds a `tokens` column, as in the long CSV, and
//! every name that finds no column is a parameter. The target (`loss`) and
//! `weight` columns are never a law's names, and a name that two columns
//! could be is an error.

use anyhow::bail;
use indexmap::IndexMap;

use crate::data::{Table, TextColumn};
use crate::law::dag::{Node, NodeId};
use crate::law::ops::Domain;
use crate::law::{parse, CompiledLaw, LawFile};

/// Columns that hold what is fitted, not what a law reads.
const ROLE_COLUMNS: [(&str, &str); 2] = [("loss", "target"), ("weight", "weight")];

/// What a bind is told besides the law and the table.
#[derive(Debug, Clone, Default)]
pub struct BindOptions {
    /// `--var NAME=COLUMN`, in the order given.
    pub vars: Vec<(String, String)>,
    /// `--axis VAR`: the variable curves run along.
    pub axis: Option<String>,
    /// Columns the command uses otherwise (`--by`, `--test-where`): not
    /// counted as columns the law leaves unused.
    pub used: Vec<String>,
    /// `--schedule FILE` (or a data frame's columns): the runs' learning
    /// rate at every step, for laws that sum along the steps.
    pub schedule: Option<ScheduleSource>,
}

/// Where the runs' schedules come from: a file the bind reads, or ones
/// read already (from columns in memory).
#[derive(Debug, Clone)]
pub enum ScheduleSource {
    File(std::path::PathBuf),
    Read(crate::data::Schedules),
}

impl ScheduleSource {
    /// The schedules, read from the file where they come from one.
    pub fn load(&self) -> Result<crate::data::Schedules, crate::data::DataError> {
        match self {
            ScheduleSource::File(path) => crate::data::Schedules::read(path),
            ScheduleSource::Read(s) => Ok(s.clone()),
        }
    }
}

/// How a variable filled with its default is bound: this, then the value.
const DEFAULT: &str = "default ";

/// How a law's names were bound.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Binding {
    /// (variable, column as written in the table, why that column).
    pub variables: Vec<(String, String, String)>,
    pub params: Vec<String>,
    /// The variable curves run along and why; None: every row on its own.
    pub axis: Option<(String, String)>,
    /// Columns beside the law's that split curves (rows of one run that
    /// repeat axis values).
    pub split: Vec<String>,
}

impl Binding {
    /// One line: "variables: N = column 'N' (own name), ...; parameters: E, A".
    pub fn describe(&self) -> String {
        let vars: Vec<String> = self
            .variables
            .iter()
            .map(|(v, c, how)| match how.strip_prefix(DEFAULT) {
                Some(value) => format!("{v} = {value} (the law's default: no column '{c}')"),
                None => format!("{v} = column '{c}' ({how})"),
            })
            .collect();
        let params = if self.params.is_empty() {
            "none".to_string()
        } else {
            self.params.join(", ")
        };
        let mut s = format!("variables: {}; parameters: {params}", vars.join(", "));
        match &self.axis {
            Some((a, why)) => s.push_str(&format!("; curves run along {a} ({why})")),
            None => s.push_str("; no axis: every row is a point of its own"),
        }
        if !self.split.is_empty() {
            s.push_str(&format!(
                "; rows of one run repeat values of the axis, so curves are also split by \
                 column {}",
                self.split.join(", ")
            ));
        }
        s
    }
}

/// The formula's names that are neither defs nor declared parameters, in
/// order of appearance (formula first, then the defs).
fn free_names(file: &LawFile, origin: &str) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    let texts = std::iter::once(&file.formula).chain(file.defs.values());
    for text in texts {
        let ast = parse::parse(text).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
        for (n, _) in parse::names(&ast) {
            let reserved = file.defs.contains_key(&n) || file.params.contains_key(&n);
            if !reserved && !names.contains(&n) {
                names.push(n);
            }
        }
    }
    Ok(names)
}

/// Give `table` a column for every variable of `file` with a declared
/// default that the binding would find no column for (neither its own
/// name, its declared column, its alias nor `--var`): named as declared,
/// every cell the default, and marked as filled.
pub fn fill_defaults(file: &LawFile, table: &mut Table, opts: &BindOptions) -> anyhow::Result<()> {
    for (v, &value) in &file.defaults {
        let declared = file.variables.get(v).map_or(v.as_str(), String::as_str);
        let given = opts.vars.iter().any(|(n, _)| n == v);
        if given || table.lookup(v)?.is_some() || table.lookup(declared)?.is_some() {
            continue;
        }
        table.headers.push(declared.to_string());
        table
            .columns
            .push(TextColumn::filled(&value.to_string(), table.rows()));
        table.filled.push(table.headers.len() - 1);
    }
    Ok(())
}

/// Resolve the variables of `file` to columns of `table` (see the module
/// text). Returns the file with `variables` set to the columns found (as
/// the table spells them) and the binding; the caller compiles.
pub fn resolve(
    mut file: LawFile,
    origin: &str,
    table: &Table,
    opts: &BindOptions,
) -> anyhow::Result<(LawFile, Binding)> {
    let path = table.path.display().to_string();
    let names = free_names(&file, origin)?;
    let bare = file.variables.is_empty();
    let mut role_cols = Vec::new();
    for (col, role) in ROLE_COLUMNS {
        if let Some(c) = table.lookup(col)? {
            role_cols.push((c, role));
        }
    }
    let role_of = |c: usize| role_cols.iter().find(|(rc, _)| *rc == c).map(|(_, r)| *r);
    // --var: a name of the law, once, to a column that exists and holds
    // no role.
    let mut given: IndexMap<String, usize> = IndexMap::new();
    for (n, col) in &opts.vars {
        if file.params.contains_key(n) {
            bail!("--var {n}={col}: {origin} declares {n} a parameter ([params.{n}])");
        }
        if !names.contains(n) && !file.variables.contains_key(n) {
            bail!(
                "--var {n}={col}: the law has no name {n} (its names: {})",
                names.join(", ")
            );
        }
        let Some(c) = table.lookup(col)? else {
            bail!(
                "--var {n}={col}: {path} has no column '{col}' (columns found: {})",
                table.found()
            );
        };
        if let Some(role) = role_of(c) {
            bail!(
                "--var {n}={col}: '{}' is the {role} column of {path}; the target and \
                 weight columns are never a law's variables",
                table.headers[c]
            );
        }
        if given.insert(n.clone(), c).is_some() {
            bail!("--var {n} is given twice");
        }
    }
    // The candidates: a law file's declared variables, or every free name
    // of a bare formula.
    let mut candidates: Vec<(String, Option<String>)> = if bare {
        names.iter().map(|n| (n.clone(), None)).collect()
    } else {
        file.variables
            .iter()
            .map(|(v, c)| (v.clone(), Some(c.clone())))
            .collect()
    };
    // --var makes a law file's undeclared name a variable too, rather
    // than being ignored.
    for n in given.keys() {
        if !candidates.iter().any(|(m, _)| m == n) {
            candidates.push((n.clone(), None));
        }
    }
    // Curves are told apart by `run`: two such columns are a guess too.
    table.lookup("run")?;
    let mut bound: Vec<(String, usize, &'static str)> = Vec::new();
    let mut params = Vec::new();
    for (n, declared) in candidates {
        if let Some(&c) = given.get(&n) {
            bound.push((n, c, "--var"));
            continue;
        }
        let own = table.lookup(&n)?;
        if let Some(role) = own.and_then(role_of) {
            // A role column of the name's spelling: never read as a
            // variable; a bare formula's name that would silently become a
            // parameter called "loss" is refused.
            if declared.is_none() {
                bail!(
                    "{origin}: the formula's name {n} is the {role} column '{}' of {path}; the \
                     target and weight columns are never a law's names: rename it, or bind it \
                     to another column with --var {n}=COLUMN",
                    table.headers[own.unwrap_or_default()]
                );
            }
        } else if let Some(c) = own {
            bound.push((n, c, "own name"));
            continue;
        }
        if let Some(col) = declared {
            let Some(c) = table.lookup(&col)? else {
                if n == parse::SCHEDULE {
                    bail!(
                        "{origin}: the law sums along its runs' steps and reads each run's \
                         learning rate at every step: give the schedules with --schedule FILE \
                         (a CSV run,step,lr, or a manifest run,file)"
                    );
                }
                let wanted = if col == n {
                    format!("column '{col}', which is missing")
                } else {
                    format!("column '{n}' or else '{col}', and both are missing")
                };
                bail!(
                    "{path}:1: the law's variable {n} reads {wanted}; columns found: {}; bind it \
                     to a column with --var {n}=COLUMN",
                    table.found()
                );
            };
            if let Some(role) = role_of(c) {
                bail!(
                    "{origin}: the law's variable {n} is bound to '{}', the {role} column of \
                     {path}; the target and weight columns are never a law's variables: bind \
                     {n} to another column with --var {n}=COLUMN",
                    table.headers[c]
                );
            }
            bound.push((n, c, "declared"));
            continue;
        }
        // D and tokens name one quantity, as in the long CSV.
        let alias = match n.as_str() {
            "D" => Some("tokens"),
            "tokens" => Some("D"),
            _ => None,
        };
        if let Some(a) = alias {
            if let Some(c) = table.lookup(a)?.filter(|&c| role_of(c).is_none()) {
                bound.push((
                    n,
                    c,
                    if a == "tokens" {
                        "D reads tokens"
                    } else {
                        "tokens reads D"
                    },
                ));
                continue;
            }
        }
        params.push(n);
    }
    for (i, (a, ca, _)) in bound.iter().enumerate() {
        if let Some((b, _, _)) = bound[..i].iter().find(|(_, cb, _)| cb == ca) {
            bail!(
                "the law's variables {b} and {a} both read column '{}' of {path}: give each its \
                 own column with --var NAME=COLUMN",
                table.headers[*ca]
            );
        }
    }
    if bound.is_empty() {
        bail!(
            "{origin}: no name of the formula is a column of {path} (columns found: {}); a \
             name that is a column is a variable, the others are parameters; bind a variable \
             to a column with --var NAME=COLUMN",
            table.found()
        );
    }
    file.variables = bound
        .iter()
        .map(|(n, c, _)| (n.clone(), table.headers[*c].clone()))
        .collect();
    // The compiled law's parameters also count names a law file declares.
    let binding = Binding {
        variables: bound
            .iter()
            .map(|(n, c, how)| {
                let how = match table.filled.contains(c) {
                    true => format!("{DEFAULT}{}", table.columns[*c].first().map_or("", |v| v)),
                    false => how.to_string(),
                };
                (n.clone(), table.headers[*c].clone(), how)
            })
            .collect(),
        params,
        axis: None,
        split: Vec::new(),
    };
    Ok((file, binding))
}

/// The numeric columns of `table` that neither the binding, the role
/// columns, `run` nor `opts.used` account for.
fn unused_numeric(table: &Table, file: &LawFile, opts: &BindOptions) -> Vec<String> {
    (0..table.headers.len())
        .filter(|&c| {
            let h = &table.headers[c];
            let named = |n: &str| h.eq_ignore_ascii_case(n);
            !file.variables.values().any(|v| v == h)
                && !ROLE_COLUMNS.iter().any(|(r, _)| named(r))
                && !named("run")
                && !opts.used.iter().any(|u| named(u))
                && table.is_numeric(c)
        })
        .map(|c| table.headers[c].clone())
        .collect()
}

/// Parameters the data cannot tell apart: two or more that appear only
/// together, inside one sub-expression of parameters alone (`A/N^alpha`
/// with N a parameter is one number, `k*(x - x0)` with x one is `k*c`).
/// That is what a variable left unbound looks like. In order of the law's
/// parameters; the second list has those raised to a power or under a log,
/// the likeliest variables.
pub fn inseparable(law: &CompiledLaw) -> (Vec<String>, Vec<String>) {
    let g = &law.graph;
    let masks = g.var_masks();
    let top = law.value as usize;
    let mut used = vec![false; top + 1];
    used[top] = true;
    for i in (0..=top).rev() {
        if used[i] {
            for o in g.node(i as NodeId).operands() {
                used[o as usize] = true;
            }
        }
    }
    // Operands come before the nodes that use them.
    let mut has_param = vec![false; top + 1];
    for i in 0..=top {
        has_param[i] = match g.node(i as NodeId) {
            Node::Param(_) => true,
            n => n.operands().any(|o| has_param[o as usize]),
        };
    }
    let params_only = |i: usize| masks[i] == 0 && has_param[i];
    // Sub-expressions of parameters alone that data (or the result) use.
    let mut maximal = vec![false; top + 1];
    maximal[top] = params_only(top);
    for i in (0..=top).filter(|&i| used[i]) {
        if !params_only(i) {
            for o in g.node(i as NodeId).operands() {
                if params_only(o as usize) {
                    maximal[o as usize] = true;
                }
            }
        }
    }
    let params_in = |root: usize| {
        let mut seen = Vec::new();
        let mut stack = vec![root as NodeId];
        while let Some(id) = stack.pop() {
            match g.node(id) {
                Node::Param(p) => {
                    if !seen.contains(&(p as usize)) {
                        seen.push(p as usize);
                    }
                }
                n => stack.extend(n.operands()),
            }
        }
        seen
    };
    let groups: Vec<Vec<usize>> = (0..=top)
        .filter(|&i| used[i] && maximal[i])
        .map(params_in)
        .collect();
    let mut suspect = vec![false; law.params.len()];
    for grp in &groups {
        let alone: Vec<usize> = grp
            .iter()
            .copied()
            .filter(|p| groups.iter().filter(|h| h.contains(p)).count() == 1)
            .collect();
        if alone.len() >= 2 {
            for p in alone {
                suspect[p] = true;
            }
        }
    }
    let mut data_like = vec![false; law.params.len()];
    for i in (0..=top).filter(|&i| used[i]) {
        let base = match g.node(i as NodeId) {
            Node::Pow(b, _) => b,
            Node::Fn1(f, b) if f.spec().domain != Domain::All => b,
            _ => continue,
        };
        if let Node::Param(p) = g.node(base) {
            data_like[p as usize] = suspect[p as usize];
        }
    }
    let names = |keep: &[bool]| -> Vec<String> {
        (0..law.params.len())
            .filter(|&p| keep[p])
            .map(|p| law.params[p].clone())
            .collect()
    };
    (names(&suspect), names(&data_like))
}

/// For a bare formula: refuse a binding that leaves parameters the data
/// cannot tell apart while the table has numeric columns the law does not
/// read (the usual cause: a variable whose column has another name, such
/// as N for a `params` column). Without such columns, a warning.
pub fn check_unbound(
    law: &CompiledLaw,
    file: &LawFile,
    table: &Table,
    opts: &BindOptions,
) -> anyhow::Result<Option<String>> {
    let (suspects, data_like) = inseparable(law);
    if suspects.is_empty() {
        return Ok(None);
    }
    let unused = unused_numeric(table, file, opts);
    let name = data_like.first().unwrap_or(&suspects[0]);
    let quoted: Vec<String> = unused.iter().map(|c| format!("'{c}'")).collect();
    if let Some(col) = unused.first() {
        bail!(
            "the formula's names {} find no column of {path}, so they would be parameters, and \
             {} of them appear only together, where the data cannot tell them apart; {path} \
             has numeric columns the formula does not use: {}. If {name} is a variable, bind \
             it to its column: --var {name}={col}",
            law.params.join(", "),
            suspects.join(", "),
            quoted.join(", "),
            path = table.path.display(),
        );
    }
    Ok(Some(format!(
        "the parameters {} appear only together, so the data cannot tell them apart; if {name} \
         is a variable, bind it to its column with --var {name}=COLUMN",
        suspects.join(", ")
    )))
}

/// A law file's name that its `[variables]` do not bind and its
/// `[params]` do not declare is a free parameter. Where the data has a
/// numeric column of exactly that name, the user meant the column: a fit
/// that took it for a number would run and be silently wrong.
pub fn check_undeclared(law: &CompiledLaw, file: &LawFile, table: &Table) -> anyhow::Result<()> {
    for p in &law.params {
        if file.params.contains_key(p) {
            continue;
        }
        let Some(c) = table.headers.iter().position(|h| h == p) else {
            continue;
        };
        if !table.is_numeric(c) {
            continue;
        }
        let bound: Vec<&str> = file.variables.keys().map(String::as_str).collect();
        bail!(
            "law {}: its formula's {p} is neither one of its variables ({}) nor a declared \
             parameter, so it would be fitted as a number, but {} has a column '{p}'. Bind it \
             under [variables] ({p} = \"{p}\"), or declare [params.{p}] to fit it as a parameter",
            file.name,
            bound.join(", "),
            table.path.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(headers: &[&str]) -> Table {
        Table {
            path: "t.csv".into(),
            headers: headers.iter().map(|h| h.to_string()).collect(),
            columns: vec![vec!["1", "2"].into(); headers.len()],
            lines: vec![],
            in_memory: false,
            filled: vec![],
            notes: vec![],
        }
    }

    fn opts(vars: &[(&str, &str)]) -> BindOptions {
        BindOptions {
            vars: vars
                .iter()
                .map(|(n, c)| (n.to_string(), c.to_string()))
                .collect(),
            axis: None,
            used: Vec::new(),
            schedule: None,
        }
    }

    fn bound(file: LawFile, t: &Table, o: &BindOptions) -> anyhow::Result<Vec<(String, String)>> {
        let (_, b) = resolve(file, "law", t, o)?;
        Ok(b.variables.into_iter().map(|(v, c, _)| (v, c)).collect())
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn own_name_then_declared_then_var() {
        let dc = crate::law::builtin_law("data-constrained").unwrap();
        // The paper's names find their own columns.
        let t = table(&["N", "U", "D", "loss"]);
        let got = bound(dc.clone(), &t, &opts(&[])).unwrap();
        assert_eq!(got, pairs(&[("N", "N"), ("D", "D"), ("U", "U")]));
        // The declared bindings where there are none.
        let t = table(&["N", "unique_tokens", "tokens", "loss"]);
        let got = bound(dc.clone(), &t, &opts(&[])).unwrap();
        assert_eq!(
            got,
            pairs(&[("N", "N"), ("D", "tokens"), ("U", "unique_tokens")])
        );
        // --var over both.
        let t = table(&["N", "U", "D", "seen", "loss"]);
        let got = bound(dc, &t, &opts(&[("D", "seen")])).unwrap();
        assert_eq!(got, pairs(&[("N", "N"), ("D", "seen"), ("U", "U")]));
        // --var makes a law file's undeclared name a variable.
        let file = LawFile::parse(
            "name = \"x\"\nformula = \"E + A/N^alpha + C*T\"\n[variables]\nN = \"N\"\n",
            "x.toml",
        )
        .unwrap();
        let t = table(&["N", "T", "loss"]);
        let got = bound(file.clone(), &t, &opts(&[])).unwrap();
        assert_eq!(got, pairs(&[("N", "N")]));
        let got = bound(file, &t, &opts(&[("T", "T")])).unwrap();
        assert_eq!(got, pairs(&[("N", "N"), ("T", "T")]));
        // Two run columns.
        let t = table(&["run", "N", "U", "D", "run", "loss"]);
        let dc = crate::law::builtin_law("data-constrained").unwrap();
        assert!(bound(dc, &t, &opts(&[])).is_err());
    }

    #[test]
    fn guesses_and_role_columns_are_errors() {
        let f = |s: &str| LawFile::from_formula(s).unwrap();
        let err =
            |file: LawFile, t: &Table, o: &BindOptions| bound(file, t, o).unwrap_err().to_string();
        let law = f("E + A/Nv^alpha");
        let e = err(law.clone(), &table(&["nv", "NV", "loss"]), &opts(&[]));
        assert!(e.contains("'nv' (1) and 'NV' (2)"), "{e}");
        let e = err(
            law.clone(),
            &table(&["N", "N", "loss"]),
            &opts(&[("Nv", "N")]),
        );
        assert!(e.contains("'N' (1) and 'N' (2)"), "{e}");
        // The target is never a name of the formula.
        let e = err(f("E + A*loss"), &table(&["x", "loss"]), &opts(&[]));
        assert!(e.contains("name loss is the target column"), "{e}");
        let e = err(
            f("E + A*x"),
            &table(&["x", "weight", "loss"]),
            &opts(&[("x", "weight")]),
        );
        assert!(e.contains("weight column"), "{e}");
        let file = LawFile::parse(
            "name = \"x\"\nformula = \"E + A*x\"\n[variables]\nx = \"loss\"\n",
            "x.toml",
        )
        .unwrap();
        let e = err(file, &table(&["loss"]), &opts(&[]));
        assert!(e.contains("the target column"), "{e}");
        // --var names a name of the law, once.
        let e = err(law.clone(), &table(&["n", "loss"]), &opts(&[("M", "n")]));
        assert!(e.contains("no name M"), "{e}");
        let twice = opts(&[("Nv", "n"), ("Nv", "n")]);
        let e = err(law, &table(&["n", "loss"]), &twice);
        assert!(e.contains("given twice"), "{e}");
        // Two variables, one column.
        let e = err(f("A/x + B/y"), &table(&["x", "loss"]), &opts(&[("y", "x")]));
        assert!(e.contains("both read column 'x'"), "{e}");
    }

    fn suspects(formula: &str, vars: &[&str]) -> (Vec<String>, Vec<String>) {
        inseparable(&CompiledLaw::from_formula(formula, vars).unwrap())
    }

    #[test]
    fn parameters_that_only_appear_together_are_found() {
        let (s, d) = suspects("E + A/N^alpha + B/D^beta", &["D"]);
        assert_eq!(s, ["E", "A", "N", "alpha"]);
        assert_eq!(d, ["N"]);
        assert_eq!(suspects("a/(1 + exp(-k*(x - x0))) + b", &[]).0.len(), 5);
        let (s, d) = suspects("E + A*exp(-b*N) + B/D^beta", &["D"]);
        assert_eq!(
            (s, d),
            (["E", "A", "b", "N"].map(String::from).to_vec(), vec![])
        );
        // Bound right, nothing is.
        for (formula, vars) in [
            ("E + A/N^alpha + B/D^beta", &["N", "D"][..]),
            ("a/(1 + exp(-k*(x - x0))) + b", &["x"]),
            ("E + A/(N + t1)^alpha", &["N"]),
            // One parameter alone in a group is fine (E_start here): the
            // others appear elsewhere too.
            (
                "exp(a*log(N) + d)/(E - 1 + (1/Es - 1/Em)) + 1/Em",
                &["N", "E"],
            ),
        ] {
            assert_eq!(suspects(formula, vars).0, Vec::<String>::new(), "{formula}");
        }
    }
}
