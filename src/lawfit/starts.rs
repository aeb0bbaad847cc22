//! The starts of a fit: the nonlinear parameters drawn from their ranges,
//! the linear ones solved by bounded least squares on the job's rows.

use super::*;

/// The non-linear free parameters of `count` starts, drawn from their
/// ranges, reproducible from `seed`: (parameter, value) lists.
pub(super) fn draw(space: &LawSpace, count: usize, seed: u64) -> Vec<Vec<(usize, f64)>> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..count)
        .map(|_| {
            space
                .free()
                .iter()
                .filter_map(|&p| {
                    let s = space.rules[p].start?;
                    let u: f64 = rng.random();
                    let v = if s.log {
                        (s.lo.ln() + (s.hi.ln() - s.lo.ln()) * u).exp()
                    } else {
                        s.lo + (s.hi - s.lo) * u
                    };
                    Some((p, v))
                })
                .collect()
        })
        .collect()
}

/// The free linear parameters of `space`, in order.
pub(super) fn linear_params(space: &LawSpace) -> Vec<usize> {
    space
        .free()
        .iter()
        .copied()
        .filter(|&i| space.rules[i].linear)
        .collect()
}

/// What completing a start needs of a job's rows: the hoisted evaluator of
/// the law's derivatives by its linear parameters (in linear space: the
/// starts are solved there in every space), and the weighted mean of |y|.
pub(super) struct LinearRows {
    pub(super) lin: Vec<usize>,
    pub(super) rows: RowJacobian,
    pub(super) mean_y: f64,
}

impl LinearRows {
    /// `None` where the law has no free linear parameter.
    pub(super) fn new(
        b: &BoundLaw,
        cols: &Columns,
        rows: &[usize],
        space: &LawSpace,
    ) -> Option<LinearRows> {
        let lin = linear_params(space);
        if lin.is_empty() {
            return None;
        }
        let linear = Objective {
            loss: LossKind::Mse,
            space: Space::Linear,
            ..Objective::default()
        };
        let wsum: f64 = rows.iter().map(|&r| cols.weight[r]).sum();
        let mean_y = rows
            .iter()
            .map(|&r| cols.weight[r] * cols.loss[r].abs())
            .sum::<f64>()
            / wsum;
        Some(LinearRows {
            rows: row_jacobian_of(b, cols, rows, &linear, &lin),
            lin,
            mean_y,
        })
    }
}

