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

use crate::backend::jacobian::{RowJacobian, Workspace};
use crate::identify::Identifiability;
use crate::law::space::LawSpace;
use crate::law::CompiledLaw;
use crate::objective::{LossKind, Objective};
use crate::optim::{self, BatchLeastSquares, LmOptions};
use crate::polish::{theta_moments, Polished, POLISH};

/// What `--profile` asks for: the parameters (all free ones when empty)
/// and the intervals' coverage.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileRequest {
    pub names: Vec<String>,
    pub level: f64,
}

/// Grid values on each side of the optimum.
const SIDE: usize = 11;
/// With a finite standard error, the grid's distances from the optimum in
/// asymptotic half-widths sqrt(threshold) SE: dense near 1, where a
/// well-determined parameter's ends lie, then far enough out (8) for a
/// parameter whose weak partner lets the profile stay flat for longer.
const STEPS: [f64; SIDE] = [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0];
/// Without one (or from a bound), a positive parameter's grid spans this
/// many decades on each side.
const DECADES: f64 = 2.5;

/// The refits of a profile: the polish's rules, to a looser decrement (f
/// to 1e-14 of itself is far below what the statistic resolves).
const REFIT: LmOptions = LmOptions {
    decrement: 1e-7,
    lambda0: 1e-6,
    ..POLISH
};

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

/// One parameter's profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileInterval {
    /// Ends of the interval: null where it is open (the statistic stays
    /// below the threshold to the grid's end), the parameter's bound where
    /// it stays below up to that.
    pub lo: f64,
    pub hi: f64,
    /// Why an end is open or a bound, when one is.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub open: String,
    /// The grid, ascending, the optimum among it, and the statistic at each.
    pub values: Vec<f64>,
    pub statistic: Vec<f64>,
}

/// The refits of one parameter's grid: problem k holds it at its k-th
/// value, in `spaces[k]`, on the rows of `rows`.
struct Refits<'a> {
    spaces: &'a [LawSpace],
    rows: &'a RowJacobian,
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
                    *f = theta_moments(&self.spaces[id], self.rows, None, x, ws, g, h, scratch);
                },
            );
        Ok(())
    }
}

