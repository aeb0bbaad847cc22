//! The evaluation plan of a compiled law over a sweep: every node is
//! evaluated once per distinct value of what it depends on (variables and
//! parameters), and the adjoint of a hoisted node is the sum of what flows
//! into it from its points.
//!
//! Nodes fall into five classes:
//! - `Start`: parameters and constants only, once per parameter vector;
//! - `Curve`: parameters and variables constant along each curve (N, T),
//!   once per curve and parameter vector;
//! - `Axis`: parameters and the curve's axis variable alone (D), once per
//!   distinct value, shared by curves logged at the same steps (the shared
//!   token grid);
//! - `Point`: parameters and anything else, per point;
//! - `Data`: variables but no parameter (ln D, V*d), once per fit at the
//!   level its variables give it (see [`Plan::level`]): every parameter
//!   vector reads the cached values ([`Plan::data`]).
//!
//! The backward pass runs the local partials of [`diff::edges`], which are
//! nodes too and so hoisted the same way: per point only the adjoints of
//! point nodes are formed, and they are accumulated into per-curve,
//! per-axis-value and per-start sums, which are then pushed back once each.
//! Data nodes carry no adjoint (no parameter is behind them), but they are
//! often partials (d(alpha ln N)/d alpha = ln N).
//! [`Plan::evaluate`] is the plain f64 interpreter of this schedule: the
//! reference the fast evaluators are checked against.

use std::ops::Range;

use super::compile::CompiledLaw;
use super::dag::{Graph, Node, NodeId};
use super::diff::{self, Edge};
use super::ops::Func;
use super::steps;
use crate::objective::{Objective, Space};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    Start = 0,
    Curve = 1,
    Axis = 2,
    Point = 3,
    Data = 4,
}

pub const CLASSES: [Class; 5] = [
    Class::Start,
    Class::Curve,
    Class::Axis,
    Class::Point,
    Class::Data,
];

/// A sweep as the plan reads it: points grouped by curve, every variable
/// per point, and the axis variable's distinct values.
#[derive(Debug, Clone)]
pub struct Sweep {
    pub n_vars: usize,
    /// Point ranges of the curves.
    pub curves: Vec<Range<usize>>,
    /// Point-major variable values: point i's are `vars[i*n_vars..][..n_vars]`.
    pub vars: Vec<f64>,
    /// Targets in the fitted space, and weights (normalised by the caller).
    pub y: Vec<f64>,
    pub w: Vec<f64>,
    /// The axis variable, if any, its distinct values ascending, and each
    /// point's index into them.
    pub axis: Option<u16>,
    pub axis_values: Vec<f64>,
    pub axis_index: Vec<u32>,
    /// Bit i: variable i is constant along every curve.
    pub curve_vars: u64,
}

impl Sweep {
    /// Group `vars` (point-major) into a sweep; which variables are
    /// constant along curves is found from the data.
    pub fn new(
        n_vars: usize,
        curves: Vec<Range<usize>>,
        vars: Vec<f64>,
        y: Vec<f64>,
        w: Vec<f64>,
        axis: Option<u16>,
    ) -> Sweep {
        let mut curve_vars = 0u64;
        for v in 0..n_vars {
            let constant = curves.iter().all(|r| {
                let first = vars[r.start * n_vars + v];
                r.clone().all(|i| vars[i * n_vars + v] == first)
            });
            if constant && Some(v as u16) != axis {
                curve_vars |= 1 << v;
            }
        }
        let points = y.len();
        let (mut axis_values, mut axis_index) = (Vec::new(), vec![0u32; points]);
        if let Some(a) = axis {
            axis_values = (0..points).map(|i| vars[i * n_vars + a as usize]).collect();
            axis_values.sort_by(f64::total_cmp);
            axis_values.dedup();
            for (i, ix) in axis_index.iter_mut().enumerate() {
                let v = vars[i * n_vars + a as usize];
                *ix = axis_values.partition_point(|&x| x.total_cmp(&v).is_lt()) as u32;
            }
        }
        Sweep {
            n_vars,
            curves,
            vars,
            y,
            w,
            axis,
            axis_values,
            axis_index,
            curve_vars,
        }
    }

    pub fn points(&self) -> usize {
        self.y.len()
    }
}

