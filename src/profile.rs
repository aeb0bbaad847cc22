//! Profile-likelihood intervals. For a parameter, a grid of values around
//! the optimum; at each the parameter is held and the others refitted from
//! the optimum (every value one more problem of a lockstep batch); the
//! interval is where the likelihood-ratio statistic
//! (f(v) - f) (n - k) / f (the drop in fit in units of the residual
//! variance, for mse) stays below the chi-squared(1) quantile of the
//! level. Unlike ± z SE it follows the objective's real shape, so it is
//! asymmetric where the law is, and it stays honest for parameters whose
//! curvature changes over their interval (a weakly identified term's
//! exponent and offset); an interval the grid does not close is reported
//! open.

use anyhow::bail;
use indexmap::IndexMap;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use statrs::distribution::{ChiSquared, ContinuousCDF};

use crate::backend::jacobian::{HuberCurvature, RowJacobian, Workspace};
use crate::identify::{Flag, Identifiability, FLAG_HALF_WIDTH};
use crate::law::space::LawSpace;
use crate::law::CompiledLaw;
use crate::objective::{LossKind, Objective};
use crate::optim::{self, BatchLeastSquares, LmOptions, Status};
use crate::polish::{theta_moments, Polished, POLISH};

/// What `--profile` asks for: the parameters (all free ones when empty)
/// and the intervals' coverage.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileRequest {
    pub names: Vec<String>,
    pub level: f64,
}

/// Grid values on each side of the optimum at first.
const SIDE: usize = 11;
/// With a finite standard error, the grid's distances from the optimum in
/// asymptotic half-widths sqrt(threshold) SE: dense near 1, where a
/// well-determined parameter's ends lie, then far enough out (8) for a
/// parameter whose weak partner lets the profile stay flat for longer;
/// beyond, the values a side is extended by while it stays below the
/// threshold.
const STEPS: [f64; SIDE + EXTRA] = [
    0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0, 32.0, 48.0, 64.0,
    96.0, 128.0,
];
/// Values a side may be extended by, four at a time.
const EXTRA: usize = 8;
const EXTEND_BY: usize = 4;
/// Without one (or from a bound), a positive parameter's grid spans this
/// many decades on each side at first (the extension goes on at the same
/// pace).
const DECADES: f64 = 2.5;

/// The refits of a profile: the polish's rules, to a looser decrement (f
/// to 1e-14 of itself is far below what the statistic resolves).
const REFIT: LmOptions = LmOptions {
    decrement: 1e-7,
    lambda0: 1e-6,
    ..POLISH
};

/// An end is refined until the statistic is this close to its threshold
/// (relative): its value is then exact to far better than 1e-4.
const END_TOL: f64 = 1e-7;
/// Most refits an end's refinement takes.
const END_ITER: usize = 40;
/// A side's statistic may fall outward by this much (relative to the
/// threshold) before the side counts as not monotone: rounding of refits
/// converged to 1e-14 of f stays far below it.
const MONOTONE_TOL: f64 = 1e-4;
/// Passes of restarts from neighbours, at most.
const PASSES: usize = 2 * (SIDE + EXTRA);

/// Profile intervals of a fit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileReport {
    /// Coverage of the intervals.
    pub level: f64,
    /// The statistic's bound: the chi-squared(1) quantile of `level`.
    pub threshold: f64,
    pub params: IndexMap<String, ProfileInterval>,
    /// Things to know: a profile that found a lower objective than the fit.
    #[serde(default)]
    pub notes: Vec<String>,
}

/// How an end of an interval was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum End {
    /// The statistic crosses the threshold there; the end is refined until
    /// it is at the threshold.
    #[default]
    Found,
    /// The statistic stays below the threshold up to the parameter's
    /// bound, which is the end.
    Bound,
    /// It stays below as far as the profile went: no end is given.
    Open,
    /// The profile is not monotone on that side (a refit there found a
    /// lower objective than one nearer the optimum, or did not converge):
    /// no end is given rather than a wrong one.
    Unreliable,
}

impl End {
    pub fn name(self) -> &'static str {
        match self {
            End::Found => "found",
            End::Bound => "bound",
            End::Open => "open",
            End::Unreliable => "unreliable",
        }
    }
}

fn nan() -> f64 {
    f64::NAN
}

/// One parameter's profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileInterval {
    /// Ends of the interval: the parameter's bound where the statistic
    /// stays below the threshold up to it, null where no end is given
    /// (`lo_end`, `hi_end` say why).
    pub lo: f64,
    pub hi: f64,
    #[serde(default)]
    pub lo_end: End,
    #[serde(default)]
    pub hi_end: End,
    /// The statistic reached at each end: the threshold (to 1e-7 of it)
    /// where found, its value at the bound, or at the farthest value
    /// profiled where open.
    #[serde(default = "nan")]
    pub lo_statistic: f64,
    #[serde(default = "nan")]
    pub hi_statistic: f64,
    /// Why an end is open, a bound or unreliable, when one is.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub open: String,
    /// Every value profiled, ascending, the optimum among them, and the
    /// statistic at each.
    pub values: Vec<f64>,
    pub statistic: Vec<f64>,
}

