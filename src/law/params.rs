//! What each parameter of a compiled law is, for fitting: how it is
//! transformed, bounded and started, from the law file's declarations and,
//! where nothing is declared, from the role it plays in the formula.
//!
//! Default rules (a declaration overrides each of them):
//! - **Linear** parameters (the law is affine in them once the others are
//!   fixed: E, A, B, C of LoopLM) are not drawn at all: every start solves
//!   them by least squares (variable projection). They take any sign,
//!   except amplitudes (below).
//! - **Amplitudes**: a parameter divided by a power of the data
//!   (`A/N^alpha`, `B/(D_l + D^beta)`) or multiplying one whose exponent is
//!   negated (`A*N^-alpha`) is positive, fitted as a log: the term decays.
//! - **Exponents**: a parameter that is the exponent of a power of the
//!   data. When the power divides (`A/N^alpha`) or the exponent is negated
//!   (`N^-alpha`) it is bounded to [1e-4, 8] and started in [0.08, 1.5];
//!   otherwise to [-8, 8], started in [-1.5, 1.5].
//! - **Offsets**: a parameter added to the data inside a power's base or a
//!   log (`(N + t1)^alpha`) is positive, fitted as a log, and started
//!   log-uniformly between 1e-4 and 1 times the largest value of what it is
//!   added to.
//! - Everything else: any sign, started in [-1, 1]; declared positive
//!   without a start range, log-uniformly in [0.01, 100].

use super::dag::{Node, NodeId};
use super::diff;
use super::file::{LawFile, StartScale};
use super::ops::Func;
use super::CompiledLaw;

/// How a parameter maps to the coordinate the optimiser moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transform {
    /// theta = value.
    Identity,
    /// theta = ln(value): positive parameters.
    Log,
}

/// Where a start draws a parameter from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StartRange {
    pub lo: f64,
    pub hi: f64,
    /// Log-uniform (both ends positive) or uniform.
    pub log: bool,
}

/// Everything the fit needs to know about one parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamRule {
    pub name: String,
    pub transform: Transform,
    /// Bounds in the parameter's own units (may be infinite).
    pub lower: f64,
    pub upper: f64,
    /// `None` for linear parameters, which starts solve for, unless the
    /// law file declares one.
    pub start: Option<StartRange>,
    pub fixed: Option<f64>,
    pub linear: bool,
}

/// What the formula's structure says about a parameter.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Role {
    /// Exponent of a power of the data; `decaying` when it divides.
    Exponent {
        decaying: bool,
    },
    /// Added to data (node) inside a power's base or a log.
    Offset {
        data: NodeId,
    },
    /// Divided by a power of the data (`A/N^alpha`) or multiplying one with
    /// a negated exponent (`A*N^-alpha`): a decaying term's amplitude.
    Amplitude,
    /// Subtracted from data (`x - c`): a location on the data's axis.
    Shift {
        data: NodeId,
    },
    /// Dividing something of the data (`x/w`, `(x - c)^2/w^2`): a width,
    /// in the units of the variables `data` reads.
    Scale {
        data: NodeId,
    },
    /// The rate of a decaying exponential of data (`exp(-b*x)`).
    Rate {
        data: NodeId,
    },
    Other,
}

