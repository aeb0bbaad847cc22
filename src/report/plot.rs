//! The Real-vs-Pred grid: one panel per curve of the sweep, rows by T
//! (ascending, top to bottom), columns by N (ascending, left to right), the
//! observed loss solid blue and the fitted law dashed orange over it, under
//! one title and one legend for the whole figure, as the LoopLM paper shows
//! its fit. The axes every panel shares are named once, the loss at the
//! left edge and the x variable under the panels.
//!
//! Pixel layout (what tests and callers may rely on): a header of
//! [`HEADER_HEIGHT`] pixels across the top (the title, and under it the
//! legend), a strip of [`Y_LABEL_WIDTH`] pixels down the left edge (the
//! shared y axis's name) and one of [`X_LABEL_HEIGHT`] pixels along the
//! bottom (the shared x axis's name), and between them the panels without
//! margins: the panel in row `r`, column `c` covers x in `[Y_LABEL_WIDTH +
//! c*w, Y_LABEL_WIDTH + (c+1)*w)` and y in `[HEADER_HEIGHT + r*h,
//! HEADER_HEIGHT + (r+1)*h)` with `w`, `h` the panel size of
//! [`PlotOptions`]. A (T, N) without a curve leaves its cell blank. Several
//! curves with the same (N, T) (different runs) each get a panel: N's
//! column is split into as many columns as the most runs any T has at that
//! N, ordered by run label, and the run label is added to their titles. A
//! single row (or column) of more than [`MAX_LINE`] panels is wrapped, in
//! order, into a near-square grid.
//!
//! Text is drawn with DejaVu Sans bundled in the binary (the `dejavu`
//! crate), so no system font or font library is needed.

use super::FoldReport;
use crate::report::format_count;
use anyhow::{anyhow, bail, Context};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontStyle, FontTransform};
use std::path::Path;

/// One curve: points sorted by tokens, `loss` observed and `pred` from the
/// law, all the same length. `held_out` is empty or one flag per point;
/// `band` is empty or the (lo, hi) of the prediction band at every point.
/// For laws other than LoopLM, `tokens` holds the law's axis variable, `n`
/// and `t` the values that place the panel (column and row), and `label`
/// its title.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Panel {
    pub run: String,
    pub n: f64,
    pub t: f64,
    /// Title of the panel; empty for "T = .., N = ..".
    pub label: String,
    pub tokens: Vec<f64>,
    pub loss: Vec<f64>,
    pub pred: Vec<f64>,
    pub held_out: Vec<bool>,
    pub band: Vec<(f64, f64)>,
    /// For a law that sums along the steps: the run's learning rate,
    /// (step, lr) along the x axis, drawn in a strip under the curve.
    pub schedule: Vec<(f64, f64)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlotOptions {
    /// Size of one panel in pixels (the picture is columns x rows of them).
    pub panel_width: u32,
    pub panel_height: u32,
    /// Most points drawn per line per panel; longer curves are decimated
    /// (min and max of each bucket, so spikes survive) to keep the SVG small.
    pub max_line_points: usize,
    /// Shared loss range of every panel; `None` chooses it from the data:
    /// the 0.5th..99.5th percentile of all real and predicted losses plus 5%
    /// of that span each side. Curves start near loss 11 at step 0; a plain
    /// min..max range would squash the part of the curves worth seeing, so
    /// the first few points run off the top instead.
    pub y_range: Option<(f64, f64)>,
    /// Legend entry of the prediction bands, when panels have them.
    pub band_label: String,
    /// Title of the whole figure; `None` draws [`DEFAULT_TITLE`].
    pub title: Option<String>,
    /// The x axis: its name, and the unit a linear axis divides its values
    /// by (1e9 names it "(B)" after the name, 1e6 "(M)", 1e3 "(K)"); a log
    /// axis labels its decades with the values themselves ("100M", "1B").
    pub x_label: String,
    pub x_unit: f64,
    pub x_scale: XScale,
}

/// The x axis's scale. `Auto` is logarithmic where the positive values
/// span at least [`LOG_SPAN`] (two decades), else linear. On a log axis,
/// points at x <= 0 have no place: they are left out, and the axis's name
/// says how many.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum XScale {
    #[default]
    Auto,
    Linear,
    Log,
}

/// Ratio of the largest to the smallest positive x from which `Auto`
/// chooses a log axis: below two decades a linear axis squeezes little.
pub const LOG_SPAN: f64 = 100.0;

/// Most panels in a single row (or column) before it is wrapped.
pub const MAX_LINE: usize = 5;

/// The figure's title when [`PlotOptions::title`] gives none.
pub const DEFAULT_TITLE: &str = "Real vs Pred";

/// Height in pixels of the title-and-legend header above the panels.
pub const HEADER_HEIGHT: u32 = 84;

/// Width in pixels of the strip left of the panels naming the y axis.
pub const Y_LABEL_WIDTH: u32 = 30;

/// Height in pixels of the strip under the panels naming the x axis.
pub const X_LABEL_HEIGHT: u32 = 36;

impl Default for PlotOptions {
    fn default() -> Self {
        PlotOptions {
            panel_width: 400,
            panel_height: 300,
            max_line_points: 2000,
            y_range: None,
            band_label: "Band".to_string(),
            title: None,
            x_label: "Tokens".to_string(),
            x_unit: 1e9,
            x_scale: XScale::Auto,
        }
    }
}

/// Picture format, from the file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlotFormat {
    Png,
    Svg,
}

impl PlotFormat {
    pub fn from_path(path: &Path) -> anyhow::Result<PlotFormat> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("png") => Ok(PlotFormat::Png),
            Some("svg") => Ok(PlotFormat::Svg),
            _ => bail!(
                "{}: the picture format is chosen by the extension, .png or .svg",
                path.display()
            ),
        }
    }
}

/// Where each panel goes: `rows` are the distinct T, `cols` the distinct N
/// (an N repeated when several runs share an (N, T)), `cells[i]` the
/// (row, column) of `panels[i]`, `dup[i]` whether its (N, T) has other runs.
/// When `wrapped` (a single line of more than [`MAX_LINE`] panels), `rows`
/// and `cols` are the row and column numbers 0, 1, .. of a near-square
/// grid filled row by row in the line's order.
#[derive(Debug, Clone, PartialEq)]
pub struct GridLayout {
    pub rows: Vec<f64>,
    pub cols: Vec<f64>,
    pub cells: Vec<(usize, usize)>,
    pub dup: Vec<bool>,
    pub wrapped: bool,
}

/// Rows and columns of a near-square grid of `n` panels: `ceil(sqrt(n))`
/// columns, as few rows as hold them.
pub fn square_grid(n: usize) -> (usize, usize) {
    let cols = ((n as f64).sqrt().ceil() as usize).max(1);
    (n.div_ceil(cols).max(1), cols)
}

/// A panel's title: its label, else "T = .., N = ..", with the run named
/// where other panels share its (N, T) (`dup`, from [`grid_layout`]).
pub fn panel_title(p: &Panel, dup: bool) -> String {
    let mut title = if p.label.is_empty() {
        format!("T = {}, N = {}", p.t, format_count(p.n))
    } else {
        p.label.clone()
    };
    // A label that already names the run is not given it twice.
    if dup && !title.contains(p.run.as_str()) {
        title = format!("{title} ({})", p.run);
    }
    title
}

