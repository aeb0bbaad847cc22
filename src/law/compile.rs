//! From formula text to a compiled law: names resolved (variables, named
//! sub-expressions, parameters), the DAG built, the gradient derived, and
//! the facts the evaluators and the start builder need: which variables
//! each node depends on (for hoisting) and which parameters the law is
//! affine in (for variable projection).

use std::collections::HashMap;

use super::dag::{Graph, Node, NodeId};
use super::diff;
use super::parse::{self, Ast, BinOp, FormulaError, Span, SumAst};
use super::steps::{self, Index, Leaf};

/// At most this many variables: a node's variables are a bit mask.
pub const MAX_VARS: usize = 64;

/// A formula to compile: the main formula, named sub-expressions usable in
/// it (each may use the ones before it), and the names that are variables.
#[derive(Debug, Clone, Default)]
pub struct Source {
    pub formula: String,
    /// Name and text, in order.
    pub defs: Vec<(String, String)>,
    pub variables: Vec<String>,
    /// Where the text came from, for error messages ("--law", a file name).
    pub origin: String,
}

/// A law compiled to a DAG with its gradient.
#[derive(Debug, Clone)]
pub struct CompiledLaw {
    pub graph: Graph,
    /// The prediction.
    pub value: NodeId,
    /// d value / d parameter, per parameter.
    pub grad: Vec<NodeId>,
    /// Parameter names, in order of first appearance in the formula (defs
    /// expanded where they are used).
    pub params: Vec<String>,
    pub variables: Vec<String>,
}

struct Builder<'a> {
    g: Graph,
    variables: &'a [String],
    /// Parsed defs (text, origin, tree), built where first used so that
    /// parameters are numbered in the order a reader meets them.
    def_src: HashMap<String, (String, String, Ast)>,
    defs: HashMap<String, NodeId>,
    params: Vec<String>,
    /// Per parameter, where it first appears (source text, span).
    param_site: Vec<(String, String, Span)>,
    /// Levels of `build` open, defs expanded where they are used.
    depth: usize,
}