/// How many node evaluations of each class [`Plan::data`] and
/// [`Plan::evaluate_with`] made, forward and backward (partials included
/// in forward).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub forward: [usize; 5],
    pub backward: [usize; 5],
}

#[derive(Debug, Clone)]
pub struct Plan {
    graph: Graph,
    value: NodeId,
    n_params: usize,
    /// Per node.
    pub class: Vec<Class>,
    /// Per node, the class its variables alone give it (`Start` for
    /// constants): where a data node's values live, one per curve, per
    /// distinct axis value or per point. The same as `class` for the
    /// other nodes.
    pub level: Vec<Class>,
    /// Nodes to evaluate, per class, in topological order: the value's cone
    /// and every partial's.
    pub forward: [Vec<NodeId>; 5],
    /// Backward edges, grouped by the class of their `from` node, each in
    /// reverse-mode order (none out of data nodes).
    pub edges: [Vec<Edge>; 5],
    /// Node of each parameter (None when the law does not use it: never
    /// the case for a compiled law, which refuses such parameters).
    param_node: Vec<Option<NodeId>>,
}

/// The values of a plan's data nodes on one sweep, computed once and read
/// by every parameter vector: per level, one row of that level's data
/// nodes per curve, per distinct axis value, or per point.
#[derive(Debug, Clone)]
pub struct DataValues {
    /// Per node, its column in its level's rows (unused for other nodes).
    col: Vec<usize>,
    /// Row width of the curve, axis and point levels.
    width: [usize; 3],
    rows: [Vec<f64>; 3],
}

impl DataValues {
    /// Data node `id`'s value at row `row` of level `level` (curve, axis
    /// value or point index).
    pub fn get(&self, level: Class, row: usize, id: NodeId) -> f64 {
        let l = level as usize - 1;
        self.rows[l][row * self.width[l] + self.col[id as usize]]
    }
}

impl Plan {
    /// The plan of `law` on data whose curve-constant variables are
    /// `curve_vars` (a bit mask) and whose axis variable is `axis`.
    pub fn new(law: &CompiledLaw, curve_vars: u64, axis: Option<u16>) -> Plan {
        let mut graph = law.graph.clone();
        let axis_bit = axis.map_or(0, |a| 1u64 << a);
        let classify = |m: u64| {
            if m == 0 {
                Class::Start
            } else if m & !curve_vars == 0 {
                Class::Curve
            } else if m == axis_bit {
                Class::Axis
            } else {
                Class::Point
            }
        };
        let value = lower(&mut graph, law.value, &classify);
        let value = {
            let mask = graph.var_masks();
            regroup(&mut graph, value, &|id| classify(mask[id as usize]))
        };
        let edges_all = diff::edges(&mut graph, value);
        let level: Vec<Class> = graph.var_masks().into_iter().map(classify).collect();
        let dep = diff::param_dependent(&graph);
        let class: Vec<Class> = level
            .iter()
            .zip(&dep)
            .map(|(&l, &d)| {
                if l != Class::Start && !d {
                    Class::Data
                } else {
                    l
                }
            })
            .collect();
        // What must be computed: the value's cone and every partial's.
        let mut needed = vec![false; graph.len()];
        let mark = |root: NodeId, needed: &mut Vec<bool>| {
            let mut stack = vec![root];
            while let Some(n) = stack.pop() {
                if !needed[n as usize] {
                    needed[n as usize] = true;
                    stack.extend(graph.node(n).operands());
                }
            }
        };
        mark(value, &mut needed);
        for e in &edges_all {
            mark(e.partial, &mut needed);
        }
        let mut forward: [Vec<NodeId>; 5] = Default::default();
        for (i, &need) in needed.iter().enumerate() {
            if need {
                forward[class[i] as usize].push(i as NodeId);
            }
        }
        let mut edges: [Vec<Edge>; 5] = Default::default();
        for e in edges_all {
            edges[class[e.from as usize] as usize].push(e);
        }
        let mut param_node = vec![None; law.params.len()];
        for (i, n) in graph.nodes().iter().enumerate() {
            if let Node::Param(p) = n {
                param_node[*p as usize] = Some(i as NodeId);
            }
        }
        Plan {
            graph,
            value,
            n_params: law.params.len(),
            class,
            level,
            forward,
            edges,
            param_node,
        }
    }

