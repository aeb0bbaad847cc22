//! The hoisted evaluation plan against the point-by-point reference, and
//! how often each class of node is evaluated.

use sweepfit::law::dag::Node;
use sweepfit::law::ops::Func;
use sweepfit::law::plan::{Class, Counts, Plan, Sweep};
use sweepfit::law::{CompiledLaw, Source};
use sweepfit::objective::{LossKind, Objective, Space};

const LOOPLM: &str = "E + A/(N + t1)^alpha + B/(D + t2)^beta + C/(T + t3)^gamma";

/// `curves` curves (N, T) logged at the same `steps` token counts, with
/// targets from the law at `truth` plus a deterministic wiggle.
fn looplm_sweep(sizes: &[f64], ts: &[f64], steps: usize) -> Sweep {
    let law = CompiledLaw::from_formula(LOOPLM, &["N", "D", "T"]).unwrap();
    let truth = [1.8, 26.8, 0.1, 0.3, 20.18, 0.1, 0.35, 0.675, 0.5, 1.0];
    let (mut curves, mut vars, mut y) = (Vec::new(), Vec::new(), Vec::new());
    for &n in sizes {
        for &t in ts {
            let s = y.len();
            for k in 0..steps {
                let d = 0.01 + k as f64 / steps as f64;
                vars.extend([n, d, t]);
                y.push(law.eval(&[n, d, t], &truth) + 0.01 * ((k * 7 + 3) % 11) as f64 / 11.0);
            }
            curves.push(s..y.len());
        }
    }
    let w = vec![1.0 / y.len() as f64; y.len()];
    Sweep::new(3, curves, vars, y, w, Some(1))
}

/// Objective and gradient point by point from the compiled law's own
/// gradient: the reference.
fn reference(law: &CompiledLaw, s: &Sweep, p: &[f64], obj: &Objective) -> (f64, Vec<f64>) {
    let (mut f, mut g) = (0.0, vec![0.0; p.len()]);
    let mut gp = vec![0.0; p.len()];
    for i in 0..s.points() {
        let pred = law.eval_grad(&s.vars[i * s.n_vars..][..s.n_vars], p, &mut gp);
        let (r, dpred) = match obj.space {
            Space::Linear => (pred - s.y[i], 1.0),
            Space::Log => (pred.ln() - s.y[i], 1.0 / pred),
        };
        let (rho, drho) = obj.rho(r);
        f += s.w[i] * rho;
        for (g, d) in g.iter_mut().zip(&gp) {
            *g += s.w[i] * drho * dpred * d;
        }
    }
    (f, g)
}

fn close(a: f64, b: f64, rel: f64, scale: f64) -> bool {
    (a - b).abs() <= rel * scale.max(a.abs()).max(b.abs())
}

#[test]
fn hoisted_plan_matches_the_point_by_point_reference() {
    let s = looplm_sweep(&[0.05, 0.13, 0.37, 1.0], &[1.0, 2.0, 3.0], 50);
    let law = CompiledLaw::from_formula(LOOPLM, &["N", "D", "T"]).unwrap();
    let plan = Plan::for_sweep(&law, &s);
    let p = [1.7, 30.0, 0.12, 0.28, 18.0, 0.08, 0.33, 0.7, 0.4, 1.1];
    for (loss, space) in [
        (LossKind::Mse, Space::Linear),
        (LossKind::Huber, Space::Linear),
        (LossKind::Mse, Space::Log),
        (LossKind::Huber, Space::Log),
    ] {
        let obj = Objective {
            loss,
            space,
            delta: 0.02,
        };
        let (f, g) = plan.evaluate(&s, &p, &obj, None);
        let (fr, gr) = reference(&law, &s, &p, &obj);
        assert!(close(f, fr, 1e-12, 0.0), "{loss:?}/{space:?}: {f} vs {fr}");
        let norm = gr.iter().map(|v| v * v).sum::<f64>().sqrt();
        for k in 0..p.len() {
            assert!(
                close(g[k], gr[k], 1e-10, norm),
                "{loss:?}/{space:?} d/d{}: {} vs {}",
                law.params[k],
                g[k],
                gr[k]
            );
        }
    }
}

