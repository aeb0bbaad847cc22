//! Laws that sum along their runs' steps (the multi-power and LR-annealing
//! laws) on the GPU against the CPU evaluator of the same plan: objective
//! and gradient for many parameter vectors, both layouts, with the work
//! split forced small, plain and weighted, on schedules of every shape
//! (warm-up then cosine, warm-up-stable-decay, step decay, constant).
//!
//! Tolerances (the GPU sums in f32, in runs of 64 steps, the CPU in f64):
//! the objective within 1e-4 relative; each gradient entry within 1e-3 of
//! the sum over points of its terms' absolute values (w |rho'| |dpred/dp|),
//! the scale its f32 rounding follows.
//!
//! Without a GPU adapter these tests fail when SWEEPFIT_REQUIRE_GPU=1 (as in
//! CI, on Mesa's software Vulkan driver) and otherwise skip with a printed
//! reason.

use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

mod common;
use common::adapter;
use sweepfit::backend::gpu::{GpuDevice, GpuLaw, GpuLimits, Layout};
use sweepfit::backend::weights::{resolve_curves, Weighting, UNWEIGHTED};
use sweepfit::backend::CpuLaw;
use sweepfit::law::plan::{Plan, Sweep};
use sweepfit::law::steps::register_run;
use sweepfit::law::{builtin_law, CompiledLaw};
use sweepfit::objective::{LossKind, Objective, Space};

/// A sweep of `law` (variables step and schedule) over the schedules'
/// runs, rows every few steps, targets from the law at `truth` with
/// relative noise up to `noise`.
fn sweep(law: &CompiledLaw, truth: &[f64], noise: f64, seed: u64) -> Sweep {
    assert_eq!(law.variables, ["step", "schedule"]);
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut vars, mut y, mut w, mut curves) = (vec![], vec![], vec![], vec![]);
    for (c, lr) in common::schedules().into_iter().enumerate() {
        let h = register_run(vec!["lr".into()], vec![lr]) as f64;
        let start = y.len();
        // Ragged: runs logged to different steps, one to its last.
        for t in (5..common::STEPS - 60 * c)
            .step_by(17)
            .chain((c == 0).then_some(common::STEPS - 1))
        {
            let x = [t as f64, h];
            let pred = law.eval(&x, truth);
            vars.extend(x);
            y.push(pred * (1.0 + rng.random_range(-noise..noise)));
            w.push(rng.random_range(0.5..1.5));
        }
        curves.push(start..y.len());
    }
    let total: f64 = w.iter().sum();
    w.iter_mut().for_each(|v| *v /= total);
    Sweep::new(2, curves, vars, y, w, Some(0))
}

fn device() -> Option<Arc<GpuDevice>> {
    adapter().map(|a| GpuDevice::open(&a).expect("open the GPU"))
}

fn compiled(name: &str) -> CompiledLaw {
    builtin_law(name).unwrap().compile(name).unwrap()
}

