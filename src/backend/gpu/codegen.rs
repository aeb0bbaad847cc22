//! WGSL for a compiled law, generated from its evaluation plan
//! ([`Plan`]): the law's forward and adjoint code, written into the
//! hand-written templates (shaders/law_common.wgsl, law_main.wgsl and the
//! layout's rows, law_points.wgsl or law_grid.wgsl: tiling, weighting,
//! loss, output), then validated with naga before any pipeline is made.
//!
//! The plan's hoisting holds on the GPU:
//! - start nodes (parameters and constants only) once per invocation;
//! - curve nodes once per curve an invocation meets (in the grid layout,
//!   per curve and block of axis values), their adjoints summed over the
//!   curve's points and pushed back once when it ends;
//! - axis nodes, in the grid layout ([`Layout::Grid`]), once per start and
//!   axis value of a block of up to [`MAX_BLOCK`] values, their adjoints summed over
//!   the block's curves and pushed back once per value; in the points
//!   layout, per point;
//! - point nodes per point;
//! - data nodes (no parameter) computed once on the host, in f64, and read
//!   from the curve, axis and point records.

use std::collections::{HashMap, HashSet};
use std::fmt::Write;
use std::sync::Mutex;

use crate::backend::gauss_newton::{self, Separable};
use crate::law::dag::{Graph, Node, NodeId};
use crate::law::diff::Edge;
use crate::law::plan::{Class, Plan};
use crate::law::steps;

const COMMON: &str = include_str!("../../../shaders/law_common.wgsl");
const MAIN: &str = include_str!("../../../shaders/law_main.wgsl");
const POINTS_ROW: &str = include_str!("../../../shaders/law_points.wgsl");
const GRID_ROW: &str = include_str!("../../../shaders/law_grid.wgsl");

/// Bytes of workgroup memory a tile may use: WebGPU guarantees 16 KiB.
const TILE_BYTES: usize = 16 * 1024;
/// Most points (grid: cells) per tile: with more, the first workgroups
/// take all the tiles of a small sweep.
const MAX_TILE: usize = 256;
/// Most axis values per block (cells per row) of the grid layout. The
/// kernel holds a block's axis nodes and their sums in registers, one copy
/// per value: a law with many of them gets smaller blocks (see
/// [`grid_block`]).
pub const MAX_BLOCK: usize = 16;
/// Registers a block's per-value copies may take, about. Measured on an
/// H200: blocks of 16 ran chinchilla and vocab (7 per value, 112 in all)
/// 1.1-1.3x faster than blocks of 8, and LoopLM (10 per value, 160) 0.8-0.95x
/// as fast, so LoopLM keeps 8 and larger laws get 4 or 2.
const BLOCK_REGISTERS: usize = 128;

/// Axis values per block of the grid layout for a law with `per_value`
/// registers per value: the largest power of two up to [`MAX_BLOCK`]
/// within [`BLOCK_REGISTERS`], at least 2.
fn grid_block(per_value: usize) -> usize {
    let mut block = MAX_BLOCK;
    while block > 2 && block * per_value > BLOCK_REGISTERS {
        block /= 2;
    }
    block
}

/// How a kernel walks a sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layout {
    /// Each curve along its own points; axis nodes per point.
    Points,
    /// Curves x the distinct values of the axis variable, in blocks of
    /// up to [`MAX_BLOCK`] values: axis nodes once per start and value of a block,
    /// shared by its curves; a cell's own values (functions of the axis
    /// and the curve's variables) travel with its target.
    Grid,
}

impl Layout {
    /// How reports name the layout.
    pub fn describe(self) -> &'static str {
        match self {
            Layout::Points => "points layout",
            Layout::Grid => "grid layout (axis nodes once per start and value)",
        }
    }
}

/// A generated kernel and the layout of the records it reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Kernel {
    pub layout: Layout,
    pub source: String,
    /// Parameters per start.
    pub n_params: usize,
    /// vec4s per point record (target, weight, curve index, then the
    /// values of `point_data`), or per grid row (a header, then TA cells
    /// of `cell_vec4s`).
    pub point_vec4s: usize,
    /// vec4s per grid cell: target, weight, key, rank, then `point_data`.
    pub cell_vec4s: usize,
    /// Grid: axis values per block (cells per row).
    pub block: usize,
    /// Floats per curve record: first point's index in the upload and in
    /// the sweep, then `curve_data`.
    pub curve_floats: usize,
    /// Floats per axis value record (grid): `axis_data`.
    pub axis_floats: usize,
    /// Points (grid: rows) per tile.
    pub tile: usize,
    /// Data nodes read per curve, per point and (grid) per axis value, in
    /// record order.
    pub curve_data: Vec<NodeId>,
    pub point_data: Vec<NodeId>,
    pub axis_data: Vec<NodeId>,
    /// Families of sums along the steps the kernel calls (its `sf{i}`).
    pub sums: Vec<u32>,
    /// The distinct calls a point makes: (family index, schedule node,
    /// step node), each a loop over the visited steps up to the row's.
    /// The records carry, at a schedule node, the offset of the run's
    /// tables (see `steps::Tables`).
    pub calls: Vec<(usize, NodeId, NodeId)>,
    /// A Gauss-Newton kernel's coordinates (see
    /// [`gauss_newton::coords`]): the start nodes its moments are in, the
    /// first `.1` of them the axis term's. `None` for a gradient kernel.
    pub gauss_newton: Option<(Vec<NodeId>, usize)>,
}

impl Kernel {
    /// Whether data node `id` holds a run's schedule (an operand of a sum).
    pub fn is_schedule(&self, id: NodeId) -> bool {
        self.calls.iter().any(|&(_, h, _)| h == id)
    }
    /// Floats per start in the partial and final sums: the objective,
    /// [`Kernel::payload`] floats, and the undefined points' weight.
    pub fn record(&self) -> usize {
        self.payload() + 2
    }

