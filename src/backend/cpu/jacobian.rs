//! A compiled law's residuals and their Jacobian over a set of rows, summed
//! into what a least-squares optimiser needs: f = sum_i w_i rho(r_i),
//! g = J^T W psi(r) and the Gauss-Newton matrix J^T W psi'(r) J, with J the
//! derivatives of the residuals by chosen parameters (raw units). For mse
//! rho = r^2 / 2, psi = r and psi' = 1; for Huber psi is r clipped to
//! [-delta, delta] and psi' is 1 inside, 0 beyond (a search may take
//! psi(r)/r in its place: [`HuberCurvature`]). The residual is pred - y,
//! or ln pred - y in log space (y is then already a log). On request it
//! also sums the middle of the sandwich covariance, J^T W^2 psi^2 J.
//!
//! The grid evaluator beside it (`compiled`) forms only the gradient (a
//! reverse pass), which cannot give J^T J; this one evaluates the law's
//! value and its derivative nodes forward over tiles of rows, so that every
//! node is one branch-free loop the compiler vectorises, and sums J^T J by
//! where each column lives: a column constant over the keys of a hoisted
//! level is multiplied out once per key, not once per row. Nodes
//! without parameters are computed once, when the evaluator is built;
//! nodes without variables once per parameter vector; a node whose
//! variables take few distinct values over the rows (a curve's N, a
//! width) once per distinct value, before the rows read it. A power of
//! positive data by a parameter reads the cached log of its base: one exp.

use std::collections::HashMap;

use crate::law::dag::{Node, NodeId};
use crate::law::CompiledLaw;
use crate::objective::{LossKind, Objective, Space};

use crate::fastmath::{exact_exp as exp, exact_ln_recip as ln_recip, mul_add};
use crate::law::vector::{binary, node_op, unary, V};

/// Rows per tile: the arrays of a law with a few dozen nodes stay in L1/L2.
const TILE: usize = 256;
/// Independent partial sums of a dot product: enough to vectorise it.
const LANES: usize = 8;

/// Where a node's value lives.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Src {
    /// Not needed by the outputs.
    Unused,
    /// No variable: one value per parameter vector (constants included).
    Scalar,
    /// No parameter: a column of `data`, computed once.
    Data(usize),
    /// Both: a tile array of the workspace.
    Row(usize),
    /// Both, hoisted: one value per key of a level (the distinct values
    /// of the node's variables), in a key array of the workspace.
    Key { level: usize, slot: usize },
}

/// The distinct values of a set of variables over the rows.
#[derive(Debug, Clone)]
struct Level {
    /// Per row, its key.
    row_key: Vec<u32>,
    /// Per key, its first row.
    rep: Vec<usize>,
}

/// An operand of a hoisted node, over the keys of its level.
#[derive(Debug, Clone, Copy)]
enum KeySrc {
    Scalar(NodeId),
    /// A column of `key_data`.
    Data(usize),
    /// A key array of the same level.
    Key(usize),
    /// A key array of a coarser level, read through a column of `proj`.
    Proj(usize, usize),
}

/// A hoisted node: its level, key array, and how it is formed.
#[derive(Debug, Clone)]
struct Hoisted {
    level: usize,
    slot: usize,
    node: Node,
    ops: Vec<(NodeId, KeySrc)>,
    /// For a power of positive data: ln base over the level's keys (a
    /// column of `key_data`); the exponent is `ops[1]`.
    pow_ln: Option<usize>,
}

/// A level holds so few keys (at most this fraction of the rows) that its
/// nodes are hoisted out of the rows.
const HOIST_FRACTION: f64 = 0.5;

/// How a row node is formed.
#[derive(Debug, Clone, Copy)]
enum Op {
    Node(Node),
    /// base^e of a positive data base, as exp(e ln base) with ln base a
    /// data column.
    PowData {
        ln_base: usize,
        e: NodeId,
    },
}

/// Where a Jacobian column's values live, which decides how its sums
/// are formed.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Home {
    /// One value for every row (the column of a constant term's factor).
    One,
    /// One value per key of a hoisted level.
    Key(usize),
    /// One value per row.
    Row,
}

/// The Jacobian columns that share a home.
#[derive(Debug, Clone)]
struct Group {
    home: Home,
    /// Their positions among the wanted parameters.
    cols: Vec<usize>,
}

/// How the block of J^T C J between two groups is summed (C the rows'
/// curvature weights). Both groups' columns are constant over the keys of
/// the finer home when one home's variables are among the other's: the
/// block is then a sum over those keys of (C summed over the key's rows)
/// times the columns' values, and the rows only add their weight into
/// one sum per key. Otherwise the rows add C times the finer group's
/// values into sums per key of the coarser one.
#[derive(Debug, Clone)]
enum Pair {
    /// Over the keys of `b`'s home, `a`'s values read at the key `proj`
    /// maps each to (`None`: the same key, or `a`'s one value).
    Keyed {
        a: usize,
        b: usize,
        proj: Option<Vec<u32>>,
    },
    /// Per row, Q[key of a][m] += c D_m for `b`'s columns m (`b`'s values
    /// gathered or per row); the block is then a sum over `a`'s keys.
    Cross { a: usize, b: usize },
    /// Both per row: dot products over the rows.
    Rows { a: usize, b: usize },
}

/// The sums of J^T C J the rows add to: per group, C summed per key of
/// its home (`One`: one key); per `Cross` pair its Q; per `Rows` pair its
/// dot products.
#[derive(Debug, Clone, Default)]
struct Moments {
    s: Vec<Vec<f64>>,
    q: Vec<Vec<f64>>,
    dots: Vec<Vec<f64>>,
}

/// Weights of rows by their index among the rows given (see
/// [`RowJacobian::evaluate_as`]).
pub type Weights<'a> = dyn Fn(usize) -> f64 + Sync + 'a;

/// The curvature weight of a Huber residual r beyond delta in the matrix
/// J^T W C J (inside delta, and for mse, it is 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HuberCurvature {
    /// psi'(r) = 0: the Hessian's Gauss-Newton part, for the polish near
    /// an optimum (Newton's convergence) and the covariance.
    #[default]
    Hessian,
    /// psi(r)/r = delta/|r|: reweighted least squares, for a search. From
    /// a start whose residuals all lie beyond delta the Hessian's is 0 and
    /// gives Levenberg-Marquardt no step; this one majorises rho there and
    /// keeps every row's curvature.
    Reweighted,
}

/// What an evaluation sums besides f, g and h, under which weights and
/// curvature.
#[derive(Default)]
struct Asked<'a> {
    /// The sandwich's middle, J^T W^2 psi^2 J.
    meat: Option<&'a mut [f64]>,
    /// Weights of the rows other than their own.
    weight: Option<&'a Weights<'a>>,
    curvature: HuberCurvature,
}

