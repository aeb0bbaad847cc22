//! Projected L-BFGS with a backtracking (Armijo) line search, written as a
//! per-problem state machine so that many problems share each batched
//! objective call. Box bounds are enforced by projecting trial points;
//! coordinates held at a bound by the gradient leave the search direction.

use std::collections::VecDeque;

use rayon::prelude::*;

/// How a problem ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Running,
    Converged,
    MaxIterations,
    LineSearchFailed,
    NonFinite,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Converged => "converged",
            Status::MaxIterations => "max_iterations",
            Status::LineSearchFailed => "line_search_failed",
            Status::NonFinite => "non_finite",
        }
    }

    pub const ENDED: [Status; 4] = [
        Status::Converged,
        Status::MaxIterations,
        Status::LineSearchFailed,
        Status::NonFinite,
    ];
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// Number of correction pairs kept. The law's valleys are narrow and
    /// the problems small, so twice the usual memory pays for itself.
    pub memory: usize,
    pub max_iter: usize,
    /// Converged when three accepted steps in a row each lower f by less
    /// than ftol * |f|.
    pub ftol: f64,
    /// Converged when the projected gradient's largest entry is below
    /// gtol * max(|f|, f_floor): the objective is a mean of squared
    /// residuals, so its gradient scales with it.
    pub gtol: f64,
    /// Trial points a line search may use before giving up.
    pub max_linesearch: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            memory: 10,
            max_iter: 1000,
            ftol: 1e-10,
            gtol: 1e-8,
            max_linesearch: 30,
        }
    }
}

/// Objective of a batch of problems in the same space of dimension `dim`.
pub trait BatchObjective {
    fn dim(&self) -> usize;
    /// Box bounds of every coordinate.
    fn bounds(&self) -> (Vec<f64>, Vec<f64>);
    /// For each point `xs[k*dim..(k+1)*dim]`, write f into `f[k]` and the
    /// gradient into `g[k*dim..]`. `ids[k]` says which problem the point
    /// belongs to (lets objectives differ per problem, e.g. by weights).
    fn evaluate(
        &mut self,
        ids: &[usize],
        xs: &[f64],
        f: &mut [f64],
        g: &mut [f64],
    ) -> anyhow::Result<()>;
}

/// Final state of one problem.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub x: Vec<f64>,
    pub f: f64,
    pub status: Status,
    pub iterations: usize,
    /// Objective evaluations this problem used.
    pub evaluations: usize,
}

/// Reported after every batched call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    pub iteration: usize,
    pub active: usize,
    pub best: f64,
}

const ARMIJO_C1: f64 = 1e-4;
/// Curvature condition of the weak Wolfe line search.
const WOLFE_C2: f64 = 0.9;
/// Growth of the step while the curvature condition fails.
const EXPAND: f64 = 4.0;
/// Consecutive steps below ftol that count as convergence.
const SMALL_STEPS_TO_CONVERGE: usize = 3;
/// Problems per parallel task when updating after an evaluation: enough to
/// outweigh the task's overhead.
const UPDATE_CHUNK: usize = 64;

struct Problem {
    x: Vec<f64>,
    f: f64,
    g: Vec<f64>,
    dir: Vec<f64>,
    /// Step length of the current trial along `dir`.
    step: f64,
    trial: Vec<f64>,
    ls_tries: usize,
    /// Bracket of the weak-Wolfe line search: the longest step known to
    /// satisfy the sufficient-decrease condition (with its point, value
    /// and gradient) and the shortest known to violate it.
    ls_lo: Option<(f64, Vec<f64>, f64, Vec<f64>)>,
    ls_hi: f64,
    s_hist: VecDeque<Vec<f64>>,
    y_hist: VecDeque<Vec<f64>>,
    status: Status,
    iterations: usize,
    evaluations: usize,
    small_steps: usize,
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

impl Problem {
    /// Projected gradient: zero where the bound blocks descent.
    fn projected_grad_inf(&self, lo: &[f64], hi: &[f64]) -> f64 {
        let mut m: f64 = 0.0;
        for i in 0..self.x.len() {
            let g = self.g[i];
            let blocked = (self.x[i] <= lo[i] && g > 0.0) || (self.x[i] >= hi[i] && g < 0.0);
            if !blocked {
                m = m.max(g.abs());
            }
        }
        m
    }

