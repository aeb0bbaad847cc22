//! Laws of the whole training curve, on the shared multi-power-law data
//! (../shared/data/multipower): the schedules read by sweepfit meet their
//! logged rows, and the multi-power law evaluated over them by plain loops
//! over steps reproduces its authors' held-out table at their published
//! parameters. The loops fix the law's conventions (S1 sums the LR over
//! steps 0..t; the loss drop sums over k = 1..t with S_k(t) over k..t):
//! the reference the law language's step operators are tested against.

mod common;

use std::path::{Path, PathBuf};

use sweepfit::data::{Schedules, Table};

fn root() -> PathBuf {
    common::shared_data().join("multipower")
}

/// A run's logged rows: (step, loss).
fn logged(size: &str, run: &str) -> Vec<(usize, f64)> {
    let path = root().join(size).join(format!("{run}.csv"));
    let t = Table::read(&path).unwrap();
    let s = Schedules::read(&schedule_path(run)).unwrap();
    let steps = s
        .rows(&t, None, t.find("step").unwrap(), t.find("lr"), 0)
        .unwrap();
    let loss = t
        .numbers(t.find("loss").unwrap(), sweepfit::data::Check::Finite)
        .unwrap();
    steps.iter().map(|&(_, k)| k).zip(loss).collect()
}

fn schedule_path(run: &str) -> PathBuf {
    root().join("schedules").join(format!("{run}.csv"))
}

fn schedule(run: &str) -> Vec<f64> {
    Schedules::read(&schedule_path(run)).unwrap().runs[Schedules::EVERY_RUN]
        .lr
        .clone()
}

/// L(t) = L0 + A S1(t)^-alpha - B sum_{k=1..t} (lr[k-1] - lr[k])
/// (1 - (C lr[k]^-gamma S_k(t) + 1)^-beta), S1(t) = sum_{tau=0..t} lr,
/// S_k(t) = sum_{tau=k..t} lr: plain loops, no shortcut but skipping
/// steps where the LR does not change (their terms are 0).
fn multi_power(lr: &[f64], t: usize, p: &[f64; 7]) -> f64 {
    let [l0, a, alpha, b, c, beta, gamma] = *p;
    let s1: f64 = lr[..=t].iter().sum();
    let mut drop = 0.0;
    // k from t down, S_k(t) summed on the way.
    let mut sk = 0.0;
    for k in (1..=t).rev() {
        sk += lr[k];
        let d = lr[k - 1] - lr[k];
        if d == 0.0 {
            continue;
        }
        drop += d * (1.0 - (c * lr[k].powf(-gamma) * sk + 1.0).powf(-beta));
    }
    l0 + a * s1.powf(-alpha) - b * drop
}

/// The authors' published 25M parameters: L0, A, alpha, B, C, beta, gamma.
const PUBLISHED_25M: [f64; 7] = [
    3.04045406,
    0.52468604,
    0.50786857,
    363.78751622,
    2.06560812,
    0.58279013,
    0.64142257,
];

const TRAIN: [&str; 3] = ["cosine_24000", "constant_24000", "wsdcon_9"];
const HELD: [&str; 6] = [
    "constant_72000",
    "cosine_72000",
    "wsd_20000_24000",
    "wsdcon_18",
    "wsdcon_3",
    "wsdld_20000_24000",
];

#[test]
fn the_published_multi_power_fits_score_as_their_authors_table() {
    assert!(
        Path::new(&root()).is_dir(),
        "{} is missing",
        root().display()
    );
    // (size, published parameters, the authors' mean R², MAE, RMSE, mean
    // and worst relative error over the held-out curves, and their
    // training objective).
    let cases: [(&str, [f64; 7], [f64; 5], f64); 3] = [
        (
            "25",
            PUBLISHED_25M,
            [0.9988, 0.00376, 0.00465, 0.00110, 0.00409],
            2.9122e-4,
        ),
        (
            "100",
            [
                2.6514477,
                0.60115152,
                0.45295811,
                437.9464276,
                2.13245612,
                0.59785199,
                0.65523644,
            ],
            [0.9983, 0.00435, 0.00592, 0.00142, 0.00583],
            2.8096e-4,
        ),
        (
            "400",
            [
                2.37474466,
                0.65421216,
                0.42878731,
                523.42464371,
                2.02462735,
                0.59350493,
                0.63472457,
            ],
            [0.9978, 0.00484, 0.00730, 0.00168, 0.00995],
            5.7699e-4,
        ),
    ];
    for (size, p, table, objective) in cases {
        // The training objective: Huber (delta 1e-3) of log loss - log
        // pred, summed over the fitted rows but those at step 24000.
        let mut f = 0.0;
        for run in TRAIN {
            let lr = schedule(run);
            for (t, y) in logged(size, run) {
                if t == 24000 {
                    continue;
                }
                let r = (y.ln() - multi_power(&lr, t, &p).ln()).abs();
                f += if r <= 1e-3 {
                    0.5 * r * r
                } else {
                    1e-3 * (r - 0.5e-3)
                };
            }
        }
        // To the five digits given.
        assert!(
            (f - objective).abs() <= 0.5e-8,
            "{size}M: objective {f:.5e}, the authors' {objective:.5e}"
        );
        let mut sums = [0.0; 5];
        for run in HELD {
            let lr = schedule(run);
            let rows = logged(size, run);
            let n = rows.len() as f64;
            let mean = rows.iter().map(|r| r.1).sum::<f64>() / n;
            let (mut sse, mut sst, mut mae, mut rel, mut worst) = (0.0, 0.0, 0.0, 0.0, 0.0f64);
            for &(t, y) in &rows {
                let e = multi_power(&lr, t, &p) - y;
                sse += e * e;
                sst += (y - mean) * (y - mean);
                mae += e.abs() / n;
                rel += (e / y).abs() / n;
                worst = worst.max((e / y).abs());
            }
            for (s, v) in sums
                .iter_mut()
                .zip([1.0 - sse / sst, mae, (sse / n).sqrt(), rel, worst])
            {
                *s += v / HELD.len() as f64;
            }
        }
        // To the table's printed digits.
        let digits = [1e-4, 1e-5, 1e-5, 1e-5, 1e-5];
        for (i, ((got, want), tol)) in sums.iter().zip(table).zip(digits).enumerate() {
            assert!(
                (got - want).abs() <= 0.5 * tol + 1e-12,
                "{size}M, column {i}: {got} against the table's {want}"
            );
        }
    }
}