/// Residuals and Jacobian of a law over fixed rows.
#[derive(Debug, Clone)]
pub struct RowJacobian {
    nodes: Vec<Node>,
    src: Vec<Src>,
    /// Nodes evaluated once per parameter vector, in order.
    scalars: Vec<NodeId>,
    /// Row nodes in order: slot and how it is formed.
    rows: Vec<(usize, Op)>,
    n_slots: usize,
    levels: Vec<Level>,
    /// Hoisted nodes in order, their key arrays, and those the rows read
    /// (level, key array, tile slot), gathered at the start of each tile.
    hoisted: Vec<Hoisted>,
    n_key_slots: usize,
    gathers: Vec<(usize, usize, usize)>,
    /// Per node, the tile slot of its gathered values (hoisted nodes).
    tile_slot: Vec<usize>,
    /// Data columns over the keys of a level, and key-to-key maps from a
    /// level to a coarser one.
    key_data: Vec<Vec<f64>>,
    proj: Vec<Vec<u32>>,
    /// Data columns, one value per row.
    data: Vec<Vec<f64>>,
    y: Vec<f64>,
    w: Vec<f64>,
    /// Per row summed, its index among the rows given.
    keep: Vec<usize>,
    log: bool,
    /// Huber's delta; `None` for mse.
    huber: Option<f64>,
    value: NodeId,
    /// The derivative node of every wanted parameter.
    jac: Vec<NodeId>,
    /// The columns by home, and how each block of J^T J is summed.
    groups: Vec<Group>,
    pairs: Vec<Pair>,
    /// Per group and tile, the tile's runs of rows with one key of the
    /// group's home (see [`find_runs`]).
    runs: Vec<Vec<Option<Runs>>>,
    /// Per level and tile, the tile's runs of rows whose keys count up by
    /// one (see [`find_steps`]).
    steps: Vec<Vec<Option<Runs>>>,
    /// Lengths of the sums an evaluation zeroes: per group the gradient's
    /// and the curvature's, per pair its Q and its dot products.
    sizes: [Vec<usize>; 4],
}

/// Runs of consecutive rows with one key: (start, end, key), rows
/// counted from the tile's first.
type Runs = Vec<(usize, usize, u32)>;

/// Per-thread arrays, reused from one parameter vector to the next (and
/// from one evaluator to another: they grow to fit).
#[derive(Debug, Clone, Default)]
pub struct Workspace {
    scalars: Vec<f64>,
    vals: Vec<Vec<f64>>,
    keys: Vec<Vec<f64>>,
    /// Projected operands of a hoisted node.
    tmp: [Vec<f64>; 2],
    r: Vec<f64>,
    /// w psi(r), and the curvature weight (Huber only: for mse it is w).
    wr: Vec<f64>,
    wc: Vec<f64>,
    /// Weights of a tile given by the caller.
    wt: Vec<f64>,
    /// The rows' gradient weights (w psi, times d residual / d pred) and
    /// curvature weights (see `wc`, times its square), and their
    /// squares for the sandwich.
    a: Vec<f64>,
    c: Vec<f64>,
    a2: Vec<f64>,
    /// A per-row column times the curvature weights.
    cx: Vec<f64>,
    /// Per group, the gradient weights summed per key (`Row`: the
    /// gradient's dot products); the curvature's sums, and the
    /// sandwich's.
    rsum: Vec<Vec<f64>>,
    curv: Moments,
    meat: Moments,
    /// d residual / d pred (1/pred in log space).
    scale: Vec<f64>,
}