    /// Two-loop recursion on the free (unblocked) coordinates.
    fn direction(&mut self, lo: &[f64], hi: &[f64]) {
        let n = self.x.len();
        let blocked: Vec<bool> = (0..n)
            .map(|i| {
                (self.x[i] <= lo[i] && self.g[i] > 0.0) || (self.x[i] >= hi[i] && self.g[i] < 0.0)
            })
            .collect();
        let mut q: Vec<f64> = (0..n)
            .map(|i| if blocked[i] { 0.0 } else { -self.g[i] })
            .collect();
        let m = self.s_hist.len();
        let mut alpha = vec![0.0; m];
        for j in (0..m).rev() {
            let (s, y) = (&self.s_hist[j], &self.y_hist[j]);
            let a = dot(s, &q) / dot(s, y);
            alpha[j] = a;
            for i in 0..n {
                q[i] -= a * y[i];
            }
        }
        if let (Some(s), Some(y)) = (self.s_hist.back(), self.y_hist.back()) {
            let gamma = dot(s, y) / dot(y, y);
            q.iter_mut().for_each(|v| *v *= gamma);
        } else {
            // First step: a unit step along the scaled steepest descent.
            let norm = dot(&q, &q).sqrt();
            if norm > 1.0 {
                q.iter_mut().for_each(|v| *v /= norm);
            }
        }
        for ((s, y), a) in self.s_hist.iter().zip(&self.y_hist).zip(&alpha) {
            let b = dot(y, &q) / dot(s, y);
            for i in 0..n {
                q[i] += (a - b) * s[i];
            }
        }
        for i in 0..n {
            if blocked[i] {
                q[i] = 0.0;
            }
        }
        // Not a descent direction (can happen with projection): restart
        // from steepest descent.
        if dot(&q, &self.g) >= 0.0 {
            self.s_hist.clear();
            self.y_hist.clear();
            q = (0..n)
                .map(|i| if blocked[i] { 0.0 } else { -self.g[i] })
                .collect();
            let norm = dot(&q, &q).sqrt();
            if norm > 1.0 {
                q.iter_mut().for_each(|v| *v /= norm);
            }
        }
        self.dir = q;
        self.step = 1.0;
        self.ls_tries = 0;
        self.ls_lo = None;
        self.ls_hi = f64::INFINITY;
    }

    /// Take the objective `ft` and gradient `gt` at the trial point: set
    /// up the first step, accept the trial, or continue the line search.
    fn update(&mut self, first: bool, ft: f64, gt: &[f64], opts: &Options, lo: &[f64], hi: &[f64]) {
        let p = self;
        p.evaluations += 1;
        let finite = ft.is_finite() && gt.iter().all(|v| v.is_finite());
        if first {
            if !finite {
                p.status = Status::NonFinite;
                return;
            }
            p.f = ft;
            p.g.copy_from_slice(gt);
            p.direction(lo, hi);
            p.make_trial(lo, hi);
            return;
        }
        let dx: Vec<f64> = p.trial.iter().zip(&p.x).map(|(a, b)| a - b).collect();
        let slope = dot(&p.g, &dx);
        let decrease = finite && slope < 0.0 && ft <= p.f + ARMIJO_C1 * slope;
        if decrease && dot(gt, &dx) >= WOLFE_C2 * slope {
            p.accept(p.trial.clone(), ft, gt.to_vec(), opts, lo, hi);
            return;
        }
        p.ls_tries += 1;
        if decrease {
            // Still descending steeply: remember the point and look further.
            p.ls_lo = Some((p.step, p.trial.clone(), ft, gt.to_vec()));
            p.step = if p.ls_hi.is_finite() {
                0.5 * (p.step + p.ls_hi)
            } else {
                p.step * EXPAND
            };
        } else {
            p.ls_hi = p.step;
            p.step = match &p.ls_lo {
                Some((lo_step, ..)) => 0.5 * (lo_step + p.ls_hi),
                // Minimiser of the quadratic through f, slope and ft,
                // kept within [0.1, 0.5] of the failed step.
                None if finite && slope < 0.0 => {
                    let denom = 2.0 * (ft - p.f - slope);
                    p.step
                        * if denom > 0.0 {
                            (-slope / denom).clamp(0.1, 0.5)
                        } else {
                            0.5
                        }
                }
                None => p.step * 0.1,
            };
        }
        if p.ls_tries >= opts.max_linesearch || dx.iter().all(|v| *v == 0.0) && !decrease {
            if let Some((_, x, f, g)) = p.ls_lo.take() {
                // Sufficient decrease without the curvature condition
                // is still progress.
                p.accept(x, f, g, opts, lo, hi);
            } else if !p.s_hist.is_empty() {
                // The quasi-Newton model misled us; retry from
                // steepest descent before giving up.
                p.s_hist.clear();
                p.y_hist.clear();
                p.direction(lo, hi);
                p.make_trial(lo, hi);
            } else {
                p.status = Status::LineSearchFailed;
            }
            return;
        }
        p.make_trial(lo, hi);
    }

