//! The unconstrained (free) vector the optimiser moves in, and its map to the
//! law's internal parameters. Positive scales and offsets are fitted as logs,
//! exponents as themselves inside a box enforced by projection; fixed
//! parameters are left out of the free vector.

use super::looplm::{Scale, A, ALPHA, B, BETA, C, E, GAMMA, NP, T1, T2, T3};

/// Box for the exponents alpha, beta, gamma.
pub const EXPONENT_BOUNDS: (f64, f64) = (1e-4, 8.0);
/// Box for log-transformed parameters: keeps exp() finite in f32 and f64.
const LOG_BOUNDS: (f64, f64) = (-60.0, 40.0);

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

/// Map between the free vector (theta) and internal law parameters.
#[derive(Debug, Clone)]
pub struct FreeSpace {
    pub spec: ParamSpec,
    pub scale: Scale,
    free: Vec<usize>,
}

impl FreeSpace {
    pub fn new(spec: ParamSpec, scale: Scale) -> FreeSpace {
        let free = spec.free_indices();
        FreeSpace { spec, scale, free }
    }

    /// Number of free parameters.
    pub fn dim(&self) -> usize {
        self.free.len()
    }

    /// Law indices of the free coordinates, in order.
    pub fn free(&self) -> &[usize] {
        &self.free
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
        // Fixed values are raw; exponents first, since scaled A and B
        // depend on them.
        for i in [ALPHA, BETA, GAMMA, E, T1, T2, C, T3, A, B] {
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
        p
    }

    /// Internal parameters -> theta (values of fixed parameters are ignored).
    pub fn to_theta(&self, p: &[f64; NP]) -> Vec<f64> {
        let (lo, hi) = self.bounds();
        self.free
            .iter()
            .enumerate()
            .map(|(k, &i)| {
                let v = if is_exponent(i) {
                    p[i]
                } else {
                    p[i].max(1e-300).ln()
                };
                v.clamp(lo[k], hi[k])
            })
            .collect()
    }

    /// Chain rule: gradient with respect to internal parameters ->
    /// gradient with respect to theta.
    pub fn grad_to_theta(&self, p: &[f64; NP], gp: &[f64; NP], out: &mut [f64]) {
        for (k, &i) in self.free.iter().enumerate() {
            let mut g = if is_exponent(i) { gp[i] } else { gp[i] * p[i] };
            // A fixed raw A (or B) moves in scaled units with its exponent.
            if i == ALPHA && self.spec.is_fixed(A) {
                g -= gp[A] * p[A] * self.scale.n.ln();
            }
            if i == BETA && self.spec.is_fixed(B) {
                g -= gp[B] * p[B] * self.scale.d.ln();
            }
            out[k] = g;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn theta_round_trip_with_fixed_values() {
        let mut spec = ParamSpec::all_free();
        spec.fixed[C] = Some(0.0);
        spec.fixed[A] = Some(300.0);
        let space = FreeSpace::new(spec, Scale { n: 1e9, d: 2e10 });
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
}
