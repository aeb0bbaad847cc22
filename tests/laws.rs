//! The built-in laws (laws/*.toml) and `sweepfit laws`: every file parses,
//! binds columns its data has, declares exactly the parameters its formula
//! uses, and computes the law of its paper; the command lists them all and
//! prints each file as it is.
//!
//! The formulas are checked with a small evaluator of the formula language
//! below, against the laws written out in Rust from the papers (and from
//! ../shared/data/sldbench/README.md), at a few points.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

mod common;
use common::{ok, sweepfit};
use sweepfit::law::{builtin, builtin_law, builtin_names, LawFile, ParamDecl, DEFAULT_LAW};

fn law(name: &str) -> LawFile {
    builtin_law(name).unwrap_or_else(|| panic!("{name} is not built in"))
}

// ---------------------------------------------------------------------
// A reference evaluator of the formula language, for these tests only.

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Id(String),
    Op(char),
}

fn lex(s: &str) -> Vec<Tok> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i] as char;
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() || (c == '.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            let start = i;
            // A '.' before another is a range's "..", not the number's.
            while i < b.len()
                && (b[i].is_ascii_digit() || (b[i] == b'.' && b.get(i + 1) != Some(&b'.')))
            {
                i += 1;
            }
            if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
                i += 1;
                if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
                    i += 1;
                }
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
            }
            out.push(Tok::Num(s[start..i].parse().expect("a number")));
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push(Tok::Id(s[start..i].to_string()));
        } else {
            assert!("+-*/^(),[]=:.".contains(c), "unexpected {c:?} in {s}");
            out.push(Tok::Op(c));
            i += 1;
        }
    }
    out
}

/// Recursive descent: ^ is right-associative and binds tighter than unary
/// minus (-x^2 = -(x^2)). Records every name it evaluates.
struct Eval<'a> {
    toks: Vec<Tok>,
    pos: usize,
    env: &'a HashMap<String, f64>,
    used: BTreeSet<String>,
}

