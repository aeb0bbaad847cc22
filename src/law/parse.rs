//! The formula language: text to a syntax tree with source positions.
//!
//! Grammar (precedence low to high; `^` is right-associative and binds
//! tighter than unary minus, so `-x^2` is `-(x^2)` as in mathematics):
//!
//! ```text
//! expr    = term (("+" | "-") term)*
//! term    = unary (("*" | "/") unary)*
//! unary   = "-" unary | "+" unary | power
//! power   = atom ("^" unary)?
//! atom    = number | name | name "(" expr ("," expr)* ")" | "(" expr ")"
//!         | name "[" expr "]"                      (a series at a step)
//!         | "sum" "(" name "=" expr ".." expr ":" expr ")"
//! ```
//!
//! `sum(k = 1..step: body)` adds `body` over the steps k = 1, ..., step
//! (both ends included, as in the mathematical sum); inside it `lr[k]` is
//! the run's learning rate at step k (see `law::steps`).
//!
//! Hand-written (a few hundred lines) rather than a parser generator: the
//! errors must point at a column with a caret and say what was expected,
//! which a small recursive-descent parser does best.
//!
//! A formula nests at most [`MAX_DEPTH`] levels: the parser, the compiler
//! and the tree's own drop recurse once per level, and a bounded depth is
//! what keeps them within a thread's stack whatever the input.

use std::fmt;

/// How deeply a formula may nest. Every operator, sign, function call and
/// pair of parentheses is one level, so a sum of n terms is n levels deep
/// and `((x))` three. Laws in use nest fewer than 30; 256 keeps every
/// recursive pass (parse, compile with defs expanded, drop) well inside a
/// 2 MiB thread stack, unoptimised builds included.
pub const MAX_DEPTH: usize = 256;

/// A byte range of the formula, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

pub use super::ops::Func;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
}

/// A node of the syntax tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Ast {
    Num(f64, Span),
    Name(String, Span),
    Neg(Box<Ast>, Span),
    Bin(BinOp, Box<Ast>, Box<Ast>, Span),
    Call(Func, Vec<Ast>, Span),
    /// `series[index]`: a per-step series of the run at a step.
    Index(String, Box<Ast>, Span),
    /// `sum(var = lo..hi: body)`.
    Sum(Box<SumAst>, Span),
}

/// The parts of `sum(var = lo..hi: body)`.
#[derive(Debug, Clone, PartialEq)]
pub struct SumAst {
    pub var: String,
    pub var_span: Span,
    pub lo: Ast,
    pub hi: Ast,
    pub body: Ast,
}

impl Ast {
    pub fn span(&self) -> Span {
        match self {
            Ast::Num(_, s) | Ast::Name(_, s) | Ast::Neg(_, s) => *s,
            Ast::Bin(_, _, _, s) | Ast::Call(_, _, s) | Ast::Index(_, _, s) | Ast::Sum(_, s) => *s,
        }
    }
}

/// A formula that does not parse, or that names something wrongly: the
/// formula with a caret under the column, and what was expected.
#[derive(Debug, Clone, PartialEq)]
pub struct FormulaError {
    /// Where the formula came from ("--law", "moe.toml: defs.Nv", ...).
    pub origin: String,
    pub formula: String,
    pub span: Span,
    pub message: String,
}

impl FormulaError {
    pub fn new(formula: &str, span: Span, message: impl Into<String>) -> FormulaError {
        FormulaError {
            origin: String::new(),
            formula: formula.to_string(),
            span,
            message: message.into(),
        }
    }

    /// 1-based column (in characters) where the error starts.
    pub fn column(&self) -> usize {
        self.formula[..self.span.start.min(self.formula.len())]
            .chars()
            .count()
            + 1
    }
}

