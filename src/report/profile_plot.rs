//! The profile picture of `fit --plot --profile`: one panel per profiled
//! parameter, the profile statistic against the parameter's value, with
//! the threshold of the interval's level (dashed, labelled "95%"), the
//! interval's ends (grey verticals, where finite) and the optimum.
//!
//! Same header, frames, fonts and colours as the grid (the pieces of
//! [`super::plot`]); the panels are laid out in rows of at most
//! [`MAX_COLUMNS`], in the report's parameter order, each on its own x
//! range ([`x_range`]) and y range ([`y_range`]).

use std::path::Path;

use anyhow::bail;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::plot::{
    draw_header, draw_solid_line, err, format_sig, panel_chart, register_fonts, tick, Swatch,
    XScale, DEFAULT_TITLE, FONT, HELD, PRED, REAL,
};
use super::{PlotFormat, PlotOptions, HEADER_HEIGHT};
use crate::profile::{ProfileInterval, ProfileReport};

/// The profile picture's title, before the fit's.
pub const PROFILE_TITLE: &str = "Profile likelihood";

/// Most panels in a row of the profile picture.
pub const MAX_COLUMNS: usize = 4;

/// The interval ends' verticals.
const GREY: RGBColor = RGBColor(120, 120, 120);

/// The profile picture's title: [`PROFILE_TITLE`] in place of the grid's
/// "Real vs Pred" at the start of the fit's title, before any other title,
/// or alone when there is none.
pub fn profile_title(opts: &PlotOptions) -> String {
    match opts.title.as_deref() {
        None => PROFILE_TITLE.to_string(),
        Some(t) => match t.strip_prefix(DEFAULT_TITLE) {
            Some(rest) => format!("{PROFILE_TITLE}{rest}"),
            None => format!("{PROFILE_TITLE} · {t}"),
        },
    }
}

/// Rows and columns of `n` panels: at most [`MAX_COLUMNS`] a row.
pub fn profile_layout(n: usize) -> (usize, usize) {
    let cols = n.clamp(1, MAX_COLUMNS);
    (n.div_ceil(cols).max(1), cols)
}

/// A panel's x range: the finite grid values, 5% of their span added each
/// side; ±0.5 around a single value (or 0) when the span is 0.
pub fn x_range(values: &[f64]) -> (f64, f64) {
    let finite = || values.iter().copied().filter(|v| v.is_finite());
    let lo = finite().fold(f64::INFINITY, f64::min);
    let hi = finite().fold(f64::NEG_INFINITY, f64::max);
    if !(lo.is_finite() && hi.is_finite()) {
        return (-0.5, 0.5);
    }
    let span = hi - lo;
    if span > 0.0 {
        (lo - 0.05 * span, hi + 0.05 * span)
    } else {
        (lo - 0.5, lo + 0.5)
    }
}

/// A panel's y range: from 0 (or 1.1 × the lowest statistic when one is
/// negative: a profile that found a lower objective than the fit) to 1.1 ×
/// the largest finite statistic, but at least the threshold and at most 4
/// × it, so the threshold line stays in view and a steep profile runs off
/// the top rather than flattening the interval's part. 0..1 when nothing
/// is finite or positive.
pub fn y_range(statistic: &[f64], threshold: f64) -> (f64, f64) {
    let finite = || statistic.iter().copied().filter(|v| v.is_finite());
    let low = finite().fold(0.0, f64::min);
    let high = finite().fold(0.0, f64::max);
    let top = if threshold.is_finite() && threshold > 0.0 {
        high.clamp(threshold, 4.0 * threshold)
    } else {
        high
    };
    let top = if top > 0.0 { 1.1 * top } else { 1.0 };
    (1.1 * low, top)
}

/// The level as a percentage: 0.95 → "95%", 0.683 → "68.3%".
pub fn level_text(level: f64) -> String {
    format!("{}%", tick(100.0 * level, 2))
}

/// The interval in a panel's title, in the ticks' style ([`format_sig`]):
/// "[0.312, 0.35]", "[1.036e7, 1.06e7]"; "open" when neither end is
/// finite, and the finite end with "open" on the other side when one is
/// ("?" for an unreliable end).
/// Three significant digits, or as many more as it takes for the two ends'
/// difference to show in two.
pub fn interval_text(iv: &ProfileInterval) -> String {
    let sig = if iv.lo.is_finite() && iv.hi.is_finite() && iv.hi != iv.lo {
        let top = iv.lo.abs().max(iv.hi.abs()).log10().floor();
        let gap = (iv.hi - iv.lo).abs().log10().floor();
        ((top - gap) as usize + 2).clamp(3, 10)
    } else {
        3
    };
    iv.text(&|v| format_sig(v, sig))
}

