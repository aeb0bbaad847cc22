//! Helpers shared by the integration tests: the GPU adapter rule, test
//! sweeps, the evaluators' reference ([`evaluator`]), and running the
//! `sweepfit` binary. Each test crate uses a part of them.
#![allow(dead_code)]

pub mod evaluator;

use std::path::{Path, PathBuf};
use std::process::Command;

use sweepfit::data::Dataset;
use sweepfit::simulate::{simulate_looplm20, SimOptions};

/// Steps in each test schedule.
pub const STEPS: usize = 600;

/// Schedules of every shape, `STEPS` long, peak 3e-4 after 40 steps of
/// warm-up.
pub fn schedules() -> Vec<Vec<f64>> {
    let peak = 3e-4;
    let warm = |k: usize| peak * (k as f64 + 1.0) / 40.0;
    let shape = |f: &dyn Fn(usize) -> f64| -> Vec<f64> {
        (0..STEPS)
            .map(|k| if k < 40 { warm(k) } else { f(k) })
            .collect()
    };
    let n = STEPS as f64;
    vec![
        shape(&|k| {
            let x = (k as f64 - 40.0) / (n - 40.0);
            peak * (0.1 + 0.45 * (1.0 + (std::f64::consts::PI * x).cos()))
        }),
        shape(&|k| {
            if k < 450 {
                peak
            } else {
                peak * (1.0 - 0.9 * (k as f64 - 450.0) / (n - 450.0))
            }
        }),
        shape(&|k| match k {
            k if k < 300 => peak,
            k if k < 450 => peak / 3.0,
            _ => peak / 10.0,
        }),
        shape(&|_| peak),
    ]
}

/// [`schedules`] as a schedule file `run,step,lr`, the runs named r0..r3.
pub fn schedules_csv() -> String {
    let mut out = String::from("run,step,lr\n");
    for (c, lr) in schedules().iter().enumerate() {
        for (k, v) in lr.iter().enumerate() {
            out.push_str(&format!("r{c},{k},{v}\n"));
        }
    }
    out
}

/// 20 curves (5 sizes x 4 recurrent steps) of `points` points each.
pub fn sweep(points: usize) -> Dataset {
    simulate_looplm20(&SimOptions {
        points_per_curve: points,
        ..SimOptions::default()
    })
}

/// The GPU adapter to test on. Without one, panics when
/// SWEEPFIT_REQUIRE_GPU=1 (as in CI, which runs the GPU tests on Mesa's
/// software Vulkan driver) and otherwise returns None after printing why
/// the test skips.
pub fn adapter() -> Option<wgpu::Adapter> {
    use sweepfit::backend::gpu::{self, AdapterFilter};
    match gpu::instance().and_then(|inst| gpu::select_adapter(&inst, AdapterFilter::Any)) {
        Ok(a) => Some(a),
        Err(e) => {
            if std::env::var("SWEEPFIT_REQUIRE_GPU").as_deref() == Ok("1") {
                panic!("SWEEPFIT_REQUIRE_GPU=1 but no GPU adapter: {e}");
            }
            eprintln!("skipping GPU test: {e}");
            None
        }
    }
}