    /// Floats per start between the objective and the undefined weight:
    /// the gradient, or a Gauss-Newton kernel's J^T W r (s floats) and
    /// J^T W J's upper triangle, row by row (s (s + 1) / 2).
    pub fn payload(&self) -> usize {
        payload(
            self.n_params,
            self.gauss_newton.as_ref().map(|(c, _)| c.len()),
        )
    }
}

/// [`Kernel::payload`] of a kernel of `n_params` parameters, or of a
/// Gauss-Newton kernel of `coords` coordinates.
fn payload(n_params: usize, coords: Option<usize>) -> usize {
    match coords {
        Some(s) => s + s * (s + 1) / 2,
        None => n_params,
    }
}

/// Why a law cannot run on the GPU.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CodegenError {
    /// A constant of the law is not a finite f32.
    #[error(
        "the constant {0} is outside the range of single precision, which the GPU computes in"
    )]
    Constant(f64),
    /// A point's record does not fit in workgroup memory.
    #[error("the law reads {0} values per point, more than a GPU tile holds")]
    TooWide(usize),
    /// The generated module does not validate: a bug in the generator.
    #[error("generated WGSL does not validate (a bug in sweepfit's code generator):\n{0}")]
    Invalid(String),
}

/// The class a node runs in on the GPU: in the points layout, axis nodes
/// run per point.
fn gpu_class(plan: &Plan, id: NodeId, layout: Layout) -> Class {
    match (plan.class[id as usize], layout) {
        (Class::Axis, Layout::Points) => Class::Point,
        (c, _) => c,
    }
}

/// The WGSL kernel of `plan` in `layout`, validated. Generated and
/// validated once per distinct kernel in a process: fits of one law to
/// many groups share it.
pub fn kernel(plan: &Plan, layout: Layout) -> Result<Kernel, CodegenError> {
    checked(generate(plan, layout)?)
}

/// `kernel`, once naga has validated its source (once per distinct source
/// in a process).
pub fn checked(kernel: Kernel) -> Result<Kernel, CodegenError> {
    static VALID: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    let mut cache = VALID.lock().unwrap_or_else(|p| p.into_inner());
    let cache = cache.get_or_insert_with(HashSet::new);
    if !cache.contains(&kernel.source) {
        validate(&kernel.source).map_err(CodegenError::Invalid)?;
        cache.insert(kernel.source.clone());
    }
    Ok(kernel)
}

/// Parse and validate `source` with naga. The error shows the offending
/// generated lines.
pub fn validate(source: &str) -> Result<(), String> {
    let module = naga::front::wgsl::parse_str(source).map_err(|e| e.emit_to_string(source))?;
    naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::empty(),
    )
    .validate(&module)
    .map_err(|e| e.emit_to_string(source))?;
    Ok(())
}

/// A WGSL f32 literal for `c`.
fn literal(c: f64) -> Result<String, CodegenError> {
    let v = c as f32;
    // Out of range either way: infinite, or a non-zero that would be 0
    // or lose its digits as a subnormal.
    if !v.is_finite() || (c != 0.0 && v.abs() < f32::MIN_POSITIVE) {
        return Err(CodegenError::Constant(c));
    }
    // LowerExp prints the shortest digits that read back as `v`.
    let s = format!("{:e}f", v.abs());
    Ok(if v < 0.0 { format!("(-{s})") } else { s })
}

/// Writes nodes of a graph as WGSL: the law's, or a sum's body.
pub(super) struct Gen<'a> {
    g: &'a Graph,
    /// Nodes named per value of a grid row (axis nodes and axis data).
    per_value: &'a [bool],
    /// The value of the row being written, if any.
    slot: Option<usize>,
    /// The kernel's families of sums, in order (`sf{i}` is family
    /// `sums[i]`).
    sums: &'a [u32],
}

