//! GPU backend: objective and gradient for batches of parameter vectors,
//! evaluated by WGSL compute kernels generated from a compiled law
//! (`codegen`, on the templates shaders/law_*.wgsl), reduced by
//! shaders/reduce.wgsl, through wgpu.
//!
//! - `device`: finding and describing adapters;
//! - `context`: an opened device, with the layouts and pipelines every
//!   evaluator on it shares;
//! - `law`: a law's plan bound to a sweep on the device ([`GpuLaw`]), the
//!   GPU twin of the CPU's `CompiledGrid`;
//! - here: [`GpuBackend`], the LoopLM law on a prepared sweep, as the
//!   [`Backend`] of the LoopLM fit driver.

mod codegen;
mod context;
mod device;
mod law;

use std::sync::Arc;

pub use codegen::{generate, kernel, validate, CodegenError, Kernel, Layout};
pub use context::GpuDevice;
pub use device::{
    all_adapters, check_env, instance, quiet_device_select_layer, select_adapter, AdapterFilter,
    AdapterSummary,
};
pub use law::{evaluate_all, GpuLaw, GpuLimits, Job};

use super::looplm::{flat, looplm_plan, looplm_sweep, unflat};
use super::weights::{self, Weighting};
use super::{Backend, BackendInfo, Eval, Prepared};
use crate::law::NP;

pub struct GpuBackend {
    law: GpuLaw,
    /// What weights::resolve reads of the data: configurations and point
    /// weights (tokens and targets left empty to save host memory).
    resolve_data: Prepared,
}

impl GpuBackend {
    /// Pick an adapter (see [`select_adapter`]) and upload `data`.
    pub fn new(data: &Prepared, filter: AdapterFilter) -> anyhow::Result<GpuBackend> {
        let inst = instance()?;
        let adapter = select_adapter(&inst, filter)?;
        GpuBackend::on_adapter(&adapter, data, None)
    }

    /// Upload `data` to `adapter`, optionally with smaller work limits.
    pub fn on_adapter(
        adapter: &wgpu::Adapter,
        data: &Prepared,
        limits: Option<GpuLimits>,
    ) -> anyhow::Result<GpuBackend> {
        let dev = GpuDevice::open(adapter)?;
        GpuBackend::on_device(&dev, data, limits)
    }

    /// Upload `data` to an opened device.
    pub fn on_device(
        dev: &Arc<GpuDevice>,
        data: &Prepared,
        limits: Option<GpuLimits>,
    ) -> anyhow::Result<GpuBackend> {
        let sweep = looplm_sweep(data);
        let plan = looplm_plan(&sweep);
        let law = GpuLaw::new(dev, &plan, &sweep, data.objective, limits)?;
        Ok(GpuBackend {
            law,
            resolve_data: Prepared {
                objective: data.objective,
                scale: data.scale,
                configs: data.configs.clone(),
                d: Vec::new(),
                y: Vec::new(),
                w: data.w.clone(),
            },
        })
    }

    pub fn adapter(&self) -> &AdapterSummary {
        self.law.device().summary()
    }
}

impl Backend for GpuBackend {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            kind: "gpu".into(),
            device: format!("{}, {}", self.adapter().short(), self.law.describe_layout()),
        }
    }

    fn single_precision(&self) -> bool {
        true
    }

    fn evaluate(&mut self, params: &[[f64; NP]], out: &mut [Eval]) -> anyhow::Result<()> {
        anyhow::ensure!(params.len() == out.len(), "params and out differ in length");
        let (mut f, mut g) = (vec![0.0; params.len()], vec![0.0; params.len() * NP]);
        self.law.evaluate(&flat(params), &mut f, &mut g)?;
        unflat(&f, &g, out);
        Ok(())
    }

    fn set_weightings(&mut self, weightings: &[Weighting]) -> anyhow::Result<()> {
        let resolved = weights::resolve_all(weightings, &self.resolve_data)?;
        self.law.set_weightings(&resolved)
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
        self.law
            .evaluate_weighted(&flat(params), which, &mut f, &mut g)?;
        unflat(&f, &g, out);
        Ok(())
    }
}
