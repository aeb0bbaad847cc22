//! What the data determine: from the curvature of the objective at a
//! polished optimum, the asymptotic standard errors of the free
//! parameters, their correlations, the eigenvalues of the Hessian in a
//! scale-free form, the weakest directions named as combinations of
//! parameters, and the parameters a reader should not trust, flagged.
//!
//! - mse: Cov = sigma^2 H^-1, with H = J^T W J and sigma^2 from the
//!   residuals (2f n / (n - k) per unit weight, weights normalised to sum
//!   to one, so Cov = 2f / (n - k) H^-1).
//! - Huber: the sandwich H^-1 (J^T W^2 psi^2 J) H^-1 n / (n - k), with H
//!   = J^T W psi' J.
//! - Scale-free: H scaled to unit diagonal, D^-1/2 H D^-1/2. Its
//!   eigenvalues do not change when a parameter is measured in other
//!   units (or as its log: at a point, that is a rescaling too); they are
//!   all 1 when the parameters' effects on the fit are orthogonal, and
//!   near 0 along a combination the data barely see.
//!
//! The rows are taken as independent. Points along one training curve are
//! not (their residuals drift together), so the errors are a lower bound
//! on the real uncertainty; the bootstrap over curves measures that.

use indexmap::IndexMap;
use nalgebra::{DMatrix, SymmetricEigen};
use serde::{Deserialize, Serialize};

/// The 0.975 quantile of the standard normal: 95% two-sided intervals.
pub const Z95: f64 = 1.959_963_984_540_054;
/// A parameter is flagged when the half-width of its 95% interval exceeds
/// this fraction of its size: not even its leading digit is determined.
pub const FLAG_HALF_WIDTH: f64 = 0.5;
/// Eigenvalues of the scaled Hessian at most this fraction of the largest
/// are directions the data do not see at all (rounding level).
const NULL_EIGEN: f64 = 1e-13;
/// Directions reported as weak: eigenvalues below this fraction of the
/// largest, and always the weakest one.
const WEAK_EIGEN: f64 = 1e-3;
/// A variable's values are few for a term when there are fewer than this
/// many per parameter of the term.
const FEW_VALUES: usize = 3;
/// Most weak directions reported.
const MAX_WEAK: usize = 3;
/// A parameter is named in a direction when its loading (the eigenvector
/// normalised to length 1) is at least this.
const LOADING: f64 = 0.25;

/// The identifiability report of one fit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identifiability {
    /// How the standard errors were formed.
    pub method: String,
    /// The free parameters with an effect on the fit, in the order of the
    /// correlation matrix and the loadings.
    pub params: Vec<String>,
    /// Asymptotic standard error of each of `params`, raw units; null
    /// (infinite) where the data do not determine the parameter at all.
    pub standard_errors: IndexMap<String, f64>,
    /// Correlations of `params`' estimates (null where a standard error
    /// is).
    pub correlations: Vec<Vec<f64>>,
    /// Eigenvalues of the Hessian scaled to unit diagonal, ascending.
    pub eigenvalues: Vec<f64>,
    /// Largest over smallest eigenvalue (null when the smallest is 0).
    pub condition: f64,
    /// The weakest directions, weakest first.
    pub weak: Vec<WeakDirection>,
    /// Parameters whose printed value the data do not support.
    pub flagged: Vec<Flag>,
}

/// A combination of parameters the data barely determine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeakDirection {
    pub eigenvalue: f64,
    /// The parameters that move along it, with their loadings (largest
    /// first, the largest positive).
    pub loadings: IndexMap<String, f64>,
    /// In words.
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flag {
    pub param: String,
    pub reason: String,
}

