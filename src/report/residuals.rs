//! The residual grid: the panels of the Real-vs-Pred grid with each
//! curve's residuals, pred − loss, against the same x axis around a zero
//! line, so the structure of a law's misfit (a bend it cannot follow, a
//! size it overshoots) shows at a glance.
//!
//! Same layout as the grid ([`super::grid_layout`], and the pixel layout
//! documented in the grid's module), same header style, x axis, decimation
//! and held-out markers; the y axis is the residual, shared by every panel
//! and symmetric about zero ([`residual_range`]).

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::plot::{
    band_legend, draw_band, draw_figure, draw_held_out, draw_solid_line, err, held_out_entry,
    panel_chart, x_coords, Figure, Swatch, DEFAULT_TITLE,
};
use super::{Panel, PlotOptions};

/// The residual grid's title, before the fit's.
pub const RESIDUALS_TITLE: &str = "Residuals (pred − loss)";

/// The zero line: dark grey, under the residuals.
const ZERO: RGBColor = RGBColor(90, 90, 90);

/// The residuals of a panel, pred − loss at every point: positive where
/// the law overshoots the observed loss.
pub fn residuals(p: &Panel) -> Vec<f64> {
    p.pred.iter().zip(&p.loss).map(|(p, l)| p - l).collect()
}

/// The y range shared by every panel of the residual grid, symmetric about
/// zero: ±1.1 × the 99th percentile of |pred − loss| over the finite
/// residuals of all panels (nearest rank: the value at index
/// round(0.99 (n − 1)) of the n magnitudes sorted ascending). A percentile
/// rather than the largest residual: near step 0 the loss is ~11 and a law
/// fitted to whole curves can miss it by far more than anywhere else, and
/// those few points should run off the panels rather than flatten the rest
/// onto the zero line. When that percentile is 0 the largest magnitude
/// takes its place, and the range is ±1 when every residual is 0 or none
/// is finite.
pub fn residual_range(panels: &[Panel]) -> (f64, f64) {
    let mut m: Vec<f64> = panels
        .iter()
        .flat_map(residuals)
        .map(f64::abs)
        .filter(|v| v.is_finite())
        .collect();
    m.sort_unstable_by(f64::total_cmp);
    let q = match m.len() {
        0 => 0.0,
        n => m[((n - 1) as f64 * 0.99).round() as usize],
    };
    let largest = m.last().copied().unwrap_or(0.0);
    let half = if q > 0.0 {
        1.1 * q
    } else if largest > 0.0 {
        1.1 * largest
    } else {
        1.0
    };
    (-half, half)
}

/// The residual grid's title: [`RESIDUALS_TITLE`] in place of the grid's
/// "Real vs Pred" at the start of the fit's title ("Residuals (pred −
/// loss) · looplm law · R² = 0.9987"), before any other title, or alone
/// when there is none.
pub fn residual_title(opts: &PlotOptions) -> String {
    match opts.title.as_deref() {
        None => RESIDUALS_TITLE.to_string(),
        Some(t) => match t.strip_prefix(DEFAULT_TITLE) {
            Some(rest) => format!("{RESIDUALS_TITLE}{rest}"),
            None => format!("{RESIDUALS_TITLE} · {t}"),
        },
    }
}

/// Draw the residual grid of `panels` to `path`, PNG or SVG by its
/// extension (an existing file is replaced; refusing that is the caller's
/// business). The panels and options are those of [`super::draw_grid`];
/// the y range is always [`residual_range`] (`opts.y_range` is a loss
/// range), and prediction bands are drawn about the zero line (band less
/// prediction), where they are wide enough to see.
pub fn draw_residuals(path: &Path, panels: &[Panel], opts: &PlotOptions) -> anyhow::Result<()> {
    draw_figure(path, panels, opts, &Residuals)
}

struct Residuals;

impl Figure for Residuals {
    fn title(&self, opts: &PlotOptions) -> String {
        residual_title(opts)
    }

    fn legend(&self, panels: &[Panel], opts: &PlotOptions) -> Vec<(String, Swatch)> {
        let mut entries = vec![("Residual".to_string(), Swatch::Line)];
        if panels.iter().any(|p| !p.band.is_empty()) {
            let (lo, hi) = self.y_range(panels, opts);
            let about = PlotOptions {
                band_label: format!("{} about the prediction", opts.band_label),
                ..opts.clone()
            };
            entries.push((band_legend(panels, hi - lo, &about), Swatch::Area));
        }
        entries.extend(held_out_entry(panels));
        entries
    }

    fn y_range(&self, panels: &[Panel], _opts: &PlotOptions) -> (f64, f64) {
        residual_range(panels)
    }

    fn y_label(&self) -> &str {
        "Pred − loss"
    }

