//! A compiled law's plan bound to a sweep on the GPU: objective and
//! gradient for many parameter vectors per call, by the kernel generated
//! from the plan (see `codegen`), then the reduction pass.
//!
//! The sweep is uploaded once. Each evaluation writes the K parameter
//! vectors, records one command buffer (objective pass, reduction pass,
//! copy to a staging buffer), submits it once and reads K x (parameters +
//! 2) floats back. Buffers and bind groups are made when the evaluator is
//! built (or, once, when a batch outgrows the capacity sized at the first
//! call), never per evaluation; pipelines are the device's (see
//! `context`).
//!
//! Sweeps larger than one storage binding are split into chunks of points,
//! each with its own buffer; batches of starts larger than one dispatch
//! allows are split into several dispatches in the same submission.
//!
//! Weighted evaluation runs the kernel's WEIGHTED pipeline: each start
//! names a registered weighting, whose per-curve multipliers and point
//! limits live on the device, and Poisson counts are rehashed per point,
//! so no weighting stores anything per point.
//!
//! Memory: 16 bytes per point and point-record vec4 (target, weight, curve,
//! then the law's per-point data), 4 bytes per curve and curve-record
//! float, per start 4 bytes per parameter, 16 bytes naming its weighting
//! and 8 bytes per record float of sums and staging, 4 bytes per record
//! float per workgroup slot of partial sums; per registered weighting 8
//! bytes per curve.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};

use super::codegen::{self, Kernel, Layout};
use super::context::GpuDevice;
use super::steps;
use crate::backend::gauss_newton;
use crate::backend::weights::{Resolved, UNWEIGHTED};
use crate::law::dag::NodeId;
use crate::law::plan::{Class, Plan, Sweep};
use crate::objective::{LossKind, Objective, Space};

/// Starts per workgroup (must match shaders/law_common.wgsl).
const WG_STARTS: u32 = 64;
/// Bytes of one start's weighting record and of one (weighting, curve)
/// entry.
const PROBLEM_BYTES: u64 = 16;
const WEIGHTING_ENTRY_BYTES: u64 = 8;
/// Bytes of one batch uniform slot (dynamic offsets must be aligned to
/// min_uniform_buffer_offset_alignment, at most 256).
const UNIFORM_SLOT: u64 = 256;
/// Workgroups one dispatch aims for along points x starts. Fewer leave a
/// large GPU idle when few starts are asked for (an H200 holds about 4,200
/// workgroups of 64 at once, and runs best with a few waves of them);
/// each extra one costs a record of partial sums per start. Sweeps with
/// fewer tiles get one workgroup per tile.
const TARGET_WORKGROUPS: u64 = 16384;
/// How long one evaluation may take before the device counts as hung.
const EVAL_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a finished evaluation's mapping is awaited between polls.
const MAP_WAKE: Duration = Duration::from_millis(1);

/// Most cells the grid layout may hold per point of the sweep: a sparser
/// grid streams more empty cells than it saves (as on the CPU).
const GRID_FILL: f64 = 1.5;

/// A point of a grid-layout sweep: (block of axis values, curve, point).
type GridEntry = (u32, u32, u32);

/// What a kernel's tiles hold, and how they are split among workgroups.
enum Items {
    /// Points, each curve along its own; as many workgroups per chunk as
    /// fill the device.
    Points,
    /// Points, one tile of one point per workgroup: for drivers that end
    /// an invocation's loops early (see [`GpuDevice::loop_budget`]).
    PointPerGroup,
    /// Grid rows, in this order.
    Grid(Vec<GridEntry>),
}

/// The sweep's points in grid order (block of `block` axis values, then
/// curve), if the grid layout suits `sweep`: an axis variable whose values
/// the curves share (fewer distinct values than points, a grid of rows at
/// most [`GRID_FILL`] times the points), no other variable changing along
/// a curve, and no curve with two points at one value.
fn grid_rows(sweep: &Sweep, block: usize) -> Option<Vec<GridEntry>> {
    let points = sweep.points();
    let axis = sweep.axis? as usize;
    if sweep.axis_values.len() >= points {
        return None;
    }
    // No variable but the axis may change along a curve. (1 << 64 would
    // overflow: a law may have 64 variables.)
    let all_vars = if sweep.n_vars >= 64 {
        u64::MAX
    } else {
        (1u64 << sweep.n_vars) - 1
    };
    if !(sweep.curve_vars | 1 << axis) & all_vars != 0 {
        return None;
    }
    let ta = block as u32;
    let mut entries: Vec<GridEntry> = Vec::with_capacity(points);
    for (c, r) in sweep.curves.iter().enumerate() {
        for i in r.clone() {
            entries.push((sweep.axis_index[i] / ta, c as u32, i as u32));
        }
    }
    entries.sort_unstable_by_key(|&(b, c, i)| (b, c, sweep.axis_index[i as usize], i));
    let mut rows = 0usize;
    for (n, e) in entries.iter().enumerate() {
        match n.checked_sub(1).map(|m| entries[m]) {
            Some(prev) if (prev.0, prev.1) == (e.0, e.1) => {
                if sweep.axis_index[prev.2 as usize] == sweep.axis_index[e.2 as usize] {
                    return None;
                }
            }
            _ => rows += 1,
        }
    }
    ((rows * block) as f64 <= GRID_FILL * points as f64).then_some(entries)
}