/// The multi-power law as sweepfit's law language writes it.
const MULTI_POWER: &str = "L0 + A*sum(k = 0..step: lr[k])^(-alpha) - B*sum(k = 1..step: \
     (lr[k-1] - lr[k])*(1 - (C*lr[k]^(-gamma)*sum(j = k..step: lr[j]) + 1)^(-beta)))";

fn compiled_multi_power() -> sweepfit::law::CompiledLaw {
    sweepfit::law::CompiledLaw::from_formula(MULTI_POWER, &["step", "schedule"]).unwrap()
}

fn handle(run: &str) -> f64 {
    sweepfit::law::steps::register_run(vec!["lr".into()], vec![schedule(run)]) as f64
}

#[test]
fn the_sum_operators_are_the_plain_loops_over_steps() {
    let law = compiled_multi_power();
    assert_eq!(
        law.params,
        ["L0", "A", "alpha", "B", "C", "gamma", "beta"],
        "parameters in order of appearance"
    );
    let p = [3.04, 0.52, 0.51, 363.8, 2.07, 0.58, 0.64];
    // The loop's order: L0, A, alpha, B, C, beta, gamma.
    let loop_p = [p[0], p[1], p[2], p[3], p[4], p[6], p[5]];
    for run in [
        "cosine_24000",
        "wsd_20000_24000",
        "wsdcon_9",
        "constant_24000",
    ] {
        let (h, lr) = (handle(run), schedule(run));
        for t in [
            1usize, 2, 100, 2159, 2160, 5000, 8000, 8001, 15999, 20500, 23999,
        ] {
            if t >= lr.len() {
                continue;
            }
            let want = multi_power(&lr, t, &loop_p);
            let got = law.eval(&[t as f64, h], &p);
            assert!(
                (got - want).abs() <= 1e-11 * want.abs(),
                "{run} at step {t}: {got} against the loop's {want}"
            );
        }
    }
}

#[test]
fn the_sums_of_many_rows_together_are_each_rows_sum_alone() {
    use sweepfit::law::dag::Node;
    use sweepfit::law::steps;
    let law = compiled_multi_power();
    let p = [3.04, 0.52, 0.51, 363.8, 2.07, 0.58, 0.64];
    // Every sum of the law (S1, LD and their derivatives) at its outer
    // values: the parameters it reads.
    let sums: Vec<(u32, Vec<f64>)> = law
        .graph
        .nodes()
        .iter()
        .filter_map(|n| match *n {
            Node::Steps(d, ops) => {
                let args = ops[2..2 + steps::n_args(d)]
                    .iter()
                    .map(|&o| match law.graph.node(o) {
                        Node::Param(i) => p[i as usize],
                        other => panic!("an outer value that is not a parameter: {other:?}"),
                    })
                    .collect();
                Some((d, args))
            }
            _ => None,
        })
        .collect();
    assert!(sums.len() >= 2, "{} sums", sums.len());
    // Rows of two runs, enough (step, k) pairs that they are spread over
    // the threads, with a step past one schedule's end and repeats.
    let (wsd, cos) = (handle("wsdcon_9"), handle("cosine_24000"));
    let mut cells: Vec<(f64, f64)> = (0..300)
        .map(|i| (if i % 2 == 0 { wsd } else { cos }, (60 * i + 7) as f64))
        .collect();
    cells.extend([(wsd, 16000.0), (cos, 23999.0), (cos, 23999.0), (cos, 1.5)]);
    // Each alone, on a thread of its own (its own cache of sums).
    let alone: Vec<Vec<f64>> = std::thread::scope(|s| {
        s.spawn(|| {
            sums.iter()
                .map(|(d, args)| {
                    cells
                        .iter()
                        .map(|&(h, t)| steps::eval(*d, h, t, args))
                        .collect()
                })
                .collect()
        })
        .join()
        .unwrap()
    });
    for ((d, args), want) in sums.iter().zip(&alone) {
        let mut got = vec![0.0; cells.len()];
        steps::eval_cells(*d, &|j| cells[j].0, &|j| cells[j].1, args, &mut got);
        for (j, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                g.to_bits() == w.to_bits(),
                "sum {d} at cell {j} {:?}: {g} together, {w} alone",
                cells[j]
            );
        }
    }
    // Past the end of its run's schedule, or not a step: no value.
    let last = cells.len() - 4;
    assert!(alone[0][last].is_nan() && alone[0][last + 3].is_nan());
    assert!(alone[0][last + 1].is_finite());
}

/// (f(p + e u_i) - f(p - e u_i)) / 2e.
fn central_difference<const N: usize>(
    f: impl Fn(&[f64; N]) -> f64,
    p: &[f64; N],
    i: usize,
    e: f64,
) -> f64 {
    let (mut a, mut b) = (*p, *p);
    a[i] += e;
    b[i] -= e;
    (f(&a) - f(&b)) / (2.0 * e)
}

#[test]
fn the_sums_derivatives_are_their_finite_differences() {
    let law = compiled_multi_power();
    let p = [3.04, 0.52, 0.51, 363.8, 2.07, 0.58, 0.64];
    for run in ["cosine_24000", "wsd_20000_24000"] {
        let h = handle(run);
        for t in [3000.0, 21000.0] {
            let x = [t, h];
            let mut g = vec![0.0; p.len()];
            law.eval_grad(&x, &p, &mut g);
            for i in 0..p.len() {
                let e = 1e-5 * p[i].abs();
                let fd = central_difference(|q| law.eval(&x, q), &p, i, e);
                assert!(
                    (g[i] - fd).abs() <= 1e-6 * fd.abs().max(1e-8),
                    "{run} step {t}, d/d{}: {} against {fd}",
                    law.params[i],
                    g[i]
                );
            }
        }
    }
}

