//! Sums along a run's steps on the GPU: the WGSL twin of
//! `law::steps`'s engine, and the schedule tables it reads.
//!
//! A family of sums (a body, with its derivatives by every outer value)
//! becomes one WGSL function, `sf{i}(schedule, step, outer values)`, that
//! returns all of the family's sums at once, as the CPU's pass does: the
//! value node and its derivative nodes in a kernel share one call. What
//! the CPU engine computes once per run (the steps it visits, skipping
//! those where a factor on k alone is 0, and the body's values on k alone)
//! is computed on the host in f64, once per sweep, and uploaded; per row
//! the function walks the visited steps up to the row's, evaluating the
//! rest of the body (see shaders/law_steps.wgsl for the tables' layout).
//!
//! Sums are added in f32 in runs of 64 steps, then the runs: the error
//! grows with about 64 + steps / 64 roundings instead of the steps'
//! count. A sum of a series alone is a window of its split prefix sums,
//! as on the CPU.

use std::collections::HashMap;
use std::fmt::Write;

use super::codegen::{CodegenError, Gen};
use crate::law::steps::{self, Index, Leaf, Shape};

pub(super) const TEMPLATE: &str = include_str!("../../../shaders/law_steps.wgsl");

/// Steps added in f32 before their sum joins the total.
const RUN: u32 = 64;

/// The WGSL of family `shape` as the kernel's family `fi`: a struct of its
/// sums and whether they are defined, and the function.
pub(super) fn function(shape: &Shape, fi: usize) -> Result<String, CodegenError> {
    let gen = Gen::body(&shape.graph);
    let r = shape.roots.len();
    let na = shape.n_args.max(1);
    let mut f = String::new();
    writeln!(f, "struct SF{fi} {{ v: array<f32, {r}>, ok: bool }}").unwrap();
    writeln!(
        f,
        "fn sf{fi}(dir: u32, tf: f32, p: array<f32, {na}>) -> SF{fi} {{"
    )
    .unwrap();
    writeln!(f, "    var r: SF{fi};").unwrap();
    writeln!(f, "    r.ok = false;").unwrap();
    writeln!(f, "    if (dir == 0u) {{ return r; }}").unwrap();
    writeln!(f, "    let tab = sched_u(dir + {fi}u);").unwrap();
    writeln!(f, "    let t = i32(tf);").unwrap();
    writeln!(f, "    if (tab == 0u || f32(t) != tf) {{ return r; }}").unwrap();
    writeln!(f, "    let m_all = sched_u(tab);").unwrap();
    writeln!(f, "    let len = i32(sched_u(tab + 1u));").unwrap();
    writeln!(f, "    let ks = sched_u(tab + 2u);").unwrap();
    writeln!(f, "    let kd = sched_u(tab + 3u);").unwrap();
    for s in 0..shape.n_series {
        writeln!(f, "    let so{s} = sched_u(tab + {}u);", 4 + s).unwrap();
    }
    writeln!(f, "    let last = t + ({});", shape.hi).unwrap();
    writeln!(f, "    if (last >= len) {{ return r; }}").unwrap();
    writeln!(f, "    var ok = true;").unwrap();
    body_nodes(&mut f, &gen, shape, &shape.call, "    ")?;
    let summed: Vec<usize> = (0..r).filter(|&i| shape.windows[i].is_none()).collect();
    if !summed.is_empty() {
        writeln!(f, "    let m = steps_upto(ks, m_all, last);").unwrap();
    }
    for &i in &summed {
        writeln!(f, "    var a{i} = 0.0;").unwrap();
        writeln!(f, "    var s{i} = 0.0;").unwrap();
    }
    if !summed.is_empty() {
        writeln!(f, "    for (var j = 0u; j < m; j++) {{").unwrap();
        writeln!(f, "        let k = bitcast<i32>(sched_u(ks + j));").unwrap();
        for (slot, &id) in shape.kdata.iter().enumerate() {
            if shape.graph.constant(id).is_none() {
                writeln!(f, "        let n{id} = curves[kd + {slot}u * m_all + j];").unwrap();
            }
        }
        let in_loop: Vec<u32> = shape.karg.iter().chain(&shape.pair).copied().collect();
        body_nodes(&mut f, &gen, shape, &in_loop, "        ")?;
        for &i in &summed {
            writeln!(f, "        s{i} += {};", gen.op(shape.summands[i].base)?).unwrap();
        }
        writeln!(f, "        if ((j % {RUN}u) == {}u) {{", RUN - 1).unwrap();
        for &i in &summed {
            writeln!(f, "            a{i} += s{i};").unwrap();
            writeln!(f, "            s{i} = 0.0;").unwrap();
        }
        writeln!(f, "        }}").unwrap();
        writeln!(f, "    }}").unwrap();
    }
    for i in 0..r {
        match shape.windows[i] {
            None => match shape.summands[i].scale {
                None => writeln!(f, "    r.v[{i}] = a{i} + s{i};").unwrap(),
                Some(c) => writeln!(f, "    r.v[{i}] = {} * (a{i} + s{i});", gen.op(c)?).unwrap(),
            },
            Some((s, c)) => {
                writeln!(
                    f,
                    "    let w{i} = series_window(so{s}, len, {} + {c}, last + {c});",
                    shape.lo
                )
                .unwrap();
                writeln!(f, "    ok = ok && w{i}.y > 0.5;").unwrap();
                writeln!(f, "    r.v[{i}] = w{i}.x;").unwrap();
            }
        }
    }
    writeln!(f, "    r.ok = ok;").unwrap();
    writeln!(f, "    return r;").unwrap();
    writeln!(f, "}}").unwrap();
    Ok(f)
}

