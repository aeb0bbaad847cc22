//! Converging for real. A multi-start search stops each start by rules
//! that suit a search (small steps, small progress), which leaves the best
//! start wherever the last step of its path happened to end: two backends
//! or two start sets then print digits that differ where the data are
//! weak. The best start of a fit therefore finishes here: Gauss-Newton
//! (Levenberg-Marquardt with the damping going to zero) in f64 on the
//! per-row Jacobian of the compiled law, inside the bounds, until the
//! Newton decrement relative to the objective is at rounding level. Its
//! matrices are those the identifiability report reads.

use indexmap::IndexMap;
use nalgebra::DMatrix;
use rayon::prelude::*;

use crate::backend::jacobian::{HuberCurvature, RowJacobian, Weights, Workspace};
use crate::format::format_value;
use crate::identify::Curvature;
use crate::law::space::LawSpace;
use crate::law::CompiledLaw;
use crate::objective::{LossKind, Objective};
use crate::optim::{self, BatchLeastSquares, LmOptions, Outcome, Status};

/// The polish's stopping rules: only the Newton decrement (and steps that
/// no longer move x, or no step lowering f, at rounding level) end it.
pub const POLISH: LmOptions = LmOptions {
    max_iter: 200,
    ftol: 0.0,
    xtol: 1e-15,
    gtol: 0.0,
    stall: 0.0,
    decrement: 1e-9,
    lambda0: 1e-12,
};

/// Relative Newton decrement below which a polished optimum counts as
/// converged: f is then within 1e-12 of the local minimum (relative), and
/// each parameter within 1e-6 sqrt(rows) standard errors of it.
pub const GRAD_TOL: f64 = 1e-6;

/// Rows below which a batched least-squares call runs on one thread.
const SERIAL_ROWS: usize = 8192;

/// Least-squares problems in a law's theta: problem `k` fits the rows of
/// `jobs[job_of[k]]`, whose Jacobian columns are the free parameters in
/// theta order.
pub struct LeastSquares<'a> {
    pub space: &'a LawSpace,
    pub jobs: &'a [RowJacobian],
    pub job_of: &'a [usize],
    /// Per problem, weights of its job's rows other than their own (a
    /// resample); empty when every problem keeps its job's.
    pub weights: &'a [Option<&'a Weights<'a>>],
    /// Huber's curvature beyond delta (see [`search`]).
    pub curvature: HuberCurvature,
}

/// f, g and H (Gauss-Newton) in `space`'s theta at `x`, from `rows`
/// (Jacobian columns for `space.free()`) under their own weights or
/// `weight`, with Huber's curvature `curvature`; `scratch` holds arrays
/// of m and m x m.
#[allow(clippy::too_many_arguments)]
pub(crate) fn theta_moments(
    space: &LawSpace,
    rows: &RowJacobian,
    weight: Option<&Weights<'_>>,
    curvature: HuberCurvature,
    x: &[f64],
    ws: &mut Workspace,
    g: &mut [f64],
    h: &mut [f64],
    scratch: &mut (Vec<f64>, Vec<f64>, Vec<f64>),
) -> f64 {
    let m = space.dim();
    let (graw, hraw, t) = scratch;
    graw.resize(m, 0.0);
    hraw.resize(m * m, 0.0);
    t.resize(m * m, 0.0);
    let p = space.to_params(x);
    let f = rows.evaluate_as(&p, ws, graw, hraw, weight, curvature);
    moments_to_theta(space, &p, graw, hraw, t, g, h);
    f
}