/// Complete a start: the free linear parameters by weighted least squares
/// on `rows` given the others, inside their bounds (a parameter whose
/// solution leaves its bounds is held at the bound and the rest solved
/// again, as in an active-set method). Positive ones stay above a small
/// floor, since they are fitted as logs. The normal equations come from
/// `fast` (the law hoisted over the rows, as the optimiser sees it); only
/// where the law is not finite on some row are they summed row by row
/// over the rows where it is.
pub(super) fn solve_linear(
    law: &CompiledLaw,
    space: &LawSpace,
    cols: &Columns,
    rows: &[usize],
    fast: &LinearRows,
    ws: &mut Workspace,
    p: &mut [f64],
) {
    let lin = &fast.lin;
    for &i in lin {
        p[i] = 0.0;
    }
    let m = lin.len();
    let mut ata = vec![0.0; m * m];
    let mut atb = vec![0.0; m];
    // sum w r^2 / 2 with r = base - y, J^T W r and J^T W J, weights
    // summing to 1.
    let f = fast.rows.evaluate(p, ws, &mut atb, &mut ata);
    let (mean_y, mean_phi, wsum) = if f.is_finite() && atb.iter().chain(&ata).all(|v| v.is_finite())
    {
        atb.iter_mut().for_each(|v| *v = -*v);
        // Root mean squares stand for the mean magnitudes: the floors
        // below only need their scale.
        let rms = (0..m).map(|a| ata[a * m + a].sqrt()).collect();
        (fast.mean_y, rms, 1.0)
    } else {
        linear_moments(law, lin, cols, rows, p, &mut ata, &mut atb)
    };
    if wsum == 0.0 {
        return;
    }
    let (mut lo, mut hi) = (vec![0.0; m], vec![0.0; m]);
    for a in 0..m {
        let r = &space.rules[lin[a]];
        lo[a] = r.lower;
        hi[a] = r.upper;
        if r.transform == Transform::Log {
            let floor = 1e-3 * mean_y / mean_phi[a].max(1e-300);
            lo[a] = lo[a].max(floor);
        }
    }
    let mut free: Vec<usize> = (0..m).collect();
    let mut held = vec![f64::NAN; m];
    while !free.is_empty() {
        let k = free.len();
        let mut a = vec![0.0; k * k];
        let mut b = vec![0.0; k];
        for (r, &i) in free.iter().enumerate() {
            b[r] = atb[i]
                - (0..m)
                    .filter(|j| !free.contains(j))
                    .map(|j| ata[i * m + j] * held[j])
                    .sum::<f64>();
            for (c, &j) in free.iter().enumerate() {
                a[r * k + c] = ata[i * m + j];
            }
        }
        let sol = solve_small(&mut a, &mut b, k)
            .unwrap_or_else(|| free.iter().map(|&i| lo[i].max(0.0).min(hi[i])).collect());
        // The worst violation is held at its bound.
        let worst = (0..k)
            .filter(|&r| sol[r].is_nan() || sol[r] < lo[free[r]] || sol[r] > hi[free[r]])
            .max_by(|&x, &y| {
                let over = |r: usize| {
                    let i = free[r];
                    if sol[r].is_nan() {
                        f64::INFINITY
                    } else {
                        (lo[i] - sol[r]).max(sol[r] - hi[i])
                    }
                };
                over(x).total_cmp(&over(y))
            });
        match worst {
            Some(r) => {
                let i = free[r];
                held[i] = if sol[r] > hi[i] { hi[i] } else { lo[i] };
                if !held[i].is_finite() {
                    held[i] = 0.0;
                }
                free.remove(r);
            }
            None => {
                for (r, &i) in free.iter().enumerate() {
                    held[i] = sol[r];
                }
                break;
            }
        }
    }
    for a in 0..m {
        p[lin[a]] = held[a];
    }
}

/// The normal equations of the linear parameters `lin` summed row by row
/// over the rows where the law and its derivatives are finite, into `ata`
/// and `atb`; returns the weighted means of |y| and of each |d pred /
/// d lin|, and the weight summed.
pub(super) fn linear_moments(
    law: &CompiledLaw,
    lin: &[usize],
    cols: &Columns,
    rows: &[usize],
    p: &[f64],
    ata: &mut [f64],
    atb: &mut [f64],
) -> (f64, Vec<f64>, f64) {
    let m = lin.len();
    ata.fill(0.0);
    atb.fill(0.0);
    let mut point = vec![0.0; cols.vars.len()];
    let mut grad = vec![0.0; p.len()];
    let (mut mean_y, mut wsum) = (0.0, 0.0);
    let mut mean_phi = vec![0.0; m];
    for &r in rows {
        for (v, col) in cols.vars.iter().enumerate() {
            point[v] = col[r];
        }
        let base = law.eval_grad(&point, p, &mut grad);
        let (w, y) = (cols.weight[r], cols.loss[r]);
        if !(base.is_finite() && lin.iter().all(|&i| grad[i].is_finite())) || w == 0.0 {
            continue;
        }
        wsum += w;
        mean_y += w * y.abs();
        for a in 0..m {
            let pa = grad[lin[a]];
            mean_phi[a] += w * pa.abs();
            atb[a] += w * pa * (y - base);
            for c in 0..m {
                ata[a * m + c] += w * pa * grad[lin[c]];
            }
        }
    }
    if wsum > 0.0 {
        mean_y /= wsum;
        mean_phi.iter_mut().for_each(|v| *v /= wsum);
    }
    (mean_y, mean_phi, wsum)
}

/// Gaussian elimination with partial pivoting and a tiny ridge; the
/// systems are as small as a law's linear parameters (a handful), so no
/// linear-algebra crate is warranted.
fn solve_small(a: &mut [f64], b: &mut [f64], m: usize) -> Option<Vec<f64>> {
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