impl fmt::Display for FormulaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let col = self.column();
        if self.origin.is_empty() {
            writeln!(f, "formula, column {col}: {}", self.message)?;
        } else {
            writeln!(f, "{}, column {col}: {}", self.origin, self.message)?;
        }
        let width = self.formula
            [self.span.start.min(self.formula.len())..self.span.end.min(self.formula.len())]
            .chars()
            .count()
            .max(1);
        // A long formula is shown around the column only, so that the
        // caret stays on screen and a huge formula is not printed whole.
        let chars: Vec<char> = self.formula.chars().collect();
        let (from, to) = if chars.len() <= 2 * SHOW {
            (0, chars.len())
        } else {
            let from = (col - 1).saturating_sub(SHOW);
            (from, (from + 2 * SHOW).min(chars.len()))
        };
        let head = if from > 0 { "..." } else { "" };
        let tail = if to < chars.len() { "..." } else { "" };
        let shown: String = chars[from..to].iter().collect();
        writeln!(f, "  {head}{shown}{tail}")?;
        let pad = col - 1 - from + head.len();
        let width = width.min(to.saturating_sub(col - 1)).max(1);
        write!(f, "  {}{}", " ".repeat(pad), "^".repeat(width))
    }
}

/// Characters of a long formula shown either side of an error's column.
const SHOW: usize = 60;

impl std::error::Error for FormulaError {}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Name(String),
    Op(char),
    /// `..`, the range of a sum.
    DotDot,
    End,
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

impl Lexer<'_> {
    fn next(&mut self) -> Result<(Tok, Span), FormulaError> {
        let bytes = self.src.as_bytes();
        while self.pos < bytes.len() && bytes[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
        let start = self.pos;
        let Some(&c) = bytes.get(self.pos) else {
            return Ok((Tok::End, Span { start, end: start }));
        };
        if c.is_ascii_digit() || (c == b'.' && bytes.get(start + 1).is_some_and(u8::is_ascii_digit))
        {
            let mut end = start;
            // A '.' belongs to the number unless it starts "..", a range.
            while end < bytes.len()
                && (bytes[end].is_ascii_digit()
                    || (bytes[end] == b'.' && bytes.get(end + 1) != Some(&b'.')))
            {
                end += 1;
            }
            // An exponent only when digits follow: "2e" is a number and a name.
            if end < bytes.len() && (bytes[end] == b'e' || bytes[end] == b'E') {
                let mut k = end + 1;
                if k < bytes.len() && (bytes[k] == b'+' || bytes[k] == b'-') {
                    k += 1;
                }
                if k < bytes.len() && bytes[k].is_ascii_digit() {
                    while k < bytes.len() && bytes[k].is_ascii_digit() {
                        k += 1;
                    }
                    end = k;
                }
            }
            let span = Span { start, end };
            let text = &self.src[start..end];
            let v: f64 = text.parse().map_err(|_| {
                FormulaError::new(self.src, span, format!("'{text}' is not a number"))
            })?;
            self.pos = end;
            return Ok((Tok::Num(v), span));
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            let mut end = start;
            while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
                end += 1;
            }
            self.pos = end;
            return Ok((
                Tok::Name(self.src[start..end].to_string()),
                Span { start, end },
            ));
        }
        let ch = self.src[start..].chars().next().unwrap_or('?');
        let span = Span {
            start,
            end: start + ch.len_utf8(),
        };
        if self.src[start..].starts_with("..") {
            self.pos = start + 2;
            return Ok((
                Tok::DotDot,
                Span {
                    start,
                    end: start + 2,
                },
            ));
        }
        if "+-*/^(),[]=:".contains(ch) {
            self.pos = span.end;
            return Ok((Tok::Op(ch), span));
        }
        let hint = match ch {
            '\u{2212}' => " (a Unicode minus sign: type '-')",
            '\u{00d7}' | '\u{00b7}' => " (type '*')",
            _ => "",
        };
        Err(FormulaError::new(
            self.src,
            span,
            format!(
                "unexpected character '{ch}'{hint}; expected a number, a name, an operator (+ - * / ^) or a parenthesis"
            ),
        ))
    }
}

struct Parser<'a> {
    lex: Lexer<'a>,
    tok: Tok,
    span: Span,
    /// Levels open around the token being parsed (see [`MAX_DEPTH`]).
    nest: usize,
}

/// A parsed sub-expression and its depth in levels.
type Sub = (Ast, usize);