#[test]
fn every_node_is_evaluated_once_per_distinct_value_of_its_variables() {
    let (nc, steps) = (12, 40);
    let sizes: Vec<f64> = (0..4).map(|i| 0.1 * (i + 1) as f64).collect();
    let s = looplm_sweep(&sizes, &[1.0, 2.0, 4.0], steps);
    assert_eq!(s.curves.len(), nc);
    assert_eq!(s.axis_values.len(), steps, "curves share their token grid");
    let law = CompiledLaw::from_formula(LOOPLM, &["N", "D", "T"]).unwrap();
    let plan = Plan::for_sweep(&law, &s);
    let mut counts = Counts::default();
    let p = [1.7, 30.0, 0.12, 0.28, 18.0, 0.08, 0.33, 0.7, 0.4, 1.1];
    plan.evaluate(&s, &p, &Objective::default(), Some(&mut counts));
    let per = |c: Class| plan.forward[c as usize].len();
    assert_eq!(counts.forward[Class::Start as usize], per(Class::Start));
    assert_eq!(
        counts.forward[Class::Curve as usize],
        nc * per(Class::Curve)
    );
    assert_eq!(
        counts.forward[Class::Axis as usize],
        steps * per(Class::Axis)
    );
    assert_eq!(
        counts.forward[Class::Point as usize],
        nc * steps * per(Class::Point)
    );
    // The variables themselves are data: N and T once per curve, D once
    // per token value.
    let data = |l: Class| plan.data_nodes(l).count();
    assert_eq!((data(Class::Curve), data(Class::Axis)), (2, 1));
    assert_eq!(
        counts.forward[Class::Data as usize],
        nc * data(Class::Curve) + steps * data(Class::Axis)
    );

    // What makes it fast: per point only additions are left (the curve's
    // part plus the token part); every power, exp and log is hoisted.
    let graph_nodes = plan.graph();
    for &id in &plan.forward[Class::Point as usize] {
        let node = graph_nodes.node(id);
        assert!(
            matches!(node, Node::Add(..) | Node::Sub(..)),
            "per-point node {node:?}"
        );
    }
    assert!(
        per(Class::Point) <= 2,
        "{} per-point nodes",
        per(Class::Point)
    );
    // The backward pass per point only routes the seed through those sums.
    assert_eq!(
        counts.backward[Class::Point as usize],
        nc * steps * plan.edges[Class::Point as usize].len()
    );
    assert!(plan.edges[Class::Point as usize].len() <= 4);
    // Powers of N and T: once per curve; of D: once per token value, and
    // there as one log and one exp, shared with their derivatives.
    let count = |c: Class, f: fn(&Node) -> bool| {
        plan.forward[c as usize]
            .iter()
            .filter(|&&id| f(&graph_nodes.node(id)))
            .count()
    };
    assert_eq!(
        count(Class::Axis, |n| matches!(n, Node::Fn1(Func::Log, _))),
        1
    );
    assert_eq!(
        count(Class::Axis, |n| matches!(n, Node::Fn1(Func::Exp, _))),
        1
    );
    assert_eq!(count(Class::Axis, |n| matches!(n, Node::Pow(..))), 0);
    assert_eq!(
        count(Class::Curve, |n| matches!(n, Node::Fn1(Func::Log, _))),
        2
    );
    assert_eq!(
        count(Class::Curve, |n| matches!(n, Node::Fn1(Func::Exp, _))),
        2
    );
}

#[test]
fn parameter_free_nodes_are_evaluated_once_per_fit() {
    // Chinchilla's shape: ln N and ln D depend on data alone.
    let (nc, steps, starts) = (12, 40, 3);
    let sizes: Vec<f64> = (0..4).map(|i| 0.1 * (i + 1) as f64).collect();
    let s = looplm_sweep(&sizes, &[1.0, 2.0, 4.0], steps);
    let law = CompiledLaw::from_formula("E + A/N^alpha + B/D^beta", &["N", "D", "T"]).unwrap();
    let plan = Plan::for_sweep(&law, &s);
    let g = plan.graph();
    let is_log_of_var =
        |id| matches!(g.node(id), Node::Fn1(Func::Log, x) if matches!(g.node(x), Node::Var(_)));
    for level in [Class::Curve, Class::Axis] {
        assert!(
            plan.data_nodes(level).any(is_log_of_var),
            "a log of a variable among the {level:?} data nodes"
        );
    }
    // Per token value only the exp is left of the power.
    let count = |c: Class, f: fn(&Node) -> bool| {
        plan.forward[c as usize]
            .iter()
            .filter(|&&id| f(&g.node(id)))
            .count()
    };
    assert_eq!(
        count(Class::Axis, |n| matches!(n, Node::Fn1(Func::Log, _))),
        0
    );
    assert_eq!(
        count(Class::Axis, |n| matches!(n, Node::Fn1(Func::Exp, _))),
        1
    );
    assert_eq!(
        count(Class::Curve, |n| matches!(n, Node::Fn1(Func::Log, _))),
        0
    );

    // The data once, then any number of parameter vectors.
    let mut counts = Counts::default();
    let data = plan.data(&s, Some(&mut counts));
    let obj = Objective::default();
    for k in 0..starts {
        let p = [1.7 + 0.1 * k as f64, 30.0, 0.12, 18.0, 0.3];
        let (f, g) = plan.evaluate_with(&s, &data, &p, &obj, Some(&mut counts));
        let (fr, gr) = reference(&law, &s, &p, &obj);
        assert!(close(f, fr, 1e-12, 0.0), "start {k}: {f} vs {fr}");
        let norm = gr.iter().map(|v| v * v).sum::<f64>().sqrt();
        for j in 0..p.len() {
            assert!(
                close(g[j], gr[j], 1e-10, norm),
                "start {k} d/d{}",
                law.params[j]
            );
        }
    }
    let per = |c: Class| plan.forward[c as usize].len();
    let per_data = |l: Class| plan.data_nodes(l).count();
    assert_eq!(
        counts.forward[Class::Data as usize],
        nc * per_data(Class::Curve) + steps * per_data(Class::Axis),
        "data nodes once per distinct value, not per start"
    );
    assert_eq!(per_data(Class::Point), 0);
    assert_eq!(
        counts.forward[Class::Start as usize],
        starts * per(Class::Start)
    );
    assert_eq!(
        counts.forward[Class::Curve as usize],
        starts * nc * per(Class::Curve)
    );
    assert_eq!(
        counts.forward[Class::Axis as usize],
        starts * steps * per(Class::Axis)
    );

    // One-point curves (final losses): V*d, ln Nnv, ln(V*d) and ln D once
    // per point for the whole fit.
    let law = sweepfit::law::builtin_law("vocab")
        .unwrap()
        .compile("vocab")
        .unwrap();
    let n = 50;
    let vars: Vec<f64> = (0..n)
        .flat_map(|i| {
            let x = i as f64;
            [0.1 + 0.01 * x, 4.0 + x, 0.5 + 0.02 * x, 1.0 + x]
        })
        .collect();
    let s = Sweep::new(
        4,
        (0..n).map(|i| i..i + 1).collect(),
        vars,
        vec![-1.0; n],
        vec![1.0 / n as f64; n],
        None,
    );
    let plan = Plan::for_sweep(&law, &s);
    let g = plan.graph();
    assert!(plan.forward[Class::Curve as usize]
        .iter()
        .all(|&id| !matches!(g.node(id), Node::Fn1(Func::Log, _))));
    let logs = plan
        .data_nodes(Class::Curve)
        .filter(|&id| matches!(g.node(id), Node::Fn1(Func::Log, _)))
        .count();
    assert_eq!(logs, 3, "ln Nnv, ln Nv and ln D are data");
    let mut counts = Counts::default();
    plan.data(&s, Some(&mut counts));
    assert_eq!(
        counts.forward[Class::Data as usize],
        n * plan.data_nodes(Class::Curve).count()
    );
}

