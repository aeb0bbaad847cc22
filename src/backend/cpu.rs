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

use super::{Backend, BackendInfo, Eval, Prepared};
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
    let base = p[E] + p[A] * un + p[C] * ut;
    let (b, beta, t2) = (p[B], p[BETA], p[T2]);
    let log_space = obj.space == Space::Log;
    let huber = obj.loss == LossKind::Huber;

    let (mut f, mut s0, mut sv, mut sl, mut sq) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let d = &data.d[range.clone()];
    let y = &data.y[range.clone()];
    let w = &data.w[range];
    for j in 0..d.len() {
        let x = d[j] + t2;
        let lx = x.ln();
        let v = (-beta * lx).exp();
        let pred = base + b * v;
        let (r, drdp) = if log_space {
            (pred.ln() - y[j], 1.0 / pred)
        } else {
            (pred - y[j], 1.0)
        };
        let (rho, drho) = if huber { obj.rho(r) } else { (0.5 * r * r, r) };
        let g = w[j] * drho * drdp;
        f += w[j] * rho;
        s0 += g;
        let gv = g * v;
        sv += gv;
        sl += gv * lx;
        sq += gv / x;
    }
    acc.f += f;
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