impl Builder<'_> {
    /// Each formula and def nests at most [`parse::MAX_DEPTH`] levels, but
    /// a def is built inside the formula that first uses it, so the
    /// recursion is bounded here too.
    fn build(&mut self, ast: &Ast, src: &str, origin: &str) -> Result<NodeId, FormulaError> {
        if self.depth >= parse::MAX_DEPTH {
            let msg = format!(
                "with its defs expanded, the formula nests more than {} levels deep, \
                 the most sweepfit accepts",
                parse::MAX_DEPTH
            );
            return Err(with_origin(FormulaError::new(src, ast.span(), msg), origin));
        }
        self.depth += 1;
        let id = self.node(ast, src, origin);
        self.depth -= 1;
        let id = id?;
        // Constants fold as the graph is built: the first one that is not
        // finite (1/0, log(0), sqrt(-1), 1e400) is pointed at here, where
        // it arises, rather than met as a prediction that is not finite.
        if let Some(c) = self.g.constant(id).filter(|c| !c.is_finite()) {
            let text = &src[ast.span().start.min(src.len())..ast.span().end.min(src.len())];
            let msg = format!("{text} is {c}: a constant of the formula must be a finite number");
            return Err(with_origin(FormulaError::new(src, ast.span(), msg), origin));
        }
        Ok(id)
    }

    fn node(&mut self, ast: &Ast, src: &str, origin: &str) -> Result<NodeId, FormulaError> {
        Ok(match ast {
            Ast::Num(v, _) => self.g.num(*v),
            Ast::Name(n, span) => {
                if let Some(i) = self.variables.iter().position(|v| v == n) {
                    self.g.var(i as u16)
                } else if let Some(&d) = self.defs.get(n) {
                    d
                } else if let Some((text, o, ast)) = self.def_src.get(n).cloned() {
                    let d = self.build(&ast, &text, &o)?;
                    self.defs.insert(n.clone(), d);
                    d
                } else if n == "pi" {
                    // The constant, unless a variable or def takes the name.
                    self.g.num(std::f64::consts::PI)
                } else {
                    let i = match self.params.iter().position(|p| p == n) {
                        Some(i) => i,
                        None => {
                            self.params.push(n.clone());
                            self.param_site
                                .push((origin.to_string(), src.to_string(), *span));
                            self.params.len() - 1
                        }
                    };
                    if i > u16::MAX as usize {
                        let mut e = FormulaError::new(src, *span, "too many parameters");
                        e.origin = origin.to_string();
                        return Err(e);
                    }
                    self.g.param(i as u16)
                }
            }
            Ast::Neg(e, _) => {
                let x = self.build(e, src, origin)?;
                self.g.neg(x)
            }
            Ast::Bin(op, a, b, _) => {
                let x = self.build(a, src, origin)?;
                let y = self.build(b, src, origin)?;
                match op {
                    BinOp::Add => self.g.add(x, y),
                    BinOp::Sub => self.g.sub(x, y),
                    BinOp::Mul => self.g.mul(x, y),
                    BinOp::Div => self.g.div(x, y),
                    BinOp::Pow => self.g.pow(x, y),
                }
            }
            Ast::Sum(sum, span) => self.sum(sum, *span, src, origin)?,
            Ast::Index(name, _, span) => {
                return Err(with_origin(
                    FormulaError::new(
                        src,
                        *span,
                        format!(
                            "{name}[...] reads a per-step series, which only a sum along the \
                             steps does: sum(k = 1..step: ... {name}[k] ...)"
                        ),
                    ),
                    origin,
                ))
            }
            Ast::Call(f, args, span) => {
                let xs = args
                    .iter()
                    .map(|a| self.build(a, src, origin))
                    .collect::<Result<Vec<_>, _>>()?;
                if !f.smooth() {
                    let dep = diff::param_dependent(&self.g);
                    if xs.iter().any(|&x| dep[x as usize]) {
                        let mut e = FormulaError::new(
                            src,
                            *span,
                            format!(
                                "{}() of an expression with parameters is not smooth, and the \
                                 optimiser needs gradients; use {}() on data columns only",
                                f.name(),
                                f.name()
                            ),
                        );
                        e.origin = origin.to_string();
                        return Err(e);
                    }
                }
                self.g.call(*f, &xs)
            }
        })
    }
}

/// A sum's body as it is built: its graph, its per-step leaves and series,
/// and the outer nodes its parameters stand for.
struct BodyBuilder<'s> {
    g: Graph,
    leaves: Vec<Leaf>,
    series: Vec<String>,
    args: Vec<NodeId>,
    var: &'s str,
    step: &'s str,
    /// The sum's first step.
    lo: i64,
}

impl BodyBuilder<'_> {
    /// Where `at` reads before step 0 at the sum's first step (as
    /// `lr[k-1]` from k = 0), what the user is told; the schedule has no
    /// such step, and every row would be NaN.
    fn before_start(&self, what: &str, at: Index) -> Option<String> {
        let (read, first) = match at {
            Index::K(c) => (self.lo + c, format!(" when {} = {}", self.var, self.lo)),
            Index::At(c) => (c, String::new()),
            Index::T(_) => return None,
        };
        (read < 0).then(|| {
            let fix = match at {
                Index::K(c) => format!("; start the sum at {} = {}", self.var, -c),
                _ => String::new(),
            };
            format!("{what} reads step {read}{first}, before the schedule's step 0{fix}")
        })
    }

    fn leaf(&mut self, l: Leaf) -> NodeId {
        let i = match self.leaves.iter().position(|&x| x == l) {
            Some(i) => i,
            None => {
                self.leaves.push(l);
                self.leaves.len() - 1
            }
        };
        self.g.var(i as u16)
    }

    fn series(&mut self, name: &str) -> u16 {
        match self.series.iter().position(|s| s == name) {
            Some(i) => i as u16,
            None => {
                self.series.push(name.to_string());
                (self.series.len() - 1) as u16
            }
        }
    }

    /// A step: k, the row's step or a whole number, plus or minus a whole
    /// number.
    fn index(&self, a: &Ast) -> Option<Index> {
        let base = |a: &Ast| match a {
            Ast::Name(n, _) if n == self.var => Some(Index::K(0)),
            Ast::Name(n, _) if n == self.step => Some(Index::T(0)),
            _ => whole(a).map(Index::At),
        };
        let shift = |i: Index, c: i64| match i {
            Index::K(x) => Index::K(x + c),
            Index::T(x) => Index::T(x + c),
            Index::At(x) => Index::At(x + c),
        };
        match a {
            Ast::Bin(BinOp::Add, x, y, _) => Some(shift(base(x)?, whole(y)?)),
            Ast::Bin(BinOp::Sub, x, y, _) => Some(shift(base(x)?, -whole(y)?)),
            _ => base(a),
        }
    }
}