#[test]
fn hot_loops_have_no_powers_and_no_divisions() {
    // Divisions by powers (and by exps) become exp(-(y ln x)), with the
    // negation on the operand evaluated least often; small integer powers
    // become products. Per curve, axis value or point, the only division
    // left is a log's derivative 1/x, which the evaluators form with the
    // log itself.
    let sizes: Vec<f64> = (0..4).map(|i| 0.1 * (i + 1) as f64).collect();
    let s = looplm_sweep(&sizes, &[1.0, 2.0, 4.0], 30);
    for formula in [
        LOOPLM,
        "E + A/N^alpha + B/D^beta",
        "E + A/exp(a*N) + B/(D + t2)^beta + c*(N - D)^2 + C/(T*D)",
    ] {
        let law = CompiledLaw::from_formula(formula, &["N", "D", "T"]).unwrap();
        let plan = Plan::for_sweep(&law, &s);
        let g = plan.graph();
        for class in [Class::Curve, Class::Axis, Class::Point] {
            let ids = &plan.forward[class as usize];
            for &id in ids {
                match g.node(id) {
                    Node::Pow(..) => panic!("{formula}: a power among the {class:?} nodes"),
                    Node::Div(a, x) => assert!(
                        g.constant(a) == Some(1.0)
                            && ids.iter().any(|&l| g.node(l) == Node::Fn1(Func::Log, x)),
                        "{formula}: a division among the {class:?} nodes"
                    ),
                    // -beta once per start, not -(beta ln(D + t2)) per
                    // token value.
                    Node::Neg(_) => panic!("{formula}: a negation among the {class:?} nodes"),
                    _ => {}
                }
            }
        }
        let p: Vec<f64> = (0..law.params.len())
            .map(|i| 0.3 + 0.1 * i as f64)
            .collect();
        let obj = Objective::default();
        let (f, g) = plan.evaluate(&s, &p, &obj, None);
        let (fr, gr) = reference(&law, &s, &p, &obj);
        assert!(close(f, fr, 1e-12, 0.0), "{formula}: {f} vs {fr}");
        let norm = gr.iter().map(|v| v * v).sum::<f64>().sqrt();
        for k in 0..p.len() {
            assert!(
                close(g[k], gr[k], 1e-10, norm),
                "{formula} d/d{}: {} vs {}",
                law.params[k],
                g[k],
                gr[k]
            );
        }
        check_grid(&law, &s, &[p], obj, formula);
    }
}

