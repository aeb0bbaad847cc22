//! Levenberg-Marquardt for box-bounded least squares, batched like
//! [`super::minimize_batch`]: every problem keeps its own damping and
//! status, and all active problems advance in lockstep, one batched call
//! of the objective per iteration.
//!
//! The objective is f = 1/2 sum_i w_i r_i^2; each call returns f, the
//! gradient g = J^T W r and the Gauss-Newton matrix H = J^T W J. A step
//! solves (H + lambda diag(H)) s = -g on the coordinates the bounds leave
//! free; a coordinate whose step would cross its bound is held there and
//! the others solved again (an active-set step), so steps stay in the box.
//! The step is taken when f drops; lambda then shrinks by how well the
//! quadratic model predicted the drop (Nielsen's rule), and otherwise
//! grows.

use rayon::prelude::*;

use super::{Outcome, Progress, Status};

/// A batch of least-squares problems in the same space of dimension `dim`.
pub trait BatchLeastSquares {
    fn dim(&self) -> usize;
    /// Box bounds of every coordinate.
    fn bounds(&self) -> (Vec<f64>, Vec<f64>);
    /// For each point `xs[k*dim..(k+1)*dim]` of problem `ids[k]`, f into
    /// `f[k]`, J^T W r into `g[k*dim..]` and J^T W J (row-major) into
    /// `h[k*dim*dim..]`.
    fn evaluate(
        &mut self,
        ids: &[usize],
        xs: &[f64],
        f: &mut [f64],
        g: &mut [f64],
        h: &mut [f64],
    ) -> anyhow::Result<()>;
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LmOptions {
    /// Most iterations (evaluations after the first) of a problem.
    pub max_iter: usize,
    /// Converged when a step lowers f by less than ftol * f and the model
    /// predicted no more.
    pub ftol: f64,
    /// Converged when a step moves no coordinate by more than
    /// xtol * (|x| + xtol).
    pub xtol: f64,
    /// Converged when every free coordinate's gradient is below gtol times
    /// |r| |J_k| (the cosine between the residuals and its column).
    pub gtol: f64,
    /// Converged when three accepted steps in a row each lower f by less
    /// than stall * f, as in L-BFGS: a start creeping along the edge of
    /// the law's domain (its trials there are not finite) or along a
    /// direction the data barely determine stops there.
    pub stall: f64,
    /// Converged when the Newton decrement relative to the objective,
    /// sqrt(g^T H^-1 g / 2f) on the coordinates the bounds leave free, is
    /// at most this: one more Gauss-Newton step would lower f by about
    /// f times its square. 0 turns the rule off.
    pub decrement: f64,
    /// Initial damping, relative to diag(H): large for a search from far
    /// away, tiny (Gauss-Newton steps at once) for a polish from near an
    /// optimum, where any damping slows the directions the data barely
    /// determine, whose curvature is below it.
    pub lambda0: f64,
}

impl Default for LmOptions {
    fn default() -> Self {
        LmOptions {
            max_iter: 1000,
            ftol: 1e-12,
            xtol: 1e-12,
            gtol: 1e-12,
            stall: 1e-10,
            decrement: 0.0,
            lambda0: 1e-3,
        }
    }
}

/// Relative changes of f below this are taken as rounding (sums over many
/// rows lose a few digits of the 16).
const F_NOISE: f64 = 1e-13;
/// At f's rounding floor, a step counts as progress only when it lowers
/// the Newton decrement by at least this factor.
const FLOOR_PROGRESS: f64 = 0.5;
/// A start no step moves from is at an optimum only if its Newton
/// decrement is at most this (f within 5e-13 of the model's minimum).
const START_DECREMENT: f64 = 1e-6;
/// Past this damping no step lowers f that rounding would not hide.
const LAMBDA_MAX: f64 = 1e16;
/// Smallest damping: keeps the damped matrix positive definite.
const LAMBDA_MIN: f64 = 1e-15;
/// Floor of a diagonal scale, relative to the largest one: a coordinate
/// the residuals do not see still gets a finite step.
const DIAG_FLOOR: f64 = 1e-12;
/// Problems per parallel task in the update.
const UPDATE_CHUNK: usize = 64;
/// Accepted steps below `stall` in a row that end a problem.
const SMALL_STEPS_TO_CONVERGE: usize = 3;

struct Problem {
    x: Vec<f64>,
    f: f64,
    g: Vec<f64>,
    h: Vec<f64>,
    trial: Vec<f64>,
    /// The model's predicted drop of f at the trial.
    predicted: f64,
    lambda: f64,
    /// Growth of lambda at the next rejection.
    nu: f64,
    status: Status,
    iterations: usize,
    evaluations: usize,
    /// Accepted steps in a row that lowered f by less than `stall * f`.
    small_steps: usize,
    /// Steps accepted so far.
    accepted: usize,
    /// Per coordinate, the largest curvature H_kk seen so far: the scale
    /// of its damping (as MINPACK keeps the largest column norm), so a
    /// coordinate is damped by its own curvature, never by another's.
    scale: Vec<f64>,
}

/// Solve `a x = b` (n x n, symmetric positive definite, row-major) by
/// Cholesky in place; None when `a` is not positive definite. The systems
/// are tiny (a law's parameters), so a hand-written factorisation beats
/// any call into a linear-algebra crate.
fn cholesky_solve(a: &mut [f64], b: &mut [f64], n: usize) -> Option<()> {
    for j in 0..n {
        let mut d = a[j * n + j];
        for k in 0..j {
            d -= a[j * n + k] * a[j * n + k];
        }
        if !(d > 0.0 && d.is_finite()) {
            return None;
        }
        let d = d.sqrt();
        a[j * n + j] = d;
        for i in j + 1..n {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= a[i * n + k] * a[j * n + k];
            }
            a[i * n + j] = s / d;
        }
    }
    for i in 0..n {
        let mut s = b[i];
        for k in 0..i {
            s -= a[i * n + k] * b[k];
        }
        b[i] = s / a[i * n + i];
    }
    for i in (0..n).rev() {
        let mut s = b[i];
        for k in i + 1..n {
            s -= a[k * n + i] * b[k];
        }
        b[i] = s / a[i * n + i];
    }
    Some(())
}