/// A whole number written as one: `3`, `-2`.
fn whole(a: &Ast) -> Option<i64> {
    match a {
        Ast::Num(v, _) if v.fract() == 0.0 && v.abs() < 1e15 => Some(*v as i64),
        Ast::Neg(x, _) => whole(x).map(|v| -v),
        _ => None,
    }
}

impl Builder<'_> {
    /// `sum(var = lo..step + c: body)` as a node (see [`steps`]).
    fn sum(
        &mut self,
        s: &SumAst,
        span: Span,
        src: &str,
        origin: &str,
    ) -> Result<NodeId, FormulaError> {
        let err = |at: Span, msg: String| with_origin(FormulaError::new(src, at, msg), origin);
        let lo = whole(&s.lo).ok_or_else(|| {
            err(
                s.lo.span(),
                "the first step of a sum is a whole number, as in sum(k = 1..step: lr[k])".into(),
            )
        })?;
        let (step, hi) = match &s.hi {
            Ast::Name(n, _) => (n, Some(0)),
            Ast::Bin(BinOp::Add, x, c, _) | Ast::Bin(BinOp::Sub, x, c, _) => match &**x {
                Ast::Name(n, _) => {
                    let sign = if matches!(s.hi, Ast::Bin(BinOp::Sub, ..)) {
                        -1
                    } else {
                        1
                    };
                    (n, whole(c).map(|c| sign * c))
                }
                _ => (&s.var, None),
            },
            _ => (&s.var, None),
        };
        let (Some(hi), Some(t)) = (hi, self.variables.iter().position(|v| v == step)) else {
            return Err(err(
                s.hi.span(),
                "the last step of a sum is the row's step, a variable of the data, plus or \
                 minus a whole number, as in sum(k = 1..step: lr[k])"
                    .into(),
            ));
        };
        let Some(h) = self.variables.iter().position(|v| v == parse::SCHEDULE) else {
            return Err(err(
                span,
                "a sum along the steps reads each run's schedule: give it with --schedule FILE \
                 (a CSV run,step,lr with every step of every run)"
                    .into(),
            ));
        };
        let mut b = BodyBuilder {
            g: Graph::new(),
            leaves: Vec::new(),
            series: Vec::new(),
            args: Vec::new(),
            var: &s.var,
            step,
            lo,
        };
        let root = self.body(&mut b, &s.body, src, origin)?;
        if b.args.len() > steps::MAX_ARGS {
            return Err(err(
                s.body.span(),
                format!(
                    "what is summed uses {} of the law's names besides the steps; at most {} \
                     can be (move the others out of the sum)",
                    b.args.len(),
                    steps::MAX_ARGS
                ),
            ));
        }
        let def = steps::define(steps::Body {
            graph: b.g,
            root,
            leaves: b.leaves,
            series: b.series,
            n_args: b.args.len(),
            var: s.var.clone(),
            lo,
            hi,
        });
        let (h, t) = (self.g.var(h as u16), self.g.var(t as u16));
        Ok(self.g.steps(def, h, t, &b.args))
    }

    /// A sum's body in its own graph: the summed step and the row's step
    /// as leaves, series at steps as leaves, other names built in the law
    /// and passed in.
    fn body(
        &mut self,
        b: &mut BodyBuilder,
        ast: &Ast,
        src: &str,
        origin: &str,
    ) -> Result<NodeId, FormulaError> {
        let err = |at: Span, msg: &str| with_origin(FormulaError::new(src, at, msg), origin);
        const STEP: &str = "a step is k, the row's step or a whole number, plus or minus a whole \
                            number: lr[k], lr[k-1], lr[step]";
        Ok(match ast {
            Ast::Num(v, _) => b.g.num(*v),
            Ast::Name(n, _) if n == b.var => b.leaf(Leaf::K),
            Ast::Name(n, _) if n == b.step => b.leaf(Leaf::T),
            Ast::Name(..) => {
                let outer = self.build(ast, src, origin)?;
                match self.g.constant(outer) {
                    Some(c) => b.g.num(c),
                    None => {
                        let i = match b.args.iter().position(|&a| a == outer) {
                            Some(i) => i,
                            None => {
                                b.args.push(outer);
                                b.args.len() - 1
                            }
                        };
                        b.g.param(i as u16)
                    }
                }
            }
            Ast::Neg(e, _) => {
                let x = self.body(b, e, src, origin)?;
                b.g.neg(x)
            }
            Ast::Bin(op, x, y, _) => {
                let x = self.body(b, x, src, origin)?;
                let y = self.body(b, y, src, origin)?;
                match op {
                    BinOp::Add => b.g.add(x, y),
                    BinOp::Sub => b.g.sub(x, y),
                    BinOp::Mul => b.g.mul(x, y),
                    BinOp::Div => b.g.div(x, y),
                    BinOp::Pow => b.g.pow(x, y),
                }
            }
            Ast::Call(f, args, span) => {
                let xs = args
                    .iter()
                    .map(|a| self.body(b, a, src, origin))
                    .collect::<Result<Vec<_>, _>>()?;
                if !f.smooth() {
                    let dep = diff::param_dependent(&b.g);
                    if xs.iter().any(|&x| dep[x as usize]) {
                        return Err(err(
                            *span,
                            "a function that is not smooth (min, max, ...) of the law's \
                             parameters inside a sum: the optimiser needs gradients",
                        ));
                    }
                }
                b.g.call(*f, &xs)
            }
            Ast::Index(name, i, span) => {
                let at = b.index(i).ok_or_else(|| err(*span, STEP))?;
                let what = format!("{name}[{}]", at.text(b.var));
                if let Some(msg) = b.before_start(&what, at) {
                    return Err(err(*span, &msg));
                }
                let series = b.series(name);
                b.leaf(Leaf::Value { series, at })
            }
            Ast::Sum(inner, span) => {
                let window = match &inner.body {
                    Ast::Index(name, i, _) if matches!(&**i, Ast::Name(n, _) if *n == inner.var) => {
                        Some(name)
                    }
                    _ => None,
                };
                let Some(name) = window else {
                    return Err(err(
                        *span,
                        "a sum inside a sum adds a series alone, as in sum(j = k..step: lr[j])",
                    ));
                };
                let from = b
                    .index(&inner.lo)
                    .ok_or_else(|| err(inner.lo.span(), STEP))?;
                let to = b
                    .index(&inner.hi)
                    .ok_or_else(|| err(inner.hi.span(), STEP))?;
                let what = format!(
                    "sum({} = {}..{}: {name}[{}])",
                    inner.var,
                    from.text(b.var),
                    to.text(b.var),
                    inner.var
                );
                if let Some(msg) = b.before_start(&what, from) {
                    return Err(err(inner.lo.span(), &msg));
                }
                let series = b.series(name);
                b.leaf(Leaf::Window { series, from, to })
            }
        })
    }
}