impl RowJacobian {
    /// The law over rows whose variables are `vars[v][row]`, with targets
    /// `y` (logs in log space) and weights `w`; derivatives by the
    /// parameters `wanted`, in that order. Rows of weight 0 add nothing
    /// and are left out.
    pub fn new(
        law: &CompiledLaw,
        vars: &[Vec<f64>],
        y: &[f64],
        w: &[f64],
        objective: Objective,
        wanted: &[usize],
    ) -> RowJacobian {
        let jac: Vec<NodeId> = wanted.iter().map(|&p| law.grad[p]).collect();
        let last = jac.iter().copied().fold(law.value, NodeId::max) as usize;
        let nodes: Vec<Node> = law.graph.nodes()[..=last].to_vec();
        let keep: Vec<usize> = (0..y.len()).filter(|&r| w[r] != 0.0).collect();
        let mut needed = vec![false; last + 1];
        for &o in jac.iter().chain([&law.value]) {
            needed[o as usize] = true;
        }
        for i in (0..=last).rev() {
            if needed[i] {
                for o in nodes[i].operands() {
                    needed[o as usize] = true;
                }
            }
        }
        let (mut has_var, mut has_param) = (vec![false; last + 1], vec![false; last + 1]);
        for (i, n) in nodes.iter().enumerate() {
            has_var[i] = matches!(n, Node::Var(_)) || n.operands().any(|o| has_var[o as usize]);
            has_param[i] =
                matches!(n, Node::Param(_)) || n.operands().any(|o| has_param[o as usize]);
        }
        // Data nodes' values row by row (the reference operations: once
        // per fit, exactness over speed).
        let data_ids: Vec<usize> = (0..=last)
            .filter(|&i| needed[i] && has_var[i] && !has_param[i])
            .collect();
        let mut data: Vec<Vec<f64>> = vec![Vec::with_capacity(keep.len()); data_ids.len()];
        // Their operands are data nodes and constants.
        let mut at: Vec<f64> = nodes
            .iter()
            .map(|n| match n {
                Node::Const(c) => *c,
                _ => f64::NAN,
            })
            .collect();
        for &r in &keep {
            for (c, &i) in data_ids.iter().enumerate() {
                let x = nodes[i].eval(&|o| at[o as usize], &|v| vars[v as usize][r], &[]);
                at[i] = x;
                data[c].push(x);
            }
        }
        let mut src = vec![Src::Unused; last + 1];
        for (c, &i) in data_ids.iter().enumerate() {
            src[i] = Src::Data(c);
        }
        // Levels: the distinct values of each set of variables that a
        // node with parameters depends on.
        let masks = law.graph.var_masks();
        let n_rows = keep.len();
        let mut levels: Vec<Level> = Vec::new();
        let mut level_of: HashMap<u64, usize> = HashMap::new();
        let mut hoist: Vec<bool> = Vec::new();
        let mut level_mask: Vec<u64> = Vec::new();
        let (mut scalars, mut rows, mut n_slots) = (Vec::new(), Vec::new(), 0);
        let mut hoisted: Vec<Hoisted> = Vec::new();
        let mut n_key_slots = 0;
        let mut key_data: Vec<Vec<f64>> = Vec::new();
        let mut key_data_of: HashMap<(usize, usize), usize> = HashMap::new();
        let mut proj: Vec<Vec<u32>> = Vec::new();
        let mut proj_of: HashMap<(usize, usize), usize> = HashMap::new();
        let mut ln_of: Vec<Option<usize>> = vec![None; last + 1];
        for i in 0..=last {
            if !needed[i] || src[i] != Src::Unused {
                continue;
            }
            if !has_var[i] {
                scalars.push(i as NodeId);
                src[i] = Src::Scalar;
                continue;
            }
            // ln of a positive data base, for a power by a parameter.
            let pow_ln = match nodes[i] {
                Node::Pow(b, _) => match src[b as usize] {
                    Src::Data(c) if data[c].iter().all(|&x| x > 0.0 && x.is_finite()) => {
                        Some(*ln_of[b as usize].get_or_insert_with(|| {
                            data.push(data[c].iter().map(|x| x.ln()).collect());
                            data.len() - 1
                        }))
                    }
                    _ => None,
                },
                _ => None,
            };
            let mask = masks[i];
            let level = *level_of.entry(mask).or_insert_with(|| {
                let in_mask: Vec<usize> = (0..vars.len()).filter(|&v| mask >> v & 1 == 1).collect();
                let (row_key, rep) = if in_mask.len() <= 4 {
                    distinct_keys(&keep, |r| {
                        let mut key = [0u64; 4];
                        for (k, &v) in key.iter_mut().zip(&in_mask) {
                            *k = vars[v][r].to_bits();
                        }
                        key
                    })
                } else {
                    distinct_keys(&keep, |r| {
                        in_mask
                            .iter()
                            .map(|&v| vars[v][r].to_bits())
                            .collect::<Vec<u64>>()
                    })
                };
                hoist.push(rep.len() as f64 <= HOIST_FRACTION * n_rows as f64);
                level_mask.push(mask);
                levels.push(Level { row_key, rep });
                levels.len() - 1
            });
            if !hoist[level] {
                let op = match (nodes[i], pow_ln) {
                    (Node::Pow(_, e), Some(ln_base)) => Op::PowData { ln_base, e },
                    (n, _) => Op::Node(n),
                };
                rows.push((n_slots, op));
                src[i] = Src::Row(n_slots);
                n_slots += 1;
                continue;
            }
            // A hoisted node's operands have their variables among its
            // own: data and coarser levels are read per key.
            let mut key_col = |c: usize, data: &[Vec<f64>]| {
                *key_data_of.entry((c, level)).or_insert_with(|| {
                    key_data.push(levels[level].rep.iter().map(|&k| data[c][k]).collect());
                    key_data.len() - 1
                })
            };
            let mut ops = Vec::new();
            for o in nodes[i].operands() {
                let ks = match src[o as usize] {
                    Src::Scalar => KeySrc::Scalar(o),
                    Src::Data(c) => KeySrc::Data(key_col(c, &data)),
                    Src::Key { level: l, slot } if l == level => KeySrc::Key(slot),
                    Src::Key { level: l, slot } => {
                        let p = *proj_of.entry((level, l)).or_insert_with(|| {
                            let (from, to) = (&levels[level], &levels[l]);
                            proj.push(from.rep.iter().map(|&k| to.row_key[k]).collect());
                            proj.len() - 1
                        });
                        KeySrc::Proj(slot, p)
                    }
                    Src::Row(_) | Src::Unused => unreachable!(
                        "an operand's variables are among its node's: its level is hoisted too"
                    ),
                };
                ops.push((o, ks));
            }
            let pow_ln = pow_ln.map(|c| key_col(c, &data));
            hoisted.push(Hoisted {
                level,
                slot: n_key_slots,
                node: nodes[i],
                ops,
                pow_ln,
            });
            src[i] = Src::Key {
                level,
                slot: n_key_slots,
            };
            n_key_slots += 1;
        }
        let (groups, pairs) = plan_moments(&jac, &src, &levels, &level_mask);
        let runs = find_runs(&groups, &levels, keep.len());
        let steps = levels.iter().map(|l| find_steps(&l.row_key)).collect();
        let sizes = moment_sizes(&groups, &pairs, &levels);
        // Hoisted nodes the rows read: gathered into tile slots.
        let mut tile_slot = vec![usize::MAX; last + 1];
        let mut gathers = Vec::new();
        let mut read: Vec<NodeId> = vec![law.value];
        for pair in &pairs {
            if let Pair::Cross { b, .. } = pair {
                read.extend(groups[*b].cols.iter().map(|&c| jac[c]));
            }
        }
        for &(_, op) in &rows {
            match op {
                Op::Node(n) => read.extend(n.operands()),
                Op::PowData { e, .. } => read.push(e),
            }
        }
        for o in read {
            if let Src::Key { level, slot } = src[o as usize] {
                if tile_slot[o as usize] == usize::MAX {
                    tile_slot[o as usize] = n_slots;
                    gathers.push((level, slot, n_slots));
                    n_slots += 1;
                }
            }
        }
        RowJacobian {
            nodes,
            src,
            scalars,
            rows,
            n_slots,
            levels,
            hoisted,
            n_key_slots,
            gathers,
            tile_slot,
            key_data,
            proj,
            data,
            y: keep.iter().map(|&r| y[r]).collect(),
            w: keep.iter().map(|&r| w[r]).collect(),
            keep,
            log: objective.space == Space::Log,
            huber: (objective.loss == LossKind::Huber).then_some(objective.delta),
            value: law.value,
            jac,
            runs,
            steps,
            sizes,
            groups,
            pairs,
        }
    }

    /// Whether the loss is Huber's.
    pub fn huber(&self) -> bool {
        self.huber.is_some()
    }

    /// Rows summed over (those of weight 0 left out).
    pub fn rows(&self) -> usize {
        self.y.len()
    }

    /// The objective of predictions exact to rounding: f with every
    /// residual `ROUNDING` units in the last place of its target (at least
    /// of 1, in log space, where a target near 0 is the log of a loss
    /// near 1). At or below it the fit is exact, whatever its gradient
    /// says: the residuals are rounding.
    pub fn rounding_floor(&self) -> f64 {
        const ROUNDING: f64 = 8.0 * f64::EPSILON;
        self.y
            .iter()
            .zip(&self.w)
            .map(|(&y, &w)| {
                let size = if self.log { y.abs().max(1.0) } else { y.abs() };
                let r = ROUNDING * size;
                match self.huber {
                    Some(d) if r > d => w * d * (r - 0.5 * d),
                    _ => 0.5 * w * r * r,
                }
            })
            .sum()
    }

    /// Parameters the Jacobian has columns for.
    pub fn n_wanted(&self) -> usize {
        self.jac.len()
    }

    /// Grow `ws` to this evaluator's arrays.
    fn fit(&self, ws: &mut Workspace) {
        if ws.scalars.len() < self.nodes.len() {
            ws.scalars.resize(self.nodes.len(), 0.0);
        }
        if ws.keys.len() < self.n_key_slots {
            ws.keys.resize(self.n_key_slots, Vec::new());
        }
        if ws.vals.len() < self.n_slots {
            ws.vals.resize(self.n_slots, vec![0.0; TILE]);
        }
        for v in [
            &mut ws.r,
            &mut ws.wr,
            &mut ws.wc,
            &mut ws.wt,
            &mut ws.scale,
            &mut ws.a,
            &mut ws.c,
            &mut ws.a2,
            &mut ws.cx,
        ] {
            v.resize(TILE, 0.0);
        }
    }

    /// f = sum w rho(r) at the law's parameters `params` (returned), with
    /// J^T W psi into `g` and J^T W psi' J into `h` (row-major, both
    /// triangles). Not finite where the law is not.
    pub fn evaluate(
        &self,
        params: &[f64],
        ws: &mut Workspace,
        g: &mut [f64],
        h: &mut [f64],
    ) -> f64 {
        self.dispatch(params, ws, g, h, Asked::default())
    }

    /// [`Self::evaluate`] with Huber's curvature `curvature` and, where
    /// given, other weights: `weight(row)` for each row given to
    /// [`Self::new`] with a nonzero weight there (a resample of them: a
    /// bootstrap replicate, a fold), instead of the weights given.
    pub fn evaluate_as(
        &self,
        params: &[f64],
        ws: &mut Workspace,
        g: &mut [f64],
        h: &mut [f64],
        weight: Option<&Weights<'_>>,
        curvature: HuberCurvature,
    ) -> f64 {
        self.dispatch(
            params,
            ws,
            g,
            h,
            Asked {
                meat: None,
                weight,
                curvature,
            },
        )
    }

