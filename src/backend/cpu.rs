//! CPU backend: f64, all cores. Work is split into blocks of points inside
//! one configuration; each block is evaluated for every parameter vector,
//! so a point is loaded once per block and reused across the batch.
//!
//! The law is separable: with u_N = (n+t1)^-alpha and u_T = (T+t3)^-gamma
//! constant within a configuration, each point needs one ln and one exp for
//! v = (d+t2)^-beta (plus one ln in log space). The gradient only needs
//! five per-block sums of the point-wise derivative g = w rho'(r) dr/dpred:
//! sum g, sum g v, sum g v ln(d+t2) and sum g v/(d+t2).

use rayon::prelude::*;

use super::{fastmath, Backend, BackendInfo, Eval, Prepared};
use crate::law::{A, ALPHA, B, BETA, C, E, GAMMA, NP, T1, T2, T3};
use crate::objective::{LossKind, Space};

/// Points per block: large enough to amortise per-block work, small enough
/// to balance load across threads on small sweeps.
const BLOCK: usize = 2048;

pub struct CpuBackend {
    data: Prepared,
    /// (config index, point range) of every block.
    blocks: Vec<(usize, std::ops::Range<usize>)>,
    threads: usize,
}

impl CpuBackend {
    pub fn new(data: Prepared) -> CpuBackend {
        let mut blocks = Vec::new();
        for (ci, c) in data.configs.iter().enumerate() {
            let mut s = c.start;
            while s < c.start + c.len {
                let e = (s + BLOCK).min(c.start + c.len);
                blocks.push((ci, s..e));
                s = e;
            }
        }
        CpuBackend {
            data,
            blocks,
            threads: rayon::current_num_threads(),
        }
    }

    pub fn data(&self) -> &Prepared {
        &self.data
    }
}

impl Backend for CpuBackend {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            kind: "cpu".into(),
            device: format!("{} threads, f64", self.threads),
        }
    }

    fn evaluate(&mut self, params: &[[f64; NP]], out: &mut [Eval]) -> anyhow::Result<()> {
        anyhow::ensure!(params.len() == out.len(), "params and out differ in length");
        let k = params.len();
        let data = &self.data;
        let totals = self
            .blocks
            .par_iter()
            .fold(
                || vec![Eval::ZERO; k],
                |mut acc, (ci, range)| {
                    for (p, a) in params.iter().zip(acc.iter_mut()) {
                        eval_block(data, *ci, range.clone(), p, a);
                    }
                    acc
                },
            )
            .reduce(
                || vec![Eval::ZERO; k],
                |mut a, b| {
                    for (x, y) in a.iter_mut().zip(&b) {
                        x.f += y.f;
                        for i in 0..NP {
                            x.g[i] += y.g[i];
                        }
                    }
                    a
                },
            );
        out.copy_from_slice(&totals);
        Ok(())
    }
}

/// Add one block's contribution for parameter vector `p` to `acc`.
#[inline]
fn eval_block(
    data: &Prepared,
    ci: usize,
    range: std::ops::Range<usize>,
    p: &[f64; NP],
    acc: &mut Eval,
) {
    let cfg = &data.configs[ci];
    let obj = data.objective;
    let xn = cfg.n + p[T1];
    let ln_n = xn.ln();
    let un = (-p[ALPHA] * ln_n).exp();
    let xt = cfg.t + p[T3];
    let ln_t = xt.ln();
    let ut = (-p[GAMMA] * ln_t).exp();
    let k = PointTerm {
        base: p[E] + p[A] * un + p[C] * ut,
        b: p[B],
        beta: p[BETA],
        t2: p[T2],
        delta: obj.delta,
    };
    let pts = Points {
        d: &data.d[range.clone()],
        y: &data.y[range.clone()],
        w: &data.w[range],
    };
    let [f, s0, sv, sl, sq] = match (obj.space, obj.loss) {
        (Space::Linear, LossKind::Mse) => dispatch::<false, false>(&pts, &k),
        (Space::Linear, LossKind::Huber) => dispatch::<false, true>(&pts, &k),
        (Space::Log, LossKind::Mse) => dispatch::<true, false>(&pts, &k),
        (Space::Log, LossKind::Huber) => dispatch::<true, true>(&pts, &k),
    };
    acc.f += f;
    let (b, beta) = (p[B], p[BETA]);
    let gr = &mut acc.g;
    gr[E] += s0;
    gr[A] += s0 * un;
    gr[ALPHA] -= s0 * p[A] * un * ln_n;
    gr[T1] -= s0 * p[ALPHA] * p[A] * un / xn;
    gr[B] += sv;
    gr[BETA] -= b * sl;
    gr[T2] -= beta * b * sq;
    gr[C] += s0 * ut;
    gr[GAMMA] -= s0 * p[C] * ut * ln_t;
    gr[T3] -= s0 * p[GAMMA] * p[C] * ut / xt;
}