    /// The graph the plan runs: the law's, reassociated for hoisting and
    /// extended with the partial derivatives.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The node of the prediction.
    pub fn value(&self) -> NodeId {
        self.value
    }

    /// The node of each parameter.
    pub fn param_nodes(&self) -> &[Option<NodeId>] {
        &self.param_node
    }

    pub fn n_params(&self) -> usize {
        self.n_params
    }

    /// The plan as text, one line per node evaluated, by class: what runs
    /// once per fit, per parameter vector, per curve, per distinct axis
    /// value and per point. A node reads other nodes as `%id`, leaves by
    /// name; the backward pass is counted per class.
    pub fn listing(&self, law: &CompiledLaw) -> String {
        let g = &self.graph;
        let (vars, params) = (&law.variables, &law.params);
        let leaf = |n: Node| matches!(n, Node::Const(_) | Node::Var(_) | Node::Param(_));
        let opnd = |o: NodeId| {
            let n = g.node(o);
            if leaf(n) {
                n.text(&|_| String::new(), vars, params)
            } else {
                format!("%{o}")
            }
        };
        let mut out = String::new();
        for (class, title) in [
            (Class::Data, "data (no parameter): once per fit"),
            (Class::Start, "per parameter vector"),
            (Class::Curve, "per curve"),
            (Class::Axis, "per distinct axis value"),
            (Class::Point, "per point"),
        ] {
            let nodes: Vec<NodeId> = self.forward[class as usize]
                .iter()
                .copied()
                .filter(|&i| !leaf(g.node(i)))
                .collect();
            out.push_str(&format!(
                "{title}: {} nodes, {} backward edges\n",
                nodes.len(),
                self.edges[class as usize].len()
            ));
            for i in nodes {
                let mark = match g.node(i) {
                    _ if i == self.value => "   <- prediction",
                    Node::Steps(d, _) if steps::by_recurrence(d) => {
                        "   <- by recurrence, once per run and parameter vector"
                    }
                    _ => "",
                };
                out.push_str(&format!(
                    "  %{i} = {}{mark}\n",
                    g.node(i).text(&opnd, vars, params)
                ));
            }
        }
        out
    }

    /// The plan of `law` for `sweep`.
    pub fn for_sweep(law: &CompiledLaw, sweep: &Sweep) -> Plan {
        Plan::new(law, sweep.curve_vars, sweep.axis)
    }

