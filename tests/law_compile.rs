//! The law compiler against independent references: random formulas,
//! evaluated by a plain recursive walk of the syntax tree and
//! differentiated by central finite differences.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

mod common;
use common::{random_formula as formula, FORMULA_PARAMS as PARAMS, FORMULA_VARS as VARS};
use sweepfit::law::parse::{self, Ast, BinOp, Func};
use sweepfit::law::CompiledLaw;

/// The reference: evaluate the syntax tree directly.
fn eval_ast(a: &Ast, vars: &[f64], params: &[f64]) -> f64 {
    match a {
        Ast::Num(v, _) => *v,
        Ast::Name(n, _) => match VARS.iter().position(|v| v == n) {
            Some(i) => vars[i],
            None => params[PARAMS.iter().position(|p| p == n).unwrap()],
        },
        Ast::Neg(e, _) => -eval_ast(e, vars, params),
        Ast::Bin(op, x, y, _) => {
            let (x, y) = (eval_ast(x, vars, params), eval_ast(y, vars, params));
            match op {
                BinOp::Add => x + y,
                BinOp::Sub => x - y,
                BinOp::Mul => x * y,
                BinOp::Div => x / y,
                BinOp::Pow => x.powf(y),
            }
        }
        Ast::Call(f, args, _) => {
            let x = eval_ast(&args[0], vars, params);
            match f {
                Func::Exp => x.exp(),
                Func::Log => x.ln(),
                Func::Sqrt => x.sqrt(),
                Func::Tanh => x.tanh(),
                Func::Sin => x.sin(),
                Func::Cos => x.cos(),
                Func::Atan => x.atan(),
                Func::Min => x.min(eval_ast(&args[1], vars, params)),
                Func::Max => x.max(eval_ast(&args[1], vars, params)),
            }
        }
        Ast::Index(..) | Ast::Sum(..) => unreachable!("the random formulas have no sums"),
    }
}

#[test]
fn random_formulas_match_a_recursive_evaluator_and_finite_differences() {
    let mut rng = StdRng::seed_from_u64(7);
    let mut checked = 0;
    let mut grads = 0;
    for case in 0..600 {
        let text = formula(&mut rng, 4);
        let ast = parse::parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
        // A formula where some parameter cancels out is refused by design;
        // those cases check that refusal is right instead.
        let law = match CompiledLaw::from_formula(&text, &VARS) {
            Ok(l) => l,
            Err(e) => {
                assert!(
                    e.message.contains("cannot change the prediction")
                        || e.message.contains("no parameters"),
                    "{text}: {e}"
                );
                continue;
            }
        };
        for _ in 0..3 {
            let vars = [rng.random_range(0.5..2.0), rng.random_range(0.5..2.0)];
            let all: Vec<f64> = (0..4).map(|_| rng.random_range(0.5..1.5)).collect();
            // The law numbers its parameters by first appearance.
            let params: Vec<f64> = law
                .params
                .iter()
                .map(|p| all[PARAMS.iter().position(|q| q == p).unwrap()])
                .collect();
            let want = eval_ast(&ast, &vars, &all);
            let mut g = vec![0.0; params.len()];
            let got = law.eval_grad(&vars, &params, &mut g);
            assert!(
                (got - want).abs() <= 1e-12 * want.abs().max(1.0),
                "case {case} {text}: {got} vs {want}"
            );
            for k in 0..params.len() {
                let h = 1e-6 * params[k].abs().max(1.0);
                let mut up = all.clone();
                let mut dn = all.clone();
                let i = PARAMS.iter().position(|q| *q == law.params[k]).unwrap();
                up[i] += h;
                dn[i] -= h;
                let fd = (eval_ast(&ast, &vars, &up) - eval_ast(&ast, &vars, &dn)) / (2.0 * h);
                let scale = fd.abs().max(want.abs()).max(1.0);
                assert!(
                    (g[k] - fd).abs() <= 1e-6 * scale,
                    "case {case} {text}: d/d{} = {} vs finite difference {fd}",
                    law.params[k],
                    g[k]
                );
                grads += 1;
            }
            checked += 1;
        }
    }
    assert!(checked > 900, "only {checked} points checked");
    assert!(grads > 1000, "only {grads} derivatives checked");
}

#[test]
fn shared_subexpressions_are_computed_once() {
    // (N + t1)^alpha appears twice; the DAG holds it once.
    let once = CompiledLaw::from_formula("A/(N + t1)^alpha", &["N"]).unwrap();
    let twice = CompiledLaw::from_formula("A/(N + t1)^alpha + B*(N + t1)^alpha", &["N"]).unwrap();
    let count_pow = |l: &CompiledLaw| {
        l.graph.nodes()[..=l.value as usize]
            .iter()
            .filter(|n| matches!(n, sweepfit::law::dag::Node::Pow(..)))
            .count()
    };
    assert_eq!(count_pow(&once), 1);
    assert_eq!(count_pow(&twice), 1);
}