impl Eval<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn eat(&mut self, op: char) -> bool {
        if self.peek() == Some(&Tok::Op(op)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expr(&mut self) -> f64 {
        let mut v = self.term();
        loop {
            if self.eat('+') {
                v += self.term();
            } else if self.eat('-') {
                v -= self.term();
            } else {
                return v;
            }
        }
    }

    fn term(&mut self) -> f64 {
        let mut v = self.unary();
        loop {
            if self.eat('*') {
                v *= self.unary();
            } else if self.eat('/') {
                v /= self.unary();
            } else {
                return v;
            }
        }
    }

    fn unary(&mut self) -> f64 {
        if self.eat('-') {
            -self.unary()
        } else {
            self.power()
        }
    }

    fn power(&mut self) -> f64 {
        let base = self.atom();
        if self.eat('^') {
            base.powf(self.unary())
        } else {
            base
        }
    }

    fn atom(&mut self) -> f64 {
        let tok = self.peek().cloned();
        self.pos += 1;
        match tok {
            Some(Tok::Num(v)) => v,
            Some(Tok::Op('(')) => {
                let v = self.expr();
                assert!(self.eat(')'), "missing )");
                v
            }
            Some(Tok::Id(name)) if self.eat('(') => {
                let mut args = vec![self.expr()];
                while self.eat(',') {
                    args.push(self.expr());
                }
                assert!(self.eat(')'), "missing ) after {name}(");
                match (name.as_str(), args.as_slice()) {
                    ("exp", [x]) => x.exp(),
                    ("log", [x]) => x.ln(),
                    ("sqrt", [x]) => x.sqrt(),
                    ("min", [x, y]) => x.min(*y),
                    ("max", [x, y]) => x.max(*y),
                    _ => panic!("{name} with {} arguments", args.len()),
                }
            }
            Some(Tok::Id(name)) => {
                let v = *self
                    .env
                    .get(&name)
                    .unwrap_or_else(|| panic!("{name} has no value here"));
                self.used.insert(name);
                v
            }
            t => panic!("unexpected {t:?}"),
        }
    }
}

/// Value of `src` and the names it used.
fn eval(src: &str, env: &HashMap<String, f64>) -> (f64, BTreeSet<String>) {
    let mut e = Eval {
        toks: lex(src),
        pos: 0,
        env,
        used: BTreeSet::new(),
    };
    let v = e.expr();
    assert!(e.pos == e.toks.len(), "trailing input in {src}");
    (v, e.used)
}

/// Every name the formula and the defs use.
fn names(src: &str) -> BTreeSet<String> {
    let toks = lex(src);
    let mut out = BTreeSet::new();
    // The steps a sum binds (`k` in sum(k = ..)) are not names of the law.
    let bound: BTreeSet<&String> = toks
        .windows(2)
        .filter_map(|w| match w {
            [Tok::Id(n), Tok::Op('=')] => Some(n),
            _ => None,
        })
        .collect();
    for (i, t) in toks.iter().enumerate() {
        if let Tok::Id(n) = t {
            match toks.get(i + 1) {
                Some(Tok::Op('(')) => {}
                // A series at a step is read through the run's schedule.
                Some(Tok::Op('[')) => {
                    out.insert("schedule".to_string());
                }
                _ if bound.contains(n) => {}
                _ => {
                    out.insert(n.clone());
                }
            }
        }
    }
    out
}

/// The law at `vars` (formula names) and `params`: defs in order, each
/// seeing only the defs above it, then the formula.
fn evaluate(law: &LawFile, vars: &[(&str, f64)], params: &[(&str, f64)]) -> f64 {
    let mut env: HashMap<String, f64> = HashMap::new();
    for &(k, v) in vars.iter().chain(params) {
        env.insert(k.to_string(), v);
    }
    for (name, expr) in &law.defs {
        let v = eval(expr, &env).0;
        env.insert(name.clone(), v);
    }
    eval(&law.formula, &env).0
}

fn assert_rel(got: f64, want: f64, what: &str) {
    assert!(
        want.is_finite() && (got - want).abs() <= 1e-12 * want.abs(),
        "{what}: formula {got} vs reference {want}"
    );
}

#[test]
fn evaluator_follows_the_language() {
    let env: HashMap<String, f64> = [("x".to_string(), 3.0)].into();
    assert_eq!(eval("-x^2", &env).0, -9.0);
    assert_eq!(eval("2^3^2", &env).0, 512.0);
    assert_eq!(eval("2^-1", &env).0, 0.5);
    assert_eq!(eval("1 - 2 - 3", &env).0, -4.0);
    assert_eq!(eval("12/x/2", &env).0, 2.0);
    assert_eq!(eval("min(x, 1e-1) + max(x, 2)", &env).0, 3.1);
    assert_eq!(
        names("a*exp(-b/x)"),
        ["a", "b", "x"].map(String::from).into()
    );
}

// ---------------------------------------------------------------------
// The files.

#[test]
fn every_builtin_parses_and_every_file_is_listed() {
    let names = builtin_names();
    assert_eq!(names[0], DEFAULT_LAW);
    let unique: BTreeSet<&str> = names.iter().copied().collect();
    assert_eq!(unique.len(), names.len(), "duplicate names in {names:?}");
    for &name in names {
        let origin = format!("laws/{name}.toml");
        let law = LawFile::parse(builtin(name).unwrap(), &origin).unwrap();
        assert_eq!(law.name, name, "{origin} names itself {}", law.name);
        assert!(!law.description.is_empty(), "{origin}: no description");
        assert!(law.reference.is_some(), "{origin}: no reference");
        assert!(law.axis.is_some(), "{origin}: no axis");
        // Built in exactly as the file in the repository reads.
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("laws");
        let on_disk = std::fs::read_to_string(dir.join(format!("{name}.toml"))).unwrap();
        assert_eq!(builtin(name).unwrap(), on_disk);
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("laws");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    let mut want: Vec<String> = names.iter().map(|n| format!("{n}.toml")).collect();
    want.sort();
    assert_eq!(files, want, "laws/ holds exactly the built-in laws");
}

/// The formula and defs use exactly the declared variables, defs and
/// parameters (a declaration of an unused name would be a silent typo),
/// and each def only the defs above it.
#[test]
fn every_name_used_is_declared_and_every_declaration_used() {
    for &name in builtin_names() {
        let law = law(name);
        let mut used = names(&law.formula);
        let mut known: BTreeSet<String> = law.variables.keys().cloned().collect();
        known.extend(law.params.keys().cloned());
        for (def, expr) in &law.defs {
            for n in names(expr) {
                assert!(
                    known.contains(&n),
                    "{name}: def {def} uses {n}, which is neither a variable, a parameter nor a def above it"
                );
                used.insert(n);
            }
            known.insert(def.clone());
        }
        let declared: BTreeSet<String> = law
            .variables
            .keys()
            .chain(law.defs.keys())
            .chain(law.params.keys())
            .cloned()
            .collect();
        assert_eq!(used, declared, "{name}: names used vs declared");
    }
}

/// The LoopLM paper's ten parameters, in its order.
const LOOPLM_PARAMS: [&str; 10] = [
    "E", "A", "alpha", "t1", "B", "beta", "t2", "C", "gamma", "t3",
];

/// LoopLM as its paper fits it: the ten parameters, exponents inside
/// [1e-4, 8] (every power finite), the rest positive (fitted as logs),
/// exponents started log-uniformly. The laws derived from it declare the
/// same.
#[test]
fn looplm_declarations_match_the_paper() {
    let looplm = law("looplm");
    let names: BTreeSet<&str> = looplm.params.keys().map(String::as_str).collect();
    assert_eq!(names, LOOPLM_PARAMS.into_iter().collect());
    for (p, decl) in &looplm.params {
        if ["alpha", "beta", "gamma"].contains(&p.as_str()) {
            assert_eq!((decl.lower, decl.upper), (Some(1e-4), Some(8.0)), "{p}");
            assert_eq!(decl.positive, None, "{p}");
            // Drawn log-uniformly: as many starts per octave.
            assert_eq!(
                decl.start_scale,
                Some(sweepfit::law::file::StartScale::Log),
                "{p}"
            );
        } else {
            assert_eq!(decl.positive, Some(true), "{p}");
            assert_eq!((decl.lower, decl.upper), (None, None), "{p}");
        }
        assert_eq!(decl.fixed, None, "{p}");
    }
    assert_eq!(looplm.params, law("looplm-total").params);
    for (p, decl) in &law("chinchilla").params {
        assert_eq!(decl, &looplm.params[p], "chinchilla {p}");
    }
    assert_eq!(DEFAULT_LAW, "looplm");
}

#[test]
fn declared_constraints_of_the_sldbench_laws() {
    let moe = law("moe");
    assert_eq!(moe.params["E_start"].lower, Some(1.1));
    // E_max >= E_start + 1 is implied only in part: E_max >= 2.1.
    assert_eq!(moe.params["E_max"].lower, Some(2.1));
    assert!(
        !moe.params.contains_key("E"),
        "E is moe's number of experts"
    );

    let vocab = law("vocab");
    assert_eq!(vocab.params.len(), 7);
    for (p, decl) in &vocab.params {
        let lower = decl.lower.unwrap_or(f64::NEG_INFINITY);
        assert!(
            decl.positive == Some(true) || lower > 0.0,
            "vocab {p} must be positive"
        );
    }
    let rectified = law("rectified");
    assert_eq!(rectified.params.len(), 4);
    for (p, decl) in &rectified.params {
        let lower = decl.lower.unwrap_or(f64::NEG_INFINITY);
        assert!(
            decl.positive == Some(true) || lower > 0.0,
            "rectified {p} must be positive"
        );
    }
    let dc = law("data-constrained");
    for p in ["R_N", "R_D"] {
        assert_eq!(dc.params[p].positive, Some(true), "{p}");
    }
    let positive = |d: &ParamDecl| d.positive == Some(true);
    assert!(positive(&law("kaplan").params["N_c"]) && positive(&law("kaplan").params["D_c"]));
}

// ---------------------------------------------------------------------
// The columns.

fn header(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let first = text.lines().next().unwrap();
    first.split(',').map(|c| c.trim().to_string()).collect()
}

/// Each bound column is in the header, spelt exactly: vocab's `d` and `D`
/// differ only in case, so only the exact spelling says which is meant.
fn assert_columns(name: &str, columns: &[String]) {
    for (var, col) in &law(name).variables {
        assert!(
            columns.contains(col),
            "{name}: variable {var} is bound to column {col:?}, which the data lacks ({columns:?})"
        );
    }
}

#[test]
fn sldbench_laws_bind_columns_of_their_data() {
    let data = common::shared_data();
    for name in ["moe", "vocab", "rectified"] {
        let columns = header(&data.join(format!("sldbench/{name}.csv")));
        assert_columns(name, &columns);
    }
}

#[test]
fn sweep_laws_bind_columns_of_a_long_csv() {
    let dir = common::tempdir();
    let csv = dir.path().join("sweep.csv");
    ok(
        dir.path(),
        &["simulate", "--out", csv.to_str().unwrap(), "--points", "3"],
    );
    let columns = header(&csv);
    for name in ["looplm", "chinchilla", "kaplan"] {
        assert_columns(name, &columns);
    }
    // Laws for columns no sweepfit data has yet: the names they expect.
    let dc = law("data-constrained");
    assert_eq!(dc.variables["U"], "unique_tokens");
    assert_eq!(dc.variables["D"], "tokens");
    let total = law("looplm-total");
    assert_eq!(total.variables["T_m"], "T_m");
    assert!(!total.variables.contains_key("T"));
    let mut rest = columns.clone();
    rest.push("unique_tokens".into());
    rest.push("T_m".into());
    assert_columns("data-constrained", &rest);
    assert_columns("looplm-total", &rest);
}

// ---------------------------------------------------------------------
// The formulas, against the laws written out here.

/// LoopLM's law (arXiv 2510.25741, appendix D) at `p`, in LOOPLM_PARAMS'
/// order.
fn looplm(p: &[f64; 10], n: f64, d: f64, t: f64) -> f64 {
    p[0] + p[1] / (n + p[3]).powf(p[2])
        + p[4] / (d + p[6]).powf(p[5])
        + p[7] / (t + p[9]).powf(p[8])
}

#[test]
fn looplm_formulas_are_the_papers_law() {
    let p = [1.7, 480.0, 0.34, 2.0e6, 410.0, 0.28, 5.0e7, 0.9, 1.3, 0.2];
    let params: Vec<(&str, f64)> = LOOPLM_PARAMS.iter().copied().zip(p).collect();
    for (n, d, t) in [(5.3e7, 0.0, 1.0), (3.74e8, 7.5e9, 3.0), (1.36e9, 2e10, 4.0)] {
        let want = looplm(&p, n, d, t);
        let got = evaluate(&law("looplm"), &[("N", n), ("D", d), ("T", t)], &params);
        assert_rel(got, want, "looplm");
        let got = evaluate(
            &law("looplm-total"),
            &[("N", n), ("D", d), ("T_m", t)],
            &params,
        );
        assert_rel(got, want, "looplm-total");
    }
    // Chinchilla is LoopLM without offsets and without the T term.
    let mut q = p;
    for i in [3, 6, 7] {
        q[i] = 0.0;
    }
    let params: Vec<(&str, f64)> = LOOPLM_PARAMS
        .iter()
        .copied()
        .zip(q)
        .filter(|(k, _)| law("chinchilla").params.contains_key(*k))
        .collect();
    for (n, d) in [(7e7, 1e9), (1.4e9, 3e11)] {
        let want = looplm(&q, n, d, 1.0);
        let got = evaluate(&law("chinchilla"), &[("N", n), ("D", d)], &params);
        assert_rel(got, want, "chinchilla");
    }
}

#[test]
fn kaplan_formula_is_eq_1_5() {
    let (nc, dc, an, ad): (f64, f64, f64, f64) = (6.4e13, 1.8e13, 0.076, 0.103);
    let params = [("N_c", nc), ("D_c", dc), ("alpha_N", an), ("alpha_D", ad)];
    for (n, d) in [(1e8f64, 1e10f64), (1.5e9, 3e11)] {
        let want = ((nc / n).powf(an / ad) + dc / d).powf(ad);
        let got = evaluate(&law("kaplan"), &[("N", n), ("D", d)], &params);
        assert_rel(got, want, "kaplan");
    }
}

/// Muennighoff et al.: L = E + A/N'^alpha + B/D'^beta with
/// D' = U_D + U_D R_D* (1 - exp(-R_D/R_D*)), R_D = D/U_D - 1 repetitions
/// of the unique tokens seen (U_D = min(D, U)), and N' likewise with
/// U_N = min(N, 0.051 U).
#[test]
fn data_constrained_formula_is_muennighoff() {
    let (e, a, alpha, b, beta, r_n, r_d): (f64, f64, f64, f64, f64, f64, f64) =
        (1.87, 521.0, 0.35, 1488.0, 0.353, 5.3, 15.4);
    let params = [
        ("E", e),
        ("A", a),
        ("alpha", alpha),
        ("B", b),
        ("beta", beta),
        ("R_N", r_n),
        ("R_D", r_d),
    ];
    let reference = |n: f64, d: f64, u: f64| {
        let un = n.min(0.051 * u);
        let np = un + un * r_n * (1.0 - (-(n / un - 1.0) / r_n).exp());
        let ud = d.min(u);
        let dp = ud + ud * r_d * (1.0 - (-(d / ud - 1.0) / r_d).exp());
        e + a / np.powf(alpha) + b / dp.powf(beta)
    };
    // Fewer tokens than unique ones (Dp = D), many epochs, excess
    // parameters and too few.
    for (n, d, u) in [
        (1e8, 5e9, 1e10),
        (1e8, 1e11, 1e10),
        (2e9, 1e11, 1e10),
        (2e9, 1e10, 1e10),
    ] {
        let got = evaluate(
            &law("data-constrained"),
            &[("N", n), ("D", d), ("U", u)],
            &params,
        );
        assert_rel(got, reference(n, d, u), "data-constrained");
    }
    // A single epoch of fresh data is Chinchilla's law.
    let (n, d): (f64, f64) = (1e8, 5e9);
    let got = evaluate(
        &law("data-constrained"),
        &[("N", n), ("D", d), ("U", 1e12)],
        &params,
    );
    assert_rel(got, e + a / n.powf(alpha) + b / d.powf(beta), "fresh data");
}

/// SLDBench's README: L = exp(a ln N + b ln Ê + c ln N ln Ê + d) with
/// 1/Ê = 1/(E − 1 + (1/E_start − 1/E_max)) + 1/E_max.
#[test]
fn moe_formula_is_sldbenchs() {
    let (a, b, c, d, es, em): (f64, f64, f64, f64, f64, f64) =
        (-0.08459, -0.09866, 0.003964, 2.5625, 1.1, 1.2e6);
    let params = [
        ("a", a),
        ("b", b),
        ("c", c),
        ("d", d),
        ("E_start", es),
        ("E_max", em),
    ];
    for (n, ex) in [(3.68e8f64, 1.0f64), (2.7e7, 64.0), (1.31e9, 512.0)] {
        let e_hat = 1.0 / (1.0 / (ex - 1.0 + (1.0 / es - 1.0 / em)) + 1.0 / em);
        let want = (a * n.ln() + b * e_hat.ln() + c * n.ln() * e_hat.ln() + d).exp();
        let got = evaluate(&law("moe"), &[("N", n), ("E", ex)], &params);
        assert_rel(got, want, "moe");
    }
}

/// SLDBench's README: Lu = −E + A1/Nnv^alpha1 + A2/Nv^alpha2 + B/D^beta,
/// Nv = V·d.
#[test]
fn vocab_formula_is_sldbenchs() {
    let p = [
        ("E", 5.609),
        ("A1", 1.857e9),
        ("alpha1", 1.332),
        ("A2", 3.0e3),
        ("alpha2", 0.5),
        ("B", 5118.0),
        ("beta", 0.3648),
    ];
    let v = |k: &str| p.iter().find(|(n, _)| *n == k).unwrap().1;
    for (nnv, voc, dim, d) in [
        (3.3e7f64, 4096.0f64, 512.0f64, 1.8e8f64),
        (1.1e9, 96256.0, 2048.0, 5e10),
    ] {
        let want = -v("E")
            + v("A1") / nnv.powf(v("alpha1"))
            + v("A2") / (voc * dim).powf(v("alpha2"))
            + v("B") / d.powf(v("beta"));
        let got = evaluate(
            &law("vocab"),
            &[("Nnv", nnv), ("V", voc), ("d", dim), ("D", d)],
            &p,
        );
        assert_rel(got, want, "vocab");
    }
}

/// Lin et al. (SLDBench's README): L(D) = B/(D_l + D^beta) + E.
#[test]
fn rectified_formula_is_lins() {
    let (b, dl, beta, e): (f64, f64, f64, f64) = (37.2, 18.3, 0.269, 0.778);
    let params = [("B", b), ("D_l", dl), ("beta", beta), ("E", e)];
    for d in [200.0f64, 819200.0] {
        let want = b / (dl + d.powf(beta)) + e;
        let got = evaluate(&law("rectified"), &[("D", d)], &params);
        assert_rel(got, want, "rectified");
    }
}

// ---------------------------------------------------------------------
// The command.

#[test]
fn laws_lists_every_builtin() {
    let dir = common::tempdir();
    let run = ok(dir.path(), &["laws"]);
    let lines: Vec<&str> = run.stdout.lines().collect();
    for &name in builtin_names() {
        let law = law(name);
        // The name, then its formula, on one line.
        let line = lines
            .iter()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} not listed:\n{}", run.stdout));
        assert_eq!(line[name.len()..].trim(), law.formula, "{name}");
        for (def, expr) in &law.defs {
            let def_line = format!("{def} = {expr}");
            assert!(
                lines.iter().any(|l| l.trim() == def_line),
                "{name}: def {def} not shown:\n{}",
                run.stdout
            );
        }
        assert!(
            run.stdout.contains(&law.description),
            "{name}: description missing"
        );
    }
    assert!(run.stderr.is_empty(), "{}", run.stderr);
}

#[test]
fn laws_name_prints_the_file_as_is() {
    let dir = common::tempdir();
    for &name in builtin_names() {
        let run = ok(dir.path(), &["laws", name]);
        assert_eq!(run.stdout, builtin(name).unwrap(), "{name}");
        // What it prints is a law file that reads back as the same law.
        let path = dir.path().join(format!("my-{name}.toml"));
        std::fs::write(&path, &run.stdout).unwrap();
        assert_eq!(LawFile::read(&path).unwrap(), law(name), "{name}");
    }
}

#[test]
fn laws_unknown_name_lists_the_known_ones() {
    let dir = common::tempdir();
    let run = sweepfit(dir.path(), &["laws", "looplm2"]);
    run.assert_failed("laws looplm2");
    assert_eq!(run.code, Some(1));
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(
        run.stderr.starts_with("error: ") && run.stderr.contains("\"looplm2\""),
        "{}",
        run.stderr
    );
    for &name in builtin_names() {
        assert!(
            run.stderr.contains(name),
            "{name} not offered: {}",
            run.stderr
        );
    }
}

/// Every built-in law compiles with the law compiler, and the parameters
/// it is affine in are the amplitudes a reader would name.
#[test]
fn every_builtin_compiles() {
    for &name in builtin_names() {
        let file = law(name);
        let compiled = file
            .compile(name)
            .unwrap_or_else(|e| panic!("{name}: {e:#}"));
        let linear: Vec<&str> = compiled
            .linear_params()
            .into_iter()
            .map(|i| compiled.params[i].as_str())
            .collect();
        let want: &[&str] = match name {
            "looplm" | "looplm-total" => &["E", "A", "B", "C"],
            "chinchilla" | "data-constrained" => &["E", "A", "B"],
            "vocab" => &["E", "A1", "A2", "B"],
            "rectified" => &["B", "E"],
            "kaplan" | "moe" => &[],
            "multi-power" => &["L0", "A", "B"],
            "lr-annealing" => &["L0", "A", "C"],
            other => panic!("no expectation for {other}"),
        };
        let mut linear_sorted = linear.clone();
        linear_sorted.sort_unstable();
        let mut want_sorted = want.to_vec();
        want_sorted.sort_unstable();
        assert_eq!(linear_sorted, want_sorted, "{name}: linear parameters");
    }
}

/// Every built-in law's compiled gradient against central finite
/// differences, at data and parameter values of the kind each is fitted to.
#[test]
fn every_builtin_gradient_matches_finite_differences() {
    let data = |v: &str| match v {
        "N" | "Nnv" => 3.7e8,
        "D" => 7.5e9,
        "T" | "T_m" => 3.0,
        "U" => 2.0e9,
        "E" => 16.0,
        "V" => 32000.0,
        "d" => 1024.0,
        // A cosine schedule of 4000 steps after a 100-step warm-up.
        "step" => 2500.0,
        "schedule" => {
            let lr: Vec<f64> = (0..4000)
                .map(|k| match k {
                    k if k < 100 => 3e-4 * (k + 1) as f64 / 100.0,
                    k => {
                        3e-5 + 1.35e-4
                            * (1.0 + (std::f64::consts::PI * (k - 100) as f64 / 3900.0).cos())
                    }
                })
                .collect();
            sweepfit::law::steps::register_run(vec!["lr".into()], vec![lr]) as f64
        }
        other => panic!("no value for variable {other}"),
    };
    for &name in builtin_names() {
        let file = law(name);
        let compiled = file.compile(name).unwrap();
        let vars: Vec<f64> = compiled.variables.iter().map(|v| data(v)).collect();
        // Declared start ranges' midpoints; amplitudes and the rest order one.
        let params: Vec<f64> = compiled
            .params
            .iter()
            .map(|p| match file.params.get(p).and_then(|d| d.start) {
                Some([lo, hi]) => 0.5 * (lo + hi),
                None if p.starts_with('t') => 1e3,
                None => 1.3,
            })
            .collect();
        let mut grad = vec![0.0; params.len()];
        let f = compiled.eval_grad(&vars, &params, &mut grad);
        assert!(f.is_finite(), "{name}: value {f}");
        for (k, p) in compiled.params.iter().enumerate() {
            // A step within the parameter's scale and its distance to a
            // declared bound (lr-annealing's lambda = 0.995 sits 0.005 below
            // its bound, and its powers run over thousands of steps).
            let decl = file.params.get(p);
            let room = [decl.and_then(|d| d.lower), decl.and_then(|d| d.upper)]
                .into_iter()
                .flatten()
                .map(|b| (b - params[k]).abs())
                .fold(f64::INFINITY, f64::min);
            let h = 1e-4 * params[k].abs().min(room).max(1e-3 * room.min(1.0));
            let (mut up, mut dn) = (params.clone(), params.clone());
            up[k] += h;
            dn[k] -= h;
            let fd = (compiled.eval(&vars, &up) - compiled.eval(&vars, &dn)) / (2.0 * h);
            // Truncation (h^2) and rounding (eps |f| / h) of the difference.
            let tol = 1e-5 * fd.abs().max(grad[k].abs()) + 1e-14 * f.abs() / h;
            assert!(
                (fd - grad[k]).abs() <= tol,
                "{name}: d/d{p} = {} against finite differences {fd}",
                grad[k]
            );
        }
    }
}