#[test]
fn a_sum_written_wrongly_is_pointed_at() {
    let vars = ["step", "schedule"];
    // (formula, what the message says, the column of the caret, from 1).
    let cases = [
        ("E + sum(k 1..step: lr[k])", "expected '='", 11),
        ("E + sum(k = 1..step lr[k])", "expected ':'", 21),
        ("E + sum(k = 1:step: lr[k])", "expected '..'", 14),
        (
            "E + sum(k = a..step: lr[k])",
            "first step of a sum is a whole number",
            13,
        ),
        (
            "E + sum(k = 1..2*step: lr[k])",
            "last step of a sum is the row's step",
            16,
        ),
        (
            "E + sum(k = 1..step: lr[2*k])",
            "a step is k, the row's step",
            22,
        ),
        (
            "E + sum(k = 1..step: sum(j = k..step: lr[j]^2))",
            "a sum inside a sum adds a series alone",
            22,
        ),
        ("E + A*lr[step]", "reads a per-step series", 7),
        // Steps before the schedule's first, which would be NaN in every
        // row: the message says where the sum should start.
        (
            "E + sum(k = 0..step: lr[k-1] - lr[k])",
            "lr[k-1] reads step -1 when k = 0, before the schedule's step 0; start the sum at k = 1",
            22,
        ),
        (
            "E + sum(k = 1..step: lr[-2]*lr[k])",
            "lr[-2] reads step -2, before",
            22,
        ),
        (
            "E + sum(k = 0..step: sum(j = k-3..step: lr[j]))",
            "sum(j = k-3..step: lr[j]) reads step -3 when k = 0",
            30,
        ),
        (
            "E + sum(k = 1..step: a*b*c*d*e*lr[k])",
            "at most 4 can be",
            22,
        ),
    ];
    for (formula, says, col) in cases {
        let e = sweepfit::law::CompiledLaw::from_formula(formula, &vars).unwrap_err();
        let text = e.to_string();
        assert!(text.contains(says), "{formula}: {text}");
        assert_eq!(e.column(), col, "{formula}: {text}");
    }
    // Without the schedule variable the law cannot read a series.
    let e = sweepfit::law::CompiledLaw::from_formula("E + sum(k = 1..step: lr[k])", &["step"])
        .unwrap_err();
    assert!(e.to_string().contains("--schedule"), "{e}");
}

/// A long CSV of run `run`'s logged rows (step, lr, loss) at 25M.
fn long_csv(dir: &Path, runs: &[&str], lr_scale: f64) -> PathBuf {
    let mut s = String::from("run,step,lr,loss\n");
    for run in runs {
        let lr = schedule(run);
        for (t, y) in logged("25", run) {
            s.push_str(&format!("{run},{t},{},{y}\n", lr[t] * lr_scale));
        }
    }
    let p = dir.join("runs.csv");
    std::fs::write(&p, s).unwrap();
    p
}