/// `let` lines of body nodes `ids` at the step `k` and the row's `t` in
/// scope: leaves read from the series, other nodes as the kernel writes
/// them; their definedness folded into `ok`.
fn body_nodes(
    f: &mut String,
    gen: &Gen,
    shape: &Shape,
    ids: &[u32],
    indent: &str,
) -> Result<(), CodegenError> {
    let at = |i: Index| match i {
        Index::K(c) => format!("(k + ({c}))"),
        Index::T(c) => format!("(t + ({c}))"),
        Index::At(c) => format!("({c})"),
    };
    for &id in ids {
        if shape.graph.constant(id).is_some() {
            continue;
        }
        let leaf = match shape.graph.node(id) {
            crate::law::dag::Node::Var(v) => shape.leaves[v as usize],
            _ => {
                let (e, cond) = gen.expr(id)?;
                writeln!(f, "{indent}let n{id} = {e};").unwrap();
                if let Some(c) = cond {
                    writeln!(f, "{indent}ok = ok && {c};").unwrap();
                }
                continue;
            }
        };
        let read = match leaf {
            Leaf::K => {
                writeln!(f, "{indent}let n{id} = f32(k);").unwrap();
                continue;
            }
            Leaf::T => {
                writeln!(f, "{indent}let n{id} = f32(t);").unwrap();
                continue;
            }
            Leaf::Value { series, at: i } => format!("series_at(so{series}, len, {})", at(i)),
            Leaf::Window { series, from, to } => {
                format!("series_window(so{series}, len, {}, {})", at(from), at(to))
            }
        };
        writeln!(f, "{indent}let l{id} = {read};").unwrap();
        writeln!(f, "{indent}ok = ok && l{id}.y > 0.5;").unwrap();
        writeln!(f, "{indent}let n{id} = l{id}.x;").unwrap();
    }
    Ok(())
}

/// The schedules of a sweep laid out for the kernel's families, to be
/// placed at float offset `base` of the curve buffer: the block of floats,
/// and each run's directory offset by its handle (what the kernel's
/// records carry in place of the handle).
pub(super) struct Tables {
    pub block: Vec<f32>,
    dirs: HashMap<u64, u32>,
    /// Per (handle, family index), the visited steps; per family, the
    /// last summed step's offset from the row's.
    ks: HashMap<(u64, usize), Vec<i64>>,
    hi: Vec<i64>,
    /// Per family, whether it loops (a root that is not a window).
    loops: Vec<bool>,
}