/// The grid layout's records (a header of curve and block, then
/// `kernel.block` cells of target, weight, as bits the point's index in the sweep and in
/// its curve, then its data values) and each row's curve.
fn grid_records(
    sweep: &Sweep,
    entries: &[GridEntry],
    kernel: &Kernel,
    value: &dyn Fn(Class, usize, NodeId) -> f32,
) -> (Vec<f32>, Vec<u32>) {
    let stride = 4 * kernel.point_vec4s;
    let cell_floats = 4 * kernel.cell_vec4s;
    let (mut packed, mut row_curve) = (Vec::new(), Vec::new());
    let mut last = None;
    for &(b, c, i) in entries {
        if last != Some((b, c)) {
            last = Some((b, c));
            packed.resize(packed.len() + stride, 0.0);
            let at = packed.len() - stride;
            packed[at] = f32::from_bits(c);
            packed[at + 1] = f32::from_bits(b);
            row_curve.push(c);
        }
        let row = packed.len() - stride;
        let slot = (sweep.axis_index[i as usize] as usize) % kernel.block;
        let cell = &mut packed[row + 4 + slot * cell_floats..][..cell_floats];
        let rank = i as usize - sweep.curves[c as usize].start;
        cell[0] = sweep.y[i as usize] as f32;
        cell[1] = sweep.w[i as usize] as f32;
        cell[2] = f32::from_bits(i);
        cell[3] = f32::from_bits(rank as u32);
        for (j, &id) in kernel.point_data.iter().enumerate() {
            cell[4 + j] = value(Class::Point, i as usize, id);
        }
    }
    (packed, row_curve)
}

/// Size limits of the work split; by default taken from the device.
/// Tests shrink them to exercise chunking on small data.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GpuLimits {
    /// Points per chunk (one storage binding each).
    pub max_points_per_chunk: u64,
    /// Starts per dispatch.
    pub max_starts_per_dispatch: u64,
    /// Workgroups along the point axis per chunk, at most. Within it the
    /// evaluator picks enough of them to fill the device at the number of
    /// starts it is asked for (see [`TARGET_WORKGROUPS`]).
    pub max_groups: u32,
}

impl GpuLimits {
    /// The device's limits for records of `point_bytes` per point.
    pub fn for_device(limits: &wgpu::Limits, point_bytes: u64) -> GpuLimits {
        let binding = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size);
        // The reduction dispatches one workgroup per (value, start): its
        // starts and the record run along the two dispatch dimensions.
        let per_dim = limits.max_compute_workgroups_per_dimension as u64;
        GpuLimits {
            max_points_per_chunk: (binding / point_bytes).max(1),
            max_starts_per_dispatch: (per_dim / WG_STARTS as u64 * WG_STARTS as u64)
                .max(WG_STARTS as u64),
            max_groups: limits.max_compute_workgroups_per_dimension,
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
    first_point: u32,
    index: u32,
    n_chunks: u32,
    axis_base: u32,
    n_axis: u32,
    _pad: [u32; 3],
}

/// A start's weighting as law_common.wgsl reads it (`Problem`).
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
    /// Per tile, the first and last curve it holds points of.
    tiles: Vec<(u32, u32)>,
    points: wgpu::Buffer,
    meta: wgpu::Buffer,
    n_points: u32,
    first_point: u32,
    n_groups: u32,
    slot_base: u32,
    bind_group: Option<wgpu::BindGroup>,
}

fn entry(binding: u32, buffer: &wgpu::Buffer) -> wgpu::BindGroupEntry<'_> {
    wgpu::BindGroupEntry {
        binding,
        resource: buffer.as_entire_binding(),
    }
}

/// Buffers whose size depends on the number of starts.
struct Capacity {
    /// Starts the buffers hold.
    k: u64,
    /// Rows of starts the points were split for.
    rows: u64,
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
    /// (multiplier as f32 bits, points kept) per (weighting, curve); a
    /// placeholder entry while none are registered.
    buffer: wgpu::Buffer,
    /// The live tile lists of the current evaluation (see law_common.wgsl).
    live: wgpu::Buffer,
    group: wgpu::BindGroup,
    /// Mixed Poisson seed of each registered weighting, if it resamples.
    seeds: Vec<Option<u32>>,
    /// Per weighting, per curve: whether it keeps any of the curve.
    keeps: Vec<Vec<bool>>,
}

/// A storage buffer of `size` bytes, at least 8: a binding cannot be empty.
fn storage_buffer(dev: &GpuDevice, label: &str, size: u64) -> wgpu::Buffer {
    dev.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: size.max(WEIGHTING_ENTRY_BYTES),
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

/// A storage buffer holding `values`.
fn upload(dev: &GpuDevice, label: &str, values: &[f32]) -> wgpu::Buffer {
    let buffer = storage_buffer(dev, label, (values.len() * 4) as u64);
    dev.queue
        .write_buffer(&buffer, 0, bytemuck::cast_slice(values));
    buffer
}

impl Weightings {
    fn new(dev: &GpuDevice) -> Weightings {
        let (buffer, live) = (
            storage_buffer(dev, "weightings", 0),
            storage_buffer(dev, "live tiles", 0),
        );
        Weightings {
            group: Weightings::bind(dev, &buffer, &live),
            buffer,
            live,
            seeds: Vec::new(),
            keeps: Vec::new(),
        }
    }

    fn bind(dev: &GpuDevice, buffer: &wgpu::Buffer, live: &wgpu::Buffer) -> wgpu::BindGroup {
        dev.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("weightings"),
            layout: &dev.layouts.weighting,
            entries: &[entry(0, buffer), entry(1, live)],
        })
    }

    /// Grow the entry buffer (`live` false) or the tile lists' (`live`
    /// true) to hold `bytes`; the other keeps its contents.
    fn reserve(&mut self, dev: &GpuDevice, bytes: u64, live: bool) {
        let target = if live {
            &mut self.live
        } else {
            &mut self.buffer
        };
        if bytes <= target.size() {
            return;
        }
        *target = storage_buffer(dev, if live { "live tiles" } else { "weightings" }, bytes);
        self.group = Weightings::bind(dev, &self.buffer, &self.live);
    }
}