impl ProfileInterval {
    /// The interval as text, its ends written by `fmt`: "[a, b]", an open
    /// end "open" ("[a, open)"), an unreliable one "?", and "open" alone
    /// when neither end is known to be finite.
    pub fn text(&self, fmt: &dyn Fn(f64) -> String) -> String {
        let end = |v: f64, kind: End| match kind {
            End::Unreliable => "?".to_string(),
            _ if v.is_finite() => fmt(v),
            _ => "open".to_string(),
        };
        match (
            self.lo.is_finite(),
            self.hi.is_finite(),
            self.lo_end,
            self.hi_end,
        ) {
            (false, false, End::Open, End::Open) => "open".to_string(),
            (true, false, _, End::Open) => format!("[{}, open)", end(self.lo, self.lo_end)),
            (false, true, End::Open, _) => format!("(open, {}]", end(self.hi, self.hi_end)),
            _ => format!(
                "[{}, {}]",
                end(self.lo, self.lo_end),
                end(self.hi, self.hi_end)
            ),
        }
    }
}

/// Refits: problem k holds the profiled parameter at a value, in
/// `spaces[k]`, on the rows of `rows`.
struct Refits<'a> {
    spaces: Vec<&'a LawSpace>,
    rows: &'a RowJacobian,
    curvature: HuberCurvature,
}

impl BatchLeastSquares for Refits<'_> {
    fn dim(&self) -> usize {
        self.spaces[0].dim()
    }

    fn bounds(&self) -> (Vec<f64>, Vec<f64>) {
        self.spaces[0].bounds()
    }

    fn evaluate(
        &mut self,
        ids: &[usize],
        xs: &[f64],
        f: &mut [f64],
        g: &mut [f64],
        h: &mut [f64],
    ) -> anyhow::Result<()> {
        let m = self.dim();
        ids.par_iter()
            .zip(xs.par_chunks(m))
            .zip(f.par_iter_mut())
            .zip(g.par_chunks_mut(m))
            .zip(h.par_chunks_mut(m * m))
            .for_each_init(
                || (Workspace::default(), Default::default()),
                |(ws, scratch), ((((&id, x), f), g), h)| {
                    *f = theta_moments(
                        self.spaces[id],
                        self.rows,
                        None,
                        self.curvature,
                        x,
                        ws,
                        g,
                        h,
                        scratch,
                    );
                },
            );
        Ok(())
    }
}

/// A value of the profiled parameter and the best refit found there.
#[derive(Debug, Clone)]
struct Point {
    v: f64,
    /// The other free parameters (theta of the space with the parameter
    /// held at `v`) and the objective.
    theta: Vec<f64>,
    f: f64,
    converged: bool,
}

/// The refits of one parameter: its rows, and how refits run.
struct Profiler<'a> {
    law: &'a CompiledLaw,
    raw: &'a LawSpace,
    i: usize,
    rows: RowJacobian,
    /// A Huber fit: refits search by L-BFGS before Levenberg-Marquardt.
    huber: bool,
}

impl Profiler<'_> {
    fn point(&self, v: f64) -> Point {
        Point {
            v,
            theta: Vec::new(),
            f: f64::INFINITY,
            converged: false,
        }
    }

    /// Refit each `(point, start)`, the start the other parameters of some
    /// point (theta in any space of this profile: they share the free
    /// set), keeping at each point its best. Returns which points improved
    /// by more than `by`.
    fn refit(
        &self,
        points: &mut [Point],
        jobs: &[(usize, Vec<f64>)],
        by: f64,
    ) -> Result<Vec<bool>> {
        let mut improved = vec![false; points.len()];
        if jobs.is_empty() {
            return Ok(improved);
        }
        // One space per value refitted, shared by its starts.
        let mut made: Vec<(usize, LawSpace)> = Vec::new();
        let at: Vec<usize> = jobs
            .iter()
            .map(|(k, _)| match made.iter().position(|(m, _)| m == k) {
                Some(a) => a,
                None => {
                    made.push((*k, self.raw.with_fixed(self.law, self.i, points[*k].v)));
                    made.len() - 1
                }
            })
            .collect();
        let spaces: Vec<&LawSpace> = at.iter().map(|&a| &made[a].1).collect();
        let dim = spaces[0].dim();
        let results: Vec<(f64, Vec<f64>, bool)> = if dim == 0 {
            // The only free parameter is the one held: nothing to refit,
            // the objective at each value is the profile.
            let (mut ws, mut scratch) = (Workspace::default(), Default::default());
            jobs.iter()
                .zip(&spaces)
                .map(|((_, x), space)| {
                    let f = theta_moments(
                        space,
                        &self.rows,
                        None,
                        HuberCurvature::Hessian,
                        x,
                        &mut ws,
                        &mut [],
                        &mut [],
                        &mut scratch,
                    );
                    (f, x.clone(), true)
                })
                .collect()
        } else {
            let mut refits = Refits {
                spaces,
                rows: &self.rows,
                curvature: HuberCurvature::Reweighted,
            };
            let mut x0: Vec<Vec<f64>> = jobs.iter().map(|(_, x)| x.clone()).collect();
            // A Huber refit far from its optimum may have every residual
            // beyond delta, where Gauss-Newton's curvature is 0: it is
            // searched by reweighted least squares first (IRLS, as a fit
            // searches where that curvature fails), then polished on the
            // exact curvature.
            // L-BFGS took 4x the time here, to the same ends (the
            // multi-power law's profile of beta).
            if self.huber {
                let (searched, _) =
                    optim::least_squares_batch(&mut refits, &x0, &LmOptions::default(), |_| {})?;
                for (x, o) in x0.iter_mut().zip(searched) {
                    if o.f.is_finite() {
                        *x = o.x;
                    }
                }
            }
            refits.curvature = HuberCurvature::Hessian;
            let (outcomes, _) = optim::least_squares_batch(&mut refits, &x0, &REFIT, |_| {})?;
            outcomes
                .into_iter()
                .map(|o| (o.f, o.x, o.status == Status::Converged))
                .collect()
        };
        for ((k, _), (f, x, conv)) in jobs.iter().zip(results) {
            let p = &mut points[*k];
            if f.is_finite() && f < p.f {
                improved[*k] |= p.f - f > by;
                (p.f, p.theta, p.converged) = (f, x, conv);
            }
        }
        Ok(improved)
    }
}

