//! CPU backend: f64, all cores, on the compiled LoopLM law.
//!
//! The law is compiled from its formula like any other (see `crate::law`),
//! and evaluated by the compiled-plan evaluator ([`compiled`]) on the
//! sweep's curves in one of its layouts ([`CpuLayout`]):
//! - grid: most sweeps log every curve on one step grid, so the token term
//!   is computed once per distinct token value and reused by every curve;
//! - points: each curve along its own points, the token term per point
//!   (one loop per span of points, see `compiled::power`), for sweeps
//!   whose curves share few token values.
//!
//! This module maps the fit's ten parameters in their fixed order to the
//! compiled law's and back, and holds the registered weightings.

pub mod compiled;
pub mod jacobian;
mod node;

use super::weights::{self, Resolved, Weighting};
use super::{Backend, BackendInfo, Eval, Prepared};
use crate::backend::looplm::{flat, looplm_plan, looplm_sweep, unflat};
use crate::law::NP;
pub use compiled::{CompiledGrid, CpuLayout};

pub struct CpuBackend {
    data: Prepared,
    grid: CompiledGrid,
    threads: usize,
    /// The registered weightings, by index.
    weightings: Vec<Resolved>,
}

impl CpuBackend {
    /// The grid layout when the curves share token values densely enough
    /// (at most 1.5 matrix cells per point), else the point layout.
    pub fn new(data: Prepared) -> CpuBackend {
        let sweep = looplm_sweep(&data);
        let plan = looplm_plan(&sweep);
        // The point layout holds any sweep, so the automatic choice
        // always finds one.
        let grid = CompiledGrid::new(plan, &sweep, data.objective)
            .expect("the point layout holds any sweep");
        CpuBackend::from_grid(data, grid)
    }

    /// A backend with the given layout regardless of cost, e.g. to compare
    /// layouts. The grid layout fails on data it cannot represent: a
    /// configuration with two points at the same tokens, or a NaN token
    /// count or target.
    pub fn with_layout(data: Prepared, layout: CpuLayout) -> anyhow::Result<CpuBackend> {
        if layout == CpuLayout::Grid && data.y.iter().chain(&data.d).any(|v| v.is_nan()) {
            anyhow::bail!("no grid layout for this data: a token count or target is NaN");
        }
        let sweep = looplm_sweep(&data);
        let plan = looplm_plan(&sweep);
        let grid = CompiledGrid::with_layout(plan, &sweep, data.objective, layout)
            .map_err(|why| anyhow::anyhow!("no {layout:?} layout for this data: {why}"))?;
        Ok(CpuBackend::from_grid(data, grid))
    }

    fn from_grid(data: Prepared, grid: CompiledGrid) -> CpuBackend {
        CpuBackend {
            data,
            grid,
            threads: rayon::current_num_threads(),
            weightings: Vec::new(),
        }
    }

    /// The layout in use.
    pub fn layout(&self) -> CpuLayout {
        self.grid.layout()
    }
}

impl Backend for CpuBackend {
    fn info(&self) -> BackendInfo {
        let layout = match self.layout() {
            CpuLayout::Grid => format!(
                "shared token grid ({} curves x {} tokens)",
                self.data.configs.len(),
                {
                    let mut d = self.data.d.clone();
                    d.sort_by(f64::total_cmp);
                    d.dedup();
                    d.len()
                }
            ),
            _ => format!("point layout ({} points)", self.data.points()),
        };
        BackendInfo {
            kind: "cpu".into(),
            device: format!("{} threads, f64, {layout}", self.threads),
        }
    }

    fn evaluate(&mut self, params: &[[f64; NP]], out: &mut [Eval]) -> anyhow::Result<()> {
        anyhow::ensure!(params.len() == out.len(), "params and out differ in length");
        let (mut f, mut g) = (vec![0.0; params.len()], vec![0.0; params.len() * NP]);
        self.grid.evaluate(&flat(params), &mut f, &mut g);
        unflat(&f, &g, out);
        Ok(())
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
        let (mut f, mut g) = (vec![0.0; params.len()], vec![0.0; params.len() * NP]);
        self.grid
            .evaluate_weighted(&flat(params), which, &self.weightings, &mut f, &mut g)?;
        unflat(&f, &g, out);
        Ok(())
    }
}
