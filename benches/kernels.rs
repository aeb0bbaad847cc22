//! Criterion benches of the compiled law's evaluators (value + full
//! gradient): the looplm law on simulated looplm20 sweeps, throughput in
//! point-evaluations (points x starts) per second, on the CPU
//! (`CpuLaw`) and, when wgpu finds an adapter, the GPU (`GpuLaw`).
//! The `weighted` cells give every start its own Poisson weighting, as a
//! point bootstrap does (the worst case: every point's count is hashed per
//! start). The `law-cpu` and `law-gpu` cells time other laws on the sweeps
//! of `sweepfit bench --law`; `gauss-newton` the moments least squares
//! runs on beside the gradient. `sweepfit bench` covers the full grid and
//! fits; these are for tracking the kernels between commits.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use sweepfit::backend::gpu::{self, AdapterFilter, GpuDevice, GpuLaw};
use sweepfit::backend::weights::{resolve_curves, Resolved};
use sweepfit::backend::{CpuLaw, CpuLayout, Evaluator, Weighting};
use sweepfit::bench::BenchLaw;
use sweepfit::law::plan::{Plan, Sweep};
use sweepfit::objective::Objective;

/// (points, starts): a single start on a small sweep (the per-call cost
/// dominates) and a fit-sized batch.
const SIZES: [(usize, usize); 2] = [(10_000, 1), (100_000, 128)];
/// Only on a hardware GPU: a software adapter takes seconds per call here.
const LARGE: (usize, usize) = (1_000_000, 1024);
/// Built-in laws of the `law-cpu` and `law-gpu` cells: a sum of powers
/// (axis term hoisted per grid value) and one with a def of two curve
/// variables.
const LAWS: [&str; 2] = ["chinchilla", "vocab"];

fn label((points, starts): (usize, usize)) -> String {
    format!("{points}x{starts}")
}

/// A twin through the evaluator interface, its weightings registered.
type Eval = Box<dyn Evaluator>;

/// The looplm20 sweep of `points` points, `starts` parameter vectors near
/// its truth, and one Poisson weighting per start, resolved on its curves.
fn looplm20(points: usize, starts: usize) -> (BenchLaw, Sweep, Vec<f64>, Vec<Resolved>) {
    let law = BenchLaw::looplm20().expect("the looplm law");
    let sweep = law.sweep(points, 0);
    let params = law.params(starts, 0);
    let weightings = (0..starts as u32)
        .map(|k| {
            let w = Weighting {
                poisson: Some(k),
                ..Weighting::uniform(sweep.curves.len())
            };
            resolve_curves(&w, &sweep.curves, &sweep.w).expect("a weighting")
        })
        .collect();
    (law, sweep, params, weightings)
}

/// Plain and weighted evaluations of looplm20 sweeps of `sizes` by the
/// evaluator `make` builds (None: skipped).
fn bench_evaluator(
    c: &mut Criterion,
    group: &str,
    sizes: &[(usize, usize)],
    mut make: impl FnMut(&Plan, &Sweep, &[Resolved]) -> Option<Eval>,
) {
    let mut g = c.benchmark_group(group);
    for &(points, starts) in sizes {
        let (law, sweep, params, weightings) = looplm20(points, starts);
        let plan = Plan::for_sweep(&law.law, &sweep);
        let Some(mut eval) = make(&plan, &sweep, &weightings) else {
            continue;
        };
        let np = law.law.params.len();
        let (mut f, mut gr) = (vec![0.0; starts], vec![0.0; starts * np]);
        let which: Vec<u32> = (0..starts as u32).collect();
        g.throughput(Throughput::Elements((points * starts) as u64));
        g.bench_function(BenchmarkId::new("plain", label((points, starts))), |b| {
            b.iter(|| eval.evaluate(&params, &mut f, &mut gr).expect("evaluate"))
        });
        g.bench_function(BenchmarkId::new("weighted", label((points, starts))), |b| {
            b.iter(|| {
                eval.evaluate_weighted(&params, &which, &mut f, &mut gr)
                    .expect("evaluate_weighted")
            })
        });
    }
    g.finish();
}

/// The CPU's evaluator in `layout` (None: the one it picks).
fn cpu_evaluator(
    plan: &Plan,
    sweep: &Sweep,
    weightings: &[Resolved],
    layout: Option<CpuLayout>,
) -> Option<Eval> {
    let obj = Objective::default();
    let mut grid = match layout {
        Some(l) => CpuLaw::with_layout(plan.clone(), sweep, obj, l),
        None => CpuLaw::new(plan.clone(), sweep, obj),
    }
    .expect("a CPU layout");
    grid.set_weightings(weightings).expect("set_weightings");
    Some(Box::new(grid))
}

fn cpu(c: &mut Criterion) {
    bench_evaluator(c, "evaluate/cpu", &SIZES, |plan, sweep, ws| {
        cpu_evaluator(plan, sweep, ws, None)
    });
}