    fn draw_panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        p: &Panel,
        title: &str,
        x_range: (f64, f64),
        y_range: (f64, f64),
        opts: &PlotOptions,
    ) -> anyhow::Result<()> {
        let mut chart = panel_chart(area, title, x_range, y_range, None, opts)?;
        let xs = x_coords(p, opts);
        // The prediction's band less the prediction: on the residuals'
        // scale it shows, where on the loss's it is thinner than a line.
        let band: Vec<(f64, f64)> = p
            .band
            .iter()
            .zip(&p.pred)
            .map(|(&(lo, hi), &pred)| (lo - pred, hi - pred))
            .collect();
        draw_band(&mut chart, &xs, &band, y_range, opts)?;
        chart
            .draw_series(LineSeries::new(
                [(x_range.0, 0.0), (x_range.1, 0.0)],
                ZERO.stroke_width(1),
            ))
            .map_err(err)?;
        let r = residuals(p);
        draw_solid_line(&mut chart, &xs, &r, y_range, opts)?;
        // Over the line: the held-out points are the residuals to judge.
        draw_held_out(&mut chart, p, &xs, &r, y_range, opts)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn panel(loss: &[f64], pred: &[f64]) -> Panel {
        Panel {
            tokens: (0..loss.len()).map(|i| i as f64).collect(),
            loss: loss.to_vec(),
            pred: pred.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn residuals_are_pred_minus_loss() {
        let p = panel(&[3.0, 2.5, 2.25], &[3.5, 2.25, 2.25]);
        assert_eq!(residuals(&p), [0.5, -0.25, 0.0]);
    }

    #[test]
    fn the_range_is_symmetric_at_the_99th_percentile_of_the_magnitudes() {
        // Two panels, 201 residuals: 199 of magnitude k/1000 (k = 1..=199,
        // alternating in sign), and two step-0 misses of 5 and -8.
        let mut a_loss = vec![11.0];
        let mut a_pred = vec![16.0];
        let mut b_loss = vec![11.0];
        let mut b_pred = vec![3.0];
        for k in 1..=199 {
            let r = if k % 2 == 0 { 1.0 } else { -1.0 } * k as f64 / 1000.0;
            let (loss, pred) = if k <= 100 {
                (&mut a_loss, &mut a_pred)
            } else {
                (&mut b_loss, &mut b_pred)
            };
            loss.push(2.0);
            pred.push(2.0 + r);
        }
        let panels = [panel(&a_loss, &a_pred), panel(&b_loss, &b_pred)];
        // Sorted magnitudes: 0.001 ..= 0.199, 5, 8 (n = 201); the 99th
        // percentile is at index round(0.99 * 200) = 198, i.e. 0.199.
        let (lo, hi) = residual_range(&panels);
        assert!((hi - 1.1 * 0.199).abs() < 1e-12, "{hi}");
        assert_eq!(lo, -hi);
        // Without the two misses the percentile moves only a little.
        let (_, hi) = residual_range(&[
            panel(&a_loss[1..], &a_pred[1..]),
            panel(&b_loss[1..], &b_pred[1..]),
        ]);
        // 199 magnitudes: index round(0.99 * 198) = 196, i.e. 0.197.
        assert!((hi - 1.1 * 0.197).abs() < 1e-12, "{hi}");
    }

    #[test]
    fn the_range_survives_perfect_fits_and_non_finite_values() {
        // 200 exact points and one miss of 0.5: the percentile is 0, so the
        // largest magnitude sets the range.
        let mut loss = vec![2.0; 200];
        let mut pred = loss.clone();
        loss.push(2.0);
        pred.push(1.5);
        assert_eq!(residual_range(&[panel(&loss, &pred)]), (-0.55, 0.55));
        assert_eq!(
            residual_range(&[panel(&[1.0, 2.0], &[1.0, 2.0])]),
            (-1.0, 1.0)
        );
        let (lo, hi) = residual_range(&[panel(&[1.0, f64::NAN, 2.0], &[1.25, 3.0, f64::INFINITY])]);
        assert_eq!((lo, hi), (-0.275, 0.275));
    }

    #[test]
    fn the_title_puts_residuals_in_place_of_real_vs_pred() {
        let with = |t: Option<&str>| PlotOptions {
            title: t.map(str::to_string),
            ..Default::default()
        };
        assert_eq!(residual_title(&with(None)), "Residuals (pred − loss)");
        assert_eq!(
            residual_title(&with(Some("Real vs Pred · looplm law · R² = 0.9987"))),
            "Residuals (pred − loss) · looplm law · R² = 0.9987"
        );
        assert_eq!(
            residual_title(&with(Some("sizes fold 3: train N = 53M"))),
            "Residuals (pred − loss) · sizes fold 3: train N = 53M"
        );
    }
}