/// What [`analyse`] reads: the free parameters and the objective's
/// curvature in their raw units.
#[derive(Debug, Clone)]
pub struct Curvature {
    pub names: Vec<String>,
    pub values: Vec<f64>,
    /// The Gauss-Newton matrix, row-major.
    pub h: Vec<f64>,
    /// Huber's sandwich middle; `None` for mse.
    pub meat: Option<Vec<f64>>,
    /// The objective and the rows of positive weight it sums over.
    pub f: f64,
    pub rows: usize,
    /// Per parameter: why it is on a bound ("on its lower bound 0"), if it
    /// is: flagged, and analysed as if the bound were not there.
    pub at_bound: Vec<Option<String>>,
    /// Per parameter: the variables its effect on the prediction depends
    /// on (the variables of d prediction / d parameter).
    pub vars_of: Vec<Vec<String>>,
    /// Distinct values of every variable over the fitted rows.
    pub distinct: IndexMap<String, usize>,
    /// For mse, the rows' Jacobian (rows x parameters, each row times the
    /// square root of its share of the weight, so J^T J = h), when it was
    /// formed: the errors then come from its singular values, which keep
    /// twice the digits of h's eigenvalues on an ill-conditioned fit.
    pub jacobian: Option<DMatrix<f64>>,
}

/// Above this condition number of the scaled H, the errors are formed from
/// J (H's eigenvalues would keep fewer than eight digits).
pub const JACOBIAN_CONDITION: f64 = 1e8;

