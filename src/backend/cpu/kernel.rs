//! The arithmetic of both layouts, compiled once per instruction set and
//! picked at run time. Loops are branch-free (selects only) so that they
//! vectorise: sums keep independent lane accumulators, and the grid's
//! per-cell loop is a plain map (the compiler vectorises sums across lanes
//! only unreliably when they are mixed with other work).

use crate::backend::fastmath::{self, mul_add};
use crate::backend::prepared::PreparedConfig;
use crate::backend::weights::{point_hash, poisson1, Resolved, UNWEIGHTED};
use crate::backend::Eval;
use crate::law::{A, ALPHA, B, BETA, C, E, GAMMA, NP, T1, T2, T3};
use crate::objective::{LossKind, Objective, Space};

/// One work block of either layout.
pub(super) enum Block<'a> {
    /// Points of one configuration: `key` is the global index of the
    /// first, `ci` the configuration's index, `zero` whether a weight in
    /// `w` is 0.
    Points {
        ci: usize,
        cfg: &'a PreparedConfig,
        key: usize,
        d: &'a [f64],
        y: &'a [f64],
        w: &'a [f64],
        zero: bool,
    },
    Grid(GridBlock<'a>),
}

/// Distinct tokens `d` at columns `start..start + d.len()` of the grid
/// matrices `y`, `w` and `pos` (one row of `stride` per configuration).
pub(super) struct GridBlock<'a> {
    pub configs: &'a [PreparedConfig],
    pub d: &'a [f64],
    pub y: &'a [f64],
    pub w: &'a [f64],
    pub pos: &'a [u32],
    pub stride: usize,
    pub start: usize,
    /// Whether some point's weight in `w` is 0.
    pub zero: bool,
}

/// The weighting of each start of a work item.
#[derive(Clone, Copy)]
pub(super) struct Weights<'a> {
    /// Per start, an index into `resolved` or UNWEIGHTED (checked by the
    /// caller); None when every start uses the dataset's own weights.
    pub which: Option<&'a [u32]>,
    pub resolved: &'a [Resolved],
}

impl Weights<'_> {
    /// Start `si`'s weighting with its index, None for the dataset's own.
    #[inline(always)]
    fn get(&self, si: usize) -> Option<(u32, &Resolved)> {
        let k = self.which?[si];
        (k != UNWEIGHTED).then(|| (k, &self.resolved[k as usize]))
    }
}

/// Add `block`'s contribution for each of `params` to `out`, each start
/// weighed as `weights` says.
pub(super) fn run(
    obj: Objective,
    block: &Block,
    params: &[[f64; NP]],
    weights: Weights,
    out: &mut [Eval],
) {
    let job = Job {
        block,
        params,
        weights,
        delta: obj.delta,
    };
    match (obj.space, obj.loss) {
        (Space::Linear, LossKind::Mse) => dispatch::<false, false>(&job, out),
        (Space::Linear, LossKind::Huber) => dispatch::<false, true>(&job, out),
        (Space::Log, LossKind::Mse) => dispatch::<true, false>(&job, out),
        (Space::Log, LossKind::Huber) => dispatch::<true, true>(&job, out),
    }
}

struct Job<'a> {
    block: &'a Block<'a>,
    params: &'a [[f64; NP]],
    weights: Weights<'a>,
    delta: f64,
}

