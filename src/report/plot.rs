//! The Real-vs-Pred grid: one panel per curve of the sweep, rows by T
//! (ascending, top to bottom), columns by N (ascending, left to right), the
//! observed loss solid blue and the fitted law dashed orange under one
//! title and one legend for the whole figure, as the LoopLM paper shows its
//! fit.
//!
//! Pixel layout (what tests and callers may rely on): a header of
//! [`HEADER_HEIGHT`] pixels across the top (the title, and under it the
//! legend), then the panels without margins: the panel in row `r`, column
//! `c` covers x in `[c*w, (c+1)*w)` and y in `[HEADER_HEIGHT + r*h,
//! HEADER_HEIGHT + (r+1)*h)` with `w`, `h` the panel size of
//! [`PlotOptions`]. A (T, N) without a curve leaves its cell blank. Several curves with the same
//! (N, T) (different runs) each get a panel: N's column is split into as
//! many columns as the most runs any T has at that N, ordered by run label,
//! and the run label is added to their titles.
//!
//! Text is drawn with DejaVu Sans bundled in the binary (the `dejavu`
//! crate), so no system font or font library is needed.

use super::{FitReport, FoldReport};
use crate::{
    data::Dataset,
    law::{predict_raw, NP, PARAM_NAMES},
    report::format_count,
};
use anyhow::{anyhow, bail, Context};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontStyle;
use serde::Deserialize;
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
    /// The x axis: its name, the unit its values are divided by, and
    /// whether it is logarithmic (then from the data's smallest value).
    pub x_label: String,
    pub x_unit: f64,
    pub x_log: bool,
    /// Most decimals of a linear x axis's tick labels.
    pub x_decimals: usize,
}

/// The figure's title when [`PlotOptions::title`] gives none.
pub const DEFAULT_TITLE: &str = "Real vs Pred";

/// Height in pixels of the title-and-legend header above the panels.
pub const HEADER_HEIGHT: u32 = 84;