/// The identifiability report of the optimum `c` describes.
pub fn analyse(c: &Curvature) -> Identifiability {
    let m = c.names.len();
    let mut flagged = Vec::new();
    for i in 0..m {
        if let Some(why) = &c.at_bound[i] {
            flagged.push(Flag {
                param: c.names[i].clone(),
                reason: why.clone(),
            });
        }
    }
    // Those with some effect on the fit. A parameter on a bound stays in:
    // the others' errors then include what it would trade with them were
    // the bound not there (an offset held at 0 leaves its amplitude and
    // exponent less certain than they would be were it known to be 0).
    let mut idx = Vec::new();
    for i in 0..m {
        let d = c.h[i * m + i];
        if d > 0.0 && d.is_finite() {
            idx.push(i);
        } else {
            flagged.push(Flag {
                param: c.names[i].clone(),
                reason: "the fit does not depend on it at the optimum".into(),
            });
        }
    }
    let k = idx.len();
    let scale: Vec<f64> = idx.iter().map(|&i| c.h[i * m + i].sqrt()).collect();
    let scaled =
        |a: &[f64]| DMatrix::from_fn(k, k, |r, q| a[idx[r] * m + idx[q]] / (scale[r] * scale[q]));
    let (mu, vecs) = eigen(scaled(&c.h));
    let mu_max = mu.last().copied().unwrap_or(0.0);
    let null = |x: f64| x <= NULL_EIGEN * mu_max;
    // Parameters along a direction the data do not see have no finite error.
    let undetermined: Vec<bool> = (0..k)
        .map(|r| (0..k).any(|j| null(mu[j]) && vecs[j][r].abs() > 1e-3))
        .collect();
    // The pseudo-inverse of the scaled H on the directions the data see:
    // from J's singular values when J was formed (mse), else from H's
    // eigenvalues.
    let mut inv = DMatrix::zeros(k, k);
    // J serves where it has a row per parameter at least and is finite.
    let usable = |j: &&DMatrix<f64>| {
        c.meat.is_none()
            && j.ncols() == m
            && k > 0
            && j.nrows() >= k
            && j.iter().all(|v| v.is_finite())
    };
    match c.jacobian.as_ref().filter(usable) {
        Some(j) => {
            let js = DMatrix::from_fn(j.nrows(), k, |row, r| j[(row, idx[r])] / scale[r]);
            let svd = js.svd(false, true);
            let v_t = svd.v_t.expect("V was asked for");
            let top = svd.singular_values.iter().fold(0.0f64, |t, &x| t.max(x));
            for (e, &sv) in svd.singular_values.iter().enumerate() {
                if sv * sv <= NULL_EIGEN * top * top {
                    continue;
                }
                for r in 0..k {
                    for q in 0..k {
                        inv[(r, q)] += v_t[(e, r)] * v_t[(e, q)] / (sv * sv);
                    }
                }
            }
        }
        None => {
            for j in (0..k).filter(|&j| !null(mu[j])) {
                for r in 0..k {
                    for q in 0..k {
                        inv[(r, q)] += vecs[j][r] * vecs[j][q] / mu[j];
                    }
                }
            }
        }
    }
    let dof = c.rows as f64 - k as f64;
    let (method, cov) = match &c.meat {
        None => (
            "asymptotic: sigma^2 H^-1, H = J^T W J, sigma^2 from the residuals",
            &inv * (2.0 * c.f / dof),
        ),
        Some(b) => (
            "sandwich (Huber): H^-1 B H^-1, H = J^T W psi' J, B = J^T W^2 psi^2 J",
            &inv * scaled(b) * &inv * (c.rows as f64 / dof),
        ),
    };
    let se: Vec<f64> = (0..k)
        .map(|r| {
            if undetermined[r] {
                f64::INFINITY
            } else if dof > 0.0 {
                cov[(r, r)].max(0.0).sqrt() / scale[r]
            } else {
                f64::NAN
            }
        })
        .collect();
    let correlations: Vec<Vec<f64>> = (0..k)
        .map(|r| {
            (0..k)
                .map(|q| {
                    if r == q {
                        1.0
                    } else if undetermined[r] || undetermined[q] {
                        f64::NAN
                    } else {
                        cov[(r, q)] / (cov[(r, r)] * cov[(q, q)]).sqrt()
                    }
                })
                .collect()
        })
        .collect();
    let name = |r: usize| c.names[idx[r]].clone();
    for r in 0..k {
        let v = c.values[idx[r]];
        let on_bound = c.at_bound[idx[r]].is_some();
        let reason = if undetermined[r] {
            let with: Vec<String> = (0..k)
                .filter(|&q| {
                    q != r
                        && (0..k).any(|j| {
                            null(mu[j]) && vecs[j][r].abs() > 1e-3 && vecs[j][q].abs() > 1e-3
                        })
                })
                .map(name)
                .collect();
            Some(if with.is_empty() {
                "not determined by the data".to_string()
            } else {
                format!(
                    "not determined by the data: only a combination with {} is",
                    join_and(&with)
                )
            })
        } else if !on_bound && Z95 * se[r] > FLAG_HALF_WIDTH * v.abs() {
            let half = Z95 * se[r] / v.abs();
            Some(if half > 10.0 {
                "its 95% interval is more than ten times its value".to_string()
            } else {
                format!("its 95% interval is ±{} of its value", percent(half))
            })
        } else {
            None
        };
        if let Some(reason) = reason {
            flagged.push(Flag {
                param: name(r),
                reason,
            });
        }
    }
    let mut weak = Vec::new();
    for j in 0..k.min(MAX_WEAK) {
        if k < 2 || (j > 0 && mu[j] > WEAK_EIGEN * mu_max) {
            break;
        }
        weak.push(direction(c, &idx, mu[j], &vecs[j]));
    }
    let condition = match (mu.first(), mu.last()) {
        (Some(&lo), Some(&hi)) if lo > 0.0 => hi / lo,
        (Some(_), Some(_)) => f64::INFINITY,
        _ => f64::NAN,
    };
    // Flags in the parameters' order.
    flagged.sort_by_key(|f| c.names.iter().position(|n| *n == f.param));
    Identifiability {
        method: method.into(),
        params: (0..k).map(name).collect(),
        standard_errors: (0..k).map(|r| (name(r), se[r])).collect(),
        correlations,
        eigenvalues: mu,
        condition,
        weak,
        flagged,
    }
}