    /// The data nodes of `level` (curve, axis or point), in topological
    /// order.
    pub fn data_nodes(&self, level: Class) -> impl Iterator<Item = NodeId> + '_ {
        self.forward[Class::Data as usize]
            .iter()
            .copied()
            .filter(move |&id| self.level[id as usize] == level)
    }

    /// The data nodes' values on `sweep`, once for all parameter vectors:
    /// curve-level ones once per curve (from its first point), axis-level
    /// ones once per distinct axis value, the others once per point. Rows
    /// of empty curves are NaN.
    pub fn data(&self, sweep: &Sweep, counts: Option<&mut Counts>) -> DataValues {
        let g = &self.graph;
        let nv = sweep.n_vars;
        let mut col = vec![usize::MAX; g.len()];
        let mut width = [0; 3];
        for (l, level) in [Class::Curve, Class::Axis, Class::Point]
            .into_iter()
            .enumerate()
        {
            for id in self.data_nodes(level) {
                col[id as usize] = width[l];
                width[l] += 1;
            }
        }
        let n_rows = [sweep.curves.len(), sweep.axis_values.len(), sweep.points()];
        let mut dv = DataValues {
            col,
            width,
            rows: std::array::from_fn(|l| vec![f64::NAN; n_rows[l] * width[l]]),
        };
        // A data node's operands are constants or data nodes of its level
        // or a lower one.
        let constant = |o: NodeId| g.constant(o).unwrap_or(f64::NAN);
        let mut evaluated = 0;
        for (c, r) in sweep.curves.iter().enumerate() {
            if r.is_empty() {
                continue;
            }
            let row = r.start * nv;
            for id in self.data_nodes(Class::Curve) {
                let get = |o: NodeId| match self.class[o as usize] {
                    Class::Data => dv.get(Class::Curve, c, o),
                    _ => constant(o),
                };
                let x = g
                    .node(id)
                    .eval(&get, &|v| sweep.vars[row + v as usize], &[]);
                dv.rows[0][c * width[0] + dv.col[id as usize]] = x;
                evaluated += 1;
            }
        }
        for (a, &av) in sweep.axis_values.iter().enumerate() {
            for id in self.data_nodes(Class::Axis) {
                let get = |o: NodeId| match self.class[o as usize] {
                    Class::Data => dv.get(Class::Axis, a, o),
                    _ => constant(o),
                };
                let x = g.node(id).eval(&get, &|_| av, &[]);
                dv.rows[1][a * width[1] + dv.col[id as usize]] = x;
                evaluated += 1;
            }
        }
        if width[2] > 0 {
            for (c, r) in sweep.curves.iter().enumerate() {
                for i in r.clone() {
                    let a = sweep.axis_index[i] as usize;
                    let pv = &sweep.vars[i * nv..(i + 1) * nv];
                    for id in self.data_nodes(Class::Point) {
                        let get = |o: NodeId| match (self.class[o as usize], self.level[o as usize])
                        {
                            (Class::Data, Class::Curve) => dv.get(Class::Curve, c, o),
                            (Class::Data, Class::Axis) => dv.get(Class::Axis, a, o),
                            (Class::Data, _) => dv.get(Class::Point, i, o),
                            _ => constant(o),
                        };
                        let x = g.node(id).eval(&get, &|v| pv[v as usize], &[]);
                        dv.rows[2][i * width[2] + dv.col[id as usize]] = x;
                        evaluated += 1;
                    }
                }
            }
        }
        if let Some(c) = counts {
            c.forward[Class::Data as usize] += evaluated;
        }
        dv
    }

    /// Objective (weighted sum of rho over points; the caller's weights
    /// make it a mean) and its gradient with respect to the parameters:
    /// [`Plan::data`], then [`Plan::evaluate_with`].
    pub fn evaluate(
        &self,
        sweep: &Sweep,
        params: &[f64],
        obj: &Objective,
        mut counts: Option<&mut Counts>,
    ) -> (f64, Vec<f64>) {
        let data = self.data(sweep, counts.as_deref_mut());
        self.evaluate_with(sweep, &data, params, obj, counts)
    }

    /// Objective and gradient of one parameter vector, reading the data
    /// nodes from `data` (this plan's, on `sweep`).
    pub fn evaluate_with(
        &self,
        sweep: &Sweep,
        data: &DataValues,
        params: &[f64],
        obj: &Objective,
        mut counts: Option<&mut Counts>,
    ) -> (f64, Vec<f64>) {
        let n = self.graph.len();
        let (nc, na) = (sweep.curves.len(), sweep.axis_values.len().max(1));
        let mut start = vec![0.0; n];
        let mut curve = vec![0.0; nc * n];
        let mut axis = vec![0.0; na * n];
        let mut point = vec![0.0; n];
        let mut count = |class: Class, k: usize, backward: bool| {
            if let Some(c) = counts.as_deref_mut() {
                let slot = if backward {
                    &mut c.backward
                } else {
                    &mut c.forward
                };
                slot[class as usize] += k;
            }
        };
        // A data node's value at curve c, axis value a, point i.
        let dat = |o: NodeId, c: usize, a: usize, i: usize| match self.level[o as usize] {
            Class::Curve => data.get(Class::Curve, c, o),
            Class::Axis => data.get(Class::Axis, a, o),
            _ => data.get(Class::Point, i, o),
        };

        // Forward, hoisted. Variables are data nodes: no node here reads
        // one directly.
        let eval = |g: &Graph, id: NodeId, get: &dyn Fn(NodeId) -> f64| {
            g.node(id).eval(get, &|_| f64::NAN, params)
        };
        for &id in &self.forward[0] {
            let x = eval(&self.graph, id, &|o| start[o as usize]);
            start[id as usize] = x;
        }
        count(Class::Start, self.forward[0].len(), false);
        for (c, r) in sweep.curves.iter().enumerate() {
            if r.is_empty() {
                continue;
            }
            for &id in &self.forward[1] {
                let x = {
                    let cv = &curve[c * n..(c + 1) * n];
                    let get = |o: NodeId| match self.class[o as usize] {
                        Class::Start => start[o as usize],
                        Class::Data => data.get(Class::Curve, c, o),
                        _ => cv[o as usize],
                    };
                    eval(&self.graph, id, &get)
                };
                curve[c * n + id as usize] = x;
            }
            count(Class::Curve, self.forward[1].len(), false);
        }
        for a in 0..sweep.axis_values.len() {
            for &id in &self.forward[2] {
                let x = {
                    let xv = &axis[a * n..(a + 1) * n];
                    let get = |o: NodeId| match self.class[o as usize] {
                        Class::Start => start[o as usize],
                        Class::Data => data.get(Class::Axis, a, o),
                        _ => xv[o as usize],
                    };
                    eval(&self.graph, id, &get)
                };
                axis[a * n + id as usize] = x;
            }
            count(Class::Axis, self.forward[2].len(), false);
        }

        // Per point: forward through point nodes, the loss, and the
        // backward edges out of point nodes.
        let mut start_adj = vec![0.0; n];
        let mut curve_adj = vec![0.0; nc * n];
        let mut axis_adj = vec![0.0; na * n];
        let mut point_adj = vec![0.0; n];
        let mut f = 0.0;
        for (c, r) in sweep.curves.iter().enumerate() {
            for i in r.clone() {
                let a = sweep.axis_index[i] as usize;
                for &id in &self.forward[3] {
                    let x = {
                        let get = |o: NodeId| match self.class[o as usize] {
                            Class::Start => start[o as usize],
                            Class::Curve => curve[c * n + o as usize],
                            Class::Axis => axis[a * n + o as usize],
                            Class::Point => point[o as usize],
                            Class::Data => dat(o, c, a, i),
                        };
                        eval(&self.graph, id, &get)
                    };
                    point[id as usize] = x;
                }
                count(Class::Point, self.forward[3].len(), false);
                let get = |o: NodeId| match self.class[o as usize] {
                    Class::Start => start[o as usize],
                    Class::Curve => curve[c * n + o as usize],
                    Class::Axis => axis[a * n + o as usize],
                    Class::Point => point[o as usize],
                    Class::Data => dat(o, c, a, i),
                };
                let pred = get(self.value);
                let (r, dpred) = match obj.space {
                    Space::Linear => (pred - sweep.y[i], 1.0),
                    Space::Log => (pred.ln() - sweep.y[i], 1.0 / pred),
                };
                let (rho, drho) = obj.rho(r);
                let w = sweep.w[i];
                if w == 0.0 {
                    continue;
                }
                f += w * rho;
                let seed = w * drho * dpred;
                let mut add =
                    |to: NodeId, v: f64, point_adj: &mut Vec<f64>| match self.class[to as usize] {
                        Class::Start => start_adj[to as usize] += v,
                        Class::Curve => curve_adj[c * n + to as usize] += v,
                        Class::Axis => axis_adj[a * n + to as usize] += v,
                        Class::Point => point_adj[to as usize] += v,
                        // Edges end at parameter-dependent nodes only.
                        Class::Data => unreachable!("an edge into a data node"),
                    };
                for &id in &self.forward[3] {
                    point_adj[id as usize] = 0.0;
                }
                // A law whose prediction depends on no parameter has no
                // gradient to pass back.
                if self.class[self.value as usize] != Class::Data {
                    add(self.value, seed, &mut point_adj);
                }
                for e in &self.edges[3] {
                    let v = point_adj[e.from as usize] * get(e.partial);
                    add(e.to, v, &mut point_adj);
                }
                count(Class::Point, self.edges[3].len(), true);
            }
        }

        // The hoisted nodes' adjoints, once each.
        for c in 0..nc {
            for e in &self.edges[1] {
                let from = curve_adj[c * n + e.from as usize];
                let p = match self.class[e.partial as usize] {
                    Class::Start => start[e.partial as usize],
                    Class::Data => data.get(Class::Curve, c, e.partial),
                    _ => curve[c * n + e.partial as usize],
                };
                match self.class[e.to as usize] {
                    Class::Start => start_adj[e.to as usize] += from * p,
                    _ => curve_adj[c * n + e.to as usize] += from * p,
                }
            }
            count(Class::Curve, self.edges[1].len(), true);
        }
        for a in 0..sweep.axis_values.len() {
            for e in &self.edges[2] {
                let from = axis_adj[a * n + e.from as usize];
                let p = match self.class[e.partial as usize] {
                    Class::Start => start[e.partial as usize],
                    Class::Data => data.get(Class::Axis, a, e.partial),
                    _ => axis[a * n + e.partial as usize],
                };
                match self.class[e.to as usize] {
                    Class::Start => start_adj[e.to as usize] += from * p,
                    _ => axis_adj[a * n + e.to as usize] += from * p,
                }
            }
            count(Class::Axis, self.edges[2].len(), true);
        }
        for e in &self.edges[0] {
            start_adj[e.to as usize] += start_adj[e.from as usize] * start[e.partial as usize];
        }
        count(Class::Start, self.edges[0].len(), true);
        let grad = (0..self.n_params)
            .map(|p| self.param_node[p].map_or(0.0, |id| start_adj[id as usize]))
            .collect();
        (f, grad)
    }
}