    /// [`Self::evaluate`], with J^T W^2 psi^2 J (the middle of the sandwich
    /// covariance) into `meat` too.
    pub fn evaluate_with_meat(
        &self,
        params: &[f64],
        ws: &mut Workspace,
        g: &mut [f64],
        h: &mut [f64],
        meat: &mut [f64],
    ) -> f64 {
        self.dispatch(
            params,
            ws,
            g,
            h,
            Asked {
                meat: Some(meat),
                ..Default::default()
            },
        )
    }

    fn dispatch(
        &self,
        params: &[f64],
        ws: &mut Workspace,
        g: &mut [f64],
        h: &mut [f64],
        asked: Asked<'_>,
    ) -> f64 {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU supports the features the function enables.
                return unsafe { self.eval_avx512(params, ws, g, h, asked) };
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                // SAFETY: as above.
                return unsafe { self.eval_avx2(params, ws, g, h, asked) };
            }
        }
        self.eval::<false>(params, ws, g, h, asked)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn eval_avx512(
        &self,
        p: &[f64],
        ws: &mut Workspace,
        g: &mut [f64],
        h: &mut [f64],
        asked: Asked<'_>,
    ) -> f64 {
        self.eval::<true>(p, ws, g, h, asked)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn eval_avx2(
        &self,
        p: &[f64],
        ws: &mut Workspace,
        g: &mut [f64],
        h: &mut [f64],
        asked: Asked<'_>,
    ) -> f64 {
        self.eval::<true>(p, ws, g, h, asked)
    }

    #[inline(always)]
    fn eval<const FMA: bool>(
        &self,
        params: &[f64],
        ws: &mut Workspace,
        g: &mut [f64],
        h: &mut [f64],
        asked: Asked<'_>,
    ) -> f64 {
        let Asked {
            meat,
            weight,
            curvature,
        } = asked;
        self.fit(ws);
        for &id in &self.scalars {
            let s = &ws.scalars;
            let x = self.nodes[id as usize].eval(&|o| s[o as usize], &|_| f64::NAN, params);
            ws.scalars[id as usize] = x;
        }
        for hz in &self.hoisted {
            let n_keys = self.levels[hz.level].rep.len();
            let mut out = std::mem::take(&mut ws.keys[hz.slot]);
            out.resize(n_keys, 0.0);
            let [t0, t1] = &mut ws.tmp;
            let mut tmp = [t0, t1].into_iter();
            let (keys, scalars) = (&ws.keys, &ws.scalars);
            let vs: Vec<(NodeId, V)> = hz
                .ops
                .iter()
                .map(|&(o, ks)| {
                    let v = match ks {
                        KeySrc::Scalar(o) => V::S(scalars[o as usize]),
                        KeySrc::Data(c) => V::A(&self.key_data[c]),
                        KeySrc::Key(s) => V::A(&keys[s]),
                        KeySrc::Proj(s, p) => {
                            let t = tmp.next().expect("at most two operands");
                            t.clear();
                            t.extend(self.proj[p].iter().map(|&k| keys[s][k as usize]));
                            V::A(t)
                        }
                    };
                    (o, v)
                })
                .collect();
            match hz.pow_ln {
                Some(c) => {
                    let lb = V::A(&self.key_data[c]);
                    binary!(&mut out[..], lb, vs[1].1, |l, e| exp::<FMA>(e * l));
                }
                None => {
                    let opnd = |o: NodeId| vs.iter().find(|x| x.0 == o).expect("an operand").1;
                    node_op::<FMA>(hz.node, &opnd, &mut out, params);
                }
            }
            ws.keys[hz.slot] = out;
        }
        self.clear_moments(ws, meat.is_some());
        let mut f = 0.0;
        let n_rows = self.y.len();
        let mut t0 = 0;
        while t0 < n_rows {
            let m = TILE.min(n_rows - t0);
            for &(level, slot, to) in &self.gathers {
                let (from, out) = (&ws.keys[slot], &mut ws.vals[to][..m]);
                match &self.steps[level][t0 / TILE] {
                    // Rows along a grid's axis read consecutive keys: copies.
                    Some(steps) => {
                        for &(s, e, k) in steps {
                            let k = k as usize;
                            out[s..e].copy_from_slice(&from[k..k + e - s]);
                        }
                    }
                    None => {
                        let keys = &self.levels[level].row_key[t0..t0 + m];
                        for (o, &k) in out.iter_mut().zip(keys) {
                            *o = from[k as usize];
                        }
                    }
                }
            }
            for &(slot, op) in &self.rows {
                let mut out = std::mem::take(&mut ws.vals[slot]);
                {
                    let opnd = |o: NodeId| self.operand(o, &ws.scalars, &ws.vals, t0, m);
                    let out = &mut out[..m];
                    match op {
                        Op::PowData { ln_base, e } => {
                            let lb = V::A(&self.data[ln_base][t0..t0 + m]);
                            binary!(out, lb, opnd(e), |l, e| exp::<FMA>(e * l));
                        }
                        Op::Node(node) => node_op::<FMA>(node, &opnd, out, params),
                    }
                }
                ws.vals[slot] = out;
            }
            let y = &self.y[t0..t0 + m];
            let w: &[f64] = match weight {
                None => &self.w[t0..t0 + m],
                Some(f) => {
                    for (o, &r) in ws.wt[..m].iter_mut().zip(&self.keep[t0..t0 + m]) {
                        *o = f(r);
                    }
                    &ws.wt[..m]
                }
            };
            let pred = self.operand(self.value, &ws.scalars, &ws.vals, t0, m);
            let (r, wr, scale) = (&mut ws.r[..m], &mut ws.wr[..m], &mut ws.scale[..m]);
            if self.log {
                binary!(r, pred, V::A(y), |p, y| ln_recip::<FMA>(p).0 - y);
                unary!(scale, pred, |p| ln_recip::<FMA>(p).1);
            } else {
                binary!(r, pred, V::A(y), |p, y| p - y);
            }
            // The weights of the gradient (w psi) and of the curvature.
            let reweighted = curvature == HuberCurvature::Reweighted;
            let wc: &[f64] = match self.huber {
                None => {
                    for ((o, &r), &w) in wr.iter_mut().zip(r.iter()).zip(w) {
                        *o = w * r;
                    }
                    f += 0.5 * dot::<FMA>(wr, r);
                    w
                }
                Some(delta) => {
                    let wc = &mut ws.wc[..m];
                    for (((o, c), &r), &w) in wr.iter_mut().zip(wc.iter_mut()).zip(r.iter()).zip(w)
                    {
                        let inside = r.abs() <= delta;
                        let rho = if inside {
                            0.5 * r * r
                        } else {
                            delta * (r.abs() - 0.5 * delta)
                        };
                        f += w * rho;
                        *o = w * r.clamp(-delta, delta);
                        *c = match (inside, reweighted) {
                            (true, _) => w,
                            (false, false) => 0.0,
                            (false, true) => w * delta / r.abs(),
                        };
                    }
                    wc
                }
            };
            // The rows' weights of J's raw derivatives: J = D * scale.
            let (a, c) = (&mut ws.a[..m], &mut ws.c[..m]);
            for i in 0..m {
                let s = if self.log { scale[i] } else { 1.0 };
                a[i] = wr[i] * s;
                c[i] = wc[i] * s * s;
            }
            let a2 = &mut ws.a2[..m];
            if meat.is_some() {
                for (o, &x) in a2.iter_mut().zip(a.iter()) {
                    *o = x * x;
                }
            }
            let with_meat = meat.is_some();
            let tile = TileSums {
                rj: self,
                scalars: &ws.scalars,
                vals: &ws.vals,
                runs: t0 / TILE,
                t0,
                m,
            };
            tile.gradient::<FMA>(&ws.a[..m], &mut ws.rsum);
            tile.moments::<FMA>(&ws.c[..m], &mut ws.curv, &mut ws.cx);
            if with_meat {
                tile.moments::<FMA>(&ws.a2[..m], &mut ws.meat, &mut ws.cx);
            }
            t0 += m;
        }
        let values = ColumnValues {
            rj: self,
            scalars: &ws.scalars,
            keys: &ws.keys,
        };
        values.gradient(&ws.rsum, g);
        values.assemble(&ws.curv, h);
        if let Some(meat) = meat {
            values.assemble(&ws.meat, meat);
        }
        f
    }

    /// Zeroed sums for one evaluation.
    fn clear_moments(&self, ws: &mut Workspace, meat: bool) {
        let reset = |v: &mut Vec<Vec<f64>>, sizes: &[usize]| {
            v.resize(sizes.len(), Vec::new());
            for (x, &k) in v.iter_mut().zip(sizes) {
                x.clear();
                x.resize(k, 0.0);
            }
        };
        let [rsum, s, q, dots] = &self.sizes;
        reset(&mut ws.rsum, rsum);
        let clear = |mom: &mut Moments| {
            reset(&mut mom.s, s);
            reset(&mut mom.q, q);
            reset(&mut mom.dots, dots);
        };
        clear(&mut ws.curv);
        if meat {
            clear(&mut ws.meat);
        }
    }

    /// Node `o`'s values over rows `t0..t0 + m`.
    #[inline(always)]
    fn operand<'a>(
        &'a self,
        o: NodeId,
        scalars: &[f64],
        vals: &'a [Vec<f64>],
        t0: usize,
        m: usize,
    ) -> V<'a> {
        match self.src[o as usize] {
            Src::Scalar => V::S(scalars[o as usize]),
            Src::Data(c) => V::A(&self.data[c][t0..t0 + m]),
            Src::Row(s) => V::A(&vals[s][..m]),
            Src::Key { .. } => V::A(&vals[self.tile_slot[o as usize]][..m]),
            Src::Unused => unreachable!("every operand of a needed node is needed"),
        }
    }
}