/// Parameter vectors near `truth`.
fn params_near(truth: &[f64], k: usize, seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..k)
        .flat_map(|_| {
            truth
                .iter()
                .map(|&v| v * rng.random_range(0.8..1.25))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Per start and parameter, the sum over points of w |rho'(r)| |dr/dpred|
/// |dpred/dp|, with point weights multiplied by `factor(start, curve,
/// position, point)`.
fn grad_scale(
    law: &CompiledLaw,
    sweep: &Sweep,
    obj: Objective,
    params: &[f64],
    factor: &dyn Fn(usize, usize, usize, usize) -> f64,
) -> Vec<f64> {
    let np = law.params.len();
    let mut out = vec![0.0; params.len()];
    let mut dp = vec![0.0; np];
    for (k, p) in params.chunks(np).enumerate() {
        for (c, r) in sweep.curves.iter().enumerate() {
            for i in r.clone() {
                let w = sweep.w[i] * factor(k, c, i - r.start, i);
                let x = &sweep.vars[i * 2..i * 2 + 2];
                let pred = law.eval_grad(x, p, &mut dp);
                let (res, drdp) = match obj.space {
                    Space::Linear => (pred - sweep.y[i], 1.0),
                    Space::Log => (pred.ln() - sweep.y[i], 1.0 / pred),
                };
                let drho = obj.rho(res).1;
                for j in 0..np {
                    out[k * np + j] += w * (drho * drdp * dp[j]).abs();
                }
            }
        }
    }
    out
}

fn compare(np: usize, cpu: (&[f64], &[f64]), gpu: (&[f64], &[f64]), scale: &[f64], what: &str) {
    for k in 0..cpu.0.len() {
        let (fc, fg) = (cpu.0[k], gpu.0[k]);
        assert!(fc.is_finite(), "{what} start {k}: cpu {fc}");
        assert!(
            (fc - fg).abs() <= 1e-4 * fc.abs(),
            "{what} start {k}: objective cpu {fc} gpu {fg}"
        );
        for i in 0..np {
            let (gc, gg) = (cpu.1[k * np + i], gpu.1[k * np + i]);
            let floor = 1e-3 * scale[k * np + i];
            assert!(
                (gc - gg).abs() <= floor,
                "{what} start {k}: d/dp{i} cpu {gc} gpu {gg} (floor {floor})"
            );
        }
    }
}

fn check(dev: &Arc<GpuDevice>, name: &str, truth: &[f64]) {
    let law = compiled(name);
    let np = law.params.len();
    let sw = sweep(&law, truth, 0.01, 1);
    let plan = Plan::for_sweep(&law, &sw);
    assert_eq!(
        GpuLaw::layout_for(&plan, &sw).unwrap(),
        Layout::Grid,
        "{name}"
    );
    let params = params_near(truth, 40, 2);
    let k = params.len() / np;
    let objectives = [
        Objective {
            loss: LossKind::Mse,
            space: Space::Linear,
            delta: 1.0,
        },
        // The multi-power law's authors' objective.
        Objective {
            loss: LossKind::Huber,
            space: Space::Log,
            delta: 1e-3,
        },
    ];
    let weighting = Weighting {
        config: (0..sw.curves.len())
            .map(|c| if c == 1 { 0.0 } else { 1.0 + c as f64 })
            .collect(),
        first: sw.curves.iter().map(|r| r.len() as u32 - 3).collect(),
        poisson: Some(5),
    };
    let ws = vec![resolve_curves(&weighting, &sw.curves, &sw.w).unwrap()];
    let which: Vec<u32> = (0..k as u32)
        .map(|i| if i % 2 == 0 { 0 } else { UNWEIGHTED })
        .collect();
    for obj in objectives {
        let cpu = CpuLaw::new(plan.clone(), &sw, obj).unwrap();
        let (mut fc, mut gc) = (vec![0.0; k], vec![0.0; k * np]);
        cpu.evaluate(&params, &mut fc, &mut gc);
        let (mut fcw, mut gcw) = (vec![0.0; k], vec![0.0; k * np]);
        cpu.evaluate_with(&params, &which, &ws, &mut fcw, &mut gcw)
            .unwrap();
        let scale = grad_scale(&law, &sw, obj, &params, &|_, _, _, _| 1.0);
        let scale_w = grad_scale(&law, &sw, obj, &params, &|s, c, pos, i| {
            if which[s] == UNWEIGHTED {
                1.0
            } else {
                ws[0].factor(c, pos, i)
            }
        });
        let small = GpuLimits {
            max_points_per_chunk: 16,
            max_starts_per_dispatch: 64,
            max_groups: 2,
        };
        for limits in [None, Some(small)] {
            for layout in [Layout::Grid, Layout::Points] {
                let what = format!("{name} {obj:?} {limits:?} {layout:?}");
                let mut gpu = GpuLaw::with_layout(dev, &plan, &sw, obj, limits, layout)
                    .unwrap_or_else(|e| panic!("{what}: {e:#}"));
                let (mut fg, mut gg) = (vec![0.0; k], vec![0.0; k * np]);
                gpu.evaluate(&params, &mut fg, &mut gg).unwrap();
                compare(np, (&fc, &gc), (&fg, &gg), &scale, &what);
                gpu.set_weightings(&ws).unwrap();
                gpu.evaluate_weighted(&params, &which, &mut fg, &mut gg)
                    .unwrap();
                compare(np, (&fcw, &gcw), (&fg, &gg), &scale_w, &what);
            }
        }
    }
}

#[test]
fn the_multi_power_law_matches_the_cpu() {
    let Some(dev) = device() else { return };
    // L0, A, alpha, B, C, gamma, beta: the authors' 25M fit.
    check(
        &dev,
        "multi-power",
        &[3.04, 0.525, 0.508, 363.8, 2.07, 0.641, 0.583],
    );
}

#[test]
fn the_lr_annealing_law_matches_the_cpu() {
    let Some(dev) = device() else { return };
    let law = compiled("lr-annealing");
    assert_eq!(law.params, ["L0", "A", "alpha", "C", "lambda"]);
    check(&dev, "lr-annealing", &[3.0, 0.5, 0.5, 300.0, 0.75]);
}

/// Rows of the 25M runs (../shared/data/multipower) at the steps `keep`
/// lists for each; `None`: every row before step 24,000, as the authors
/// fit.
fn authors_sweep(law: &CompiledLaw, keep: &[(&str, Option<&[usize]>)]) -> Sweep {
    use sweepfit::data::{Check, Schedules, Table};
    let root = common::shared_data().join("multipower");
    let (mut vars, mut y, mut curves) = (vec![], vec![], vec![]);
    for &(run, steps_kept) in keep {
        let path = root.join("schedules").join(format!("{run}.csv"));
        let s = Schedules::read(&path).unwrap();
        let lr = s.runs[Schedules::EVERY_RUN].lr.clone();
        let h = register_run(vec!["lr".into()], vec![lr]) as f64;
        let t = Table::read(&root.join("25").join(format!("{run}.csv"))).unwrap();
        let steps = s.rows(&t, None, t.find("step").unwrap(), None, 0).unwrap();
        let loss = t.numbers(t.find("loss").unwrap(), Check::Finite).unwrap();
        let start = y.len();
        for (&(_, k), l) in steps.iter().zip(loss) {
            if steps_kept.map_or(k < 24_000, |kept| kept.contains(&k)) {
                vars.extend([k as f64, h]);
                y.push(l.ln());
            }
        }
        curves.push(start..y.len());
    }
    assert_eq!(law.variables, ["step", "schedule"]);
    let n = y.len();
    Sweep::new(2, curves, vars, y, vec![1.0 / n as f64; n], Some(0))
}

/// On the authors' data and objective, at their parameters and at the
/// optimum of their objective: the three runs of the 25M protocol, every
/// row, where the sums run over up to 23,920 steps. (The software driver
/// CI runs on ends a shader's loops after 65,535 iterations in all: the
/// evaluator gives each workgroup one point there.)
#[test]
fn the_multi_power_law_matches_the_cpu_on_its_authors_runs() {
    let Some(dev) = device() else { return };
    let law = compiled("multi-power");
    let sw = authors_sweep(
        &law,
        &[
            ("cosine_24000", None),
            ("constant_24000", None),
            ("wsdcon_9", None),
        ],
    );
    assert_eq!(sw.points(), 171 + 171 + 95, "the protocol's training rows");
    let plan = Plan::for_sweep(&law, &sw);
    let obj = Objective {
        loss: LossKind::Huber,
        space: Space::Log,
        delta: 1e-3,
    };
    // L0, A, alpha, B, C, gamma, beta: published, and the optimum.
    let params = [
        3.04045406,
        0.52468604,
        0.50786857,
        363.78751622,
        2.06560812,
        0.64142257,
        0.58279013,
        3.0050,
        0.5630,
        0.4910,
        750.0,
        0.380,
        0.900,
        0.110,
    ];
    let np = law.params.len();
    let k = params.len() / np;
    let cpu = CpuLaw::new(plan.clone(), &sw, obj).unwrap();
    let (mut fc, mut gc) = (vec![0.0; k], vec![0.0; k * np]);
    cpu.evaluate(&params, &mut fc, &mut gc);
    let scale = grad_scale(&law, &sw, obj, &params, &|_, _, _, _| 1.0);
    let mut gpu = GpuLaw::new(&dev, &plan, &sw, obj, None).unwrap();
    let (mut fg, mut gg) = (vec![0.0; k], vec![0.0; k * np]);
    gpu.evaluate(&params, &mut fg, &mut gg).unwrap();
    compare(np, (&fc, &gc), (&fg, &gg), &scale, "authors' runs");
}

/// Where the driver would end the loops early (a row whose sums alone run
/// past its budget: step 66,032 of a cosine run changes its rate at every
/// step), the evaluator refuses to be built, naming the limit and the
/// row, rather than fit silently wrong.
#[test]
fn a_sweep_past_the_drivers_loop_limit_is_refused() {
    let Some(dev) = device() else { return };
    let law = compiled("multi-power");
    let sw = authors_sweep(
        &law,
        &[
            ("cosine_24000", None),
            ("cosine_72000", Some(&[2160, 66032])),
        ],
    );
    let plan = Plan::for_sweep(&law, &sw);
    let obj = Objective {
        loss: LossKind::Mse,
        space: Space::Linear,
        delta: 1.0,
    };
    let built = GpuLaw::with_layout(&dev, &plan, &sw, obj, None, Layout::Points);
    let Some(budget) = dev.loop_budget() else {
        // A hardware GPU has no such limit: the whole of a run evaluates.
        built.unwrap();
        return;
    };
    let Err(e) = built else {
        panic!("a sweep past the loop limit was taken");
    };
    let msg = format!("{e:#}");
    assert!(
        msg.contains(&budget.to_string())
            && msg.contains("step 66032")
            && msg.contains("--backend cpu"),
        "{msg}"
    );
}

/// A fit on the GPU reaches the CPU's optimum: the same objective to 1e-9
/// and the same parameters to 1e-6 (the search runs in f32 on the GPU;
/// the best start finishes in f64 on the CPU on both).
#[test]
fn a_fit_on_the_gpu_reaches_the_cpus_optimum() {
    if device().is_none() {
        return;
    }
    let law = compiled("multi-power");
    let truth = [3.04, 0.525, 0.508, 363.8, 2.07, 0.641, 0.583];
    let sw = sweep(&law, &truth, 1e-3, 3);
    let dir = common::tempdir();
    let mut data = String::from("run,step,loss\n");
    for (c, curve) in sw.curves.iter().enumerate() {
        for i in curve.clone() {
            data.push_str(&format!("r{c},{},{}\n", sw.vars[2 * i], sw.y[i]));
        }
    }
    std::fs::write(dir.path().join("runs.csv"), data).unwrap();
    std::fs::write(dir.path().join("lr.csv"), common::schedules_csv()).unwrap();
    let fit = |backend: &str| -> serde_json::Value {
        let out = format!("fit-{backend}");
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
                "mse",
                "--starts",
                "8",
                "--backend",
                backend,
                "--out",
                &out,
            ],
        );
        let text = std::fs::read_to_string(dir.path().join(out).join("fit.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    };
    let (cpu, gpu) = (fit("cpu"), fit("gpu"));
    let f = |v: &serde_json::Value| v["objective"]["value"].as_f64().unwrap();
    assert!(
        (f(&cpu) - f(&gpu)).abs() <= 1e-9 * f(&cpu),
        "objective cpu {} gpu {}",
        f(&cpu),
        f(&gpu)
    );
    for name in &law.params {
        let (a, b) = (
            cpu["params"][name].as_f64().unwrap(),
            gpu["params"][name].as_f64().unwrap(),
        );
        assert!((a - b).abs() <= 1e-6 * a.abs(), "{name}: cpu {a} gpu {b}");
    }
}
