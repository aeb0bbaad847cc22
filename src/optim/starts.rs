//! Starting points. The law is linear in E, A, B and C once the exponents
//! and offsets are chosen, so a start picks only those nonlinear
//! parameters (on a grid or at random) and solves for the linear ones by
//! least squares. Every start then begins at the best fit its exponents
//! allow, which is what makes a grid of a few hundred starts reliable.

use rand::{Rng, SeedableRng};
use rayon::prelude::*;

use crate::backend::Prepared;
use crate::law::{FreeSpace, A, ALPHA, B, BETA, C, E, GAMMA, NP, T1, T2, T3};

/// The nonlinear parameters, most influential first, with the range a
/// start draws from (internal units: N and D scaled to at most 1), and
/// whether the range is spanned in log steps.
const NONLINEAR: [(usize, f64, f64); 6] = [
    (BETA, 0.08, 1.5),
    (ALPHA, 0.08, 1.5),
    (T2, 1e-6, 1e-1),
    (GAMMA, 0.2, 3.0),
    (T1, 1e-4, 1.0),
    (T3, 1e-2, 10.0),
];

/// Default grid size the level counts are grown to reach.
pub const MIN_GRID: usize = 256;

fn log_level(lo: f64, hi: f64, i: usize, n: usize) -> f64 {
    if n == 1 {
        return (lo * hi).sqrt();
    }
    (lo.ln() + (hi.ln() - lo.ln()) * i as f64 / (n - 1) as f64).exp()
}

/// Default grid: the free nonlinear parameters on log-spaced levels, at
/// least `MIN_GRID` combinations; more levels go to the more influential
/// parameters.
pub fn grid_starts(space: &FreeSpace, data: &Prepared) -> Vec<Vec<f64>> {
    let dims: Vec<(usize, f64, f64)> = NONLINEAR
        .iter()
        .copied()
        .filter(|(i, _, _)| !space.spec.is_fixed(*i))
        .collect();
    let mut levels = vec![2usize; dims.len()];
    if !dims.is_empty() {
        while levels.iter().product::<usize>() < MIN_GRID {
            let min = *levels.iter().min().unwrap();
            let j = levels.iter().position(|&l| l == min).unwrap();
            levels[j] += 1;
        }
    }
    let total: usize = levels.iter().product();
    let nonlinear: Vec<Vec<(usize, f64)>> = (0..total)
        .map(|mut idx| {
            dims.iter()
                .zip(&levels)
                .map(|(&(i, lo, hi), &n)| {
                    let l = idx % n;
                    idx /= n;
                    (i, log_level(lo, hi, l, n))
                })
                .collect()
        })
        .collect();
    complete(space, data, &nonlinear)
}

/// `count` starts with the free nonlinear parameters drawn log-uniformly
/// from their ranges, reproducible from `seed`.
pub fn random_starts(space: &FreeSpace, data: &Prepared, count: usize, seed: u64) -> Vec<Vec<f64>> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let nonlinear: Vec<Vec<(usize, f64)>> = (0..count)
        .map(|_| {
            NONLINEAR
                .iter()
                .filter(|(i, _, _)| !space.spec.is_fixed(*i))
                .map(|&(i, lo, hi)| {
                    (
                        i,
                        (lo.ln() + (hi.ln() - lo.ln()) * rng.random::<f64>()).exp(),
                    )
                })
                .collect()
        })
        .collect();
    complete(space, data, &nonlinear)
}

/// Fill in the linear parameters of every start and map to theta.
fn complete(space: &FreeSpace, data: &Prepared, nonlinear: &[Vec<(usize, f64)>]) -> Vec<Vec<f64>> {
    // Values of fixed parameters, in internal units.
    let fixed = space.to_internal(&vec![0.0; space.dim()]);
    nonlinear
        .par_iter()
        .map(|choice| {
            let mut p = [0.0; NP];
            for i in 0..NP {
                if space.spec.is_fixed(i) {
                    p[i] = fixed[i];
                }
            }
            for &(i, v) in choice {
                p[i] = v;
            }
            // Scaled fixed A and B depend on the exponents just chosen.
            let p_fixed = space.to_internal(&space.to_theta(&p));
            for i in [A, B] {
                if space.spec.is_fixed(i) {
                    p[i] = p_fixed[i];
                }
            }
            solve_linear(space, data, &mut p);
            space.to_theta(&p)
        })
        .collect()
}