/// The profiles of the parameters `names` (all free ones when empty) of a
/// fit polished to `best` in `space` (see [`crate::polish`]), over `n`
/// rows; `rows_for(wanted)` makes the rows' Jacobian with columns for
/// `wanted`. mse only: the statistic needs the residual variance.
#[allow(clippy::too_many_arguments)]
pub fn profile(
    law: &CompiledLaw,
    space: &LawSpace,
    rows_for: &dyn Fn(&[usize]) -> RowJacobian,
    best: &Polished,
    n: usize,
    ident: &Identifiability,
    objective: Objective,
    names: &[String],
    level: f64,
) -> anyhow::Result<ProfileReport> {
    if objective.loss != LossKind::Mse {
        bail!("--profile needs --loss mse: its statistic is the drop in fit in units of the residual variance");
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
    if dof <= 0.0 || best.f <= 0.0 {
        bail!("--profile needs more rows than free parameters and a fit that is not exact");
    }
    let stat = |f: f64| (f - best.f) * dof / best.f;
    let mut params = IndexMap::new();
    let mut notes = Vec::new();
    for &i in &wanted {
        let name = &law.params[i];
        let rule = &raw.rules[i];
        let v0 = best.params[i];
        let se = ident
            .standard_errors
            .get(name)
            .copied()
            .filter(|s| s.is_finite() && *s > 0.0);
        // Each side's values, outward from the optimum, inside the bounds;
        // whether the side ends on the bound; whether it is logarithmic.
        let side = |dir: f64| -> (Vec<f64>, bool, bool) {
            let (bound, log) = (
                if dir < 0.0 { rule.lower } else { rule.upper },
                se.is_none(),
            );
            if (dir < 0.0 && v0 <= bound) || (dir > 0.0 && v0 >= bound) {
                return (Vec::new(), true, log);
            }
            let mut out = Vec::new();
            for k in 1..=SIDE {
                let u = k as f64 / SIDE as f64;
                let v = match (se, rule.start) {
                    (Some(se), _) => v0 + dir * STEPS[k - 1] * threshold.sqrt() * se,
                    (None, _) if v0 > 0.0 => v0 * 10f64.powf(dir * u * DECADES),
                    // From 0 (a positive parameter on its bound) upwards:
                    // its start range.
                    (None, Some(st)) if dir > 0.0 && st.lo > 0.0 => {
                        let w = (k - 1) as f64 / (SIDE - 1) as f64;
                        st.lo * (st.hi / st.lo).powf(w)
                    }
                    _ => return (out, false, log),
                };
                if (dir < 0.0 && v <= bound) || (dir > 0.0 && v >= bound) {
                    if bound.is_finite() && bound != v0 {
                        out.push(bound);
                    }
                    return (out, true, log);
                }
                out.push(v);
            }
            (out, false, log)
        };
        let (below, lo_bound, log) = side(-1.0);
        let (above, hi_bound, _) = side(1.0);
        let values: Vec<f64> = below.iter().chain(&above).copied().collect();
        let spaces: Vec<LawSpace> = values.iter().map(|&v| raw.with_fixed(law, i, v)).collect();
        let mut statistic = vec![f64::NAN; values.len()];
        if let Some(first) = spaces.first() {
            let rows = rows_for(first.free());
            let x0: Vec<Vec<f64>> = spaces
                .iter()
                .zip(&values)
                .map(|(s, &v)| {
                    let mut p = best.params.clone();
                    p[i] = v;
                    s.to_theta(&p)
                })
                .collect();
            if first.dim() == 0 {
                // The only free parameter is the one held: nothing to
                // refit, the objective at each value is the profile.
                let (mut ws, mut scratch) = (Workspace::default(), Default::default());
                for ((s, sp), x) in statistic.iter_mut().zip(&spaces).zip(&x0) {
                    let f =
                        theta_moments(sp, &rows, None, x, &mut ws, &mut [], &mut [], &mut scratch);
                    *s = stat(f);
                }
            } else {
                let mut refits = Refits {
                    spaces: &spaces,
                    rows: &rows,
                };
                let (outcomes, _) = optim::least_squares_batch(&mut refits, &x0, &REFIT, |_| {})?;
                for (s, o) in statistic.iter_mut().zip(&outcomes) {
                    *s = stat(o.f);
                }
            }
        }
        if statistic.iter().any(|&s| s < -1e-6 * threshold) {
            notes.push(format!(
                "the profile of {name} found a lower objective than the fit's: the fit's \
                 optimum is not the global one (refit with more starts)"
            ));
        }
        let (stat_below, stat_above) = statistic.split_at(below.len());
        let cross = |vals: &[f64], stats: &[f64]| -> Option<f64> {
            let (mut pv, mut ps) = (v0, 0.0f64);
            for (&v, &s) in vals.iter().zip(stats) {
                if s >= threshold {
                    // The signed root of the statistic is near linear in
                    // the parameter (in its log on a log grid).
                    let (r0, r1, t) = (ps.max(0.0).sqrt(), s.sqrt(), threshold.sqrt());
                    let u = ((t - r0) / (r1 - r0)).clamp(0.0, 1.0);
                    return Some(if log && pv > 0.0 && v > 0.0 {
                        (pv.ln() + u * (v.ln() - pv.ln())).exp()
                    } else {
                        pv + u * (v - pv)
                    });
                }
                (pv, ps) = (v, s);
            }
            None
        };
        // An end the grid does not close is open, or the parameter's bound
        // when the statistic stays below the threshold up to it.
        let mut open = Vec::new();
        let mut end = |name: &str, vals: &[f64], stats: &[f64], at_bound: bool, bound: f64| {
            if let Some(v) = cross(vals, stats) {
                return v;
            }
            if at_bound && bound.is_finite() {
                open.push(format!("{name} end is the parameter's bound"));
                return bound;
            }
            open.push(match vals.last() {
                Some(e) => format!("{name} end is beyond {}", crate::format::format_value(*e)),
                None => format!("{name} end has no grid to go on"),
            });
            f64::NAN
        };
        let lo = end("lower", &below, stat_below, lo_bound, rule.lower);
        let hi = end("upper", &above, stat_above, hi_bound, rule.upper);
        // The grid ascending, the optimum in its place.
        let mut grid: Vec<(f64, f64)> = below
            .iter()
            .zip(stat_below)
            .rev()
            .map(|(&v, &s)| (v, s))
            .collect();
        grid.push((v0, 0.0));
        grid.extend(above.iter().zip(stat_above).map(|(&v, &s)| (v, s)));
        params.insert(
            name.clone(),
            ProfileInterval {
                lo,
                hi,
                open: open.join("; "),
                values: grid.iter().map(|g| g.0).collect(),
                statistic: grid.iter().map(|g| g.1).collect(),
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