/// The Gauss-Newton moments (f, gradient and J^T W J, what
/// Levenberg-Marquardt runs on) beside the plain evaluation, on the
/// looplm20 grid at a fit-sized batch: their ratio is what a
/// least-squares iteration costs over an L-BFGS one.
fn cpu_gauss_newton(c: &mut Criterion) {
    let (points, starts) = (100_000, 128);
    let (law, sweep, params, _) = looplm20(points, starts);
    let grid = CpuLaw::new(
        Plan::for_sweep(&law.law, &sweep),
        &sweep,
        Objective::default(),
    )
    .expect("a CPU layout");
    assert!(grid.has_gauss_newton(), "looplm on its grid is separable");
    let np = law.law.params.len();
    let (mut f, mut gr, mut h) = (
        vec![0.0; starts],
        vec![0.0; starts * np],
        vec![0.0; starts * np * np],
    );
    let mut g = c.benchmark_group("gauss-newton/cpu");
    g.throughput(Throughput::Elements((points * starts) as u64));
    let id = label((points, starts));
    g.bench_function(BenchmarkId::new("gradient", &id), |b| {
        b.iter(|| grid.evaluate(&params, &mut f, &mut gr))
    });
    g.bench_function(BenchmarkId::new("moments", &id), |b| {
        b.iter(|| grid.evaluate_gn(&params, &mut f, &mut gr, &mut h))
    });
    g.finish();
}