#[test]
fn schedule_files_that_do_not_meet_the_rows_are_errors_naming_them() {
    let dir = common::tempdir();
    let d = dir.path();
    let schedules = root().join("schedules");
    // One schedule of the two runs: the other run's first row is named.
    let manifest = d.join("one.csv");
    std::fs::write(
        &manifest,
        format!(
            "run,file\ncosine_24000,{}\n",
            schedules.join("cosine_24000.csv").display()
        ),
    )
    .unwrap();
    let data = long_csv(d, &["cosine_24000", "wsdcon_9"], 1.0);
    let fit = |data: &Path, law: &str, schedule: Option<&Path>| {
        let mut args = vec![
            "fit".to_string(),
            data.display().to_string(),
            "--law".into(),
            law.into(),
            "--starts".into(),
            "2".into(),
            "--backend".into(),
            "cpu".into(),
        ];
        if let Some(s) = schedule {
            args.extend(["--schedule".into(), s.display().to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = common::sweepfit(d, &args);
        run.assert_failed("a fit whose schedules do not meet its rows");
        run.stderr
    };
    let e = fit(&data, "multi-power", Some(&manifest));
    assert!(
        e.contains("runs.csv line 173: run 'wsdcon_9' has no schedule") && e.contains("one.csv"),
        "{e}"
    );
    // No schedule at all for a law that sums along the steps.
    let e = fit(&data, "multi-power", None);
    assert!(e.contains("--schedule FILE"), "{e}");
    // A schedule for a law that sums along no steps.
    let all = d.join("all.csv");
    std::fs::write(
        &all,
        format!(
            "run,file\ncosine_24000,{}\nwsdcon_9,{}\n",
            schedules.join("cosine_24000.csv").display(),
            schedules.join("wsdcon_9.csv").display()
        ),
    )
    .unwrap();
    let e = fit(&data, "L0 + A*step^(-alpha)", Some(&all));
    assert!(e.contains("sums along no steps"), "{e}");
    // A sum that reads past a row's step, at the schedule's last step.
    // The last logged step is 23920, the schedule's last 23999.
    let e = fit(
        &data,
        "L0 + A*sum(k = 0..step: lr[k+80])^(-alpha)",
        Some(&all),
    );
    assert!(
        e.contains("run 'cosine_24000' is logged at step 23920, and the law reads its schedule 80 steps past that")
            && e.contains("ends at step 23999"),
        "{e}"
    );
    // A fixed index past a run's schedule (wsdcon_9's ends at 15999):
    // every row would be undefined; the first row of that run is named.
    let e = fit(
        &data,
        "L0 + A*sum(k = 0..step: lr[k] + lr[20000])^(-alpha)",
        Some(&all),
    );
    assert!(
        e.contains("runs.csv line 173: the law's sums read step 20000 of every run's schedule")
            && e.contains("wsdcon_9.csv that this row's run follows ends at step"),
        "{e}"
    );
    // Rows whose logged lr is not their schedule's: the run's schedule
    // was another run's.
    let wrong = long_csv(d, &["cosine_24000", "wsdcon_9"], 1.5);
    let e = fit(&wrong, "multi-power", Some(&all));
    assert!(e.contains("logs lr") && e.contains("cosine_24000"), "{e}");
}

#[test]
fn a_new_schedule_is_predicted_as_the_plain_loop_at_the_fitted_parameters() {
    let dir = common::tempdir();
    let d = dir.path();
    let data = long_csv(d, &["cosine_24000", "constant_24000", "wsdcon_9"], 1.0);
    let schedules = d.join("schedules.csv");
    let mut m = String::from("run,file\n");
    for run in TRAIN {
        m.push_str(&format!(
            "{run},{}\n",
            root()
                .join("schedules")
                .join(format!("{run}.csv"))
                .display()
        ));
    }
    std::fs::write(&schedules, m).unwrap();
    let out = d.join("fit");
    common::ok(
        d,
        &[
            "fit",
            data.to_str().unwrap(),
            "--law",
            "multi-power",
            "--schedule",
            schedules.to_str().unwrap(),
            "--loss",
            "huber",
            "--space",
            "log",
            "--starts",
            "2",
            "--max-iter",
            "20",
            "--backend",
            "cpu",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    // Redrawn from fit.json and pred.csv (the schedules are not there):
    // a panel per run, named by the run, its prediction pred.csv's, and
    // under it its learning rate from step 0 to its last (plot
    // --schedule).
    let fitted = sweepfit::lawfit::read_law_fit(&out.join("fit.json")).unwrap();
    let table = Table::read(&out.join("pred.csv")).unwrap();
    // Without the schedule handles of the process that fitted it.
    assert!(table.find("schedule").is_none(), "{:?}", table.headers);
    let given = Schedules::read(&schedules).unwrap();
    let (panels, opts) = sweepfit::lawfit::panels(
        &fitted.law,
        fitted.axis.as_deref(),
        &fitted.report,
        &table,
        Some(&given),
    )
    .unwrap();
    // Its own rows: the fit's R² alone.
    let title = opts.title.unwrap();
    assert!(
        title.contains("R² = ") && !title.contains("here"),
        "{title}"
    );
    for p in &panels {
        let lr = schedule(&p.label);
        let last = p.tokens.iter().copied().fold(0.0, f64::max) as usize;
        let want: Vec<(f64, f64)> = (0..=last).map(|k| (k as f64, lr[k])).collect();
        assert_eq!(p.schedule, want, "{}", p.label);
    }
    common::ok(
        d,
        &[
            "plot",
            "--fit",
            out.join("fit.json").to_str().unwrap(),
            "--schedule",
            schedules.to_str().unwrap(),
            "--out",
            d.join("grid.svg").to_str().unwrap(),
        ],
    );
    let svg = std::fs::read_to_string(d.join("grid.svg")).unwrap();
    let texts: Vec<&str> = svg
        .split("</text>")
        .filter_map(|t| t.rsplit('>').next().map(str::trim))
        .collect();
    assert_eq!(texts.iter().filter(|&&t| t == "LR").count(), 3, "{texts:?}");
    let written = table
        .numbers(table.find("pred").unwrap(), sweepfit::data::Check::Finite)
        .unwrap();
    let mut labels: Vec<&str> = panels.iter().map(|p| p.label.as_str()).collect();
    labels.sort_unstable();
    let mut want = TRAIN.to_vec();
    want.sort_unstable();
    assert_eq!(labels, want);
    let mut drawn: Vec<f64> = panels.iter().flat_map(|p| p.pred.iter().copied()).collect();
    let mut all = written.clone();
    drawn.sort_by(f64::total_cmp);
    all.sort_by(f64::total_cmp);
    assert_eq!(drawn, all, "the panels draw pred.csv's predictions");
    let fit: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("fit.json")).unwrap()).unwrap();
    let p: Vec<f64> = ["L0", "A", "alpha", "B", "C", "beta", "gamma"]
        .iter()
        .map(|n| fit["params"][n].as_f64().unwrap())
        .collect();
    let wsd = root().join("schedules").join("wsd_20000_24000.csv");
    let run = common::ok(
        d,
        &[
            "predict",
            "--fit",
            out.join("fit.json").to_str().unwrap(),
            "--schedule",
            wsd.to_str().unwrap(),
            "--at",
            "step=100,20000,21000,23999",
        ],
    );
    let lr = Schedules::read(&wsd).unwrap().runs[Schedules::EVERY_RUN]
        .lr
        .clone();
    let p: [f64; 7] = p.try_into().unwrap();
    let rows: Vec<&str> = run.stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), 4, "{}", run.stdout);
    for row in rows {
        let f: Vec<&str> = row.split(',').collect();
        let (t, pred): (usize, f64) = (f[1].parse().unwrap(), f[2].parse().unwrap());
        let want = multi_power(&lr, t, &p);
        assert!(
            (pred - want).abs() <= 1e-10 * want,
            "step {t}: predicted {pred}, the loop says {want}"
        );
    }
}

#[test]
fn rows_of_runs_never_trained_are_predicted_and_drawn_from_their_schedules() {
    let dir = common::tempdir();
    let d = dir.path();
    // A fit of the 25M runs at the published parameters (every one fixed).
    let published = PUBLISHED_25M;
    let names = ["L0", "A", "alpha", "B", "C", "beta", "gamma"];
    let fixes: Vec<String> = names
        .iter()
        .zip(published)
        .map(|(n, v)| format!("{n}={v}"))
        .collect();
    let args: Vec<&str> = fixes.iter().flat_map(|f| ["--fix", f.as_str()]).collect();
    let runs = [TRAIN[0], TRAIN[1], TRAIN[2], HELD[0]];
    let (out, _) = fit_split_runs(d, &runs, &args);
    let fitted = sweepfit::lawfit::read_law_fit(&out.join("fit.json")).unwrap();

    // Two runs it never saw, their logged rows and their schedules as the
    // long form holds them (run,step,lr), in memory as a data frame's.
    let new = ["wsd_20000_24000", "wsdcon_3"];
    let mut rows = String::from("run,step,loss\n");
    let (mut runs, mut steps, mut lrs) = (Vec::new(), Vec::new(), Vec::new());
    for run in new {
        for (t, y) in logged("25", run) {
            rows.push_str(&format!("{run},{t},{y}\n"));
        }
        for (k, lr) in schedule(run).into_iter().enumerate() {
            runs.push(run.to_string());
            steps.push(k as f64);
            lrs.push(lr);
        }
    }
    std::fs::write(d.join("new.csv"), &rows).unwrap();
    let col = |name: &str, c: sweepfit::data::TextColumn| (name.to_string(), c);
    let mut run_col = sweepfit::data::TextColumn::with_capacity(runs.len());
    for r in &runs {
        run_col.push(r);
    }
    let memory = Table::from_columns(
        "the schedules given",
        vec![
            col("run", run_col),
            col("step", sweepfit::data::TextColumn::from_numbers(steps)),
            col("lr", sweepfit::data::TextColumn::from_numbers(lrs)),
        ],
    )
    .unwrap();
    let schedules = Schedules::from_table(&memory).unwrap();
    let p: [f64; 7] = published;
    let want = |run: &str, t: usize| multi_power(&schedule(run), t, &p);

    // Every row as the plain loop over its run's schedule.
    let mut table = Table::read(&d.join("new.csv")).unwrap();
    let pred = sweepfit::lawfit::predict_table(&fitted, &mut table, Some(&schedules))
        .unwrap()
        .pred;
    let mut r = 0;
    for run in new {
        for (t, _) in logged("25", run) {
            let w = want(run, t);
            assert!(
                (pred[r] - w).abs() <= 1e-10 * w,
                "{run} step {t}: {} against {w}",
                pred[r]
            );
            r += 1;
        }
    }
    assert_eq!(r, pred.len());
    // Without schedules the rows cannot be predicted, and say so.
    let mut bare = Table::read(&d.join("new.csv")).unwrap();
    let e = sweepfit::lawfit::predict_table(&fitted, &mut bare, None)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("schedules"), "{e}");

    // Drawn from the rows alone (no pred column): the same predictions.
    let table = Table::read(&d.join("new.csv")).unwrap();
    let (panels, opts) = sweepfit::lawfit::panels(
        &fitted.law,
        fitted.axis.as_deref(),
        &fitted.report,
        &table,
        Some(&schedules),
    )
    .unwrap();
    assert_eq!(panels.len(), 2);
    // Scored on these rows, the fit's R² beside it.
    let title = opts.title.unwrap();
    assert!(title.contains(" here (the fit's "), "{title}");
    for p in &panels {
        assert!(!p.schedule.is_empty(), "{}", p.label);
        for (&t, &y) in p.tokens.iter().zip(&p.pred) {
            let w = want(&p.label, t as usize);
            assert!(
                (y - w).abs() <= 1e-10 * w,
                "{} step {t}: {y} against {w}",
                p.label
            );
        }
    }
    let e = sweepfit::lawfit::panels(
        &fitted.law,
        fitted.axis.as_deref(),
        &fitted.report,
        &table,
        None,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("--schedule"), "{e}");

    // `predict --at` past the end of a run's schedule is refused, naming
    // the run and its last step (the law has no value there).
    let fit_json = out.join("fit.json");
    let wsdcon = schedule_path("wsdcon_3");
    let run = common::sweepfit(
        d,
        &[
            "predict",
            "--fit",
            fit_json.to_str().unwrap(),
            "--schedule",
            wsdcon.to_str().unwrap(),
            "--at",
            "step=100,16000",
        ],
    );
    run.assert_failed("predict past the schedule's end");
    let e = &run.stderr;
    assert!(e.contains("step 16000") && e.contains("15999"), "{e}");
}