/// What a run of the binary printed and how it ended.
pub struct Run {
    pub ok: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Everything it printed, for failure messages.
    pub fn dump(&self) -> String {
        format!(
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }

    pub fn assert_ok(&self, what: &str) {
        assert!(self.ok, "{what} failed:\n{}", self.dump());
    }

    pub fn assert_failed(&self, what: &str) {
        assert!(
            !self.ok && self.code.is_some(),
            "{what} should have failed with an exit code:\n{}",
            self.dump()
        );
    }
}

/// Run the binary with `args` in `cwd`. Whatever happens, it must exit
/// with a code and not panic.
pub fn sweepfit(cwd: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_sweepfit"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("cannot start the sweepfit binary");
    let run = Run {
        ok: out.status.success(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(
        run.code.is_some() && !run.stderr.contains("panicked") && !run.stdout.contains("panicked"),
        "sweepfit {args:?} crashed:\n{}",
        run.dump()
    );
    run
}

/// Run the binary and require success.
pub fn ok(cwd: &Path, args: &[&str]) -> Run {
    let run = sweepfit(cwd, args);
    run.assert_ok(&format!("sweepfit {args:?}"));
    run
}

/// A fresh folder under the build's own scratch space (target/tmp), not
/// the system's temporary folder: tests must pass whatever TMPDIR is, and
/// nothing there may resolve `../shared` by accident.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("test-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("a folder under the build's scratch space")
}

/// The shared data folder beside the repository (`../shared/data` from its
/// root). Tests that need it fail, never skip, without it: a skipped test
/// would pass for a user who never ran it.
pub fn shared_data() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    assert!(
        dir.is_dir(),
        "{} is missing: these tests read the shared data beside the repository \
         (../shared/data from its root)",
        dir.display()
    );
    dir
}

/// Variables and parameters of [`random_formula`].
pub const FORMULA_VARS: [&str; 2] = ["x", "y"];
pub const FORMULA_PARAMS: [&str; 4] = ["p0", "p1", "p2", "p3"];

/// A random smooth formula over x, y and p0..p3, using every smooth
/// function of the language, that stays finite for
/// positive inputs of order one: bases of powers, logs and square roots
/// are made >= 1 first.
pub fn random_formula(rng: &mut rand::rngs::StdRng, depth: u32) -> String {
    use rand::Rng;
    if depth == 0 || rng.random_bool(0.25) {
        return match rng.random_range(0..3) {
            0 => FORMULA_VARS[rng.random_range(0..2)].to_string(),
            1 => FORMULA_PARAMS[rng.random_range(0..4)].to_string(),
            _ => format!("{:.3}", rng.random_range(0.5..2.0)),
        };
    }
    let a = random_formula(rng, depth - 1);
    let b = random_formula(rng, depth - 1);
    let pos = |e: &str| format!("(1 + ({e})^2)");
    match rng.random_range(0..11) {
        0 => format!("({a} + {b})"),
        1 => format!("({a} - {b})"),
        2 => format!("({a} * {b})"),
        3 => format!("({a} / {})", pos(&b)),
        4 => format!("{}^(0.3*{b})", pos(&a)),
        5 => format!("exp(0.2*{a})"),
        6 => format!("log({})", pos(&a)),
        7 => format!("sqrt({})", pos(&a)),
        8 => format!("tanh(0.3*{a}) * {b}"),
        9 => {
            let f = ["sin", "cos", "atan"][rng.random_range(0..3)];
            format!("({f}(0.5*{a}) + {b})")
        }
        _ => format!("-{a}"),
    }
}

/// A long CSV `sweep.csv` in `dir` of E + A/N^alpha + B/D^beta with known
/// values (E 1.8, A 400, alpha 0.34, B 900, beta 0.29): six model sizes,
/// `steps` token counts each, and a deterministic relative wobble of
/// +-`wobble` in place of noise.
pub fn chinchilla_csv(dir: &Path, steps: usize, wobble: f64) -> PathBuf {
    let (e, a, alpha, b, beta) = (1.8, 400.0, 0.34, 900.0, 0.29);
    let mut text = String::from("run,N,tokens,loss\n");
    let mut k = 0u64;
    for n in [5e7, 1e8, 2e8, 4e8, 8e8, 1.6e9] {
        for i in 1..=steps {
            let d = 5e8 * i as f64;
            k += 1;
            let w = 1.0 + wobble * ((k as f64 * 0.7).sin());
            let l = (e + a / f64::powf(n, alpha) + b / f64::powf(d, beta)) * w;
            text.push_str(&format!("m{n},{n},{d},{l}\n"));
        }
    }
    let path = dir.join("sweep.csv");
    std::fs::write(&path, text).unwrap();
    path
}

/// `v` (a JSON report) without its wall times (`seconds`, at any depth),
/// which differ between identical runs.
pub fn drop_seconds(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            m.remove("seconds");
            m.values_mut().for_each(drop_seconds);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(drop_seconds),
        _ => {}
    }
}