/// Which variables each node depends on and whether it depends on a
/// parameter, kept up to date as [`lower`] adds nodes.
struct Deps {
    mask: Vec<u64>,
    param: Vec<bool>,
}

impl Deps {
    fn of(&mut self, g: &Graph, id: NodeId) -> (u64, bool) {
        for i in self.mask.len()..g.len() {
            let n = g.node(i as NodeId);
            let (m, p) = match n {
                Node::Var(v) => (1u64 << v, false),
                Node::Param(_) => (0, true),
                _ => n.operands().fold((0, false), |(m, p), o| {
                    (m | self.mask[o as usize], p || self.param[o as usize])
                }),
            };
            self.mask.push(m);
            self.param.push(p);
        }
        (self.mask[id as usize], self.param[id as usize])
    }
}

/// Rewrite the cone of `root` so that the evaluators' loops have neither
/// powers nor divisions where one exp, one log or one multiplication does:
/// - x^y as exp(y ln x), except for small integer constant exponents:
///   x^2, x^3 and x^4 as products (defined for x < 0 and a few
///   multiplications), other small integers as powers. The derivatives
///   then reuse both transcendentals: d/dy is x^y ln x and d/dx is x^y y
///   / x, so a power costs one log and one exp in all, as the hand-written
///   kernels have it;
/// - a / exp(e), and so a / x^y, as a * exp(-e): no division, and the
///   negation goes to the operand of e evaluated least often (-beta once
///   per start in B exp(-beta ln(D + t2)), -ln D once per fit in B
///   exp(beta (-ln D)));
/// - a / c, c a constant, as a * (1/c);
/// - a / b otherwise as a * (1/b): divisions by one node then share one
///   reciprocal, with each other and with the derivatives.
///
/// `level` classes a node by its variables.
pub(crate) fn lower(g: &mut Graph, root: NodeId, level: &dyn Fn(u64) -> Class) -> NodeId {
    let mut deps = Deps {
        mask: Vec::new(),
        param: Vec::new(),
    };
    // How often a node is evaluated per parameter vector, as a rank:
    // data and constants never, then start, curve, axis and point nodes.
    let mut rank = |g: &Graph, id: NodeId| {
        let (m, p) = deps.of(g, id);
        if p {
            1 + level(m) as u8
        } else {
            0
        }
    };
    let mut map: Vec<Option<NodeId>> = vec![None; root as usize + 1];
    for i in 0..=root as usize {
        let m = |o: NodeId, map: &[Option<NodeId>]| map[o as usize].unwrap_or(o);
        let id = i as NodeId;
        let new = match g.node(id) {
            Node::Pow(x, y) => {
                let (x, y) = (m(x, &map), m(y, &map));
                match g.constant(y) {
                    Some(2.0) => g.mul(x, x),
                    Some(3.0) => {
                        let x2 = g.mul(x, x);
                        g.mul(x2, x)
                    }
                    Some(4.0) => {
                        let x2 = g.mul(x, x);
                        g.mul(x2, x2)
                    }
                    Some(c) if c == c.round() && c.abs() <= 16.0 => g.pow(x, y),
                    _ => {
                        let l = g.log(x);
                        let e = g.mul(y, l);
                        g.exp(e)
                    }
                }
            }
            Node::Neg(a) => {
                let a = m(a, &map);
                g.neg(a)
            }
            Node::Add(a, b) => {
                let (a, b) = (m(a, &map), m(b, &map));
                g.add(a, b)
            }
            Node::Sub(a, b) => {
                let (a, b) = (m(a, &map), m(b, &map));
                g.sub(a, b)
            }
            Node::Mul(a, b) => {
                let (a, b) = (m(a, &map), m(b, &map));
                g.mul(a, b)
            }
            Node::Div(a, b) => {
                let (a, b) = (m(a, &map), m(b, &map));
                let recip = g.constant(b).map(|c| 1.0 / c);
                match (g.node(b), recip) {
                    // A reciprocal that is not exactly representable
                    // enough (0, subnormal, infinite) keeps the division.
                    (_, Some(r)) if r.is_normal() => {
                        let r = g.num(r);
                        g.mul(a, r)
                    }
                    (_, Some(_)) => g.div(a, b),
                    (Node::Fn1(Func::Exp, e), None) => {
                        let ne = match g.node(e) {
                            Node::Mul(p, q) if rank(g, p) <= rank(g, q) => {
                                let np = g.neg(p);
                                g.mul(np, q)
                            }
                            Node::Mul(p, q) => {
                                let nq = g.neg(q);
                                g.mul(p, nq)
                            }
                            _ => g.neg(e),
                        };
                        let x = g.exp(ne);
                        g.mul(a, x)
                    }
                    _ if g.constant(a) == Some(1.0) => g.div(a, b),
                    _ => {
                        let one = g.num(1.0);
                        let r = g.div(one, b);
                        g.mul(a, r)
                    }
                }
            }
            Node::Fn1(f, a) => {
                let a = m(a, &map);
                g.call(f, &[a])
            }
            Node::Fn2(f, a, b) => {
                let (a, b) = (m(a, &map), m(b, &map));
                g.call(f, &[a, b])
            }
            Node::Steps(d, ops) => {
                let n = super::steps::n_args(d);
                let mo: Vec<NodeId> = ops[..2 + n].iter().map(|&o| m(o, &map)).collect();
                g.steps(d, mo[0], mo[1], &mo[2..])
            }
            Node::Const(_) | Node::Var(_) | Node::Param(_) => id,
        };
        map[i] = Some(new);
    }
    map[root as usize].unwrap_or(root)
}