pub struct GpuLaw {
    dev: Arc<GpuDevice>,
    kernel: Kernel,
    limits: GpuLimits,
    /// The kernel's pipeline constants (loss, space, delta).
    constants: Vec<(&'static str, f64)>,
    objective: wgpu::ComputePipeline,
    /// The kernel with WEIGHTED set, built at the first weighted use.
    objective_weighted: Option<wgpu::ComputePipeline>,
    reduce: wgpu::ComputePipeline,
    weightings: Weightings,
    curves: wgpu::Buffer,
    n_curves: usize,
    n_points: usize,
    /// Grid: where the axis records start in `curves`, and how many.
    axis_base: u32,
    n_axis: u32,
    chunks: Vec<Chunk>,
    /// One workgroup per tile, whatever the starts (see
    /// [`Items::PointPerGroup`]).
    group_per_tile: bool,
    n_slots: u32,
    capacity: Option<Capacity>,
    params_f32: Vec<f32>,
    problems_host: Vec<ProblemGpu>,
    /// A Gauss-Newton twin's plan, which takes its moments to the
    /// parameters on the host.
    plan: Option<Plan>,
}

impl GpuLaw {
    /// `plan` (of a law, for `sweep`) on `dev`, with `objective`, in the
    /// layout that suits the sweep (see [`GpuLaw::layout_for`]); the work
    /// split from the device's limits unless `limits` is given. Errors
    /// when the law cannot run in single precision (a constant beyond its
    /// range).
    pub fn new(
        dev: &Arc<GpuDevice>,
        plan: &Plan,
        sweep: &Sweep,
        objective: Objective,
        limits: Option<GpuLimits>,
    ) -> anyhow::Result<GpuLaw> {
        GpuLaw::build(dev, plan, sweep, objective, limits, None)
    }

    /// As [`GpuLaw::new`], in `layout`, or why the sweep cannot take it.
    pub fn with_layout(
        dev: &Arc<GpuDevice>,
        plan: &Plan,
        sweep: &Sweep,
        objective: Objective,
        limits: Option<GpuLimits>,
        layout: Layout,
    ) -> anyhow::Result<GpuLaw> {
        GpuLaw::build(dev, plan, sweep, objective, limits, Some(layout))
    }

    /// The layout [`GpuLaw::new`] picks for `plan` on `sweep`: the grid
    /// when the curves share the axis variable's values densely (a grid at
    /// most [`GRID_FILL`] times the points) and no other variable changes
    /// along a curve; else each curve along its own points.
    pub fn layout_for(plan: &Plan, sweep: &Sweep) -> anyhow::Result<Layout> {
        let block = codegen::generate(plan, Layout::Grid)?.block;
        Ok(if grid_rows(sweep, block).is_some() {
            Layout::Grid
        } else {
            Layout::Points
        })
    }

    /// The layout this evaluator runs.
    pub fn layout(&self) -> Layout {
        self.kernel.layout
    }

    /// How reports name the layout, with the grid's block size (it
    /// depends on the law: see [`codegen::MAX_BLOCK`]).
    pub fn describe_layout(&self) -> String {
        match self.kernel.layout {
            Layout::Points => Layout::Points.describe().to_string(),
            Layout::Grid => format!(
                "{}, blocks of {} values",
                Layout::Grid.describe(),
                self.kernel.block
            ),
        }
    }

    /// Whether [`GpuLaw::gauss_newton`] takes `plan` on `sweep` (for mean
    /// squares), without building it.
    pub fn gauss_newton_on(plan: &Plan, sweep: &Sweep) -> bool {
        matches!(codegen::gauss_newton_kernel(plan), Ok(Some(k)) if grid_rows(sweep, k.block).is_some())
    }

    /// The Gauss-Newton twin of `plan` on `sweep` (see
    /// [`GpuLaw::evaluate_gn`]): `None` unless the law is separable along
    /// its axis, the sweep suits the grid layout and the loss is mean
    /// squares, as for [`CpuLaw::has_gauss_newton`](crate::backend::CpuLaw).
    pub fn gauss_newton(
        dev: &Arc<GpuDevice>,
        plan: &Plan,
        sweep: &Sweep,
        objective: Objective,
        limits: Option<GpuLimits>,
    ) -> anyhow::Result<Option<GpuLaw>> {
        if objective.loss != LossKind::Mse {
            return Ok(None);
        }
        let Some(kernel) = codegen::gauss_newton_kernel(plan)? else {
            return Ok(None);
        };
        let Some(rows) = grid_rows(sweep, kernel.block) else {
            return Ok(None);
        };
        let mut law = GpuLaw::build_with(
            dev,
            plan,
            sweep,
            objective,
            limits,
            kernel,
            Items::Grid(rows),
        )?;
        law.plan = Some(plan.clone());
        Ok(Some(law))
    }

    fn build(
        dev: &Arc<GpuDevice>,
        plan: &Plan,
        sweep: &Sweep,
        objective: Objective,
        limits: Option<GpuLimits>,
        layout: Option<Layout>,
    ) -> anyhow::Result<GpuLaw> {
        // The grid kernel and its rows, when the grid is asked for or
        // suits the sweep (its block size decides the rows).
        let grid = match layout {
            Some(Layout::Points) => None,
            _ => {
                let k = codegen::generate(plan, Layout::Grid)?;
                grid_rows(sweep, k.block).map(|rows| (k, rows))
            }
        };
        if layout == Some(Layout::Grid) && grid.is_none() {
            bail!("the sweep does not suit the grid layout (no shared axis, or a sparse one)");
        }
        let (kernel, items) = match grid {
            Some((k, rows)) => (codegen::checked(k)?, Items::Grid(rows)),
            None => (codegen::kernel(plan, Layout::Points)?, Items::Points),
        };
        let law = GpuLaw::build_with(dev, plan, sweep, objective, limits, kernel, items)?;
        if layout.is_some_and(|l| l != law.layout()) {
            bail!(
                "{} runs this sweep's sums along the steps one point per workgroup, in the \
                 points layout, not the {}",
                dev.summary.short(),
                layout.map_or("", |l| l.describe())
            );
        }
        Ok(law)
    }