pub fn grid_layout(panels: &[Panel]) -> GridLayout {
    let distinct = |it: &mut dyn Iterator<Item = f64>| {
        let mut v: Vec<f64> = it.collect();
        v.sort_by(f64::total_cmp);
        v.dedup();
        v
    };
    let ts = distinct(&mut panels.iter().map(|p| p.t));
    let ns = distinct(&mut panels.iter().map(|p| p.n));
    let pos = |v: &[f64], x: f64| v.iter().position(|&y| y == x).expect("listed above");

    // Rank of each panel among those with its (N, T), by run label.
    let mut rank = vec![0usize; panels.len()];
    let mut dup = vec![false; panels.len()];
    let mut width = vec![1usize; ns.len()];
    for (i, p) in panels.iter().enumerate() {
        let same = panels
            .iter()
            .enumerate()
            .filter(|(_, q)| q.n == p.n && q.t == p.t);
        rank[i] = same
            .clone()
            .filter(|(j, q)| (q.run.as_str(), *j) < (p.run.as_str(), i))
            .count();
        let count = same.count();
        dup[i] = count > 1;
        let c = &mut width[pos(&ns, p.n)];
        *c = (*c).max(count);
    }
    let first_col: Vec<usize> = width
        .iter()
        .scan(0, |acc, w| {
            let c = *acc;
            *acc += w;
            Some(c)
        })
        .collect();
    let cols: Vec<f64> = ns
        .iter()
        .zip(&width)
        .flat_map(|(&n, &w)| std::iter::repeat_n(n, w))
        .collect();
    let cells: Vec<(usize, usize)> = panels
        .iter()
        .zip(&rank)
        .map(|(p, &k)| (pos(&ts, p.t), first_col[pos(&ns, p.n)] + k))
        .collect();
    // One long row (or column) makes a picture thousands of pixels wide
    // and a few hundred high: wrap it, keeping the order along the line.
    let line = if ts.len() == 1 {
        cols.len()
    } else if cols.len() == 1 {
        ts.len()
    } else {
        0
    };
    if line > MAX_LINE {
        let (nr, nc) = square_grid(line);
        let at = |(r, c): (usize, usize)| {
            let k = r + c;
            (k / nc, k % nc)
        };
        return GridLayout {
            rows: (0..nr).map(|i| i as f64).collect(),
            cols: (0..nc).map(|i| i as f64).collect(),
            cells: cells.into_iter().map(at).collect(),
            dup,
            wrapped: true,
        };
    }
    GridLayout {
        rows: ts,
        cols,
        cells,
        dup,
        wrapped: false,
    }
}

/// Title of an eval fold's grid, `number` counting from 1 as its file
/// name does: e.g. "sizes fold 3: train N = 53M, 134M, 374M · held-out
/// R² = 0.9971".
pub fn fold_title(number: usize, f: &FoldReport) -> String {
    format!(
        "{} fold {number}: {} · held-out R² = {}",
        f.protocol,
        f.fold,
        title_r2(f.r2)
    )
}

/// R² as the tables print it; NaN (constant held-out loss) as "n/a", since
/// the tables' "-" would read as a minus sign after "=".
pub fn title_r2(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.4}")
    } else {
        "n/a".to_string()
    }
}

/// Panels from a `pred.csv` (`run,N,T,tokens,loss,pred`; other columns
/// ignored), curves in order of first appearance, sorted by tokens.
pub fn read_pred_csv(path: &Path) -> anyhow::Result<Vec<Panel>> {
    let needs = "a pred.csv needs columns run,N,T,tokens,loss,pred, or a law fit's fit.json \
                 beside it; to plot another CSV, give --fit to compute the predictions";
    // The data reader: ragged rows, bad UTF-8 and bad cells are named by
    // line and column as in every other input.
    let table = crate::data::Table::read(path)?;
    let col = |name: &str| {
        table
            .find(name)
            .with_context(|| format!("{}: no column '{name}' ({needs})", path.display()))
    };
    let run = col("run")?;
    let at = |r: usize| format!("{}:{}", path.display(), table.lines[r]);
    let numeric = ["N", "T", "tokens", "loss", "pred"]
        .into_iter()
        .map(|name| col(name).map(|c| (name, c)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    // (run, N, T) and its points as (tokens, loss, pred).
    type Curve = (String, f64, f64, Vec<(f64, f64, f64)>);
    let mut curves: Vec<Curve> = Vec::new();
    let mut index = std::collections::HashMap::new();
    for r in 0..table.rows() {
        let mut v = [0.0; 5];
        for (slot, &(name, c)) in v.iter_mut().zip(&numeric) {
            let text = &table.columns[c][r];
            let Ok(x) = text.parse::<f64>() else {
                bail!(
                    "{}: column '{name}' ({}): '{}' is not a number",
                    at(r),
                    c + 1,
                    text.escape_debug()
                );
            };
            if !x.is_finite() {
                bail!(
                    "{}: column '{name}' is {x}, not a finite number (a pred.csv plotted on its \
                     own must be finite everywhere; give --fit to plot the rows the law is \
                     finite at)",
                    at(r)
                );
            }
            *slot = x;
        }
        let [n, t, tokens, loss, pred] = v;
        let name = &table.columns[run][r];
        let key = (name.to_string(), n.to_bits(), t.to_bits());
        let i = *index.entry(key).or_insert_with(|| {
            curves.push((name.to_string(), n, t, Vec::new()));
            curves.len() - 1
        });
        curves[i].3.push((tokens, loss, pred));
    }
    if curves.is_empty() {
        bail!("{}: no rows", path.display());
    }
    Ok(curves
        .into_iter()
        .map(|(run, n, t, mut pts)| {
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            Panel {
                run,
                n,
                t,
                label: String::new(),
                tokens: pts.iter().map(|p| p.0).collect(),
                loss: pts.iter().map(|p| p.1).collect(),
                pred: pts.iter().map(|p| p.2).collect(),
                held_out: Vec::new(),
                band: Vec::new(),
                schedule: Vec::new(),
            }
        })
        .collect())
}

// Matplotlib's first three default colours, as in the LoopLM paper's figure.
pub(super) const REAL: RGBColor = RGBColor(31, 119, 180);
pub(super) const PRED: RGBColor = RGBColor(255, 127, 14);
pub(super) const HELD: RGBColor = RGBColor(44, 160, 44);
/// The prediction's orange, pale: bands stay behind both lines.
const BAND: RGBColor = RGBColor(255, 222, 192);
pub(super) const FONT: &str = "sans-serif";

/// What a picture of panels draws: its title, its legend, the y range its
/// panels share and each panel's contents. The Real-vs-Pred grid
/// ([`draw_grid`]) and the residual grid ([`super::draw_residuals`]) are
/// two of them; [`draw_figure`] gives both the same checks, layout, header
/// style and x axis.
pub(super) trait Figure {
    /// The title of the whole figure.
    fn title(&self, opts: &PlotOptions) -> String;
    /// The legend's entries, left to right.
    fn legend(&self, panels: &[Panel], opts: &PlotOptions) -> Vec<(String, Swatch)>;
    /// The y range every panel shares.
    fn y_range(&self, panels: &[Panel], opts: &PlotOptions) -> (f64, f64);
    /// The name of the y axis every panel shares, written once.
    fn y_label(&self) -> &str;
    /// Draw panel `p` into `area`, under `title`, on the shared ranges.
    fn draw_panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        p: &Panel,
        title: &str,
        x_range: (f64, f64),
        y_range: (f64, f64),
        opts: &PlotOptions,
    ) -> anyhow::Result<()>;
}

/// Draw the grid to `path`, PNG or SVG by its extension (an existing file is
/// replaced; refusing that is the caller's business).
pub fn draw_grid(path: &Path, panels: &[Panel], opts: &PlotOptions) -> anyhow::Result<()> {
    draw_figure(path, panels, opts, &RealVsPred)
}

/// Draw `figure` of `panels` to `path`, PNG or SVG by its extension,
/// all-or-nothing (an existing file is replaced).
pub(super) fn draw_figure(
    path: &Path,
    panels: &[Panel],
    opts: &PlotOptions,
    figure: &impl Figure,
) -> anyhow::Result<()> {
    let format = PlotFormat::from_path(path)?;
    if panels.is_empty() {
        bail!("nothing to plot: no curves");
    }
    for p in panels {
        let n = p.tokens.len();
        if p.loss.len() != n
            || p.pred.len() != n
            || !(p.held_out.is_empty() || p.held_out.len() == n)
            || !(p.band.is_empty() || p.band.len() == n)
        {
            bail!(
                "panel T = {}, N = {}: arrays of different lengths",
                p.t,
                p.n
            );
        }
    }
    if opts.panel_width < 100 || opts.panel_height < 100 || opts.max_line_points < 4 {
        bail!("panels must be at least 100 x 100 px and lines at least 4 points");
    }
    register_fonts()?;
    let layout = grid_layout(panels);
    let size = (
        Y_LABEL_WIDTH + opts.panel_width * layout.cols.len() as u32,
        HEADER_HEIGHT + opts.panel_height * layout.rows.len() as u32 + X_LABEL_HEIGHT,
    );
    // From here on the x scale is decided: Auto never reaches the panels.
    let opts = &PlotOptions {
        x_scale: resolve_x_scale(panels, opts),
        ..opts.clone()
    };
    // Ranges wider than a double can hold have no ticks to draw (the
    // plotting library would search for them forever).
    let ranges = (token_range(panels, opts), figure.y_range(panels, opts));
    for (axis, (lo, hi)) in [("x", ranges.0), ("y", ranges.1)] {
        if !(lo.is_finite() && hi.is_finite() && (hi - lo).is_finite()) {
            bail!(
                "nothing can be drawn: the {axis} axis would run from {lo:e} to {hi:e}, beyond \
                 what a figure can show (check the data's {} values)",
                if axis == "x" {
                    "axis"
                } else {
                    "loss and predicted"
                }
            );
        }
    }
    // Drawn to a temporary file renamed into place: an interrupted or
    // failed drawing never leaves half a picture.
    crate::output::write_via_path(path, |tmp| match format {
        PlotFormat::Png => render(
            BitMapBackend::new(tmp, size).into_drawing_area(),
            panels,
            &layout,
            ranges,
            opts,
            figure,
        ),
        PlotFormat::Svg => render(
            SVGBackend::new(tmp, size).into_drawing_area(),
            panels,
            &layout,
            ranges,
            opts,
            figure,
        ),
    })
}

pub(super) fn register_fonts() -> anyhow::Result<()> {
    static DONE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *DONE.get_or_init(|| {
        use plotters::style::register_font;
        register_font(FONT, FontStyle::Normal, dejavu::sans::regular()).is_ok()
            && register_font(FONT, FontStyle::Bold, dejavu::sans::bold()).is_ok()
    });
    if !ok {
        bail!("the bundled DejaVu font could not be loaded");
    }
    Ok(())
}

/// Plotters' errors carry the backend's error type; only the message matters.
pub(super) fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("{e}")
}