fn with_origin(mut e: FormulaError, origin: &str) -> FormulaError {
    e.origin = origin.to_string();
    e
}

impl CompiledLaw {
    /// Compile `src`. Errors point into the formula or the def at fault.
    pub fn compile(src: &Source) -> Result<CompiledLaw, FormulaError> {
        if src.variables.len() > MAX_VARS {
            return Err(with_origin(
                FormulaError::new(
                    &src.formula,
                    Span { start: 0, end: 0 },
                    format!("at most {MAX_VARS} variables"),
                ),
                &src.origin,
            ));
        }
        let mut b = Builder {
            g: Graph::new(),
            variables: &src.variables,
            def_src: HashMap::new(),
            defs: HashMap::new(),
            params: Vec::new(),
            param_site: Vec::new(),
            depth: 0,
        };
        for (name, text) in &src.defs {
            let origin = if src.origin.is_empty() {
                format!("def {name}")
            } else {
                format!("{}: def {name}", src.origin)
            };
            let ast = parse::parse(text).map_err(|e| with_origin(e, &origin))?;
            // A def may only use the defs before it: a later one, or
            // itself, would otherwise be taken for a parameter silently.
            for (n, span) in parse::names(&ast) {
                let later = src
                    .defs
                    .iter()
                    .skip_while(|(d, _)| d != name)
                    .any(|(d, _)| *d == n);
                if later {
                    return Err(with_origin(
                        FormulaError::new(
                            text,
                            span,
                            format!("'{n}' is defined at or after '{name}': a def can only use the defs before it"),
                        ),
                        &origin,
                    ));
                }
            }
            b.def_src.insert(name.clone(), (text.clone(), origin, ast));
        }
        let origin = if src.origin.is_empty() {
            "formula".to_string()
        } else {
            src.origin.clone()
        };
        let ast = parse::parse(&src.formula).map_err(|e| with_origin(e, &origin))?;
        let value = b.build(&ast, &src.formula, &origin)?;
        let Builder {
            mut g,
            params,
            param_site,
            ..
        } = b;
        if params.is_empty() {
            let mut e = FormulaError::new(
                &src.formula,
                Span {
                    start: 0,
                    end: src.formula.len(),
                },
                "the formula has no parameters to fit (every name is a variable or a def)",
            );
            e.origin = origin;
            return Err(e);
        }
        let grad = diff::gradient(&mut g, value, params.len());
        // A parameter whose derivative is identically 0 cannot be fitted
        // (it cancelled out, or only appears in an unused def).
        for (i, &d) in grad.iter().enumerate() {
            if g.is_const(d, 0.0) {
                let (o, text, span) = &param_site[i];
                return Err(with_origin(
                    FormulaError::new(
                        text,
                        *span,
                        format!("parameter '{}' cannot change the prediction", params[i]),
                    ),
                    o,
                ));
            }
        }
        Ok(CompiledLaw {
            graph: g,
            value,
            grad,
            params,
            variables: src.variables.clone(),
        })
    }

