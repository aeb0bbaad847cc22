//! The unconstrained (free) vector the optimiser moves in, and its map to the
//! law's internal parameters.
//!
//! - Offsets t1, t2, t3 and the floor E are fitted as logs (positive).
//! - Exponents alpha, beta, gamma are fitted as themselves inside a box
//!   enforced by projection.
//! - Each amplitude is fitted as the log of its term's value at a reference
//!   point in the middle of the data, e.g. theta_A = ln(A/(N_ref+t1)^alpha),
//!   rather than ln A. Raw amplitudes move by orders of magnitude whenever
//!   an exponent changes; the term's size at the data barely does, so this
//!   removes most of the correlation between amplitude and exponent that
//!   makes the objective's valleys narrow.
//!
//! Fixed parameters are left out of the free vector.

use super::looplm::{Scale, A, ALPHA, B, BETA, C, E, GAMMA, NP, T1, T2, T3};

/// Box for the exponents alpha, beta, gamma.
pub const EXPONENT_BOUNDS: (f64, f64) = (1e-4, 8.0);
/// Box for log-transformed parameters: keeps exp() finite in f32 and f64.
const LOG_BOUNDS: (f64, f64) = (-60.0, 40.0);

/// (amplitude, exponent, offset) of the three power-law terms.
const TERMS: [(usize, usize, usize); 3] = [(A, ALPHA, T1), (B, BETA, T2), (C, GAMMA, T3)];

fn is_exponent(i: usize) -> bool {
    matches!(i, ALPHA | BETA | GAMMA)
}

/// Which parameters are fixed, at which raw values.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSpec {
    pub fixed: [Option<f64>; NP],
}

impl ParamSpec {
    pub fn all_free() -> ParamSpec {
        ParamSpec { fixed: [None; NP] }
    }

    pub fn is_fixed(&self, i: usize) -> bool {
        self.fixed[i].is_some()
    }

    pub fn free_indices(&self) -> Vec<usize> {
        (0..NP).filter(|&i| self.fixed[i].is_none()).collect()
    }
}

/// Reference point of each term, in internal units: (N_ref, D_ref, T_ref).
pub type Reference = [f64; 3];

/// Map between the free vector (theta) and internal law parameters.
#[derive(Debug, Clone)]
pub struct FreeSpace {
    pub spec: ParamSpec,
    pub scale: Scale,
    reference: Reference,
    free: Vec<usize>,
}

impl FreeSpace {
    pub fn new(spec: ParamSpec, scale: Scale, reference: Reference) -> FreeSpace {
        let free = spec.free_indices();
        FreeSpace {
            spec,
            scale,
            reference,
            free,
        }
    }

    /// Number of free parameters.
    pub fn dim(&self) -> usize {
        self.free.len()
    }

    /// Lower and upper bounds of every free coordinate.
    pub fn bounds(&self) -> (Vec<f64>, Vec<f64>) {
        self.free
            .iter()
            .map(|&i| {
                if is_exponent(i) {
                    EXPONENT_BOUNDS
                } else {
                    LOG_BOUNDS
                }
            })
            .unzip()
    }

    /// ln(ref + offset) of each term.
    fn log_ref(&self, p: &[f64; NP]) -> [f64; 3] {
        let mut l = [0.0; 3];
        for (k, &(_, _, off)) in TERMS.iter().enumerate() {
            l[k] = (self.reference[k] + p[off]).ln();
        }
        l
    }

    /// theta -> internal parameters.
    pub fn to_internal(&self, theta: &[f64]) -> [f64; NP] {
        let mut p = [0.0; NP];
        for (k, &i) in self.free.iter().enumerate() {
            p[i] = if is_exponent(i) {
                theta[k]
            } else {
                theta[k].exp()
            };
        }
        // Fixed values are raw; exponents and offsets first, since scaled
        // amplitudes depend on them.
        for i in [ALPHA, BETA, GAMMA, E, T1, T2, T3, A, B, C] {
            if let Some(v) = self.spec.fixed[i] {
                p[i] = match i {
                    A => v * self.scale.n.powf(-p[ALPHA]),
                    B => v * self.scale.d.powf(-p[BETA]),
                    T1 => v / self.scale.n,
                    T2 => v / self.scale.d,
                    _ => v,
                };
            }
        }
        let lr = self.log_ref(&p);
        for (k, &(amp, expo, _)) in TERMS.iter().enumerate() {
            if !self.spec.is_fixed(amp) {
                p[amp] *= (p[expo] * lr[k]).exp();
            }
        }
        p
    }

