//! Weightings on the CPU: each point's weight times its weighting's
//! factor (curve multiplier, token limit, Poisson count), filled per span
//! and reused by the consecutive starts that share the weighting.

use super::*;

/// A span's (or block's) effective weights under one weighting, one row of
/// the span's length per curve: filled when a start of another weighting
/// (or span) comes, reused by the starts after it.
#[derive(Default)]
pub(super) struct Effective {
    pub(super) w: Vec<f64>,
    /// (span, weighting) of `w`.
    pub(super) filled: Option<(usize, u32)>,
}

impl Effective {
    /// The effective weights of span `si` (or the table's block `si`)
    /// under weighting `k`, filled unless they already are.
    #[inline(always)]
    pub(super) fn get(&mut self, cg: &CpuLaw, si: usize, k: u32, r: &Resolved) -> &[f64] {
        if self.filled != Some((si, k)) {
            match cg.layout {
                CpuLayout::Table => {
                    let c0 = si * TILE;
                    let m = TILE.min(cg.n_curves - c0);
                    self.w.resize(m, 0.0);
                    for (j, e) in self.w.iter_mut().enumerate() {
                        let c = c0 + j;
                        *e = cg.w[c] * factor(r, c, 0, cg.first_point[c]);
                    }
                }
                _ => fill_span(cg, &cg.spans[si], r, &mut self.w),
            }
            self.filled = Some((si, k));
        }
        &self.w
    }
}

/// The factor weighting `r` gives point `pos` of curve `c`, whose first
/// point is `first`: the same products, in the same order, as
/// [`Resolved::factor`].
#[inline(always)]
pub(super) fn factor(r: &Resolved, c: usize, pos: u32, first: usize) -> f64 {
    if pos >= r.first[c] {
        return 0.0;
    }
    match r.poisson {
        Some(s) => r.mult[c] * poisson1(point_hash(s, (first as u32).wrapping_add(pos))) as f64,
        None => r.mult[c],
    }
}

/// Effective weights of `span`'s cells under `r` into `out`, one row of
/// `span.m` per curve. Empty grid cells have position u32::MAX, never
/// below a limit, so they get 0. Inlined into the instruction-set-specific
/// pass, and branch-free per cell, so that it vectorises.
#[inline(always)]
pub(super) fn fill_span(cg: &CpuLaw, span: &Span, r: &Resolved, out: &mut Vec<f64>) {
    let m = span.m;
    out.resize(span.curves.len() * m, 0.0);
    for (row, c) in span.curves.clone().enumerate() {
        let out = &mut out[row * m..(row + 1) * m];
        let cells = span.row(c);
        let (mult, limit, first) = (r.mult[c], r.first[c], cg.first_point[c] as u32);
        if mult == 0.0 || limit == 0 {
            out.fill(0.0);
            continue;
        }
        let w = &cg.w[cells.clone()];
        // Positions: the grid's per cell, else consecutive. One loop per
        // case, each branch-free so that it vectorises.
        match (cg.layout, r.poisson) {
            (CpuLayout::Grid, None) => {
                let pos = &cg.pos[cells];
                for j in 0..m {
                    out[j] = if pos[j] < limit { w[j] * mult } else { 0.0 };
                }
            }
            (CpuLayout::Grid, Some(s)) => {
                let pos = &cg.pos[cells];
                for j in 0..m {
                    let k = poisson1(point_hash(s, first.wrapping_add(pos[j])));
                    out[j] = if pos[j] < limit {
                        w[j] * (mult * k as f64)
                    } else {
                        0.0
                    };
                }
            }
            (_, None) => {
                let p0 = cells.start as u32 - first;
                for j in 0..m {
                    out[j] = if p0 + (j as u32) < limit {
                        w[j] * mult
                    } else {
                        0.0
                    };
                }
            }
            (_, Some(s)) => {
                let p0 = cells.start as u32 - first;
                for j in 0..m {
                    let p = p0 + j as u32;
                    let k = poisson1(point_hash(s, first.wrapping_add(p)));
                    out[j] = if p < limit {
                        w[j] * (mult * k as f64)
                    } else {
                        0.0
                    };
                }
            }
        }
    }
}

/// The weighting of each start of a batch.
#[derive(Clone, Copy)]
pub(super) struct Weights<'a> {
    /// Per start, an index into `resolved` or UNWEIGHTED; None when every
    /// start has the sweep's own weights.
    pub(super) which: Option<&'a [u32]>,
    pub(super) resolved: &'a [Resolved],
}

impl Weights<'_> {
    /// Start `j`'s weighting with its index, None for the sweep's own.
    #[inline(always)]
    pub(super) fn get(&self, j: usize) -> Option<(u32, &Resolved)> {
        let k = self.which?[j];
        (k != UNWEIGHTED).then(|| (k, &self.resolved[k as usize]))
    }
}

/// The starts of `params` (`np` per vector) side by side by weighting, so
/// that a span's weights are filled once for all that share one: the
/// order (position j holds start `order[j]`), the vectors and the
/// weighting indices in it. An index past `n` weightings is an error. A
/// start's value does not depend on the others in its batch, so the order
/// changes no bits.
pub(super) fn by_weighting(
    params: &[f64],
    which: &[u32],
    np: usize,
    n: usize,
) -> anyhow::Result<(Vec<usize>, Vec<f64>, Vec<u32>)> {
    if let Some(k) = which.iter().find(|&&k| k != UNWEIGHTED && k as usize >= n) {
        anyhow::bail!("weighting index {k} is out of range: there are {n} weightings");
    }
    let mut order: Vec<usize> = (0..which.len()).collect();
    order.sort_by_key(|&k| which[k]);
    let ps: Vec<f64> = order
        .iter()
        .flat_map(|&k| params[k * np..(k + 1) * np].iter().copied())
        .collect();
    let ws: Vec<u32> = order.iter().map(|&k| which[k]).collect();
    Ok((order, ps, ws))
}