/// Coordinates the bounds block at `x`: at a bound with the gradient `g`
/// pushing out of the box.
pub fn blocked(x: &[f64], g: &[f64], lo: &[f64], hi: &[f64]) -> Vec<bool> {
    (0..x.len())
        .map(|i| (x[i] <= lo[i] && g[i] > 0.0) || (x[i] >= hi[i] && g[i] < 0.0))
        .collect()
}

/// Eigenvalues of the scaled curvature below this fraction of the largest
/// are floored to it: directions the data do not determine (a parameter
/// whose partner sits on a bound, two terms that act as one) then count
/// by their gradient, not by a pivot of rounding.
const EIG_FLOOR: f64 = 1e-12;

/// The Newton decrement relative to f, sqrt(g^T H^-1 g / 2f), over the
/// coordinates not `blocked`: how far (in the metric of H) a point is from
/// where the quadratic model's minimum lies, scaled so that 0.5 * its
/// square is the drop of f one more step predicts, relative to f.
///
/// H is scaled to a unit diagonal and inverted through its eigenvalues,
/// those below `EIG_FLOOR` of the largest floored there, so a singular H
/// gives a finite decrement that is small exactly when the gradient has
/// no part along the flat directions. A coordinate that changes nothing
/// (a zero column of J: zero curvature and zero gradient) is left out.
/// Infinite when such a coordinate has a gradient or a value is not
/// finite; 0 when nothing is free.
pub fn relative_decrement(f: f64, g: &[f64], h: &[f64], blocked: &[bool]) -> f64 {
    let n = g.len();
    let mut free = Vec::with_capacity(n);
    for k in (0..n).filter(|&k| !blocked[k]) {
        let d = h[k * n + k];
        if !(d.is_finite() && g[k].is_finite()) {
            return f64::INFINITY;
        }
        if d > 0.0 {
            free.push(k);
        } else if g[k] != 0.0 {
            return f64::INFINITY;
        }
    }
    let m = free.len();
    if m == 0 {
        return 0.0;
    }
    let d: Vec<f64> = free.iter().map(|&k| h[k * n + k].sqrt()).collect();
    let a = nalgebra::DMatrix::from_fn(m, m, |r, c| h[free[r] * n + free[c]] / (d[r] * d[c]));
    let b: Vec<f64> = free.iter().zip(&d).map(|(&k, d)| g[k] / d).collect();
    let eig = nalgebra::SymmetricEigen::new(a);
    let top = eig.eigenvalues.iter().fold(0.0f64, |t, &l| t.max(l));
    if !(top > 0.0 && top.is_finite()) {
        return f64::INFINITY;
    }
    let floor = EIG_FLOOR * top;
    let gh: f64 = (0..m)
        .map(|e| {
            let v = eig.eigenvectors.column(e);
            let proj: f64 = v.iter().zip(&b).map(|(v, b)| v * b).sum();
            proj * proj / eig.eigenvalues[e].max(floor)
        })
        .sum();
    if f > 0.0 {
        (gh / (2.0 * f)).sqrt()
    } else if gh > 0.0 {
        f64::INFINITY
    } else {
        0.0
    }
}

