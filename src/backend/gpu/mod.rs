//! GPU backend: the objective and its gradient for a batch of parameter
//! vectors, evaluated by WGSL compute shaders (shaders/objective.wgsl, then
//! shaders/reduce.wgsl) through wgpu.
//!
//! The dataset is uploaded once. Each evaluation writes the K parameter
//! vectors, records one command buffer (objective pass, reduction pass,
//! copy to a staging buffer), submits it once and reads K x 12 floats
//! back. Buffers, bind groups and pipelines are made when the backend is
//! built (or, once, when a batch outgrows the capacity sized at the first
//! call), never per evaluation.
//!
//! Sweeps larger than one storage binding are split into chunks of points,
//! each with its own buffer; batches of starts larger than one dispatch
//! allows are split into several dispatches in the same submission.
//!
//! Weighted evaluation ([`Backend::evaluate_weighted`]) runs a second
//! pipeline of the same shader (the WEIGHTED constant set): each start
//! names a registered weighting, whose per-configuration multipliers and
//! point limits live on the device, and Poisson counts are rehashed per
//! point, so no weighting stores anything per point.
//!
//! Memory: 16 bytes per point (d, y, w, configuration as f32), 16 bytes
//! per configuration, plus per start 40 bytes of parameters, 16 bytes
//! naming its weighting, 96 bytes of sums and staging, and 48 bytes per
//! workgroup slot of partial sums; per registered weighting 8 bytes per
//! configuration. The host keeps the point weights (8 bytes per point) to
//! resolve weightings.

mod device;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};

pub use device::{
    all_adapters, check_env, instance, select_adapter, AdapterFilter, AdapterSummary,
};

use super::weights::{self, Weighting, UNWEIGHTED};
use super::{Backend, BackendInfo, Eval, Prepared};
use crate::law::NP;
use crate::objective::{LossKind, Space};

const OBJECTIVE_WGSL: &str = include_str!("../../../shaders/objective.wgsl");
const REDUCE_WGSL: &str = include_str!("../../../shaders/reduce.wgsl");

/// Starts per workgroup and points per tile (must match objective.wgsl).
const WG_STARTS: u32 = 64;
const TILE: u32 = 256;
/// Floats per start in the partial and final sums: f, 10 gradient entries,
/// weight of points where the law is undefined.
const RECORD: u64 = 12;
/// Bytes of one point and of one batch uniform slot (dynamic offsets must
/// be aligned to min_uniform_buffer_offset_alignment, at most 256).
const POINT_BYTES: u64 = 16;
/// Bytes of one start's weighting record and of one (weighting,
/// configuration) entry.
const PROBLEM_BYTES: u64 = 16;
const WEIGHTING_ENTRY_BYTES: u64 = 8;
const UNIFORM_SLOT: u64 = 256;
/// How long one evaluation may take before the device counts as hung.
const EVAL_TIMEOUT: Duration = Duration::from_secs(120);

/// Size limits of the work split; by default taken from the device.
/// Tests shrink them to exercise chunking on small data.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GpuLimits {
    /// Points per chunk (one storage binding each).
    pub max_points_per_chunk: u64,
    /// Starts per dispatch.
    pub max_starts_per_dispatch: u64,
    /// Workgroups along the point axis per chunk.
    pub max_groups: u32,
}