/// A gradient and Gauss-Newton matrix over `space`'s free parameters
/// (`graw`, `hraw`, m x m) at params `p`, into theta: with M = d(free
/// params) / d theta, g = M^T g_raw and H = M^T H_raw M. `t` is m x m
/// scratch.
pub(crate) fn moments_to_theta(
    space: &LawSpace,
    p: &[f64],
    graw: &[f64],
    hraw: &[f64],
    t: &mut [f64],
    g: &mut [f64],
    h: &mut [f64],
) {
    let m = space.dim();
    let free = space.free();
    let jac = space.jacobian(p);
    let mm = |a: usize, q: usize| jac[free[a] * m + q];
    for a in 0..m {
        for q in 0..m {
            t[a * m + q] = (0..m).map(|b| hraw[a * m + b] * mm(b, q)).sum();
        }
    }
    for q in 0..m {
        g[q] = (0..m).map(|a| mm(a, q) * graw[a]).sum();
        for r in 0..m {
            h[q * m + r] = (0..m).map(|a| mm(a, q) * t[a * m + r]).sum();
        }
    }
}

impl LeastSquares<'_> {
    /// Problems `ids` at `xs` (theta) into `f`, `g` and `h`, in order.
    fn evaluate_chunk(
        &self,
        ids: &[usize],
        xs: &[f64],
        f: &mut [f64],
        g: &mut [f64],
        h: &mut [f64],
    ) {
        let m = self.space.dim();
        let mut ws = Workspace::default();
        let mut scratch = Default::default();
        for (k, &id) in ids.iter().enumerate() {
            f[k] = theta_moments(
                self.space,
                &self.jobs[self.job_of[id]],
                self.weights.get(id).copied().flatten(),
                self.curvature,
                &xs[k * m..(k + 1) * m],
                &mut ws,
                &mut g[k * m..(k + 1) * m],
                &mut h[k * m * m..(k + 1) * m * m],
                &mut scratch,
            );
        }
    }
}

impl BatchLeastSquares for LeastSquares<'_> {
    fn dim(&self) -> usize {
        self.space.dim()
    }

    fn bounds(&self) -> (Vec<f64>, Vec<f64>) {
        self.space.bounds()
    }

    fn evaluate(
        &mut self,
        ids: &[usize],
        xs: &[f64],
        f: &mut [f64],
        g: &mut [f64],
        h: &mut [f64],
    ) -> anyhow::Result<()> {
        let m = self.space.dim();
        // Waking threads costs more than a few small problems (the last
        // starts of a batch) take.
        let rows: usize = ids.iter().map(|&k| self.jobs[self.job_of[k]].rows()).sum();
        if rows < SERIAL_ROWS {
            self.evaluate_chunk(ids, xs, f, g, h);
            return Ok(());
        }
        // A few chunks per thread: jobs may differ in rows, and each chunk
        // reuses one workspace.
        let chunk = ids.len().div_ceil(4 * rayon::current_num_threads()).max(1);
        ids.par_chunks(chunk)
            .zip(xs.par_chunks(chunk * m))
            .zip(f.par_chunks_mut(chunk))
            .zip(g.par_chunks_mut(chunk * m))
            .zip(h.par_chunks_mut(chunk * m * m))
            .for_each(|((((ids, xs), f), g), h)| self.evaluate_chunk(ids, xs, f, g, h));
        Ok(())
    }
}

/// Reference point of a law's linear parameters' terms (see
/// [`LawSpace`]): per variable, the weighted geometric mean over `rows`
/// when every value is positive, else the weighted mean.
pub fn reference(vars: &[Vec<f64>], weight: &[f64], rows: &[usize]) -> Vec<f64> {
    let total: f64 = rows.iter().map(|&r| weight[r]).sum::<f64>().max(1e-300);
    vars.iter()
        .map(|col| {
            if rows.iter().all(|&r| col[r] > 0.0) {
                (rows.iter().map(|&r| weight[r] * col[r].ln()).sum::<f64>() / total).exp()
            } else {
                rows.iter().map(|&r| weight[r] * col[r]).sum::<f64>() / total
            }
        })
        .collect()
}

/// Distinct values of each variable over `rows`, by the law's names.
pub fn distinct_values(
    names: &[String],
    vars: &[Vec<f64>],
    rows: &[usize],
) -> IndexMap<String, usize> {
    names
        .iter()
        .zip(vars)
        .map(|(name, col)| {
            let mut v: Vec<u64> = rows.iter().map(|&r| col[r].to_bits()).collect();
            v.sort_unstable();
            v.dedup();
            (name.clone(), v.len())
        })
        .collect()
}