impl Problem {
    /// How a problem ends when no step is left to take (the damping at its
    /// ceiling, or steps below xtol): converged once a step has been
    /// accepted, or where the gradient is negligible (the Newton decrement
    /// below [`START_DECREMENT`]); otherwise no step ever lowered f from
    /// the start, which is not an optimum.
    fn stopped(&self, blocked: &[bool]) -> Status {
        if self.accepted > 0
            || relative_decrement(self.f, &self.g, &self.h, blocked) <= START_DECREMENT
        {
            Status::Converged
        } else {
            Status::LineSearchFailed
        }
    }

    /// Take the accepted point's curvatures into the scales.
    fn rescale(&mut self) {
        let n = self.x.len();
        for k in 0..n {
            let d = self.h[k * n + k];
            if d.is_finite() && d > self.scale[k] {
                self.scale[k] = d;
            }
        }
    }

    /// Coordinates the bounds block: at a bound with the gradient pushing
    /// out of the box.
    fn blocked(&self, lo: &[f64], hi: &[f64]) -> Vec<bool> {
        blocked(&self.x, &self.g, lo, hi)
    }

    /// Whether the gradient vanishes on the free coordinates, relative to
    /// the residuals and each coordinate's column: |g_k| <= gtol |r| |J_k|.
    fn stationary(&self, blocked: &[bool], gtol: f64) -> bool {
        let n = self.x.len();
        let rn = (2.0 * self.f).max(0.0).sqrt();
        (0..n).all(|k| blocked[k] || self.g[k].abs() <= gtol * rn * self.h[k * n + k].sqrt())
    }