    fn build_with(
        dev: &Arc<GpuDevice>,
        plan: &Plan,
        sweep: &Sweep,
        objective: Objective,
        limits: Option<GpuLimits>,
        kernel: Kernel,
        items: Items,
    ) -> anyhow::Result<GpuLaw> {
        let (rows, group_per_tile) = match items {
            Items::Points => (None, false),
            Items::PointPerGroup => (None, true),
            Items::Grid(rows) => (Some(rows), false),
        };
        anyhow::ensure!(
            sweep.points() < u32::MAX as usize && sweep.curves.len() < u32::MAX as usize,
            "the GPU evaluator supports fewer than 2^32 points and curves"
        );
        let point_bytes = 16 * kernel.point_vec4s as u64;
        let given = limits;
        let limits = given.unwrap_or_else(|| GpuLimits::for_device(&dev.limits, point_bytes));
        let constants = vec![
            (
                "LOSS",
                match objective.loss {
                    LossKind::Mse => 0.0,
                    LossKind::Huber => 1.0,
                },
            ),
            (
                "LOG_SPACE",
                if objective.space == Space::Log {
                    1.0
                } else {
                    0.0
                },
            ),
            ("DELTA", objective.delta),
        ];

        // Records: per curve its first point's place in the upload and in
        // the sweep, then its data (grid: then per axis value its data);
        // per point target, weight, curve, then its data, curve by curve
        // (grid: rows of cells). Data nodes in f64 on the host, once.
        let data = plan.data(sweep, None);
        // A law that sums along the steps reads its runs' schedules from
        // tables after the curve and axis records; its records carry each
        // run's tables' offset in place of the schedule's handle.
        // Each point's curve, where the sums need the schedules' values.
        let mut curve_of = Vec::new();
        if !kernel.sums.is_empty() {
            curve_of.resize(sweep.points(), 0);
            for (c, r) in sweep.curves.iter().enumerate() {
                curve_of[r.clone()].fill(c);
            }
        }
        // Data node `id` at point `i`, whatever its level.
        let at = |id: NodeId, i: usize| match plan.level[id as usize] {
            Class::Curve => data.get(Class::Curve, curve_of[i], id),
            Class::Axis => data.get(Class::Axis, sweep.axis_index[i] as usize, id),
            _ => data.get(Class::Point, i, id),
        };
        let tables = if kernel.sums.is_empty() {
            None
        } else {
            let records = sweep.curves.len().max(1) * kernel.curve_floats
                + rows
                    .as_ref()
                    .map_or(0, |_| sweep.axis_values.len() * kernel.axis_floats);
            let handles = kernel
                .calls
                .iter()
                .flat_map(|&(_, h, _)| (0..sweep.points()).map(move |i| at(h, i)));
            Some(steps::Tables::new(&kernel.sums, handles, records)?)
        };
        if let (Some(t), Some(budget)) = (&tables, dev.loop_budget()) {
            // Each point's loops: its visited steps and binary searches.
            let loops = |i: usize| -> u64 {
                kernel
                    .calls
                    .iter()
                    .map(|&(fi, h, s)| 32 + t.visited(fi, at(h, i), at(s, i)) as u64)
                    .sum::<u64>()
                    + 1
            };
            let per_point: Vec<u64> = (0..sweep.points()).map(loops).collect();
            // What an invocation runs besides its points' sums.
            let overhead = 64 + 2 * kernel.record() as u64;
            let (heaviest, worst) = per_point
                .iter()
                .enumerate()
                .map(|(i, &l)| (l, i))
                .max()
                .unwrap_or((0, 0));
            if heaviest + overhead > budget {
                let step = kernel.calls.first().map_or(0.0, |&(_, _, s)| at(s, worst));
                bail!(
                    "{} ends a shader's loops after {budget} iterations, and the sums along \
                     the steps of the row at step {step} run {heaviest}: fit it with \
                     --backend cpu or on a hardware GPU",
                    dev.summary.short()
                );
            }
            // Counted as if one invocation ran every point (a bound: the
            // work is split among workgroups). Past the budget, each
            // workgroup takes one tile of one point, so that an
            // invocation runs one point's sums for its start.
            let whole: u64 = per_point.iter().sum::<u64>() + overhead;
            if whole > budget && !group_per_tile {
                if kernel.gauss_newton.is_some() {
                    bail!(
                        "{} ends a shader's loops after {budget} iterations, and the \
                         Gauss-Newton kernel's rows sum {whole} steps",
                        dev.summary.short()
                    );
                }
                let one = codegen::checked(codegen::generate_tiled(plan, Layout::Points, 1)?)?;
                return GpuLaw::build_with(
                    dev,
                    plan,
                    sweep,
                    objective,
                    given,
                    one,
                    Items::PointPerGroup,
                );
            }
        }
        // Built once the kernel is settled (the budget may replace it).
        let objective_pipeline = dev.objective_pipeline(&kernel.source, &constants);
        let reduce = dev.reduce_pipeline(kernel.record());
        let value = |level: Class, i: usize, id: NodeId| -> f32 {
            let v = data.get(level, i, id);
            match &tables {
                Some(t) if kernel.is_schedule(id) => t.record(v),
                _ => v as f32,
            }
        };
        let stride = 4 * kernel.point_vec4s;
        let n_points: usize = sweep.curves.iter().map(|r| r.len()).sum();
        let mut curve_rec = vec![0f32; sweep.curves.len().max(1) * kernel.curve_floats];
        let mut at = 0;
        for (c, r) in sweep.curves.iter().enumerate() {
            let rec = &mut curve_rec[c * kernel.curve_floats..][..kernel.curve_floats];
            rec[0] = f32::from_bits(at as u32);
            rec[1] = f32::from_bits(r.start as u32);
            if !r.is_empty() {
                for (j, &id) in kernel.curve_data.iter().enumerate() {
                    rec[2 + j] = value(Class::Curve, c, id);
                }
            }
            at += r.len();
        }
        let axis_base = u32::try_from(curve_rec.len()).context("too many curves for the GPU")?;
        let n_axis = sweep.axis_values.len().max(1) as u32;
        // Each packed item's (point's, or grid row's) curve, for the
        // chunks' tile ranges.
        let (packed, item_curve) = match &rows {
            None => {
                let mut packed = vec![0f32; n_points * stride];
                let mut at = 0;
                for (c, r) in sweep.curves.iter().enumerate() {
                    for i in r.clone() {
                        let p = &mut packed[at * stride..][..stride];
                        at += 1;
                        p[0] = sweep.y[i] as f32;
                        p[1] = sweep.w[i] as f32;
                        p[2] = f32::from_bits(c as u32);
                        for (j, &id) in kernel.point_data.iter().enumerate() {
                            p[3 + j] = match plan.level[id as usize] {
                                Class::Axis => value(Class::Axis, sweep.axis_index[i] as usize, id),
                                _ => value(Class::Point, i, id),
                            };
                        }
                    }
                }
                let item_curve = sweep
                    .curves
                    .iter()
                    .enumerate()
                    .flat_map(|(c, r)| std::iter::repeat_n(c as u32, r.len()))
                    .collect::<Vec<u32>>();
                (packed, item_curve)
            }
            Some(rows) => {
                for a in 0..sweep.axis_values.len() {
                    for &id in &kernel.axis_data {
                        curve_rec.push(value(Class::Axis, a, id));
                    }
                }
                grid_records(sweep, rows, &kernel, &value)
            }
        };
        if let Some(t) = tables {
            curve_rec.extend(t.block);
        }
        let device = &dev.device;
        let curves = upload(dev, "curves", &curve_rec);
        let mut chunks = Vec::new();
        let mut first_point = 0u32;
        let tile = kernel.tile as u64;
        let mut per_chunk = (limits.max_points_per_chunk / tile * tile).max(tile);
        if group_per_tile {
            per_chunk = per_chunk.min(limits.max_groups as u64 * tile);
        }
        let per_chunk = per_chunk as usize;
        for part in packed.chunks(per_chunk * stride) {
            let n_points = part.len() / stride;
            let points = upload(dev, "points", part);
            let meta = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("meta"),
                size: std::mem::size_of::<Meta>() as u64,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let first = first_point as usize;
            let tiles = item_curve[first..first + n_points]
                .chunks(kernel.tile)
                .map(|cs| {
                    let (lo, hi) = cs
                        .iter()
                        .fold((u32::MAX, 0), |(lo, hi), &c| (lo.min(c), hi.max(c)));
                    (lo, hi)
                })
                .collect();
            chunks.push(Chunk {
                tiles,
                points,
                meta,
                n_points: n_points as u32,
                first_point,
                n_groups: 1,
                slot_base: 0,
                bind_group: None,
            });
            first_point += n_points as u32;
        }
        let weightings = Weightings::new(dev);
        let law = GpuLaw {
            dev: dev.clone(),
            kernel,
            limits,
            constants,
            objective: objective_pipeline,
            objective_weighted: None,
            reduce,
            weightings,
            curves,
            n_curves: sweep.curves.len(),
            n_points,
            axis_base,
            n_axis,
            chunks,
            group_per_tile,
            n_slots: 0,
            capacity: None,
            params_f32: Vec::new(),
            problems_host: Vec::new(),
            plan: None,
        };
        law.dev.check_error()?;
        Ok(law)
    }