impl<'a> Gen<'a> {
    /// For a sum's body: nodes named `n{id}`, outer values `p[i]`.
    pub(super) fn body(g: &'a Graph) -> Gen<'a> {
        Gen {
            g,
            per_value: &[],
            slot: None,
            sums: &[],
        }
    }

    /// A node's variable name.
    fn name(&self, id: NodeId) -> String {
        match self.slot {
            Some(a) if self.per_value.get(id as usize) == Some(&true) => format!("n{id}_{a}"),
            _ => format!("n{id}"),
        }
    }

    /// An operand: a constant's literal, else the node's name.
    pub(super) fn op(&self, id: NodeId) -> Result<String, CodegenError> {
        match self.g.node(id) {
            Node::Const(c) => literal(c),
            _ => Ok(self.name(id)),
        }
    }

    /// The expression of node `id` and the condition under which it is
    /// defined, if any.
    pub(super) fn expr(&self, id: NodeId) -> Result<(String, Option<String>), CodegenError> {
        let o = |x: NodeId| self.op(x);
        Ok(match self.g.node(id) {
            Node::Const(c) => (literal(c)?, None),
            Node::Param(i) => (format!("p[{i}]"), None),
            // Variables are data nodes, read from the records.
            Node::Var(_) => unreachable!("a variable outside the data nodes"),
            Node::Neg(a) => (format!("-{}", o(a)?), None),
            Node::Add(a, b) => (format!("{} + {}", o(a)?, o(b)?), None),
            Node::Sub(a, b) => (format!("{} - {}", o(a)?, o(b)?), None),
            Node::Mul(a, b) => (format!("{} * {}", o(a)?, o(b)?), None),
            Node::Div(a, b) => (format!("{} / {}", o(a)?, o(b)?), None),
            Node::Pow(a, b) => match self.g.constant(b) {
                Some(n) if n == n.round() && n.abs() <= 64.0 => {
                    (format!("powi({}, {})", o(a)?, n as i32), None)
                }
                _ => (
                    format!("exp({} * log({}))", o(b)?, o(a)?),
                    Some(format!("{} > 0.0", o(a)?)),
                ),
            },
            Node::Fn1(f, a) => (f.wgsl(&[o(a)?]), f.wgsl_defined(&o(a)?)),
            Node::Fn2(f, a, b) => (f.wgsl(&[o(a)?, o(b)?]), f.wgsl_defined(&o(a)?)),
            // Written by `forward`, which shares one call among a family.
            Node::Steps(..) => unreachable!("a sum outside `forward`"),
        })
    }

    /// The call of a sum's family at its operands, and which of the
    /// family's sums node `id` is.
    fn sum_call(&self, def: u32, ops: &[NodeId]) -> Result<(String, usize), CodegenError> {
        let (family, root) = steps::family_of(def);
        let fi = self
            .sums
            .iter()
            .position(|&f| f == family)
            .expect("the kernel lists every family of its sums");
        let n = steps::n_args(def);
        let mut args = Vec::with_capacity(n.max(1));
        for &o in &ops[2..2 + n] {
            args.push(self.op(o)?);
        }
        if args.is_empty() {
            args.push("0.0".into());
        }
        let call = format!(
            "sf{fi}(bitcast<u32>({}), {}, array<f32, {}>({}))",
            self.op(ops[0])?,
            self.op(ops[1])?,
            args.len(),
            args.join(", ")
        );
        Ok((call, root))
    }

    /// `let`/assignment lines of `ids` (constants are inlined), with their
    /// definedness folded into `ok`.
    fn forward(
        &self,
        out: &mut String,
        ids: &[NodeId],
        decl: &str,
        ok: &str,
    ) -> Result<(), CodegenError> {
        // One call per family and operands: the value of a sum and its
        // derivatives come from the same pass.
        let mut calls: HashMap<String, String> = HashMap::new();
        for &id in ids {
            if self.g.constant(id).is_some() {
                continue;
            }
            if let Node::Steps(def, ops) = self.g.node(id) {
                let (call, root) = self.sum_call(def, &ops)?;
                let name = match calls.get(&call) {
                    Some(n) => n.clone(),
                    None => {
                        let n = format!("c{}", self.name(id));
                        writeln!(out, "let {n} = {call};").unwrap();
                        writeln!(out, "{ok} = {ok} && {n}.ok;").unwrap();
                        calls.insert(call, n.clone());
                        n
                    }
                };
                writeln!(out, "{decl}{} = {name}.v[{root}];", self.name(id)).unwrap();
                continue;
            }
            let (e, cond) = self.expr(id)?;
            writeln!(out, "{decl}{} = {e};", self.name(id)).unwrap();
            if let Some(c) = cond {
                writeln!(out, "{ok} = {ok} && {c};").unwrap();
            }
        }
        Ok(())
    }
}

/// Generate (without validating) the kernel of `plan` in `layout`.
pub fn generate(plan: &Plan, layout: Layout) -> Result<Kernel, CodegenError> {
    generate_tiled(plan, layout, MAX_TILE)
}

/// As [`generate`], with at most `max_tile` points (grid: cells) per tile.
pub fn generate_tiled(
    plan: &Plan,
    layout: Layout,
    max_tile: usize,
) -> Result<Kernel, CodegenError> {
    from_writer(Writer::new(plan, layout, None, max_tile)?)
}

/// The Gauss-Newton kernel of `plan` (grid layout), validated: per start
/// the objective, J^T W r and J^T W J of mean squares in the coordinates
/// of [`gauss_newton::coords`]. `None` when the law is not separable
/// along its axis.
pub fn gauss_newton_kernel(plan: &Plan) -> Result<Option<Kernel>, CodegenError> {
    let Some(sep) = Separable::detect(plan) else {
        return Ok(None);
    };
    let (coords, axis) = gauss_newton::coords(plan, &sep);
    let curve = curve_reach(plan, &sep, &coords);
    let gn = Gn {
        sep,
        coords,
        axis,
        curve,
    };
    checked(from_writer(Writer::new(
        plan,
        Layout::Grid,
        Some(gn),
        MAX_TILE,
    )?)?)
    .map(Some)
}

fn from_writer(w: Writer) -> Result<Kernel, CodegenError> {
    let source = w.source()?;
    Ok(Kernel {
        layout: w.layout,
        source,
        n_params: w.n_params,
        point_vec4s: w.point_vec4s,
        cell_vec4s: w.cell_vec4s,
        block: w.block,
        curve_floats: w.curve_floats,
        axis_floats: w.axis_floats,
        tile: w.tile,
        curve_data: w.curve_data,
        point_data: w.point_data,
        axis_data: w.axis_data,
        sums: w.sums,
        calls: w.calls,
        gauss_newton: w.gn.map(|gn| (gn.coords, gn.axis)),
    })
}

/// What a Gauss-Newton kernel is written for: the law's split and its
/// coordinates, the first `axis` the axis term's.
struct Gn {
    sep: Separable,
    coords: Vec<NodeId>,
    axis: usize,
    /// The coordinates the curve term reaches (its `ju` entries).
    curve: Vec<usize>,
}

/// The coordinates (indices into `coords`) the curve term of `sep`
/// reaches.
fn curve_reach(plan: &Plan, sep: &Separable, coords: &[NodeId]) -> Vec<usize> {
    let index = |id: NodeId| coords.iter().position(|&c| c == id);
    let mut out: Vec<usize> = Vec::new();
    let node = sep.scalar_node;
    match plan.class[node as usize] {
        Class::Start => out.extend(index(node)),
        Class::Curve => {
            for e in &plan.edges[Class::Curve as usize] {
                if plan.class[e.to as usize] == Class::Start {
                    out.extend(index(e.to));
                }
            }
        }
        _ => {}
    }
    out.sort_unstable();
    out.dedup();
    out
}

impl Gn {
    /// The index of entry (u, v), u <= v, of the upper triangle in the
    /// record (after the objective and the s entries of J^T W r).
    fn tri(&self, u: usize, v: usize) -> usize {
        let s = self.coords.len();
        1 + s + u * s + v - u * (u + 1) / 2
    }

