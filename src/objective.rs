//! Loss functions on residuals: the objective is the weighted mean over
//! points of rho(r), with r = pred - loss (linear space) or
//! ln pred - ln loss (log space).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LossKind {
    /// rho(r) = r^2 / 2
    Mse,
    /// rho(r) = r^2 / 2 for |r| <= delta, delta (|r| - delta / 2) beyond
    Huber,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Space {
    /// Residuals of the loss itself.
    Linear,
    /// Residuals of the log of the loss.
    Log,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Objective {
    pub loss: LossKind,
    pub space: Space,
    /// Huber threshold (ignored for mse).
    pub delta: f64,
}

impl Default for Objective {
    fn default() -> Self {
        Objective {
            loss: LossKind::Mse,
            space: Space::Linear,
            delta: 1e-3,
        }
    }
}

impl Objective {
    /// rho(r) and rho'(r).
    #[inline(always)]
    pub fn rho(&self, r: f64) -> (f64, f64) {
        match self.loss {
            LossKind::Mse => (0.5 * r * r, r),
            LossKind::Huber => huber(r, self.delta),
        }
    }

    pub fn loss_name(&self) -> &'static str {
        match self.loss {
            LossKind::Mse => "mse",
            LossKind::Huber => "huber",
        }
    }

    pub fn space_name(&self) -> &'static str {
        match self.space {
            Space::Linear => "linear",
            Space::Log => "log",
        }
    }
}

#[inline(always)]
fn huber(r: f64, delta: f64) -> (f64, f64) {
    let a = r.abs();
    if a <= delta {
        (0.5 * r * r, r)
    } else {
        (delta * (a - 0.5 * delta), delta * r.signum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huber_is_continuous_with_matching_slope_at_delta() {
        let o = Objective {
            loss: LossKind::Huber,
            space: Space::Log,
            delta: 0.1,
        };
        let (below, gb) = o.rho(0.1 - 1e-12);
        let (above, ga) = o.rho(0.1 + 1e-12);
        assert!((below - above).abs() < 1e-10);
        assert!((gb - ga).abs() < 1e-10);
        assert_eq!(o.rho(-1.0).1, -0.1);
        assert!((o.rho(-1.0).0 - 0.1 * (1.0 - 0.05)).abs() < 1e-15);
    }
}