/// A tile's rows, for adding them into an evaluation's sums.
struct TileSums<'a> {
    rj: &'a RowJacobian,
    scalars: &'a [f64],
    vals: &'a [Vec<f64>],
    /// The tile's index.
    runs: usize,
    t0: usize,
    m: usize,
}

impl TileSums<'_> {
    /// Column `col`'s raw derivatives over the tile's rows.
    #[inline(always)]
    fn column(&self, col: usize) -> V<'_> {
        self.rj
            .operand(self.rj.jac[col], self.scalars, self.vals, self.t0, self.m)
    }

    /// Per key of a home, the key of each of the tile's rows.
    #[inline(always)]
    fn keys(&self, home: Home) -> Option<&[u32]> {
        match home {
            Home::Key(l) => Some(&self.rj.levels[l].row_key[self.t0..self.t0 + self.m]),
            _ => None,
        }
    }

    /// `x` summed per key of group `gi`'s home into `out`.
    #[inline(always)]
    fn sum_per_key(&self, gi: usize, x: &[f64], out: &mut [f64]) {
        match &self.rj.runs[gi][self.runs] {
            Some(runs) => {
                for &(s, e, k) in runs {
                    out[k as usize] += sum(&x[s..e]);
                }
            }
            None => {
                let home = self.rj.groups[gi].home;
                if let Home::Key(l) = home {
                    if let Some(steps) = &self.rj.steps[l][self.runs] {
                        for &(s, e, k) in steps {
                            let k = k as usize;
                            for (o, &v) in out[k..k + e - s].iter_mut().zip(&x[s..e]) {
                                *o += v;
                            }
                        }
                        return;
                    }
                }
                let keys = self.keys(home).expect("a keyed home");
                for (&k, &v) in keys.iter().zip(x) {
                    out[k as usize] += v;
                }
            }
        }
    }

    /// The gradient's sums of the rows' weights `a`.
    #[inline(always)]
    fn gradient<const FMA: bool>(&self, a: &[f64], rsum: &mut [Vec<f64>]) {
        for (gi, grp) in self.rj.groups.iter().enumerate() {
            let out = &mut rsum[gi];
            match grp.home {
                Home::One => out[0] += sum(a),
                Home::Key(_) => self.sum_per_key(gi, a, out),
                Home::Row => {
                    for (ci, &col) in grp.cols.iter().enumerate() {
                        out[ci] += match self.column(col) {
                            V::A(d) => dot::<FMA>(a, d),
                            V::S(x) => x * sum(a),
                        };
                    }
                }
            }
        }
    }

    /// J^T C J's sums of the rows' weights `c`.
    #[inline(always)]
    fn moments<const FMA: bool>(&self, c: &[f64], mom: &mut Moments, scratch: &mut [f64]) {
        let groups = &self.rj.groups;
        for (gi, grp) in groups.iter().enumerate() {
            let out = &mut mom.s[gi];
            match grp.home {
                Home::One => out[0] += sum(c),
                Home::Key(_) => self.sum_per_key(gi, c, out),
                Home::Row => {}
            }
        }
        for (pi, pair) in self.rj.pairs.iter().enumerate() {
            match *pair {
                Pair::Keyed { .. } => {}
                Pair::Cross { a, b } => {
                    let nb = groups[b].cols.len();
                    let q = &mut mom.q[pi];
                    let keys = self.keys(groups[a].home);
                    for (mi, &col) in groups[b].cols.iter().enumerate() {
                        let V::A(d) = self.column(col) else {
                            unreachable!("a finer group's values differ between rows")
                        };
                        match (keys, &self.rj.runs[a][self.runs]) {
                            (None, _) => q[mi] += dot::<FMA>(c, d),
                            (Some(_), Some(runs)) => {
                                for &(s, e, k) in runs {
                                    q[k as usize * nb + mi] += dot::<FMA>(&c[s..e], &d[s..e]);
                                }
                            }
                            (Some(keys), None) => {
                                for ((&k, &x), &y) in keys.iter().zip(c).zip(d) {
                                    q[k as usize * nb + mi] += x * y;
                                }
                            }
                        }
                    }
                }
                Pair::Rows { a, b } => {
                    let nb = groups[b].cols.len();
                    let cx = &mut scratch[..c.len()];
                    for (ia, &ca) in groups[a].cols.iter().enumerate() {
                        let V::A(x) = self.column(ca) else {
                            unreachable!("per-row columns are arrays")
                        };
                        for ((o, &w), &x) in cx.iter_mut().zip(c).zip(x) {
                            *o = w * x;
                        }
                        // Within one group, one triangle (the other mirrors it).
                        let from = if a == b { ia } else { 0 };
                        for (ib, &cb) in groups[b].cols.iter().enumerate().skip(from) {
                            let V::A(y) = self.column(cb) else {
                                unreachable!("per-row columns are arrays")
                            };
                            mom.dots[pi][ia * nb + ib] += dot::<FMA>(cx, y);
                        }
                    }
                }
            }
        }
    }
}

