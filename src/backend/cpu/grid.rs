//! The grid layout's data: points as a dense configurations x
//! distinct-tokens matrix.

use std::ops::Range;

use crate::backend::Prepared;

/// Distinct token values per block, the unit of parallel work (split
/// further into tiles by the kernel): large enough to amortise the
/// per-start configuration constants.
const GRID_BLOCK: usize = 2048;

pub(super) struct Grid {
    /// Distinct scaled tokens, ascending.
    pub d: Vec<f64>,
    /// Targets, one row of d.len() per configuration; NaN marks a cell
    /// without a point.
    pub y: Vec<f64>,
    /// Weights, 0 where there is no point.
    pub w: Vec<f64>,
    /// Each cell's position within its configuration (token order), which
    /// per-problem weightings depend on; u32::MAX where there is no point.
    pub pos: Vec<u32>,
    /// Ranges of distinct-token indices evaluated together.
    pub blocks: Vec<Range<usize>>,
    /// Whether some point has weight 0.
    pub zero: bool,
}

impl Grid {
    /// The grid of `data` if it has at most `max_cells` cells; the reason
    /// why not otherwise.
    pub fn build(data: &Prepared, max_cells: usize) -> Result<Grid, String> {
        // NaN marks empty cells, so it cannot be a target; NaN tokens have
        // no place in a sorted grid.
        if data.y.iter().chain(&data.d).any(|v| v.is_nan()) {
            return Err("a token count or target is NaN".into());
        }
        let mut d = data.d.clone();
        d.sort_by(f64::total_cmp);
        d.dedup();
        let (nc, nd) = (data.configs.len(), d.len());
        let cells = match nc.checked_mul(nd) {
            Some(c) if c <= max_cells => c,
            _ => return Err(format!("{nc} curves x {nd} token values is too many cells")),
        };
        // u32::MAX marks empty cells, so it cannot be a position.
        if data.configs.iter().any(|c| c.len >= u32::MAX as usize) {
            return Err("a configuration has 2^32 - 1 points or more".into());
        }
        let mut y = vec![f64::NAN; cells];
        let mut w = vec![0.0; cells];
        let mut pos = vec![u32::MAX; cells];
        for (ci, cfg) in data.configs.iter().enumerate() {
            for i in cfg.start..cfg.start + cfg.len {
                let cell = ci * nd + d.partition_point(|&x| x < data.d[i]);
                if !y[cell].is_nan() {
                    return Err(format!(
                        "configuration {ci} has two points at tokens {}",
                        data.d[i]
                    ));
                }
                y[cell] = data.y[i];
                w[cell] = data.w[i];
                pos[cell] = (i - cfg.start) as u32;
            }
        }
        let blocks = (0..nd)
            .step_by(GRID_BLOCK)
            .map(|s| s..(s + GRID_BLOCK).min(nd))
            .collect();
        Ok(Grid {
            d,
            y,
            w,
            pos,
            blocks,
            zero: data.w.contains(&0.0),
        })
    }
}