/// The role of every parameter, from the forward part of the graph (the
/// nodes the prediction uses; gradient nodes are left out).
fn roles(law: &CompiledLaw, file: &LawFile) -> Vec<Role> {
    let g = &law.graph;
    let masks = g.var_masks();
    // One forward pass: a recursive walk would be exponential in shared
    // sub-expressions and as deep as the graph.
    let param_dep = diff::param_dependent(g);
    let np = law.params.len();
    let mut roles = vec![Role::Other; np];
    // Nodes the prediction depends on.
    let mut used = vec![false; g.len()];
    used[law.value as usize] = true;
    for i in (0..=law.value as usize).rev() {
        if used[i] {
            for o in g.node(i as NodeId).operands() {
                used[o as usize] = true;
            }
        }
    }
    let param_of = |id: NodeId| match g.node(id) {
        Node::Param(p) => Some((p as usize, false)),
        Node::Neg(a) => match g.node(a) {
            Node::Param(p) => Some((p as usize, true)),
            _ => None,
        },
        _ => None,
    };
    // Powers that are divided by.
    let mut divides = vec![false; g.len()];
    for (i, n) in g.nodes().iter().enumerate() {
        if used[i] {
            if let Node::Div(_, b) = *n {
                divides[b as usize] = true;
            }
        }
    }
    // An exponent that stays positive: undeclared (the exponent rule keeps
    // it in [1e-4, 8]), or declared above 0.
    let positive_exponent = |p: usize| match file.params.get(&law.params[p]) {
        None => true,
        Some(d) => match d.fixed {
            Some(v) => v > 0.0,
            None if d.lower.is_some() || d.upper.is_some() => {
                d.lower.is_some_and(|lo| lo > 0.0) || d.positive == Some(true)
            }
            None => d.positive != Some(false),
        },
    };
    // What grows with the data (taken as positive): a variable, and sums,
    // products, roots, logs, exponentials and positive powers of what
    // grows. Only a term
    // divided by such a thing decays; `a/(1 + exp(-k*(x - x0)))` need not.
    fn grows(
        g: &super::dag::Graph,
        masks: &[u64],
        positive_exponent: &dyn Fn(usize) -> bool,
        id: NodeId,
    ) -> bool {
        let up = |x: NodeId| grows(g, masks, positive_exponent, x);
        let free = |x: NodeId| masks[x as usize] == 0;
        let pos_const = |x: NodeId| matches!(g.node(x), Node::Const(c) if c > 0.0);
        match g.node(id) {
            Node::Var(_) => true,
            Node::Add(a, b) => (up(a) && (up(b) || free(b))) || (free(a) && up(b)),
            Node::Mul(a, b) => (up(a) && (up(b) || pos_const(b))) || (pos_const(a) && up(b)),
            // Data in other units: N/1e9.
            Node::Div(a, b) => up(a) && pos_const(b),
            Node::Fn1(f, a) if f.spec().increasing => up(a),
            Node::Pow(base, e) => {
                up(base)
                    && match g.node(e) {
                        Node::Param(p) => positive_exponent(p as usize),
                        Node::Const(c) => c > 0.0,
                        _ => false,
                    }
            }
            _ => false,
        }
    }
    let grows = |id: NodeId| grows(g, &masks, &positive_exponent, id);
    // Amplitudes of decaying terms.
    for (i, n) in g.nodes().iter().enumerate() {
        if !used[i] {
            continue;
        }
        let decaying_power = |id: NodeId| match g.node(id) {
            Node::Pow(base, e) => {
                grows(base) && matches!(param_of(e), Some((p, true)) if positive_exponent(p))
            }
            _ => false,
        };
        let amp = match *n {
            Node::Div(a, b) if grows(b) => param_of(a).filter(|(_, neg)| !neg),
            Node::Mul(a, b) if decaying_power(b) => param_of(a).filter(|(_, neg)| !neg),
            Node::Mul(a, b) if decaying_power(a) => param_of(b).filter(|(_, neg)| !neg),
            _ => None,
        };
        if let Some((p, _)) = amp {
            if roles[p] == Role::Other {
                roles[p] = Role::Amplitude;
            }
        }
    }
    for (i, n) in g.nodes().iter().enumerate() {
        if !used[i] {
            continue;
        }
        let base = match *n {
            Node::Pow(base, e) => {
                if masks[base as usize] != 0 {
                    if let Some((p, negated)) = param_of(e) {
                        let decaying = negated || divides[i];
                        // A parameter seen decaying anywhere keeps that.
                        roles[p] = match roles[p] {
                            Role::Exponent { decaying: d } => Role::Exponent {
                                decaying: d || decaying,
                            },
                            _ => Role::Exponent { decaying },
                        };
                    }
                }
                base
            }
            Node::Fn1(Func::Log, a) => a,
            _ => continue,
        };
        if let Node::Add(a, b) = g.node(base) {
            for (x, y) in [(a, b), (b, a)] {
                if let Node::Param(p) = g.node(x) {
                    let data_only = masks[y as usize] != 0 && !param_dep[y as usize];
                    if data_only && roles[p as usize] == Role::Other {
                        roles[p as usize] = Role::Offset { data: y };
                    }
                }
            }
        }
    }
    // Locations, widths and rates: parameters whose sensible values are
    // set by the data's range, not by a default of order one.
    let data_only = |x: NodeId| masks[x as usize] != 0 && !param_dep[x as usize];
    for (i, n) in g.nodes().iter().enumerate() {
        if !used[i] {
            continue;
        }
        let found = match *n {
            Node::Sub(a, b) if data_only(a) => {
                param_of(b).map(|(p, _)| (p, Role::Shift { data: a }))
            }
            Node::Sub(a, b) if data_only(b) => {
                param_of(a).map(|(p, _)| (p, Role::Shift { data: b }))
            }
            Node::Div(a, b) if masks[a as usize] != 0 => {
                let width = match g.node(b) {
                    Node::Pow(w, e) if matches!(g.node(e), Node::Const(c) if c > 0.0) => w,
                    _ => b,
                };
                param_of(width).map(|(p, _)| (p, Role::Scale { data: a }))
            }
            Node::Fn1(Func::Exp, arg) => {
                // exp(-b*x): the product negated, or one of its factors.
                let (prod, neg) = match g.node(arg) {
                    Node::Neg(m) => (m, true),
                    _ => (arg, false),
                };
                match g.node(prod) {
                    Node::Mul(x, y) => [(x, y), (y, x)].into_iter().find_map(|(q, d)| {
                        let (p, negated) = param_of(q)?;
                        (data_only(d) && (neg != negated)).then_some((p, Role::Rate { data: d }))
                    }),
                    _ => None,
                }
            }
            _ => None,
        };
        if let Some((p, role)) = found {
            if roles[p] == Role::Other {
                roles[p] = role;
            }
        }
    }
    roles
}