/// The values of the columns that are constant over keys, once an
/// evaluation's hoisted nodes are formed.
struct ColumnValues<'a> {
    rj: &'a RowJacobian,
    scalars: &'a [f64],
    keys: &'a [Vec<f64>],
}

impl ColumnValues<'_> {
    /// Column `col`'s values per key of its home (`One`: one value).
    fn of(&self, col: usize) -> &[f64] {
        let id = self.rj.jac[col] as usize;
        match self.rj.src[id] {
            Src::Scalar => &self.scalars[id..=id],
            Src::Key { slot, .. } => &self.keys[slot],
            _ => unreachable!("only columns constant over keys are read per key"),
        }
    }

    /// g = J^T (w psi) from the sums of the rows' weights per key.
    fn gradient(&self, rsum: &[Vec<f64>], g: &mut [f64]) {
        for (gi, grp) in self.rj.groups.iter().enumerate() {
            for (ci, &col) in grp.cols.iter().enumerate() {
                g[col] = match grp.home {
                    Home::Row => rsum[gi][ci],
                    _ => dot::<false>(self.of(col), &rsum[gi]),
                };
            }
        }
    }

    /// The symmetric matrix J^T C J (row-major, both triangles) from its
    /// sums.
    fn assemble(&self, mom: &Moments, h: &mut [f64]) {
        let n = self.rj.jac.len();
        let groups = &self.rj.groups;
        h.fill(0.0);
        for (pi, pair) in self.rj.pairs.iter().enumerate() {
            let (a, b) = match pair {
                Pair::Keyed { a, b, proj } => {
                    let sb = &mom.s[*b];
                    let mut sv = Vec::new();
                    for (ib, &cb) in groups[*b].cols.iter().enumerate() {
                        // C per key times column b, once for every column a.
                        let vb = self.of(cb);
                        sv.clear();
                        sv.extend(sb.iter().zip(vb).map(|(s, v)| s * v));
                        for (ia, &ca) in groups[*a].cols.iter().enumerate() {
                            // Within one group, one triangle (mirrored below).
                            if a == b && ia > ib {
                                continue;
                            }
                            let va = self.of(ca);
                            let v = match proj {
                                Some(p) => {
                                    let mut acc = [0.0; LANES];
                                    for (k, (&x, &pk)) in sv.iter().zip(p).enumerate() {
                                        acc[k % LANES] += x * va[pk as usize];
                                    }
                                    acc.iter().sum()
                                }
                                None if va.len() == 1 => va[0] * sum(&sv),
                                None => dot::<false>(&sv, va),
                            };
                            h[ca * n + cb] = v;
                            h[cb * n + ca] = v;
                        }
                    }
                    (*a, *b)
                }
                Pair::Cross { a, b } => {
                    let (q, nb) = (&mom.q[pi], groups[*b].cols.len());
                    for &ca in &groups[*a].cols {
                        for (ka, &va) in self.of(ca).iter().enumerate() {
                            for (mi, &cb) in groups[*b].cols.iter().enumerate() {
                                h[ca * n + cb] += va * q[ka * nb + mi];
                            }
                        }
                    }
                    (*a, *b)
                }
                Pair::Rows { a, b } => {
                    let nb = groups[*b].cols.len();
                    for (ia, &ca) in groups[*a].cols.iter().enumerate() {
                        for (ib, &cb) in groups[*b].cols.iter().enumerate() {
                            let v = if a == b && ib < ia {
                                mom.dots[pi][ib * nb + ia]
                            } else {
                                mom.dots[pi][ia * nb + ib]
                            };
                            h[ca * n + cb] = v;
                        }
                    }
                    (*a, *b)
                }
            };
            if a != b {
                for &ca in &groups[a].cols {
                    for &cb in &groups[b].cols {
                        h[cb * n + ca] = h[ca * n + cb];
                    }
                }
            }
        }
    }
}

/// Per group and tile, the runs of rows with one key of the group's home
/// (a curve's rows share their N): a sum over a run is then one dot
/// product, not a read-modify-write of the same sum per row. `None`
/// where a home has no keys or its runs are too short to pay (a row or
/// two: the rows then scatter into their keys' sums).
fn find_runs(groups: &[Group], levels: &[Level], n_rows: usize) -> Vec<Vec<Option<Runs>>> {
    groups
        .iter()
        .map(|grp| match grp.home {
            Home::Key(l) => tile_runs(&levels[l].row_key, 0, 4),
            _ => vec![None; n_rows.div_ceil(TILE)],
        })
        .collect()
}

/// Per tile, the runs of rows whose keys count up by one: a sweep's rows
/// along a shared axis grid read its values in order, so a gather is a
/// copy and a sum per key a vector add. `None` where runs are too short
/// to pay (under 8 rows on average).
fn find_steps(row_key: &[u32]) -> Vec<Option<Runs>> {
    tile_runs(row_key, 1, 8)
}

/// Per tile of `row_key`, its runs of rows whose keys go up by `step` from
/// one row to the next: (start, end, first key), rows counted from the
/// tile's first; `None` where the runs average under `min_len` rows.
fn tile_runs(row_key: &[u32], step: u32, min_len: usize) -> Vec<Option<Runs>> {
    row_key
        .chunks(TILE)
        .map(|keys| {
            let mut list = Vec::new();
            let mut start = 0;
            for i in 1..=keys.len() {
                if i == keys.len() || keys[i] != keys[i - 1].wrapping_add(step) {
                    list.push((start, i, keys[start]));
                    start = i;
                }
            }
            (list.len() * min_len <= keys.len()).then_some(list)
        })
        .collect()
}

/// The lengths of an evaluation's sums (see [`RowJacobian::sizes`]).
fn moment_sizes(groups: &[Group], pairs: &[Pair], levels: &[Level]) -> [Vec<usize>; 4] {
    let n_keys = |h: Home| match h {
        Home::One => 1,
        Home::Key(l) => levels[l].rep.len(),
        Home::Row => 0,
    };
    let rsum = groups
        .iter()
        .map(|g| match g.home {
            Home::Row => g.cols.len(),
            h => n_keys(h),
        })
        .collect();
    let s = groups.iter().map(|g| n_keys(g.home)).collect();
    let q = pairs
        .iter()
        .map(|p| match p {
            Pair::Cross { a, b } => n_keys(groups[*a].home) * groups[*b].cols.len(),
            _ => 0,
        })
        .collect();
    let dots = pairs
        .iter()
        .map(|p| match p {
            Pair::Rows { a, b } => groups[*a].cols.len() * groups[*b].cols.len(),
            _ => 0,
        })
        .collect();
    [rsum, s, q, dots]
}