    /// The derivatives of one term, seeded with `sign` at `node` and
    /// pushed back through the edges of its class `of` (in reverse
    /// order) into `{prefix}{u}{suffix}` for each coordinate u they
    /// reach: `c{id}` adjoints in a block of their own.
    #[allow(clippy::too_many_arguments)]
    fn term_jacobian(
        &self,
        out: &mut String,
        w: &Writer,
        gen: &Gen,
        (node, sign): (NodeId, f64),
        of: Class,
        nodes: &[NodeId],
        prefix: &str,
        suffix: &str,
    ) -> Result<(), CodegenError> {
        let index = |id: NodeId| self.coords.iter().position(|&c| c == id);
        match w.plan.class[node as usize] {
            Class::Start => {
                let u = index(node).expect("a start node of a term is a coordinate");
                writeln!(out, "{prefix}{u}{suffix} = {};", literal(sign)?).unwrap();
            }
            c if c == of => {
                writeln!(out, "{{").unwrap();
                for &id in nodes {
                    if w.has_adj[id as usize] {
                        writeln!(out, "    var c{id} = 0.0;").unwrap();
                    }
                }
                writeln!(out, "    c{node} = {};", literal(sign)?).unwrap();
                for e in &w.plan.edges[of as usize] {
                    let v = format!("c{} * {}", e.from, gen.op(e.partial)?);
                    match index(e.to) {
                        Some(u) if w.plan.class[e.to as usize] == Class::Start => {
                            writeln!(out, "    {prefix}{u}{suffix} += {v};").unwrap();
                        }
                        _ => writeln!(out, "    c{} += {v};", e.to).unwrap(),
                    }
                }
                writeln!(out, "}}").unwrap();
            }
            // A data term has no derivatives.
            _ => {}
        }
        Ok(())
    }
}

/// The kernel of a plan in a layout, as it is written: what the template's
/// slots share (which nodes run where, which have adjoints, how records
/// and tiles are sized), and a method per slot.
struct Writer<'a> {
    plan: &'a Plan,
    g: &'a Graph,
    layout: Layout,
    value: NodeId,
    /// Data nodes read per curve, per point and (grid) per axis value.
    curve_data: Vec<NodeId>,
    point_data: Vec<NodeId>,
    axis_data: Vec<NodeId>,
    /// Nodes named per value of a grid row: axis nodes and axis data.
    per_value: Vec<bool>,
    /// Nodes with an adjoint, and hoisted nodes whose adjoint points sum
    /// (per curve, or per axis value on the grid).
    has_adj: Vec<bool>,
    summed: Vec<bool>,
    /// The backward edges a point runs.
    point_edges: Vec<Edge>,
    /// Per-curve sums (s) and, on the grid, per-value sums (x).
    curve_sums: Vec<NodeId>,
    value_sums: Vec<NodeId>,
    /// The grid's axis nodes (constants left out), and a point's nodes.
    axis_nodes: Vec<NodeId>,
    per_point: Vec<NodeId>,
    n_params: usize,
    curve_floats: usize,
    axis_floats: usize,
    cell_vec4s: usize,
    block: usize,
    point_vec4s: usize,
    tile: usize,
    /// Families of sums the kernel calls, and its calls of them.
    sums: Vec<u32>,
    calls: Vec<(usize, NodeId, NodeId)>,
    /// Set for a Gauss-Newton kernel.
    gn: Option<Gn>,
}

impl<'a> Writer<'a> {
    fn new(
        plan: &'a Plan,
        layout: Layout,
        gn: Option<Gn>,
        max_tile: usize,
    ) -> Result<Writer<'a>, CodegenError> {
        let g = plan.graph();
        let grid = layout == Layout::Grid;
        let class = |id: NodeId| gpu_class(plan, id, layout);
        let value = plan.value();
        let all_edges: Vec<Edge> = plan.edges.iter().flatten().copied().collect();

        // Data nodes the kernel reads: operands of parameter-dependent
        // nodes, partials, and the prediction itself.
        let mut wanted = vec![false; g.len()];
        for c in [Class::Start, Class::Curve, Class::Axis, Class::Point] {
            for &id in &plan.forward[c as usize] {
                for o in g.node(id).operands() {
                    wanted[o as usize] = true;
                }
            }
        }
        for e in &all_edges {
            wanted[e.partial as usize] = true;
        }
        wanted[value as usize] = true;
        let (mut curve_data, mut point_data, mut axis_data) = (Vec::new(), Vec::new(), Vec::new());
        for id in 0..g.len() as NodeId {
            if wanted[id as usize]
                && plan.class[id as usize] == Class::Data
                && g.constant(id).is_none()
            {
                match plan.level[id as usize] {
                    Class::Curve => curve_data.push(id),
                    Class::Axis if grid => axis_data.push(id),
                    _ => point_data.push(id),
                }
            }
        }
        let mut per_value = vec![false; g.len()];
        if grid {
            for &id in plan.forward[Class::Axis as usize].iter().chain(&axis_data) {
                per_value[id as usize] = true;
            }
        }
        let n_params = plan.n_params().max(1);
        let curve_floats = 2 + curve_data.len();
        let axis_floats = axis_data.len();