#[test]
fn laws_of_other_shapes_match_the_reference() {
    // Data-constrained (defs, min on data), a law of per-curve variables
    // only (one point per curve, as SLDBench's moe), and a law with a
    // per-point variable that is not the axis.
    let cases: Vec<(Source, &str)> = vec![
        (
            Source {
                formula: "E + A/Np^alpha + B/Dp^beta".into(),
                defs: vec![
                    ("UN".into(), "min(N, 0.051*U)".into()),
                    ("Np".into(), "UN + UN*R_N*(1 - exp(-(N/UN - 1)/R_N))".into()),
                    ("Dp".into(), "U + U*R_D*(1 - exp(-(D/U - 1)/R_D))".into()),
                ],
                variables: vec!["N".into(), "D".into(), "U".into()],
                origin: String::new(),
            },
            "dc",
        ),
        (
            Source {
                formula: "exp(a*log(N) + b*log(Eh) + c*log(N)*log(Eh) + d)".into(),
                variables: vec!["N".into(), "D".into(), "Eh".into()],
                ..Default::default()
            },
            "moe",
        ),
        (
            Source {
                formula: "E + A/N^alpha + B/(D*V)^beta".into(),
                variables: vec!["N".into(), "D".into(), "V".into()],
                ..Default::default()
            },
            "pointvar",
        ),
    ];
    for (src, name) in cases {
        let law = CompiledLaw::compile(&src).unwrap();
        let (mut curves, mut vars, mut y) = (Vec::new(), Vec::new(), Vec::new());
        for c in 0..5 {
            let s = y.len();
            for k in 0..7 {
                let (n, d) = (0.2 + 0.15 * c as f64, 0.3 + 0.4 * k as f64);
                let third = 0.5 + 0.1 * ((c + k) % 4) as f64;
                vars.extend([n, d, third]);
                y.push(2.0 + 0.1 * ((c * 3 + k) % 5) as f64);
            }
            curves.push(s..y.len());
        }
        let w = vec![1.0 / y.len() as f64; y.len()];
        let s = Sweep::new(3, curves, vars, y, w, Some(1));
        let plan = Plan::for_sweep(&law, &s);
        let p: Vec<f64> = (0..law.params.len())
            .map(|i| 0.3 + 0.1 * i as f64)
            .collect();
        let obj = Objective::default();
        let (f, g) = plan.evaluate(&s, &p, &obj, None);
        let (fr, gr) = reference(&law, &s, &p, &obj);
        assert!(close(f, fr, 1e-12, 0.0), "{name}: {f} vs {fr}");
        let norm = gr.iter().map(|v| v * v).sum::<f64>().sqrt();
        for k in 0..p.len() {
            assert!(
                close(g[k], gr[k], 1e-10, norm),
                "{name} {}: {} vs {}",
                law.params[k],
                g[k],
                gr[k]
            );
        }
    }
}

mod common;

/// The vectorised evaluator, in every layout that holds the sweep (the
/// point layout holds any), against the plan's reference interpreter.
fn check_grid(law: &CompiledLaw, s: &Sweep, params: &[Vec<f64>], obj: Objective, what: &str) {
    use sweepfit::backend::CpuLayout;
    let plan = Plan::for_sweep(law, s);
    let mut layouts = 0;
    for layout in [CpuLayout::Grid, CpuLayout::Points, CpuLayout::Table] {
        let Ok(grid) = sweepfit::backend::CpuLaw::with_layout(plan.clone(), s, obj, layout) else {
            assert_ne!(layout, CpuLayout::Points, "{what}");
            continue;
        };
        check_layout(&grid, &plan, s, params, obj, &format!("{what} {layout:?}"));
        layouts += 1;
    }
    assert!(layouts >= 2, "{what}: {layouts} layouts");
}

fn check_layout(
    grid: &sweepfit::backend::CpuLaw,
    plan: &Plan,
    s: &Sweep,
    params: &[Vec<f64>],
    obj: Objective,
    what: &str,
) {
    let np = plan.n_params();
    let flat: Vec<f64> = params.iter().flatten().copied().collect();
    let mut f = vec![0.0; params.len()];
    let mut g = vec![0.0; params.len() * np];
    grid.evaluate(&flat, &mut f, &mut g);
    for (k, p) in params.iter().enumerate() {
        let (fr, gr) = plan.evaluate(s, p, &obj, None);
        assert!(
            close(f[k], fr, 1e-12, 0.0),
            "{what} start {k}: {} vs {fr}",
            f[k]
        );
        let norm = gr.iter().map(|v| v * v).sum::<f64>().sqrt();
        for j in 0..np {
            assert!(
                close(g[k * np + j], gr[j], 1e-10, norm),
                "{what} start {k} d/d{}: {} vs {}",
                j,
                g[k * np + j],
                gr[j]
            );
        }
    }
}