    /// Parameters per vector.
    pub fn n_params(&self) -> usize {
        self.kernel.n_params
    }

    pub fn device(&self) -> &Arc<GpuDevice> {
        &self.dev
    }

    /// Objective and gradient for every parameter vector of `params`
    /// (`params.len() / n_params` of them, the law's order), into `f` and
    /// `g` (row-major). f is NaN where the law is undefined at a point that
    /// counts.
    pub fn evaluate(&mut self, params: &[f64], f: &mut [f64], g: &mut [f64]) -> anyhow::Result<()> {
        self.gradient_kernel()?;
        self.run(params, false, f, g)
    }

    /// Errors on a Gauss-Newton twin, whose records hold moments, not
    /// gradients.
    fn gradient_kernel(&self) -> anyhow::Result<()> {
        match self.kernel.gauss_newton {
            Some(_) => bail!("a Gauss-Newton evaluator forms moments (evaluate_gn), not gradients"),
            None => Ok(()),
        }
    }

    /// Register the weightings that [`GpuLaw::evaluate_weighted`] refers
    /// to by index (resolved against this sweep's curves), replacing any
    /// earlier ones.
    pub fn set_weightings(&mut self, weightings: &[Resolved]) -> anyhow::Result<()> {
        crate::backend::weights::check_curves(weightings, self.n_curves)?;
        let entries: Vec<[u32; 2]> = weightings
            .iter()
            .flat_map(|r| {
                r.mult
                    .iter()
                    .zip(&r.first)
                    .map(|(&m, &f)| [(m as f32).to_bits(), f])
            })
            .collect();
        let bytes = entries.len() as u64 * WEIGHTING_ENTRY_BYTES;
        self.weightings.reserve(&self.dev, bytes, false);
        self.weightings.seeds = weightings.iter().map(|r| r.poisson).collect();
        self.weightings.keeps = weightings
            .iter()
            .map(|r| {
                r.mult
                    .iter()
                    .zip(&r.first)
                    .map(|(&m, &f)| m > 0.0 && f > 0)
                    .collect()
            })
            .collect();
        self.dev
            .queue
            .write_buffer(&self.weightings.buffer, 0, bytemuck::cast_slice(&entries));
        self.dev.check_error()
    }