/// The points of one block.
struct Points<'a> {
    d: &'a [f64],
    y: &'a [f64],
    w: &'a [f64],
}

/// What the point loop needs of the parameters: pred = base + b (d+t2)^-beta.
struct PointTerm {
    base: f64,
    b: f64,
    beta: f64,
    t2: f64,
    delta: f64,
}

/// Lanes of independent accumulators: lets the compiler keep sums in SIMD
/// registers without reordering any single sum.
const LANES: usize = 8;

/// Pick the widest instruction set this CPU has; the point loop is the
/// same source compiled for each.
#[inline]
fn dispatch<const LOG: bool, const HUBER: bool>(pts: &Points, k: &PointTerm) -> [f64; 5] {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports the features the function enables.
            return unsafe { sums_avx512::<LOG, HUBER>(pts, k) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: as above.
            return unsafe { sums_avx2::<LOG, HUBER>(pts, k) };
        }
    }
    sums::<LOG, HUBER, false>(pts, k)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn sums_avx512<const LOG: bool, const HUBER: bool>(pts: &Points, k: &PointTerm) -> [f64; 5] {
    sums::<LOG, HUBER, true>(pts, k)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn sums_avx2<const LOG: bool, const HUBER: bool>(pts: &Points, k: &PointTerm) -> [f64; 5] {
    sums::<LOG, HUBER, true>(pts, k)
}

/// Objective and the four gradient sums over a block: sum w rho, and of
/// g = w rho'(r) dr/dpred: sum g, sum g v, sum g v ln(d+t2), sum g v/(d+t2).
#[inline(always)]
fn sums<const LOG: bool, const HUBER: bool, const FMA: bool>(
    pts: &Points,
    k: &PointTerm,
) -> [f64; 5] {
    let mut acc = [[0.0f64; LANES]; 5];
    let n = pts.d.len();
    let whole = n - n % LANES;
    for c in (0..whole).step_by(LANES) {
        let (d, y, w) = (
            &pts.d[c..c + LANES],
            &pts.y[c..c + LANES],
            &pts.w[c..c + LANES],
        );
        for l in 0..LANES {
            let t = point::<LOG, HUBER, FMA>(d[l], y[l], w[l], k);
            for (a, v) in acc.iter_mut().zip(t) {
                a[l] += v;
            }
        }
    }
    for j in whole..n {
        let t = point::<LOG, HUBER, FMA>(pts.d[j], pts.y[j], pts.w[j], k);
        for (a, v) in acc.iter_mut().zip(t) {
            a[0] += v;
        }
    }
    acc.map(|a| a.iter().sum())
}

/// One point's contributions; branch-free so it vectorises.
#[inline(always)]
fn point<const LOG: bool, const HUBER: bool, const FMA: bool>(
    d: f64,
    y: f64,
    w: f64,
    k: &PointTerm,
) -> [f64; 5] {
    let x = d + k.t2;
    // x = 0 (t2 fixed at 0 and a point at D = 0) makes the law infinite.
    let x_ok = x > 0.0;
    let (lx, inv_x) = fastmath::ln_recip::<FMA>(if x_ok { x } else { 1.0 });
    let lx = if x_ok { lx } else { f64::NAN };
    let v = fastmath::exp::<FMA>(-k.beta * lx);
    let pred = fastmath::mul_add::<FMA>(k.b, v, k.base);
    let (r, drdp) = if LOG {
        // ln is only defined for pred > 0; NaN marks the point non-finite.
        let ok = pred > 0.0;
        let (lp, inv_p) = fastmath::ln_recip::<FMA>(if ok { pred } else { 1.0 });
        (if ok { lp - y } else { f64::NAN }, inv_p)
    } else {
        (pred - y, 1.0)
    };
    let (rho, drho) = if HUBER {
        let a = r.abs();
        let inside = a <= k.delta;
        (
            if inside {
                0.5 * r * r
            } else {
                k.delta * (a - 0.5 * k.delta)
            },
            if inside { r } else { k.delta.copysign(r) },
        )
    } else {
        (0.5 * r * r, r)
    };
    let g = w * drho * drdp;
    let gv = g * v;
    [w * rho, g, gv, gv * lx, gv * inv_x]
}