    /// Internal parameters -> theta (values of fixed parameters are ignored).
    pub fn to_theta(&self, p: &[f64; NP]) -> Vec<f64> {
        let (lo, hi) = self.bounds();
        let lr = self.log_ref(p);
        self.free
            .iter()
            .enumerate()
            .map(|(k, &i)| {
                let mut v = if is_exponent(i) {
                    p[i]
                } else {
                    p[i].max(1e-300).ln()
                };
                if let Some(t) = TERMS.iter().position(|&(amp, _, _)| amp == i) {
                    v -= p[TERMS[t].1] * lr[t];
                }
                v.clamp(lo[k], hi[k])
            })
            .collect()
    }

    /// Chain rule: gradient with respect to internal parameters ->
    /// gradient with respect to theta.
    pub fn grad_to_theta(&self, p: &[f64; NP], gp: &[f64; NP], out: &mut [f64]) {
        // Gradient with respect to each parameter's natural coordinate
        // (value for exponents, log for the rest), amplitude coupling added.
        let mut g = [0.0; NP];
        for i in 0..NP {
            g[i] = if is_exponent(i) { gp[i] } else { gp[i] * p[i] };
        }
        for (k, &(amp, expo, off)) in TERMS.iter().enumerate() {
            let ga = gp[amp] * p[amp];
            if self.spec.is_fixed(amp) {
                // A fixed raw amplitude moves in scaled units with its
                // exponent (N and D only; T is not scaled).
                let ln_scale = match amp {
                    A => self.scale.n.ln(),
                    B => self.scale.d.ln(),
                    _ => 0.0,
                };
                g[expo] -= ga * ln_scale;
            } else {
                let x = self.reference[k] + p[off];
                g[expo] += ga * x.ln();
                g[off] += ga * p[expo] * p[off] / x;
            }
        }
        for (k, &i) in self.free.iter().enumerate() {
            out[k] = g[i];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REF: Reference = [0.3, 0.5, 2.5];

    #[test]
    fn theta_round_trip_with_fixed_values() {
        let mut spec = ParamSpec::all_free();
        spec.fixed[C] = Some(0.0);
        spec.fixed[A] = Some(300.0);
        let space = FreeSpace::new(spec, Scale { n: 1e9, d: 2e10 }, REF);
        assert_eq!(space.dim(), 8);
        let theta: Vec<f64> = (0..8).map(|k| 0.1 + 0.05 * k as f64).collect();
        let p = space.to_internal(&theta);
        assert_eq!(p[C], 0.0);
        assert!((p[A] - 300.0 * 1e9f64.powf(-p[ALPHA])).abs() < 1e-15);
        let back = space.to_theta(&p);
        for k in 0..8 {
            assert!((back[k] - theta[k]).abs() < 1e-12);
        }
    }

    /// The chain rule against finite differences of a linear functional
    /// of the internal parameters, for all-free and partly fixed specs.
    #[test]
    fn chain_rule_matches_finite_differences() {
        let weights = [0.3, -1.2, 0.7, 2.0, -0.4, 1.1, 0.9, -0.8, 0.5, 1.7];
        let phi = |p: &[f64; NP]| p.iter().zip(&weights).map(|(a, b)| a * b).sum::<f64>();
        for fixed in [vec![], vec![(A, 250.0)], vec![(B, 900.0), (T3, 0.2)]] {
            let mut spec = ParamSpec::all_free();
            for (i, v) in &fixed {
                spec.fixed[*i] = Some(*v);
            }
            let space = FreeSpace::new(spec, Scale { n: 1.36e9, d: 2e10 }, REF);
            let theta: Vec<f64> = (0..space.dim()).map(|k| 0.1 + 0.07 * k as f64).collect();
            let p = space.to_internal(&theta);
            let mut g = vec![0.0; space.dim()];
            space.grad_to_theta(&p, &weights, &mut g);
            for k in 0..space.dim() {
                let h = 1e-6;
                let (mut up, mut dn) = (theta.clone(), theta.clone());
                up[k] += h;
                dn[k] -= h;
                let fd = (phi(&space.to_internal(&up)) - phi(&space.to_internal(&dn))) / (2.0 * h);
                assert!(
                    (fd - g[k]).abs() <= 1e-6 * (1.0 + fd.abs()),
                    "{fixed:?} coordinate {k}: {fd} vs {}",
                    g[k]
                );
            }
        }
    }
}