/// The Jacobian's columns grouped by where their values live, and how
/// each block of J^T J between two groups (a group with itself included)
/// is summed: see [`Pair`].
fn plan_moments(
    jac: &[NodeId],
    src: &[Src],
    levels: &[Level],
    level_mask: &[u64],
) -> (Vec<Group>, Vec<Pair>) {
    let mut groups: Vec<Group> = Vec::new();
    for (c, &id) in jac.iter().enumerate() {
        let home = match src[id as usize] {
            Src::Scalar => Home::One,
            Src::Key { level, .. } => Home::Key(level),
            Src::Data(_) | Src::Row(_) => Home::Row,
            Src::Unused => unreachable!("a wanted column is needed"),
        };
        match groups.iter_mut().find(|g| g.home == home) {
            Some(g) => g.cols.push(c),
            None => groups.push(Group {
                home,
                cols: vec![c],
            }),
        }
    }
    // Keys of a home, and whether one home's variables are among the
    // other's (its keys then a coarsening of the other's).
    let keys = |h: Home| match h {
        Home::One => 1,
        Home::Key(l) => levels[l].rep.len(),
        Home::Row => usize::MAX,
    };
    let within = |x: Home, y: Home| match (x, y) {
        (Home::One, _) => true,
        (Home::Key(a), Home::Key(b)) => level_mask[a] & !level_mask[b] == 0,
        _ => false,
    };
    let mut pairs = Vec::new();
    for x in 0..groups.len() {
        for y in x..groups.len() {
            let (hx, hy) = (groups[x].home, groups[y].home);
            pairs.push(if hx == Home::Row && hy == Home::Row {
                Pair::Rows { a: x, b: y }
            } else if hy != Home::Row && within(hx, hy) || hx != Home::Row && within(hy, hx) {
                // `a` the coarser: summed over the keys of `b`'s home.
                let (a, b) = if within(hx, hy) { (x, y) } else { (y, x) };
                let proj = match (groups[a].home, groups[b].home) {
                    (Home::Key(la), Home::Key(lb)) if la != lb => Some(
                        levels[lb]
                            .rep
                            .iter()
                            .map(|&row| levels[la].row_key[row])
                            .collect(),
                    ),
                    _ => None,
                };
                Pair::Keyed { a, b, proj }
            } else {
                // Sums per key of the home with fewer keys.
                let (a, b) = if keys(hx) <= keys(hy) { (x, y) } else { (y, x) };
                Pair::Cross { a, b }
            });
        }
    }
    (groups, pairs)
}

/// The sum of `x` in [`LANES`] partial sums: a plain f64 sum is one long
/// chain of dependent adds, which the compiler may not reorder.
#[inline(always)]
fn sum(x: &[f64]) -> f64 {
    let mut acc = [0.0; LANES];
    let c = x.chunks_exact(LANES);
    let r = c.remainder();
    for v in c {
        for l in 0..LANES {
            acc[l] += v[l];
        }
    }
    for (l, v) in r.iter().enumerate() {
        acc[l] += v;
    }
    acc.iter().sum()
}

/// sum a_i b_i in `LANES` partial sums.
#[inline(always)]
fn dot<const FMA: bool>(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..LANES {
            acc[l] = mul_add::<FMA>(x[l], y[l], acc[l]);
        }
    }
    for (l, (x, y)) in ra.iter().zip(rb).enumerate() {
        acc[l] = mul_add::<FMA>(*x, *y, acc[l]);
    }
    acc.iter().sum()
}