/// A polished optimum.
#[derive(Debug, Clone, PartialEq)]
pub struct Polished {
    /// The law's parameters (fixed ones included).
    pub params: Vec<f64>,
    /// Its theta in the raw form of the space.
    pub theta: Vec<f64>,
    pub f: f64,
    /// The relative Newton decrement there, sqrt(g^T H^-1 g / 2f) over the
    /// coordinates the bounds leave free.
    pub grad_norm: f64,
    /// Gauss-Newton steps tried (accepted or not).
    pub steps: usize,
    /// Free coordinates (theta order) that end on a bound.
    pub at_bound: Vec<bool>,
    pub status: Status,
    /// f is at the rounding floor of the data
    /// ([`RowJacobian::rounding_floor`]): the law reproduces them exactly.
    pub exact: bool,
}

impl Polished {
    /// At an optimum: the Newton decrement below [`GRAD_TOL`], or the fit
    /// exact to rounding (where the decrement measures rounding).
    pub fn converged(&self) -> bool {
        self.grad_norm <= GRAD_TOL || self.exact
    }
}

/// Levenberg-Marquardt from `x0`, start `k` on the rows of
/// `jobs[job_of[k]]` (reweighted by `weights[k]` where given): Huber's
/// curvature the Hessian's, which converges fastest near an optimum; a
/// start no step moved from (every residual beyond delta, where that
/// curvature is 0 and the model has no step) searches again with the
/// reweighted one. For mse both are the same.
pub fn search(
    space: &LawSpace,
    jobs: &[RowJacobian],
    job_of: &[usize],
    weights: &[Option<&Weights<'_>>],
    x0: &[Vec<f64>],
    lm: &LmOptions,
    mut progress: impl FnMut(optim::Progress),
) -> anyhow::Result<(Vec<Outcome>, usize)> {
    let mut first = LeastSquares {
        space,
        jobs,
        job_of,
        weights,
        curvature: HuberCurvature::Hessian,
    };
    let (mut outcomes, mut calls) = optim::least_squares_batch(&mut first, x0, lm, &mut progress)?;
    let stuck: Vec<usize> = (0..outcomes.len())
        .filter(|&k| outcomes[k].status == Status::LineSearchFailed)
        .collect();
    if stuck.is_empty() || !jobs.iter().any(|j| j.huber()) {
        return Ok((outcomes, calls));
    }
    let sub_job_of: Vec<usize> = stuck.iter().map(|&k| job_of[k]).collect();
    let sub_weights: Vec<Option<&Weights<'_>>> = match weights {
        [] => Vec::new(),
        w => stuck.iter().map(|&k| w[k]).collect(),
    };
    let mut again = LeastSquares {
        space,
        jobs,
        job_of: &sub_job_of,
        weights: &sub_weights,
        curvature: HuberCurvature::Reweighted,
    };
    let starts: Vec<Vec<f64>> = stuck.iter().map(|&k| x0[k].clone()).collect();
    let (redone, more) = optim::least_squares_batch(&mut again, &starts, lm, &mut progress)?;
    calls += more;
    for (k, o) in stuck.into_iter().zip(redone) {
        outcomes[k] = o;
    }
    Ok((outcomes, calls))
}