    /// The damped step from `x` at the current lambda, held inside the
    /// box: the trial point and the model's predicted drop.
    fn step(&self, lo: &[f64], hi: &[f64], blocked: &[bool]) -> Option<(Vec<f64>, f64)> {
        let n = self.x.len();
        // Scale of each coordinate: its largest curvature so far; one the
        // residuals have never seen gets a small finite one.
        let dmax = self.scale.iter().fold(0.0, |m: f64, &d| m.max(d));
        let root: Vec<f64> = (0..n)
            .map(|k| {
                let h = self.h[k * n + k];
                let d = if h > 0.0 && h.is_finite() {
                    h
                } else {
                    self.scale[k]
                };
                if d > 0.0 && d.is_finite() {
                    d.sqrt()
                } else {
                    (DIAG_FLOOR * dmax).max(f64::MIN_POSITIVE).sqrt()
                }
            })
            .collect();
        // Displacement of held coordinates (at a bound), free ones solved.
        let mut held: Vec<Option<f64>> = (0..n)
            .map(|k| if blocked[k] { Some(0.0) } else { None })
            .collect();
        let mut s = vec![0.0; n];
        loop {
            let free: Vec<usize> = (0..n).filter(|&k| held[k].is_none()).collect();
            let m = free.len();
            // Solved in coordinates scaled by `root` (unit curvature where
            // it is the largest seen): H's entries may span 1e30 when the
            // parameters' units do, and the scaled system does not.
            let mut a = vec![0.0; m * m];
            let mut b = vec![0.0; m];
            for (r, &i) in free.iter().enumerate() {
                b[r] = (-self.g[i]
                    - (0..n)
                        .filter_map(|j| held[j].map(|d| self.h[i * n + j] * d))
                        .sum::<f64>())
                    / root[i];
                for (c, &j) in free.iter().enumerate() {
                    a[r * m + c] = self.h[i * n + j] / (root[i] * root[j]);
                }
                a[r * m + r] += self.lambda;
            }
            cholesky_solve(&mut a, &mut b, m)?;
            for k in 0..n {
                s[k] = held[k].unwrap_or(0.0);
            }
            for (r, &i) in free.iter().enumerate() {
                s[i] = b[r] / root[i];
            }
            // The free coordinate that crosses its bound furthest (in
            // units of its step) is held at the bound; solve again.
            let worst = free
                .iter()
                .copied()
                .filter(|&i| self.x[i] + s[i] < lo[i] || self.x[i] + s[i] > hi[i])
                .max_by(|&i, &j| {
                    let over = |k: usize| {
                        let to = if s[k] < 0.0 { lo[k] } else { hi[k] };
                        1.0 - (to - self.x[k]) / s[k]
                    };
                    over(i).total_cmp(&over(j))
                });
            match worst {
                Some(i) => {
                    let to = if s[i] < 0.0 { lo[i] } else { hi[i] };
                    held[i] = Some(to - self.x[i]);
                }
                None => break,
            }
        }
        let trial: Vec<f64> = (0..n)
            .map(|k| (self.x[k] + s[k]).clamp(lo[k], hi[k]))
            .collect();
        let s: Vec<f64> = (0..n).map(|k| trial[k] - self.x[k]).collect();
        let mut hs = 0.0;
        for i in 0..n {
            let row: f64 = (0..n).map(|j| self.h[i * n + j] * s[j]).sum();
            hs += s[i] * row;
        }
        let gs: f64 = (0..n).map(|k| self.g[k] * s[k]).sum();
        Some((trial, -(gs + 0.5 * hs)))
    }

    /// Set up the next trial from the accepted point, or end the problem.
    fn next(&mut self, opts: &LmOptions, lo: &[f64], hi: &[f64]) {
        if self.iterations >= opts.max_iter {
            self.status = Status::MaxIterations;
            return;
        }
        let blocked = self.blocked(lo, hi);
        if self.f <= 0.0 || self.stationary(&blocked, opts.gtol) {
            self.status = Status::Converged;
            return;
        }
        if opts.decrement > 0.0
            && relative_decrement(self.f, &self.g, &self.h, &blocked) <= opts.decrement
        {
            self.status = Status::Converged;
            return;
        }
        // Raise lambda until the step is one the model says lowers f (an
        // indefinite or held-back step may not be).
        loop {
            if self.lambda > LAMBDA_MAX {
                self.status = self.stopped(&blocked);
                return;
            }
            if let Some((trial, predicted)) = self.step(lo, hi, &blocked) {
                let small = (0..self.x.len()).all(|k| {
                    (trial[k] - self.x[k]).abs() <= opts.xtol * (self.x[k].abs() + opts.xtol)
                });
                if small {
                    self.status = self.stopped(&blocked);
                    return;
                }
                if predicted > 0.0 {
                    self.trial = trial;
                    self.predicted = predicted;
                    return;
                }
            }
            self.lambda *= self.nu;
            self.nu *= 2.0;
        }
    }