    /// [`GpuLaw::evaluate`] with parameter vector k weighed by registered
    /// weighting `which[k]`, or by the sweep's own weights where it is
    /// [`UNWEIGHTED`].
    pub fn evaluate_weighted(
        &mut self,
        params: &[f64],
        which: &[u32],
        f: &mut [f64],
        g: &mut [f64],
    ) -> anyhow::Result<()> {
        self.gradient_kernel()?;
        self.run_weighted(params, which, f, g)
    }

    fn run_weighted(
        &mut self,
        params: &[f64],
        which: &[u32],
        f: &mut [f64],
        g: &mut [f64],
    ) -> anyhow::Result<()> {
        anyhow::ensure!(which.len() == f.len(), "which and f differ in length");
        let n_curves = self.n_curves as u32;
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
                    base: w * n_curves,
                    flags: 1 | if seed.is_some() { 2 } else { 0 },
                    seed: seed.unwrap_or(0),
                    _pad: 0,
                }
            };
            self.problems_host.push(problem);
        }
        self.write_live_tiles(which)?;
        if self.objective_weighted.is_none() {
            let mut constants = self.constants.clone();
            constants.push(("WEIGHTED", 1.0));
            self.objective_weighted =
                Some(self.dev.objective_pipeline(&self.kernel.source, &constants));
        }
        self.run(params, true, f, g)
    }

    /// A Gauss-Newton twin's (see [`GpuLaw::gauss_newton`]) f (1/2 sum w
    /// r^2), gradient J^T W r into `g` and Gauss-Newton matrix J^T W J
    /// (row-major, n_params^2 per vector) into `h`, for every parameter
    /// vector of `params`, as [`CpuLaw::evaluate_gn`](crate::backend::CpuLaw)
    /// gives them: summed on the GPU in f32 in the start nodes of the
    /// law's two terms, taken to the parameters on the host in f64.
    pub fn evaluate_gn(
        &mut self,
        params: &[f64],
        f: &mut [f64],
        g: &mut [f64],
        h: &mut [f64],
    ) -> anyhow::Result<()> {
        let mut raw = vec![0.0; f.len() * self.kernel.payload()];
        self.run(params, false, f, &mut raw)?;
        self.moments_to_params(params, &raw, g, h)
    }

    /// [`GpuLaw::evaluate_gn`] with vector k weighed by registered
    /// weighting `which[k]` (see [`GpuLaw::evaluate_weighted`]).
    pub fn evaluate_gn_weighted(
        &mut self,
        params: &[f64],
        which: &[u32],
        f: &mut [f64],
        g: &mut [f64],
        h: &mut [f64],
    ) -> anyhow::Result<()> {
        let mut raw = vec![0.0; f.len() * self.kernel.payload()];
        self.run_weighted(params, which, f, &mut raw)?;
        self.moments_to_params(params, &raw, g, h)
    }

    fn moments_to_params(
        &self,
        params: &[f64],
        raw: &[f64],
        g: &mut [f64],
        h: &mut [f64],
    ) -> anyhow::Result<()> {
        let (Some(plan), Some((coords, _))) = (&self.plan, &self.kernel.gauss_newton) else {
            bail!("Gauss-Newton moments need the evaluator of GpuLaw::gauss_newton");
        };
        let (np, s, payload) = (self.kernel.n_params, coords.len(), self.kernel.payload());
        let k = raw.len() / payload.max(1);
        anyhow::ensure!(
            params.len() == k * np && g.len() == k * np && h.len() == k * np * np,
            "params, f, g and h differ in length"
        );
        let mut a = vec![0.0; s * s];
        let mut start = vec![0.0; plan.graph().len()];
        for j in 0..k {
            let r = &raw[j * payload..(j + 1) * payload];
            let mut t = s;
            for u in 0..s {
                for v in u..s {
                    a[u * s + v] = r[t];
                    t += 1;
                }
            }
            gauss_newton::start_values(plan, &params[j * np..(j + 1) * np], &mut start);
            let m = gauss_newton::start_jacobian(plan, &start, coords);
            gauss_newton::to_params(
                &m,
                &r[..s],
                &a,
                &mut g[j * np..(j + 1) * np],
                &mut h[j * np * np..(j + 1) * np * np],
            );
        }
        Ok(())
    }

    /// For each workgroup row of 64 starts, the tiles of each chunk that
    /// hold a point of a curve some start of the row keeps: the kernel
    /// reads only those (a size fold's held-out curves are not streamed).
    fn write_live_tiles(&mut self, which: &[u32]) -> anyhow::Result<()> {
        let n_chunks = self.chunks.len();
        let rows = which.len().div_ceil(WG_STARTS as usize);
        let mut out = vec![0u32; rows * n_chunks * 2];
        // Per curve, how many curves before it are kept (a prefix count).
        let mut before = vec![0u32; self.n_curves + 1];
        for (row, starts) in which.chunks(WG_STARTS as usize).enumerate() {
            let keeps: Vec<&[bool]> = starts
                .iter()
                .filter_map(|&w| self.weightings.keeps.get(w as usize))
                .map(|k| k.as_slice())
                .collect();
            let all = starts.contains(&UNWEIGHTED);
            for c in 0..self.n_curves {
                let kept = all || keeps.iter().any(|k| k[c]);
                before[c + 1] = before[c] + kept as u32;
            }
            for (ci, chunk) in self.chunks.iter().enumerate() {
                let h = (row * n_chunks + ci) * 2;
                out[h] = u32::try_from(out.len()).context("too many tiles for the GPU")?;
                let mut n = 0;
                for (t, &(first, last)) in chunk.tiles.iter().enumerate() {
                    if before[last as usize + 1] > before[first as usize] {
                        out.push(t as u32);
                        n += 1;
                    }
                }
                out[h + 1] = n;
            }
        }
        if out.is_empty() {
            return Ok(());
        }
        let bytes = (out.len() * 4) as u64;
        self.weightings.reserve(&self.dev, bytes, true);
        self.dev
            .queue
            .write_buffer(&self.weightings.live, 0, bytemuck::cast_slice(&out));
        Ok(())
    }

    /// Size the per-start buffers for `k` starts and split the points among
    /// workgroups for as many rows of starts, and write the metadata that
    /// depends on it: once, and again when a batch outgrows the buffers or
    /// needs another split.
    fn ensure_capacity(&mut self, k: u64) -> anyhow::Result<()> {
        let rows = k
            .min(self.limits.max_starts_per_dispatch)
            .max(1)
            .div_ceil(WG_STARTS as u64);
        if self
            .capacity
            .as_ref()
            .is_some_and(|c| c.k >= k && c.rows == rows)
        {
            return Ok(());
        }
        // Enough workgroups along points that rows x groups fills the
        // device, never more than a chunk has tiles.
        let want = if self.group_per_tile {
            u64::MAX
        } else {
            TARGET_WORKGROUPS.div_ceil(rows)
        };
        let mut slot_base = 0u32;
        for chunk in &mut self.chunks {
            chunk.n_groups = (chunk.tiles.len() as u64)
                .min(want)
                .min(self.limits.max_groups as u64)
                .max(1) as u32;
            chunk.slot_base = slot_base;
            slot_base = slot_base
                .checked_add(chunk.n_groups)
                .context("too many GPU workgroups")?;
        }
        self.n_slots = slot_base;
        let dev = &self.dev;
        let device = &dev.device;
        let record = self.kernel.record() as u64;
        let np = self.kernel.n_params as u64;
        // Starts per dispatch: bounded by the dispatch limit and by the
        // partial-sum buffer fitting in one storage binding.
        let binding = dev
            .limits
            .max_storage_buffer_binding_size
            .min(dev.limits.max_buffer_size);
        let per_start_partials = self.n_slots as u64 * record * 4;
        let by_memory = (binding / per_start_partials).max(1);
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
        let params = buf("params", k * np * 4, U::STORAGE | U::COPY_DST);
        let problems = buf("problems", k * PROBLEM_BYTES, U::STORAGE | U::COPY_DST);
        let partials = buf(
            "partials",
            self.n_slots as u64 * k_batch * record * 4,
            U::STORAGE,
        );
        let sums = buf("sums", k * record * 4, U::STORAGE | U::COPY_SRC);
        let staging = buf("staging", k * record * 4, U::MAP_READ | U::COPY_DST);
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
        dev.queue.write_buffer(
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
            layout: &dev.layouts.batch,
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
            layout: &dev.layouts.reduce,
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
        let n_chunks = self.chunks.len() as u32;
        for (index, chunk) in self.chunks.iter_mut().enumerate() {
            let meta = Meta {
                n_points: chunk.n_points,
                n_groups: chunk.n_groups,
                k_stride: k_batch as u32,
                slot_base: chunk.slot_base,
                first_point: chunk.first_point,
                index: index as u32,
                n_chunks,
                axis_base: self.axis_base,
                n_axis: self.n_axis,
                _pad: [0; 3],
            };
            dev.queue
                .write_buffer(&chunk.meta, 0, bytemuck::bytes_of(&meta));
            chunk.bind_group = Some(device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("objective"),
                layout: &dev.layouts.objective,
                entries: &[
                    entry(0, &chunk.points),
                    entry(1, &self.curves),
                    entry(2, &params),
                    entry(3, &partials),
                    entry(4, &chunk.meta),
                    entry(5, &problems),
                ],
            }));
        }
        self.capacity = Some(Capacity {
            k,
            rows,
            k_batch,
            params,
            problems,
            sums,
            staging,
            batches,
            batch_group,
            reduce_group,
        });
        dev.check_error()
    }

    /// Record the evaluation of `params` (weighted by `problems_host`, one
    /// per start, when `weighted`) into `enc`: objective and reduction
    /// passes, then the copy of the sums to the staging buffer. Returns the
    /// bytes to read back, 0 when there is nothing to run.
    fn encode(
        &mut self,
        enc: &mut wgpu::CommandEncoder,
        params: &[f64],
        k: usize,
        weighted: bool,
    ) -> anyhow::Result<u64> {
        let np = self.kernel.n_params;
        anyhow::ensure!(params.len() == k * np, "params and f differ in length");
        if k == 0 || self.n_points == 0 {
            return Ok(0);
        }
        let k = k as u64;
        self.ensure_capacity(k)?;
        let dev = self.dev.clone();
        let cap = self.capacity.as_ref().expect("capacity was just ensured");
        self.params_f32.clear();
        self.params_f32.extend(params.iter().map(|&v| v as f32));
        dev.queue
            .write_buffer(&cap.params, 0, bytemuck::cast_slice(&self.params_f32));
        let objective = if weighted {
            dev.queue
                .write_buffer(&cap.problems, 0, bytemuck::cast_slice(&self.problems_host));
            self.objective_weighted
                .as_ref()
                .context("the weighted pipeline was not built")?
        } else {
            &self.objective
        };
        let record = self.kernel.record() as u64;
        let n_batches = k.div_ceil(cap.k_batch);
        for b in 0..n_batches {
            let first = b * cap.k_batch;
            let meta = BatchMeta {
                k: (k - first).min(cap.k_batch) as u32,
                k_offset: first as u32,
                _pad: [0; 2],
            };
            dev.queue
                .write_buffer(&cap.batches, b * UNIFORM_SLOT, bytemuck::bytes_of(&meta));
        }
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
                pass.dispatch_workgroups(record as u32, kb, 1);
            }
        }
        let bytes = k * record * 4;
        enc.copy_buffer_to_buffer(&cap.sums, 0, &cap.staging, 0, bytes);
        Ok(bytes)
    }

    /// Read `bytes` of mapped sums into `f` and `g`, and unmap.
    fn read(&self, bytes: u64, f: &mut [f64], g: &mut [f64]) -> anyhow::Result<()> {
        let np = self.kernel.payload();
        if bytes == 0 {
            f.fill(0.0);
            g.fill(0.0);
            return Ok(());
        }
        let cap = self
            .capacity
            .as_ref()
            .expect("encoded evaluations have capacity");
        {
            let view = cap
                .staging
                .get_mapped_range(0..bytes)
                .context("mapping GPU results")?;
            let sums: &[f32] = bytemuck::cast_slice(&view);
            let rec = self.kernel.record();
            for (kk, r) in sums.chunks_exact(rec).enumerate() {
                let undefined = r[rec - 1] > 0.0;
                f[kk] = if undefined { f64::NAN } else { r[0] as f64 };
                for i in 0..np {
                    g[kk * np + i] = r[1 + i] as f64;
                }
            }
        }
        cap.staging.unmap();
        Ok(())
    }

    /// Evaluate `params`, weighted by `problems_host` when `weighted`.
    fn run(
        &mut self,
        params: &[f64],
        weighted: bool,
        f: &mut [f64],
        g: &mut [f64],
    ) -> anyhow::Result<()> {
        submit(
            &mut [Job {
                law: self,
                params,
                f,
                g,
            }],
            weighted,
        )
    }
}