impl Default for PlotOptions {
    fn default() -> Self {
        PlotOptions {
            panel_width: 400,
            panel_height: 300,
            max_line_points: 2000,
            y_range: None,
            band_label: "Band".to_string(),
            title: None,
            x_label: "Tokens (B)".to_string(),
            x_unit: 1e9,
            x_log: false,
            x_decimals: 2,
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
#[derive(Debug, Clone, PartialEq)]
pub struct GridLayout {
    pub rows: Vec<f64>,
    pub cols: Vec<f64>,
    pub cells: Vec<(usize, usize)>,
    pub dup: Vec<bool>,
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
    let cols = ns
        .iter()
        .zip(&width)
        .flat_map(|(&n, &w)| std::iter::repeat_n(n, w))
        .collect();
    let cells = panels
        .iter()
        .zip(&rank)
        .map(|(p, &k)| (pos(&ts, p.t), first_col[pos(&ns, p.n)] + k))
        .collect();
    GridLayout {
        rows: ts,
        cols,
        cells,
        dup,
    }
}

/// Give every panel the central `level` band of the predictions of the
/// parameter vectors `samples` (raw units; e.g. bootstrap replicates) at
/// its points. Fewer than two samples leave the panels without bands.
pub fn add_bands(panels: &mut [Panel], samples: &[[f64; NP]], level: f64) {
    if samples.len() < 2 {
        return;
    }
    let tail = (1.0 - level) / 2.0;
    for p in panels {
        let mut v = vec![0.0; samples.len()];
        p.band = p
            .tokens
            .iter()
            .map(|&d| {
                for (x, s) in v.iter_mut().zip(samples) {
                    *x = predict_raw(s, p.n, d, p.t);
                }
                v.sort_by(f64::total_cmp);
                (
                    crate::bootstrap::quantile(&v, tail),
                    crate::bootstrap::quantile(&v, 1.0 - tail),
                )
            })
            .collect();
    }
}

/// Bands from a bootstrapped fit: the first resampling scheme with
/// replicates (curves before points, as fit.json lists them), labelled
/// e.g. "95% band (curves)" in `opts`. Returns whether bands were added.
pub fn add_fit_bands(panels: &mut [Panel], r: &super::FitReport, opts: &mut PlotOptions) -> bool {
    let Some(b) = &r.bootstrap else {
        return false;
    };
    for rs in &b.resamples {
        let samples: Vec<[f64; NP]> = rs
            .samples
            .iter()
            .filter_map(|s| <[f64; NP]>::try_from(s.as_slice()).ok())
            .collect();
        if samples.len() >= 2 {
            add_bands(panels, &samples, b.level);
            opts.band_label = format!("{}% band ({})", 100.0 * b.level, rs.kind);
            return true;
        }
    }
    false
}

/// One panel per configuration of `ds`, predictions from raw-unit `params`.
/// `held_out`, when given, has one flag per point of `ds`.
pub fn panels_from_dataset(
    ds: &Dataset,
    params: &[f64; NP],
    held_out: Option<&[bool]>,
) -> anyhow::Result<Vec<Panel>> {
    if let Some(h) = held_out {
        if h.len() != ds.points() {
            bail!("held_out has {} flags for {} points", h.len(), ds.points());
        }
    }
    Ok(ds
        .configs
        .iter()
        .map(|c| {
            let r = c.range();
            Panel {
                run: c.run.clone(),
                n: c.n,
                t: c.t,
                label: String::new(),
                tokens: ds.tokens[r.clone()].to_vec(),
                loss: ds.loss[r.clone()].to_vec(),
                pred: r
                    .clone()
                    .map(|i| predict_raw(params, c.n, ds.tokens[i], c.t))
                    .collect(),
                held_out: held_out.map_or_else(Vec::new, |h| h[r].to_vec()),
                band: Vec::new(),
            }
        })
        .collect())
}

/// The law's parameters of a fit report, in law order.
pub fn fit_params(r: &FitReport) -> anyhow::Result<[f64; NP]> {
    let mut p = [0.0; NP];
    for (v, name) in p.iter_mut().zip(PARAM_NAMES) {
        *v = *r
            .params
            .get(name)
            .ok_or_else(|| anyhow!("the fit report has no parameter {name}"))?;
    }
    Ok(p)
}

/// Title of a fit's grid: the law and how well it fits the whole sweep.
pub fn fit_title(r: &FitReport) -> String {
    format!(
        "{DEFAULT_TITLE} · {} law · R² = {}",
        r.law,
        title_r2(r.metrics.r2)
    )
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
fn title_r2(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.4}")
    } else {
        "n/a".to_string()
    }
}

/// Panels from a `pred.csv` (`run,N,T,tokens,loss,pred`; other columns
/// ignored), curves in order of first appearance, sorted by tokens.
pub fn read_pred_csv(path: &Path) -> anyhow::Result<Vec<Panel>> {
    #[derive(Deserialize)]
    struct Row {
        run: String,
        #[serde(rename = "N")]
        n: f64,
        #[serde(rename = "T")]
        t: f64,
        tokens: f64,
        loss: f64,
        pred: f64,
    }
    let ctx = || {
        format!(
            "reading {} (a pred.csv needs columns run,N,T,tokens,loss,pred; \
             to plot another CSV, give --fit to compute the predictions)",
            path.display()
        )
    };
    let mut r = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .with_context(ctx)?;
    // (run, N, T) and its points as (tokens, loss, pred).
    type Curve = (String, f64, f64, Vec<(f64, f64, f64)>);
    let mut curves: Vec<Curve> = Vec::new();
    let mut index = std::collections::HashMap::new();
    for row in r.deserialize::<Row>() {
        let row = row.with_context(ctx)?;
        let key = (row.run.clone(), row.n.to_bits(), row.t.to_bits());
        let i = *index.entry(key).or_insert_with(|| {
            curves.push((row.run.clone(), row.n, row.t, Vec::new()));
            curves.len() - 1
        });
        curves[i].3.push((row.tokens, row.loss, row.pred));
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
        opts.panel_width * layout.cols.len() as u32,
        HEADER_HEIGHT + opts.panel_height * layout.rows.len() as u32,
    );
    // Drawn to a temporary file renamed into place: an interrupted or
    // failed drawing never leaves half a picture.
    crate::output::write_via_path(path, |tmp| match format {
        PlotFormat::Png => render(
            BitMapBackend::new(tmp, size).into_drawing_area(),
            panels,
            &layout,
            opts,
            figure,
        ),
        PlotFormat::Svg => render(
            SVGBackend::new(tmp, size).into_drawing_area(),
            panels,
            &layout,
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
    opts: &PlotOptions,
    figure: &impl Figure,
) -> anyhow::Result<()> {
    root.fill(&WHITE).map_err(err)?;
    let (head, body) = root.split_vertically(HEADER_HEIGHT);
    draw_header(&head, &figure.title(opts), &figure.legend(panels, opts))?;
    let x_range = token_range(panels, opts);
    let y_range = figure.y_range(panels, opts);
    let areas = body.split_evenly((layout.rows.len(), layout.cols.len()));
    for (i, p) in panels.iter().enumerate() {
        let (r, c) = layout.cells[i];
        let mut title = if p.label.is_empty() {
            format!("T = {}, N = {}", p.t, format_count(p.n))
        } else {
            p.label.clone()
        };
        if layout.dup[i] {
            title = format!("{title} ({})", p.run);
        }
        let area = &areas[r * layout.cols.len() + c];
        figure.draw_panel(area, p, &title, x_range, y_range, opts)?;
    }
    root.present().map_err(err)?;
    Ok(())
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

/// A panel's frame: its title, the shared x axis (named and scaled as
/// `opts` says) and the y axis named `y_desc`, its ticks with at most
/// `y_decimals` decimals, both with light grid lines.
pub(super) fn panel_chart<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    title: &str,
    x_range: (f64, f64),
    (y_lo, y_hi): (f64, f64),
    (y_desc, y_decimals): (&str, usize),
    opts: &PlotOptions,
) -> anyhow::Result<Chart<'a, DB>> {
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 21))
        .margin(8)
        .x_label_area_size(42)
        .y_label_area_size(52)
        .build_cartesian_2d(x_range.0..x_range.1, y_lo..y_hi)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(opts.x_label.as_str())
        .y_desc(y_desc)
        .x_labels(6)
        .y_labels(6)
        .x_label_formatter(&|v| {
            if opts.x_log {
                format_count(10f64.powf(*v) * opts.x_unit)
            } else {
                tick(*v, opts.x_decimals)
            }
        })
        .y_label_formatter(&|v| tick(*v, y_decimals))
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 16))
        .max_light_lines(1)
        .bold_line_style(RGBColor(220, 220, 220))
        .light_line_style(RGBColor(242, 242, 242))
        .draw()
        .map_err(err)?;
    Ok(chart)
}