impl GpuLimits {
    pub fn for_device(limits: &wgpu::Limits) -> GpuLimits {
        let binding = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size);
        let points = (binding / POINT_BYTES) / TILE as u64 * TILE as u64;
        // The reduction dispatches one invocation per (start, value).
        let reduce_cap = limits.max_compute_workgroups_per_dimension as u64 * 64 / RECORD;
        GpuLimits {
            max_points_per_chunk: points.max(TILE as u64),
            max_starts_per_dispatch: reduce_cap / WG_STARTS as u64 * WG_STARTS as u64,
            max_groups: 256,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Meta {
    n_points: u32,
    n_groups: u32,
    k_stride: u32,
    slot_base: u32,
    loss: u32,
    space: u32,
    delta: f32,
    /// Global index of the chunk's first point, for weighted evaluation.
    first_point: u32,
}

/// A start's weighting as objective.wgsl reads it (`Problem`).
#[repr(C)]
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct ProblemGpu {
    /// First entry of its weighting in the weighting buffer.
    base: u32,
    /// Bit 0: weighted; bit 1: Poisson counts.
    flags: u32,
    /// Mixed seed of the Poisson counts.
    seed: u32,
    _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ReduceMeta {
    n_slots: u32,
    k_stride: u32,
    _pad: [u32; 2],
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct BatchMeta {
    k: u32,
    k_offset: u32,
    _pad: [u32; 2],
}

struct Chunk {
    points: wgpu::Buffer,
    meta: wgpu::Buffer,
    n_points: u32,
    first_point: u32,
    n_groups: u32,
    slot_base: u32,
    bind_group: Option<wgpu::BindGroup>,
}

/// Buffers whose size depends on the number of starts.
struct Capacity {
    /// Starts the buffers hold.
    k: u64,
    /// Starts per dispatch (stride of the partial sums).
    k_batch: u64,
    params: wgpu::Buffer,
    problems: wgpu::Buffer,
    sums: wgpu::Buffer,
    staging: wgpu::Buffer,
    batches: wgpu::Buffer,
    // Bind groups keep the partial-sum and reduction-metadata buffers alive.
    batch_group: wgpu::BindGroup,
    reduce_group: wgpu::BindGroup,
}

/// The registered weightings on the device.
struct Weightings {
    /// (multiplier as f32 bits, points kept) per (weighting, configuration);
    /// a placeholder entry while none are registered.
    buffer: wgpu::Buffer,
    group: wgpu::BindGroup,
    /// Mixed Poisson seed of each registered weighting, if it resamples.
    seeds: Vec<Option<u32>>,
}

pub struct GpuBackend {
    device: wgpu::Device,
    queue: wgpu::Queue,
    summary: AdapterSummary,
    limits: GpuLimits,
    objective: wgpu::ComputePipeline,
    /// The objective with WEIGHTED set, built at the first weighted use.
    objective_weighted: Option<wgpu::ComputePipeline>,
    objective_module: wgpu::ShaderModule,
    objective_pipeline_layout: wgpu::PipelineLayout,
    reduce: wgpu::ComputePipeline,
    objective_layout: wgpu::BindGroupLayout,
    reduce_layout: wgpu::BindGroupLayout,
    batch_layout: wgpu::BindGroupLayout,
    weighting_layout: wgpu::BindGroupLayout,
    weightings: Weightings,
    /// What weights::resolve reads of the data: configurations and point
    /// weights (tokens and targets left empty to save host memory).
    resolve_data: Prepared,
    configs: wgpu::Buffer,
    chunks: Vec<Chunk>,
    n_slots: u32,
    loss: u32,
    space: u32,
    delta: f32,
    capacity: Option<Capacity>,
    /// First error wgpu reported outside a call's return value
    /// (validation, out of memory, device lost).
    error: Arc<Mutex<Option<String>>>,
    params_f32: Vec<f32>,
    problems_host: Vec<ProblemGpu>,
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

/// The compute pipeline of `module`'s `main`; `weighted` sets the
/// shader's WEIGHTED constant (only objective.wgsl declares it).
fn compute_pipeline(
    device: &wgpu::Device,
    name: &str,
    module: &wgpu::ShaderModule,
    layout: &wgpu::PipelineLayout,
    weighted: bool,
) -> wgpu::ComputePipeline {
    let constants: &[(&str, f64)] = if weighted { &[("WEIGHTED", 1.0)] } else { &[] };
    device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
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

impl Weightings {
    /// No weightings: a one-entry buffer, since a binding cannot be empty.
    fn placeholder(device: &wgpu::Device, layout: &wgpu::BindGroupLayout) -> Weightings {
        Weightings::with_size(device, layout, WEIGHTING_ENTRY_BYTES, Vec::new())
    }

    fn with_size(
        device: &wgpu::Device,
        layout: &wgpu::BindGroupLayout,
        bytes: u64,
        seeds: Vec<Option<u32>>,
    ) -> Weightings {
        let buffer = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("weightings"),
            size: bytes,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("weightings"),
            layout,
            entries: &[wgpu::BindGroupEntry {
                binding: 0,
                resource: buffer.as_entire_binding(),
            }],
        });
        Weightings {
            buffer,
            group,
            seeds,
        }
    }
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
        let summary = AdapterSummary::of(adapter);
        let adapter_limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("sweepfit"),
            required_features: wgpu::Features::empty(),
            // The adapter's own limits: large sweeps need its full
            // storage-binding size, not WebGPU's conservative default.
            required_limits: adapter_limits.clone(),
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
        let limits = limits.unwrap_or_else(|| GpuLimits::for_device(&adapter_limits));

        let objective_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("objective"),
            entries: &[
                storage_entry(0, true),
                storage_entry(1, true),
                storage_entry(2, true),
                storage_entry(3, false),
                uniform_entry(4, false),
                storage_entry(5, true),
            ],
        });
        let weighting_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("weightings"),
            entries: &[storage_entry(0, true)],
        });
        let batch_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("batch"),
            entries: &[uniform_entry(0, true)],
        });
        let reduce_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("reduce"),
            entries: &[
                storage_entry(0, true),
                storage_entry(1, false),
                uniform_entry(2, false),
            ],
        });
        let module = |name: &str, src: &str| {
            device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(name),
                source: wgpu::ShaderSource::Wgsl(src.into()),
            })
        };
        let pipeline_layout = |name: &str, layouts: &[Option<&wgpu::BindGroupLayout>]| {
            device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(name),
                bind_group_layouts: layouts,
                immediate_size: 0,
            })
        };
        let objective_module = module("objective", OBJECTIVE_WGSL);
        let objective_pipeline_layout = pipeline_layout(
            "objective",
            &[
                Some(&objective_layout),
                Some(&batch_layout),
                Some(&weighting_layout),
            ],
        );
        let objective = compute_pipeline(
            &device,
            "objective",
            &objective_module,
            &objective_pipeline_layout,
            false,
        );
        let reduce = compute_pipeline(
            &device,
            "reduce",
            &module("reduce", REDUCE_WGSL),
            &pipeline_layout("reduce", &[Some(&reduce_layout), Some(&batch_layout)]),
            false,
        );

        // Points as (d, y, w, configuration bits), chunked.
        let mut packed: Vec<[f32; 4]> = Vec::with_capacity(data.points());
        for (ci, c) in data.configs.iter().enumerate() {
            for j in c.start..c.start + c.len {
                packed.push([
                    data.d[j] as f32,
                    data.y[j] as f32,
                    data.w[j] as f32,
                    f32::from_bits(ci as u32),
                ]);
            }
        }
        // Per configuration (n, T, bits of the global index of its first
        // point, bits of that point's index in the Prepared): the Poisson
        // hash keys points by the latter (weights::Resolved::factor),
        // wrapping like it.
        let mut configs_host: Vec<[f32; 4]> = Vec::with_capacity(data.configs.len());
        let mut packed_start = 0u32;
        for c in &data.configs {
            configs_host.push([
                c.n as f32,
                c.t as f32,
                f32::from_bits(packed_start),
                f32::from_bits(c.start as u32),
            ]);
            packed_start = packed_start.wrapping_add(c.len as u32);
        }
        let configs = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("configs"),
            size: (configs_host.len().max(1) * 16) as u64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        queue.write_buffer(&configs, 0, bytemuck::cast_slice(&configs_host));
        let mut chunks = Vec::new();
        let mut slot_base = 0u32;
        let mut first_point = 0u32;
        for part in packed.chunks(limits.max_points_per_chunk as usize) {
            let points = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("points"),
                size: part.len() as u64 * POINT_BYTES,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            queue.write_buffer(&points, 0, bytemuck::cast_slice(part));
            let tiles = (part.len() as u64).div_ceil(TILE as u64) as u32;
            let n_groups = tiles.min(limits.max_groups).max(1);
            let meta = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("meta"),
                size: std::mem::size_of::<Meta>() as u64,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            chunks.push(Chunk {
                points,
                meta,
                n_points: part.len() as u32,
                first_point,
                n_groups,
                slot_base,
                bind_group: None,
            });
            slot_base += n_groups;
            first_point = first_point.wrapping_add(part.len() as u32);
        }
        let weightings = Weightings::placeholder(&device, &weighting_layout);
        let backend = GpuBackend {
            device,
            queue,
            summary,
            limits,
            objective,
            objective_weighted: None,
            objective_module,
            objective_pipeline_layout,
            reduce,
            objective_layout,
            reduce_layout,
            batch_layout,
            weighting_layout,
            weightings,
            resolve_data: Prepared {
                objective: data.objective,
                scale: data.scale,
                configs: data.configs.clone(),
                d: Vec::new(),
                y: Vec::new(),
                w: data.w.clone(),
            },
            configs,
            chunks,
            n_slots: slot_base,
            loss: match data.objective.loss {
                LossKind::Mse => 0,
                LossKind::Huber => 1,
            },
            space: match data.objective.space {
                Space::Linear => 0,
                Space::Log => 1,
            },
            delta: data.objective.delta as f32,
            capacity: None,
            error,
            params_f32: Vec::new(),
            problems_host: Vec::new(),
        };
        backend.check_error()?;
        Ok(backend)
    }

    pub fn adapter(&self) -> &AdapterSummary {
        &self.summary
    }

    fn check_error(&self) -> anyhow::Result<()> {
        if let Some(e) = self.error.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            bail!("GPU error on {}: {e}", self.summary.short());
        }
        Ok(())
    }

    /// Size the per-start buffers for `k` starts (once, or when a batch
    /// outgrows them) and write the metadata that depends on it.
    fn ensure_capacity(&mut self, k: u64) -> anyhow::Result<()> {
        if self.capacity.as_ref().is_some_and(|c| c.k >= k) {
            return Ok(());
        }
        let device = &self.device;
        // Starts per dispatch: bounded by the dispatch limit and by the
        // partial-sum buffer fitting in one storage binding.
        let per_start_partials = self.n_slots as u64 * RECORD * 4;
        let by_memory =
            (self.limits.max_points_per_chunk * POINT_BYTES / per_start_partials).max(1);
        let k_batch = k
            .min(self.limits.max_starts_per_dispatch)
            .min(by_memory)
            .max(1);
        let k_batch = k_batch.div_ceil(WG_STARTS as u64) * WG_STARTS as u64;
        let n_batches = k.div_ceil(k_batch);
        let buf = |label: &str, size: u64, usage: wgpu::BufferUsages| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage,
                mapped_at_creation: false,
            })
        };
        use wgpu::BufferUsages as U;
        let params = buf("params", k * NP as u64 * 4, U::STORAGE | U::COPY_DST);
        let problems = buf("problems", k * PROBLEM_BYTES, U::STORAGE | U::COPY_DST);
        let partials = buf(
            "partials",
            self.n_slots as u64 * k_batch * RECORD * 4,
            U::STORAGE,
        );
        let sums = buf("sums", k * RECORD * 4, U::STORAGE | U::COPY_SRC);
        let staging = buf("staging", k * RECORD * 4, U::MAP_READ | U::COPY_DST);
        let batches = buf(
            "batches",
            n_batches * UNIFORM_SLOT,
            U::UNIFORM | U::COPY_DST,
        );
        let reduce_meta = buf(
            "reduce meta",
            std::mem::size_of::<ReduceMeta>() as u64,
            U::UNIFORM | U::COPY_DST,
        );
        self.queue.write_buffer(
            &reduce_meta,
            0,
            bytemuck::bytes_of(&ReduceMeta {
                n_slots: self.n_slots,
                k_stride: k_batch as u32,
                _pad: [0; 2],
            }),
        );
        let batch_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("batch"),
            layout: &self.batch_layout,
            entries: &[wgpu::BindGroupEntry {
                binding: 0,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: &batches,
                    offset: 0,
                    size: std::num::NonZeroU64::new(std::mem::size_of::<BatchMeta>() as u64),
                }),
            }],
        });
        let reduce_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("reduce"),
            layout: &self.reduce_layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: partials.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: sums.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 2,
                    resource: reduce_meta.as_entire_binding(),
                },
            ],
        });
        for chunk in &mut self.chunks {
            let meta = Meta {
                n_points: chunk.n_points,
                n_groups: chunk.n_groups,
                k_stride: k_batch as u32,
                slot_base: chunk.slot_base,
                loss: self.loss,
                space: self.space,
                delta: self.delta,
                first_point: chunk.first_point,
            };
            self.queue
                .write_buffer(&chunk.meta, 0, bytemuck::bytes_of(&meta));
            chunk.bind_group = Some(device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("objective"),
                layout: &self.objective_layout,
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: chunk.points.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 1,
                        resource: self.configs.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 2,
                        resource: params.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 3,
                        resource: partials.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 4,
                        resource: chunk.meta.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 5,
                        resource: problems.as_entire_binding(),
                    },
                ],
            }));
        }
        self.capacity = Some(Capacity {
            k,
            k_batch,
            params,
            problems,
            sums,
            staging,
            batches,
            batch_group,
            reduce_group,
        });
        self.check_error()
    }

    /// Evaluate `params`, weighted by `problems_host` (one per start) when
    /// `weighted`.
    fn run(
        &mut self,
        params: &[[f64; NP]],
        weighted: bool,
        out: &mut [Eval],
    ) -> anyhow::Result<()> {
        anyhow::ensure!(params.len() == out.len(), "params and out differ in length");
        let k = params.len() as u64;
        if k == 0 {
            return Ok(());
        }
        self.ensure_capacity(k)?;
        let cap = self.capacity.as_ref().expect("capacity was just ensured");
        self.params_f32.clear();
        self.params_f32
            .extend(params.iter().flat_map(|p| p.iter().map(|&v| v as f32)));
        self.queue
            .write_buffer(&cap.params, 0, bytemuck::cast_slice(&self.params_f32));
        let objective = if weighted {
            self.queue
                .write_buffer(&cap.problems, 0, bytemuck::cast_slice(&self.problems_host));
            self.objective_weighted
                .as_ref()
                .context("the weighted pipeline was not built")?
        } else {
            &self.objective
        };
        let n_batches = k.div_ceil(cap.k_batch);
        for b in 0..n_batches {
            let first = b * cap.k_batch;
            let meta = BatchMeta {
                k: (k - first).min(cap.k_batch) as u32,
                k_offset: first as u32,
                _pad: [0; 2],
            };
            self.queue
                .write_buffer(&cap.batches, b * UNIFORM_SLOT, bytemuck::bytes_of(&meta));
        }
        let mut enc = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("evaluate"),
            });
        for b in 0..n_batches {
            let kb = (k - b * cap.k_batch).min(cap.k_batch) as u32;
            let offset = [(b * UNIFORM_SLOT) as u32];
            {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("objective"),
                    timestamp_writes: None,
                });
                pass.set_pipeline(objective);
                pass.set_bind_group(1, &cap.batch_group, &offset);
                pass.set_bind_group(2, &self.weightings.group, &[]);
                for chunk in &self.chunks {
                    pass.set_bind_group(0, chunk.bind_group.as_ref(), &[]);
                    pass.dispatch_workgroups(chunk.n_groups, kb.div_ceil(WG_STARTS), 1);
                }
            }
            {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("reduce"),
                    timestamp_writes: None,
                });
                pass.set_pipeline(&self.reduce);
                pass.set_bind_group(0, &cap.reduce_group, &[]);
                pass.set_bind_group(1, &cap.batch_group, &offset);
                pass.dispatch_workgroups((kb * RECORD as u32).div_ceil(64), 1, 1);
            }
        }
        let bytes = k * RECORD * 4;
        enc.copy_buffer_to_buffer(&cap.sums, 0, &cap.staging, 0, bytes);
        let index = self.queue.submit(Some(enc.finish()));

        let mapped: Arc<Mutex<Option<Result<(), wgpu::BufferAsyncError>>>> =
            Arc::new(Mutex::new(None));
        {
            let m = mapped.clone();
            cap.staging
                .map_async(wgpu::MapMode::Read, 0..bytes, move |r| {
                    *m.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
                });
        }
        let waited = self.device.poll(wgpu::PollType::Wait {
            submission_index: Some(index),
            timeout: Some(EVAL_TIMEOUT),
        });
        self.check_error()?;
        waited.with_context(|| {
            format!("GPU {} did not finish an evaluation", self.summary.short())
        })?;
        match mapped.lock().unwrap_or_else(|p| p.into_inner()).take() {
            Some(Ok(())) => {}
            Some(Err(e)) => bail!("reading results from {} failed: {e}", self.summary.short()),
            None => bail!(
                "GPU {} finished without mapping the results",
                self.summary.short()
            ),
        }
        {
            let view = cap
                .staging
                .get_mapped_range(0..bytes)
                .context("mapping GPU results")?;
            let sums: &[f32] = bytemuck::cast_slice(&view);
            for (o, rec) in out.iter_mut().zip(sums.chunks_exact(RECORD as usize)) {
                let undefined = rec[RECORD as usize - 1] > 0.0;
                o.f = if undefined { f64::NAN } else { rec[0] as f64 };
                for i in 0..NP {
                    o.g[i] = rec[1 + i] as f64;
                }
            }
        }
        cap.staging.unmap();
        Ok(())
    }
}

