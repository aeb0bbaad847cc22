//! Gauss-Newton moments of a law separable along its axis, what both
//! twins share: the split of the prediction (`Separable`), the
//! coordinates the Jacobian runs through ([`coords`]), and the map of
//! moments in those coordinates to the law's parameters ([`to_params`]).
//!
//! Per cell the prediction is `sa * u[d] + sc * s[c]`, so a Jacobian row
//! is `ju[c] + jv[d]`: the curve term's derivatives (once per curve) plus
//! the axis term's (once per distinct axis value), in the start nodes the
//! two terms read. J^T W r and J^T W J are then sums per curve and per
//! axis value rather than per cell, and the start edges take them to the
//! parameters once per parameter vector.

use crate::law::dag::{Node, NodeId};
use crate::law::plan::{Class, Plan};

/// A law whose prediction per cell is `sa * u[d] + sc * s[curve]` (any law
/// of the form f(curve variables) + g(axis variable), such as LoopLM and
/// Chinchilla): prediction, loss and both adjoint sums are one loop over
/// the cells instead of a pass per node.
/// Either term may be a data node (no parameter), which then has no
/// adjoint.
#[derive(Debug, Clone, Copy)]
pub struct Separable {
    pub axis_node: NodeId,
    pub axis_sign: f64,
    pub scalar_node: NodeId,
    pub scalar_sign: f64,
}

impl Separable {
    pub fn detect(plan: &Plan) -> Option<Separable> {
        let value = plan.value();
        let g = plan.graph();
        if plan.forward[Class::Point as usize] != [value] {
            return None;
        }
        let (a, b, sign_b) = match g.node(value) {
            Node::Add(a, b) => (a, b, 1.0),
            Node::Sub(a, b) => (a, b, -1.0),
            _ => return None,
        };
        // By level: an axis term with or without parameters, and a term
        // constant along each curve.
        let level = |id: NodeId| plan.level[id as usize];
        let (axis_node, axis_sign, scalar_node, scalar_sign) = match (level(a), level(b)) {
            (Class::Axis, Class::Curve | Class::Start) => (a, 1.0, b, sign_b),
            (Class::Curve | Class::Start, Class::Axis) => (b, sign_b, a, 1.0),
            _ => return None,
        };
        // The backward edges out of the cell are exactly those two, with
        // the constant partials of a sum.
        let edges = &plan.edges[Class::Point as usize];
        let partial_ok = |to: NodeId, sign: f64| {
            edges
                .iter()
                .any(|e| e.from == value && e.to == to && g.constant(e.partial) == Some(sign))
        };
        let param_dep = |id: NodeId| edges.iter().any(|e| e.to == id);
        if edges.len() != usize::from(param_dep(axis_node)) + usize::from(param_dep(scalar_node))
            || (param_dep(axis_node) && !partial_ok(axis_node, axis_sign))
            || (param_dep(scalar_node) && !partial_ok(scalar_node, scalar_sign))
        {
            return None;
        }
        Some(Separable {
            axis_node,
            axis_sign,
            scalar_node,
            scalar_sign,
        })
    }
}

/// The start nodes a separable law's Jacobian runs through, and how many
/// of them lead (`axis`) the ones the axis term reaches: the only ones
/// its derivatives `jv` have. The rest are the scalar term's.
pub fn coords(plan: &Plan, sep: &Separable) -> (Vec<NodeId>, usize) {
    let class = &plan.class;
    let mut nodes: Vec<NodeId> = Vec::new();
    let add = |id: NodeId, nodes: &mut Vec<NodeId>| {
        if class[id as usize] == Class::Start && !nodes.contains(&id) {
            nodes.push(id);
        }
    };
    if plan.class[sep.axis_node as usize] == Class::Start {
        add(sep.axis_node, &mut nodes);
    }
    for e in &plan.edges[Class::Axis as usize] {
        add(e.to, &mut nodes);
    }
    let axis = nodes.len();
    add(sep.scalar_node, &mut nodes);
    for e in &plan.edges[Class::Curve as usize] {
        add(e.to, &mut nodes);
    }
    (nodes, axis)
}

/// The start nodes' values at the raw parameters `p`, into `start` (one
/// entry per node of the plan's graph).
pub fn start_values(plan: &Plan, p: &[f64], start: &mut [f64]) {
    let graph = plan.graph();
    for &id in &plan.forward[Class::Start as usize] {
        start[id as usize] = graph
            .node(id)
            .eval(&|o| start[o as usize], &|_| f64::NAN, p);
    }
}

/// The derivatives of the coordinates `coords` by the parameters at
/// start values `start` (row u: coordinate u's, n_params wide): a unit
/// adjoint of each pushed back through the start edges.
pub fn start_jacobian(plan: &Plan, start: &[f64], coords: &[NodeId]) -> Vec<f64> {
    let np = plan.n_params().max(1);
    let mut m = vec![0.0; coords.len() * np];
    let mut adj = vec![0.0; plan.graph().len()];
    for (u, &id) in coords.iter().enumerate() {
        adj.fill(0.0);
        adj[id as usize] = 1.0;
        for e in &plan.edges[Class::Start as usize] {
            let a = adj[e.from as usize];
            if a != 0.0 {
                adj[e.to as usize] += a * start[e.partial as usize];
            }
        }
        for (q, node) in plan.param_nodes().iter().enumerate() {
            m[u * np + q] = node.map_or(0.0, |n| adj[n as usize]);
        }
    }
    m
}

/// The gradient `gs` and Gauss-Newton matrix `a` (s x s, its upper
/// triangle read) in the coordinates whose derivatives by the
/// parameters are `m` (s x np, see [`start_jacobian`]), taken to the
/// parameters: g = M^T gs, H = M^T A M (np x np, full).
pub fn to_params(m: &[f64], gs: &[f64], a: &[f64], g: &mut [f64], h: &mut [f64]) {
    let s = gs.len();
    let np = g.len();
    let sym = |u: usize, v: usize| if u <= v { a[u * s + v] } else { a[v * s + u] };
    for q in 0..np {
        g[q] = (0..s).map(|u| m[u * np + q] * gs[u]).sum();
    }
    let mut am = vec![0.0; s * np];
    for u in 0..s {
        for q in 0..np {
            am[u * np + q] = (0..s).map(|v| sym(u, v) * m[v * np + q]).sum();
        }
    }
    for q in 0..np {
        for r in q..np {
            let v: f64 = (0..s).map(|u| m[u * np + q] * am[u * np + r]).sum();
            h[q * np + r] = v;
            h[r * np + q] = v;
        }
    }
}