        let has_adj = {
            let mut h = vec![false; g.len()];
            h[value as usize] = plan.class[value as usize] != Class::Data;
            for e in &all_edges {
                h[e.to as usize] = true;
                h[e.from as usize] = true;
            }
            h
        };
        let mut point_edges: Vec<Edge> = plan.edges[Class::Point as usize].clone();
        if !grid {
            point_edges.extend(&plan.edges[Class::Axis as usize]);
        }
        let mut summed = vec![false; g.len()];
        for e in &point_edges {
            if class(e.to) != Class::Point {
                summed[e.to as usize] = true;
            }
        }
        if class(value) != Class::Point {
            summed[value as usize] = true;
        }
        let curve_sums: Vec<NodeId> = (0..g.len() as NodeId)
            .filter(|&i| summed[i as usize] && matches!(class(i), Class::Start | Class::Curve))
            .collect();
        let value_sums: Vec<NodeId> = (0..g.len() as NodeId)
            .filter(|&i| summed[i as usize] && class(i) == Class::Axis)
            .collect();

        // vec4s per grid cell: target, weight, key, rank, then the point's
        // data values (functions of the axis and the curve's variables).
        let cell_vec4s = 1 + point_data.len().div_ceil(4);
        // Per value of a block: its axis data and nodes, their sums, two
        // flags.
        let axis_nodes: Vec<NodeId> = plan.forward[Class::Axis as usize]
            .iter()
            .copied()
            .filter(|&id| g.constant(id).is_none())
            .collect();
        // A Gauss-Newton kernel keeps per value the axis term's
        // derivatives and two sums.
        let gn_per_value = gn.as_ref().map_or(0, |gn| gn.axis + 2);
        let block =
            grid_block(axis_data.len() + axis_nodes.len() + value_sums.len() + 2 + gn_per_value);
        let point_vec4s = if grid {
            1 + block * cell_vec4s
        } else {
            (3 + point_data.len()).div_ceil(4)
        };
        let max_items = if grid { max_tile / block } else { max_tile }.max(1);
        let tile = (TILE_BYTES / (16 * point_vec4s))
            .min(max_items)
            .next_power_of_two()
            .min(max_items);
        let tile = if tile * 16 * point_vec4s > TILE_BYTES {
            tile / 2
        } else {
            tile
        };
        if tile == 0 {
            return Err(CodegenError::TooWide(point_data.len()));
        }
        let (mut sums, mut calls) = (Vec::new(), Vec::new());
        // Sums of data alone (a window of the schedule) are data nodes,
        // computed on the host.
        for id in plan.forward[..Class::Data as usize].iter().flatten() {
            if let Node::Steps(def, ops) = g.node(*id) {
                let family = steps::family_of(def).0;
                if !sums.contains(&family) {
                    sums.push(family);
                }
                let fi = sums.iter().position(|&f| f == family).unwrap_or(0);
                if !calls.contains(&(fi, ops[0], ops[1])) {
                    calls.push((fi, ops[0], ops[1]));
                }
            }
        }
        let per_point: Vec<NodeId> = if grid {
            plan.forward[Class::Point as usize].clone()
        } else {
            plan.forward[Class::Axis as usize]
                .iter()
                .chain(&plan.forward[Class::Point as usize])
                .copied()
                .collect()
        };
        Ok(Writer {
            plan,
            g,
            layout,
            value,
            curve_data,
            point_data,
            axis_data,
            per_value,
            has_adj,
            summed,
            point_edges,
            curve_sums,
            value_sums,
            axis_nodes,
            per_point,
            n_params,
            curve_floats,
            axis_floats,
            cell_vec4s,
            block,
            point_vec4s,
            tile,
            sums,
            calls,
            gn,
        })
    }

    /// Whether this is the grid layout.
    fn grid(&self) -> bool {
        self.layout == Layout::Grid
    }

    /// The class a node runs in on the GPU in this layout.
    fn class(&self, id: NodeId) -> Class {
        gpu_class(self.plan, id, self.layout)
    }

    /// Names of nodes outside a grid row (`None`) or on its value `a`.
    fn gen(&self, slot: Option<usize>) -> Gen<'_> {
        Gen {
            g: self.g,
            per_value: &self.per_value,
            slot,
            sums: &self.sums,
        }
    }

    /// Where a point adjoint lands, on value `a` of a grid row.
    fn sum_into(&self, to: NodeId, a: Option<usize>) -> String {
        match (self.class(to), a) {
            (Class::Axis, Some(a)) => format!("x{to}_{a}"),
            _ => format!("s{to}"),
        }
    }

    /// DEFS: the record and tile sizes.
    fn defs(&self) -> String {
        let mut defs = String::new();
        writeln!(defs, "const NP: u32 = {}u;", self.n_params).unwrap();
        let payload = payload(self.n_params, self.gn.as_ref().map(|gn| gn.coords.len()));
        writeln!(defs, "const RECORD: u32 = {}u;", payload + 2).unwrap();
        writeln!(defs, "const PV: u32 = {}u;", self.point_vec4s).unwrap();
        writeln!(defs, "const CS: u32 = {}u;", self.curve_floats).unwrap();
        writeln!(defs, "const AS: u32 = {}u;", self.axis_floats.max(1)).unwrap();
        writeln!(defs, "const TILE: u32 = {}u;", self.tile).unwrap();
        writeln!(defs, "const TA: u32 = {}u;", self.block).unwrap();
        writeln!(defs, "const CV: u32 = {}u;", self.cell_vec4s).unwrap();
        defs
    }

    /// START: start nodes, and their adjoints.
    fn start(&self) -> Result<String, CodegenError> {
        let mut start = String::new();
        let nodes = &self.plan.forward[Class::Start as usize];
        self.gen(None)
            .forward(&mut start, nodes, "let ", "ok_start")?;
        for &id in nodes {
            if self.has_adj[id as usize] {
                writeln!(start, "var a{id} = 0.0;").unwrap();
            }
        }
        Ok(start)
    }

    /// CURVE_VARS: curve nodes and curve data, and the per-curve adjoint
    /// sums.
    fn curve_vars(&self) -> String {
        let mut vars = String::new();
        for &id in self
            .curve_data
            .iter()
            .chain(&self.plan.forward[Class::Curve as usize])
        {
            if self.g.constant(id).is_none() {
                writeln!(vars, "var n{id} = 0.0;").unwrap();
            }
        }
        for &id in &self.curve_sums {
            writeln!(vars, "var s{id} = 0.0;").unwrap();
        }
        if let Some(gn) = &self.gn {
            // The curve term's derivatives, and the current curve's sums:
            // of seeds (rs) and Gauss-Newton weights (rw), and X (rx),
            // the weights times the axis term's derivatives.
            for u in &gn.curve {
                writeln!(vars, "var ju{u} = 0.0;").unwrap();
            }
            writeln!(vars, "var rs = 0.0;\nvar rw = 0.0;").unwrap();
            for u in 0..gn.axis {
                writeln!(vars, "var rx{u} = 0.0;").unwrap();
            }
        }
        vars
    }

    /// CURVE_OPEN: curve data and nodes assigned when a curve opens, its
    /// sums zeroed.
    fn curve_open(&self) -> Result<String, CodegenError> {
        let mut open = String::new();
        for (j, &id) in self.curve_data.iter().enumerate() {
            writeln!(open, "n{id} = curves[cb + {}u];", 2 + j).unwrap();
        }
        self.gen(None).forward(
            &mut open,
            &self.plan.forward[Class::Curve as usize],
            "",
            "ok_curve",
        )?;
        for &id in &self.curve_sums {
            writeln!(open, "s{id} = 0.0;").unwrap();
        }
        if let Some(gn) = &self.gn {
            for u in &gn.curve {
                writeln!(open, "ju{u} = 0.0;").unwrap();
            }
            gn.term_jacobian(
                &mut open,
                self,
                &self.gen(None),
                (gn.sep.scalar_node, gn.sep.scalar_sign),
                Class::Curve,
                &self.plan.forward[Class::Curve as usize],
                "ju",
                "",
            )?;
            writeln!(open, "rs = 0.0;\nrw = 0.0;").unwrap();
            for u in 0..gn.axis {
                writeln!(open, "rx{u} = 0.0;").unwrap();
            }
        }
        Ok(open)
    }

    /// A close: the adjoints of a class's nodes from their sums (`sum`
    /// names a node's sum), pushed back through the class's edges into its
    /// own nodes and then into the start adjoints. Curves close with it,
    /// and in the grid each value of a block.
    fn push_back(
        &self,
        out: &mut String,
        nodes: &[NodeId],
        of: Class,
        sum: &dyn Fn(NodeId) -> String,
        gen: &Gen,
        indent: &str,
    ) -> Result<(), CodegenError> {
        for &id in nodes {
            if self.has_adj[id as usize] {
                let init = if self.summed[id as usize] {
                    sum(id)
                } else {
                    "0.0".into()
                };
                writeln!(out, "{indent}var c{id} = {init};").unwrap();
            }
        }
        for e in &self.plan.edges[of as usize] {
            let v = format!("c{} * {}", e.from, gen.op(e.partial)?);
            let to = if self.class(e.to) == of { "c" } else { "a" };
            writeln!(out, "{indent}{to}{} += {v};", e.to).unwrap();
        }
        Ok(())
    }

    /// CURVE_CLOSE: curve adjoints from their sums, back through the curve
    /// edges into the start adjoints.
    fn curve_close(&self) -> Result<String, CodegenError> {
        let mut close = String::new();
        if let Some(gn) = &self.gn {
            // The curve's part of J^T W r and J^T W J: rs ju, and
            // rw ju ju^T + ju rx^T + rx ju^T.
            let ju = &gn.curve;
            for &u in ju {
                writeln!(close, "acc[{}u] += rs * ju{u};", 1 + u).unwrap();
            }
            let s = gn.coords.len();
            for u in 0..s {
                for v in u..s {
                    let (cu, cv) = (ju.contains(&u), ju.contains(&v));
                    let mut terms = Vec::new();
                    if cu && cv {
                        terms.push(format!("rw * ju{u} * ju{v}"));
                    }
                    if cu && v < gn.axis {
                        terms.push(format!("ju{u} * rx{v}"));
                    }
                    if cv && u < gn.axis {
                        terms.push(format!("rx{u} * ju{v}"));
                    }
                    if !terms.is_empty() {
                        writeln!(close, "acc[{}u] += {};", gn.tri(u, v), terms.join(" + "))
                            .unwrap();
                    }
                }
            }
            return Ok(close);
        }
        let sum = |id: NodeId| format!("s{id}");
        let curve_nodes = &self.plan.forward[Class::Curve as usize];
        self.push_back(
            &mut close,
            curve_nodes,
            Class::Curve,
            &sum,
            &self.gen(None),
            "",
        )?;
        for &id in &self.curve_sums {
            if self.class(id) == Class::Start {
                writeln!(close, "a{id} += s{id};").unwrap();
            }
        }
        Ok(close)
    }

    /// AXIS_VARS, AXIS_OPEN and AXIS_CLOSE (grid only): a block's axis
    /// nodes and their sums, per value.
    fn axis(&self) -> Result<[String; 3], CodegenError> {
        let (mut vars, mut open, mut close) = (String::new(), String::new(), String::new());
        if !self.grid() {
            return Ok([vars, open, close]);
        }
        // The current block, and per value of it whether its axis nodes
        // are defined (okx) and whether any of its cells counted (tk).
        writeln!(vars, "var cur_block = NO_CURVE;").unwrap();
        for a in 0..self.block {
            let gen = self.gen(Some(a));
            writeln!(vars, "var okx{a} = true;").unwrap();
            writeln!(vars, "var tk{a} = false;").unwrap();
            for &id in self.axis_data.iter().chain(&self.axis_nodes) {
                writeln!(vars, "var {} = 0.0;", gen.name(id)).unwrap();
            }
            for &id in &self.value_sums {
                writeln!(vars, "var x{id}_{a} = 0.0;").unwrap();
            }
            if let Some(gn) = &self.gn {
                // The axis term's derivatives at the value, and its sums
                // over the block's cells of seeds and weights.
                for u in 0..gn.axis {
                    writeln!(vars, "var jv{u}_{a} = 0.0;").unwrap();
                }
                writeln!(vars, "var col{a} = 0.0;\nvar om{a} = 0.0;").unwrap();
            }

            // Open: past the last value, any value will do (its cells are
            // empty).
            writeln!(open, "{{").unwrap();
            writeln!(
                open,
                "    let ab = chunk.axis_base + min(cur_block * TA + {a}u, chunk.n_axis - 1u) * AS;"
            )
            .unwrap();
            for (j, &id) in self.axis_data.iter().enumerate() {
                writeln!(open, "    {} = curves[ab + {j}u];", gen.name(id)).unwrap();
            }
            writeln!(open, "    okx{a} = true;").unwrap();
            let mut fwd = String::new();
            gen.forward(&mut fwd, &self.axis_nodes, "", &format!("okx{a}"))?;
            for l in fwd.lines() {
                writeln!(open, "    {l}").unwrap();
            }
            for &id in &self.value_sums {
                writeln!(open, "    x{id}_{a} = 0.0;").unwrap();
            }
            if let Some(gn) = &self.gn {
                let mut jac = String::new();
                for u in 0..gn.axis {
                    writeln!(jac, "jv{u}_{a} = 0.0;").unwrap();
                }
                gn.term_jacobian(
                    &mut jac,
                    self,
                    &gen,
                    (gn.sep.axis_node, gn.sep.axis_sign),
                    Class::Axis,
                    &self.axis_nodes,
                    "jv",
                    &format!("_{a}"),
                )?;
                writeln!(jac, "col{a} = 0.0;\nom{a} = 0.0;").unwrap();
                for l in jac.lines() {
                    writeln!(open, "    {l}").unwrap();
                }
            }
            writeln!(open, "    tk{a} = false;").unwrap();
            writeln!(open, "}}").unwrap();

            if let Some(gn) = &self.gn {
                // The value's part of J^T W r and J^T W J: col jv and
                // om jv jv^T.
                writeln!(close, "if (tk{a}) {{").unwrap();
                for u in 0..gn.axis {
                    writeln!(close, "    acc[{}u] += col{a} * jv{u}_{a};", 1 + u).unwrap();
                    for v in u..gn.axis {
                        let at = gn.tri(u, v);
                        writeln!(close, "    acc[{at}u] += om{a} * jv{u}_{a} * jv{v}_{a};")
                            .unwrap();
                    }
                }
                writeln!(close, "}}").unwrap();
                continue;
            }
            // Close: the value's sums back through the axis nodes into
            // the start adjoints, where any of its cells counted.
            writeln!(close, "if (tk{a}) {{").unwrap();
            let sum = |id: NodeId| format!("x{id}_{a}");
            self.push_back(
                &mut close,
                &self.axis_nodes,
                Class::Axis,
                &sum,
                &gen,
                "    ",
            )?;
            writeln!(close, "}}").unwrap();
        }
        Ok([vars, open, close])
    }

    /// POINT and POINT_BACK: per point (grid: per cell of value `a`) the
    /// record, the point's nodes and `pred`; then, backward, the point
    /// adjoints and the sums of hoisted ones.
    fn point(&self, a: Option<usize>) -> Result<(String, String), CodegenError> {
        let gen = self.gen(a);
        let mut point = String::new();
        if let Some(a) = a {
            for v in 1..self.cell_vec4s {
                writeln!(point, "let q{v} = tile[j * PV + 1u + {a}u * CV + {v}u];").unwrap();
            }
            for (j, &id) in self.point_data.iter().enumerate() {
                let s = 4 + j;
                let comp = ["x", "y", "z", "w"][s % 4];
                writeln!(point, "let n{id} = q{}.{comp};", s / 4).unwrap();
            }
        } else if !self.grid() {
            for v in 1..self.point_vec4s {
                writeln!(point, "let q{v} = tile[j * PV + {v}u];").unwrap();
            }
            for (j, &id) in self.point_data.iter().enumerate() {
                let s = 3 + j;
                let comp = ["x", "y", "z", "w"][s % 4];
                writeln!(point, "let n{id} = q{}.{comp};", s / 4).unwrap();
            }
        }
        gen.forward(&mut point, &self.per_point, "let ", "ok")?;
        let value = self.value;
        writeln!(point, "let pred = {};", gen.op(value)?).unwrap();

        let mut back = String::new();
        if let (Some(gn), Some(a)) = (&self.gn, a) {
            // The cell's Gauss-Newton weight, w (dr / dpred)^2, into the
            // curve's and the value's sums.
            writeln!(back, "let wo = select(pw, pw / (pred * pred), LOG_SPACE);").unwrap();
            writeln!(back, "rs += seed;\nrw += wo;").unwrap();
            for u in 0..gn.axis {
                writeln!(back, "rx{u} += wo * jv{u}_{a};").unwrap();
            }
            writeln!(back, "col{a} += seed;\nom{a} += wo;").unwrap();
            return Ok((point, back));
        }
        for &id in &self.per_point {
            if self.has_adj[id as usize] && id != value {
                writeln!(back, "var a{id} = 0.0;").unwrap();
            }
        }
        match self.class(value) {
            Class::Point => writeln!(back, "let a{value} = seed;").unwrap(),
            Class::Data => {}
            _ => writeln!(back, "{} += seed;", self.sum_into(value, a)).unwrap(),
        }
        for e in &self.point_edges {
            let v = format!("a{} * {}", e.from, gen.op(e.partial)?);
            match self.class(e.to) {
                Class::Point => writeln!(back, "a{} += {v};", e.to).unwrap(),
                _ => writeln!(back, "{} += {v};", self.sum_into(e.to, a)).unwrap(),
            }
        }
        Ok((point, back))
    }

    /// FINISH: start edges, then the gradient.
    fn finish(&self) -> Result<String, CodegenError> {
        let mut finish = String::new();
        if self.gn.is_some() {
            // The moments are in `acc` already, in the start nodes.
            return Ok(finish);
        }
        let gen = self.gen(None);
        for e in &self.plan.edges[Class::Start as usize] {
            writeln!(finish, "a{} += a{} * {};", e.to, e.from, gen.op(e.partial)?).unwrap();
        }
        for (i, node) in self.plan.param_nodes().iter().enumerate() {
            if let Some(id) = node.filter(|&id| self.has_adj[id as usize]) {
                writeln!(finish, "acc[{}] = a{id};", 1 + i).unwrap();
            }
        }
        Ok(finish)
    }

    /// The template with every slot filled; on the grid, the cell body
    /// (between `//@CELL_BEGIN` and `//@CELL_END`) once per value of a row.
    fn source(&self) -> Result<String, CodegenError> {
        let template = template(if self.grid() { GRID_ROW } else { POINTS_ROW });
        let (point, point_back) = self.point(None)?;
        let [axis_vars, axis_open, axis_close] = self.axis()?;
        let mut slots = Slots {
            defs: self.defs(),
            start: self.start()?,
            curve_vars: self.curve_vars(),
            curve_open: self.curve_open()?,
            curve_close: self.curve_close()?,
            finish: self.finish()?,
            axis_vars,
            axis_open,
            axis_close,
            point,
            point_back,
        };
        let mut source = String::with_capacity(template.len() * 2);
        let mut lines = template.lines();
        while let Some(line) = lines.next() {
            if line.trim_start() == "//@CELL_BEGIN" {
                let body: Vec<&str> = lines
                    .by_ref()
                    .take_while(|l| l.trim_start() != "//@CELL_END")
                    .collect();
                for a in 0..self.block {
                    (slots.point, slots.point_back) = self.point(Some(a))?;
                    for l in &body {
                        fill(&mut source, &l.replace("$a", &a.to_string()), &|n| {
                            slots.get(n)
                        });
                    }
                }
                continue;
            }
            fill(&mut source, line, &|n| slots.get(n));
        }
        if !self.sums.is_empty() {
            writeln!(source, "{}", super::steps::TEMPLATE).unwrap();
            for (fi, &family) in self.sums.iter().enumerate() {
                let f = super::steps::function(&steps::shape(family), fi)?;
                writeln!(source, "{f}").unwrap();
            }
        }
        Ok(source)
    }
}

