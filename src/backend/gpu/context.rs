//! An opened GPU device and what every evaluator on it shares: the bind
//! group layouts of the law and reduction kernels, and their pipelines,
//! compiled once per generated kernel and objective and kept for the
//! device's life (fits of one law to many groups, or many fits in one
//! process, compile it once).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context};

use super::device::AdapterSummary;

const REDUCE_WGSL: &str = include_str!("../../../shaders/reduce.wgsl");

/// A device, its queue, and the first error wgpu reported outside a
/// call's return value (validation, out of memory, device lost).
pub struct GpuDevice {
    pub(super) device: wgpu::Device,
    pub(super) queue: wgpu::Queue,
    pub(super) summary: AdapterSummary,
    pub(super) limits: wgpu::Limits,
    error: Arc<Mutex<Option<String>>>,
    pub(super) layouts: Layouts,
    /// Pipelines by (kernel source, pipeline constants).
    pipelines: Mutex<HashMap<(String, String), wgpu::ComputePipeline>>,
    reduce_module: wgpu::ShaderModule,
}

impl std::fmt::Debug for GpuDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GpuDevice({})", self.summary.short())
    }
}

pub(super) struct Layouts {
    pub objective: wgpu::BindGroupLayout,
    pub batch: wgpu::BindGroupLayout,
    pub weighting: wgpu::BindGroupLayout,
    pub reduce: wgpu::BindGroupLayout,
    objective_pipeline: wgpu::PipelineLayout,
    reduce_pipeline: wgpu::PipelineLayout,
}

fn storage_entry(binding: u32, read_only: bool) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

fn uniform_entry(binding: u32, dynamic: bool) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: dynamic,
            min_binding_size: None,
        },
        count: None,
    }
}

impl Layouts {
    fn new(device: &wgpu::Device) -> Layouts {
        let layout = |name: &str, entries: &[wgpu::BindGroupLayoutEntry]| {
            device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some(name),
                entries,
            })
        };
        let objective = layout(
            "objective",
            &[
                storage_entry(0, true),
                storage_entry(1, true),
                storage_entry(2, true),
                storage_entry(3, false),
                uniform_entry(4, false),
                storage_entry(5, true),
            ],
        );
        let weighting = layout(
            "weightings",
            &[storage_entry(0, true), storage_entry(1, true)],
        );
        let batch = layout("batch", &[uniform_entry(0, true)]);
        let reduce = layout(
            "reduce",
            &[
                storage_entry(0, true),
                storage_entry(1, false),
                uniform_entry(2, false),
            ],
        );
        let pipeline_layout = |name: &str, layouts: &[Option<&wgpu::BindGroupLayout>]| {
            device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(name),
                bind_group_layouts: layouts,
                immediate_size: 0,
            })
        };
        let objective_pipeline = pipeline_layout(
            "objective",
            &[Some(&objective), Some(&batch), Some(&weighting)],
        );
        let reduce_pipeline = pipeline_layout("reduce", &[Some(&reduce), Some(&batch)]);
        Layouts {
            objective,
            batch,
            weighting,
            reduce,
            objective_pipeline,
            reduce_pipeline,
        }
    }
}

impl GpuDevice {
    /// Loop iterations a shader invocation may run before the driver ends
    /// its loops, if the driver has such a limit: Mesa's software driver
    /// (llvmpipe) counts every loop iteration of an invocation against one
    /// budget of 65,535 and then breaks out of all of them, silently.
    /// Evaluators check their sums along the steps against it.
    pub fn loop_budget(&self) -> Option<u64> {
        self.summary.name.contains("llvmpipe").then_some(65_535)
    }

    /// Open `adapter` with its own limits: large sweeps need its full
    /// storage-binding size, not WebGPU's conservative default.
    pub fn open(adapter: &wgpu::Adapter) -> anyhow::Result<Arc<GpuDevice>> {
        let summary = AdapterSummary::of(adapter);
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("sweepfit"),
            required_features: wgpu::Features::empty(),
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .with_context(|| format!("cannot open {}", summary.short()))?;
        let error: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
        {
            let e = error.clone();
            device.on_uncaptured_error(Arc::new(move |err: wgpu::Error| {
                let mut slot = e.lock().unwrap_or_else(|p| p.into_inner());
                slot.get_or_insert_with(|| err.to_string());
            }));
            let e = error.clone();
            device.set_device_lost_callback(move |reason, msg| {
                let mut slot = e.lock().unwrap_or_else(|p| p.into_inner());
                slot.get_or_insert_with(|| format!("GPU device lost ({reason:?}): {msg}"));
            });
        }
        let layouts = Layouts::new(&device);
        let reduce_module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("reduce"),
            source: wgpu::ShaderSource::Wgsl(REDUCE_WGSL.into()),
        });
        let dev = GpuDevice {
            device,
            queue,
            summary,
            limits,
            error,
            layouts,
            pipelines: Mutex::new(HashMap::new()),
            reduce_module,
        };
        dev.check_error()?;
        Ok(Arc::new(dev))
    }

    pub fn summary(&self) -> &AdapterSummary {
        &self.summary
    }

    /// Submit an empty command buffer and wait for it: the floor under
    /// every evaluation's round trip to the device (benches report it
    /// beside the per-evaluation overhead).
    pub fn round_trip(&self) -> anyhow::Result<()> {
        let enc = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        let index = self.queue.submit(Some(enc.finish()));
        self.device
            .poll(wgpu::PollType::Wait {
                submission_index: Some(index),
                timeout: Some(std::time::Duration::from_secs(10)),
            })
            .context("the GPU did not finish an empty submission")?;
        self.check_error()
    }

    pub fn check_error(&self) -> anyhow::Result<()> {
        if let Some(e) = self.error.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            bail!("GPU error on {}: {e}", self.summary.short());
        }
        Ok(())
    }

    /// The objective pipeline of a generated kernel with the given
    /// pipeline constants, compiled at its first use on this device.
    pub(super) fn objective_pipeline(
        &self,
        source: &str,
        constants: &[(&str, f64)],
    ) -> wgpu::ComputePipeline {
        let key = (source.to_string(), format!("{constants:?}"));
        let mut cache = self.pipelines.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .entry(key)
            .or_insert_with(|| {
                let module = self
                    .device
                    .create_shader_module(wgpu::ShaderModuleDescriptor {
                        label: Some("law objective"),
                        source: wgpu::ShaderSource::Wgsl(source.into()),
                    });
                self.pipeline(
                    "law objective",
                    &module,
                    &self.layouts.objective_pipeline,
                    constants,
                )
            })
            .clone()
    }

    /// The reduction pipeline for records of `record` floats.
    pub(super) fn reduce_pipeline(&self, record: usize) -> wgpu::ComputePipeline {
        let key = ("reduce".to_string(), record.to_string());
        let mut cache = self.pipelines.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .entry(key)
            .or_insert_with(|| {
                self.pipeline(
                    "reduce",
                    &self.reduce_module,
                    &self.layouts.reduce_pipeline,
                    &[("RECORD", record as f64)],
                )
            })
            .clone()
    }

    fn pipeline(
        &self,
        name: &str,
        module: &wgpu::ShaderModule,
        layout: &wgpu::PipelineLayout,
        constants: &[(&str, f64)],
    ) -> wgpu::ComputePipeline {
        self.device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(name),
                layout: Some(layout),
                module,
                entry_point: Some("main"),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants,
                    ..Default::default()
                },
                cache: None,
            })
    }
}