/// Parse a formula into its syntax tree.
pub fn parse(src: &str) -> Result<Ast, FormulaError> {
    let mut lex = Lexer { src, pos: 0 };
    let (tok, span) = lex.next()?;
    let mut p = Parser {
        lex,
        tok,
        span,
        nest: 0,
    };
    if p.tok == Tok::End {
        return Err(FormulaError::new(src, p.span, "the formula is empty"));
    }
    let (e, _) = p.expr()?;
    if p.tok != Tok::End {
        let what = match &p.tok {
            Tok::Op(')') => "an unmatched ')'".to_string(),
            Tok::Num(_) | Tok::Name(_) => format!(
                "'{}' follows an expression without an operator (write * for multiplication)",
                &src[p.span.start..p.span.end]
            ),
            _ => format!("unexpected '{}'", &src[p.span.start..p.span.end]),
        };
        return Err(FormulaError::new(src, p.span, what));
    }
    Ok(e)
}

fn join(a: Span, b: Span) -> Span {
    Span {
        start: a.start.min(b.start),
        end: a.end.max(b.end),
    }
}

impl Parser<'_> {
    fn bump(&mut self) -> Result<(), FormulaError> {
        let (t, s) = self.lex.next()?;
        self.tok = t;
        self.span = s;
        Ok(())
    }

    fn err(&self, expected: &str) -> FormulaError {
        let found = match &self.tok {
            Tok::End => "the end of the formula".to_string(),
            _ => format!("'{}'", &self.lex.src[self.span.start..self.span.end]),
        };
        FormulaError::new(
            self.lex.src,
            self.span,
            format!("expected {expected}, found {found}"),
        )
    }

    /// The error for a formula nesting deeper than [`MAX_DEPTH`], at the
    /// token where it does.
    fn too_deep(&self, span: Span) -> FormulaError {
        FormulaError::new(
            self.lex.src,
            span,
            format!(
                "the formula nests more than {MAX_DEPTH} levels deep, the most sweepfit \
                 accepts (every operator, sign, function call and pair of parentheses is a \
                 level; a sum of n terms is n levels)"
            ),
        )
    }

    /// `e` (a new node, or a parenthesised or signed expression) one level
    /// above operands `depth` deep, refused beyond the limit.
    /// `at` is the operator, sign or parenthesis that adds the level.
    fn deeper(&self, e: Ast, depth: usize, at: Span) -> Result<Sub, FormulaError> {
        if depth >= MAX_DEPTH {
            return Err(self.too_deep(at));
        }
        Ok((e, depth + 1))
    }

    /// Open a level around what follows (parenthesis, call, sign,
    /// exponent): the recursion below is bounded before it happens.
    fn open(&mut self) -> Result<(), FormulaError> {
        self.nest += 1;
        if self.nest > MAX_DEPTH {
            return Err(self.too_deep(self.span));
        }
        Ok(())
    }

    fn close(&mut self) {
        self.nest -= 1;
    }

    fn expr(&mut self) -> Result<Sub, FormulaError> {
        let (mut lhs, mut d) = self.term()?;
        while let Tok::Op(c @ ('+' | '-')) = self.tok {
            let at = self.span;
            self.bump()?;
            let (rhs, rd) = self.term()?;
            let op = if c == '+' { BinOp::Add } else { BinOp::Sub };
            let span = join(lhs.span(), rhs.span());
            let node = Ast::Bin(op, Box::new(lhs), Box::new(rhs), span);
            (lhs, d) = self.deeper(node, d.max(rd), at)?;
        }
        Ok((lhs, d))
    }

    fn term(&mut self) -> Result<Sub, FormulaError> {
        let (mut lhs, mut d) = self.unary()?;
        while let Tok::Op(c @ ('*' | '/')) = self.tok {
            let at = self.span;
            self.bump()?;
            let (rhs, rd) = self.unary()?;
            let op = if c == '*' { BinOp::Mul } else { BinOp::Div };
            let span = join(lhs.span(), rhs.span());
            let node = Ast::Bin(op, Box::new(lhs), Box::new(rhs), span);
            (lhs, d) = self.deeper(node, d.max(rd), at)?;
        }
        Ok((lhs, d))
    }

    fn unary(&mut self) -> Result<Sub, FormulaError> {
        match self.tok {
            Tok::Op(c @ ('-' | '+')) => {
                let start = self.span;
                self.open()?;
                self.bump()?;
                let inner = self.unary();
                self.close();
                let (e, d) = inner?;
                if c == '+' {
                    // No node, but a level all the same: a run of signs
                    // recurses once per sign.
                    return self.deeper(e, d, start);
                }
                let span = join(start, e.span());
                self.deeper(Ast::Neg(Box::new(e), span), d, start)
            }
            _ => self.power(),
        }
    }

    fn power(&mut self) -> Result<Sub, FormulaError> {
        let (base, bd) = self.atom()?;
        if self.tok == Tok::Op('^') {
            let at = self.span;
            self.open()?;
            self.bump()?;
            // Right-associative, and the exponent may carry a sign: x^-a.
            let exp = self.unary();
            self.close();
            let (exp, ed) = exp?;
            let span = join(base.span(), exp.span());
            return self.deeper(
                Ast::Bin(BinOp::Pow, Box::new(base), Box::new(exp), span),
                bd.max(ed),
                at,
            );
        }
        Ok((base, bd))
    }

    fn atom(&mut self) -> Result<Sub, FormulaError> {
        let span = self.span;
        match self.tok.clone() {
            Tok::Num(v) => {
                self.bump()?;
                Ok((Ast::Num(v, span), 1))
            }
            Tok::Name(name) => {
                self.bump()?;
                if self.tok == Tok::Op('[') {
                    self.open()?;
                    self.bump()?;
                    let e = self.expr();
                    self.close();
                    let (e, d) = e?;
                    if self.tok != Tok::Op(']') {
                        return Err(self.err("']'"));
                    }
                    let end = self.span;
                    self.bump()?;
                    return self.deeper(Ast::Index(name, Box::new(e), join(span, end)), d, span);
                }
                if self.tok != Tok::Op('(') {
                    return Ok((Ast::Name(name, span), 1));
                }
                if name == "sum" {
                    return self.sum(span);
                }
                let Some(func) = Func::from_name(&name) else {
                    let known: Vec<&str> = Func::names().collect();
                    return Err(FormulaError::new(
                        self.lex.src,
                        span,
                        format!(
                            "unknown function '{name}'; the functions are {}",
                            known.join(", ")
                        ),
                    ));
                };
                self.open()?;
                let args = self.args();
                self.close();
                let (args, d) = args?;
                if self.tok != Tok::Op(')') {
                    return Err(self.err("',' or ')'"));
                }
                let end = self.span;
                self.bump()?;
                let call_span = join(span, end);
                if args.len() != func.arity() {
                    return Err(FormulaError::new(
                        self.lex.src,
                        call_span,
                        format!(
                            "{} takes {} argument{}, found {}",
                            func.name(),
                            func.arity(),
                            if func.arity() == 1 { "" } else { "s" },
                            args.len()
                        ),
                    ));
                }
                self.deeper(Ast::Call(func, args, call_span), d, span)
            }
            Tok::Op('(') => {
                self.open()?;
                self.bump()?;
                let e = self.expr();
                self.close();
                let (e, d) = e?;
                if self.tok != Tok::Op(')') {
                    return Err(self.err("')'"));
                }
                self.bump()?;
                self.deeper(e, d, span)
            }
            _ => Err(self.err("a number, a name or '('")),
        }
    }

    /// `sum(var = lo..hi: body)` after the name `sum`, at its '('.
    fn sum(&mut self, start: Span) -> Result<Sub, FormulaError> {
        self.open()?;
        let inner = self.sum_parts();
        self.close();
        let (parts, d) = inner?;
        if self.tok != Tok::Op(')') {
            return Err(self.err("')' closing the sum"));
        }
        let end = self.span;
        self.bump()?;
        self.deeper(Ast::Sum(Box::new(parts), join(start, end)), d, start)
    }

    fn sum_parts(&mut self) -> Result<(SumAst, usize), FormulaError> {
        self.bump()?;
        let Tok::Name(var) = self.tok.clone() else {
            return Err(self.err("the name of the step summed over, as in sum(k = 1..step: lr[k])"));
        };
        let var_span = self.span;
        self.bump()?;
        if self.tok != Tok::Op('=') {
            return Err(self.err("'=' after the step's name, as in sum(k = 1..step: lr[k])"));
        }
        self.bump()?;
        let (lo, d1) = self.expr()?;
        if self.tok != Tok::DotDot {
            return Err(
                self.err("'..' between the first and last step, as in sum(k = 1..step: lr[k])")
            );
        }
        self.bump()?;
        let (hi, d2) = self.expr()?;
        if self.tok != Tok::Op(':') {
            return Err(self.err("':' before what is summed, as in sum(k = 1..step: lr[k])"));
        }
        self.bump()?;
        let (body, d3) = self.expr()?;
        Ok((
            SumAst {
                var,
                var_span,
                lo,
                hi,
                body,
            },
            d1.max(d2).max(d3),
        ))
    }

    /// A call's arguments after its '(' (the caller checks the ')'), and
    /// the deepest one's depth.
    fn args(&mut self) -> Result<(Vec<Ast>, usize), FormulaError> {
        self.bump()?;
        let (first, mut d) = self.expr()?;
        let mut args = vec![first];
        while self.tok == Tok::Op(',') {
            self.bump()?;
            let (a, ad) = self.expr()?;
            d = d.max(ad);
            args.push(a);
        }
        Ok((args, d))
    }
}