fn render<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    panels: &[Panel],
    layout: &GridLayout,
    (x_range, y_range): ((f64, f64), (f64, f64)),
    opts: &PlotOptions,
    figure: &impl Figure,
) -> anyhow::Result<()> {
    root.fill(&WHITE).map_err(err)?;
    let (head, rest) = root.split_vertically(HEADER_HEIGHT);
    draw_header(&head, &figure.title(opts), &figure.legend(panels, opts))?;
    let height = rest.dim_in_pixel().1;
    let (rest, foot) = rest.split_vertically(height.saturating_sub(X_LABEL_HEIGHT));
    let (left, body) = rest.split_horizontally(Y_LABEL_WIDTH);
    draw_axis_names(&left, &foot, figure.y_label(), &x_axis_name(panels, opts))?;
    let areas = body.split_evenly((layout.rows.len(), layout.cols.len()));
    for (i, p) in panels.iter().enumerate() {
        let (r, c) = layout.cells[i];
        let title = panel_title(p, layout.dup[i]);
        let area = &areas[r * layout.cols.len() + c];
        figure.draw_panel(area, p, &title, x_range, y_range, opts)?;
    }
    root.present().map_err(err)?;
    Ok(())
}

/// The names of the axes every panel shares: the y axis's turned up the
/// left strip, the x axis's under the panels, each centred on them.
fn draw_axis_names<DB: DrawingBackend>(
    left: &DrawingArea<DB, Shift>,
    foot: &DrawingArea<DB, Shift>,
    y_name: &str,
    x_name: &str,
) -> anyhow::Result<()> {
    let (lw, lh) = left.dim_in_pixel();
    let style = (FONT, 18)
        .into_font()
        .transform(FontTransform::Rotate270)
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Center));
    left.draw(&Text::new(y_name, (lw as i32 / 2, lh as i32 / 2), style))
        .map_err(err)?;
    let (fw, fh) = foot.dim_in_pixel();
    let centre = (Y_LABEL_WIDTH + (fw - Y_LABEL_WIDTH) / 2) as i32;
    let room = fw as i32 - 24;
    let size = fit_font(18, |s| {
        Ok(text_width(foot, x_name, s, FontStyle::Normal) <= room)
    })?;
    let style = (FONT, size)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Center));
    foot.draw(&Text::new(x_name, (centre, fh as i32 / 2), style))
        .map_err(err)?;
    Ok(())
}

/// The x axis's name under the panels: with its unit on a linear axis
/// ("Tokens (B)"), and on a log axis how many points it leaves out.
pub fn x_axis_name(panels: &[Panel], opts: &PlotOptions) -> String {
    let name = &opts.x_label;
    if opts.x_scale != XScale::Log {
        let unit = match opts.x_unit {
            1e9 => " (B)",
            1e6 => " (M)",
            1e3 => " (K)",
            _ => "",
        };
        return format!("{name}{unit}");
    }
    let left_out: Vec<f64> = panels
        .iter()
        .flat_map(|p| &p.tokens)
        .copied()
        .filter(|v| !(*v > 0.0 && v.is_finite()))
        .collect();
    match left_out.len() {
        0 => format!("{name} (log scale)"),
        n => {
            let at = if left_out.iter().all(|&v| v == 0.0) {
                "at 0"
            } else {
                "at or below 0"
            };
            let points = if n == 1 { "point" } else { "points" };
            format!("{name} (log scale; {n} {points} {at} not drawn)")
        }
    }
}

