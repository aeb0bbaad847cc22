//! The picture of `compare --plot`: one panel per protocol, each law's
//! mean held-out RMSE as a horizontal bar, best first, with its value;
//! a law the protocol does not apply to is listed without a bar. Same
//! header, fonts and colours as the grid.

use std::path::Path;

use anyhow::bail;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::compare::CompareReport;
use super::plot::{draw_header, err, format_sig, register_fonts, FONT, PRED};
use super::{PlotFormat, HEADER_HEIGHT};

/// The picture's title.
pub const COMPARE_TITLE: &str = "Held-out error by law";

/// Width of the picture, and the height of one law's row.
const WIDTH: u32 = 900;
const ROW: u32 = 34;
/// Room above each panel's rows for its protocol's name.
const PANEL_HEAD: u32 = 40;

/// Draw `r`'s rankings to `path` (PNG or SVG by its extension), written
/// all or nothing.
pub fn draw_compare(path: &Path, r: &CompareReport) -> anyhow::Result<()> {
    let format = PlotFormat::from_path(path)?;
    if r.ranking.is_empty() {
        bail!("nothing to plot: no protocol ran on any law");
    }
    register_fonts()?;
    let rows = r.laws.len() as u32;
    let panel = PANEL_HEAD + ROW * rows + 16;
    let size = (WIDTH, HEADER_HEIGHT + panel * r.ranking.len() as u32);
    crate::output::write_via_path(path, |tmp| match format {
        PlotFormat::Png => render(BitMapBackend::new(tmp, size).into_drawing_area(), r),
        PlotFormat::Svg => render(SVGBackend::new(tmp, size).into_drawing_area(), r),
    })
}

fn render<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    r: &CompareReport,
) -> anyhow::Result<()> {
    root.fill(&WHITE).map_err(err)?;
    let (head, body) = root.split_vertically(HEADER_HEIGHT);
    let title = format!("{COMPARE_TITLE} · {} laws · {} loss", r.laws.len(), r.loss);
    draw_header(&head, &title, &[])?;
    let areas = body.split_evenly((r.ranking.len(), 1));
    for (ranking, area) in r.ranking.iter().zip(&areas) {
        draw_panel(area, r, &ranking.protocol, &ranking.laws)?;
    }
    root.present().map_err(err)?;
    Ok(())
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    r: &CompareReport,
    protocol: &str,
    order: &[String],
) -> anyhow::Result<()> {
    let width = area.dim_in_pixel().0 as i32;
    let text = |size: u32, h: HPos| {
        (FONT, size)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(h, VPos::Center))
    };
    area.draw(&Text::new(
        format!("{protocol}: mean held-out RMSE (best first)"),
        (16, PANEL_HEAD as i32 / 2),
        (FONT, 18, FontStyle::Bold)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Left, VPos::Center)),
    ))
    .map_err(err)?;
    let rmse = |name: &str| {
        r.laws
            .iter()
            .find(|l| l.law == name)
            .and_then(|l| l.protocols.iter().find(|p| p.protocol == protocol))
            .map(|p| p.rmse)
            .filter(|v| v.is_finite())
    };
    let top = order.iter().filter_map(|n| rmse(n)).fold(0.0, f64::max);
    // Names on the left third, bars in the middle, values at their ends.
    let (x0, x1) = (width / 3, width - 120);
    for (i, name) in order.iter().enumerate() {
        let y = (PANEL_HEAD + ROW * i as u32 + ROW / 2) as i32;
        let shown: String = if name.chars().count() > 40 {
            name.chars().take(39).chain(std::iter::once('…')).collect()
        } else {
            name.clone()
        };
        let place = match rmse(name) {
            Some(_) => format!("{}.", i + 1),
            None => "–".to_string(),
        };
        area.draw(&Text::new(
            format!("{place} {shown}"),
            (16, y),
            text(15, HPos::Left),
        ))
        .map_err(err)?;
        match rmse(name) {
            Some(v) if top > 0.0 => {
                let end = x0 + ((x1 - x0) as f64 * v / top).round().max(1.0) as i32;
                let h = (ROW as i32 * 3) / 8;
                area.draw(&Rectangle::new(
                    [(x0, y - h), (end, y + h)],
                    PRED.mix(0.85).filled(),
                ))
                .map_err(err)?;
                area.draw(&Text::new(
                    format_sig(v, 4),
                    (end + 8, y),
                    text(14, HPos::Left),
                ))
                .map_err(err)?;
            }
            _ => {
                area.draw(&Text::new(
                    "(does not apply)",
                    (x0, y),
                    text(14, HPos::Left),
                ))
                .map_err(err)?;
            }
        }
    }
    Ok(())
}