    /// Take f, g and H at the trial point.
    #[allow(clippy::too_many_arguments)]
    fn update(
        &mut self,
        first: bool,
        ft: f64,
        gt: &[f64],
        ht: &[f64],
        opts: &LmOptions,
        lo: &[f64],
        hi: &[f64],
    ) {
        self.evaluations += 1;
        let finite =
            ft.is_finite() && gt.iter().all(|v| v.is_finite()) && ht.iter().all(|v| v.is_finite());
        if first {
            if !finite {
                self.status = Status::NonFinite;
                return;
            }
            self.f = ft;
            self.g.copy_from_slice(gt);
            self.h.copy_from_slice(ht);
            self.rescale();
            self.next(opts, lo, hi);
            return;
        }
        self.iterations += 1;
        let actual = self.f - ft;
        // Where f's change is below its rounding (the decrement rule on),
        // only a step that at least halves the Newton decrement is
        // progress: f cannot show it. Any other step there is rounding
        // noise, since the gradient's own rounding floors the decrement
        // (on 1e5 rows, near 1e-8): the optimum is reached.
        let at_floor = opts.decrement > 0.0 && finite && actual.abs() <= F_NOISE * self.f;
        let floor = at_floor
            && relative_decrement(ft, gt, ht, &blocked(&self.trial, gt, lo, hi))
                < FLOOR_PROGRESS
                    * relative_decrement(self.f, &self.g, &self.h, &self.blocked(lo, hi));
        if at_floor && !floor {
            self.status = Status::Converged;
            return;
        }
        if finite && (actual > 0.0 || floor) {
            let rho = actual / self.predicted;
            let settled =
                actual <= opts.ftol * self.f && self.predicted <= opts.ftol * self.f && rho <= 2.0;
            self.small_steps = if actual > 0.0 && actual <= opts.stall * self.f {
                self.small_steps + 1
            } else {
                0
            };
            self.x.copy_from_slice(&self.trial);
            self.f = ft;
            self.g.copy_from_slice(gt);
            self.h.copy_from_slice(ht);
            self.rescale();
            self.accepted += 1;
            // A step taken at the floor says nothing of the model's quality.
            if actual > 0.0 {
                let t = 2.0 * rho - 1.0;
                self.lambda = (self.lambda * (1.0 / 3.0f64).max(1.0 - t * t * t)).max(LAMBDA_MIN);
            }
            self.nu = 2.0;
            if settled || self.small_steps >= SMALL_STEPS_TO_CONVERGE {
                self.status = Status::Converged;
                return;
            }
        } else {
            self.lambda *= self.nu;
            self.nu *= 2.0;
        }
        self.next(opts, lo, hi);
    }
}