/// `opts.x_scale` decided for `panels`: `Auto` is [`XScale::Log`] where
/// the positive x values span at least [`LOG_SPAN`], else linear; a log
/// axis needs a positive value, so without one it is linear whatever was
/// asked.
pub fn resolve_x_scale(panels: &[Panel], opts: &PlotOptions) -> XScale {
    let positive = || {
        panels
            .iter()
            .flat_map(|p| &p.tokens)
            .copied()
            .filter(|v| *v > 0.0 && v.is_finite())
    };
    let lo = positive().fold(f64::INFINITY, f64::min);
    let hi = positive().fold(0.0, f64::max);
    match opts.x_scale {
        _ if !lo.is_finite() => XScale::Linear,
        XScale::Auto if hi / lo >= LOG_SPAN => XScale::Log,
        XScale::Auto => XScale::Linear,
        s => s,
    }
}

/// A legend entry's sample.
#[derive(Clone, Copy)]
pub(super) enum Swatch {
    Line,
    Dashed,
    Area,
    Dot,
}

/// The legend entry of the held-out markers, when any panel has some.
pub(super) fn held_out_entry(panels: &[Panel]) -> Option<(String, Swatch)> {
    panels
        .iter()
        .any(|p| p.held_out.iter().any(|&h| h))
        .then(|| ("Held out".to_string(), Swatch::Dot))
}

/// Width of a legend sample (three dashes of the prediction), the gap to
/// its label, and between entries.
const SWATCH: i32 = 37;
const SWATCH_GAP: i32 = 8;
const ENTRY_GAP: i32 = 28;

/// The title, centred, and under it the one legend of the figure: every
/// panel draws the same things, so one legend says it without covering
/// any curve.
pub(super) fn draw_header<DB: DrawingBackend>(
    head: &DrawingArea<DB, Shift>,
    title: &str,
    entries: &[(String, Swatch)],
) -> anyhow::Result<()> {
    let width = head.dim_in_pixel().0 as i32;
    // Room left and right so that text shrunk to fit does not touch the edge.
    let room = width - 24;
    let size = fit_font(26, |s| {
        let w = text_width(head, title, s, FontStyle::Bold);
        Ok(w <= room)
    })?;
    let style = (FONT, size, FontStyle::Bold)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Center));
    head.draw(&Text::new(title, (width / 2, 28), style))
        .map_err(err)?;

    let row_width = |s: u32| -> anyhow::Result<i32> {
        let mut w = -ENTRY_GAP;
        for (label, _) in entries {
            w += SWATCH + SWATCH_GAP + text_width(head, label, s, FontStyle::Normal) + ENTRY_GAP;
        }
        Ok(w)
    };
    let size = fit_font(18, |s| Ok(row_width(s)? <= room))?;
    let style = (FONT, size)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    let y = 64;
    let mut x = (width - row_width(size)?) / 2;
    for (label, swatch) in entries {
        match swatch {
            Swatch::Line => head.draw(&PathElement::new(
                vec![(x, y), (x + SWATCH, y)],
                REAL.stroke_width(2),
            )),
            Swatch::Dashed => head.draw(&DashedPathElement::new(
                vec![(x, y), (x + SWATCH, y)],
                9,
                5,
                PRED.stroke_width(2),
            )),
            Swatch::Area => head.draw(&Rectangle::new(
                [(x, y - 6), (x + SWATCH, y + 6)],
                BAND.filled(),
            )),
            Swatch::Dot => head.draw(&Circle::new((x + SWATCH / 2, y), 4, HELD.filled())),
        }
        .map_err(err)?;
        x += SWATCH + SWATCH_GAP;
        head.draw(&Text::new(label.as_str(), (x, y), style.clone()))
            .map_err(err)?;
        x += text_width(head, label, size, FontStyle::Normal) + ENTRY_GAP;
    }
    Ok(())
}

/// The largest font size from `start` down to 10 that `fits`, else 10:
/// a long title over a narrow grid shrinks rather than runs off the edge.
fn fit_font(start: u32, fits: impl Fn(u32) -> anyhow::Result<bool>) -> anyhow::Result<u32> {
    for s in (10..=start).rev() {
        if fits(s)? {
            return Ok(s);
        }
    }
    Ok(10)
}

fn text_width<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
    size: u32,
    style: FontStyle,
) -> i32 {
    let font = (FONT, size, style).into_text_style(area);
    // The bundled font was loaded before drawing; should estimating fail
    // anyway, a rough width keeps the layout going.
    area.estimate_text_size(text, &font)
        .map_or(text.chars().count() as i32 * size as i32 / 2, |(w, _)| {
            w as i32
        })
}

/// A panel's chart: x and y in axis coordinates.
pub(super) type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A panel's frame: its title, the x axis (scaled as `opts` says) and the
/// y axis, ticks labelled with the digits that tell them apart
/// ([`tick_label`]), both with light grid lines; `names` names the axes
/// (x, y) on the panel itself, where the panels do not share them.
pub(super) fn panel_chart<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    title: &str,
    x_range: (f64, f64),
    (y_lo, y_hi): (f64, f64),
    names: Option<(&str, &str)>,
    opts: &PlotOptions,
) -> anyhow::Result<Chart<'a, DB>> {
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 21))
        .margin(8)
        // Room for half the last x tick's label ("1.15e7").
        .margin_right(24)
        .x_label_area_size(if names.is_some() { 42 } else { 26 })
        .y_label_area_size(52)
        .build_cartesian_2d(x_range.0..x_range.1, y_lo..y_hi)
        .map_err(err)?;
    let log = opts.x_scale == XScale::Log;
    let x_step = tick_step(x_range);
    let y_step = tick_step((y_lo, y_hi));
    // A log axis labels its decades; one spanning less than two of them
    // labels every tick.
    let every = key_points(x_range)
        .iter()
        .filter(|v| (*v - v.round()).abs() < 1e-9)
        .count()
        < 2;
    let x_fmt = |v: &f64| {
        if log {
            log_tick(*v, opts.x_unit, every)
        } else {
            tick_label(*v, x_step)
        }
    };
    let y_fmt = |v: &f64| tick_label(*v, y_step);
    let mut mesh = chart.configure_mesh();
    if let Some((x_name, y_name)) = names {
        mesh.x_desc(x_name).y_desc(y_name);
    }
    mesh.x_labels(TICKS)
        .y_labels(TICKS)
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 16))
        .max_light_lines(1)
        .bold_line_style(RGBColor(220, 220, 220))
        .light_line_style(RGBColor(242, 242, 242))
        .draw()
        .map_err(err)?;
    Ok(chart)
}

/// Most labelled ticks on an axis.
const TICKS: usize = 6;

/// The ticks plotters puts on an axis over `range`.
fn key_points((lo, hi): (f64, f64)) -> Vec<f64> {
    plotters::coord::ranged1d::Ranged::key_points(&RangedCoordf64::from(lo..hi), TICKS)
}

/// The distance between neighbouring ticks over `range`.
fn tick_step(range: (f64, f64)) -> f64 {
    match key_points(range)[..] {
        [a, b, ..] => b - a,
        _ => (range.1 - range.0).abs(),
    }
}