impl Backend for GpuBackend {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            kind: "gpu".into(),
            device: self.summary.short(),
        }
    }

    fn single_precision(&self) -> bool {
        true
    }

    fn evaluate(&mut self, params: &[[f64; NP]], out: &mut [Eval]) -> anyhow::Result<()> {
        self.run(params, false, out)
    }

    fn set_weightings(&mut self, weightings: &[Weighting]) -> anyhow::Result<()> {
        // The shader compares global point indices as u32.
        anyhow::ensure!(
            self.resolve_data.w.len() < u32::MAX as usize,
            "weighted evaluation on the GPU supports fewer than 2^32 points"
        );
        let resolved = weights::resolve_all(weightings, &self.resolve_data)?;
        let entries: Vec<[u32; 2]> = resolved
            .iter()
            .flat_map(|r| {
                r.mult
                    .iter()
                    .zip(&r.first)
                    .map(|(&m, &f)| [(m as f32).to_bits(), f])
            })
            .collect();
        let seeds = resolved.iter().map(|r| r.poisson).collect();
        let bytes = entries.len() as u64 * WEIGHTING_ENTRY_BYTES;
        if bytes > self.weightings.buffer.size() {
            self.weightings =
                Weightings::with_size(&self.device, &self.weighting_layout, bytes, seeds);
        } else {
            self.weightings.seeds = seeds;
        }
        self.queue
            .write_buffer(&self.weightings.buffer, 0, bytemuck::cast_slice(&entries));
        self.check_error()
    }

    fn evaluate_weighted(
        &mut self,
        params: &[[f64; NP]],
        which: &[u32],
        out: &mut [Eval],
    ) -> anyhow::Result<()> {
        anyhow::ensure!(
            which.len() == params.len(),
            "params and which differ in length"
        );
        let n_configs = self.resolve_data.configs.len() as u32;
        let registered = self.weightings.seeds.len();
        self.problems_host.clear();
        for (k, &w) in which.iter().enumerate() {
            let problem = if w == UNWEIGHTED {
                ProblemGpu::default()
            } else {
                let Some(&seed) = self.weightings.seeds.get(w as usize) else {
                    bail!("start {k} names weighting {w}, but {registered} are registered");
                };
                ProblemGpu {
                    // Cannot overflow: the weighting buffer holds this many
                    // 8-byte entries.
                    base: w * n_configs,
                    flags: 1 | if seed.is_some() { 2 } else { 0 },
                    seed: seed.unwrap_or(0),
                    _pad: 0,
                }
            };
            self.problems_host.push(problem);
        }
        if self.objective_weighted.is_none() {
            self.objective_weighted = Some(compute_pipeline(
                &self.device,
                "objective weighted",
                &self.objective_module,
                &self.objective_pipeline_layout,
                true,
            ));
        }
        self.run(params, true, out)
    }
}