#[test]
fn grid_evaluator_matches_the_reference_on_looplm() {
    let mut s = looplm_sweep(&[0.05, 0.13, 0.37, 1.0], &[1.0, 2.0, 3.0], 600);
    // Some cells weigh nothing and one curve lacks its last points.
    s.w[5] = 0.0;
    let law = CompiledLaw::from_formula(LOOPLM, &["N", "D", "T"]).unwrap();
    let params = vec![
        vec![1.7, 30.0, 0.12, 0.28, 18.0, 0.08, 0.33, 0.7, 0.4, 1.1],
        vec![2.0, 10.0, 0.01, 0.5, 5.0, 0.2, 0.5, 0.1, 1.0, 2.0],
    ];
    for (loss, space) in [
        (LossKind::Mse, Space::Linear),
        (LossKind::Huber, Space::Log),
    ] {
        let obj = Objective {
            loss,
            space,
            delta: 0.02,
        };
        check_grid(&law, &s, &params, obj, &format!("{loss:?}/{space:?}"));
    }
}

#[test]
fn grid_evaluator_matches_the_reference_on_random_formulas() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let mut checked = 0;
    for case in 0..200 {
        let text = common::random_formula(&mut rng, 4);
        let Ok(law) = CompiledLaw::from_formula(&text, &common::FORMULA_VARS) else {
            continue;
        };
        // x constant along each curve, y the axis: 6 curves x 300 values.
        let (mut curves, mut vars, mut y) = (Vec::new(), Vec::new(), Vec::new());
        for c in 0..6 {
            let s0 = y.len();
            for k in 0..300 {
                vars.extend([0.5 + 0.25 * c as f64, 0.5 + k as f64 / 200.0]);
                y.push(rng.random_range(-1.0..1.0));
            }
            curves.push(s0..y.len());
        }
        let w = vec![1.0 / y.len() as f64; y.len()];
        let s = Sweep::new(2, curves, vars, y, w, Some(1));
        let params: Vec<Vec<f64>> = (0..3)
            .map(|_| {
                (0..law.params.len())
                    .map(|_| rng.random_range(0.5..1.5))
                    .collect()
            })
            .collect();
        check_grid(
            &law,
            &s,
            &params,
            Objective::default(),
            &format!("case {case}: {text}"),
        );
        checked += 1;
    }
    assert!(checked > 100, "{checked} formulas checked");
}

/// `n` one-point curves (no axis) with the variables of each point drawn
/// by `draw`, targets from `target`, and every seventh point weighing
/// nothing with a NaN target: tabular data, such as final losses of runs.
fn point_sweep(
    rng: &mut rand::rngs::StdRng,
    n: usize,
    n_vars: usize,
    draw: impl Fn(&mut rand::rngs::StdRng) -> Vec<f64>,
    target: impl Fn(&mut rand::rngs::StdRng, &[f64]) -> f64,
) -> Sweep {
    let (mut vars, mut y, mut w) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..n {
        let v = draw(rng);
        assert_eq!(v.len(), n_vars);
        let t = target(rng, &v);
        vars.extend(v);
        let zero = i % 7 == 3;
        y.push(if zero { f64::NAN } else { t });
        w.push(if zero { 0.0 } else { 1.0 / n as f64 });
    }
    let curves = (0..n).map(|i| i..i + 1).collect();
    Sweep::new(n_vars, curves, vars, y, w, None)
}

#[test]
fn grid_evaluator_matches_the_reference_on_separable_laws_with_data_terms() {
    // Sums of a curve term and an axis term, either of which may have no
    // parameter (the fused cell loop then gives it no adjoint), on a sweep
    // where a point weighs nothing; positive, for the log-space loss.
    let mut s = looplm_sweep(&[0.05, 0.13, 0.37, 1.0], &[1.0, 2.0, 3.0], 300);
    s.w[7] = 0.0;
    for formula in [
        "E + A/N^alpha + 0.1*log(D)",
        "B/D^beta + 0.5*log(1 + N*T)",
        "E + A/(N + t1)^alpha - 0.1*B/(D + t2)^beta",
        "A*N^2 + B*D^2 + E",
        "E + A/N^alpha + B/D^beta",
        "E + exp(alpha*log(D + t2)) + A*N",
    ] {
        let law = CompiledLaw::from_formula(formula, &["N", "D", "T"]).unwrap();
        let params: Vec<Vec<f64>> = (0..2)
            .map(|k| {
                (0..law.params.len())
                    .map(|i| 0.3 + 0.1 * i as f64 + 0.05 * k as f64)
                    .collect()
            })
            .collect();
        for (loss, space) in [
            (LossKind::Mse, Space::Linear),
            (LossKind::Huber, Space::Log),
        ] {
            let obj = Objective {
                loss,
                space,
                delta: 0.02,
            };
            check_grid(
                &law,
                &s,
                &params,
                obj,
                &format!("{formula} {loss:?}/{space:?}"),
            );
        }
    }
}