/// A log axis's tick at log10 value `v` (of x / `unit`): x in
/// [`format_count`]'s style at a decade ("100M", "1B"), blank between
/// decades unless `every`.
fn log_tick(v: f64, unit: f64, every: bool) -> String {
    if !every && (v - v.round()).abs() > 1e-9 {
        return String::new();
    }
    let x = 10f64.powf(v) * unit;
    if x >= 1000.0 {
        format_count(x)
    } else {
        format_sig(x, 3)
    }
}

/// The points of `p` on the x axis, in its coordinates.
pub(super) fn x_coords(p: &Panel, opts: &PlotOptions) -> Vec<f64> {
    p.tokens.iter().map(|&d| x_coord(d, opts)).collect()
}

/// `ys` against `xs` as a solid blue line, decimated to
/// [`PlotOptions::max_line_points`] and clipped to the y range; thinner
/// where the points are closer than about two pixels, else noise turns the
/// line into a band that hides the prediction.
pub(super) fn draw_solid_line<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    xs: &[f64],
    ys: &[f64],
    (y_lo, y_hi): (f64, f64),
    opts: &PlotOptions,
) -> anyhow::Result<()> {
    let pts = decimate(xs, ys, opts.max_line_points);
    let dense = pts.len() > opts.panel_width as usize / 2;
    let style = REAL.stroke_width(if dense { 1 } else { 2 });
    // Lines are clipped to the y range by hand: plotters would draw them
    // over the axes and the neighbouring panels.
    for piece in clip_y(&pts, y_lo, y_hi) {
        if dense {
            // One pixel wide: drawn as plain segments, without joins.
            chart
                .draw_series(LineSeries::new(piece, style))
                .map_err(err)?;
            continue;
        }
        let px: Vec<(i32, i32)> = piece.iter().map(|p| chart.backend_coord(p)).collect();
        for run in cut_sharp_turns(&px) {
            chart
                .draw_series(LineSeries::new(piece[run].iter().copied(), style))
                .map_err(err)?;
        }
    }
    Ok(())
}

/// Index ranges of the runs of a polyline (in pixels) to draw as separate
/// paths, cut at every turn sharper than a right angle (neighbouring runs
/// share that vertex). The bitmap backend fills a thick path as one polygon
/// whose mitre at such a turn reaches far beyond the line: on noisy
/// curves, spikes across titles and neighbouring panels.
pub(super) fn cut_sharp_turns(px: &[(i32, i32)]) -> Vec<std::ops::Range<usize>> {
    let mut runs = Vec::new();
    let mut start = 0;
    let mut last: Option<(i64, i64)> = None;
    for i in 1..px.len() {
        let d = (
            i64::from(px[i].0 - px[i - 1].0),
            i64::from(px[i].1 - px[i - 1].1),
        );
        if d == (0, 0) {
            continue;
        }
        if let Some(l) = last {
            if l.0 * d.0 + l.1 * d.1 < 0 {
                runs.push(start..i);
                start = i - 1;
            }
        }
        last = Some(d);
    }
    runs.push(start..px.len());
    runs
}

/// Green markers at the held-out points of `p`, at (`xs`, `ys`) inside the
/// y range: at most one every 12 pixels of panel width or so (every k-th
/// point), since markers on every point of a long curve merge into a blob.
pub(super) fn draw_held_out<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    p: &Panel,
    xs: &[f64],
    ys: &[f64],
    (y_lo, y_hi): (f64, f64),
    opts: &PlotOptions,
) -> anyhow::Result<()> {
    let held: Vec<(f64, f64)> = (0..xs.len())
        .filter(|&i| p.held_out.get(i).copied().unwrap_or(false))
        .map(|i| (xs[i], ys[i]))
        .filter(|&(x, y)| x.is_finite() && y >= y_lo && y <= y_hi)
        .collect();
    let stride = held.len().div_ceil(max_markers(opts)).max(1);
    chart
        .draw_series(
            held.iter()
                .step_by(stride)
                .map(|&pt| Circle::new(pt, 3, HELD.filled())),
        )
        .map_err(err)?;
    Ok(())
}

/// Most held-out markers in a panel.
pub fn max_markers(opts: &PlotOptions) -> usize {
    (opts.panel_width as usize / 12).max(8)
}

/// The band `lo..hi` at `xs` as one pale polygon, lo forwards and hi back,
/// clamped to the y range (for a filled area that is the clip). Bands come
/// from a smooth law, so every k-th point keeps their shape.
pub(super) fn draw_band<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    xs: &[f64],
    band: &[(f64, f64)],
    (y_lo, y_hi): (f64, f64),
    opts: &PlotOptions,
) -> anyhow::Result<()> {
    if band.is_empty() {
        return Ok(());
    }
    let step = band.len().div_ceil(opts.max_line_points.max(2) / 2).max(1);
    let keep: Vec<usize> = (0..band.len())
        .step_by(step)
        .chain(std::iter::once(band.len() - 1))
        .filter(|&i| xs[i].is_finite() && band[i].0.is_finite() && band[i].1.is_finite())
        .collect();
    let clamp = |v: f64| v.clamp(y_lo, y_hi);
    // One polygon per stretch in view: clamped, a stretch wholly above or
    // below the range would leave a sliver along the edge.
    let in_view = |&i: &usize| band[i].0 <= y_hi && band[i].1 >= y_lo;
    for stretch in keep.split(|i| !in_view(i)) {
        let outline: Vec<(f64, f64)> = stretch
            .iter()
            .map(|&i| (xs[i], clamp(band[i].0)))
            .chain(stretch.iter().rev().map(|&i| (xs[i], clamp(band[i].1))))
            .collect();
        if outline.len() >= 4 {
            chart
                .draw_series(std::iter::once(Polygon::new(outline, BAND.filled())))
                .map_err(err)?;
        }
    }
    Ok(())
}

/// The legend's label of the bands of `panels` on the y range `y_span`
/// wide: `opts.band_label`, and where their median width is under two
/// pixels of a panel's plotting area, that they are too thin to see, and
/// how wide they are.
pub fn band_legend(panels: &[Panel], y_span: f64, opts: &PlotOptions) -> String {
    let mut w: Vec<f64> = panels
        .iter()
        .flat_map(|p| &p.band)
        .map(|(lo, hi)| hi - lo)
        .filter(|v| v.is_finite())
        .collect();
    if w.is_empty() {
        return opts.band_label.clone();
    }
    w.sort_unstable_by(f64::total_cmp);
    let median = w[w.len() / 2];
    // The plotting area: the panel less its margins, title and tick labels.
    let plot_height = f64::from(opts.panel_height.saturating_sub(80).max(1));
    if median / y_span * plot_height >= 2.0 {
        return opts.band_label.clone();
    }
    format!(
        "{}, median width {}: too thin to see here",
        opts.band_label,
        format_sig(median, 2)
    )
}

/// The Real-vs-Pred grid.
struct RealVsPred;

impl Figure for RealVsPred {
    fn title(&self, opts: &PlotOptions) -> String {
        opts.title.as_deref().unwrap_or(DEFAULT_TITLE).to_string()
    }

