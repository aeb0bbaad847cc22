//! The functions of the law language, one row of [`TABLE`] each: the name
//! a formula calls, the value in f64, the partial derivatives as graph
//! nodes, the WGSL text and where the function is defined. The parser,
//! the DAG, differentiation, the plan, the parameter analysis and the GPU
//! generator all read this table; the CPU's vector evaluator
//! (`law::vector::node_op`) gives a function a fast vector form if it has
//! one. Adding a function is a row here (and, for speed, an arm there).

use super::dag::{Graph, NodeId};

/// A function of the language, by its row in [`TABLE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Func {
    Exp,
    Log,
    Sqrt,
    Tanh,
    Sin,
    Cos,
    Atan,
    Min,
    Max,
}

/// Where a function's argument must lie for its value to be defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Domain {
    All,
    Positive,
    NonNegative,
}

/// Builds a function's partials with respect to each operand as nodes of
/// the graph, given the operands and the node itself (for a function of
/// one, the second operand and partial are unused).
pub type Partials = fn(&mut Graph, [NodeId; 2], NodeId) -> [NodeId; 2];

/// One function's row.
pub struct Spec {
    pub func: Func,
    pub name: &'static str,
    /// 1 or 2 operands.
    pub arity: usize,
    /// The value (the second operand is 0 for a function of one).
    pub eval: fn(f64, f64) -> f64,
    /// The partials; non-smooth functions have none.
    pub partials: Option<Partials>,
    /// The WGSL expression, `{0}` and `{1}` standing for the operands.
    pub wgsl: &'static str,
    /// Where the (first) operand must lie.
    pub domain: Domain,
    /// `f(a, b) == f(b, a)`: one node for both orders.
    pub commutative: bool,
    /// `f(a, a) == a`.
    pub idempotent: bool,
    /// Grows with its (first) operand: a function of a growing term grows,
    /// which the parameter analysis uses to find decaying terms.
    pub increasing: bool,
}

/// The rows, in the order of [`Func`]'s variants.
pub const TABLE: [Spec; 9] = [
    Spec {
        func: Func::Exp,
        name: "exp",
        arity: 1,
        eval: |x, _| x.exp(),
        partials: Some(|_, _, me| [me, me]),
        wgsl: "exp({0})",
        domain: Domain::All,
        commutative: false,
        idempotent: false,
        increasing: true,
    },
    Spec {
        func: Func::Log,
        name: "log",
        arity: 1,
        eval: |x, _| x.ln(),
        partials: Some(|g, [x, _], _| {
            let one = g.num(1.0);
            let d = g.div(one, x);
            [d, d]
        }),
        wgsl: "log({0})",
        domain: Domain::Positive,
        commutative: false,
        idempotent: false,
        increasing: true,
    },
    Spec {
        func: Func::Sqrt,
        name: "sqrt",
        arity: 1,
        eval: |x, _| x.sqrt(),
        partials: Some(|g, _, me| {
            // 1/(2 sqrt x), from the node's own value.
            let two = g.num(2.0);
            let den = g.mul(two, me);
            let one = g.num(1.0);
            let d = g.div(one, den);
            [d, d]
        }),
        wgsl: "sqrt({0})",
        domain: Domain::NonNegative,
        commutative: false,
        idempotent: false,
        increasing: true,
    },
    Spec {
        func: Func::Tanh,
        name: "tanh",
        arity: 1,
        eval: |x, _| x.tanh(),
        partials: Some(|g, _, me| {
            // 1 - tanh^2, from the node's own value.
            let one = g.num(1.0);
            let sq = g.mul(me, me);
            let d = g.sub(one, sq);
            [d, d]
        }),
        wgsl: "tanh({0})",
        domain: Domain::All,
        commutative: false,
        idempotent: false,
        increasing: true,
    },
    Spec {
        func: Func::Sin,
        name: "sin",
        arity: 1,
        eval: |x, _| x.sin(),
        partials: Some(|g, [x, _], _| {
            let d = g.call(Func::Cos, &[x]);
            [d, d]
        }),
        wgsl: "sin({0})",
        domain: Domain::All,
        commutative: false,
        idempotent: false,
        increasing: false,
    },
    Spec {
        func: Func::Cos,
        name: "cos",
        arity: 1,
        eval: |x, _| x.cos(),
        partials: Some(|g, [x, _], _| {
            let s = g.call(Func::Sin, &[x]);
            let d = g.neg(s);
            [d, d]
        }),
        wgsl: "cos({0})",
        domain: Domain::All,
        commutative: false,
        idempotent: false,
        increasing: false,
    },
    Spec {
        func: Func::Atan,
        name: "atan",
        arity: 1,
        eval: |x, _| x.atan(),
        partials: Some(|g, [x, _], _| {
            // 1/(1 + x^2)
            let one = g.num(1.0);
            let sq = g.mul(x, x);
            let den = g.add(one, sq);
            let d = g.div(one, den);
            [d, d]
        }),
        wgsl: "atan({0})",
        domain: Domain::All,
        commutative: false,
        idempotent: false,
        increasing: true,
    },
    Spec {
        func: Func::Min,
        name: "min",
        arity: 2,
        eval: f64::min,
        partials: None,
        wgsl: "min({0}, {1})",
        domain: Domain::All,
        commutative: true,
        idempotent: true,
        increasing: false,
    },
    Spec {
        func: Func::Max,
        name: "max",
        arity: 2,
        eval: f64::max,
        partials: None,
        wgsl: "max({0}, {1})",
        domain: Domain::All,
        commutative: true,
        idempotent: true,
        increasing: false,
    },
];

