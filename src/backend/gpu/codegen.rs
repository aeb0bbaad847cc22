//! WGSL for a compiled law, generated from its evaluation plan
//! ([`Plan`]): the law's forward and adjoint code, written into the
//! hand-written template shaders/law.wgsl (tiling, weighting, loss,
//! output), then validated with naga before any pipeline is made.
//!
//! The plan's hoisting holds on the GPU:
//! - start nodes (parameters and constants only) once per invocation;
//! - curve nodes once per curve an invocation meets, their adjoints summed
//!   over the curve's points and pushed back once when it ends;
//! - axis and point nodes per point (the token term costs one log and one
//!   exp per point, as in a hand-written kernel);
//! - data nodes (no parameter) computed once on the host, in f64, and read
//!   from the curve and point records.

use std::collections::HashSet;
use std::fmt::Write;
use std::sync::Mutex;

use crate::law::dag::{Graph, Node, NodeId};
use crate::law::diff::Edge;
use crate::law::plan::{Class, Plan};

const TEMPLATE: &str = include_str!("../../../shaders/law.wgsl");

/// Bytes of workgroup memory a tile may use: WebGPU guarantees 16 KiB.
const TILE_BYTES: usize = 16 * 1024;
/// Most points per tile: with more, the first workgroups take all the
/// tiles of a small sweep.
const MAX_TILE: usize = 256;

/// A generated kernel and the layout of the records it reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Kernel {
    pub source: String,
    /// Parameters per start.
    pub n_params: usize,
    /// vec4s per point record: target, weight, curve index, then the
    /// values of `point_data`.
    pub point_vec4s: usize,
    /// Floats per curve record: first point's index in the upload and in
    /// the sweep, then `curve_data`.
    pub curve_floats: usize,
    /// Points per tile.
    pub tile: usize,
    /// Data nodes read per curve and per point, in record order.
    pub curve_data: Vec<NodeId>,
    pub point_data: Vec<NodeId>,
}

impl Kernel {
    /// Floats per start in the partial and final sums.
    pub fn record(&self) -> usize {
        self.n_params + 2
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

/// The class a node runs in on the GPU: axis nodes run per point.
fn gpu_class(plan: &Plan, id: NodeId) -> Class {
    match plan.class[id as usize] {
        Class::Axis => Class::Point,
        c => c,
    }
}

/// The WGSL kernel of `plan`, validated. Generated and validated once per
/// distinct plan in a process: fits of one law to many groups share it.
pub fn kernel(plan: &Plan) -> Result<Kernel, CodegenError> {
    let kernel = generate(plan)?;
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

struct Gen<'a> {
    g: &'a Graph,
}

impl Gen<'_> {
    /// An operand: a constant's literal, else the node's name.
    fn op(&self, id: NodeId) -> Result<String, CodegenError> {
        match self.g.node(id) {
            Node::Const(c) => literal(c),
            _ => Ok(format!("n{id}")),
        }
    }

    /// The expression of node `id` and the condition under which it is
    /// defined, if any.
    fn expr(&self, id: NodeId) -> Result<(String, Option<String>), CodegenError> {
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
            Node::Exp(a) => (format!("exp({})", o(a)?), None),
            Node::Log(a) => (format!("log({})", o(a)?), Some(format!("{} > 0.0", o(a)?))),
            Node::Sqrt(a) => (
                format!("sqrt({})", o(a)?),
                Some(format!("{} >= 0.0", o(a)?)),
            ),
            Node::Min(a, b) => (format!("min({}, {})", o(a)?, o(b)?), None),
            Node::Max(a, b) => (format!("max({}, {})", o(a)?, o(b)?), None),
        })
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
        for &id in ids {
            if self.g.constant(id).is_some() {
                continue;
            }
            let (e, cond) = self.expr(id)?;
            writeln!(out, "{decl}n{id} = {e};").unwrap();
            if let Some(c) = cond {
                writeln!(out, "{ok} = {ok} && {c};").unwrap();
            }
        }
        Ok(())
    }
}