#[test]
fn held_out_curves_are_scored_one_by_one_as_their_mean() {
    let dir = common::tempdir();
    let runs = [
        "cosine_24000",
        "constant_24000",
        "wsd_20000_24000",
        "wsdcon_3",
    ];
    let (out, run) = fit_split_runs(dir.path(), &runs, &["--starts", "1", "--max-iter", "5"]);
    // Each held-out curve scored from pred.csv, then the mean over them.
    let pred = Table::read(&out.join("pred.csv")).unwrap();
    let col = |n: &str| pred.find(n).unwrap();
    let (run_c, split_c) = (col("run"), col("split"));
    let num = |c: usize| pred.numbers(c, sweepfit::data::Check::Finite).unwrap();
    let (loss, p) = (num(col("loss")), num(col("pred")));
    let mut means = [0.0; 5];
    let held: Vec<&str> = runs
        .iter()
        .copied()
        .filter(|r| !TRAIN.contains(r))
        .collect();
    for r in &held {
        let rows: Vec<usize> = (0..pred.rows())
            .filter(|&i| &pred.columns[run_c][i] == *r && &pred.columns[split_c][i] == "test")
            .collect();
        let n = rows.len() as f64;
        let mean = rows.iter().map(|&i| loss[i]).sum::<f64>() / n;
        let sse: f64 = rows.iter().map(|&i| (p[i] - loss[i]).powi(2)).sum();
        let sst: f64 = rows.iter().map(|&i| (loss[i] - mean).powi(2)).sum();
        let rel = |i: usize| 100.0 * ((p[i] - loss[i]) / loss[i]).abs();
        let v = [
            1.0 - sse / sst,
            (sse / n).sqrt(),
            rows.iter().map(|&i| (p[i] - loss[i]).abs()).sum::<f64>() / n,
            rows.iter().map(|&i| rel(i)).sum::<f64>() / n,
            rows.iter().map(|&i| rel(i)).fold(0.0, f64::max),
        ];
        for (m, x) in means.iter_mut().zip(v) {
            *m += x / held.len() as f64;
        }
    }
    let fit: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("fit.json")).unwrap()).unwrap();
    let curves = fit["test"]["per_curve"].as_array().expect("test.per_curve");
    assert_eq!(curves.len(), 2);
    let json_mean = |k: &str| curves.iter().map(|c| c[k].as_f64().unwrap()).sum::<f64>() / 2.0;
    for (k, want) in ["r2", "rmse", "mae", "mape", "worst_pct"].iter().zip(means) {
        let got = json_mean(k);
        assert!(
            (got - want).abs() <= 1e-9 * want.abs(),
            "{k}: {got} against {want}"
        );
    }
    assert!(
        run.stdout.contains("test, mean over its 2 curves: R²"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_fit_with_every_parameter_fixed_scores_the_held_out_runs_as_the_authors_table() {
    let dir = common::tempdir();
    let published = [
        ("L0", "3.04045406"),
        ("A", "0.52468604"),
        ("alpha", "0.50786857"),
        ("B", "363.78751622"),
        ("C", "2.06560812"),
        ("beta", "0.58279013"),
        ("gamma", "0.64142257"),
    ];
    let fixes: Vec<String> = published.iter().map(|(n, v)| format!("{n}={v}")).collect();
    let mut args = vec!["--loss", "huber", "--delta", "1e-3", "--space", "log"];
    for f in &fixes {
        args.extend(["--fix", f.as_str()]);
    }
    let all: Vec<&str> = TRAIN.iter().chain(&HELD).copied().collect();
    let (out, run) = fit_split_runs(dir.path(), &all, &args);
    assert!(
        run.stdout.contains("every parameter fixed"),
        "{}",
        run.stdout
    );
    let fit: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("fit.json")).unwrap()).unwrap();
    // The authors' training objective is the sum over the fitted rows.
    let rows = fit["points"].as_f64().unwrap();
    let f = fit["objective"]["value"].as_f64().unwrap() * rows;
    assert!((f - 2.9122e-4).abs() <= 0.5e-8, "objective {f:.5e}");
    // Their table: the mean over the six held-out runs of R², MAE, RMSE,
    // mean and worst relative error, to its printed digits.
    let curves = fit["test"]["per_curve"].as_array().unwrap();
    assert_eq!(curves.len(), 6);
    let mean = |k: &str, scale: f64| {
        curves.iter().map(|c| c[k].as_f64().unwrap()).sum::<f64>() / 6.0 * scale
    };
    let got = [
        mean("r2", 1.0),
        mean("mae", 1.0),
        mean("rmse", 1.0),
        mean("mape", 0.01),
        mean("worst_pct", 0.01),
    ];
    let table = [0.9988, 0.00376, 0.00465, 0.00110, 0.00409];
    let digits = [1e-4, 1e-5, 1e-5, 1e-5, 1e-5];
    for (i, ((g, t), tol)) in got.iter().zip(table).zip(digits).enumerate() {
        assert!(
            (g - t).abs() <= 0.5 * tol + 1e-12,
            "column {i}: {g} against {t}"
        );
    }
}