    /// Move to an accepted point: update the history, test convergence,
    /// and set up the next line search.
    fn accept(&mut self, x: Vec<f64>, f: f64, g: Vec<f64>, opts: &Options, lo: &[f64], hi: &[f64]) {
        let s: Vec<f64> = x.iter().zip(&self.x).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = g.iter().zip(&self.g).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        // Skip pairs with no useful positive curvature (keeps H positive definite).
        if sy > 1e-12 * dot(&y, &y).sqrt() * dot(&s, &s).sqrt() && sy > 0.0 {
            if self.s_hist.len() == opts.memory {
                self.s_hist.pop_front();
                self.y_hist.pop_front();
            }
            self.s_hist.push_back(s);
            self.y_hist.push_back(y);
        }
        let f_old = self.f;
        self.x = x;
        self.f = f;
        self.g = g;
        self.iterations += 1;
        let scale = f.abs().max(1e-300);
        // One step of little progress can follow a poor curvature estimate;
        // only a run of them means the start has settled.
        self.small_steps = if f_old - f <= opts.ftol * scale {
            self.small_steps + 1
        } else {
            0
        };
        if self.small_steps >= SMALL_STEPS_TO_CONVERGE
            || self.projected_grad_inf(lo, hi) <= opts.gtol * scale
        {
            self.status = Status::Converged;
        } else if self.iterations >= opts.max_iter {
            self.status = Status::MaxIterations;
        } else {
            self.direction(lo, hi);
            self.make_trial(lo, hi);
        }
    }