/// Minimise every problem from its start in `x0` (clamped into the box).
/// Returns every problem's outcome and the number of batched calls;
/// `progress` is called after each.
pub fn least_squares_batch<O: BatchLeastSquares>(
    obj: &mut O,
    x0: &[Vec<f64>],
    opts: &LmOptions,
    mut progress: impl FnMut(Progress),
) -> anyhow::Result<(Vec<Outcome>, usize)> {
    let dim = obj.dim();
    let (lo, hi) = obj.bounds();
    let kk = x0.len();
    let mut probs: Vec<Problem> = x0
        .iter()
        .map(|x| {
            let x: Vec<f64> = x
                .iter()
                .zip(lo.iter().zip(&hi))
                .map(|(v, (l, h))| v.clamp(*l, *h))
                .collect();
            Problem {
                trial: x.clone(),
                x,
                f: f64::INFINITY,
                g: vec![0.0; dim],
                h: vec![0.0; dim * dim],
                predicted: 0.0,
                lambda: opts.lambda0,
                nu: 2.0,
                status: Status::Running,
                iterations: 0,
                evaluations: 0,
                small_steps: 0,
                accepted: 0,
                scale: vec![0.0; dim],
            }
        })
        .collect();
    let mut ids: Vec<usize> = Vec::with_capacity(kk);
    let mut xs: Vec<f64> = Vec::with_capacity(kk * dim);
    let mut fs = vec![0.0; kk];
    let mut gs = vec![0.0; kk * dim];
    let mut hs = vec![0.0; kk * dim * dim];
    let mut slot_of = vec![usize::MAX; kk];
    let mut calls = 0usize;
    let mut first = true;
    loop {
        ids.clear();
        xs.clear();
        for (k, p) in probs.iter().enumerate() {
            if p.status == Status::Running {
                ids.push(k);
                xs.extend_from_slice(&p.trial);
            }
        }
        if ids.is_empty() {
            break;
        }
        crate::interrupt::check()?;
        let m = ids.len();
        obj.evaluate(
            &ids,
            &xs,
            &mut fs[..m],
            &mut gs[..m * dim],
            &mut hs[..m * dim * dim],
        )?;
        calls += 1;
        slot_of.fill(usize::MAX);
        for (slot, &k) in ids.iter().enumerate() {
            slot_of[k] = slot;
        }
        let (fs, gs, hs, slot_of) = (&fs, &gs, &hs, &slot_of);
        let update = |(k, p): (usize, &mut Problem)| {
            let s = slot_of[k];
            if s != usize::MAX {
                p.update(
                    first,
                    fs[s],
                    &gs[s * dim..(s + 1) * dim],
                    &hs[s * dim * dim..(s + 1) * dim * dim],
                    opts,
                    &lo,
                    &hi,
                );
            }
        };
        // The last few problems of a batch update faster than threads wake.
        if m < UPDATE_CHUNK {
            probs.iter_mut().enumerate().for_each(update);
        } else {
            probs
                .par_iter_mut()
                .with_min_len(UPDATE_CHUNK)
                .enumerate()
                .for_each(update);
        }
        first = false;
        progress(Progress {
            iteration: probs.iter().map(|p| p.iterations).max().unwrap_or(0),
            active: probs.iter().filter(|p| p.status == Status::Running).count(),
            best: probs
                .iter()
                .map(|p| p.f)
                .filter(|f| f.is_finite())
                .fold(f64::INFINITY, f64::min),
        });
    }
    let outcomes = probs
        .into_iter()
        .map(|p| Outcome {
            x: p.x,
            f: p.f,
            status: p.status,
            iterations: p.iterations,
            evaluations: p.evaluations,
        })
        .collect();
    Ok((outcomes, calls))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Residuals r_i(x) with weights, their Jacobian by finite-free
    /// closed forms, summed as the trait asks.
    struct Residuals<F: Fn(&[f64], &mut [f64], &mut [f64])> {
        dim: usize,
        rows: usize,
        w: Vec<f64>,
        lo: Vec<f64>,
        hi: Vec<f64>,
        /// x -> residuals (rows) and Jacobian (rows x dim, row-major).
        fun: F,
    }

    impl<F: Fn(&[f64], &mut [f64], &mut [f64])> BatchLeastSquares for Residuals<F> {
        fn dim(&self) -> usize {
            self.dim
        }

        fn bounds(&self) -> (Vec<f64>, Vec<f64>) {
            (self.lo.clone(), self.hi.clone())
        }

        fn evaluate(
            &mut self,
            ids: &[usize],
            xs: &[f64],
            f: &mut [f64],
            g: &mut [f64],
            h: &mut [f64],
        ) -> anyhow::Result<()> {
            let (n, m) = (self.dim, self.rows);
            for k in 0..ids.len() {
                let (mut r, mut j) = (vec![0.0; m], vec![0.0; m * n]);
                (self.fun)(&xs[k * n..(k + 1) * n], &mut r, &mut j);
                f[k] = 0.5 * (0..m).map(|i| self.w[i] * r[i] * r[i]).sum::<f64>();
                for a in 0..n {
                    g[k * n + a] = (0..m).map(|i| self.w[i] * r[i] * j[i * n + a]).sum();
                    for b in 0..n {
                        h[k * n * n + a * n + b] = (0..m)
                            .map(|i| self.w[i] * j[i * n + a] * j[i * n + b])
                            .sum();
                    }
                }
            }
            Ok(())
        }
    }

    fn unbounded(n: usize) -> (Vec<f64>, Vec<f64>) {
        (vec![f64::NEG_INFINITY; n], vec![f64::INFINITY; n])
    }

    /// Weighted linear least squares: the optimum is the normal equations'
    /// solution, from any start.
    #[test]
    fn reaches_the_linear_least_squares_solution() {
        let t: Vec<f64> = (0..30).map(|i| i as f64 / 10.0).collect();
        let y: Vec<f64> = t
            .iter()
            .map(|&t| 1.0 + 2.0 * t - 0.5 * t * t + (7.0 * t).sin() * 0.1)
            .collect();
        let w: Vec<f64> = (0..30).map(|i| 1.0 + (i % 4) as f64).collect();
        let (lo, hi) = unbounded(3);
        let basis = |t: f64| [1.0, t, t * t];
        let mut prob = Residuals {
            dim: 3,
            rows: 30,
            w: w.clone(),
            lo,
            hi,
            fun: |x: &[f64], r: &mut [f64], j: &mut [f64]| {
                for i in 0..30 {
                    let b = basis(t[i]);
                    r[i] = b.iter().zip(x).map(|(b, x)| b * x).sum::<f64>() - y[i];
                    j[i * 3..(i + 1) * 3].copy_from_slice(&b);
                }
            },
        };
        // Normal equations by hand.
        let (mut a, mut rhs) = (vec![0.0; 9], vec![0.0; 3]);
        for i in 0..30 {
            let b = basis(t[i]);
            for p in 0..3 {
                rhs[p] += w[i] * b[p] * y[i];
                for q in 0..3 {
                    a[p * 3 + q] += w[i] * b[p] * b[q];
                }
            }
        }
        cholesky_solve(&mut a, &mut rhs, 3).unwrap();
        let f_best = 0.5
            * (0..30)
                .map(|i| {
                    let r = basis(t[i])
                        .iter()
                        .zip(&rhs)
                        .map(|(b, x)| b * x)
                        .sum::<f64>()
                        - y[i];
                    w[i] * r * r
                })
                .sum::<f64>();
        let x0 = vec![vec![0.0; 3], vec![100.0, -50.0, 3.0]];
        let (out, _) = least_squares_batch(&mut prob, &x0, &LmOptions::default(), |_| {}).unwrap();
        for o in &out {
            assert_eq!(o.status, Status::Converged);
            // f is flat at the optimum: it is met to rounding, x to about
            // the square root of the tolerance.
            assert!((o.f - f_best).abs() <= 1e-14 * f_best, "{o:?} vs {f_best}");
            for p in 0..3 {
                assert!(
                    (o.x[p] - rhs[p]).abs() <= 1e-7 * (1.0 + rhs[p].abs()),
                    "{o:?} vs {rhs:?}"
                );
            }
        }
    }

    /// Rosenbrock as least squares, r = (10 (y - x^2), 1 - x): the
    /// minimum (1, 1) from the classic start, and max_iterations when
    /// capped well short of it.
    #[test]
    fn rosenbrock_converges_and_a_cap_reports_max_iterations() {
        let (lo, hi) = unbounded(2);
        let mut prob = Residuals {
            dim: 2,
            rows: 2,
            w: vec![1.0, 1.0],
            lo,
            hi,
            fun: |x: &[f64], r: &mut [f64], j: &mut [f64]| {
                r[0] = 10.0 * (x[1] - x[0] * x[0]);
                r[1] = 1.0 - x[0];
                j.copy_from_slice(&[-20.0 * x[0], 10.0, -1.0, 0.0]);
            },
        };
        let x0 = vec![vec![-1.2, 1.0]];
        let (out, calls) =
            least_squares_batch(&mut prob, &x0, &LmOptions::default(), |_| {}).unwrap();
        let o = &out[0];
        assert_eq!(o.status, Status::Converged);
        assert!(
            (o.x[0] - 1.0).abs() < 1e-9 && (o.x[1] - 1.0).abs() < 1e-9,
            "{o:?}"
        );
        assert!(o.f < 1e-20, "{o:?}");
        assert_eq!(calls, o.evaluations);
        assert_eq!(o.evaluations, o.iterations + 1);
        let capped = LmOptions {
            max_iter: 3,
            ..Default::default()
        };
        let (out, _) = least_squares_batch(&mut prob, &x0, &capped, |_| {}).unwrap();
        assert_eq!(out[0].status, Status::MaxIterations);
        assert_eq!(out[0].iterations, 3);
        assert!(
            out[0].f < 0.5 * (4.4f64.powi(2) + 2.2f64.powi(2)),
            "f went down"
        );
    }

    /// A box that cuts off the unconstrained optimum: min (x - 3)^2 +
    /// (y - x)^2 + (y - 2)^2 over x <= 1 is at x = 1, y = 1.5 (the
    /// stationary y for x = 1), with the gradient pushing x out of the box.
    /// Starts inside, on the bound and outside (clamped) all end there.
    #[test]
    fn bounds_hold_and_the_constrained_optimum_is_found() {
        let mut prob = Residuals {
            dim: 2,
            rows: 3,
            w: vec![2.0, 2.0, 2.0],
            lo: vec![f64::NEG_INFINITY, 0.0],
            hi: vec![1.0, 10.0],
            fun: |x: &[f64], r: &mut [f64], j: &mut [f64]| {
                r.copy_from_slice(&[x[0] - 3.0, x[1] - x[0], x[1] - 2.0]);
                j.copy_from_slice(&[1.0, 0.0, -1.0, 1.0, 0.0, 1.0]);
            },
        };
        let x0 = vec![vec![-5.0, 9.0], vec![1.0, 0.0], vec![7.0, 20.0]];
        let (out, _) = least_squares_batch(&mut prob, &x0, &LmOptions::default(), |_| {}).unwrap();
        for o in &out {
            assert_eq!(o.status, Status::Converged, "{o:?}");
            assert_eq!(o.x[0], 1.0, "{o:?}");
            assert!((o.x[1] - 1.5).abs() < 1e-7, "{o:?}");
            assert!((o.f - 4.5).abs() < 1e-14, "{o:?}");
        }
    }

    /// A non-linear fit whose data the model reproduces exactly, y = a
    /// exp(-k t), with k in a box and k's optimum inside it: the exact
    /// parameters, f at rounding level. A start where the model is not
    /// finite ends as non_finite.
    #[test]
    fn exact_data_are_recovered_and_a_non_finite_start_is_reported() {
        let t: Vec<f64> = (0..20).map(|i| i as f64 * 0.25).collect();
        let y: Vec<f64> = t.iter().map(|&t| 2.5 * (-0.7 * t).exp()).collect();
        let mut prob = Residuals {
            dim: 2,
            rows: 20,
            w: vec![0.05; 20],
            lo: vec![f64::NEG_INFINITY, 0.0],
            hi: vec![f64::INFINITY, 5.0],
            fun: |x: &[f64], r: &mut [f64], j: &mut [f64]| {
                for i in 0..20 {
                    let e = (-x[1] * t[i]).exp();
                    r[i] = x[0] * e - y[i] + if x[0] > 1e3 { f64::NAN } else { 0.0 };
                    j[i * 2] = e;
                    j[i * 2 + 1] = -x[0] * t[i] * e;
                }
            },
        };
        let x0 = vec![vec![1.0, 4.0], vec![-3.0, 0.0], vec![2e3, 1.0]];
        let (out, _) = least_squares_batch(&mut prob, &x0, &LmOptions::default(), |_| {}).unwrap();
        for o in &out[..2] {
            assert_eq!(o.status, Status::Converged, "{o:?}");
            assert!(
                (o.x[0] - 2.5).abs() < 1e-9 && (o.x[1] - 0.7).abs() < 1e-9,
                "{o:?}"
            );
            assert!(o.f < 1e-25, "{o:?}");
        }
        assert_eq!(out[2].status, Status::NonFinite);
    }

    /// A start that no step can leave (every trial is outside the law's
    /// domain) is not called converged when its gradient is not
    /// negligible; the same start at the optimum is.
    #[test]
    fn a_start_no_step_leaves_is_not_converged() {
        for (y, want) in [(3.0, Status::LineSearchFailed), (1.0, Status::Converged)] {
            let (lo, hi) = unbounded(1);
            let mut p = Residuals {
                dim: 1,
                rows: 1,
                w: vec![1.0],
                lo,
                hi,
                // r = x - y, defined at x = 1 only.
                fun: move |x: &[f64], r: &mut [f64], j: &mut [f64]| {
                    r[0] = if x[0] == 1.0 { x[0] - y } else { f64::NAN };
                    j[0] = 1.0;
                },
            };
            let (out, _) =
                least_squares_batch(&mut p, &[vec![1.0]], &LmOptions::default(), |_| {}).unwrap();
            assert_eq!(out[0].status, want, "y = {y}: {:?}", out[0]);
            assert_eq!(out[0].x, vec![1.0]);
        }
    }
}