/// Pick the widest instruction set this CPU has; the loops are the same
/// source compiled for each.
#[inline]
fn dispatch<const LOG: bool, const HUBER: bool>(job: &Job, out: &mut [Eval]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports the features the function enables.
            return unsafe { job_avx512::<LOG, HUBER>(job, out) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: as above.
            return unsafe { job_avx2::<LOG, HUBER>(job, out) };
        }
    }
    job_impl::<LOG, HUBER, false>(job, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn job_avx512<const LOG: bool, const HUBER: bool>(job: &Job, out: &mut [Eval]) {
    job_impl::<LOG, HUBER, true>(job, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn job_avx2<const LOG: bool, const HUBER: bool>(job: &Job, out: &mut [Eval]) {
    job_impl::<LOG, HUBER, true>(job, out)
}

#[inline(always)]
fn job_impl<const LOG: bool, const HUBER: bool, const FMA: bool>(job: &Job, out: &mut [Eval]) {
    let delta = job.delta;
    match *job.block {
        Block::Points {
            ci,
            cfg,
            key,
            d,
            y,
            w,
            zero,
        } => {
            let start = point_start::<LOG, HUBER, FMA>;
            if job.weights.which.is_none() {
                // A plain loop of its own: inside the weighted one the
                // compiler's point loop measured a few percent slower.
                for (p, acc) in job.params.iter().zip(out) {
                    start(cfg, p, (d, y, w), zero, delta, acc);
                }
                return;
            }
            // Effective weights under the weighting `filled`, reused by the
            // consecutive starts that share it.
            let mut eff = Vec::new();
            let mut filled = None;
            let pos0 = key - cfg.start;
            for (si, (p, acc)) in job.params.iter().zip(out).enumerate() {
                let Some((id, r)) = job.weights.get(si) else {
                    start(cfg, p, (d, y, w), zero, delta, acc);
                    continue;
                };
                // Points past the limit weigh nothing: evaluate only those
                // before it, and nothing when the curve is out.
                let n = (r.first[ci] as usize).saturating_sub(pos0).min(d.len());
                if n == 0 || r.mult[ci] == 0.0 {
                    continue;
                }
                if filled != Some(id) {
                    eff.resize(d.len(), 0.0);
                    fill_kept(&w[..n], r.mult[ci], r.poisson, key as u32, &mut eff[..n]);
                    filled = Some(id);
                }
                // Zero weights: the dataset's, or Poisson counts of 0
                // (about a third of them).
                let mask = zero || r.poisson.is_some();
                start(cfg, p, (&d[..n], &y[..n], &eff[..n]), mask, delta, acc);
            }
        }
        Block::Grid(ref g) => grid_block::<LOG, HUBER, FMA>(g, job.params, job.weights, delta, out),
    }
}

/// Point layout: add one start's sums over points `(d, y, w)` of
/// configuration `cfg` to `acc`. `mask`: some weight is 0, and such points
/// must add exactly nothing even where the law is undefined there.
#[inline(always)]
fn point_start<const LOG: bool, const HUBER: bool, const FMA: bool>(
    cfg: &PreparedConfig,
    p: &[f64; NP],
    (d, y, w): (&[f64], &[f64], &[f64]),
    mask: bool,
    delta: f64,
    acc: &mut Eval,
) {
    let ct = ConfigTerm::new(cfg, p);
    let k = PointTerm {
        base: ct.base,
        b: p[B],
        beta: p[BETA],
        t2: p[T2],
        delta,
    };
    let [f, s0, sv, sl, sq] = if mask {
        point_sums::<LOG, HUBER, FMA, true>(d, y, w, &k)
    } else {
        point_sums::<LOG, HUBER, FMA, false>(d, y, w, &k)
    };
    acc.f += 0.5 * f;
    ct.add_grad(p, s0, &mut acc.g);
    add_token_grad(p, [sv, sl, sq], &mut acc.g);
}

/// Effective weights of points that are all within their configuration's
/// limit: `w` times the multiplier `m` times, when resampling with mixed
/// seed `s`, the Poisson count of key `key0 + j`. The same products, in the
/// same order, as `Resolved::factor` and `reference_evaluate`.
#[inline(always)]
fn fill_kept(w: &[f64], m: f64, poisson: Option<u32>, key0: u32, out: &mut [f64]) {
    match poisson {
        None => {
            for (o, w) in out.iter_mut().zip(w) {
                *o = w * m;
            }
        }
        Some(s) => {
            for (j, (o, w)) in out.iter_mut().zip(w).enumerate() {
                let k = poisson1(point_hash(s, key0.wrapping_add(j as u32)));
                *o = w * (m * k as f64);
            }
        }
    }
}

/// Effective weights of a grid tile's cells (columns `t0..t0 + n` of the
/// block) under `r`, one row of `n` per configuration. Empty cells have
/// position u32::MAX, never below a limit, so they get 0.
#[inline(always)]
fn fill_tile(g: &GridBlock, r: &Resolved, t0: usize, n: usize, out: &mut [f64]) {
    for (c, cfg) in g.configs.iter().enumerate() {
        let o = c * g.stride + g.start + t0;
        let (w, pos) = (&g.w[o..o + n], &g.pos[o..o + n]);
        let out = &mut out[c * n..][..n];
        let (m, first, key0) = (r.mult[c], r.first[c], cfg.start as u32);
        if m == 0.0 || first == 0 {
            out.fill(0.0);
            continue;
        }
        match r.poisson {
            None => {
                for j in 0..n {
                    out[j] = if pos[j] < first { w[j] * m } else { 0.0 };
                }
            }
            Some(s) => {
                for j in 0..n {
                    let k = poisson1(point_hash(s, key0.wrapping_add(pos[j])));
                    out[j] = if pos[j] < first {
                        w[j] * (m * k as f64)
                    } else {
                        0.0
                    };
                }
            }
        }
    }
}

/// Distinct tokens per tile: the per-token scratch arrays (28 KiB) stay in
/// L1 while every start of a work item passes over the tile. Measured
/// fastest among 256..2048 on both the simulated and Pythia sweeps.
const TILE: usize = 512;

/// Grid layout: every start over one block of distinct tokens, a tile at a
/// time.
#[inline(always)]
fn grid_block<const LOG: bool, const HUBER: bool, const FMA: bool>(
    g: &GridBlock,
    params: &[[f64; NP]],
    weights: Weights,
    delta: f64,
    out: &mut [Eval],
) {
    let nc = g.configs.len();
    // The configuration constants once per start for the whole block.
    let terms: Vec<ConfigTerm> = params
        .iter()
        .flat_map(|p| g.configs.iter().map(move |cfg| ConfigTerm::new(cfg, p)))
        .collect();
    let mut s0 = vec![0.0; terms.len()];
    let mut s = Scratch::new(TILE.min(g.d.len()));
    // A tile's effective weights under the weighting `filled`, reused by
    // the consecutive starts that share it.
    let mut eff = Vec::new();
    if (0..params.len()).any(|si| weights.get(si).is_some()) {
        eff = vec![0.0; nc * TILE.min(g.d.len())];
    }
    for t0 in (0..g.d.len()).step_by(TILE) {
        let d = &g.d[t0..(t0 + TILE).min(g.d.len())];
        let n = d.len();
        let row = |c: usize| {
            let o = c * g.stride + g.start + t0;
            &g.y[o..o + n]
        };
        let mut filled = None;
        for (si, (p, acc)) in params.iter().zip(out.iter_mut()).enumerate() {
            let weighting = weights.get(si);
            let weighted = weighting.is_some();
            let (wm, wstride, woff) = match weighting {
                None => (g.w, g.stride, g.start + t0),
                Some((id, r)) => {
                    if filled != Some(id) {
                        fill_tile(g, r, t0, n, &mut eff);
                        filled = Some(id);
                    }
                    (eff.as_slice(), n, 0)
                }
            };
            let weights = |c: usize| &wm[c * wstride + woff..][..n];
            let (terms, s0) = (&terms[si * nc..][..nc], &mut s0[si * nc..][..nc]);
            // Pass 1: the transcendental part, once per distinct d.
            token_terms::<FMA>(d, p[T2], p[BETA], &mut s);
            // Pass 2: every configuration's row against the shared v,
            // collecting sum g per configuration and per d.
            let mut c = 0;
            while c + ROWS <= nc {
                let sums = grid_rows::<LOG, HUBER, FMA, ROWS>(
                    std::array::from_fn(|r| row(c + r)),
                    std::array::from_fn(|r| weights(c + r)),
                    &mut s,
                    std::array::from_fn(|r| terms[c + r].base),
                    p[B],
                    delta,
                );
                for (a, b) in s0[c..c + ROWS].iter_mut().zip(sums) {
                    *a += b;
                }
                c += ROWS;
            }
            for c in c..nc {
                let [sum] = grid_rows::<LOG, HUBER, FMA, 1>(
                    [row(c)],
                    [weights(c)],
                    &mut s,
                    [terms[c].base],
                    p[B],
                    delta,
                );
                s0[c] += sum;
            }
            // Pass 3: the objective and token sums from the per-d totals.
            // Only points of weight 0 can leave a token with no weight.
            let [f, sv, sl, sq] = if g.zero || weighted {
                token_sums::<true>(&mut s, n)
            } else {
                token_sums::<false>(&mut s, n)
            };
            acc.f += 0.5 * f;
            add_token_grad(p, [sv, sl, sq], &mut acc.g);
        }
    }
    for (si, (p, acc)) in params.iter().zip(out).enumerate() {
        for (ct, s0) in terms[si * nc..][..nc].iter().zip(&s0[si * nc..][..nc]) {
            ct.add_grad(p, *s0, &mut acc.g);
        }
    }
}

/// The constants of one configuration for one parameter vector:
/// u_N = (n+t1)^-alpha, u_T = (t+t3)^-gamma and what their derivatives need.
struct ConfigTerm {
    /// The part of the prediction that does not depend on the tokens.
    base: f64,
    xn: f64,
    ln_n: f64,
    un: f64,
    xt: f64,
    ln_t: f64,
    ut: f64,
}

impl ConfigTerm {
    #[inline(always)]
    fn new(cfg: &PreparedConfig, p: &[f64; NP]) -> ConfigTerm {
        let xn = cfg.n + p[T1];
        let ln_n = xn.ln();
        let xt = cfg.t + p[T3];
        let ln_t = xt.ln();
        let un = (-p[ALPHA] * ln_n).exp();
        let ut = (-p[GAMMA] * ln_t).exp();
        ConfigTerm {
            base: p[E] + p[A] * un + p[C] * ut,
            xn,
            ln_n,
            un,
            xt,
            ln_t,
            ut,
        }
    }

    /// Gradient entries of the N and T terms from s0 = sum g over the
    /// configuration's points.
    #[inline(always)]
    fn add_grad(&self, p: &[f64; NP], s0: f64, gr: &mut [f64; NP]) {
        // Nothing from a curve whose points all weigh 0, even where its
        // terms are undefined (t1 or t3 below -n or -t).
        if s0 == 0.0 {
            return;
        }
        let (un, ut) = (self.un, self.ut);
        gr[E] += s0;
        gr[A] += s0 * un;
        gr[ALPHA] -= s0 * p[A] * un * self.ln_n;
        gr[T1] -= s0 * p[ALPHA] * p[A] * un / self.xn;
        gr[C] += s0 * ut;
        gr[GAMMA] -= s0 * p[C] * ut * self.ln_t;
        gr[T3] -= s0 * p[GAMMA] * p[C] * ut / self.xt;
    }
}

/// Gradient entries of the token term from sum g v, sum g v ln(d+t2) and
/// sum g v/(d+t2).
#[inline(always)]
fn add_token_grad(p: &[f64; NP], [sv, sl, sq]: [f64; 3], gr: &mut [f64; NP]) {
    gr[B] += sv;
    gr[BETA] -= p[B] * sl;
    gr[T2] -= p[BETA] * p[B] * sq;
}

/// v = (d+t2)^-beta with ln(d+t2) and 1/(d+t2).
#[inline(always)]
fn token_term<const FMA: bool>(d: f64, t2: f64, beta: f64) -> [f64; 3] {
    let x = d + t2;
    // x = 0 (t2 fixed at 0 and a point at D = 0) makes the law infinite.
    let x_ok = x > 0.0;
    let (lx, inv_x) = fastmath::ln_recip::<FMA>(if x_ok { x } else { 1.0 });
    let lx = if x_ok { lx } else { f64::NAN };
    [fastmath::exp::<FMA>(-beta * lx), lx, inv_x]
}

/// The residual r of `pred` against target `y` in the fitted space, and
/// dr/dpred.
#[inline(always)]
fn residual<const LOG: bool, const FMA: bool>(pred: f64, y: f64) -> (f64, f64) {
    if LOG {
        // ln is only defined for pred > 0; NaN marks the point non-finite.
        let ok = pred > 0.0;
        let (lp, inv_p) = fastmath::ln_recip::<FMA>(if ok { pred } else { 1.0 });
        (if ok { lp - y } else { f64::NAN }, inv_p)
    } else {
        (pred - y, 1.0)
    }
}

/// The loss at residual r with weight w as (wd, q): w rho'(r) = wd and
/// 2 w rho(r) = wd q. Factored so the objective costs one fused
/// multiply-add per point; sums of wd q are halved once at the end.
#[inline(always)]
fn loss<const HUBER: bool>(r: f64, w: f64, delta: f64) -> (f64, f64) {
    if HUBER {
        // Outside, 2 rho = delta (2|r| - delta) = copysign(delta, r) q.
        let inside = r.abs() <= delta;
        let sd = delta.copysign(r);
        (
            w * if inside { r } else { sd },
            if inside { r } else { 2.0 * r - sd },
        )
    } else {
        (w * r, r)
    }
}

/// Lanes of independent accumulators: lets the compiler keep sums in SIMD
/// registers without reordering any single sum.
const LANES: usize = 8;

/// Lanes for a sum over one array: with a single input the compiler
/// vectorises along the lanes, and 32 gives several vectors of
/// accumulators so the loop is not bound by the latency of one add.
const SUM_LANES: usize = 32;

/// Sum of `x` in SUM_LANES interleaved partial sums, added pairwise.
#[inline(always)]
fn sum(x: &[f64]) -> f64 {
    let n = x.len();
    let whole = n - n % SUM_LANES;
    let mut acc = [0.0f64; SUM_LANES];
    for c in (0..whole).step_by(SUM_LANES) {
        let x = &x[c..c + SUM_LANES];
        for l in 0..SUM_LANES {
            acc[l] += x[l];
        }
    }
    // The tail in its own sum: adding it into one lane makes that lane
    // special and the compiler then splits the loop's vectors.
    let tail: f64 = x[whole..].iter().sum();
    // black_box only hides the lanes from the vectoriser, which otherwise
    // shapes the loop's vectors after the pairwise tree below, badly.
    let mut acc = std::hint::black_box(acc);
    let mut half = SUM_LANES;
    while half > 1 {
        half /= 2;
        for l in 0..half {
            acc[l] += acc[l + half];
        }
    }
    acc[0] + tail
}

/// What the point loop needs of the parameters: pred = base + b (d+t2)^-beta.
struct PointTerm {
    base: f64,
    b: f64,
    beta: f64,
    t2: f64,
    delta: f64,
}

/// Point layout: objective and the four gradient sums over a block, sum w
/// rho, and of g: sum g, sum g v, sum g v ln(d+t2), sum g v/(d+t2).
#[inline(always)]
fn point_sums<const LOG: bool, const HUBER: bool, const FMA: bool, const MASK: bool>(
    d: &[f64],
    y: &[f64],
    w: &[f64],
    k: &PointTerm,
) -> [f64; 5] {
    let point = |d: f64, y: f64, w: f64| {
        let [v, lx, inv_x] = token_term::<FMA>(d, k.t2, k.beta);
        let pred = mul_add::<FMA>(k.b, v, k.base);
        let (r, drdp) = residual::<LOG, FMA>(pred, y);
        let (wd, q) = loss::<HUBER>(r, w, k.delta);
        let g = wd * drdp;
        let gv = g * v;
        let mut t = [wd * q, g, gv, gv * lx, gv * inv_x];
        if MASK {
            // A point of weight 0 adds exactly nothing, even where the law
            // is undefined there (a held-out point). A loop, not
            // array::map (see grid_rows).
            let keep = w != 0.0;
            for t in &mut t {
                *t = if keep { *t } else { 0.0 };
            }
        }
        t
    };
    let mut acc = [[0.0f64; LANES]; 5];
    let n = d.len().min(y.len()).min(w.len());
    let whole = n - n % LANES;
    for c in (0..whole).step_by(LANES) {
        let (d, y, w) = (&d[c..c + LANES], &y[c..c + LANES], &w[c..c + LANES]);
        for l in 0..LANES {
            for (a, t) in acc.iter_mut().zip(point(d[l], y[l], w[l])) {
                a[l] += t;
            }
        }
    }
    for j in whole..n {
        for (a, t) in acc.iter_mut().zip(point(d[j], y[j], w[j])) {
            a[0] += t;
        }
    }
    let mut sums = [0.0; 5];
    for (t, a) in sums.iter_mut().zip(&acc) {
        *t = a.iter().sum();
    }
    sums
}

/// Grid layout per-token arrays of one tile.
struct Scratch {
    v: Vec<f64>,
    lx: Vec<f64>,
    inv_x: Vec<f64>,
    /// Sums over configurations of w rho and of g, per token.
    f: Vec<f64>,
    g: Vec<f64>,
    /// The g of ROWS configurations, one after the other, per token.
    row_g: Vec<f64>,
}

impl Scratch {
    fn new(n: usize) -> Scratch {
        Scratch {
            v: vec![0.0; n],
            lx: vec![0.0; n],
            inv_x: vec![0.0; n],
            f: vec![0.0; n],
            g: vec![0.0; n],
            row_g: vec![0.0; ROWS * n],
        }
    }
}

/// Pass 1: v, ln(d+t2), 1/(d+t2) per token; zero the per-token sums.
#[inline(always)]
fn token_terms<const FMA: bool>(d: &[f64], t2: f64, beta: f64, s: &mut Scratch) {
    let n = d.len();
    let (v, lx, inv_x, f, g) = (
        &mut s.v[..n],
        &mut s.lx[..n],
        &mut s.inv_x[..n],
        &mut s.f[..n],
        &mut s.g[..n],
    );
    for j in 0..n {
        [v[j], lx[j], inv_x[j]] = token_term::<FMA>(d[j], t2, beta);
        f[j] = 0.0;
        g[j] = 0.0;
    }
}

/// Configurations handled together in pass 2: each pass over the block
/// loads v and updates the per-token sums once for ROWS cells.
const ROWS: usize = 2;

/// Pass 2 for R configurations' rows: add 2 w rho and g into the per-token
/// sums and return each row's sum of g. The cell loop has no reductions,
/// so the compiler vectorises it as a plain loop; the reductions then run
/// over contiguous arrays.
#[inline(always)]
fn grid_rows<const LOG: bool, const HUBER: bool, const FMA: bool, const R: usize>(
    ys: [&[f64]; R],
    ws: [&[f64]; R],
    s: &mut Scratch,
    bases: [f64; R],
    b: f64,
    delta: f64,
) -> [f64; R] {
    let n = ys[0].len();
    let (ys, ws) = (ys.map(|y| &y[..n]), ws.map(|w| &w[..n]));
    let (v, fs, gs) = (&s.v[..n], &mut s.f[..n], &mut s.g[..n]);
    let mut rows = s.row_g.chunks_exact_mut(n.max(1));
    let row_g: [&mut [f64]; R] = std::array::from_fn(|_| &mut rows.next().unwrap()[..n]);
    for j in 0..n {
        let (mut f, mut gt) = (fs[j], gs[j]);
        for r in 0..R {
            // A cell without a point has w = 0 (and y NaN), as has a point
            // a weighting leaves out. Selecting zero (rather than relying
            // on w = 0) keeps them out even where pred is undefined.
            let y = ys[r][j];
            let pred = mul_add::<FMA>(b, v[j], bases[r]);
            let (res, drdp) = residual::<LOG, FMA>(pred, y);
            let w = ws[r][j];
            // (An integer test: with w == 0.0 the compiler emits a
            // measurably slower loop.)
            let empty = (w.to_bits() << 1) == 0;
            let (wd, q) = loss::<HUBER>(if empty { 0.0 } else { res }, w, delta);
            let g = if empty { 0.0 } else { wd * drdp };
            f = mul_add::<FMA>(wd, q, f);
            gt += g;
            row_g[r][j] = g;
        }
        fs[j] = f;
        gs[j] = gt;
    }
    // A loop, not array::map: map's closure is not inlined into this
    // function's instruction set.
    let mut sums = [0.0; R];
    for (t, g) in sums.iter_mut().zip(row_g) {
        *t = sum(g);
    }
    sums
}

/// Pass 3: sum 2 w rho, and sum g v, sum g v ln(d+t2), sum g v/(d+t2) over
/// the block. The products overwrite the scratch arrays so that each sum
/// is over one array, which the compiler vectorises reliably. MASK: tokens
/// whose cells all weigh 0 add exactly nothing (their v and ln(d+t2) may
/// be undefined); a separate version as the selects cost measurably.
#[inline(always)]
fn token_sums<const MASK: bool>(s: &mut Scratch, n: usize) -> [f64; 4] {
    let (v, g, lx, inv_x) = (&s.v[..n], &mut s.g[..n], &mut s.lx[..n], &mut s.inv_x[..n]);
    for j in 0..n {
        let gv = g[j] * v[j];
        if MASK {
            // g = 0 when every cell at this token weighs 0.
            let keep = g[j] != 0.0;
            g[j] = if keep { gv } else { 0.0 };
            lx[j] = if keep { lx[j] * gv } else { 0.0 };
            inv_x[j] = if keep { inv_x[j] * gv } else { 0.0 };
        } else {
            g[j] = gv;
            lx[j] *= gv;
            inv_x[j] *= gv;
        }
    }
    [
        sum(&s.f[..n]),
        sum(&s.g[..n]),
        sum(&s.lx[..n]),
        sum(&s.inv_x[..n]),
    ]
}