/// The compiled vocab law (laws/vocab.toml, with its def Nv = V*d) on the
/// point layout: tabular data of one point per run and no shared axis, as
/// final losses are, fit-sized batch.
fn cpu_compiled_points(c: &mut Criterion) {
    use rand::{Rng, SeedableRng};
    let (points, starts) = (1_000, 128);
    let law = sweepfit::law::builtin_law("vocab")
        .expect("a built-in law")
        .compile("vocab")
        .expect("vocab compiles");
    let name = |v: &str| {
        law.params
            .iter()
            .position(|p| p == v)
            .expect("a vocab parameter")
    };
    // E, A1, alpha1, A2, alpha2, B, beta; variables Nnv, V, d, D in
    // billions, thousands, thousands and billions.
    let truth: Vec<(usize, f64)> = [
        ("E", 2.0),
        ("A1", 0.5),
        ("alpha1", 0.3),
        ("A2", 0.2),
        ("alpha2", 0.4),
        ("B", 1.0),
        ("beta", 0.3),
    ]
    .iter()
    .map(|&(p, v)| (name(p), v))
    .collect();
    let at = |scale: &[f64]| {
        let mut p = vec![0.0; law.params.len()];
        for (&(i, v), s) in truth.iter().zip(scale) {
            p[i] = v * s;
        }
        p
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let truth_p = at(&[1.0; 7]);
    let (mut vars, mut y) = (Vec::new(), Vec::new());
    for _ in 0..points {
        let v = [
            rng.random_range(0.03..3.0),
            rng.random_range(4.0..96.0),
            rng.random_range(0.5..4.0),
            rng.random_range(1.0..100.0),
        ];
        y.push(law.eval(&v, &truth_p) + rng.random_range(-0.01..0.01));
        vars.extend(v);
    }
    let w = vec![1.0 / points as f64; points];
    let sweep = Sweep::new(4, (0..points).map(|i| i..i + 1).collect(), vars, y, w, None);
    let flat: Vec<f64> = (0..starts)
        .flat_map(|_| {
            let scale: Vec<f64> = (0..7).map(|_| rng.random_range(0.8..1.25)).collect();
            at(&scale)
        })
        .collect();
    let plan = Plan::for_sweep(&law, &sweep);
    let cells = CpuLaw::new(plan, &sweep, Objective::default()).expect("point layout");
    let (mut f, mut gr) = (vec![0.0; starts], vec![0.0; starts * law.params.len()]);
    let mut g = c.benchmark_group("evaluate/cpu-law-points");
    g.throughput(Throughput::Elements((points * starts) as u64));
    g.bench_function(BenchmarkId::new("compiled", label((points, starts))), |b| {
        b.iter(|| cells.evaluate(&flat, &mut f, &mut gr))
    });
    g.finish();
}

/// Both CPU layouts of the compiled LoopLM law on the same fit-sized
/// batch: the shared token grid against one ln and exp per point.
fn cpu_layouts(c: &mut Criterion) {
    let (points, starts) = SIZES[1];
    let (law, sweep, params, weightings) = looplm20(points, starts);
    let plan = Plan::for_sweep(&law.law, &sweep);
    let np = law.law.params.len();
    let (mut f, mut gr) = (vec![0.0; starts], vec![0.0; starts * np]);
    let mut g = c.benchmark_group("evaluate/cpu-layout");
    g.throughput(Throughput::Elements((points * starts) as u64));
    for layout in [CpuLayout::Points, CpuLayout::Grid] {
        let mut eval = cpu_evaluator(&plan, &sweep, &weightings, Some(layout)).expect("layout");
        g.bench_function(
            BenchmarkId::new(format!("{layout:?}"), label((points, starts))),
            |b| b.iter(|| eval.evaluate(&params, &mut f, &mut gr).expect("evaluate")),
        );
    }
    g.finish();
}

/// A built-in law's `sweepfit bench --law` sweep of `points` points, its
/// plan, and `starts` parameter vectors (flat).
fn law_sweep(name: &str, points: usize, starts: usize) -> (BenchLaw, Sweep, Plan, Vec<f64>) {
    let law = BenchLaw::builtin(name).expect("a built-in law");
    let sweep = law.sweep(points, 0);
    let plan = Plan::for_sweep(&law.law, &sweep);
    let params = law.params(starts, 0);
    (law, sweep, plan, params)
}

/// The CPU's compiled evaluator of each law of LAWS (the shared-axis grid
/// layout), fit-sized batch.
fn law_cpu(c: &mut Criterion) {
    let (points, starts) = SIZES[1];
    let mut g = c.benchmark_group("evaluate/law-cpu");
    g.throughput(Throughput::Elements((points * starts) as u64));
    for name in LAWS {
        let (law, sweep, plan, params) = law_sweep(name, points, starts);
        let np = law.law.params.len();
        let cells = CpuLaw::new(plan, &sweep, Objective::default()).expect("a CPU layout");
        let (mut f, mut gr) = (vec![0.0; starts], vec![0.0; starts * np]);
        g.bench_function(BenchmarkId::new(name, label((points, starts))), |b| {
            b.iter(|| cells.evaluate(&params, &mut f, &mut gr))
        });
    }
    g.finish();
}

/// The GPU kernel generated from each law of LAWS, on the same sweeps and
/// batch as `law_cpu`.
fn law_gpu(c: &mut Criterion) {
    use sweepfit::backend::gpu::Layout;
    let dev = match gpu::instance()
        .and_then(|i| gpu::select_adapter(&i, AdapterFilter::Any))
        .and_then(|a| GpuDevice::open(&a))
    {
        Ok(d) => d,
        Err(e) => {
            println!("evaluate/law-gpu: skipped, {e:#}");
            return;
        }
    };
    let (points, starts) = SIZES[1];
    let mut g = c.benchmark_group("evaluate/law-gpu");
    g.throughput(Throughput::Elements((points * starts) as u64));
    for name in LAWS.iter().chain(&["looplm"]) {
        let (law, sweep, plan, params) = law_sweep(name, points, starts);
        let np = law.law.params.len();
        // Both layouts: the grid (picked on these sweeps) and the points.
        for layout in [Layout::Grid, Layout::Points] {
            let obj = Objective::default();
            let mut kernel = match GpuLaw::with_layout(&dev, &plan, &sweep, obj, None, layout) {
                Ok(k) => k,
                Err(e) => {
                    println!("evaluate/law-gpu/{name}/{layout:?}: skipped, {e:#}");
                    continue;
                }
            };
            let (mut f, mut gr) = (vec![0.0; starts], vec![0.0; starts * np]);
            let id = BenchmarkId::new(format!("{name}/{layout:?}"), label((points, starts)));
            g.bench_function(id, |b| {
                b.iter(|| kernel.evaluate(&params, &mut f, &mut gr).expect("evaluate"))
            });
        }
    }
    g.finish();
}

/// The device's floor per evaluation: an empty submission and its wait.
/// `evaluate/gpu/plain/10000x1` beside it is the whole per-call cost.
fn gpu_round_trip(c: &mut Criterion) {
    let dev = match gpu::instance()
        .and_then(|i| gpu::select_adapter(&i, AdapterFilter::Any))
        .and_then(|a| GpuDevice::open(&a))
    {
        Ok(d) => d,
        Err(e) => {
            println!("overhead/gpu: skipped, {e:#}");
            return;
        }
    };
    c.bench_function("overhead/gpu/round-trip", |b| {
        b.iter(|| dev.round_trip().expect("round trip"))
    });
}

fn gpu(c: &mut Criterion) {
    let opened = gpu::instance()
        .and_then(|i| gpu::select_adapter(&i, AdapterFilter::Any))
        .and_then(|a| Ok((a.get_info().device_type, GpuDevice::open(&a)?)));
    let (kind, dev) = match opened {
        Ok(d) => d,
        Err(e) => {
            println!("evaluate/gpu: skipped, {e:#}");
            return;
        }
    };
    let mut sizes = SIZES.to_vec();
    if kind != wgpu::DeviceType::Cpu {
        sizes.push(LARGE);
    }
    bench_evaluator(c, "evaluate/gpu", &sizes, |plan, sweep, ws| {
        let obj = Objective::default();
        let mut kernel = match GpuLaw::new(&dev, plan, sweep, obj, None) {
            Ok(k) => k,
            Err(e) => {
                println!("evaluate/gpu {} points: skipped, {e:#}", sweep.points());
                return None;
            }
        };
        kernel.set_weightings(ws).expect("set_weightings");
        Some(Box::new(kernel))
    });
}

criterion_group! {
    name = benches;
    // Few, short samples: these run on 2-core CI machines too.
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = cpu, cpu_gauss_newton, cpu_layouts, cpu_compiled_points, law_cpu, gpu_round_trip, gpu, law_gpu
}
criterion_main!(benches);