/// The rules of every parameter of `law` (compiled from `file`), with the
/// data's variable columns (`vars[v][row]`) for data-relative start ranges.
pub fn rules(file: &LawFile, law: &CompiledLaw, vars: &[Vec<f64>]) -> Vec<ParamRule> {
    let linear = law.linear_params();
    let roles = roles(law, file);
    let mut out = Vec::with_capacity(law.params.len());
    for (p, name) in law.params.iter().enumerate() {
        let decl = file.params.get(name).cloned().unwrap_or_default();
        let is_linear = linear.contains(&p);
        let role = roles[p];
        // A default rule that the declaration contradicts is dropped, not
        // clamped to it: the declaration always wins.
        let may_be_positive = decl.positive != Some(false)
            && decl.lower.is_none_or(|lo| lo >= 0.0)
            && decl.upper.is_none_or(|hi| hi > 0.0)
            && decl.fixed.is_none_or(|v| v >= 0.0)
            && decl.start.is_none_or(|[lo, _]| lo > 0.0);
        let mut positive =
            decl.positive == Some(true) || (role == Role::Amplitude && may_be_positive);
        let (mut lower, mut upper) = (f64::NEG_INFINITY, f64::INFINITY);
        let mut start = None;
        if !is_linear {
            match role {
                Role::Exponent { decaying: true } => {
                    (lower, upper) = (1e-4, 8.0);
                    start = Some(StartRange {
                        lo: 0.08,
                        hi: 1.5,
                        log: false,
                    });
                }
                Role::Exponent { decaying: false } => {
                    (lower, upper) = (-8.0, 8.0);
                    start = Some(StartRange {
                        lo: -1.5,
                        hi: 1.5,
                        log: false,
                    });
                }
                Role::Shift { data } => {
                    let (lo, hi) = data_range(law, data, vars);
                    start = Some(StartRange { lo, hi, log: false });
                }
                Role::Scale { data } => {
                    let span = variable_span(law, data, vars);
                    start = Some(StartRange {
                        lo: 1e-2 * span,
                        hi: span,
                        log: true,
                    });
                }
                Role::Rate { data } => {
                    let (lo, hi) = data_range(law, data, vars);
                    let top = lo.abs().max(hi.abs());
                    start = Some(StartRange {
                        lo: 1e-2 / top,
                        hi: 1e1 / top,
                        log: true,
                    });
                }
                Role::Offset { data } if may_be_positive => {
                    positive = true;
                    let top = data_max(law, data, vars).max(1e-300);
                    start = Some(StartRange {
                        lo: 1e-4 * top,
                        hi: top,
                        log: true,
                    });
                }
                _ => {}
            }
        }
        // Declarations override the role's defaults.
        if decl.lower.is_some() || decl.upper.is_some() {
            lower = decl.lower.unwrap_or(f64::NEG_INFINITY);
            upper = decl.upper.unwrap_or(f64::INFINITY);
        }
        if positive {
            lower = lower.max(0.0);
        }
        if let Some([lo, hi]) = decl.start {
            start = Some(StartRange {
                lo,
                hi,
                log: match decl.start_scale {
                    Some(scale) => scale == StartScale::Log,
                    None => positive && lo > 0.0,
                },
            });
        } else if start.is_some_and(|s| s.lo < lower || s.hi > upper) {
            // A default range outside declared bounds is dropped.
            start = None;
        }
        if start.is_none() && !is_linear {
            start = Some(default_start(lower, upper, positive));
        }
        // A start range outside the bounds is clipped to them.
        if let Some(s) = &mut start {
            let floor = if positive { lower.max(1e-300) } else { lower };
            s.lo = s.lo.clamp(floor, upper);
            s.hi = s.hi.clamp(floor, upper);
        }
        out.push(ParamRule {
            name: name.clone(),
            transform: if positive {
                Transform::Log
            } else {
                Transform::Identity
            },
            lower,
            upper,
            // A linear parameter is solved at each start; a declared range
            // is the user's, and half the starts draw from it instead.
            start: if is_linear && decl.start.is_none() {
                None
            } else {
                start
            },
            fixed: decl.fixed,
            linear: is_linear,
        });
    }
    out
}