/// Eigenvalues of a symmetric matrix, ascending, with their eigenvectors.
/// An empty matrix (no parameter the fit depends on: a Huber delta so
/// small that every residual is beyond it) has none; one with a
/// non-finite entry, or whose iteration does not converge, is reported as
/// seeing no direction at all (every eigenvalue 0), so every parameter is
/// undetermined rather than given an error it does not have.
fn eigen(h: DMatrix<f64>) -> (Vec<f64>, Vec<Vec<f64>>) {
    let k = h.nrows();
    if k == 0 {
        return (Vec::new(), Vec::new());
    }
    let unit = |j: usize| -> Vec<f64> { (0..k).map(|r| if r == j { 1.0 } else { 0.0 }).collect() };
    let eig = h
        .iter()
        .all(|x| x.is_finite())
        .then(|| SymmetricEigen::try_new(h, f64::EPSILON, 10_000))
        .flatten();
    let Some(eig) = eig else {
        return (vec![0.0; k], (0..k).map(unit).collect());
    };
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&a, &b| eig.eigenvalues[a].total_cmp(&eig.eigenvalues[b]));
    let mu = order.iter().map(|&j| eig.eigenvalues[j]).collect();
    let vecs = order
        .iter()
        .map(|&j| (0..k).map(|r| eig.eigenvectors[(r, j)]).collect())
        .collect();
    (mu, vecs)
}

/// A weak direction in words: the parameters that move along it and,
/// when they all act through one variable, how few values of it there are.
fn direction(c: &Curvature, idx: &[usize], eigenvalue: f64, v: &[f64]) -> WeakDirection {
    let mut named: Vec<usize> = (0..v.len()).filter(|&r| v[r].abs() >= LOADING).collect();
    // Largest loading first; equal ones (to 6 digits) in parameter order.
    let size = |r: usize| (v[r].abs() * 1e6).round();
    named.sort_by(|&a, &b| size(b).total_cmp(&size(a)).then(a.cmp(&b)));
    let sign = named.first().map_or(1.0, |&r| v[r].signum());
    let loadings: IndexMap<String, f64> = named
        .iter()
        .map(|&r| (c.names[idx[r]].clone(), sign * v[r]))
        .collect();
    let names: Vec<String> = loadings.keys().cloned().collect();
    let mut text = match names.len() {
        0 | 1 => format!(
            "{} is weakly determined",
            names.first().map_or("a parameter", String::as_str)
        ),
        _ => format!("{} move together", join_and(&names)),
    };
    // One variable behind every named parameter, with few distinct values
    // for the parameters of its term: that is what the term has to go on.
    let vars: Vec<&Vec<String>> = named.iter().map(|&r| &c.vars_of[idx[r]]).collect();
    if let Some(first) = vars.first().filter(|f| f.len() == 1) {
        if vars.iter().all(|v| v == first) {
            let var = &first[0];
            let term = c.vars_of.iter().filter(|v| *v == *first).count();
            if let Some(n) = c.distinct.get(var).filter(|&&n| n < FEW_VALUES * term) {
                let values = if *n == 1 { "value" } else { "values" };
                text.push_str(&format!(
                    ": {n} distinct {values} of {var} carry a {term}-parameter term"
                ));
            }
        }
    }
    WeakDirection {
        eigenvalue,
        loadings,
        text,
    }
}