#[test]
fn a_power_of_the_axis_is_fused_and_only_that() {
    use sweepfit::backend::{CpuLaw, CpuLayout};
    let s = looplm_sweep(&[0.05, 0.13, 0.37, 1.0], &[1.0, 2.0, 3.0], 40);
    for (formula, fused) in [
        (LOOPLM, true),
        ("E + A/N^alpha + B/D^beta", true),
        ("E + A/N^alpha - B*(D + t2)^beta", true),
        ("E + A/N^alpha + B/D^beta + C/D", false),
        ("E + A/N^alpha + B/(D*T)^beta", false),
        // exp of a multiple of any data column of the axis is the same loop.
        ("E + A/N^alpha + B*exp(-beta*D)", true),
        ("E + A/N^alpha + B*exp(-beta*D^2)", true),
        ("E + A/N^alpha + B*exp(-beta*D) + C*D", false),
    ] {
        let law = CompiledLaw::from_formula(formula, &["N", "D", "T"]).unwrap();
        let plan = Plan::for_sweep(&law, &s);
        let obj = Objective::default();
        for layout in [CpuLayout::Points, CpuLayout::Grid] {
            let grid = CpuLaw::with_layout(plan.clone(), &s, obj, layout);
            assert_eq!(grid.unwrap().fused_power(), fused, "{formula} {layout:?}");
        }
    }
}

#[test]
fn point_evaluator_matches_the_reference_on_looplm() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let law = CompiledLaw::from_formula(LOOPLM, &["N", "D", "T"]).unwrap();
    let truth = [1.8, 26.8, 0.1, 0.3, 20.18, 0.1, 0.35, 0.675, 0.5, 1.0];
    let s = point_sweep(
        &mut rng,
        500,
        3,
        |r| {
            vec![
                r.random_range(0.05..1.0),
                r.random_range(0.01..1.0),
                r.random_range(1.0..4.0_f64).round(),
            ]
        },
        |r, v| law.eval(v, &truth) + r.random_range(-0.05..0.05),
    );
    // Every variable is constant along its (one-point) curve: no per-point
    // work is left.
    let plan = Plan::for_sweep(&law, &s);
    assert!(plan.forward[Class::Axis as usize].is_empty());
    assert!(plan.forward[Class::Point as usize].is_empty());
    let params = vec![
        vec![1.7, 30.0, 0.12, 0.28, 18.0, 0.08, 0.33, 0.7, 0.4, 1.1],
        vec![2.0, 10.0, 0.01, 0.5, 5.0, 0.2, 0.5, 0.1, 1.0, 2.0],
        vec![1.9, 25.0, 0.1, 0.3, 20.0, 0.1, 0.35, 0.6, 0.5, 1.0],
    ];
    for (loss, space) in [
        (LossKind::Mse, Space::Linear),
        (LossKind::Huber, Space::Linear),
        (LossKind::Mse, Space::Log),
        (LossKind::Huber, Space::Log),
    ] {
        let obj = Objective {
            loss,
            space,
            delta: 0.02,
        };
        check_grid(
            &law,
            &s,
            &params,
            obj,
            &format!("points {loss:?}/{space:?}"),
        );
    }
}

#[test]
fn point_evaluator_matches_the_reference_on_random_formulas() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(23);
    let mut checked = 0;
    for case in 0..200 {
        let text = common::random_formula(&mut rng, 4);
        let Ok(law) = CompiledLaw::from_formula(&text, &common::FORMULA_VARS) else {
            continue;
        };
        let s = point_sweep(
            &mut rng,
            500,
            2,
            |r| vec![r.random_range(0.5..1.5), r.random_range(0.5..1.5)],
            |r, _| r.random_range(-1.0..1.0),
        );
        let params: Vec<Vec<f64>> = (0..3)
            .map(|_| {
                (0..law.params.len())
                    .map(|_| rng.random_range(0.5..1.5))
                    .collect()
            })
            .collect();
        for loss in [LossKind::Mse, LossKind::Huber] {
            let obj = Objective {
                loss,
                space: Space::Linear,
                delta: 0.3,
            };
            check_grid(
                &law,
                &s,
                &params,
                obj,
                &format!("case {case} {loss:?}: {text}"),
            );
        }
        checked += 1;
    }
    assert!(checked > 90, "{checked} formulas checked");
}