/// The start range of a parameter with nothing else to go by: [0.01, 100]
/// log-uniformly when positive, [-1, 1] otherwise, moved inside
/// [lower, upper] when it lies outside them (declared `lower = 5` starts
/// in [5, 10], `upper = -3` in [-6, -3]).
fn default_start(lower: f64, upper: f64, positive: bool) -> StartRange {
    let (lo, hi, log) = if positive {
        (1e-2, 1e2, true)
    } else {
        (-1.0, 1.0, false)
    };
    if lower >= hi {
        let hi = if log {
            lower * 1e4
        } else {
            lower + lower.abs().max(1.0)
        };
        return StartRange {
            lo: lower,
            hi: hi.min(upper),
            log,
        };
    }
    if upper <= lo {
        let lo = if log {
            upper * 1e-4
        } else {
            upper - upper.abs().max(1.0)
        };
        return StartRange {
            lo: lo.max(lower),
            hi: upper,
            log,
        };
    }
    StartRange {
        lo: lo.max(lower),
        hi: hi.min(upper),
        log,
    }
}

/// Largest absolute value of data node `id` over the rows.
/// The finite values of the data-only node `id` over the rows.
fn node_values(law: &CompiledLaw, id: NodeId, vars: &[Vec<f64>]) -> Vec<f64> {
    let rows = vars.first().map_or(0, Vec::len);
    let mut buf = Vec::new();
    let mut point = vec![0.0; vars.len()];
    // Parameters numbered below the node are evaluated too, unused.
    let params = vec![f64::NAN; law.params.len()];
    let mut out = Vec::with_capacity(rows);
    for r in 0..rows {
        for (v, col) in vars.iter().enumerate() {
            point[v] = col[r];
        }
        law.graph.eval_all(id, &point, &params, &mut buf);
        let v = buf[id as usize];
        if v.is_finite() {
            out.push(v);
        }
    }
    out
}