impl Func {
    pub fn spec(self) -> &'static Spec {
        &TABLE[self as usize]
    }

    pub fn name(self) -> &'static str {
        self.spec().name
    }

    pub fn arity(self) -> usize {
        self.spec().arity
    }

    /// The function a formula calls by `name`.
    pub fn from_name(name: &str) -> Option<Func> {
        TABLE.iter().find(|s| s.name == name).map(|s| s.func)
    }

    /// Every function's name, in the table's order.
    pub fn names() -> impl Iterator<Item = &'static str> {
        TABLE.iter().map(|s| s.name)
    }

    #[inline]
    pub fn eval(self, x: f64, y: f64) -> f64 {
        (self.spec().eval)(x, y)
    }

    /// Smooth in its operands, so parameters may enter it.
    pub fn smooth(self) -> bool {
        self.spec().partials.is_some()
    }

    /// The WGSL expression of the operands' texts.
    pub fn wgsl(self, args: &[String]) -> String {
        let mut s = self.spec().wgsl.replace("{0}", &args[0]);
        if let Some(b) = args.get(1) {
            s = s.replace("{1}", b);
        }
        s
    }

    /// The WGSL condition under which the value is defined, if any.
    pub fn wgsl_defined(self, arg: &str) -> Option<String> {
        match self.spec().domain {
            Domain::All => None,
            Domain::Positive => Some(format!("{arg} > 0.0")),
            Domain::NonNegative => Some(format!("{arg} >= 0.0")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_in_the_order_of_the_variants() {
        for (i, s) in TABLE.iter().enumerate() {
            assert_eq!(s.func as usize, i, "{}", s.name);
            assert_eq!(Func::from_name(s.name), Some(s.func));
            assert!(s.arity == 1 || s.arity == 2);
            assert!(s.wgsl.contains("{0}"));
            assert_eq!(s.wgsl.contains("{1}"), s.arity == 2, "{}", s.name);
        }
    }

    /// Every smooth function's partials agree with central differences of
    /// its value.
    #[test]
    fn partials_match_differences() {
        for s in TABLE.iter().filter(|s| s.partials.is_some()) {
            let (x0, y0) = (0.7, 1.3);
            let mut g = Graph::new();
            let (x, y) = (g.var(0), g.var(1));
            let me = g.call(s.func, &[x, y][..s.arity]);
            let d = (s.partials.unwrap())(&mut g, [x, y], me);
            let mut vals = Vec::new();
            for k in 0..s.arity {
                g.eval_all(d[k], &[x0, y0], &[], &mut vals);
                let h = 1e-6;
                let num = if k == 0 {
                    ((s.eval)(x0 + h, y0) - (s.eval)(x0 - h, y0)) / (2.0 * h)
                } else {
                    ((s.eval)(x0, y0 + h) - (s.eval)(x0, y0 - h)) / (2.0 * h)
                };
                let got = vals[d[k] as usize];
                assert!((got - num).abs() < 1e-8, "{} d{k}: {got} vs {num}", s.name);
            }
        }
    }
}