#[test]
fn weightless_points_add_nothing_even_where_the_law_is_undefined() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(8);
    let law = CompiledLaw::from_formula(LOOPLM, &["N", "D", "T"]).unwrap();
    let mut s = point_sweep(
        &mut rng,
        300,
        3,
        |r| {
            vec![
                r.random_range(0.05..1.0),
                r.random_range(0.01..1.0),
                r.random_range(1.0..4.0),
            ]
        },
        |r, _| r.random_range(2.0..3.0),
    );
    // Weightless points where the law is NaN ((N + t1)^alpha of a negative
    // base) or infinite (D + t2 = 0 under a power in a denominator).
    let p = vec![1.7, 30.0, 0.12, 0.28, 18.0, 0.08, 0.33, 0.7, 0.4, 1.1];
    let bad: Vec<usize> = (0..s.points()).filter(|i| i % 7 == 3).collect();
    for (k, &i) in bad.iter().enumerate() {
        if k % 2 == 0 {
            s.vars[i * 3] = -5.0;
        } else {
            s.vars[i * 3 + 1] = -p[5];
        }
        let pred = law.eval(&s.vars[i * 3..i * 3 + 3], &p);
        assert!(!pred.is_finite(), "point {i}: {pred}");
    }
    // The reference on the sweep without them.
    let keep: Vec<usize> = (0..s.points()).filter(|i| s.w[*i] != 0.0).collect();
    let kept = Sweep::new(
        3,
        (0..keep.len()).map(|i| i..i + 1).collect(),
        keep.iter()
            .flat_map(|&i| s.vars[i * 3..i * 3 + 3].to_vec())
            .collect(),
        keep.iter().map(|&i| s.y[i]).collect(),
        keep.iter().map(|&i| s.w[i]).collect(),
        None,
    );
    for space in [Space::Linear, Space::Log] {
        let obj = Objective {
            loss: LossKind::Huber,
            space,
            delta: 0.02,
        };
        let grid = sweepfit::backend::CpuLaw::new(Plan::for_sweep(&law, &s), &s, obj).unwrap();
        let (mut f, mut g) = (vec![0.0; 1], vec![0.0; p.len()]);
        grid.evaluate(&p, &mut f, &mut g);
        let (fr, gr) = Plan::for_sweep(&law, &kept).evaluate(&kept, &p, &obj, None);
        assert!(close(f[0], fr, 1e-12, 0.0), "{space:?}: {} vs {fr}", f[0]);
        let norm = gr.iter().map(|v| v * v).sum::<f64>().sqrt();
        for j in 0..p.len() {
            assert!(
                close(g[j], gr[j], 1e-10, norm),
                "{space:?} d/d{}: {} vs {}",
                law.params[j],
                g[j],
                gr[j]
            );
        }
    }
}

#[test]
fn curves_without_an_axis_take_the_point_layout_and_the_table_refuses_them() {
    use sweepfit::backend::{CpuLaw, CpuLayout};
    let law = CompiledLaw::from_formula(LOOPLM, &["N", "D", "T"]).unwrap();
    let vars = vec![
        0.1, 0.2, 1.0, //
        0.1, 0.3, 1.0, //
        0.2, 0.5, 2.0,
    ];
    let s = Sweep::new(3, vec![0..2, 2..3], vars, vec![2.0; 3], vec![1.0; 3], None);
    let plan = Plan::for_sweep(&law, &s);
    let err = CpuLaw::with_layout(plan.clone(), &s, Objective::default(), CpuLayout::Table)
        .err()
        .expect("curves of two points in the table");
    assert!(err.contains("single point"), "{err}");
    let err = CpuLaw::with_layout(plan.clone(), &s, Objective::default(), CpuLayout::Grid)
        .err()
        .expect("a grid without an axis");
    assert!(err.contains("axis"), "{err}");
    // The default choice evaluates it, as the reference does.
    let params = vec![vec![1.7, 30.0, 0.12, 0.28, 18.0, 0.08, 0.33, 0.7, 0.4, 1.1]];
    let grid = CpuLaw::new(plan.clone(), &s, Objective::default()).unwrap();
    check_layout(&grid, &plan, &s, &params, Objective::default(), "no axis");
    // A plan with per-point nodes, bound to one-point curves.
    let s = Sweep::new(
        3,
        vec![0..1, 1..2],
        vec![0.1, 0.2, 1.0, 0.2, 0.5, 2.0],
        vec![2.0; 2],
        vec![1.0; 2],
        None,
    );
    let plan = Plan::new(&law, 0, None);
    let err = CpuLaw::with_layout(plan, &s, Objective::default(), CpuLayout::Table)
        .err()
        .expect("a plan for another sweep");
    assert!(err.contains("per-point"), "{err}");
}