/// The multi-power law fitted to the 25M runs `runs` (the authors' three
/// fitted, the others held out with `--test-where split=test`; rows at
/// step 24000 dropped, as they do), read from one long CSV with their
/// schedules from a manifest, both written in `dir`, with `extra`
/// options. Returns the output folder and the run.
fn fit_split_runs(dir: &Path, runs: &[&str], extra: &[&str]) -> (PathBuf, common::Run) {
    let mut csv = String::from("run,step,loss,split\n");
    let mut m = String::from("run,file\n");
    for run in runs {
        let split = if TRAIN.contains(run) { "train" } else { "test" };
        for (t, y) in logged("25", run) {
            if t != 24000 {
                csv.push_str(&format!("{run},{t},{y},{split}\n"));
            }
        }
        m.push_str(&format!("{run},{}\n", schedule_path(run).display()));
    }
    let (data, schedules, out) = (
        dir.join("runs.csv"),
        dir.join("schedules.csv"),
        dir.join("fit"),
    );
    std::fs::write(&data, csv).unwrap();
    std::fs::write(&schedules, m).unwrap();
    let mut args = vec![
        "fit",
        data.to_str().unwrap(),
        "--law",
        "multi-power",
        "--schedule",
        schedules.to_str().unwrap(),
        "--test-where",
        "split=test",
        "--backend",
        "cpu",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let run = common::ok(dir, &args);
    (out, run)
}

/// A Huber fit in log space with a small delta (the authors' objective)
/// from starts whose residuals all lie beyond delta: the search's
/// curvature is psi(r)/r (reweighted least squares), not Huber's psi',
/// which is 0 there and gave Levenberg-Marquardt no step to take (every
/// start ended as line_search_failed at its start). On exact targets from
/// the plain loop over four schedules of 600 steps (warm-up then cosine,
/// WSD, step decay, constant), every start converges and the fit finds
/// the parameters the targets came from.
#[test]
fn a_huber_fit_in_log_space_from_far_starts_reaches_the_truth() {
    const STEPS: usize = common::STEPS;
    let schedules = common::schedules();
    let truth = [3.04, 0.525, 0.508, 363.8, 2.07, 0.583, 0.641];
    let mut data = String::from("run,step,loss\n");
    for (c, s) in schedules.iter().enumerate() {
        for t in (5..STEPS - 60 * c).step_by(17) {
            data.push_str(&format!("r{c},{t},{}\n", multi_power(s, t, &truth)));
        }
    }
    let dir = common::tempdir();
    std::fs::write(dir.path().join("runs.csv"), data).unwrap();
    std::fs::write(dir.path().join("lr.csv"), common::schedules_csv()).unwrap();
    common::ok(
        dir.path(),
        &[
            "fit",
            "runs.csv",
            "--law",
            "multi-power",
            "--schedule",
            "lr.csv",
            "--loss",
            "huber",
            "--delta",
            "1e-3",
            "--space",
            "log",
            "--starts",
            "8",
            "--backend",
            "cpu",
            "--out",
            "fit",
        ],
    );
    let text = std::fs::read_to_string(dir.path().join("fit/fit.json")).unwrap();
    let fit: serde_json::Value = serde_json::from_str(&text).unwrap();
    let counts = &fit["starts"]["status_counts"];
    assert_eq!(counts["converged"], 8, "{counts}");
    let f = fit["objective"]["value"].as_f64().unwrap();
    assert!(f < 1e-12, "objective {f}");
    for (name, want) in ["L0", "A", "alpha", "B", "C", "beta", "gamma"]
        .iter()
        .zip(truth)
    {
        let got = fit["params"][name].as_f64().unwrap();
        assert!(
            (got - want).abs() <= 1e-3 * want,
            "{name}: {got} against {want}"
        );
    }
}

/// Without `--starts`, a law that sums along the steps runs its starts in
/// waves of 8 and stops once they find no new minimum; the fit is then
/// the one `--starts N` gives for the N starts it ran, bit for bit (the
/// same first draws, each start ending where it would in one batch). On
/// every 10th row of the multi-power law's 25M training runs, most starts
/// end at one minimum.
#[test]
fn a_law_of_the_steps_stops_its_starts_once_they_agree() {
    common::shared_data();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/multipower");
    let (manifest, schedules) = (
        examples.join("train-25m.csv"),
        examples.join("schedules.csv"),
    );
    let dir = common::tempdir();
    let fit = |starts: Option<&str>, out: &str| {
        let mut args = vec![
            "fit",
            "--manifest",
            manifest.to_str().unwrap(),
            "--stride",
            "10",
            "--max-tokens",
            "23999",
            "--var",
            "step=tokens",
            "--law",
            "multi-power",
            "--schedule",
            schedules.to_str().unwrap(),
            "--loss",
            "huber",
            "--delta",
            "1e-3",
            "--space",
            "log",
            "--backend",
            "cpu",
            "--out",
            out,
        ];
        if let Some(n) = starts {
            args.extend(["--starts", n]);
        }
        common::ok(dir.path(), &args);
        let text = std::fs::read_to_string(dir.path().join(out).join("fit.json")).unwrap();
        serde_json::from_str::<serde_json::Value>(&text).unwrap()
    };
    let mut waves = fit(None, "waves");
    let ran = waves["starts"]["count"].as_u64().unwrap();
    assert!(ran % 8 == 0 && ran < 128, "{}", waves["starts"]);
    let notes = waves["notes"].as_array().unwrap();
    let said = format!("ran {ran} of up to 128 starts");
    assert!(
        notes.iter().any(|n| n.as_str().unwrap().starts_with(&said)),
        "{notes:?}"
    );
    let mut given = fit(Some(&ran.to_string()), "given");
    for f in [&mut waves, &mut given] {
        let m = f.as_object_mut().unwrap();
        for k in ["seconds", "notes"] {
            m.remove(k);
        }
        // Batched calls: the waves make more, each of fewer starts.
        m["starts"].as_object_mut().unwrap().remove("evaluations");
    }
    assert!(waves == given, "{waves}\n{given}");
}

/// The LR-annealing law (Tissue et al.) by its own recursion: S2 sums a
/// momentum of the LR's decreases, m_i = lambda m_(i-1) + (lr[i-1] -
/// lr[i]), over steps 1..t; S1 sums the LR over steps 0..t.
fn lr_annealing(lr: &[f64], t: usize, p: &[f64; 5]) -> f64 {
    let [l0, a, alpha, c, lambda] = *p;
    let s1: f64 = lr[..=t].iter().sum();
    let (mut m, mut s2) = (0.0, 0.0);
    for i in 1..=t {
        m = lambda * m + (lr[i - 1] - lr[i]);
        s2 += m;
    }
    l0 + a * s1.powf(-alpha) - c * s2
}

/// The built-in law file's S2, a sum with a geometric kernel in step - k,
/// is summed by a recurrence along the steps: it must be the paper's
/// recursion at every step, for a slow and a fast decay, and its
/// derivatives their finite differences.
#[test]
fn the_lr_annealing_law_is_its_momentum_recursion() {
    let law = sweepfit::law::builtin_law("lr-annealing")
        .unwrap()
        .compile("lr-annealing")
        .unwrap();
    assert_eq!(law.params, ["L0", "A", "alpha", "C", "lambda"]);
    for lambda in [0.999, 0.9] {
        let p = [3.0, 0.52, 0.5, 300.0, lambda];
        for run in ["cosine_24000", "wsdcon_9", "wsd_20000_24000"] {
            let (h, lr) = (handle(run), schedule(run));
            for t in [1usize, 2, 2160, 2161, 8000, 15999, 20000, 20001, 23999] {
                if t >= lr.len() {
                    continue;
                }
                let want = lr_annealing(&lr, t, &p);
                let x = [t as f64, h];
                let got = law.eval(&x, &p);
                assert!(
                    (got - want).abs() <= 1e-11 * want.abs(),
                    "{run} at step {t}, lambda {lambda}: {got} against the recursion's {want}"
                );
                let mut g = vec![0.0; p.len()];
                law.eval_grad(&x, &p, &mut g);
                for i in 0..p.len() {
                    // lambda's step stays well inside 1 - lambda.
                    let e = if i == 4 {
                        1e-4 * (1.0 - lambda)
                    } else {
                        1e-6 * p[i].abs()
                    };
                    let fd = central_difference(|q| lr_annealing(&lr, t, q), &p, i, e);
                    // Early steps, where S1 is tiny, have a loss in the
                    // hundreds: the difference's rounding, a few ulps of
                    // it over 2e.
                    let rounding = 8.0 * f64::EPSILON * want.abs() / (2.0 * e);
                    assert!(
                        (g[i] - fd).abs() <= 1e-6 * fd.abs() + rounding,
                        "{run} step {t}, lambda {lambda}, d/d{}: {} against {fd}",
                        law.params[i],
                        g[i]
                    );
                }
            }
        }
    }
}

/// A sum whose body is G(k) + H(k) b^(step - k + c) (summed by recurrence)
/// against the same sum written with exp and log (summed pair by pair):
/// values and gradients agree, with an offset exponent, a sum that stops
/// short of the row's step, and a part without the power.
#[test]
fn a_geometric_sum_is_the_general_sum_it_stands_for() {
    let vars = ["step", "schedule"];
    let pairs = [
        (
            "E + sum(k = 1..step: (lr[k-1] - lr[k]) * (1 - q^(step - k + 1)) / (1 - q))",
            "E + sum(k = 1..step: (lr[k-1] - lr[k]) * (1 - exp((step - k + 1)*log(q))) / (1 - q))",
        ),
        (
            "E + A*sum(k = 0..step-1: lr[k]*k + c*lr[k]^2 * q^(step - k - 0.5))",
            "E + A*sum(k = 0..step-1: lr[k]*k + c*lr[k]^2 * exp((step - k - 0.5)*log(q)))",
        ),
    ];
    for (geometric, general) in pairs {
        let a = sweepfit::law::CompiledLaw::from_formula(geometric, &vars).unwrap();
        let b = sweepfit::law::CompiledLaw::from_formula(general, &vars).unwrap();
        assert_eq!(a.params, b.params);
        let by_recurrence = |law: &sweepfit::law::CompiledLaw| {
            law.graph.nodes().iter().any(|n| match n {
                sweepfit::law::dag::Node::Steps(d, _) => sweepfit::law::steps::by_recurrence(*d),
                _ => false,
            })
        };
        assert!(by_recurrence(&a), "{geometric} is summed by recurrence");
        assert!(!by_recurrence(&b), "{general} is summed pair by pair");
        let p: Vec<f64> = a
            .params
            .iter()
            .map(|n| match n.as_str() {
                "q" => 0.998,
                "E" => 2.5,
                _ => 0.7,
            })
            .collect();
        for run in ["cosine_24000", "wsdcon_9"] {
            let (h, steps) = (handle(run), schedule(run).len());
            for t in [1usize, 5, 3000, 23999] {
                if t >= steps {
                    continue;
                }
                let x = [t as f64, h];
                let (mut ga, mut gb) = (vec![0.0; p.len()], vec![0.0; p.len()]);
                let fa = a.eval_grad(&x, &p, &mut ga);
                let fb = b.eval_grad(&x, &p, &mut gb);
                assert!(
                    (fa - fb).abs() <= 1e-10 * fb.abs(),
                    "{geometric} on {run} at {t}: {fa} against {fb}"
                );
                for (i, (u, v)) in ga.iter().zip(&gb).enumerate() {
                    assert!(
                        (u - v).abs() <= 1e-9 * v.abs().max(1.0),
                        "{geometric} on {run} at {t}, d/d{}: {u} against {v}",
                        a.params[i]
                    );
                }
            }
        }
    }
}

/// `simulate --law multi-power --schedule FILE`: one curve per run at the
/// --at steps within its schedule (a run of 16,000 steps keeps fewer
/// rows than one of 72,000), each loss the plain loop's at the given
/// parameters; a fit given the same schedule reads the file back. A law
/// that sums along the steps needs the schedule, one that does not is
/// refused it, and a run that keeps no row is named.
#[test]
fn a_law_of_the_steps_is_simulated_from_a_schedule_file() {
    let dir = common::tempdir();
    let d = dir.path();
    let runs = ["wsdcon_18", "constant_72000"];
    let manifest = d.join("lr.csv");
    let mut text = String::from("run,file\n");
    for r in runs {
        text.push_str(&format!("{r},{}\n", schedule_path(r).display()));
    }
    std::fs::write(&manifest, text).unwrap();
    let names = ["L0", "A", "alpha", "B", "C", "beta", "gamma"];
    let params: Vec<String> = names
        .iter()
        .zip(PUBLISHED_25M)
        .map(|(n, v)| format!("{n}={v}"))
        .collect();
    let mut args = vec!["simulate", "--law", "multi-power", "--schedule", "lr.csv"];
    for p in &params {
        args.extend(["--param", p]);
    }
    let sim = |extra: &[&str], out: &str| {
        let mut a = args.clone();
        a.extend_from_slice(extra);
        a.extend(["--out", out]);
        common::sweepfit(d, &a)
    };
    sim(&["--at", "step=1000:30000:30", "--noise", "0"], "sim.csv").assert_ok("simulate");
    let t = Table::read(&d.join("sim.csv")).unwrap();
    assert_eq!(t.headers, ["run", "step", "loss"]);
    let (steps, loss) = (
        t.numbers(1, sweepfit::data::Check::Finite).unwrap(),
        t.numbers(2, sweepfit::data::Check::Finite).unwrap(),
    );
    let mut per_run = std::collections::HashMap::new();
    for r in 0..t.rows() {
        let run = &t.columns[0][r];
        *per_run.entry(run.to_string()).or_insert(0) += 1;
        let want = multi_power(&schedule(run), steps[r] as usize, &PUBLISHED_25M);
        assert!(
            (loss[r] - want).abs() <= 1e-12 * want,
            "{run} step {}: {} against {want}",
            steps[r],
            loss[r]
        );
    }
    // Steps 1000, 2000, ..., 30000: wsdcon_18 ends at 15999.
    assert_eq!(per_run["constant_72000"], 30);
    assert_eq!(per_run["wsdcon_18"], 15);
    let truth: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("sim.csv.truth.json")).unwrap())
            .unwrap();
    assert_eq!(truth["schedule"], "lr.csv");
    // Read back by a fit with every parameter fixed at the truth.
    let mut fit = vec![
        "fit",
        "sim.csv",
        "--law",
        "multi-power",
        "--schedule",
        "lr.csv",
    ];
    for p in &params {
        fit.extend(["--fix", p]);
    }
    fit.extend(["--backend", "cpu", "--out", "fit"]);
    common::ok(d, &fit);
    let f: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("fit/fit.json")).unwrap()).unwrap();
    assert!(
        f["objective"]["value"].as_f64().unwrap() < 1e-20,
        "{}",
        f["objective"]
    );
    // Without the schedule, with it for a law without sums, and a run with
    // no step in its schedule.
    let bare = common::sweepfit(
        d,
        &[
            "simulate",
            "--law",
            "multi-power",
            "--at",
            "step=1:10:10",
            "--out",
            "a.csv",
        ],
    );
    bare.assert_failed("a law of the steps without --schedule");
    assert!(bare.stderr.contains("--schedule FILE"), "{}", bare.stderr);
    let plain = common::sweepfit(
        d,
        &[
            "simulate",
            "--law",
            "E + A*N^(-a)",
            "--param",
            "E=1",
            "--param",
            "A=1",
            "--param",
            "a=0.5",
            "--at",
            "N=1:10:10",
            "--schedule",
            "lr.csv",
            "--out",
            "b.csv",
        ],
    );
    plain.assert_failed("a schedule for a law without sums");
    assert!(
        plain.stderr.contains("sums along no steps"),
        "{}",
        plain.stderr
    );
    let late = sim(&["--at", "step=20000:30000:3"], "c.csv");
    late.assert_failed("a run with no rows");
    assert!(
        late.stderr
            .contains("run 'wsdcon_18' has no rows: its schedule ends at step 15999"),
        "{}",
        late.stderr
    );
    assert!(!d.join("c.csv").exists());
}