    fn legend(&self, panels: &[Panel], opts: &PlotOptions) -> Vec<(String, Swatch)> {
        let mut entries = vec![
            ("Real".to_string(), Swatch::Line),
            ("Pred".to_string(), Swatch::Dashed),
        ];
        if panels.iter().any(|p| !p.band.is_empty()) {
            let (lo, hi) = self.y_range(panels, opts);
            entries.push((band_legend(panels, hi - lo, opts), Swatch::Area));
        }
        entries.extend(held_out_entry(panels));
        entries
    }

    fn y_range(&self, panels: &[Panel], opts: &PlotOptions) -> (f64, f64) {
        opts.y_range.unwrap_or_else(|| loss_range(panels))
    }

    fn y_label(&self) -> &str {
        "Loss"
    }

    fn draw_panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        p: &Panel,
        title: &str,
        x_range: (f64, f64),
        (y_lo, y_hi): (f64, f64),
        opts: &PlotOptions,
    ) -> anyhow::Result<()> {
        // A run's learning rate takes a strip under its curve.
        let (area, strip) = if p.schedule.is_empty() {
            (area.clone(), None)
        } else {
            let h = area.dim_in_pixel().1;
            let (top, bottom) = area.split_vertically(h - h * SCHEDULE_STRIP / 100);
            (top, Some(bottom))
        };
        if let Some(strip) = &strip {
            draw_schedule(strip, p, x_range, opts)?;
        }
        let mut chart = panel_chart(&area, title, x_range, (y_lo, y_hi), None, opts)?;
        let xs = x_coords(p, opts);

        // Back to front: band, held-out markers, real line, prediction. The
        // prediction is smooth and the real line noisy: drawn last, it shows
        // through the noise; and the markers sit on the real curve, where a
        // good prediction runs too, so drawn last they would hide exactly
        // the part of it being judged.
        draw_band(&mut chart, &xs, &p.band, (y_lo, y_hi), opts)?;
        draw_held_out(&mut chart, p, &xs, &p.loss, (y_lo, y_hi), opts)?;
        draw_solid_line(&mut chart, &xs, &p.loss, (y_lo, y_hi), opts)?;
        let pred = decimate(&xs, &p.pred, opts.max_line_points);
        for piece in clip_y(&pred, y_lo, y_hi) {
            chart
                .draw_series(DashedLineSeries::new(piece, 9, 5, PRED.stroke_width(2)))
                .map_err(err)?;
        }
        // A curve of one point has no line: its real and predicted values
        // are marked instead.
        if let ([x], [real], [pred]) = (xs.as_slice(), p.loss.as_slice(), p.pred.as_slice()) {
            for (y, style) in [(*real, REAL.filled()), (*pred, PRED.stroke_width(2))] {
                if (y_lo..=y_hi).contains(&y) {
                    chart
                        .draw_series(std::iter::once(Circle::new((*x, y), 4, style)))
                        .map_err(err)?;
                }
            }
        }
        Ok(())
    }
}

/// Percent of a panel's height its learning-rate strip takes.
const SCHEDULE_STRIP: u32 = 24;

/// Colour of the learning rate.
const LR: RGBColor = RGBColor(90, 90, 90);

/// Panel `p`'s learning rate along the shared x range, from 0 to its
/// peak, in `area` (a strip under its curve).
fn draw_schedule<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    p: &Panel,
    x_range: (f64, f64),
    opts: &PlotOptions,
) -> anyhow::Result<()> {
    let top = p.schedule.iter().fold(0.0f64, |m, s| m.max(s.1));
    if !(top > 0.0 && top.is_finite()) {
        return Ok(());
    }
    let (xs, ys): (Vec<f64>, Vec<f64>) = p
        .schedule
        .iter()
        .map(|&(k, lr)| (x_coord(k, opts), lr))
        .filter(|(x, _)| x.is_finite() && *x >= x_range.0 && *x <= x_range.1)
        .unzip();
    let mut chart = ChartBuilder::on(area)
        .margin(8)
        .margin_right(24)
        .margin_top(0)
        .y_label_area_size(52)
        .build_cartesian_2d(x_range.0..x_range.1, 0.0..top * 1.1)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_labels(2)
        .y_label_formatter(&|v: &f64| match *v {
            0.0 => "0".to_string(),
            v => format!("{v:.0e}"),
        })
        .y_desc("LR")
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 13))
        .max_light_lines(0)
        .bold_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(err)?;
    let pts = decimate(&xs, &ys, opts.max_line_points);
    chart
        .draw_series(LineSeries::new(pts, LR.stroke_width(1)))
        .map_err(err)?;
    Ok(())
}

/// Tick label: at most `decimals` decimals, trailing zeros after the
/// point dropped ("2.5", "10", "200").
pub(super) fn tick(v: f64, decimals: usize) -> String {
    trim_zeros(format!("{v:.decimals$}"))
}

/// Zeros after a decimal point dropped, and the point if nothing follows
/// it; "-0" is "0".
fn trim_zeros(s: String) -> String {
    let t = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s.as_str()
    };
    if t == "-0" {
        "0".to_string()
    } else {
        t.to_string()
    }
}

/// `v` to `sig` significant digits, trailing zeros dropped: plain from
/// 0.001 up to 100000 ("0.0425", "812.3"), else as mantissa and exponent
/// ("1.05e7", "3e-5"); the style of every number in the pictures' ticks
/// and titles.
pub fn format_sig(v: f64, sig: usize) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    if v == 0.0 {
        return "0".to_string();
    }
    let sig = sig.clamp(1, 17);
    // The exponent after rounding, so 99999.7 to 3 digits is 1e5.
    let e = format!("{:.*e}", sig - 1, v);
    let (mantissa, exp) = e.split_once('e').expect("exponent form");
    let exp: i32 = exp.parse().expect("integer exponent");
    if (-3..5).contains(&exp) {
        let decimals = (sig as i32 - 1 - exp).max(0) as usize;
        trim_zeros(format!("{v:.decimals$}"))
    } else {
        format!("{}e{exp}", trim_zeros(mantissa.to_string()))
    }
}

/// The label of tick `v` on an axis whose ticks are `step` apart: in
/// [`format_sig`]'s style, with the significant digits that tell it from
/// its neighbours ("9.5e6", "1e7", "1.05e7"; "-0.02", "0", "0.02").
pub fn tick_label(v: f64, step: f64) -> String {
    if !(step.is_finite() && step > 0.0) {
        return format_sig(v, 3);
    }
    // A tick at zero computed as a sum of steps can be 1e-17.
    if v.abs() < step * 1e-6 {
        return "0".to_string();
    }
    // The step's own digits ("2.5" has two), and how far above it v is.
    let step_digits = format!("{step:.2e}");
    let step_mantissa =
        trim_zeros(step_digits[..step_digits.find('e').expect("exponent form")].to_string());
    let step_sig = step_mantissa.chars().filter(char::is_ascii_digit).count() as i32;
    let above = v.abs().log10().floor() - step.log10().floor();
    format_sig(v, (above as i32 + step_sig).max(1) as usize)
}

/// Where value `v` of the x variable sits on the x axis.
fn x_coord(v: f64, opts: &PlotOptions) -> f64 {
    if opts.x_scale == XScale::Log {
        (v / opts.x_unit).log10()
    } else {
        v / opts.x_unit
    }
}

