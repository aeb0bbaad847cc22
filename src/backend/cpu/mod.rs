//! CPU backend: f64, all cores.
//!
//! The law is separable: pred = base_c + B v(d) where base_c = E + A u_N +
//! C u_T is constant within a configuration c and v = (d+t2)^-beta depends
//! on the tokens d alone. With g = w rho'(r) dr/dpred per point, the
//! gradient needs only S0_c = sum over c's points of g, and over all points
//! sum g v, sum g v ln(d+t2) and sum g v/(d+t2).
//!
//! Two layouts ([`CpuLayout`]):
//! - grid: most sweeps log every curve on one step grid, so v, ln(d+t2) and
//!   1/(d+t2) are computed once per distinct d and reused by every curve.
//!   The points become a dense curves x distinct-tokens matrix; cells
//!   without a point contribute exactly zero.
//! - points: blocks of points inside one configuration, each point paying
//!   its own ln and exp; used when curves share few token values.
//!
//! Work items are (block, chunk of starts). Each start's block results are
//! added in block order, so the value does not depend on thread count or
//! scheduling.
//!
//! Weighted evaluation (per-problem weightings, see `weights`) computes
//! each point's effective weight on the fly, per work item, into scratch
//! the size of a block (points) or of a tile (grid), refilled only when
//! the weighting changes from one start to the next; the kernels are the
//! unweighted ones run on that scratch. Points of weight 0 are selected
//! out, so held-out points add exactly nothing even where the law is
//! undefined there.

pub mod compiled;
mod grid;
mod kernel;

use std::ops::Range;

use rayon::prelude::*;

use super::weights::{self, Resolved, Weighting, UNWEIGHTED};
use super::{Backend, BackendInfo, Eval, Prepared};
use crate::law::NP;
use grid::Grid;
use kernel::{Block, GridBlock, Weights};

/// Points per block in the point layout: large enough to amortise the
/// per-block work, small enough to balance load on small sweeps.
const POINT_BLOCK: usize = 2048;

/// Work items per thread to aim for: enough to even out unequal blocks.
const ITEMS_PER_THREAD: usize = 8;

/// Most (start, configuration) constants one grid work item holds (a few
/// MiB), which caps its starts when there are very many configurations.
const MAX_GRID_TERMS: usize = 1 << 16;

/// How the CPU backend arranges the points (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuLayout {
    /// Blocks of points within one configuration.
    Points,
    /// A dense configurations x distinct-tokens matrix sharing the token
    /// term across configurations.
    Grid,
}

enum Plan {
    /// (config index, point range, whether a weight in it is 0) of every
    /// block.
    Points(Vec<(usize, Range<usize>, bool)>),
    Grid(Grid),
}

pub struct CpuBackend {
    data: Prepared,
    plan: Plan,
    threads: usize,
    /// The registered weightings, by index.
    weightings: Vec<Resolved>,
}

impl CpuBackend {
    /// The grid layout when the curves share token values densely enough
    /// (at most 1.5 matrix cells per point, and fewer distinct token values
    /// than points), else the point layout.
    pub fn new(data: Prepared) -> CpuBackend {
        let points = data.points();
        let plan = match Grid::build(&data, points + points / 2) {
            Ok(g) if g.d.len() < points => Plan::Grid(g),
            _ => Plan::Points(point_blocks(&data)),
        };
        CpuBackend::from_plan(data, plan)
    }

    /// A backend with the given layout regardless of cost, e.g. to compare
    /// layouts. The grid layout fails on data it cannot represent: a
    /// configuration with two points at the same tokens, or a NaN token
    /// count or target.
    pub fn with_layout(data: Prepared, layout: CpuLayout) -> anyhow::Result<CpuBackend> {
        let plan = match layout {
            CpuLayout::Points => Plan::Points(point_blocks(&data)),
            CpuLayout::Grid => Plan::Grid(
                Grid::build(&data, usize::MAX)
                    .map_err(|why| anyhow::anyhow!("no grid layout for this data: {why}"))?,
            ),
        };
        Ok(CpuBackend::from_plan(data, plan))
    }

    fn from_plan(data: Prepared, plan: Plan) -> CpuBackend {
        CpuBackend {
            data,
            plan,
            threads: rayon::current_num_threads(),
            weightings: Vec::new(),
        }
    }

    /// The layout in use.
    pub fn layout(&self) -> CpuLayout {
        match self.plan {
            Plan::Points(_) => CpuLayout::Points,
            Plan::Grid(_) => CpuLayout::Grid,
        }
    }

    fn blocks(&self) -> usize {
        match &self.plan {
            Plan::Points(b) => b.len(),
            Plan::Grid(g) => g.blocks.len(),
        }
    }