    /// Compile a bare formula whose variables are `variables`.
    pub fn from_formula(formula: &str, variables: &[&str]) -> Result<CompiledLaw, FormulaError> {
        CompiledLaw::compile(&Source {
            formula: formula.to_string(),
            variables: variables.iter().map(|v| v.to_string()).collect(),
            ..Default::default()
        })
    }

    /// Whether the law sums along its runs' steps (see [`super::steps`]).
    pub fn sums_steps(&self) -> bool {
        self.graph
            .nodes()
            .iter()
            .any(|n| matches!(n, Node::Steps(..)))
    }

    /// The last node any output needs.
    fn last(&self) -> NodeId {
        self.grad.iter().copied().fold(self.value, NodeId::max)
    }

    /// Prediction at one point (reference interpreter, f64).
    pub fn eval(&self, vars: &[f64], params: &[f64]) -> f64 {
        let mut out = Vec::new();
        self.graph.eval_all(self.value, vars, params, &mut out);
        out[self.value as usize]
    }

    /// Prediction and gradient at one point (reference interpreter, f64).
    pub fn eval_grad(&self, vars: &[f64], params: &[f64], grad: &mut [f64]) -> f64 {
        let mut out = Vec::new();
        self.graph.eval_all(self.last(), vars, params, &mut out);
        for (g, &id) in grad.iter_mut().zip(&self.grad) {
            *g = out[id as usize];
        }
        out[self.value as usize]
    }