/// Draw the profiles of `report` to `path`, PNG or SVG by its extension,
/// under `title` (e.g. [`profile_title`]), all-or-nothing (an existing file
/// is replaced).
pub fn draw_profiles(path: &Path, report: &ProfileReport, title: &str) -> anyhow::Result<()> {
    let format = PlotFormat::from_path(path)?;
    if report.params.is_empty() {
        bail!("nothing to plot: no profiled parameters");
    }
    for (name, iv) in &report.params {
        if iv.values.len() != iv.statistic.len() {
            bail!("profile of {name}: values and statistic of different lengths");
        }
    }
    register_fonts()?;
    let opts = PlotOptions::default();
    let (rows, cols) = profile_layout(report.params.len());
    let size = (
        opts.panel_width * cols as u32,
        HEADER_HEIGHT + opts.panel_height * rows as u32,
    );
    crate::output::write_via_path(path, |tmp| match format {
        PlotFormat::Png => render(
            BitMapBackend::new(tmp, size).into_drawing_area(),
            report,
            title,
            (rows, cols),
        ),
        PlotFormat::Svg => render(
            SVGBackend::new(tmp, size).into_drawing_area(),
            report,
            title,
            (rows, cols),
        ),
    })
}

fn render<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    report: &ProfileReport,
    title: &str,
    layout: (usize, usize),
) -> anyhow::Result<()> {
    root.fill(&WHITE).map_err(err)?;
    let (head, body) = root.split_vertically(HEADER_HEIGHT);
    let legend = [
        ("Profile statistic".to_string(), Swatch::Line),
        (
            format!("{} threshold", level_text(report.level)),
            Swatch::Dashed,
        ),
        ("Optimum".to_string(), Swatch::Dot),
    ];
    draw_header(&head, title, &legend)?;
    let areas = body.split_evenly(layout);
    for ((name, iv), area) in report.params.iter().zip(&areas) {
        draw_panel(area, name, iv, report)?;
    }
    root.present().map_err(err)?;
    Ok(())
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    name: &str,
    iv: &ProfileInterval,
    report: &ProfileReport,
) -> anyhow::Result<()> {
    let xr = x_range(&iv.values);
    let yr = y_range(&iv.statistic, report.threshold);
    let opts = PlotOptions {
        x_label: name.to_string(),
        x_unit: 1.0,
        x_scale: XScale::Linear,
        ..PlotOptions::default()
    };
    let title = format!("{name} {}", interval_text(iv));
    // Each panel has its own parameter, so each names its axes.
    let names = Some((name, "Profile statistic"));
    let mut chart = panel_chart(area, &title, xr, yr, names, &opts)?;
    let thr = report.threshold;
    if thr.is_finite() && thr >= yr.0 && thr <= yr.1 {
        chart
            .draw_series(DashedLineSeries::new(
                [(xr.0, thr), (xr.1, thr)],
                9,
                5,
                PRED.stroke_width(2),
            ))
            .map_err(err)?;
        let style = (FONT, 15)
            .into_font()
            .color(&PRED)
            .pos(Pos::new(HPos::Right, VPos::Bottom));
        chart
            .draw_series(std::iter::once(Text::new(
                level_text(report.level),
                (xr.1, thr),
                style,
            )))
            .map_err(err)?;
    }
    for end in [iv.lo, iv.hi].into_iter().filter(|v| v.is_finite()) {
        chart
            .draw_series(LineSeries::new(
                [(end, yr.0), (end, yr.1)],
                GREY.stroke_width(1),
            ))
            .map_err(err)?;
    }
    let (xs, ys): (Vec<f64>, Vec<f64>) = iv
        .values
        .iter()
        .zip(&iv.statistic)
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .map(|(&x, &y)| (x, y))
        .unzip();
    draw_solid_line(&mut chart, &xs, &ys, yr, &opts)?;
    let inside = |y: f64| y >= yr.0 && y <= yr.1;
    chart
        .draw_series(
            xs.iter()
                .zip(&ys)
                .filter(|(_, y)| inside(**y))
                .map(|(&x, &y)| Circle::new((x, y), 3, REAL.filled())),
        )
        .map_err(err)?;
    // The optimum: where the statistic is 0, else its lowest point.
    let best = ys
        .iter()
        .position(|&y| y == 0.0)
        .or_else(|| (0..ys.len()).min_by(|&i, &j| ys[i].total_cmp(&ys[j])));
    if let Some(i) = best.filter(|&i| inside(ys[i])) {
        chart
            .draw_series(std::iter::once(Circle::new(
                (xs[i], ys[i]),
                5,
                HELD.filled(),
            )))
            .map_err(err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::End;

    fn interval(lo: f64, hi: f64) -> ProfileInterval {
        let end = |v: f64| if v.is_finite() { End::Found } else { End::Open };
        ProfileInterval {
            lo,
            hi,
            lo_end: end(lo),
            hi_end: end(hi),
            lo_statistic: 3.84,
            hi_statistic: 3.84,
            open: String::new(),
            values: vec![],
            statistic: vec![],
        }
    }

    #[test]
    fn panels_go_in_rows_of_at_most_four() {
        assert_eq!(profile_layout(1), (1, 1));
        assert_eq!(profile_layout(2), (1, 2));
        assert_eq!(profile_layout(4), (1, 4));
        assert_eq!(profile_layout(5), (2, 4));
        assert_eq!(profile_layout(10), (3, 4));
        assert_eq!(profile_layout(0), (1, 1));
    }

    #[test]
    fn the_x_range_pads_the_grid_by_a_twentieth_of_its_span() {
        // 0.2..0.6, span 0.4: 0.02 each side.
        let (lo, hi) = x_range(&[0.2, 0.3, f64::NAN, 0.6]);
        assert!((lo - 0.18).abs() < 1e-12 && (hi - 0.62).abs() < 1e-12);
        assert_eq!(x_range(&[2.0, 2.0]), (1.5, 2.5));
        assert_eq!(x_range(&[]), (-0.5, 0.5));
    }

    #[test]
    fn the_y_range_keeps_the_threshold_in_view_and_caps_steep_profiles() {
        let thr = 3.841458820694124;
        // Shallow: the threshold sets the top.
        let (lo, hi) = y_range(&[1.0, 0.0, 2.0], thr);
        assert_eq!(lo, 0.0);
        assert!((hi - 1.1 * thr).abs() < 1e-12);
        // In between: the largest statistic.
        assert_eq!(y_range(&[10.0, 0.0, 5.0], thr), (0.0, 11.0));
        // Steep: 4 × the threshold.
        let (_, hi) = y_range(&[1000.0, 0.0, f64::INFINITY], thr);
        assert!((hi - 4.4 * thr).abs() < 1e-12);
        // A lower objective than the fit's: below 0 too.
        let (lo, _) = y_range(&[-0.5, 0.0, 5.0], thr);
        assert!((lo + 0.55).abs() < 1e-12);
        // No threshold and nothing positive.
        assert_eq!(y_range(&[0.0], f64::NAN), (0.0, 1.0));
    }

    #[test]
    fn labels_follow_the_span_level_and_ends() {
        assert_eq!(level_text(0.95), "95%");
        assert_eq!(level_text(0.683), "68.3%");
        assert_eq!(interval_text(&interval(0.3124, 0.35)), "[0.312, 0.35]");
        assert_eq!(interval_text(&interval(f64::NAN, f64::NAN)), "open");
        assert_eq!(interval_text(&interval(0.25, f64::NAN)), "[0.25, open)");
        assert_eq!(interval_text(&interval(f64::NAN, 2.0)), "(open, 2]");
        // The titles of the example sweep's profile, once printed raw
        // ("t1 [7073602.1, 12029510.9]").
        assert_eq!(
            interval_text(&interval(7073602.1, 12029510.9)),
            "[7.07e6, 1.2e7]"
        );
        assert_eq!(
            interval_text(&interval(10359742.6, 10598533.4)),
            "[1.036e7, 1.06e7]"
        );
        assert_eq!(interval_text(&interval(203.6, 349.6)), "[204, 350]");
        assert_eq!(interval_text(&interval(0.558, 1.476)), "[0.558, 1.48]");
    }

    #[test]
    fn the_title_puts_the_profile_in_place_of_real_vs_pred() {
        let with = |t: Option<&str>| PlotOptions {
            title: t.map(str::to_string),
            ..Default::default()
        };
        assert_eq!(profile_title(&with(None)), "Profile likelihood");
        assert_eq!(
            profile_title(&with(Some("Real vs Pred · looplm law · R² = 0.9987"))),
            "Profile likelihood · looplm law · R² = 0.9987"
        );
        assert_eq!(
            profile_title(&with(Some("my sweep"))),
            "Profile likelihood · my sweep"
        );
    }
}