    fn block(&self, i: usize) -> Block<'_> {
        let data = &self.data;
        match &self.plan {
            Plan::Points(blocks) => {
                let (ci, r, zero) = &blocks[i];
                Block::Points {
                    ci: *ci,
                    cfg: &data.configs[*ci],
                    key: r.start,
                    d: &data.d[r.clone()],
                    y: &data.y[r.clone()],
                    w: &data.w[r.clone()],
                    zero: *zero,
                }
            }
            Plan::Grid(g) => Block::Grid(GridBlock {
                configs: &data.configs,
                d: &g.d[g.blocks[i].clone()],
                y: &g.y,
                w: &g.w,
                pos: &g.pos,
                stride: g.d.len(),
                start: g.blocks[i].start,
                zero: g.zero,
            }),
        }
    }

    /// `evaluate` with start k weighed by `which[k]` (indices already
    /// checked), or by the dataset's weights when `which` is None.
    fn run(
        &self,
        params: &[[f64; NP]],
        which: Option<&[u32]>,
        out: &mut [Eval],
    ) -> anyhow::Result<()> {
        anyhow::ensure!(params.len() == out.len(), "params and out differ in length");
        out.fill(Eval::ZERO);
        let (k, nb) = (params.len(), self.blocks());
        if k == 0 || nb == 0 {
            return Ok(());
        }
        // Split the starts too when there are few blocks (one grid block
        // holds a whole small sweep).
        let mut per = k.div_ceil((ITEMS_PER_THREAD * self.threads).div_ceil(nb).min(k));
        if let Plan::Grid(_) = self.plan {
            // A grid item keeps each start's configuration constants.
            per = per.min((MAX_GRID_TERMS / self.data.configs.len().max(1)).max(1));
        }
        let chunks = k.div_ceil(per);
        let obj = self.data.objective;
        let parts: Vec<Vec<Eval>> = (0..nb * chunks)
            .into_par_iter()
            .map(|i| {
                let c = i % chunks;
                let starts = c * per..((c + 1) * per).min(k);
                let weights = Weights {
                    which: which.map(|w| &w[starts.clone()]),
                    resolved: &self.weightings,
                };
                let ps = &params[starts];
                let mut acc = vec![Eval::ZERO; ps.len()];
                kernel::run(obj, &self.block(i / chunks), ps, weights, &mut acc);
                acc
            })
            .collect();
        for (i, part) in parts.iter().enumerate() {
            for (o, e) in out[(i % chunks) * per..].iter_mut().zip(part) {
                o.f += e.f;
                for (a, b) in o.g.iter_mut().zip(&e.g) {
                    *a += b;
                }
            }
        }
        Ok(())
    }
}

/// Blocks of at most POINT_BLOCK points, each inside one configuration.
fn point_blocks(data: &Prepared) -> Vec<(usize, Range<usize>, bool)> {
    let mut blocks = Vec::new();
    for (ci, c) in data.configs.iter().enumerate() {
        let mut s = c.start;
        while s < c.start + c.len {
            let e = (s + POINT_BLOCK).min(c.start + c.len);
            blocks.push((ci, s..e, data.w[s..e].contains(&0.0)));
            s = e;
        }
    }
    blocks
}

impl Backend for CpuBackend {
    fn info(&self) -> BackendInfo {
        let layout = match &self.plan {
            Plan::Points(_) => format!("point layout ({} points)", self.data.points()),
            Plan::Grid(g) => format!(
                "shared token grid ({} curves x {} tokens)",
                self.data.configs.len(),
                g.d.len()
            ),
        };
        BackendInfo {
            kind: "cpu".into(),
            device: format!("{} threads, f64, {layout}", self.threads),
        }
    }

    fn evaluate(&mut self, params: &[[f64; NP]], out: &mut [Eval]) -> anyhow::Result<()> {
        self.run(params, None, out)
    }

    fn set_weightings(&mut self, weightings: &[Weighting]) -> anyhow::Result<()> {
        // All or nothing: an invalid weighting leaves the earlier ones.
        let resolved = weights::resolve_all(weightings, &self.data)?;
        self.weightings = resolved;
        Ok(())
    }

    fn evaluate_weighted(
        &mut self,
        params: &[[f64; NP]],
        which: &[u32],
        out: &mut [Eval],
    ) -> anyhow::Result<()> {
        anyhow::ensure!(
            which.len() == params.len() && out.len() == params.len(),
            "params, which and out differ in length"
        );
        let n = self.weightings.len();
        if let Some(k) = which.iter().find(|&&k| k != UNWEIGHTED && k as usize >= n) {
            anyhow::bail!("weighting index {k} is out of range: {n} weightings are registered");
        }
        // Starts that share a weighting side by side, so that a work item
        // fills each weighting's scratch once. A start's value does not
        // depend on the others in its chunk, so the order changes no bits.
        let mut order: Vec<usize> = (0..params.len()).collect();
        order.sort_by_key(|&k| which[k]);
        let ps: Vec<[f64; NP]> = order.iter().map(|&k| params[k]).collect();
        let ws: Vec<u32> = order.iter().map(|&k| which[k]).collect();
        let mut res = vec![Eval::ZERO; params.len()];
        self.run(&ps, Some(&ws), &mut res)?;
        for (&k, e) in order.iter().zip(res) {
            out[k] = e;
        }
        Ok(())
    }
}