/// Shared x range in the axis's units, from 0 (or below, if the data is);
/// a log axis from the smallest value.
fn token_range(panels: &[Panel], opts: &PlotOptions) -> (f64, f64) {
    let finite = || {
        panels
            .iter()
            .flat_map(|p| &p.tokens)
            .map(|&v| x_coord(v, opts))
            .filter(|v| v.is_finite())
    };
    let floor = if opts.x_scale == XScale::Log {
        f64::INFINITY
    } else {
        0.0
    };
    let lo = finite().fold(floor, f64::min);
    let hi = finite().fold(f64::NEG_INFINITY, f64::max);
    if hi > lo {
        (lo, hi)
    } else {
        (lo - 0.5, lo + 0.5)
    }
}

/// Shared loss range; see [`PlotOptions::y_range`].
fn loss_range(panels: &[Panel]) -> (f64, f64) {
    let mut v: Vec<f64> = panels
        .iter()
        .flat_map(|p| p.loss.iter().chain(&p.pred))
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    if v.is_empty() {
        return (0.0, 1.0);
    }
    v.sort_unstable_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    let (lo, hi) = (at(0.005), at(0.995));
    let pad = if hi > lo { 0.05 * (hi - lo) } else { 0.5 };
    (lo - pad, hi + pad)
}

/// At most `max` points keeping the shape: the first and last point and,
/// for each of `max/2 - 1` buckets of consecutive points, its lowest and
/// highest in index order. Non-finite points are dropped.
fn decimate(xs: &[f64], ys: &[f64], max: usize) -> Vec<(f64, f64)> {
    let pts: Vec<(f64, f64)> = xs
        .iter()
        .zip(ys)
        .map(|(&x, &y)| (x, y))
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    if pts.len() <= max {
        return pts;
    }
    let inner = &pts[1..pts.len() - 1];
    let buckets = max / 2 - 1;
    let mut out = Vec::with_capacity(max);
    out.push(pts[0]);
    for b in 0..buckets {
        let chunk = &inner[b * inner.len() / buckets..(b + 1) * inner.len() / buckets];
        if chunk.is_empty() {
            continue;
        }
        let lo = (0..chunk.len()).min_by(|&i, &j| chunk[i].1.total_cmp(&chunk[j].1));
        let hi = (0..chunk.len()).max_by(|&i, &j| chunk[i].1.total_cmp(&chunk[j].1));
        let (a, b) = (lo.expect("non-empty"), hi.expect("non-empty"));
        out.push(chunk[a.min(b)]);
        if a != b {
            out.push(chunk[a.max(b)]);
        }
    }
    out.push(pts[pts.len() - 1]);
    out
}