    fn make_trial(&mut self, lo: &[f64], hi: &[f64]) {
        for i in 0..self.x.len() {
            self.trial[i] = (self.x[i] + self.step * self.dir[i]).clamp(lo[i], hi[i]);
        }
    }
}

/// Estimated bytes of host memory one problem of `dim` parameters takes
/// through a whole fit: its start, its state and 2 x `memory` history
/// vectors, the batch's copies, and the driver's records of it. Each
/// vector is counted with its allocation overhead, since they are small.
pub fn problem_bytes(dim: usize, memory: usize) -> f64 {
    let vectors = 14.0 + 2.0 * memory as f64;
    vectors * (48.0 + 8.0 * dim as f64) + 512.0
}

/// Minimise every problem from its start in `x0` (one row of `dim` values
/// per problem). `progress` is called after each batched evaluation.
pub fn minimize_batch<O: BatchObjective>(
    obj: &mut O,
    x0: &[Vec<f64>],
    opts: &Options,
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
                dir: vec![0.0; dim],
                step: 1.0,
                ls_tries: 0,
                ls_lo: None,
                ls_hi: f64::INFINITY,
                s_hist: VecDeque::new(),
                y_hist: VecDeque::new(),
                status: Status::Running,
                iterations: 0,
                evaluations: 0,
                small_steps: 0,
            }
        })
        .collect();

    let mut ids: Vec<usize> = Vec::with_capacity(kk);
    let mut xs: Vec<f64> = Vec::with_capacity(kk * dim);
    let mut fs = vec![0.0; kk];
    let mut gs = vec![0.0; kk * dim];
    let mut calls = 0usize;
    let mut first = true;
    let mut slot_of: Vec<usize> = Vec::with_capacity(kk);
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
        obj.evaluate(&ids, &xs, &mut fs[..m], &mut gs[..m * dim])?;
        calls += 1;
        // Problems update independently, so in parallel: with thousands of
        // starts and a fast (GPU) backend, a serial host loop would take
        // longer than the evaluation itself. Results do not depend on the
        // thread count.
        slot_of.clear();
        slot_of.resize(kk, usize::MAX);
        for (slot, &k) in ids.iter().enumerate() {
            slot_of[k] = slot;
        }
        let (fs, gs, slot_of) = (&fs, &gs, &slot_of);
        probs
            .par_iter_mut()
            .with_min_len(UPDATE_CHUNK)
            .enumerate()
            .for_each(|(k, p)| {
                let slot = slot_of[k];
                if slot != usize::MAX {
                    p.update(
                        first,
                        fs[slot],
                        &gs[slot * dim..(slot + 1) * dim],
                        opts,
                        &lo,
                        &hi,
                    );
                }
            });
        first = false;
        let best = probs
            .iter()
            .map(|p| p.f)
            .filter(|f| f.is_finite())
            .fold(f64::INFINITY, f64::min);
        let active = probs.iter().filter(|p| p.status == Status::Running).count();
        let iteration = probs.iter().map(|p| p.iterations).max().unwrap_or(0);
        progress(Progress {
            iteration,
            active,
            best,
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

    /// Test objectives with known answers; every problem of a batch is the
    /// same function.
    enum Fun {
        /// sum a_i (x_i - c_i)^2: an ill-conditioned bowl with its
        /// minimum at c.
        Bowl { a: Vec<f64>, c: Vec<f64> },
        /// Rosenbrock's valley, minimum 0 at (1, 1).
        Rosenbrock,
        /// NaN everywhere.
        Nan,
    }

    struct Test {
        fun: Fun,
        lo: Vec<f64>,
        hi: Vec<f64>,
    }

    impl Test {
        fn new(fun: Fun, dim: usize) -> Test {
            Test {
                fun,
                lo: vec![f64::NEG_INFINITY; dim],
                hi: vec![f64::INFINITY; dim],
            }
        }
    }

    impl BatchObjective for Test {
        fn dim(&self) -> usize {
            self.lo.len()
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
        ) -> anyhow::Result<()> {
            let d = self.dim();
            for k in 0..ids.len() {
                let (x, gk) = (&xs[k * d..(k + 1) * d], &mut g[k * d..(k + 1) * d]);
                f[k] = match &self.fun {
                    Fun::Bowl { a, c } => {
                        for i in 0..d {
                            gk[i] = 2.0 * a[i] * (x[i] - c[i]);
                        }
                        (0..d).map(|i| a[i] * (x[i] - c[i]).powi(2)).sum()
                    }
                    Fun::Rosenbrock => {
                        let (u, v) = (x[0], x[1]);
                        gk[0] = -2.0 * (1.0 - u) - 400.0 * u * (v - u * u);
                        gk[1] = 200.0 * (v - u * u);
                        (1.0 - u).powi(2) + 100.0 * (v - u * u).powi(2)
                    }
                    Fun::Nan => {
                        gk.fill(f64::NAN);
                        f64::NAN
                    }
                };
            }
            Ok(())
        }
    }

    fn run(t: &mut Test, x0: &[Vec<f64>], opts: &Options) -> Vec<Outcome> {
        minimize_batch(t, x0, opts, |_| {}).unwrap().0
    }

    fn bowl() -> Fun {
        Fun::Bowl {
            a: vec![1.0, 1e3, 1e-2, 30.0],
            c: vec![0.5, -2.0, 3.0, 1e-3],
        }
    }

    #[test]
    fn reaches_the_minimum_of_an_ill_conditioned_bowl() {
        let mut t = Test::new(bowl(), 4);
        let opts = Options {
            gtol: 1e-12,
            ftol: 1e-16,
            ..Options::default()
        };
        let out = run(
            &mut t,
            &[vec![0.0; 4], vec![10.0, 10.0, -10.0, 10.0]],
            &opts,
        );
        let Fun::Bowl { c, .. } = &t.fun else {
            unreachable!()
        };
        for o in &out {
            assert_eq!(o.status, Status::Converged, "{o:?}");
            for (x, c) in o.x.iter().zip(c) {
                assert!((x - c).abs() < 1e-5, "{:?} vs {c:?}", o.x);
            }
            assert!(o.f < 1e-10, "{}", o.f);
        }
    }

    #[test]
    fn follows_rosenbrocks_valley_to_its_minimum() {
        let mut t = Test::new(Fun::Rosenbrock, 2);
        let opts = Options {
            gtol: 1e-12,
            ftol: 1e-16,
            ..Options::default()
        };
        let out = run(&mut t, &[vec![-1.2, 1.0]], &opts);
        assert_eq!(out[0].status, Status::Converged, "{:?}", out[0]);
        assert!((out[0].x[0] - 1.0).abs() < 1e-4 && (out[0].x[1] - 1.0).abs() < 1e-4);
        assert!(out[0].iterations > 10, "{:?}", out[0]);
    }

    #[test]
    fn stops_on_a_bound_where_the_minimum_lies_outside_the_box() {
        // Box [0, 1]^4: the bowl's minimum clamped into it is the answer,
        // with coordinates 1 and 2 held at a bound.
        let mut t = Test::new(bowl(), 4);
        t.lo = vec![0.0; 4];
        t.hi = vec![1.0; 4];
        let opts = Options {
            gtol: 1e-12,
            ftol: 1e-16,
            ..Options::default()
        };
        // A start outside the box is projected into it first.
        let out = run(&mut t, &[vec![0.2; 4], vec![5.0, -5.0, 0.5, 0.5]], &opts);
        let want = [0.5, 0.0, 1.0, 1e-3];
        for o in &out {
            assert!(o.status == Status::Converged, "{o:?}");
            for (x, w) in o.x.iter().zip(want) {
                assert!((x - w).abs() < 1e-6, "{:?}", o.x);
                assert!((0.0..=1.0).contains(x), "{:?}", o.x);
            }
        }
        assert_eq!(out[0].x[1], 0.0);
        assert_eq!(out[0].x[2], 1.0);
    }

    #[test]
    fn an_iteration_limit_ends_with_max_iterations() {
        let mut t = Test::new(Fun::Rosenbrock, 2);
        let opts = Options {
            max_iter: 3,
            ..Options::default()
        };
        let out = run(&mut t, &[vec![-1.2, 1.0]], &opts);
        assert_eq!(out[0].status, Status::MaxIterations, "{:?}", out[0]);
        assert_eq!(out[0].iterations, 3);
        // It still went downhill.
        assert!(out[0].f < 24.2, "{:?}", out[0]);
    }

    #[test]
    fn a_start_where_the_objective_is_not_finite_ends_non_finite() {
        let mut t = Test::new(Fun::Nan, 2);
        let out = run(&mut t, &[vec![0.0, 0.0]], &Options::default());
        assert_eq!(out[0].status, Status::NonFinite, "{:?}", out[0]);
    }

    #[test]
    fn problems_of_a_batch_end_as_they_would_alone() {
        let mut t = Test::new(Fun::Rosenbrock, 2);
        let starts = vec![vec![-1.2, 1.0], vec![2.0, -1.0], vec![0.0, 3.0]];
        let together = run(&mut t, &starts, &Options::default());
        for (s, o) in starts.iter().zip(&together) {
            let alone = run(&mut t, std::slice::from_ref(s), &Options::default());
            assert_eq!(alone[0].x, o.x);
            assert_eq!(alone[0].f.to_bits(), o.f.to_bits());
            assert_eq!(alone[0].iterations, o.iterations);
        }
    }
}