/// Reassociate the per-point sum at `root` so that its hoisted terms are
/// added before the per-point ones: E + A/N^a + B/D^b + C/T^c becomes
/// (E + A/N^a + C/T^c) + B/D^b, one addition per point instead of two.
/// Only sums of point-class nodes are opened; exact in real arithmetic,
/// and the rounding differs only in the last bits.
fn regroup(g: &mut Graph, root: NodeId, class: &dyn Fn(NodeId) -> Class) -> NodeId {
    if class(root) != Class::Point {
        return root;
    }
    let mut terms: Vec<(NodeId, bool)> = Vec::new();
    let mut stack = vec![(root, false)];
    while let Some((id, neg)) = stack.pop() {
        match g.node(id) {
            Node::Add(a, b) if class(id) == Class::Point => {
                stack.push((b, neg));
                stack.push((a, neg));
            }
            Node::Sub(a, b) if class(id) == Class::Point => {
                stack.push((b, !neg));
                stack.push((a, neg));
            }
            Node::Neg(a) if class(id) == Class::Point => stack.push((a, !neg)),
            _ => terms.push((id, neg)),
        }
    }
    if terms.len() < 3 {
        return root;
    }
    // Hoisted parts first (start and curve terms together, then the axis
    // terms), then the per-point ones, each in their original order.
    let rank = |id: NodeId| match class(id) {
        Class::Start | Class::Curve => 0,
        Class::Axis => 1,
        Class::Point | Class::Data => 2,
    };
    terms.sort_by_key(|&(id, _)| rank(id));
    let mut acc: Option<NodeId> = None;
    for (id, neg) in terms {
        acc = Some(match (acc, neg) {
            (None, false) => id,
            (None, true) => g.neg(id),
            (Some(s), false) => g.add(s, id),
            (Some(s), true) => g.sub(s, id),
        });
    }
    acc.unwrap_or(root)
}