/// Weighted least squares for the free linear parameters (E, A, B, C)
/// given the others, constrained to stay above a small positive floor
/// (they are fitted as logs): a parameter whose solution falls below it is
/// held at the floor and the rest re-solved, as in an active-set NNLS.
fn solve_linear(space: &FreeSpace, data: &Prepared, p: &mut [f64; NP]) {
    const LIN: [usize; 4] = [E, A, B, C];
    // Normal equations over the basis [1, u_N, v, u_T], accumulated once.
    let mut ata = [[0.0; 4]; 4];
    let mut atb = [0.0; 4];
    let mut mean_y = 0.0;
    let log_space = data.objective.space == crate::objective::Space::Log;
    for c in &data.configs {
        let un = (c.n + p[T1]).powf(-p[ALPHA]);
        let ut = (c.t + p[T3]).powf(-p[GAMMA]);
        for j in c.start..c.start + c.len {
            let basis = [1.0, un, (data.d[j] + p[T2]).powf(-p[BETA]), ut];
            let y = if log_space {
                data.y[j].exp()
            } else {
                data.y[j]
            };
            let w = data.w[j];
            mean_y += w * y;
            for a in 0..4 {
                atb[a] += w * basis[a] * y;
                for b in 0..4 {
                    ata[a][b] += w * basis[a] * basis[b];
                }
            }
        }
    }
    let floor = 1e-3 * mean_y.abs().max(1e-12);
    let mut free: Vec<usize> = (0..4).filter(|&a| !space.spec.is_fixed(LIN[a])).collect();
    while !free.is_empty() {
        let m = free.len();
        let mut a = vec![0.0; m * m];
        let mut b = vec![0.0; m];
        for (r, &i) in free.iter().enumerate() {
            // Right-hand side less the contribution of the held parameters.
            b[r] = atb[i]
                - (0..4)
                    .filter(|k| !free.contains(k))
                    .map(|k| ata[i][k] * p[LIN[k]])
                    .sum::<f64>();
            for (c, &k) in free.iter().enumerate() {
                a[r * m + c] = ata[i][k];
            }
        }
        let sol = solve_small(&mut a, &mut b, m).unwrap_or_else(|| vec![floor; m]);
        let worst = (0..m)
            .filter(|&r| sol[r].is_nan() || sol[r] < floor)
            .min_by(|&x, &y| sol[x].total_cmp(&sol[y]));
        match worst {
            Some(r) => {
                p[LIN[free[r]]] = floor;
                free.remove(r);
            }
            None => {
                for (r, &i) in free.iter().enumerate() {
                    p[LIN[i]] = sol[r];
                }
                break;
            }
        }
    }
}

/// Gaussian elimination with partial pivoting and a tiny ridge; the
/// systems are as small as a law's linear parameters (a handful), so no
/// linear-algebra crate is warranted.
pub fn solve_small(a: &mut [f64], b: &mut [f64], m: usize) -> Option<Vec<f64>> {
    let trace: f64 = (0..m).map(|i| a[i * m + i]).sum();
    for i in 0..m {
        a[i * m + i] += 1e-12 * trace / m as f64;
    }
    for col in 0..m {
        let piv =
            (col..m).max_by(|&x, &y| a[x * m + col].abs().total_cmp(&a[y * m + col].abs()))?;
        if a[piv * m + col].abs() < 1e-300 {
            return None;
        }
        for k in 0..m {
            a.swap(col * m + k, piv * m + k);
        }
        b.swap(col, piv);
        for r in col + 1..m {
            let factor = a[r * m + col] / a[col * m + col];
            for k in col..m {
                a[r * m + k] -= factor * a[col * m + k];
            }
            b[r] -= factor * b[col];
        }
    }
    let mut x = vec![0.0; m];
    for r in (0..m).rev() {
        let s: f64 = (r + 1..m).map(|k| a[r * m + k] * x[k]).sum();
        x[r] = (b[r] - s) / a[r * m + r];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::law::ParamSpec;
    use crate::objective::Objective;
    use crate::simulate::{looplm20_truth, simulate_looplm20, SimOptions};

    /// The demo's sweep without noise, and the space of a free fit of it.
    fn setup() -> (FreeSpace, Prepared) {
        let ds = simulate_looplm20(&SimOptions {
            noise: 0.0,
            points_per_curve: 60,
            ..SimOptions::default()
        });
        let data = Prepared::new(&ds, Objective::default());
        let space = FreeSpace::new(ParamSpec::all_free(), data.scale, data.reference());
        (space, data)
    }

    #[test]
    fn the_full_grid_has_324_distinct_starts_inside_the_bounds() {
        let (space, data) = setup();
        let starts = grid_starts(&space, &data);
        // Six nonlinear parameters on 3, 3, 3, 3, 2 and 2 levels: the
        // smallest such grid of at least MIN_GRID.
        assert_eq!(starts.len(), 324);
        let (lo, hi) = space.bounds();
        for s in &starts {
            assert_eq!(s.len(), space.dim());
            assert!(s.iter().all(|v| v.is_finite()), "{s:?}");
            for ((v, l), h) in s.iter().zip(&lo).zip(&hi) {
                assert!(*l <= *v && *v <= *h, "{v} outside [{l}, {h}]");
            }
        }
        let mut keys: Vec<Vec<u64>> = starts
            .iter()
            .map(|s| s.iter().map(|v| v.to_bits()).collect())
            .collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), 324, "starts repeat");
    }

    #[test]
    fn random_starts_are_reproducible_from_their_seed() {
        let (space, data) = setup();
        let a = random_starts(&space, &data, 16, 7);
        assert_eq!(a.len(), 16);
        assert_eq!(a, random_starts(&space, &data, 16, 7));
        assert_ne!(a, random_starts(&space, &data, 16, 8));
    }

    #[test]
    fn at_the_true_exponents_the_linear_solve_recovers_e_a_b_and_c() {
        let (space, data) = setup();
        let truth = data.scale.to_internal(&looplm20_truth());
        let mut p = truth;
        for i in [E, A, B, C] {
            p[i] = 0.0;
        }
        solve_linear(&space, &data, &mut p);
        for i in [E, A, B, C] {
            let rel = (p[i] - truth[i]).abs() / truth[i].abs();
            assert!(rel < 1e-8, "parameter {i}: {} vs {}", p[i], truth[i]);
        }
    }
}