/// Every name the formula uses, in order of first appearance, with the
/// span of that appearance (function names excluded).
pub fn names(ast: &Ast) -> Vec<(String, Span)> {
    fn walk(a: &Ast, out: &mut Vec<(String, Span)>) {
        match a {
            Ast::Num(..) => {}
            Ast::Name(n, s) => {
                if !out.iter().any(|(m, _)| m == n) {
                    out.push((n.clone(), *s));
                }
            }
            Ast::Neg(e, _) => walk(e, out),
            Ast::Bin(_, a, b, _) => {
                walk(a, out);
                walk(b, out);
            }
            Ast::Call(_, args, _) => args.iter().for_each(|e| walk(e, out)),
            // A series is read through the run's schedule: the law's
            // variable `schedule` (see `law::steps`).
            Ast::Index(_, i, s) => {
                if !out.iter().any(|(m, _)| m == SCHEDULE) {
                    out.push((SCHEDULE.to_string(), *s));
                }
                walk(i, out);
            }
            Ast::Sum(sum, _) => {
                walk(&sum.lo, out);
                walk(&sum.hi, out);
                // The summed step is bound inside the sum, not a name of
                // the law.
                let mut inner = Vec::new();
                walk(&sum.body, &mut inner);
                for (n, s) in inner {
                    if n != sum.var && !out.iter().any(|(m, _)| *m == n) {
                        out.push((n, s));
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(ast, &mut out);
    out
}

/// The variable through which a law reads its runs' per-step series.
pub const SCHEDULE: &str = "schedule";

#[cfg(test)]
mod tests {
    use super::*;

    /// Fully parenthesised form, to check precedence.
    fn show(a: &Ast) -> String {
        match a {
            Ast::Num(v, _) => format!("{v}"),
            Ast::Name(n, _) => n.clone(),
            Ast::Neg(e, _) => format!("(-{})", show(e)),
            Ast::Bin(op, a, b, _) => {
                let o = match op {
                    BinOp::Add => "+",
                    BinOp::Sub => "-",
                    BinOp::Mul => "*",
                    BinOp::Div => "/",
                    BinOp::Pow => "^",
                };
                format!("({} {o} {})", show(a), show(b))
            }
            Ast::Call(f, args, _) => format!(
                "{}({})",
                f.name(),
                args.iter().map(show).collect::<Vec<_>>().join(", ")
            ),
            Ast::Index(n, i, _) => format!("{n}[{}]", show(i)),
            Ast::Sum(s, _) => format!(
                "sum({} = {}..{}: {})",
                s.var,
                show(&s.lo),
                show(&s.hi),
                show(&s.body)
            ),
        }
    }

    #[test]
    fn precedence_and_associativity() {
        let cases = [
            ("a + b * c", "(a + (b * c))"),
            ("a - b - c", "((a - b) - c)"),
            ("a / b / c", "((a / b) / c)"),
            ("a ^ b ^ c", "(a ^ (b ^ c))"),
            ("-x^2", "(-(x ^ 2))"),
            ("x^-a", "(x ^ (-a))"),
            ("2*-x", "(2 * (-x))"),
            ("E + A/(N + t1)^alpha", "(E + (A / ((N + t1) ^ alpha)))"),
            ("min(N, 0.051*U)", "min(N, (0.051 * U))"),
            ("1e9 + 2.5E-3 + .5", "((1000000000 + 0.0025) + 0.5)"),
            ("exp(-(D/U - 1)/R_D)", "exp(((-((D / U) - 1)) / R_D))"),
        ];
        for (src, want) in cases {
            assert_eq!(show(&parse(src).unwrap()), want, "{src}");
        }
    }

    fn error(src: &str) -> FormulaError {
        parse(src).unwrap_err()
    }

    #[test]
    fn errors_point_at_the_column_and_say_what_was_expected() {
        let e = error("E + A/(N + t1");
        assert_eq!(e.column(), 14);
        assert!(e.message.contains("expected ')'"), "{}", e.message);
        assert!(e.message.contains("end of the formula"), "{}", e.message);
        let shown = e.to_string();
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(lines[1], "  E + A/(N + t1");
        assert_eq!(lines[2], format!("  {}^", " ".repeat(13)));

        let e = error("E + * A");
        assert_eq!(e.column(), 5);
        assert!(e.message.contains("expected a number, a name or '('"));

        let e = error("E + A N");
        assert_eq!(e.column(), 7);
        assert!(e.message.contains("without an operator"));

        let e = error("E + foo(N)");
        assert!(e.message.contains("unknown function 'foo'"));
        assert!(e
            .message
            .contains("exp, log, sqrt, tanh, sin, cos, atan, min, max"));

        let e = error("min(N)");
        assert!(e.message.contains("min takes 2 arguments, found 1"));

        let e = error("E + A/N)");
        assert!(e.message.contains("unmatched ')'"));

        let e = error("E \u{2212} A");
        assert_eq!(e.column(), 3);
        assert!(e.message.contains("Unicode minus"));

        assert!(error("   ").message.contains("empty"));
    }

    #[test]
    fn names_in_order_of_appearance() {
        let a = parse("E + A/(N + t1)^alpha + B/N").unwrap();
        let n: Vec<String> = names(&a).into_iter().map(|(n, _)| n).collect();
        assert_eq!(n, ["E", "A", "N", "t1", "alpha", "B"]);
    }
    /// Formulas of exactly `d` levels, one per way of nesting.
    pub(crate) fn at_depth(d: usize) -> Vec<(&'static str, String)> {
        vec![
            (
                "parentheses",
                format!("{}a*N{}", "(".repeat(d - 2), ")".repeat(d - 2)),
            ),
            ("minus signs", format!("{}a*N", "-".repeat(d - 2))),
            ("plus signs", format!("{}a*N", "+".repeat(d - 2))),
            (
                "a sum",
                (0..d - 1)
                    .map(|i| format!("p{i}*N"))
                    .collect::<Vec<_>>()
                    .join(" + "),
            ),
            ("a product", format!("a{}", "*N".repeat(d - 1))),
            (
                "calls",
                format!("{}a*N{}", "exp(".repeat(d - 2), ")".repeat(d - 2)),
            ),
            ("powers", format!("{}a", "N^".repeat(d - 1))),
            (
                "exponents in parentheses",
                format!("{}a{}", "N^(".repeat((d - 1) / 2), ")".repeat((d - 1) / 2)),
            ),
        ]
    }

    #[test]
    fn nesting_is_refused_beyond_the_limit_with_the_limit_named() {
        for (what, src) in at_depth(MAX_DEPTH) {
            assert!(parse(&src).is_ok(), "{what} at the limit");
        }
        for (what, src) in at_depth(MAX_DEPTH + 1) {
            let e = parse(&src).unwrap_err();
            assert!(
                e.message.contains("more than 256 levels deep"),
                "{what}: {}",
                e.message
            );
        }
        // Far beyond the limit, without exhausting the stack.
        for (what, src) in at_depth(100_000) {
            assert!(parse(&src).is_err(), "{what}");
        }
    }

    #[test]
    fn a_long_formula_is_shown_around_the_error() {
        let src = format!("E + A*{} $ B", "x".repeat(100_000));
        let shown = parse(&src).unwrap_err().to_string();
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(lines.len(), 3, "{shown}");
        assert!(
            lines[1].len() < 200 && lines[1].starts_with("  ..."),
            "{shown}"
        );
        // The caret stays under the character at fault.
        let caret = lines[2].find('^').unwrap();
        assert_eq!(&lines[1][caret..caret + 1], "$", "{shown}");
    }
}