/// The points of `p` on the x axis, in its coordinates.
pub(super) fn x_coords(p: &Panel, opts: &PlotOptions) -> Vec<f64> {
    p.tokens.iter().map(|&d| x_coord(d, opts)).collect()
}

/// `ys` against `xs` as a solid blue line, decimated to
/// [`PlotOptions::max_line_points`] and clipped to the y range; thinner
/// where the points are denser than pixels, else noise turns the line into
/// a solid band.
pub(super) fn draw_solid_line<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    xs: &[f64],
    ys: &[f64],
    (y_lo, y_hi): (f64, f64),
    opts: &PlotOptions,
) -> anyhow::Result<()> {
    let pts = decimate(xs, ys, opts.max_line_points);
    let dense = pts.len() > 2 * opts.panel_width as usize;
    let style = REAL.stroke_width(if dense { 1 } else { 2 });
    // Lines are clipped to the y range by hand: plotters would draw them
    // over the axes and the neighbouring panels.
    for piece in clip_y(&pts, y_lo, y_hi) {
        chart
            .draw_series(LineSeries::new(piece, style))
            .map_err(err)?;
    }
    Ok(())
}

/// Green markers at the held-out points of `p`, at (`xs`, `ys`) inside the
/// y range; at most a quarter of [`PlotOptions::max_line_points`] of them
/// (every k-th).
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
    let stride = held
        .len()
        .div_ceil((opts.max_line_points / 4).max(1))
        .max(1);
    chart
        .draw_series(
            held.iter()
                .step_by(stride)
                .map(|&pt| Circle::new(pt, 3, HELD.filled())),
        )
        .map_err(err)?;
    Ok(())
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
            entries.push((opts.band_label.clone(), Swatch::Area));
        }
        entries.extend(held_out_entry(panels));
        entries
    }

    fn y_range(&self, panels: &[Panel], opts: &PlotOptions) -> (f64, f64) {
        opts.y_range.unwrap_or_else(|| loss_range(panels))
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
        let mut chart = panel_chart(area, title, x_range, (y_lo, y_hi), ("Loss", 2), opts)?;
        let xs = x_coords(p, opts);

        // Back to front: band, held-out markers, real line, prediction. The
        // markers sit on the real curve, where a good prediction runs too, so
        // drawn last they would hide exactly the part of it being judged.
        if !p.band.is_empty() {
            // One polygon, lo forwards and hi back, clamped to the y range
            // (for a filled area that is the clip). The law is smooth, so
            // every k-th point keeps its shape.
            let step = p
                .band
                .len()
                .div_ceil(opts.max_line_points.max(2) / 2)
                .max(1);
            let keep: Vec<usize> = (0..p.band.len())
                .step_by(step)
                .chain(std::iter::once(p.band.len() - 1))
                .filter(|&i| {
                    xs[i].is_finite() && p.band[i].0.is_finite() && p.band[i].1.is_finite()
                })
                .collect();
            let clamp = |v: f64| v.clamp(y_lo, y_hi);
            let outline: Vec<(f64, f64)> = keep
                .iter()
                .map(|&i| (xs[i], clamp(p.band[i].0)))
                .chain(keep.iter().rev().map(|&i| (xs[i], clamp(p.band[i].1))))
                .collect();
            if outline.len() >= 4 {
                chart
                    .draw_series(std::iter::once(Polygon::new(outline, BAND.filled())))
                    .map_err(err)?;
            }
        }

        draw_held_out(&mut chart, p, &xs, &p.loss, (y_lo, y_hi), opts)?;
        draw_solid_line(&mut chart, &xs, &p.loss, (y_lo, y_hi), opts)?;
        let pred = decimate(&xs, &p.pred, opts.max_line_points);
        for piece in clip_y(&pred, y_lo, y_hi) {
            chart
                .draw_series(DashedLineSeries::new(piece, 9, 5, PRED.stroke_width(2)))
                .map_err(err)?;
        }
        Ok(())
    }
}

/// Tick label: at most `decimals` decimals, trailing zeros dropped ("2.5",
/// "10").
pub(super) fn tick(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.into()
    }
}

/// Where value `v` of the x variable sits on the x axis.
fn x_coord(v: f64, opts: &PlotOptions) -> f64 {
    if opts.x_log {
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
    let floor = if opts.x_log { f64::INFINITY } else { 0.0 };
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
    fn tick_labels_are_short() {
        assert_eq!(tick(2.5, 2), "2.5");
        assert_eq!(tick(10.0, 2), "10");
        assert_eq!(tick(-0.0001, 2), "0");
        assert_eq!(tick(3.456, 2), "3.46");
        assert_eq!(tick(-0.0025, 4), "-0.0025");
        assert_eq!(tick(0.1 + 0.2, 5), "0.3");
    }
}