/// Each row of `keep` numbered by its distinct `key` (in order of first
/// appearance), and each key's first row: a row with the key of the row
/// before (consecutive points of one curve) costs no lookup. Fx hashing:
/// the keys are the user's own numbers, so SipHash's resistance to chosen
/// collisions buys nothing, and it was most of the build's time.
fn distinct_keys<K: std::hash::Hash + Eq>(
    keep: &[usize],
    key: impl Fn(usize) -> K,
) -> (Vec<u32>, Vec<usize>) {
    let mut index: rustc_hash::FxHashMap<K, u32> = Default::default();
    let (mut row_key, mut rep) = (Vec::with_capacity(keep.len()), Vec::new());
    let mut prev: Option<K> = None;
    for (k, &r) in keep.iter().enumerate() {
        let kr = key(r);
        if prev.as_ref() == Some(&kr) {
            row_key.push(row_key[k - 1]);
            continue;
        }
        let next = rep.len() as u32;
        let id = match index.get(&kr) {
            Some(&id) => id,
            None => {
                index.insert(key(r), next);
                rep.push(k);
                next
            }
        };
        row_key.push(id);
        prev = Some(kr);
    }
    (row_key, rep)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// f, g, the Gauss-Newton matrix and the sandwich's middle against sums
    /// of the reference interpreter's value and gradient, row by row, in
    /// both spaces and for both losses (Huber's delta just above the
    /// median residual, so rows fall on both sides of it), for laws with powers
    /// of data, powers of sums, exp, log, sqrt, tanh and trigonometry.
    #[test]
    fn sums_match_the_reference_interpreter() {
        let cases = [
            (
                "-E + A/N^alpha + B/(D + t)^beta",
                vec![1.5, 300.0, 0.3, 900.0, 1e3, 0.4],
            ),
            (
                "exp(a*log(N) + b*log(D) + c*log(N)*log(D) + d)",
                vec![-0.1, -0.05, 0.002, 2.0],
            ),
            (
                "E + A*sqrt(N)/D^alpha + C*exp(-k*D/N)",
                vec![1.2, 0.5, 0.3, 0.7, 2e-3],
            ),
            ("E + A*(1 - tanh(k*log(D/N)))", vec![1.5, 0.8, 0.3]),
        ];
        let rows = 601; // more than two tiles, and a ragged last one
        let n: Vec<f64> = (0..rows).map(|i| 1e3 * (1.0 + (i % 17) as f64)).collect();
        // D per row, or shared by the rows as a sweep's curves share a
        // token grid (N and D both hoisted, neither a coarsening of the
        // other: their block is summed per N).
        let d_rows: Vec<f64> = (0..rows).map(|i| 1e4 * (1.0 + i as f64 / 7.0)).collect();
        let d_grid: Vec<f64> = (0..rows).map(|i| 1e4 * (1.0 + (i / 17) as f64)).collect();
        for (formula, p, d) in cases
            .iter()
            .flat_map(|(f, p)| [(f, p, &d_rows), (f, p, &d_grid)])
        {
            let p = p.clone();
            let law = CompiledLaw::from_formula(formula, &["N", "D"]).unwrap();
            assert_eq!(law.params.len(), p.len(), "{formula}");
            let wanted: Vec<usize> = (0..p.len()).collect();
            for (space, loss) in [Space::Linear, Space::Log]
                .into_iter()
                .flat_map(|s| [(s, LossKind::Mse), (s, LossKind::Huber)])
            {
                let target: Vec<f64> = (0..rows)
                    .map(|i| law.eval(&[n[i], d[i]], &p) * (1.0 + 0.01 * ((i % 5) as f64 - 2.0)))
                    .collect();
                let y: Vec<f64> = match space {
                    Space::Linear => target.clone(),
                    Space::Log => target.iter().map(|t| t.ln()).collect(),
                };
                let mut w: Vec<f64> = (0..rows).map(|i| 1.0 + (i % 3) as f64).collect();
                w[10] = 0.0;
                let k = p.len();
                let mut grad = vec![0.0; k];
                // Residual and d residual / d pred of every row.
                let res: Vec<(f64, f64)> = (0..rows)
                    .map(|i| {
                        let v = law.eval(&[n[i], d[i]], &p);
                        match space {
                            Space::Linear => (v - y[i], 1.0),
                            Space::Log => (v.ln() - y[i], 1.0 / v),
                        }
                    })
                    .collect();
                let mut abs: Vec<f64> = res.iter().map(|r| r.0.abs()).collect();
                abs.sort_by(f64::total_cmp);
                // Halfway from the median to the next larger residual: no
                // row sits on delta, where rounding would pick the side.
                let median = abs[rows / 2];
                let next = abs.iter().find(|&&a| a > median * (1.0 + 1e-9)).unwrap();
                let objective = Objective {
                    loss,
                    space,
                    delta: 0.5 * (median + next),
                };
                let rj =
                    RowJacobian::new(&law, &[n.clone(), d.clone()], &y, &w, objective, &wanted);
                let (mut g, mut h, mut b) = (vec![0.0; k], vec![0.0; k * k], vec![0.0; k * k]);
                let mut ws = Workspace::default();
                if std::ptr::eq(d, &d_grid) && formula.contains("B/(D + t)^beta") {
                    assert!(
                        rj.pairs.iter().any(|p| matches!(p, Pair::Cross { .. })),
                        "{formula}: N and D are summed per key"
                    );
                    // N's keys count up by one along the rows (0..17 over
                    // and over): its gathers and sums per key are copies
                    // and vector adds.
                    assert!(
                        rj.steps.iter().flatten().any(Option::is_some),
                        "{formula}: some level's keys count up"
                    );
                }
                let f = rj.evaluate_with_meat(&p, &mut ws, &mut g, &mut h, &mut b);
                let (mut fw, mut gw, mut hw, mut bw) =
                    (0.0, vec![0.0; k], vec![0.0; k * k], vec![0.0; k * k]);
                // Sums of the terms' sizes: the scale rounding is relative
                // to where terms cancel.
                let (mut ga, mut ha, mut ba) = (vec![0.0; k], vec![0.0; k * k], vec![0.0; k * k]);
                for i in 0..rows {
                    law.eval_grad(&[n[i], d[i]], &p, &mut grad);
                    let (r, s) = res[i];
                    let (rho, psi) = objective.rho(r);
                    let curv = match loss {
                        LossKind::Mse => 1.0,
                        LossKind::Huber => f64::from(r.abs() <= objective.delta),
                    };
                    fw += w[i] * rho;
                    for a in 0..k {
                        gw[a] += w[i] * psi * grad[a] * s;
                        ga[a] += (w[i] * psi * grad[a] * s).abs();
                        for c in 0..k {
                            let jj = grad[a] * grad[c] * s * s;
                            hw[a * k + c] += w[i] * curv * jj;
                            bw[a * k + c] += w[i] * w[i] * psi * psi * jj;
                            ha[a * k + c] += (w[i] * curv * jj).abs();
                            ba[a * k + c] += (w[i] * w[i] * psi * psi * jj).abs();
                        }
                    }
                }
                let what = format!("{formula} {space:?} {loss:?}");
                let close = |x: f64, y: f64, size: f64| (x - y).abs() <= 1e-11 * size;
                assert!(close(f, fw, fw), "{what}: f {f} vs {fw}");
                for a in 0..k {
                    let (x, y) = (g[a], gw[a]);
                    assert!(close(x, y, ga[a]), "{what}: g[{a}] {x} vs {y}");
                    for c in 0..k {
                        let (x, y) = (h[a * k + c], hw[a * k + c]);
                        assert!(close(x, y, ha[a * k + c]), "{what}: h[{a},{c}] {x} vs {y}");
                        let (x, y) = (b[a * k + c], bw[a * k + c]);
                        assert!(
                            close(x, y, ba[a * k + c]),
                            "{what}: meat[{a},{c}] {x} vs {y}"
                        );
                    }
                }
            }
        }
    }

    /// Hoisted levels read from coarser ones: a term of N and V (few
    /// pairs) adds a term of N alone; D stays per row.
    #[test]
    fn hoisted_levels_match_the_reference_interpreter() {
        let law = CompiledLaw::from_formula(
            "E + A/N^alpha + B/(V*N)^beta + C*log(D)/(N + V)",
            &["N", "V", "D"],
        )
        .unwrap();
        let p = [1.1, 30.0, 0.3, 50.0, 0.2, 0.4];
        let rows = 700;
        let n: Vec<f64> = (0..rows).map(|i| 100.0 * (1.0 + (i % 7) as f64)).collect();
        let v: Vec<f64> = (0..rows).map(|i| 10.0 * (1.0 + (i % 3) as f64)).collect();
        let d: Vec<f64> = (0..rows).map(|i| 1e3 + i as f64).collect();
        let y: Vec<f64> = (0..rows).map(|i| 2.0 + 0.01 * (i % 11) as f64).collect();
        let w = vec![1.0 / rows as f64; rows];
        let wanted: Vec<usize> = (0..p.len()).collect();
        let rj = RowJacobian::new(
            &law,
            &[n.clone(), v.clone(), d.clone()],
            &y,
            &w,
            Objective::default(),
            &wanted,
        );
        assert!(rj
            .hoisted
            .iter()
            .any(|h| h.ops.iter().any(|o| matches!(o.1, KeySrc::Proj(..)))));
        let k = p.len();
        let (mut g, mut h) = (vec![0.0; k], vec![0.0; k * k]);
        let f = rj.evaluate(&p, &mut Workspace::default(), &mut g, &mut h);
        let (mut fw, mut gw, mut hw) = (0.0, vec![0.0; k], vec![0.0; k * k]);
        let mut grad = vec![0.0; k];
        for i in 0..rows {
            let r = law.eval_grad(&[n[i], v[i], d[i]], &p, &mut grad) - y[i];
            fw += 0.5 * w[i] * r * r;
            for a in 0..k {
                gw[a] += w[i] * r * grad[a];
                for b in 0..k {
                    hw[a * k + b] += w[i] * grad[a] * grad[b];
                }
            }
        }
        let close = |x: f64, y: f64| (x - y).abs() <= 1e-11 * x.abs().max(y.abs());
        assert!(close(f, fw), "f {f} vs {fw}");
        for a in 0..k {
            assert!(close(g[a], gw[a]), "g[{a}] {} vs {}", g[a], gw[a]);
            for b in 0..k {
                assert!(close(h[a * k + b], hw[a * k + b]), "h[{a},{b}]");
            }
        }
    }

    #[test]
    fn a_law_outside_its_domain_is_not_finite() {
        let law = CompiledLaw::from_formula("E + A*log(N - t)", &["N"]).unwrap();
        let rj = RowJacobian::new(
            &law,
            &[vec![1.0, 2.0, 3.0]],
            &[0.0; 3],
            &[1.0; 3],
            Objective::default(),
            &[0, 1, 2],
        );
        let (mut g, mut h) = (vec![0.0; 3], vec![0.0; 9]);
        let f = rj.evaluate(&[1.0, 1.0, 1.5], &mut Workspace::default(), &mut g, &mut h);
        assert!(!f.is_finite());
    }
}