/// The smallest and largest finite value of the data-only node `id` over
/// the rows ((0, 1) when none is finite or all are equal).
fn data_range(law: &CompiledLaw, id: NodeId, vars: &[Vec<f64>]) -> (f64, f64) {
    let (lo, hi) = node_values(law, id, vars)
        .into_iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
            (l.min(v), h.max(v))
        });
    if lo < hi {
        (lo, hi)
    } else {
        (0.0, 1.0)
    }
}

/// The widest range (largest minus smallest) of the variables node `id`
/// reads (1 when none varies).
fn variable_span(law: &CompiledLaw, id: NodeId, vars: &[Vec<f64>]) -> f64 {
    let mask = law.graph.var_masks()[id as usize];
    let span = vars
        .iter()
        .enumerate()
        .filter(|(v, _)| mask & (1 << v) != 0)
        .map(|(_, col)| {
            let (lo, hi) = col
                .iter()
                .filter(|v| v.is_finite())
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| {
                    (l.min(v), h.max(v))
                });
            hi - lo
        })
        .fold(0.0, f64::max);
    if span > 0.0 {
        span
    } else {
        1.0
    }
}

/// The largest |value| of the data-only node `id` over the rows (1 when
/// it is 0 throughout).
fn data_max(law: &CompiledLaw, id: NodeId, vars: &[Vec<f64>]) -> f64 {
    let top = node_values(law, id, vars)
        .into_iter()
        .fold(0.0f64, |t, v| t.max(v.abs()));
    if top > 0.0 {
        top
    } else {
        1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules_of(formula: &str, vars: &[&str]) -> Vec<ParamRule> {
        let file = LawFile::from_formula(formula).unwrap();
        let law = CompiledLaw::from_formula(formula, vars).unwrap();
        let cols = vec![vec![1.0, 10.0, 100.0]; vars.len()];
        rules(&file, &law, &cols)
    }

    #[test]
    fn a_declared_start_scale_decides_how_the_range_is_drawn() {
        let law = CompiledLaw::from_formula("E + A/N^alpha", &["N"]).unwrap();
        let cols = vec![vec![1.0, 10.0, 100.0]];
        let alpha = |decl: &str| {
            let text = format!(
                "name = \"t\"\nformula = \"E + A/N^alpha\"\n[variables]\nN = \"N\"\n\
                 [params.alpha]\nstart = [0.1, 2.0]\n{decl}"
            );
            let file = LawFile::parse(&text, "t.toml").unwrap();
            let r = rules(&file, &law, &cols);
            r.into_iter()
                .find(|p| p.name == "alpha")
                .unwrap()
                .start
                .unwrap()
        };
        assert!(!alpha("").log);
        assert!(alpha("start_scale = \"log\"").log);
        assert!(!alpha("start_scale = \"linear\"").log);
        assert_eq!((alpha("").lo, alpha("").hi), (0.1, 2.0));
    }

    #[test]
    fn roles_of_a_bare_formula() {
        let r = rules_of("E + A/(N + t1)^alpha + B*D^beta", &["N", "D"]);
        let get = |n: &str| r.iter().find(|p| p.name == n).unwrap().clone();
        for lin in ["E", "A", "B"] {
            assert!(get(lin).linear && get(lin).start.is_none(), "{lin}");
        }
        // A divides by a power of the data: positive; B multiplies a power
        // that may grow, and E is a floor: any sign.
        assert_eq!(get("A").transform, Transform::Log);
        assert_eq!(get("B").transform, Transform::Identity);
        assert_eq!(get("E").transform, Transform::Identity);
        let alpha = get("alpha");
        assert_eq!((alpha.lower, alpha.upper), (1e-4, 8.0));
        let beta = get("beta");
        assert_eq!((beta.lower, beta.upper), (-8.0, 8.0));
        let t1 = get("t1");
        assert_eq!(t1.transform, Transform::Log);
        let s = t1.start.unwrap();
        assert!(s.log && (s.hi - 100.0).abs() < 1e-12 && (s.lo - 0.01).abs() < 1e-12);
        // Data in other units grow too.
        let r = rules_of("E + A/(N/1e9)^alpha + B/(2*D)", &["N", "D"]);
        for amp in ["A", "B"] {
            let p = r.iter().find(|p| p.name == amp).unwrap();
            assert_eq!(p.transform, Transform::Log, "{amp}");
        }
        // A term divided by what does not grow with the data need not
        // decay: a sigmoid's amplitude takes any sign.
        let r = rules_of("a/(1 + exp(-k*(x - x0))) + b", &["x"]);
        assert!(
            r.iter().all(|p| p.transform == Transform::Identity),
            "{r:?}"
        );
        // Nor does one divided by a power whose exponent is declared
        // to take any sign.
        let file = LawFile::parse(
            "name = \"x\"\nformula = \"E + A/N^alpha\"\n[params.alpha]\nlower = -2.0\nupper = 2.0\n",
            "x.toml",
        )
        .unwrap();
        let law = CompiledLaw::from_formula(&file.formula, &["N"]).unwrap();
        let r = rules(&file, &law, &[vec![1.0, 10.0]]);
        assert_eq!(r[1].name, "A");
        assert_eq!(r[1].transform, Transform::Identity);
        // A negated exponent decays too.
        let r = rules_of("E + A*N^-alpha", &["N"]);
        assert_eq!(r.iter().find(|p| p.name == "alpha").unwrap().lower, 1e-4);
        assert_eq!(
            r.iter().find(|p| p.name == "A").unwrap().transform,
            Transform::Log
        );
    }

    /// A declaration wins over every default rule; a default it
    /// contradicts is dropped, never clamped into an empty range.
    #[test]
    fn declarations_win_over_default_rules() {
        let text = "name = \"x\"\nformula = \"E + A/N^alpha + B/(D + t2)^beta\"\n\
                    [params.A]\nlower = -1.0\nupper = 0.0\n\
                    [params.alpha]\nlower = 2.0\nupper = 3.0\n\
                    [params.t2]\nupper = -1.0\n";
        let file = LawFile::parse(text, "x.toml").unwrap();
        let law = CompiledLaw::from_formula(&file.formula, &["N", "D"]).unwrap();
        let r = rules(&file, &law, &[vec![1.0, 10.0], vec![1.0, 100.0]]);
        let get = |n: &str| r.iter().find(|p| p.name == n).unwrap().clone();
        // The amplitude rule would make A positive: [-1, 0] wins.
        let a = get("A");
        assert_eq!(
            (a.transform, a.lower, a.upper),
            (Transform::Identity, -1.0, 0.0)
        );
        // The exponent's default start [0.08, 1.5] lies outside [2, 3].
        let s = get("alpha").start.unwrap();
        assert!(s.lo >= 2.0 && s.hi <= 3.0 && s.lo < s.hi, "{s:?}");
        // The offset rule would make t2 positive: upper = -1 wins.
        let t2 = get("t2");
        assert_eq!(t2.transform, Transform::Identity);
        let s = t2.start.unwrap();
        assert!(s.hi <= -1.0 && s.lo < s.hi, "{s:?}");
        for p in &r {
            if let Some(s) = p.start {
                assert!(p.lower <= s.lo && s.lo < s.hi && s.hi <= p.upper, "{p:?}");
            }
        }
    }

    #[test]
    fn default_starts_lie_inside_the_bounds() {
        for (lo, hi, pos) in [
            (5.0, f64::INFINITY, false),
            (f64::NEG_INFINITY, -3.0, false),
            (-0.5, 0.25, false),
            (1e3, f64::INFINITY, true),
            (0.0, 1e-3, true),
            (0.0, f64::INFINITY, true),
        ] {
            let s = default_start(lo, hi, pos);
            assert!(lo <= s.lo && s.lo < s.hi && s.hi <= hi, "{lo} {hi}: {s:?}");
            assert!(!s.log || s.lo > 0.0, "{s:?}");
        }
    }
}