    /// Which parameters depend on which node, as a closure over node ids:
    /// `uses[p][i]` is true when node i depends on parameter p.
    fn param_uses(&self) -> Vec<Vec<bool>> {
        let n = self.graph.len();
        let mut uses = vec![vec![false; n]; self.params.len()];
        for (i, node) in self.graph.nodes().iter().enumerate() {
            if let Node::Param(p) = node {
                uses[*p as usize][i] = true;
            }
            for u in uses.iter_mut() {
                if !u[i] && node.operands().any(|o| u[o as usize]) {
                    u[i] = true;
                }
            }
        }
        uses
    }

    /// The parameters the law is affine in once the others are fixed (E,
    /// A, B, C of LoopLM): a set L with every mixed second derivative
    /// within L identically zero, i.e. no derivative with respect to a
    /// member depends on a member. Starts then choose only the others and
    /// solve these by least squares (variable projection). A largest such
    /// set is an independent set of the "derivative depends on" graph;
    /// greedily, fewest conflicts first, which finds it for the laws in use.
    pub fn linear_params(&self) -> Vec<usize> {
        let uses = self.param_uses();
        let np = self.params.len();
        let conflict =
            |p: usize, q: usize| uses[q][self.grad[p] as usize] || uses[p][self.grad[q] as usize];
        let mut cands: Vec<usize> = (0..np).filter(|&p| !conflict(p, p)).collect();
        let degree =
            |p: usize, c: &[usize]| c.iter().filter(|&&q| q != p && conflict(p, q)).count();
        let all = cands.clone();
        cands.sort_by_key(|&p| (degree(p, &all), p));
        let mut set: Vec<usize> = Vec::new();
        for p in cands {
            if set.iter().all(|&q| !conflict(p, q)) {
                set.push(p);
            }
        }
        set.sort_unstable();
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOOPLM: &str = "E + A/(N + t1)^alpha + B/(D + t2)^beta + C/(T + t3)^gamma";

    #[test]
    fn looplm_compiles_with_its_parameters_in_order() {
        let law = CompiledLaw::from_formula(LOOPLM, &["N", "D", "T"]).unwrap();
        assert_eq!(
            law.params,
            ["E", "A", "t1", "alpha", "B", "t2", "beta", "C", "t3", "gamma"]
        );
        let lin: Vec<&str> = law
            .linear_params()
            .into_iter()
            .map(|i| law.params[i].as_str())
            .collect();
        assert_eq!(lin, ["E", "A", "B", "C"]);
        // Value against the formula by hand.
        let p = [1.8, 268.0, 1e7, 0.3, 2018.0, 1.06e7, 0.35, 0.675, 0.5, 1.0];
        let (n, d, t) = (53e6, 1e9, 2.0);
        let want = 1.8
            + 268.0 / (n + 1e7f64).powf(0.3)
            + 2018.0 / (d + 1.06e7f64).powf(0.35)
            + 0.675 / (t + 0.5f64).powf(1.0);
        let got = law.eval(&[n, d, t], &p);
        assert!((got - want).abs() < 1e-14 * want);
    }

    #[test]
    fn variables_mark_the_nodes_that_depend_on_them() {
        let law = CompiledLaw::from_formula("E + A/N^alpha + B/D^beta", &["N", "D"]).unwrap();
        let g = &law.graph;
        let var_mask = g.var_masks();
        for (i, n) in g.nodes().iter().enumerate() {
            if let Node::Pow(base, _) = n {
                let want = match g.node(*base) {
                    Node::Var(v) => 1u64 << v,
                    _ => continue,
                };
                assert_eq!(var_mask[i], want);
            }
        }
        assert_eq!(var_mask[law.value as usize], 0b11);
    }

    #[test]
    fn defs_expand_and_may_use_earlier_defs() {
        let src = Source {
            formula: "E + B/Dp^beta".into(),
            defs: vec![
                ("x".into(), "D/U - 1".into()),
                ("Dp".into(), "U + U*R_D*(1 - exp(-x/R_D))".into()),
            ],
            variables: vec!["D".into(), "U".into()],
            origin: "data-constrained".into(),
        };
        let law = CompiledLaw::compile(&src).unwrap();
        assert_eq!(law.params, ["E", "B", "R_D", "beta"]);
        let (d, u, rd): (f64, f64, f64) = (3e9, 1e9, 15.0);
        let dp = u + u * rd * (1.0 - (-(d / u - 1.0) / rd).exp());
        let want = 1.7 + 400.0 / dp.powf(0.3);
        let got = law.eval(&[d, u], &[1.7, 400.0, rd, 0.3]);
        assert!((got - want).abs() < 1e-13 * want);
    }

    fn err(src: Source) -> String {
        CompiledLaw::compile(&src).unwrap_err().to_string()
    }

    #[test]
    fn a_parameter_that_cannot_change_the_prediction_is_named() {
        let e = err(Source {
            formula: "E + A/N^alpha + k - k".into(),
            variables: vec!["N".into()],
            origin: "--law".into(),
            ..Default::default()
        });
        assert!(
            e.contains("parameter 'k' cannot change the prediction"),
            "{e}"
        );
        assert!(e.starts_with("--law, column 17"), "{e}");
    }

    #[test]
    fn min_of_parameters_is_refused_but_min_of_data_is_fine() {
        let e = err(Source {
            formula: "E + min(A, N)".into(),
            variables: vec!["N".into()],
            ..Default::default()
        });
        assert!(
            e.contains("min() of an expression with parameters is not smooth"),
            "{e}"
        );
        assert!(CompiledLaw::from_formula("E + A/min(N, 0.051*U)^alpha", &["N", "U"]).is_ok());
    }

    #[test]
    fn a_def_using_a_later_def_is_an_error() {
        let e = err(Source {
            formula: "E + a".into(),
            defs: vec![("a".into(), "b * 2".into()), ("b".into(), "N".into())],
            variables: vec!["N".into()],
            origin: "law.toml".into(),
        });
        assert!(e.starts_with("law.toml: def a, column 1"), "{e}");
        assert!(e.contains("'b' is defined at or after 'a'"), "{e}");
    }

    #[test]
    fn a_constant_that_is_not_finite_is_pointed_at() {
        for (formula, col, text) in [
            ("E + A/N^alpha + 1/0", 17, "1/0 is inf"),
            ("E + A*log(0)/N", 7, "log(0) is -inf"),
            ("E + sqrt(-1)*A/N", 5, "sqrt(-1) is NaN"),
            ("E + 1e400*A/N", 5, "1e400 is inf"),
            ("E + A/N^(2*(1e200*1e200))", 13, "1e200*1e200 is inf"),
        ] {
            let e = err(Source {
                formula: formula.into(),
                variables: vec!["N".into()],
                origin: "--law".into(),
                ..Default::default()
            });
            assert!(
                e.starts_with(&format!("--law, column {col}: {text}")),
                "{e}"
            );
            assert!(e.contains("must be a finite number"), "{e}");
        }
    }

    #[test]
    fn parse_errors_carry_the_origin() {
        let e = err(Source {
            formula: "E + A/(N".into(),
            variables: vec!["N".into()],
            origin: "--law".into(),
            ..Default::default()
        });
        assert!(e.starts_with("--law, column 9: expected ')'"), "{e}");
    }

    #[test]
    fn moe_law_is_not_linear_in_its_amplitude() {
        let law = CompiledLaw::from_formula(
            "exp(a*log(N) + b*log(Eh) + c*log(N)*log(Eh) + d)",
            &["N", "Eh"],
        )
        .unwrap();
        assert!(law.linear_params().is_empty());
    }
}