/// One law's share of a submission: its parameter vectors (the law's
/// order, flat) and where their objectives and gradients go.
pub struct Job<'a> {
    pub law: &'a mut GpuLaw,
    pub params: &'a [f64],
    pub f: &'a mut [f64],
    pub g: &'a mut [f64],
}

/// Evaluate every job in one submission and one wait: fits of one law to
/// many groups (each its own [`GpuLaw`] on one device) pay the round trip
/// to the device once per step, not once per group.
pub fn evaluate_all(jobs: &mut [Job<'_>]) -> anyhow::Result<()> {
    submit(jobs, false)
}

fn submit(jobs: &mut [Job<'_>], weighted: bool) -> anyhow::Result<()> {
    let Some(first) = jobs.first() else {
        return Ok(());
    };
    let dev = first.law.dev.clone();
    for j in jobs.iter() {
        anyhow::ensure!(
            Arc::ptr_eq(&j.law.dev, &dev),
            "evaluations submitted together must share a device"
        );
        anyhow::ensure!(
            j.g.len() == j.f.len() * j.law.kernel.payload(),
            "f and g differ in length"
        );
    }
    let mut enc = dev
        .device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("evaluate"),
        });
    let mut bytes = Vec::with_capacity(jobs.len());
    for j in jobs.iter_mut() {
        let k = j.f.len();
        bytes.push(j.law.encode(&mut enc, j.params, k, weighted)?);
    }
    let index = dev.queue.submit(Some(enc.finish()));
    // The callbacks come through channels: when several threads share the
    // device (the laws of a comparison), the wait of one may fire the
    // callbacks of another's mapping, which then arrive just after its own
    // wait returns.
    type Mapped = std::sync::mpsc::Receiver<Result<(), wgpu::BufferAsyncError>>;
    let mut mapped: Vec<Option<Mapped>> = Vec::with_capacity(jobs.len());
    for (j, &b) in jobs.iter().zip(&bytes) {
        if b == 0 {
            mapped.push(None);
            continue;
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let cap = j
            .law
            .capacity
            .as_ref()
            .expect("encoded evaluations have capacity");
        cap.staging.map_async(wgpu::MapMode::Read, 0..b, move |r| {
            let _ = tx.send(r);
        });
        mapped.push(Some(rx));
    }
    let started = std::time::Instant::now();
    let waited = dev.device.poll(wgpu::PollType::Wait {
        submission_index: Some(index),
        timeout: Some(EVAL_TIMEOUT),
    });
    dev.check_error()?;
    let name = dev.summary.short();
    waited.with_context(|| format!("GPU {name} did not finish an evaluation"))?;
    for (j, (rx, &b)) in jobs.iter_mut().zip(mapped.iter().zip(&bytes)) {
        if let Some(rx) = rx {
            let got = loop {
                match rx.recv_timeout(MAP_WAKE) {
                    Ok(r) => break Some(r),
                    Err(_) if started.elapsed() > EVAL_TIMEOUT => break None,
                    Err(_) => {
                        // Fire any callbacks no other thread is firing.
                        let _ = dev.device.poll(wgpu::PollType::Poll);
                    }
                }
            };
            match got {
                Some(Ok(())) => {}
                Some(Err(e)) => bail!("reading results from {name} failed: {e}"),
                None => bail!("GPU {name} finished without mapping the results"),
            }
        }
        j.law.read(b, j.f, j.g)?;
    }
    Ok(())
}

impl crate::backend::Evaluator for GpuLaw {
    fn n_params(&self) -> usize {
        GpuLaw::n_params(self)
    }

    fn describe(&self) -> String {
        format!("{}, {}", self.dev.summary().short(), self.describe_layout())
    }

    fn evaluate(&mut self, params: &[f64], f: &mut [f64], g: &mut [f64]) -> anyhow::Result<()> {
        GpuLaw::evaluate(self, params, f, g)
    }

    fn set_weightings(&mut self, weightings: &[Resolved]) -> anyhow::Result<()> {
        GpuLaw::set_weightings(self, weightings)
    }

    fn evaluate_weighted(
        &mut self,
        params: &[f64],
        which: &[u32],
        f: &mut [f64],
        g: &mut [f64],
    ) -> anyhow::Result<()> {
        GpuLaw::evaluate_weighted(self, params, which, f, g)
    }
}