impl Tables {
    /// Tables of `families` (the kernel's, in order) for the runs
    /// `handles` (the values of the schedule variable; any that is not a
    /// registered run gets none).
    pub fn new(
        families: &[u32],
        handles: impl IntoIterator<Item = f64>,
        base: usize,
    ) -> anyhow::Result<Tables> {
        let shapes: Vec<Shape> = families.iter().map(|&f| steps::shape(f)).collect();
        let mut t = Tables {
            block: Vec::new(),
            dirs: HashMap::new(),
            ks: HashMap::new(),
            hi: shapes.iter().map(|s| s.hi).collect(),
            loops: shapes
                .iter()
                .map(|s| s.windows.iter().any(Option::is_none))
                .collect(),
        };
        // The run's series already placed: (handle, series) -> offset.
        let mut placed: HashMap<(u64, usize), u32> = HashMap::new();
        let off = |block: &Vec<f32>| -> anyhow::Result<u32> {
            u32::try_from(base + block.len())
                .map_err(|_| anyhow::anyhow!("the runs' schedules are too long for the GPU"))
        };
        for h in handles {
            if t.dirs.contains_key(&h.to_bits()) {
                continue;
            }
            let tabs: Vec<Option<steps::RunTable>> =
                families.iter().map(|&f| steps::run_table(f, h)).collect();
            if tabs.iter().all(Option::is_none) {
                t.dirs.insert(h.to_bits(), 0);
                continue;
            }
            let dir = off(&t.block)?;
            t.dirs.insert(h.to_bits(), dir);
            t.block.resize(t.block.len() + families.len(), 0.0);
            for (fi, tab) in tabs.iter().enumerate() {
                let Some(tab) = tab else { continue };
                let at = off(&t.block)?;
                t.block[(dir as usize - base) + fi] = f32::from_bits(at);
                let m = tab.ks.len();
                let head = 4 + tab.map.len();
                let ks = at + head as u32;
                let kd = ks + m as u32;
                let mut rec = vec![
                    f32::from_bits(m as u32),
                    f32::from_bits(tab.len as u32),
                    f32::from_bits(ks),
                    f32::from_bits(kd),
                ];
                rec.resize(head, 0.0);
                rec.extend(tab.ks.iter().map(|&k| f32::from_bits(k as i32 as u32)));
                for col in &tab.kdata {
                    rec.extend(col.iter().map(|&x| x as f32));
                }
                t.block.extend(rec);
                t.ks.insert((h.to_bits(), fi), tab.ks.clone());
                for (s, run_series) in tab.map.iter().enumerate() {
                    let Some(rs) = *run_series else { continue };
                    let so = match placed.get(&(h.to_bits(), rs)) {
                        Some(&so) => so,
                        None => {
                            let so = off(&t.block)?;
                            let (v, hi, lo) = tab.series(rs);
                            t.block.extend(v.iter().map(|&x| x as f32));
                            t.block.extend(hi.iter().map(|&x| x as f32));
                            // The low part carries what the high part's f32
                            // rounding lost.
                            t.block.extend(
                                hi.iter()
                                    .zip(lo)
                                    .map(|(&h, &l)| ((h - h as f32 as f64) + l) as f32),
                            );
                            placed.insert((h.to_bits(), rs), so);
                            so
                        }
                    };
                    t.block[(at as usize - base) + 4 + s] = f32::from_bits(so);
                }
            }
        }
        off(&t.block)?;
        Ok(t)
    }

    /// Steps family `fi`'s loop visits for a row of run `h` at step `t`.
    pub fn visited(&self, fi: usize, h: f64, t: f64) -> usize {
        if !self.loops[fi] {
            return 0;
        }
        let last = t + self.hi[fi] as f64;
        self.ks
            .get(&(h.to_bits(), fi))
            .map_or(0, |ks| ks.partition_point(|&k| k as f64 <= last))
    }

    /// What the records carry for the handle `h`: its directory's offset.
    pub fn record(&self, h: f64) -> f32 {
        f32::from_bits(self.dirs.get(&h.to_bits()).copied().unwrap_or(0))
    }
}