/// The parts of a polyline inside `lo <= y <= hi`, cut where it crosses.
fn clip_y(pts: &[(f64, f64)], lo: f64, hi: f64) -> Vec<Vec<(f64, f64)>> {
    let mut pieces: Vec<Vec<(f64, f64)>> = Vec::new();
    let inside = |y: f64| y >= lo && y <= hi;
    if let [only] = pts {
        if inside(only.1) {
            pieces.push(vec![*only]);
        }
        return pieces;
    }
    // Whether the last piece ends at the current point (the line goes on).
    let mut open = false;
    for w in pts.windows(2) {
        let ((xa, ya), (xb, yb)) = (w[0], w[1]);
        let (t0, t1) = if ya == yb {
            if !inside(ya) {
                open = false;
                continue;
            }
            (0.0, 1.0)
        } else {
            let (ta, tb) = ((lo - ya) / (yb - ya), (hi - ya) / (yb - ya));
            (ta.min(tb).max(0.0), ta.max(tb).min(1.0))
        };
        if t0 > t1 {
            open = false;
            continue;
        }
        let at = |t: f64| {
            if t == 0.0 {
                (xa, ya)
            } else if t == 1.0 {
                (xb, yb)
            } else {
                (xa + t * (xb - xa), (ya + t * (yb - ya)).clamp(lo, hi))
            }
        };
        if !(open && t0 == 0.0) {
            pieces.push(vec![at(t0)]);
        }
        pieces.last_mut().expect("pushed above").push(at(t1));
        open = t1 == 1.0;
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimate_keeps_ends_extremes_and_bound() {
        let xs: Vec<f64> = (0..100_000).map(|i| i as f64).collect();
        let mut ys: Vec<f64> = xs.iter().map(|x| (x / 5000.0).sin()).collect();
        ys[31_337] = 50.0;
        let d = decimate(&xs, &ys, 2000);
        assert!(d.len() <= 2000, "{}", d.len());
        assert_eq!(d[0], (0.0, ys[0]));
        assert_eq!(*d.last().unwrap(), (99_999.0, ys[99_999]));
        assert!(d.contains(&(31_337.0, 50.0)), "the spike survives");
        assert!(d.windows(2).all(|w| w[0].0 < w[1].0), "x order kept");
        assert_eq!(decimate(&xs[..10], &ys[..10], 2000).len(), 10);
    }

    #[test]
    fn clip_cuts_at_the_range_edges() {
        let pts = [
            (0.0, 10.0),
            (1.0, 4.0),
            (2.0, 3.0),
            (3.0, 12.0),
            (4.0, 13.0),
        ];
        let pieces = clip_y(&pts, 2.0, 6.0);
        assert_eq!(
            pieces,
            vec![vec![
                (2.0 / 3.0, 6.0),
                (1.0, 4.0),
                (2.0, 3.0),
                (2.0 + 1.0 / 3.0, 6.0)
            ]]
        );
        assert!(clip_y(&pts, 20.0, 30.0).is_empty());
        let all_in = clip_y(&pts, 0.0, 20.0);
        assert_eq!(all_in, vec![pts.to_vec()]);
    }

    #[test]
    fn duplicate_configs_get_their_own_columns() {
        let p = |run: &str, n: f64, t: f64| Panel {
            run: run.into(),
            n,
            t,
            ..Default::default()
        };
        let panels = [
            p("b", 2.0, 1.0),
            p("a", 2.0, 1.0),
            p("x", 1.0, 2.0),
            p("y", 2.0, 2.0),
        ];
        let g = grid_layout(&panels);
        assert_eq!(g.rows, [1.0, 2.0]);
        assert_eq!(g.cols, [1.0, 2.0, 2.0]);
        assert_eq!(g.cells, [(0, 2), (0, 1), (1, 0), (1, 1)]);
        assert_eq!(g.dup, [true, true, false, false]);
    }

    #[test]
    fn numbers_keep_their_significant_digits_and_exponents() {
        assert_eq!(format_sig(7073602.1, 3), "7.07e6");
        assert_eq!(format_sig(12029510.9, 3), "1.2e7");
        assert_eq!(format_sig(99999.7, 3), "1e5");
        assert_eq!(format_sig(812.34, 4), "812.3");
        assert_eq!(format_sig(200.0, 3), "200");
        assert_eq!(format_sig(0.04251, 3), "0.0425");
        assert_eq!(format_sig(-3.2e-5, 2), "-3.2e-5");
        assert_eq!(format_sig(0.0, 3), "0");
    }

    #[test]
    fn ticks_tell_their_neighbours_apart() {
        // The t2 axis of the example sweep's profile, once "95, 1, 105, 11,
        // 115", and A's, once "2 4 6 8" for 200..800.
        let t2: Vec<String> = [9.5e6, 1e7, 1.05e7, 1.1e7, 1.15e7]
            .iter()
            .map(|&v| tick_label(v, 5e5))
            .collect();
        assert_eq!(t2, ["9.5e6", "1e7", "1.05e7", "1.1e7", "1.15e7"]);
        let a: Vec<String> = [200.0, 400.0, 600.0, 800.0]
            .iter()
            .map(|&v| tick_label(v, 200.0))
            .collect();
        assert_eq!(a, ["200", "400", "600", "800"]);
        assert_eq!(tick_label(2.5, 0.5), "2.5");
        assert_eq!(tick_label(3.0, 0.5), "3");
        assert_eq!(tick_label(-0.04, 0.02), "-0.04");
        assert_eq!(tick_label(0.02 - 0.02 + 1e-18, 0.02), "0");
        assert_eq!(tick_label(1.25, 0.25), "1.25");
        assert_eq!(tick_label(0.0003, 0.0001), "3e-4");
        // The steps plotters chooses, and the labels of its ticks.
        let step = tick_step((9.4e6, 1.16e7));
        assert!((step - 5e5).abs() < 1e-3, "{step}");
        assert_eq!(tick_label(key_points((9.4e6, 1.16e7))[1], step), "1e7");
    }

    #[test]
    fn log_ticks_label_decades() {
        assert_eq!(log_tick(9.0, 1.0, false), "1B");
        assert_eq!(log_tick(-1.0, 1e9, false), "100M");
        assert_eq!(log_tick(8.5, 1.0, false), "");
        assert_eq!(log_tick(8.5, 1.0, true), "316M");
        assert_eq!(log_tick(0.0, 1.0, false), "1");
        assert_eq!(log_tick(-2.0, 1.0, false), "0.01");
    }

    #[test]
    fn sharp_turns_cut_a_thick_line() {
        // Up, sharply down, on to the right (a repeated pixel between),
        // then back: cut at the two vertices where it turns back on itself.
        let px = [(0, 0), (2, -20), (4, 0), (4, 0), (6, 2), (0, 2)];
        assert_eq!(cut_sharp_turns(&px), [0..2, 1..5, 4..6]);
        // A smooth curve stays one path.
        let smooth: Vec<(i32, i32)> = (0..50).map(|i| (i, i * i / 10)).collect();
        let runs = cut_sharp_turns(&smooth);
        assert_eq!((runs.len(), runs[0].clone()), (1, 0..50));
        let runs = cut_sharp_turns(&[(1, 1)]);
        assert_eq!((runs.len(), runs[0].clone()), (1, 0..1));
    }

    #[test]
    fn one_long_line_of_panels_wraps_into_a_near_square_grid() {
        assert_eq!(square_grid(15), (4, 4));
        assert_eq!(square_grid(60), (8, 8));
        assert_eq!(square_grid(42), (6, 7));
        assert_eq!(square_grid(1), (1, 1));
        let p = |run: &str, n: f64, t: f64| Panel {
            run: run.into(),
            n,
            t,
            ..Default::default()
        };
        // Three groups at each of five sizes, all at one T: one row of 15.
        let panels: Vec<Panel> = (0..15)
            .map(|i| p(&format!("g{}", i % 3), (i / 3) as f64, 0.0))
            .collect();
        let g = grid_layout(&panels);
        assert!(g.wrapped);
        assert_eq!((g.rows.len(), g.cols.len()), (4, 4));
        // In the line's order: size first, then group.
        assert_eq!(g.cells[0], (0, 0));
        assert_eq!(g.cells[1], (0, 1));
        assert_eq!(g.cells[3], (0, 3));
        assert_eq!(g.cells[4], (1, 0));
        assert_eq!(g.cells[14], (3, 2));
        let mut distinct = g.cells.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 15);
        // A column, too; five or fewer stay as they are.
        let column: Vec<Panel> = (0..7).map(|i| p("r", 1.0, i as f64)).collect();
        let g = grid_layout(&column);
        assert!(g.wrapped);
        assert_eq!((g.rows.len(), g.cols.len()), (3, 3));
        let g = grid_layout(&column[..5]);
        assert!(!g.wrapped);
        assert_eq!((g.rows.len(), g.cols.len()), (5, 1));
    }

    #[test]
    fn the_x_scale_is_log_where_the_values_span_decades() {
        let panel = |tokens: Vec<f64>| Panel {
            loss: vec![1.0; tokens.len()],
            pred: vec![1.0; tokens.len()],
            tokens,
            ..Default::default()
        };
        let auto = PlotOptions::default();
        let wide = [panel(vec![0.0, 1e8, 1e9, 2e10])];
        let narrow = [panel(vec![0.0, 5e9, 1e10, 2e10])];
        assert_eq!(resolve_x_scale(&wide, &auto), XScale::Log);
        assert_eq!(resolve_x_scale(&narrow, &auto), XScale::Linear);
        let linear = PlotOptions {
            x_scale: XScale::Linear,
            ..Default::default()
        };
        assert_eq!(resolve_x_scale(&wide, &linear), XScale::Linear);
        // Nothing positive: no log axis, whatever was asked.
        let log = PlotOptions {
            x_scale: XScale::Log,
            ..Default::default()
        };
        assert_eq!(
            resolve_x_scale(&[panel(vec![0.0, -1.0])], &log),
            XScale::Linear
        );
        assert_eq!(resolve_x_scale(&narrow, &log), XScale::Log);
        // The axis's name says what a log axis leaves out.
        assert_eq!(x_axis_name(&wide, &linear), "Tokens (B)");
        assert_eq!(
            x_axis_name(&wide, &log),
            "Tokens (log scale; 1 point at 0 not drawn)"
        );
        let two = [panel(vec![-1.0, 0.0, 1e9])];
        assert_eq!(
            x_axis_name(&two, &log),
            "Tokens (log scale; 2 points at or below 0 not drawn)"
        );
        assert_eq!(
            x_axis_name(&[panel(vec![1.0, 1e9])], &log),
            "Tokens (log scale)"
        );
    }

    #[test]
    fn a_band_too_thin_to_see_says_so() {
        let panel = |half: f64| Panel {
            tokens: vec![1.0, 2.0, 3.0],
            loss: vec![3.0; 3],
            pred: vec![3.0; 3],
            band: vec![(3.0 - half, 3.0 + half); 3],
            ..Default::default()
        };
        let opts = PlotOptions {
            band_label: "95% band (curves)".into(),
            ..Default::default()
        };
        // A 220 px plotting area over a range 4 wide: 0.2 is 11 px.
        assert_eq!(band_legend(&[panel(0.1)], 4.0, &opts), "95% band (curves)");
        assert_eq!(
            band_legend(&[panel(0.0025)], 4.0, &opts),
            "95% band (curves), median width 0.005: too thin to see here"
        );
    }

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(tick(2.5, 2), "2.5");
        assert_eq!(tick(10.0, 2), "10");
        assert_eq!(tick(-0.0001, 2), "0");
        assert_eq!(tick(3.456, 2), "3.46");
        assert_eq!(tick(-0.0025, 4), "-0.0025");
        assert_eq!(tick(0.1 + 0.2, 5), "0.3");
        // Zeros of a whole number are its own ("95" was 9.5e6).
        assert_eq!(tick(200.0, 0), "200");
    }
}