/// Generate (without validating) the kernel of `plan`.
pub fn generate(plan: &Plan) -> Result<Kernel, CodegenError> {
    let g = plan.graph();
    let gen = Gen { g };
    let class = |id: NodeId| gpu_class(plan, id);
    let value = plan.value();
    let all_edges: Vec<Edge> = plan.edges.iter().flatten().copied().collect();

    // Data nodes the kernel reads: operands of parameter-dependent nodes,
    // partials, and the prediction itself.
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
    let (mut curve_data, mut point_data) = (Vec::new(), Vec::new());
    for id in 0..g.len() as NodeId {
        if wanted[id as usize] && plan.class[id as usize] == Class::Data && g.constant(id).is_none()
        {
            match plan.level[id as usize] {
                Class::Curve => curve_data.push(id),
                _ => point_data.push(id),
            }
        }
    }
    let point_vec4s = (3 + point_data.len()).div_ceil(4);
    let tile = (TILE_BYTES / (16 * point_vec4s))
        .min(MAX_TILE)
        .next_power_of_two()
        .min(MAX_TILE);
    let tile = if tile * 16 * point_vec4s > TILE_BYTES {
        tile / 2
    } else {
        tile
    };
    if tile == 0 {
        return Err(CodegenError::TooWide(point_data.len()));
    }
    let n_params = plan.n_params().max(1);
    let curve_floats = 2 + curve_data.len();

    // Which hoisted nodes receive adjoint from points (summed per curve),
    // and which nodes have an adjoint at all.
    let has_adj = {
        let mut h = vec![false; g.len()];
        h[value as usize] = plan.class[value as usize] != Class::Data;
        for e in &all_edges {
            h[e.to as usize] = true;
            h[e.from as usize] = true;
        }
        h
    };
    let point_edges: Vec<Edge> = plan.edges[Class::Point as usize]
        .iter()
        .chain(&plan.edges[Class::Axis as usize])
        .copied()
        .collect();
    let mut summed = vec![false; g.len()];
    for e in &point_edges {
        if matches!(class(e.to), Class::Start | Class::Curve) {
            summed[e.to as usize] = true;
        }
    }
    let value_class = plan.class[value as usize];
    if matches!(value_class, Class::Start | Class::Curve) {
        summed[value as usize] = true;
    }
    let summed_ids: Vec<NodeId> = (0..g.len() as NodeId)
        .filter(|&i| summed[i as usize])
        .collect();

    let mut defs = String::new();
    writeln!(defs, "const NP: u32 = {n_params}u;").unwrap();
    writeln!(defs, "const PV: u32 = {point_vec4s}u;").unwrap();
    writeln!(defs, "const CS: u32 = {curve_floats}u;").unwrap();
    writeln!(defs, "const TILE: u32 = {tile}u;").unwrap();

    // Start nodes, and their adjoints.
    let mut start = String::new();
    gen.forward(
        &mut start,
        &plan.forward[Class::Start as usize],
        "let ",
        "ok_start",
    )?;
    for &id in &plan.forward[Class::Start as usize] {
        if has_adj[id as usize] {
            writeln!(start, "var a{id} = 0.0;").unwrap();
        }
    }

    // Curve nodes and curve data (assigned when a curve opens), and the
    // per-curve adjoint sums.
    let mut curve_vars = String::new();
    for &id in curve_data
        .iter()
        .chain(&plan.forward[Class::Curve as usize])
    {
        if g.constant(id).is_none() {
            writeln!(curve_vars, "var n{id} = 0.0;").unwrap();
        }
    }
    for &id in &summed_ids {
        writeln!(curve_vars, "var s{id} = 0.0;").unwrap();
    }
    let mut open = String::new();
    for (j, &id) in curve_data.iter().enumerate() {
        writeln!(open, "n{id} = curves[cb + {}u];", 2 + j).unwrap();
    }
    gen.forward(
        &mut open,
        &plan.forward[Class::Curve as usize],
        "",
        "ok_curve",
    )?;
    for &id in &summed_ids {
        writeln!(open, "s{id} = 0.0;").unwrap();
    }

    // Per point: the record, then axis and point nodes.
    let mut point = String::new();
    for v in 1..point_vec4s {
        writeln!(point, "let q{v} = tile[j * PV + {v}u];").unwrap();
    }
    for (j, &id) in point_data.iter().enumerate() {
        let s = 3 + j;
        let comp = ["x", "y", "z", "w"][s % 4];
        writeln!(point, "let n{id} = q{}.{comp};", s / 4).unwrap();
    }
    let per_point: Vec<NodeId> = plan.forward[Class::Axis as usize]
        .iter()
        .chain(&plan.forward[Class::Point as usize])
        .copied()
        .collect();
    gen.forward(&mut point, &per_point, "let ", "ok")?;
    writeln!(point, "let pred = {};", gen.op(value)?).unwrap();

    // Per point backward: point adjoints, then the sums of hoisted ones.
    let mut back = String::new();
    for &id in &per_point {
        if has_adj[id as usize] && id != value {
            writeln!(back, "var a{id} = 0.0;").unwrap();
        }
    }
    match class(value) {
        Class::Point => writeln!(back, "let a{value} = seed;").unwrap(),
        Class::Start | Class::Curve => {
            writeln!(back, "s{value} += select(0.0, seed, take);").unwrap()
        }
        _ => {}
    }
    for e in &point_edges {
        let v = format!("a{} * {}", e.from, gen.op(e.partial)?);
        match class(e.to) {
            Class::Point => writeln!(back, "a{} += {v};", e.to).unwrap(),
            _ => writeln!(back, "s{} += select(0.0, {v}, take);", e.to).unwrap(),
        }
    }

    // Curve close: curve adjoints from their sums, back through the curve
    // edges into the start adjoints.
    let mut close = String::new();
    for &id in &plan.forward[Class::Curve as usize] {
        if has_adj[id as usize] {
            if summed[id as usize] {
                writeln!(close, "var c{id} = s{id};").unwrap();
            } else {
                writeln!(close, "var c{id} = 0.0;").unwrap();
            }
        }
    }
    for e in &plan.edges[Class::Curve as usize] {
        let v = format!("c{} * {}", e.from, gen.op(e.partial)?);
        match class(e.to) {
            Class::Curve => writeln!(close, "c{} += {v};", e.to).unwrap(),
            _ => writeln!(close, "a{} += {v};", e.to).unwrap(),
        }
    }
    for &id in &summed_ids {
        if class(id) == Class::Start {
            writeln!(close, "a{id} += s{id};").unwrap();
        }
    }

    // Finish: start edges, then the gradient.
    let mut finish = String::new();
    for e in &plan.edges[Class::Start as usize] {
        writeln!(finish, "a{} += a{} * {};", e.to, e.from, gen.op(e.partial)?).unwrap();
    }
    for (i, node) in plan.param_nodes().iter().enumerate() {
        if let Some(id) = node.filter(|&id| has_adj[id as usize]) {
            writeln!(finish, "acc[{}] = a{id};", 1 + i).unwrap();
        }
    }

    let blocks: [(&str, &str); 8] = [
        ("DEFS", &defs),
        ("START", &start),
        ("CURVE_VARS", &curve_vars),
        ("CURVE_OPEN", &open),
        ("POINT", &point),
        ("POINT_BACK", &back),
        ("CURVE_CLOSE", &close),
        ("FINISH", &finish),
    ];
    let mut source = String::with_capacity(TEMPLATE.len() * 2);
    for line in TEMPLATE.lines() {
        let trimmed = line.trim_start();
        let block = trimmed
            .strip_prefix("//@")
            .and_then(|name| blocks.iter().find(|(n, _)| *n == name));
        match block {
            Some((_, code)) => {
                let indent = &line[..line.len() - trimmed.len()];
                for l in code.lines() {
                    writeln!(source, "{indent}{l}").unwrap();
                }
            }
            None => writeln!(source, "{line}").unwrap(),
        }
    }
    Ok(Kernel {
        source,
        n_params,
        point_vec4s,
        curve_floats,
        tile,
        curve_data,
        point_data,
    })
}