#[test]
fn weighted_evaluation_matches_the_reference_on_reweighted_sweeps() {
    use sweepfit::backend::weights::{resolve_curves, Weighting, UNWEIGHTED};
    use sweepfit::backend::{CpuLaw, CpuLayout};
    // Curves of unequal lengths on a shared grid, a point of weight 0.
    let mut s = looplm_sweep(&[0.05, 0.13, 0.37, 1.0], &[1.0, 2.0, 3.0], 300);
    s.w[9] = 0.0;
    let nc = s.curves.len();
    let weightings: Vec<Weighting> = vec![
        // Curve multipliers, one curve left out.
        Weighting {
            config: (0..nc).map(|c| [0.0, 1.0, 2.0, 0.5][c % 4]).collect(),
            first: vec![u32::MAX; nc],
            poisson: None,
        },
        // The first points of each curve (a token-fraction fold).
        Weighting {
            config: vec![1.0; nc],
            first: (0..nc).map(|c| 50 + 37 * c as u32).collect(),
            poisson: None,
        },
        // Poisson(1) counts per point, with multipliers.
        Weighting {
            config: (0..nc).map(|c| 1.0 + c as f64).collect(),
            first: vec![u32::MAX; nc],
            poisson: Some(7),
        },
    ];
    let resolved: Vec<_> = weightings
        .iter()
        .map(|w| resolve_curves(w, &s.curves, &s.w).unwrap())
        .collect();
    let law = CompiledLaw::from_formula(LOOPLM, &["N", "D", "T"]).unwrap();
    let plan = Plan::for_sweep(&law, &s);
    let p = [
        vec![1.7, 30.0, 0.12, 0.28, 18.0, 0.08, 0.33, 0.7, 0.4, 1.1],
        vec![2.0, 10.0, 0.01, 0.5, 5.0, 0.2, 0.5, 0.1, 1.0, 2.0],
    ];
    // Every weighting twice and unweighted, interleaved.
    let which = [2, UNWEIGHTED, 0, 1, 2, 0, UNWEIGHTED, 1];
    let params: Vec<f64> = (0..which.len()).flat_map(|k| p[k % 2].clone()).collect();
    let np = law.params.len();
    for obj in [
        Objective::default(),
        Objective {
            loss: LossKind::Huber,
            space: Space::Log,
            delta: 0.02,
        },
    ] {
        for layout in [CpuLayout::Grid, CpuLayout::Points] {
            let grid = CpuLaw::with_layout(plan.clone(), &s, obj, layout).unwrap();
            let (mut f, mut g) = (vec![0.0; which.len()], vec![0.0; which.len() * np]);
            grid.evaluate_with(&params, &which, &resolved, &mut f, &mut g)
                .unwrap();
            for (k, &wk) in which.iter().enumerate() {
                // The reference: the sweep with its weights multiplied out.
                let mut t = s.clone();
                if wk != UNWEIGHTED {
                    let r = &resolved[wk as usize];
                    for (c, range) in s.curves.iter().enumerate() {
                        for i in range.clone() {
                            t.w[i] = s.w[i] * r.factor(c, i - range.start, i);
                        }
                    }
                }
                let (fr, gr) = plan.evaluate(&t, &p[k % 2], &obj, None);
                let what = format!("{obj:?} {layout:?} problem {k} (weighting {wk})");
                assert!(close(f[k], fr, 1e-12, 0.0), "{what}: {} vs {fr}", f[k]);
                let norm = gr.iter().map(|v| v * v).sum::<f64>().sqrt();
                for j in 0..np {
                    assert!(
                        close(g[k * np + j], gr[j], 1e-10, norm),
                        "{what} d/d{}: {} vs {}",
                        law.params[j],
                        g[k * np + j],
                        gr[j]
                    );
                }
            }
        }
    }
    // Errors: an index past the weightings, and a weighting of other curves.
    let grid = CpuLaw::new(plan, &s, Objective::default()).unwrap();
    let (mut f, mut g) = (vec![0.0; 1], vec![0.0; np]);
    let err = grid
        .evaluate_with(&p[0], &[3], &resolved, &mut f, &mut g)
        .unwrap_err();
    assert!(err.to_string().contains("out of range"), "{err}");
    let mut other = resolved[0].clone();
    other.mult.pop();
    let err = grid
        .evaluate_with(&p[0], &[0], &[other], &mut f, &mut g)
        .unwrap_err();
    assert!(err.to_string().contains("curves"), "{err}");
}

#[test]
fn large_sweeps_split_into_groups_match_the_reference_on_any_thread_count() {
    // 8 curves x 5000 values: several groups of spans in both layouts.
    let mut s = looplm_sweep(&[0.05, 0.13, 0.37, 1.0], &[1.0, 2.0], 5000);
    s.w[12_345] = 0.0;
    let law = CompiledLaw::from_formula(LOOPLM, &["N", "D", "T"]).unwrap();
    let params = vec![
        vec![1.7, 30.0, 0.12, 0.28, 18.0, 0.08, 0.33, 0.7, 0.4, 1.1],
        vec![2.0, 10.0, 0.01, 0.5, 5.0, 0.2, 0.5, 0.1, 1.0, 2.0],
    ];
    check_grid(&law, &s, &params, Objective::default(), "large");
    // The same bits on one thread as on several, one start or two.
    let plan = Plan::for_sweep(&law, &s);
    let np = law.params.len();
    for layout in [
        sweepfit::backend::CpuLayout::Grid,
        sweepfit::backend::CpuLayout::Points,
    ] {
        let grid =
            sweepfit::backend::CpuLaw::with_layout(plan.clone(), &s, Objective::default(), layout)
                .unwrap();
        let run = |threads: usize, k: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let flat: Vec<f64> = params[..k].iter().flatten().copied().collect();
            let (mut f, mut g) = (vec![0.0; k], vec![0.0; k * np]);
            pool.install(|| grid.evaluate(&flat, &mut f, &mut g));
            (f, g)
        };
        let (f1, g1) = run(1, 2);
        let (f3, g3) = run(3, 2);
        let (fs, gs) = run(3, 1);
        assert_eq!(f1, f3, "{layout:?}");
        assert_eq!(g1, g3, "{layout:?}");
        assert_eq!(fs[0], f1[0], "{layout:?}");
        assert_eq!(gs[..], g1[..np], "{layout:?}");
    }
}