/// "a", "a and b", "a, b and c".
fn join_and(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [a] => a.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// A fraction as a percentage: whole percents from 10% ("62%", "1200%"),
/// one decimal below ("4.1%").
fn percent(x: f64) -> String {
    let p = 100.0 * x;
    if p >= 10.0 {
        format!("{p:.0}%")
    } else {
        format!("{p:.1}%")
    }
}

/// `value ± se` with the digits the error supports: the error to two
/// significant digits when its leading digit is 1 or 2, else one, and the
/// value to the same decimal place. Exponent form outside [1e-3, 1e5).
/// Without a finite positive error, the value alone to 4 digits.
pub fn with_error(value: f64, se: f64) -> String {
    if !(se.is_finite() && se > 0.0 && value.is_finite()) {
        return crate::format::format_value(value);
    }
    let e = se.log10().floor() as i32;
    let lead = se / 10f64.powi(e);
    // Decimal place of the last digit kept.
    let place = if lead < 3.0 { e - 1 } else { e };
    // An error larger than the value would round it to 0 (8 on its bound
    // shown as "0 ± 500"): the value keeps its own digits, the error two.
    if value != 0.0 && place > value.abs().log10().floor() as i32 {
        let se = if (-3..5).contains(&e) {
            let u = 10f64.powi(place);
            format!("{:.*}", (-place).max(0) as usize, (se / u).round() * u)
        } else {
            format!("{se:.*e}", (e - place) as usize)
        };
        return format!("{} ± {se}", crate::format::format_value(value));
    }
    let magnitude = value.abs().max(se);
    let me = magnitude.log10().floor() as i32;
    if !(-3..5).contains(&me) {
        // Mantissas to the same place: (value ± se) x 10^me.
        let digits = (me - place).max(0) as usize;
        let unit = 10f64.powi(me);
        return format!("({:.digits$} ± {:.digits$})e{me}", value / unit, se / unit);
    }
    let decimals = (-place).max(0) as usize;
    let round = |x: f64| {
        if place > 0 {
            let u = 10f64.powi(place);
            format!("{:.0}", (x / u).round() * u)
        } else {
            format!("{x:.decimals$}")
        }
    };
    format!("{} ± {}", round(value), round(se))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// y = a + b x with known residuals: the standard errors are those of
    /// ordinary least squares, sigma^2 (X^T X)^-1 with sigma^2 =
    /// SSE / (n - 2), in closed form.
    #[test]
    fn errors_of_a_straight_line_are_those_of_least_squares() {
        let x: Vec<f64> = (0..40).map(|i| 1.0 + 0.25 * i as f64).collect();
        let r: Vec<f64> = (0..40).map(|i| 0.1 * ((i * 7 % 11) as f64 - 5.0)).collect();
        let n = x.len() as f64;
        // Normalised weights 1/n: f = 1/2 mean r^2, H = mean of J J^T.
        let f = 0.5 * r.iter().map(|r| r * r).sum::<f64>() / n;
        let (sx, sxx) = (x.iter().sum::<f64>(), x.iter().map(|x| x * x).sum::<f64>());
        let h = vec![1.0, sx / n, sx / n, sxx / n];
        let c = Curvature {
            names: vec!["a".into(), "b".into()],
            values: vec![2.0, 0.5],
            h,
            meat: None,
            f,
            rows: x.len(),
            at_bound: vec![None, None],
            vars_of: vec![vec![], vec!["x".into()]],
            distinct: [("x".to_string(), 40)].into_iter().collect(),
            jacobian: None,
        };
        let id = analyse(&c);
        let sse: f64 = r.iter().map(|r| r * r).sum();
        let sigma2 = sse / (n - 2.0);
        let mean = sx / n;
        let sxx_c: f64 = x.iter().map(|x| (x - mean) * (x - mean)).sum();
        let se_b = (sigma2 / sxx_c).sqrt();
        let se_a = (sigma2 * (1.0 / n + mean * mean / sxx_c)).sqrt();
        let close = |x: f64, y: f64| (x - y).abs() <= 1e-12 * y;
        assert!(close(id.standard_errors["a"], se_a), "{id:?} vs {se_a}");
        assert!(close(id.standard_errors["b"], se_b), "{id:?} vs {se_b}");
        let corr = -mean / (mean * mean + sxx_c / n).sqrt();
        assert!(
            (id.correlations[0][1] - corr).abs() < 1e-12,
            "{id:?} vs {corr}"
        );
        // Eigenvalues of [[1, rho'], [rho', 1]] are 1 -+ rho'.
        let rho = (sx / n) / (sxx / n).sqrt();
        assert!((id.eigenvalues[0] - (1.0 - rho)).abs() < 1e-12);
        assert!((id.eigenvalues[1] - (1.0 + rho)).abs() < 1e-12);
        assert!(id.flagged.is_empty(), "{:?}", id.flagged);
    }

    /// With a sandwich from residuals that equal their own scale (psi = r,
    /// psi' = 1 and equal weights), the Huber form reduces to the
    /// heteroscedasticity-consistent one: checked on a single mean.
    #[test]
    fn the_sandwich_of_a_mean_is_the_spread_of_the_residuals() {
        let r = [0.3, -0.1, 0.2, -0.4, 0.0, 0.1];
        let n = r.len() as f64;
        let w = 1.0 / n;
        let meat: f64 = r.iter().map(|r| w * w * r * r).sum();
        let c = Curvature {
            names: vec!["mu".into()],
            values: vec![1.0],
            h: vec![1.0],
            meat: Some(vec![meat]),
            f: 0.0,
            rows: r.len(),
            at_bound: vec![None],
            vars_of: vec![vec![]],
            distinct: IndexMap::new(),
            jacobian: None,
        };
        let id = analyse(&c);
        let want = (r.iter().map(|r| r * r).sum::<f64>() / (n * (n - 1.0))).sqrt();
        assert!((id.standard_errors["mu"] - want).abs() < 1e-14, "{id:?}");
    }

    /// A Huber delta below every residual leaves the fit no curvature at
    /// all (an empty matrix once the flat parameters are set aside), and a
    /// non-finite curvature has no eigenvalues to trust: both are reported,
    /// neither panics.
    #[test]
    fn no_curvature_or_a_non_finite_one_is_reported_not_decomposed() {
        let c = |h: Vec<f64>| Curvature {
            names: vec!["a".into(), "b".into()],
            values: vec![1.0, 2.0],
            h,
            meat: Some(vec![0.0; 4]),
            f: 1e-300,
            rows: 10,
            at_bound: vec![None, None],
            vars_of: vec![vec![], vec![]],
            distinct: IndexMap::new(),
            jacobian: None,
        };
        let id = analyse(&c(vec![0.0; 4]));
        assert!(id.params.is_empty() && id.eigenvalues.is_empty(), "{id:?}");
        assert_eq!(id.flagged.len(), 2, "{id:?}");
        assert!(id.condition.is_nan());
        let id = analyse(&c(vec![1.0, f64::NAN, f64::NAN, 1.0]));
        assert_eq!(id.params, ["a", "b"]);
        assert!(
            id.standard_errors.values().all(|se| se.is_infinite()),
            "{id:?}"
        );
        assert!(
            id.flagged
                .iter()
                .all(|f| f.reason.contains("not determined")),
            "{id:?}"
        );
    }

    /// y = a + b + c x: only a + b is determined. Both are flagged, the
    /// weakest direction names them, and c keeps a finite error.
    #[test]
    fn an_unidentifiable_pair_is_flagged_and_named() {
        let x: Vec<f64> = (0..20).map(|i| i as f64).collect();
        let n = x.len() as f64;
        let (sx, sxx) = (x.iter().sum::<f64>(), x.iter().map(|x| x * x).sum::<f64>());
        let h = vec![1.0, 1.0, sx / n, 1.0, 1.0, sx / n, sx / n, sx / n, sxx / n];
        let c = Curvature {
            names: vec!["a".into(), "b".into(), "c".into()],
            values: vec![1.0, 2.0, 0.3],
            h,
            meat: None,
            f: 0.01,
            rows: 20,
            at_bound: vec![None, None, None],
            vars_of: vec![vec![], vec![], vec!["x".into()]],
            distinct: [("x".to_string(), 20)].into_iter().collect(),
            jacobian: None,
        };
        let id = analyse(&c);
        assert!(id.standard_errors["a"].is_infinite());
        assert!(id.standard_errors["b"].is_infinite());
        assert!(id.standard_errors["c"].is_finite());
        assert!(id.condition.is_infinite() || id.condition > 1e12);
        let flagged: Vec<&str> = id.flagged.iter().map(|f| f.param.as_str()).collect();
        assert_eq!(flagged, ["a", "b"]);
        assert!(id.flagged[0].reason.contains("only a combination with b"));
        let w = &id.weak[0];
        assert_eq!(w.loadings.keys().collect::<Vec<_>>(), ["a", "b"]);
        assert!(w.text.starts_with("a and b move together"), "{}", w.text);
    }

    /// Three parameters acting through T alone, with T taking 4 values:
    /// the sentence says so. A parameter on a bound is flagged with the
    /// caller's reason and kept in the matrices.
    #[test]
    fn a_weak_term_is_named_with_its_variable() {
        // A nearly singular 3x3 block for C, gamma, t3 plus E.
        let eps = 1e-7;
        let h = vec![
            1.0,
            0.1,
            0.1,
            0.1, //
            0.1,
            1.0,
            1.0 - eps,
            1.0 - eps, //
            0.1,
            1.0 - eps,
            1.0,
            1.0 - eps, //
            0.1,
            1.0 - eps,
            1.0 - eps,
            1.0,
        ];
        let mut full = vec![0.0; 25];
        for r in 0..4 {
            for q in 0..4 {
                full[r * 5 + q] = h[r * 4 + q];
            }
        }
        full[24] = 1.0;
        let c = Curvature {
            names: ["E", "C", "gamma", "t3", "t1"].map(String::from).to_vec(),
            values: vec![1.7, 0.2, 0.9, 0.5, 0.0],
            h: full,
            meat: None,
            f: 1e-4,
            rows: 400,
            at_bound: vec![None, None, None, None, Some("on its lower bound 0".into())],
            vars_of: vec![
                vec![],
                vec!["T".into()],
                vec!["T".into()],
                vec!["T".into()],
                vec!["N".into()],
            ],
            distinct: [("T".to_string(), 4), ("N".to_string(), 5)]
                .into_iter()
                .collect(),
            jacobian: None,
        };
        let id = analyse(&c);
        assert_eq!(id.params, ["E", "C", "gamma", "t3", "t1"]);
        assert!(id.standard_errors["t1"].is_finite());
        let w = &id.weak[0];
        assert!(
            w.text
                .ends_with(": 4 distinct values of T carry a 3-parameter term"),
            "{}",
            w.text
        );
        assert!(id
            .flagged
            .iter()
            .any(|f| f.param == "t1" && f.reason == "on its lower bound 0"));
        assert!(id.flagged.iter().any(|f| f.param == "gamma"));
        assert!(!id.flagged.iter().any(|f| f.param == "E"));
    }

    #[test]
    fn digits_follow_the_error() {
        assert_eq!(with_error(1.723_456_7, 0.0123), "1.723 ± 0.012");
        assert_eq!(with_error(1.723_456_7, 0.0456), "1.72 ± 0.05");
        assert_eq!(with_error(4231.7, 312.0), "4200 ± 300");
        assert_eq!(with_error(4231.7, 123.0), "4230 ± 120");
        assert_eq!(with_error(0.3412, 0.2), "0.34 ± 0.20");
        assert_eq!(with_error(6.02e9, 1.3e8), "(6.02 ± 0.13)e9");
        assert_eq!(with_error(2.5e-5, 4e-7), "(2.50 ± 0.04)e-5");
        assert_eq!(with_error(1.5, f64::INFINITY), "1.500");
        // An error beyond the value leaves the value its digits.
        assert_eq!(with_error(8.0, 500.0), "8.000 ± 500");
        assert_eq!(with_error(1.00003, 2.4e11), "1.000 ± 2.4e11");
        assert_eq!(with_error(-0.002, 0.13), "-0.002000 ± 0.13");
    }
}