/// The code generated for the template's slots (its lines `//@NAME`).
struct Slots {
    defs: String,
    start: String,
    curve_vars: String,
    curve_open: String,
    curve_close: String,
    finish: String,
    axis_vars: String,
    axis_open: String,
    axis_close: String,
    /// A point's (on the grid, one cell's) forward and backward code.
    point: String,
    point_back: String,
}

impl Slots {
    /// The code of the slot a template names.
    fn get(&self, name: &str) -> Option<&str> {
        Some(match name {
            "DEFS" => &self.defs,
            "START" => &self.start,
            "CURVE_VARS" => &self.curve_vars,
            "CURVE_OPEN" => &self.curve_open,
            "CURVE_CLOSE" => &self.curve_close,
            "FINISH" => &self.finish,
            "AXIS_VARS" => &self.axis_vars,
            "AXIS_OPEN" => &self.axis_open,
            "AXIS_CLOSE" => &self.axis_close,
            "POINT" => &self.point,
            "POINT_BACK" => &self.point_back,
            _ => return None,
        })
    }
}

/// The kernel's template for one layout: law_common.wgsl, then
/// law_main.wgsl with the layout file's sections (after lines `//@@ NAME`)
/// in place of its lines `//@NAME`, indented as those lines are.
fn template(layout_rows: &str) -> String {
    let mut sections: Vec<(&str, String)> = Vec::new();
    for line in layout_rows.lines() {
        if let Some(name) = line.strip_prefix("//@@ ") {
            sections.push((name.trim(), String::new()));
        } else if let Some((_, body)) = sections.last_mut() {
            writeln!(body, "{line}").unwrap();
        }
    }
    for (_, body) in &mut sections {
        body.truncate(body.trim_end().len());
    }
    let mut out = format!("{COMMON}\n");
    let section = |name: &str| {
        sections
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, body)| body.as_str())
    };
    for line in MAIN.lines() {
        fill(&mut out, line, &section);
    }
    out
}

/// Append `line` to `source`, or, for a line `//@NAME` naming a slot
/// `code` has, that slot's code at the line's indent.
fn fill<'a>(source: &mut String, line: &str, code: &dyn Fn(&str) -> Option<&'a str>) {
    let trimmed = line.trim_start();
    let block = trimmed.strip_prefix("//@").and_then(code);
    match block {
        Some(code) => {
            let indent = &line[..line.len() - trimmed.len()];
            for l in code.lines() {
                writeln!(source, "{indent}{l}").unwrap();
            }
        }
        None => writeln!(source, "{line}").unwrap(),
    }
}