type Result<T> = anyhow::Result<T>;

/// The profiles of the parameters `names` (all free ones when empty) of a
/// fit polished to `best` in `space` (see [`crate::polish`]), over `n`
/// rows; `rows_for(wanted)` makes the rows' Jacobian with columns for
/// `wanted`; `ends` are where the fit's starts ended (objective and
/// parameters); `calibration` is sum w psi' / sum w psi^2 at the optimum
/// for a Huber fit (`None` for mse).
///
/// Each value of a parameter is refitted from the optimum, from the ends
/// of other starts inside the confidence region (another valley the
/// optimum's start cannot reach: a term switched off by its exponent
/// instead of its amplitude), and from the refits at its neighbours, in passes until no refit improves, so that
/// the refits follow a valley the optimum's own start cannot reach. A side
/// whose statistic stays below the threshold is extended outwards; each
/// crossing is then refined, by false position on the signed root of the
/// statistic, until the statistic at the end is at the threshold.
#[allow(clippy::too_many_arguments)]
pub fn profile(
    law: &CompiledLaw,
    space: &LawSpace,
    rows_for: &dyn Fn(&[usize]) -> RowJacobian,
    best: &Polished,
    ends: &[(f64, Vec<f64>)],
    calibration: Option<f64>,
    n: usize,
    ident: &Identifiability,
    objective: Objective,
    names: &[String],
    level: f64,
) -> Result<ProfileReport> {
    if objective.loss != LossKind::Mse && calibration.is_none() {
        bail!("a Huber profile needs the calibration of its statistic");
    }
    let raw = space.raw(law);
    let free_names: Vec<&String> = raw.free().iter().map(|&i| &law.params[i]).collect();
    let wanted: Vec<usize> = if names.is_empty() {
        raw.free().to_vec()
    } else {
        let mut out = Vec::new();
        for name in names {
            let Some(i) = law.params.iter().position(|p| p == name) else {
                bail!(
                    "--profile {name}: the law has no parameter {name} (its parameters: {})",
                    law.params.join(", ")
                );
            };
            if !raw.free().contains(&i) {
                bail!(
                    "--profile {name}: {name} is fixed; the free parameters are {}",
                    free_names
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            if !out.contains(&i) {
                out.push(i);
            }
        }
        out
    };
    let threshold = ChiSquared::new(1.0)
        .expect("one degree of freedom")
        .inverse_cdf(level);
    let dof = n as f64 - raw.dim() as f64;
    if dof <= 0.0 {
        bail!("--profile needs more rows than free parameters");
    }
    if calibration == Some(0.0) {
        return Ok(ProfileReport {
            level,
            threshold,
            params: IndexMap::new(),
            notes: vec![
                "no profiles: every residual is beyond Huber's delta, where the loss has no \
                 curvature to calibrate the statistic (a larger --delta would give one)"
                    .into(),
            ],
        });
    }
    if best.exact || best.f <= 0.0 {
        // No residual variance to measure the statistic in: every value
        // but the optimum would be infinitely unlikely.
        return Ok(ProfileReport {
            level,
            threshold,
            params: IndexMap::new(),
            notes: vec![
                "no profiles: the law reproduces the data to rounding (noise-free data), so \
                 there is no residual variance to measure them in"
                    .into(),
            ],
        });
    }
    // mse: the drop in fit in units of the residual variance. Huber: the
    // robust likelihood-ratio statistic, 2 (f(v) - f) (n - k) sum w psi' /
    // sum w psi^2 (f the weighted mean of rho), which is the mse one when
    // no residual passes delta.
    let stat = |f: f64| match calibration {
        Some(c) => 2.0 * (f - best.f) * dof * c,
        None => (f - best.f) * dof / best.f,
    };
    let scale: Vec<f64> = law
        .params
        .iter()
        .map(|n| ident.standard_errors.get(n).copied().unwrap_or(f64::NAN))
        .collect();
    let mut others = other_valleys(&best.params, ends, &scale, &|f| stat(f) <= threshold);
    others.extend(far_starts(law, &raw, best, ident));
    let mut params = IndexMap::new();
    let mut notes = Vec::new();
    for &i in &wanted {
        let name = &law.params[i];
        let se = ident
            .standard_errors
            .get(name)
            .copied()
            .filter(|s| s.is_finite() && *s > 0.0);
        let grid = Grid {
            v0: best.params[i],
            lower: raw.rules[i].lower,
            upper: raw.rules[i].upper,
            start: raw.rules[i].start.as_ref().map(|s| (s.lo, s.hi)),
            step: se.map(|se| threshold.sqrt() * se),
        };
        let fixed = raw.with_fixed(law, i, grid.v0);
        let pr = Profiler {
            law,
            raw: &raw,
            i,
            rows: rows_for(fixed.free()),
            huber: calibration.is_some(),
        };
        let optimum = fixed.to_theta(&best.params);
        let mut starts: Vec<Vec<f64>> = Vec::new();
        for p in &others {
            let x = fixed.to_theta(p);
            if x != optimum && !starts.contains(&x) {
                starts.push(x);
            }
        }
        let others = starts;
        let sides = walk(&pr, &grid, &optimum, &others, best.f, &stat, threshold)?;
        let mut values: Vec<(f64, f64)> = vec![(grid.v0, 0.0)];
        let mut ends = Vec::new();
        for (dir, side) in [-1.0, 1.0].into_iter().zip(&sides) {
            values.extend(side.points.iter().map(|p| (p.v, stat(p.f))));
            ends.push(end_of(&grid, dir, side, &stat, threshold));
        }
        if values.iter().any(|&(_, s)| s < -1e-6 * threshold) {
            notes.push(format!(
                "the profile of {name} found a lower objective than the fit's: the fit's \
                 optimum is not the global one (refit with more starts)"
            ));
        }
        values.sort_by(|a, b| a.0.total_cmp(&b.0));
        let [(lo, lo_end, lo_statistic, lo_why), (hi, hi_end, hi_statistic, hi_why)] =
            [ends[0].clone(), ends[1].clone()];
        let open: Vec<String> = [
            lo_why.map(|w| format!("lower end {w}")),
            hi_why.map(|w| format!("upper end {w}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        params.insert(
            name.clone(),
            ProfileInterval {
                lo,
                hi,
                lo_end,
                hi_end,
                lo_statistic,
                hi_statistic,
                open: open.join("; "),
                values: values.iter().map(|g| g.0).collect(),
                statistic: values.iter().map(|g| g.1).collect(),
            },
        );
    }
    Ok(ProfileReport {
        level,
        threshold,
        params,
        notes,
    })
}

/// Flags the profiles raise that the standard errors may not: an end
/// open or unreliable, or an end farther from the value than half of it
/// (where ± z SE is symmetric, a profile can reach much further on one
/// side). `value` gives a parameter's fitted value.
pub fn flags(report: &ProfileReport, value: &dyn Fn(&str) -> f64) -> Vec<Flag> {
    let pct = format!("{}%", 100.0 * report.level);
    let mut out = Vec::new();
    for (name, iv) in &report.params {
        let v = value(name);
        let mut reason = None;
        for (end, which) in [(iv.lo_end, "below"), (iv.hi_end, "above")] {
            match end {
                End::Open => reason = Some(format!("its {pct} profile interval is open {which}")),
                End::Unreliable => {
                    reason = Some(format!("its profile {which} its value is unreliable"))
                }
                _ => {}
            }
            if reason.is_some() {
                break;
            }
        }
        if reason.is_none() && v != 0.0 {
            let (below, above) = (v - iv.lo, iv.hi - v);
            let (far, which) = if above >= below {
                (above, "above")
            } else {
                (below, "below")
            };
            if far > FLAG_HALF_WIDTH * v.abs() {
                reason = Some(format!(
                    "its {pct} profile interval reaches {}% {which} its value",
                    (100.0 * far / v.abs()).round()
                ));
            }
        }
        if let Some(reason) = reason {
            out.push(Flag {
                param: name.clone(),
                reason,
            });
        }
    }
    out
}

/// Where a parameter's profile goes: its optimum, its bounds, its start
/// range, and the size of a step (sqrt(threshold) SE) when its standard
/// error is finite.
struct Grid {
    v0: f64,
    lower: f64,
    upper: f64,
    start: Option<(f64, f64)>,
    step: Option<f64>,
}

impl Grid {
    /// The finite bound in direction `dir`, if any.
    fn bound(&self, dir: f64) -> Option<f64> {
        Some(if dir < 0.0 { self.lower } else { self.upper }).filter(|b| b.is_finite())
    }

    /// The `k`-th value (from 1) outward in direction `dir`, if the
    /// grid has one; `Some(bound)` and `true` when it reaches the bound.
    fn value(&self, dir: f64, k: usize) -> Option<(f64, bool)> {
        let bound = if dir < 0.0 { self.lower } else { self.upper };
        if (dir < 0.0 && self.v0 <= bound) || (dir > 0.0 && self.v0 >= bound) {
            return None;
        }
        let u = k as f64 / SIDE as f64;
        let v = match (self.step, self.start) {
            (Some(step), _) => self.v0 + dir * STEPS[k - 1] * step,
            (None, _) if self.v0 > 0.0 => self.v0 * 10f64.powf(dir * u * DECADES),
            // From 0 (a positive parameter on its bound) upwards: its start
            // range, then on at the same pace.
            (None, Some((lo, hi))) if dir > 0.0 && lo > 0.0 => {
                let w = (k - 1) as f64 / (SIDE - 1) as f64;
                lo * (hi / lo).powf(w)
            }
            _ => return None,
        };
        if (dir < 0.0 && v <= bound) || (dir > 0.0 && v >= bound) {
            return bound.is_finite().then_some((bound, true));
        }
        Some((v, false))
    }

    /// The coordinate the signed root of the statistic is near linear in:
    /// the value, or its log on a logarithmic grid.
    fn coord(&self, v: f64) -> f64 {
        if self.step.is_none() && v > 0.0 && self.v0 > 0.0 {
            v.ln()
        } else {
            v
        }
    }

    fn uncoord(&self, x: f64) -> f64 {
        if self.step.is_none() && self.v0 > 0.0 {
            x.exp()
        } else {
            x
        }
    }
}

/// One side of a profile: its points outward from the optimum, whether the
/// last is the bound, and the refined end's points (inside them).
struct Side {
    points: Vec<Point>,
    at_bound: bool,
    /// The law is not finite at the next value out.
    undefined: bool,
}

/// Refit both sides of a parameter's profile: the grid from the optimum,
/// passes of restarts from neighbours, the extension of a side that stays
/// below the threshold, and the refinement of each crossing.
fn walk(
    pr: &Profiler,
    grid: &Grid,
    optimum: &[f64],
    others: &[Vec<f64>],
    f0: f64,
    stat: &dyn Fn(f64) -> f64,
    threshold: f64,
) -> Result<[Side; 2]> {
    let dirs = [-1.0, 1.0];
    let mut sides: Vec<Side> = dirs
        .iter()
        .map(|&dir| {
            let mut side = Side {
                points: Vec::new(),
                at_bound: false,
                undefined: false,
            };
            for k in 1..=SIDE {
                match grid.value(dir, k) {
                    Some((v, b)) => {
                        side.points.push(pr.point(v));
                        if b {
                            side.at_bound = true;
                            break;
                        }
                    }
                    None => break,
                }
            }
            side
        })
        .collect();
    // Improvements below this are rounding, not a better valley.
    let by = 1e-10 * f0;
    // First pass: every value from the optimum and the other valleys.
    let first: Vec<(usize, usize, Vec<f64>)> = sides
        .iter()
        .enumerate()
        .flat_map(|(s, side)| {
            (0..side.points.len()).flat_map(move |k| {
                std::iter::once(optimum)
                    .chain(others.iter().map(|x| &x[..]))
                    .map(move |x| (s, k, x.to_vec()))
            })
        })
        .collect();
    let mut dirty = run(pr, &mut sides, &first, by)?;
    loop {
        // Restart from neighbours until no refit improves.
        for _ in 0..PASSES {
            let mut jobs = Vec::new();
            for (s, side) in sides.iter().enumerate() {
                let n = side.points.len();
                for k in 0..n {
                    // From the inner neighbour when it changed in the last
                    // pass (the optimum's was the first pass).
                    if k > 0 && dirty[s][k - 1] {
                        jobs.push((s, k, side.points[k - 1].theta.clone()));
                    }
                    // From the outer one only where it sits lower: a
                    // refit there found a valley this one has not.
                    if k + 1 < n && dirty[s][k + 1] && side.points[k + 1].f < side.points[k].f {
                        jobs.push((s, k, side.points[k + 1].theta.clone()));
                    }
                }
            }
            if jobs.is_empty() {
                break;
            }
            dirty = run(pr, &mut sides, &jobs, by)?;
        }
        // Extend a side that stays below the threshold.
        let mut jobs = Vec::new();
        for (s, side) in sides.iter_mut().enumerate() {
            let crosses = side.points.iter().any(|p| stat(p.f) >= threshold);
            let undefined = side.points.iter().any(|p| !p.f.is_finite());
            if crosses || undefined || side.at_bound || side.points.is_empty() {
                continue;
            }
            let k0 = side.points.len();
            let from = side.points[k0 - 1].theta.clone();
            for k in k0 + 1..=(k0 + EXTEND_BY).min(SIDE + EXTRA) {
                let Some((v, b)) = grid.value(dirs[s], k) else {
                    break;
                };
                side.points.push(pr.point(v));
                jobs.push((s, side.points.len() - 1, from.clone()));
                if b {
                    side.at_bound = true;
                    break;
                }
            }
        }
        if jobs.is_empty() {
            break;
        }
        dirty = run(pr, &mut sides, &jobs, by)?;
    }
    // A side ends before the first value where the law is not finite.
    for side in sides.iter_mut() {
        if let Some(k) = side.points.iter().position(|p| !p.f.is_finite()) {
            side.points.truncate(k);
            side.undefined = true;
            side.at_bound = false;
        }
    }
    // Refine each side's first crossing.
    let mut state: Vec<Option<Refine>> = sides
        .iter()
        .map(|side| {
            let k = side.points.iter().position(|p| stat(p.f) >= threshold)?;
            let inner = if k == 0 {
                (grid.v0, 0.0, optimum.to_vec())
            } else {
                let p = &side.points[k - 1];
                (p.v, stat(p.f), p.theta.clone())
            };
            let outer = &side.points[k];
            Some(Refine {
                a: (
                    grid.coord(inner.0),
                    signed_root(inner.1, threshold),
                    inner.2,
                ),
                b: (
                    grid.coord(outer.v),
                    signed_root(stat(outer.f), threshold),
                    outer.theta.clone(),
                ),
                kept: 0,
                done: false,
            })
        })
        .collect();
    for _ in 0..END_ITER {
        let mut jobs = Vec::new();
        for (s, st) in state.iter_mut().enumerate() {
            let Some(r) = st.as_mut().filter(|r| !r.done) else {
                continue;
            };
            let (xa, ra) = (r.a.0, r.a.1);
            let (xb, rb) = (r.b.0, r.b.1);
            let x = if rb != ra {
                xa - ra * (xb - xa) / (rb - ra)
            } else {
                0.5 * (xa + xb)
            };
            // Keep strictly inside the bracket.
            let (l, h) = (xa.min(xb), xa.max(xb));
            let x = x.clamp(l + 1e-3 * (h - l), h - 1e-3 * (h - l));
            let v = grid.uncoord(x);
            sides[s].points.push(pr.point(v));
            let k = sides[s].points.len() - 1;
            jobs.push((s, k, r.a.2.clone()));
            jobs.push((s, k, r.b.2.clone()));
        }
        if jobs.is_empty() {
            break;
        }
        run(pr, &mut sides, &jobs, 0.0)?;
        for (s, st) in state.iter_mut().enumerate() {
            let Some(r) = st.as_mut().filter(|r| !r.done) else {
                continue;
            };
            let p = sides[s].points.last().expect("a refinement point");
            let sv = stat(p.f);
            let rv = signed_root(sv, threshold);
            let x = grid.coord(p.v);
            if (sv - threshold).abs() <= END_TOL * threshold || !sv.is_finite() {
                r.done = true;
                continue;
            }
            // Illinois false position: the end kept twice in a row has its
            // root halved, so both ends move.
            if rv < 0.0 {
                r.a = (x, rv, p.theta.clone());
                if r.kept == 2 {
                    r.b.1 *= 0.5;
                }
                r.kept = 2;
            } else {
                r.b = (x, rv, p.theta.clone());
                if r.kept == 1 {
                    r.a.1 *= 0.5;
                }
                r.kept = 1;
            }
            if (r.b.0 - r.a.0).abs() <= 1e-13 * (r.a.0.abs() + r.b.0.abs()) {
                r.done = true;
            }
        }
    }
    for side in sides.iter_mut() {
        side.points
            .sort_by(|a, b| (a.v - grid.v0).abs().total_cmp(&(b.v - grid.v0).abs()));
    }
    let [lo, hi]: [Side; 2] = sides.try_into().ok().expect("two sides");
    Ok([lo, hi])
}

/// Most other valleys each profile value is refitted from.
const OTHERS: usize = 4;

/// Up to [`OTHERS`] ends of starts that `keep` (inside the confidence
/// region), each unlike the optimum and the others taken, best first: some
/// parameter differs by more than a tenth of its standard error (`scale`),
/// or where that is not finite, by 1% of the largest size it takes among
/// them.
fn other_valleys(
    optimum: &[f64],
    ends: &[(f64, Vec<f64>)],
    scale: &[f64],
    keep: &dyn Fn(f64) -> bool,
) -> Vec<Vec<f64>> {
    let mut order: Vec<&(f64, Vec<f64>)> = ends
        .iter()
        .filter(|(f, p)| f.is_finite() && keep(*f) && p.iter().all(|v| v.is_finite()))
        .collect();
    order.sort_by(|a, b| a.0.total_cmp(&b.0));
    let size: Vec<f64> = (0..optimum.len())
        .map(|k| match scale[k] {
            se if se.is_finite() && se > 0.0 => 0.1 * se,
            _ => {
                1e-2 * order
                    .iter()
                    .map(|(_, p)| p[k].abs())
                    .fold(optimum[k].abs(), f64::max)
            }
        })
        .collect();
    let unlike = |a: &[f64], b: &[f64]| (0..a.len()).any(|k| (a[k] - b[k]).abs() > size[k]);
    let mut taken: Vec<Vec<f64>> = Vec::new();
    for (_, p) in order {
        if taken.len() == OTHERS {
            break;
        }
        if unlike(p, optimum) && taken.iter().all(|t| unlike(p, t)) {
            taken.push(p.clone());
        }
    }
    taken
}

/// The optimum with one parameter moved to the far end of where it may go,
/// for each parameter on a bound or without effect at the optimum: a term
/// switched off by its amplitude at 0 can also be switched off by its
/// exponent at its bound, a valley no refit from the optimum reaches.
fn far_starts(
    law: &CompiledLaw,
    raw: &LawSpace,
    best: &Polished,
    ident: &Identifiability,
) -> Vec<Vec<f64>> {
    let mut out = Vec::new();
    for (k, &p) in raw.free().iter().enumerate() {
        let rule = &raw.rules[p];
        let v = best.params[p];
        let idle = !ident.params.contains(&law.params[p]);
        if !(best.at_bound.get(k).copied().unwrap_or(false) || idle) {
            continue;
        }
        let range = rule.start.as_ref().map(|s| (s.lo, s.hi));
        let lo = Some(rule.lower)
            .filter(|b| b.is_finite())
            .or(range.map(|r| r.0));
        let hi = Some(rule.upper)
            .filter(|b| b.is_finite())
            .or(range.map(|r| r.1));
        // The end farther from the optimum.
        let far = match (lo, hi) {
            (Some(l), Some(h)) => Some(if (v - l).abs() > (h - v).abs() { l } else { h }),
            (l, h) => l.or(h),
        };
        if let Some(far) = far.filter(|f| *f != v) {
            let mut q = best.params.clone();
            q[p] = far;
            out.push(q);
        }
    }
    out
}

/// A crossing being refined: the coordinate, signed root and refit on each
/// side of it (`a` below the threshold), and which end was kept last.
struct Refine {
    a: (f64, f64, Vec<f64>),
    b: (f64, f64, Vec<f64>),
    kept: u8,
    done: bool,
}

/// sqrt(statistic) - sqrt(threshold): near linear in the parameter where
/// the law is, so false position on it converges fast.
fn signed_root(s: f64, threshold: f64) -> f64 {
    s.max(0.0).sqrt() - threshold.sqrt()
}

/// Run refits given as (side, point, start) in one lockstep batch and say,
/// per side and point, which improved by more than `by`.
fn run(
    pr: &Profiler,
    sides: &mut [Side],
    jobs: &[(usize, usize, Vec<f64>)],
    by: f64,
) -> Result<Vec<Vec<bool>>> {
    let lens: Vec<usize> = sides.iter().map(|s| s.points.len()).collect();
    let offsets: Vec<usize> = lens
        .iter()
        .scan(0, |o, &n| {
            let here = *o;
            *o += n;
            Some(here)
        })
        .collect();
    let mut all: Vec<Point> = sides.iter_mut().flat_map(|s| s.points.drain(..)).collect();
    let flat: Vec<(usize, Vec<f64>)> = jobs
        .iter()
        .map(|(s, k, x)| (offsets[*s] + k, x.clone()))
        .collect();
    let improved = pr.refit(&mut all, &flat, by)?;
    let mut it = all.into_iter().zip(improved);
    let mut out = Vec::new();
    for (side, &n) in sides.iter_mut().zip(&lens) {
        let mut flags = Vec::with_capacity(n);
        for (p, f) in it.by_ref().take(n) {
            side.points.push(p);
            flags.push(f);
        }
        out.push(flags);
    }
    Ok(out)
}

/// A side's end: its value (NaN where none is given), how it was found,
/// the statistic there, and why it is not a found end when it is not.
fn end_of(
    grid: &Grid,
    dir: f64,
    side: &Side,
    stat: &dyn Fn(f64) -> f64,
    threshold: f64,
) -> (f64, End, f64, Option<String>) {
    let fmt = crate::format::format_value;
    let (mut pv, mut ps) = (grid.v0, 0.0f64);
    for (k, p) in side.points.iter().enumerate() {
        let s = stat(p.f);
        if s < ps - MONOTONE_TOL * threshold {
            let why = format!(
                "is unreliable: the profile falls from {} at {} to {} at {} (refits that \
                 do not follow one valley, or a second minimum)",
                fmt(ps),
                fmt(pv),
                fmt(s),
                fmt(p.v)
            );
            return (f64::NAN, End::Unreliable, f64::NAN, Some(why));
        }
        if !p.converged {
            let why = format!("is unreliable: the refit at {} did not converge", fmt(p.v));
            return (f64::NAN, End::Unreliable, f64::NAN, Some(why));
        }
        if s >= threshold {
            // The refinement left a point at the threshold on one side of
            // the crossing or the other: the nearer is the end.
            let inner = (k > 0).then(|| &side.points[k - 1]);
            return match inner {
                Some(q) if (stat(q.f) - threshold).abs() < s - threshold => {
                    (q.v, End::Found, stat(q.f), None)
                }
                _ => (p.v, End::Found, s, None),
            };
        }
        (pv, ps) = (p.v, s);
    }
    match side.points.last() {
        Some(p) if side.at_bound => (
            p.v,
            End::Bound,
            ps,
            Some(format!(
                "is the parameter's bound (the statistic is {} there)",
                fmt(ps)
            )),
        ),
        Some(p) if side.undefined => (
            f64::NAN,
            End::Open,
            ps,
            Some(format!(
                "is beyond {} (the statistic is {} there; the law is not finite a step \
                 further)",
                fmt(p.v),
                fmt(ps)
            )),
        ),
        Some(p) => (
            f64::NAN,
            End::Open,
            ps,
            Some(format!(
                "is beyond {} (the statistic is {} there)",
                fmt(p.v),
                fmt(ps)
            )),
        ),
        // The optimum is on the bound: so is the end.
        None if grid.bound(dir) == Some(grid.v0) => (
            grid.v0,
            End::Bound,
            0.0,
            Some("is the parameter's bound, where the optimum is".into()),
        ),
        None if side.undefined => (
            f64::NAN,
            End::Open,
            f64::NAN,
            Some("is open: the law is not finite a step away from the optimum".into()),
        ),
        None => (
            f64::NAN,
            End::Open,
            f64::NAN,
            Some("has no grid to go on".into()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: f64 = 3.84;

    /// A side of points (value, statistic, converged) with the
    /// statistic as the objective (f0 = 0, so `stat` is the identity).
    fn side(points: &[(f64, f64, bool)], at_bound: bool) -> Side {
        Side {
            points: points
                .iter()
                .map(|&(v, f, converged)| Point {
                    v,
                    theta: Vec::new(),
                    f,
                    converged,
                })
                .collect(),
            at_bound,
            undefined: false,
        }
    }

    fn grid() -> Grid {
        Grid {
            v0: 1.0,
            lower: 0.0,
            upper: 10.0,
            start: None,
            step: Some(0.5),
        }
    }

    #[test]
    fn an_end_is_the_point_nearer_the_threshold() {
        let s = side(
            &[
                (1.5, 1.0, true),
                (1.9, T - 1e-9, true),
                (2.0, T + 0.5, true),
            ],
            false,
        );
        let (v, kind, at, why) = end_of(&grid(), 1.0, &s, &|f| f, T);
        assert_eq!((v, kind, why), (1.9, End::Found, None));
        assert_eq!(at, T - 1e-9);
    }

    #[test]
    fn a_profile_that_falls_outward_is_unreliable() {
        let s = side(
            &[(1.5, 2.0, true), (2.0, 0.5, true), (2.5, T + 1.0, true)],
            false,
        );
        let (v, kind, _, why) = end_of(&grid(), 1.0, &s, &|f| f, T);
        assert!(v.is_nan());
        assert_eq!(kind, End::Unreliable);
        assert!(why.unwrap().contains("falls from 2"));
        // So is one whose refit did not converge before the crossing.
        let s = side(&[(1.5, 2.0, false), (2.5, T + 1.0, true)], false);
        assert_eq!(end_of(&grid(), 1.0, &s, &|f| f, T).1, End::Unreliable);
    }

    #[test]
    fn a_side_below_the_threshold_ends_at_its_bound_or_is_open() {
        let s = side(&[(5.0, 1.0, true), (10.0, 2.0, true)], true);
        let (v, kind, at, _) = end_of(&grid(), 1.0, &s, &|f| f, T);
        assert_eq!((v, kind, at), (10.0, End::Bound, 2.0));
        let s = side(&[(5.0, 1.0, true), (9.0, 2.0, true)], false);
        let (v, kind, at, why) = end_of(&grid(), 1.0, &s, &|f| f, T);
        assert!(v.is_nan());
        assert_eq!((kind, at), (End::Open, 2.0));
        assert!(why.unwrap().contains("beyond 9"));
        // From an optimum on its bound, the end is the bound.
        let g = Grid { v0: 0.0, ..grid() };
        let (v, kind, ..) = end_of(&g, -1.0, &side(&[], false), &|f| f, T);
        assert_eq!((v, kind), (0.0, End::Bound));
    }

    #[test]
    fn interval_text_marks_open_and_unreliable_ends() {
        let iv = |lo: f64, hi: f64, lo_end: End, hi_end: End| ProfileInterval {
            lo,
            hi,
            lo_end,
            hi_end,
            lo_statistic: T,
            hi_statistic: T,
            open: String::new(),
            values: vec![],
            statistic: vec![],
        };
        let fmt = |v: f64| format!("{v}");
        let nan = f64::NAN;
        assert_eq!(iv(1.0, 2.0, End::Found, End::Bound).text(&fmt), "[1, 2]");
        assert_eq!(iv(1.0, nan, End::Found, End::Open).text(&fmt), "[1, open)");
        assert_eq!(iv(nan, 2.0, End::Open, End::Found).text(&fmt), "(open, 2]");
        assert_eq!(iv(nan, nan, End::Open, End::Open).text(&fmt), "open");
        assert_eq!(
            iv(1.0, nan, End::Found, End::Unreliable).text(&fmt),
            "[1, ?]"
        );
    }
}