/// Polish each start `(job, params)` on its job's rows, in the raw form
/// of `space` ([`LawSpace::raw`]); `jobs` must have Jacobian columns for
/// `space.free()`. `weights` (empty, or one per start) reweighs a start's
/// rows. A start that is not finite comes back as it went in, with an
/// infinite `grad_norm`.
pub fn polish(
    law: &CompiledLaw,
    space: &LawSpace,
    jobs: &[RowJacobian],
    starts: &[(usize, Vec<f64>)],
    weights: &[Option<&Weights<'_>>],
) -> anyhow::Result<Vec<Polished>> {
    let space = &space.raw(law);
    let m = space.dim();
    let job_of: Vec<usize> = starts.iter().map(|s| s.0).collect();
    let x0: Vec<Vec<f64>> = starts.iter().map(|s| space.to_theta(&s.1)).collect();
    let mut problems = LeastSquares {
        space,
        jobs,
        job_of: &job_of,
        weights,
        curvature: HuberCurvature::Hessian,
    };
    let (outcomes, _) = optim::least_squares_batch(&mut problems, &x0, &POLISH, |_| {})?;
    // f, g and H where each ended, for the decrement.
    let ids: Vec<usize> = (0..starts.len()).collect();
    let xs: Vec<f64> = outcomes.iter().flat_map(|o| o.x.iter().copied()).collect();
    let (mut f, mut g, mut h) = (
        vec![0.0; ids.len()],
        vec![0.0; ids.len() * m],
        vec![0.0; ids.len() * m * m],
    );
    problems.evaluate(&ids, &xs, &mut f, &mut g, &mut h)?;
    let (lo, hi) = space.bounds();
    Ok(outcomes
        .into_iter()
        .enumerate()
        .map(|(k, o): (usize, Outcome)| {
            let (gk, hk) = (&g[k * m..(k + 1) * m], &h[k * m * m..(k + 1) * m * m]);
            let blocked = optim::blocked(&o.x, gk, &lo, &hi);
            let grad_norm = if f[k].is_finite() {
                optim::relative_decrement(f[k], gk, hk, &blocked)
            } else {
                f64::INFINITY
            };
            Polished {
                params: space.to_params(&o.x),
                at_bound: (0..m).map(|i| o.x[i] <= lo[i] || o.x[i] >= hi[i]).collect(),
                theta: o.x,
                f: f[k],
                grad_norm,
                steps: o.iterations,
                status: o.status,
                // Weighted starts (a bootstrap's replicates) are judged
                // by the decrement alone.
                exact: weights.get(k).is_none_or(|w| w.is_none())
                    && f[k] <= jobs[job_of[k]].rounding_floor(),
            }
        })
        .collect())
}

/// The curvature at a polished optimum of the rows of `rows` (a Jacobian
/// with columns for `space.free()`), for the identifiability report.
/// `distinct` counts the distinct values of every variable over those rows.
pub fn curvature(
    law: &CompiledLaw,
    space: &LawSpace,
    rows: &RowJacobian,
    p: &Polished,
    objective: Objective,
    distinct: IndexMap<String, usize>,
) -> Curvature {
    let space = &space.raw(law);
    let free = space.free();
    let m = free.len();
    let (mut g, mut h, mut meat) = (vec![0.0; m], vec![0.0; m * m], vec![0.0; m * m]);
    let f = rows.evaluate_with_meat(
        &p.params,
        &mut Workspace::default(),
        &mut g,
        &mut h,
        &mut meat,
    );
    let (lo, _) = space.bounds();
    let masks = law.graph.var_masks();
    let at_bound = free
        .iter()
        .enumerate()
        .map(|(k, &i)| {
            if !p.at_bound[k] {
                return None;
            }
            let r = &space.rules[i];
            let lower = p.theta[k] <= lo[k];
            let bound = if lower { r.lower } else { r.upper };
            let which = if lower { "lower" } else { "upper" };
            Some(if bound.is_finite() {
                format!("on its {which} bound {}", format_value(bound))
            } else {
                format!("at the {which} end of its range")
            })
        })
        .collect();
    let vars_of = free
        .iter()
        .map(|&i| {
            let mask = masks[law.grad[i] as usize];
            (0..law.variables.len())
                .filter(|&v| mask & (1 << v) != 0)
                .map(|v| law.variables[v].clone())
                .collect()
        })
        .collect();
    Curvature {
        names: free.iter().map(|&i| law.params[i].clone()).collect(),
        values: free.iter().map(|&i| p.params[i]).collect(),
        h,
        meat: (objective.loss == LossKind::Huber).then_some(meat),
        f,
        rows: rows.rows(),
        at_bound,
        vars_of,
        distinct,
        jacobian: None,
    }
}

/// Directions of the scaled Gauss-Newton matrix flatter than this (its
/// eigenvalue relative to the largest) are probed for descent.
const FLAT: f64 = 1e-10;

/// Probe steps along a flat direction: those that would change f by these
/// fractions of itself along one parameter alone.
const PROBES: [f64; 3] = [1e-6, 1e-4, 1e-2];

/// A fall this large (relative to f) along a flat direction is a saddle.
const FALL: f64 = 1e-9;

/// Whether the polished point `p` is a saddle: along a direction the
/// Gauss-Newton matrix calls flat (the data do not determine the
/// parameters along it, so the quadratic model says nothing there), the
/// objective falls. Where two terms of a law have merged (two exponentials
/// at one rate) the point is stationary and every test of the gradient
/// passes, yet splitting them lowers the objective: Gauss-Newton cannot
/// see it, as the split changes the prediction only at second order. Each
/// flat direction is probed on both sides at a few step sizes; `c` is the
/// curvature at `p`. Returns what was found, for the report.
pub fn saddle(
    law: &CompiledLaw,
    space: &LawSpace,
    rows: &RowJacobian,
    p: &Polished,
    c: &Curvature,
) -> Option<String> {
    let space = space.raw(law);
    let free = space.free();
    let m = free.len();
    // Coordinates off their bounds and with an effect on the prediction.
    let keep: Vec<usize> = (0..m)
        .filter(|&k| c.at_bound[k].is_none() && c.h[k * m + k] > 0.0)
        .collect();
    let n = keep.len();
    if n < 2 || !(p.f.is_finite() && p.f > 0.0) {
        return None;
    }
    let scale: Vec<f64> = keep.iter().map(|&k| c.h[k * m + k].sqrt()).collect();
    let a = DMatrix::from_fn(n, n, |i, j| {
        c.h[keep[i] * m + keep[j]] / (scale[i] * scale[j])
    });
    let eig = nalgebra::SymmetricEigen::new(a);
    // The largest eigenvalue (0 when none is positive, or NaN).
    let top = eig.eigenvalues.iter().copied().fold(0.0, f64::max);
    if top <= 0.0 {
        return None;
    }
    let (mut g, mut h) = (vec![0.0; m], vec![0.0; m * m]);
    let mut ws = Workspace::default();
    for (e, &lambda) in eig.eigenvalues.iter().enumerate() {
        if lambda > FLAT * top {
            continue;
        }
        let v = eig.eigenvectors.column(e);
        // The lowest objective of the probes on both sides.
        let mut low = p.f;
        for frac in PROBES {
            let t = (2.0 * frac * p.f).sqrt();
            for sign in [1.0, -1.0] {
                let mut params = p.params.clone();
                for (i, &k) in keep.iter().enumerate() {
                    let r = &space.rules[free[k]];
                    let x = params[free[k]] + sign * t * v[i] / scale[i];
                    params[free[k]] = x.clamp(r.lower, r.upper);
                }
                let f = rows.evaluate(&params, &mut ws, &mut g, &mut h);
                if f.is_finite() {
                    low = low.min(f);
                }
            }
        }
        if low < p.f * (1.0 - FALL) {
            // The parameters the direction moves most.
            let mut load: Vec<(f64, usize)> = (0..n).map(|i| (v[i].abs(), keep[i])).collect();
            load.sort_by(|x, y| y.0.total_cmp(&x.0));
            let names: Vec<&str> = load
                .iter()
                .take_while(|(l, _)| *l >= 0.25 * load[0].0)
                .map(|&(_, k)| c.names[k].as_str())
                .collect();
            return Some(format!(
                "the best start stopped at a saddle, not a minimum: moving {} together along \
                 a direction the data leave undetermined lowers the objective from {:.6e} to \
                 {:.6e} or less; the fit found is not the best (try more --starts, or other \
                 start ranges for these parameters)",
                names.join(", "),
                p.f,
                low
            ));
        }
    }
    None
}
