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
//! Memory: 16 bytes per point (d, y, w, configuration as f32), plus per
//! start 40 bytes of parameters, 96 bytes of sums and staging, and
//! 48 bytes per workgroup slot of partial sums.

mod device;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};

pub use device::{all_adapters, instance, select_adapter, AdapterFilter, AdapterSummary};

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
    sums: wgpu::Buffer,
    staging: wgpu::Buffer,
    batches: wgpu::Buffer,
    // Bind groups keep the partial-sum and reduction-metadata buffers alive.
    batch_group: wgpu::BindGroup,
    reduce_group: wgpu::BindGroup,
}

pub struct GpuBackend {
    device: wgpu::Device,
    queue: wgpu::Queue,
    summary: AdapterSummary,
    limits: GpuLimits,
    objective: wgpu::ComputePipeline,
    reduce: wgpu::ComputePipeline,
    objective_layout: wgpu::BindGroupLayout,
    reduce_layout: wgpu::BindGroupLayout,
    batch_layout: wgpu::BindGroupLayout,
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

impl GpuBackend {
    /// Pick an adapter (see [`select_adapter`]) and upload `data`.
    pub fn new(data: &Prepared, filter: AdapterFilter) -> anyhow::Result<GpuBackend> {
        let inst = instance();
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
            ],
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
        let pipeline = |name: &str, src: &str, layout: &wgpu::BindGroupLayout| {
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(name),
                source: wgpu::ShaderSource::Wgsl(src.into()),
            });
            let pl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(name),
                bind_group_layouts: &[Some(layout), Some(&batch_layout)],
                immediate_size: 0,
            });
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(name),
                layout: Some(&pl),
                module: &module,
                entry_point: Some("main"),
                compilation_options: Default::default(),
                cache: None,
            })
        };
        let objective = pipeline("objective", OBJECTIVE_WGSL, &objective_layout);
        let reduce = pipeline("reduce", REDUCE_WGSL, &reduce_layout);

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
        let configs_host: Vec<[f32; 2]> = data
            .configs
            .iter()
            .map(|c| [c.n as f32, c.t as f32])
            .collect();
        let configs = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("configs"),
            size: (configs_host.len().max(1) * 8) as u64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        queue.write_buffer(&configs, 0, bytemuck::cast_slice(&configs_host));
        let mut chunks = Vec::new();
        let mut slot_base = 0u32;
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
                n_groups,
                slot_base,
                bind_group: None,
            });
            slot_base += n_groups;
        }
        let backend = GpuBackend {
            device,
            queue,
            summary,
            limits,
            objective,
            reduce,
            objective_layout,
            reduce_layout,
            batch_layout,
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
                _pad: 0,
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
                ],
            }));
        }
        self.capacity = Some(Capacity {
            k,
            k_batch,
            params,
            sums,
            staging,
            batches,
            batch_group,
            reduce_group,
        });
        self.check_error()
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
                pass.set_pipeline(&self.objective);
                pass.set_bind_group(1, &cap.batch_group, &offset);
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
