//! The Real-vs-Pred grid: it renders for both sweep shapes in PNG and SVG,
//! each curve lands in its own cell of the documented layout under one
//! title and one legend, Real blue and Pred orange (the LoopLM paper's
//! colours), the prediction drawn over held-out markers, empty cells stay
//! blank, and the CLI writes it (`plot`, `fit --plot`) and refuses to
//! overwrite without --force. The residual grid: pred − loss on the
//! grid's layout, on the right side of a zero line, on a range a few
//! outliers do not set, written by `fit --plot` and `plot --residuals`.
//! The profiles: `fit --plot --profile` draws one panel per parameter.

mod common;

use std::path::Path;

use sweepfit::data::{Dataset, Row, Table};
use sweepfit::report::{self, format_count, FoldReport, Panel, PlotOptions};
use sweepfit::simulate::{simulate_looplm20, SimOptions};
use tempfile::TempDir;

const W: usize = 400;
const H: usize = 300;
/// The title-and-legend strip above the panels.
const HEAD: usize = report::HEADER_HEIGHT as usize;
/// The strips naming the shared axes, left of and under the panels.
const LEFT: usize = report::Y_LABEL_WIDTH as usize;
const FOOT: usize = report::X_LABEL_HEIGHT as usize;

/// A scratch directory under the build's own temporary directory.
fn tempdir() -> TempDir {
    tempfile::Builder::new()
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap()
}

/// The 4 x 5 simulated sweep, `points` per curve.
fn sim_sweep(points: usize) -> Dataset {
    simulate_looplm20(&SimOptions {
        points_per_curve: points,
        ..Default::default()
    })
}

/// The simulation's parameters: E, A, alpha, t1, B, beta, t2, C, gamma, t3.
const TRUTH: [f64; 10] = [1.8, 268.0, 0.30, 1e7, 2018.0, 0.35, 1.06e7, 0.675, 1.0, 0.5];

/// The LoopLM law at `p` (in TRUTH's order), written out here.
fn looplm(p: &[f64; 10], n: f64, d: f64, t: f64) -> f64 {
    p[0] + p[1] / (n + p[3]).powf(p[2])
        + p[4] / (d + p[6]).powf(p[5])
        + p[7] / (t + p[9]).powf(p[8])
}

/// One panel per curve of `ds` with the law at `p`; `held`, when given,
/// one flag per point.
fn panels_of(ds: &Dataset, p: &[f64; 10], held: Option<&[bool]>) -> Vec<Panel> {
    ds.configs
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
                    .map(|i| looplm(p, c.n, ds.tokens[i], c.t))
                    .collect(),
                held_out: held.map_or_else(Vec::new, |h| h[r].to_vec()),
                band: Vec::new(),
                schedule: Vec::new(),
            }
        })
        .collect()
}

fn sim_panels(points: usize) -> Vec<Panel> {
    panels_of(&sim_sweep(points), &TRUTH, None)
}

/// A Pythia-like 1 x 4 sweep: T = 1 only, four sizes, 0..300B tokens, the
/// rows given out of order (largest model first).
fn pythia_like(points: usize) -> Dataset {
    let p = TRUTH;
    let mut rows = Vec::new();
    for (run, n) in [
        ("pythia-1b", 1.01e9),
        ("pythia-70m", 7.0e7),
        ("pythia-410m", 4.05e8),
        ("pythia-160m", 1.62e8),
    ] {
        for i in 0..points {
            let tokens = 300e9 * i as f64 / (points - 1) as f64;
            let wiggle = 0.03 * ((i * 7 % 13) as f64 / 13.0 - 0.5);
            rows.push(Row {
                run: run.into(),
                n,
                t: 1.0,
                tokens,
                loss: looplm(&p, n, tokens, 1.0) + 0.1 + wiggle,
                weight: 1.0,
            });
        }
    }
    Dataset::from_rows(rows)
}

struct Image {
    width: usize,
    height: usize,
    /// RGB, row-major.
    rgb: Vec<[u8; 3]>,
}

fn decode_png(path: &Path) -> Image {
    let file = std::fs::File::open(path).unwrap();
    let mut reader = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    let channels = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => panic!("unexpected PNG colour type {other:?}"),
    };
    let rgb = buf[..info.buffer_size()]
        .chunks(channels)
        .map(|c| [c[0], c[1], c[2]])
        .collect();
    Image {
        width: info.width as usize,
        height: info.height as usize,
        rgb,
    }
}

/// Colour classes, loose enough for blending with white or the grid.
fn is_blue([r, g, b]: [i32; 3]) -> bool {
    b > r + 80 && b > g + 30
}
/// Saturated orange, like matplotlib's (255, 127, 14): red high, green
/// about half, little blue.
fn is_orange([r, g, b]: [i32; 3]) -> bool {
    r > 200 && (90..=170).contains(&g) && b < 90
}
/// Pure red, like the (214, 39, 40) the prediction used to be drawn in;
/// orange never gets here, even blended with black or white.
fn is_red([r, g, b]: [i32; 3]) -> bool {
    r > 150 && g < 80 && b < 80
}
fn is_green([r, g, b]: [i32; 3]) -> bool {
    g > r + 60 && g > b + 60
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    ink: usize,
    blue: usize,
    orange: usize,
    red: usize,
    green: usize,
}

/// Pixel counts in x in `xs`, y in `ys`.
fn counts(img: &Image, xs: std::ops::Range<usize>, ys: std::ops::Range<usize>) -> Counts {
    let mut n = Counts::default();
    for y in ys {
        for x in xs.clone() {
            let px = img.rgb[y * img.width + x].map(i32::from);
            n.ink += usize::from(px != [255, 255, 255]);
            n.blue += usize::from(is_blue(px));
            n.orange += usize::from(is_orange(px));
            n.red += usize::from(is_red(px));
            n.green += usize::from(is_green(px));
        }
    }
    n
}

/// Pixel counts inside cell (row, col), below the header.
fn cell_counts(img: &Image, row: usize, col: usize) -> Counts {
    let y0 = HEAD + row * H;
    counts(img, LEFT + col * W..LEFT + (col + 1) * W, y0..y0 + H)
}

/// The column of the cell at x in the picture, if x is in one.
fn col_at(x: f64) -> Option<usize> {
    (x >= LEFT as f64).then(|| (x as usize - LEFT) / W)
}

/// Every cell has both lines, Real blue and Pred orange, nothing red; the
/// header above the panels has the title and the legend's samples.
fn assert_every_cell_drawn(img: &Image, rows: usize, cols: usize) {
    assert_eq!(
        (img.width, img.height),
        (LEFT + cols * W, HEAD + rows * H + FOOT),
        "picture size"
    );
    for r in 0..rows {
        for c in 0..cols {
            let n = cell_counts(img, r, c);
            assert!(
                n.ink > 2000 && n.blue > 100 && n.orange > 100 && n.red == 0,
                "cell ({r}, {c}): {n:?}"
            );
        }
    }
    let head = counts(img, 0..img.width, 0..HEAD);
    assert!(
        head.ink > 300 && head.blue > 20 && head.orange > 20 && head.red == 0,
        "header: {head:?}"
    );
}

/// How often `text` is drawn as a text element of the SVG.
fn svg_texts(svg: &str, text: &str) -> usize {
    svg.matches(&format!(">\n{text}\n<")).count()
}

fn title(t: f64, n: f64) -> String {
    format!("T = {t}, N = {}", format_count(n))
}

fn draw(path: &Path, panels: &[Panel]) {
    report::draw_grid(path, panels, &PlotOptions::default()).unwrap();
}

#[test]
fn simulated_sweep_is_a_4_by_5_grid_in_png_and_svg() {
    let dir = tempdir();
    let panels = sim_panels(60);
    let layout = report::grid_layout(&panels);
    assert_eq!(layout.rows, [1.0, 2.0, 3.0, 4.0]);
    assert_eq!(layout.cols, [53e6, 134e6, 374e6, 778e6, 1.36e9]);

    let png = dir.path().join("grid.png");
    draw(&png, &panels);
    assert_every_cell_drawn(&decode_png(&png), 4, 5);

    let svg_path = dir.path().join("grid.svg");
    draw(&svg_path, &panels);
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    let size = format!(r#"width="{}" height="{}""#, LEFT + 2000, HEAD + 1200 + FOOT);
    assert!(svg.starts_with("<svg") && svg.contains(&size));
    for p in &panels {
        assert_eq!(svg_texts(&svg, &title(p.t, p.n)), 1, "{}", title(p.t, p.n));
    }
    // The figure has one title and one legend, and names the axes its
    // panels share once (60 points from 0 to 20B tokens: from 339M, under
    // two decades, so a linear axis).
    for label in [report::DEFAULT_TITLE, "Real", "Pred", "Loss", "Tokens (B)"] {
        assert_eq!(svg_texts(&svg, label), 1, "{label}");
    }
    assert!(!svg.contains("log scale"));
    // With 500 points the first is at 40M: decades, so a log axis,
    // without the 20 points at step 0.
    let many = sim_panels(500);
    let path = dir.path().join("log.svg");
    draw(&path, &many);
    let svg = std::fs::read_to_string(&path).unwrap();
    let x_name = "Tokens (log scale; 20 points at 0 not drawn)";
    assert_eq!(svg_texts(&svg, x_name), 1, "{x_name}");
    for tick in ["100M", "1B", "10B"] {
        assert_eq!(svg_texts(&svg, tick), 20, "{tick}");
    }
    assert!(
        !svg.contains("Held out") && !svg.contains("band"),
        "no held-out points or bands, no legend entries for them"
    );
}

#[test]
fn the_title_is_the_callers_and_a_long_one_shrinks_to_fit() {
    let dir = tempdir();
    let panels = sim_panels(30);
    let opts = PlotOptions {
        title: Some("My sweep · R² = 0.99".into()),
        ..PlotOptions::default()
    };
    let path = dir.path().join("titled.svg");
    report::draw_grid(&path, &panels, &opts).unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    assert_eq!(svg_texts(&svg, "My sweep · R² = 0.99"), 1);
    assert!(!svg.contains(report::DEFAULT_TITLE));

    // One 400-pixel panel under a title several times that wide at the
    // usual size: shrunk, it leaves the picture's edges blank.
    let one = &panels[..1];
    let long = PlotOptions {
        title: Some("sizes fold 10: train N = 374M, 778M, 1.36B · held-out R² = 0.9971".into()),
        ..PlotOptions::default()
    };
    let png = dir.path().join("long.png");
    report::draw_grid(&png, one, &long).unwrap();
    let img = decode_png(&png);
    assert_every_cell_drawn(&img, 1, 1);
    let left = counts(&img, 0..3, 0..HEAD);
    let right = counts(&img, LEFT + W - 3..LEFT + W, 0..HEAD);
    assert_eq!(
        (left.ink, right.ink),
        (0, 0),
        "the header runs off the edge"
    );
}

#[test]
fn pythia_like_sweep_is_a_1_by_4_grid_ordered_by_n() {
    let dir = tempdir();
    let panels = panels_of(&pythia_like(300), &TRUTH, None);
    let layout = report::grid_layout(&panels);
    assert_eq!(layout.rows, [1.0]);
    assert_eq!(layout.cols, [7.0e7, 1.62e8, 4.05e8, 1.01e9]);
    // Given largest first, the 1B curve still lands in the last column.
    assert_eq!(layout.cells[0], (0, 3));

    let png = dir.path().join("pythia.png");
    draw(&png, &panels);
    assert_every_cell_drawn(&decode_png(&png), 1, 4);

    let svg_path = dir.path().join("pythia.svg");
    draw(&svg_path, &panels);
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    for t in [
        "T = 1, N = 70M",
        "T = 1, N = 162M",
        "T = 1, N = 405M",
        "T = 1, N = 1.01B",
    ] {
        assert!(svg.contains(t), "no title {t}");
    }
    assert_eq!((svg_texts(&svg, "Real"), svg_texts(&svg, "Pred")), (1, 1));
}

#[test]
fn a_missing_configuration_leaves_its_cell_blank() {
    let dir = tempdir();
    let mut panels = sim_panels(40);
    // Drop T = 3, N = 374M: row 2, column 2.
    panels.retain(|p| !(p.t == 3.0 && p.n == 374e6));
    let png = dir.path().join("holes.png");
    draw(&png, &panels);
    let img = decode_png(&png);
    assert_eq!((img.width, img.height), (LEFT + 5 * W, HEAD + 4 * H + FOOT));
    for r in 0..4 {
        for c in 0..5 {
            let ink = cell_counts(&img, r, c).ink;
            if (r, c) == (2, 2) {
                assert_eq!(ink, 0, "the empty cell is blank");
            } else {
                assert!(ink > 2000, "cell ({r}, {c}) has {ink} non-white pixels");
            }
        }
    }
}

#[test]
fn held_out_points_are_green_and_in_the_legend() {
    let dir = tempdir();
    let ds = pythia_like(200);
    // The last quarter of every curve is held out.
    let held: Vec<bool> = ds
        .configs
        .iter()
        .flat_map(|c| (0..c.len).map(move |i| i >= c.len * 3 / 4))
        .collect();
    let panels = panels_of(&ds, &TRUTH, Some(&held));
    let png = dir.path().join("held.png");
    draw(&png, &panels);
    let img = decode_png(&png);
    for c in 0..4 {
        let green = cell_counts(&img, 0, c).green;
        assert!(green > 100, "cell (0, {c}): {green} green pixels");
    }
    let head = counts(&img, 0..img.width, 0..HEAD);
    assert!(
        head.green > 10,
        "no held-out sample in the legend: {head:?}"
    );
    let svg_path = dir.path().join("held.svg");
    draw(&svg_path, &panels);
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    // One legend for the figure, not one per panel.
    assert_eq!(svg_texts(&svg, "Held out"), 1);
}

/// The SVG's circles and polylines in drawing order: their colour (fill
/// of a circle, stroke of a line) and position (centre, first point).
fn svg_marks(svg: &str) -> Vec<([i32; 3], (f64, f64))> {
    let attr = |el: &str, name: &str| -> Option<String> {
        let start = el.find(&format!(" {name}=\""))? + name.len() + 3;
        Some(el[start..start + el[start..].find('"')?].to_string())
    };
    let rgb = |hex: &str| -> Option<[i32; 3]> {
        let h = hex.strip_prefix('#')?;
        let c = |i: usize| i32::from_str_radix(h.get(i..i + 2)?, 16).ok();
        Some([c(0)?, c(2)?, c(4)?])
    };
    let mut out = Vec::new();
    for el in svg.split('<').skip(1) {
        let found = if el.starts_with("circle ") {
            rgb(&attr(el, "fill").unwrap_or_default()).zip(
                attr(el, "cx")
                    .zip(attr(el, "cy"))
                    .map(|(x, y)| (x.parse().unwrap(), y.parse().unwrap())),
            )
        } else if el.starts_with("polyline ") {
            rgb(&attr(el, "stroke").unwrap_or_default()).zip(
                attr(el, "points")
                    .and_then(|p| p.split_whitespace().next().map(str::to_string))
                    .and_then(|p| {
                        let (x, y) = p.split_once(',')?;
                        Some((x.parse().unwrap(), y.parse().unwrap()))
                    }),
            )
        } else {
            None
        };
        out.extend(found);
    }
    out
}

#[test]
fn the_prediction_is_drawn_over_the_held_out_markers() {
    let dir = tempdir();
    let ds = pythia_like(200);
    let last_quarter: Vec<bool> = ds
        .configs
        .iter()
        .flat_map(|c| (0..c.len).map(move |i| i >= c.len * 3 / 4))
        .collect();
    // A perfect fit: every held-out marker sits on the predicted line,
    // where it would hide the prediction if drawn over it.
    let perfect = |held: &[bool]| {
        let mut panels = panels_of(&ds, &TRUTH, Some(held));
        for p in &mut panels {
            p.loss = p.pred.clone();
        }
        panels
    };

    let svg_path = dir.path().join("order.svg");
    draw(&svg_path, &perfect(&last_quarter));
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    let marks = svg_marks(&svg);
    for c in 0..4 {
        // The marks of panel c, in drawing order (the header's are above).
        let in_cell: Vec<[i32; 3]> = marks
            .iter()
            .filter(|(_, (x, y))| *y >= HEAD as f64 && col_at(*x) == Some(c))
            .map(|(colour, _)| *colour)
            .collect();
        let last_marker = in_cell.iter().rposition(|&k| is_green(k));
        let first_pred = in_cell.iter().position(|&k| is_orange(k));
        match (last_marker, first_pred) {
            (Some(m), Some(p)) => {
                assert!(m < p, "panel {c}: a marker is drawn after the prediction")
            }
            other => panic!("panel {c}: markers and prediction at {other:?}"),
        }
    }

    // Every point held out: the markers cover the whole curve, and the
    // dashes still show on top of them (about 800 orange pixels a panel;
    // under the markers fewer than 100 peek out where the curve is steep).
    let png = dir.path().join("all_held.png");
    draw(&png, &perfect(&vec![true; ds.points()]));
    let img = decode_png(&png);
    for c in 0..4 {
        let n = cell_counts(&img, 0, c);
        assert!(n.green > 100 && n.orange > 400, "cell (0, {c}): {n:?}");
    }
}

#[test]
fn fold_titles_name_the_fold_and_its_held_out_r2() {
    let mut f = FoldReport {
        protocol: "sizes".into(),
        fold: "train N = 53M, 134M, 374M".into(),
        train_points: 600,
        held_out_points: 200,
        scored_points: 200,
        objective: 1e-4,
        starts: 8,
        at_best: 3,
        params: Default::default(),
        groups: Default::default(),
        r2: 0.99712,
        rmse: 0.01,
        mape: 0.3,
    };
    assert_eq!(
        report::fold_title(3, &f),
        "sizes fold 3: train N = 53M, 134M, 374M · held-out R² = 0.9971"
    );
    // A constant held-out loss has no R²; the title says so, not "NaN" or
    // a "-" that reads as a minus sign.
    f.r2 = f64::NAN;
    let t = report::fold_title(3, &f);
    assert!(!t.contains("NaN") && !t.contains("= -"), "{t}");
}

/// Pixels of a pale orange (the prediction's colour faded, so the band
/// goes with it) inside cell (row, col).
fn band_pixels(img: &Image, row: usize, col: usize) -> usize {
    let mut n = 0;
    for y in HEAD + row * H..HEAD + (row + 1) * H {
        for x in LEFT + col * W..LEFT + (col + 1) * W {
            let [r, g, b] = img.rgb[y * img.width + x].map(i32::from);
            n += usize::from(
                r >= 245 && (195..=240).contains(&g) && (150..=225).contains(&b) && g > b + 15,
            );
        }
    }
    n
}

#[test]
fn bootstrap_bands_are_shaded_and_in_the_legend() {
    let dir = tempdir();
    let ds = pythia_like(200);
    // Replicates that shift E by -0.3..0.3: a band 0.6 loss units wide
    // (0.57 between the 2.5th and 97.5th percentiles) around the law, as a
    // bootstrapped fit's fit.json holds them; the law's pictures draw it.
    let samples: Vec<Vec<f64>> = (0..=40)
        .map(|k| {
            let mut p = TRUTH;
            p[0] += 0.3 * (k as f64 / 20.0 - 1.0);
            p.to_vec()
        })
        .collect();
    let names = [
        "E", "A", "alpha", "t1", "B", "beta", "t2", "C", "gamma", "t3",
    ];
    let params: serde_json::Map<String, serde_json::Value> = names
        .iter()
        .zip(TRUTH)
        .map(|(n, v)| (n.to_string(), serde_json::json!(v)))
        .collect();
    let fit = serde_json::json!({
        "law": "looplm", "params": params, "fixed": [],
        "objective": {"loss": "mse", "space": "linear", "delta": 1e-3, "value": 1e-3},
        "metrics": {"r2": 0.99, "rmse": 0.1, "mae": 0.1, "per_config": []},
        "starts": {"count": 1, "at_best": 1, "status_counts": {}, "iterations": 1,
                   "evaluations": 1, "start_evaluations": 1},
        "backend": {"kind": "cpu", "device": "cpu"}, "seconds": 0.0, "points": 800,
        "configs": 4, "notes": [],
        "bootstrap": {"seed": 0, "level": 0.95, "seconds": 0.0, "resamples": [
            {"kind": "points", "replicates": 41, "converged": 41, "converged_fraction": 1.0,
             "used": 41, "params": {}, "samples": samples}]}
    });
    let report = report::legacy::upgrade(&fit.to_string()).unwrap();
    let law = sweepfit::law::builtin_law("looplm")
        .unwrap()
        .compile("looplm")
        .unwrap();
    let table = Table::from_dataset(&ds, Path::new("pythia-like"));
    let (panels, opts) = sweepfit::lawfit::panels(&law, Some("D"), &report, &table, None).unwrap();
    assert_eq!(opts.band_label, "95% band (points)");
    let mut plain = panels.clone();
    for p in &mut plain {
        p.band.clear();
    }
    for p in &panels {
        assert_eq!(p.band.len(), p.tokens.len());
        for (&(lo, hi), &pred) in p.band.iter().zip(&p.pred) {
            assert!((pred - lo - 0.285).abs() < 1e-9 && (hi - pred - 0.285).abs() < 1e-9);
        }
    }
    let opts = PlotOptions {
        band_label: "95% band (points)".into(),
        ..PlotOptions::default()
    };
    let png = dir.path().join("band.png");
    report::draw_grid(&png, &panels, &opts).unwrap();
    let img = decode_png(&png);
    let bare = dir.path().join("bare.png");
    draw(&bare, &plain);
    let bare_img = decode_png(&bare);
    for c in 0..4 {
        let n = band_pixels(&img, 0, c);
        assert!(n > 1000, "cell (0, {c}): {n} band pixels");
        // Without samples, only a few edge pixels of the orange line, faded
        // into the white, have the band's colour.
        let bare = band_pixels(&bare_img, 0, c);
        assert!(
            bare < 100,
            "cell (0, {c}): {bare} band pixels without samples"
        );
    }
    let svg_path = dir.path().join("band.svg");
    report::draw_grid(&svg_path, &panels, &opts).unwrap();
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert_eq!(svg_texts(&svg, "95% band (points)"), 1);

    let mut bad = panels.clone();
    bad[0].band.pop();
    assert!(report::draw_grid(&dir.path().join("bad.png"), &bad, &opts).is_err());
}

#[test]
fn long_curves_are_decimated_so_the_svg_stays_small() {
    let dir = tempdir();
    let n = 143_000;
    let tokens: Vec<f64> = (0..n).map(|i| i as f64 * 2.1e6).collect();
    let loss: Vec<f64> = tokens
        .iter()
        .enumerate()
        .map(|(i, d)| 2.0 + 9.0 * (-d / 5e9).exp() + 0.05 * ((i % 17) as f64 / 17.0))
        .collect();
    let panel = Panel {
        run: "big".into(),
        n: 1e9,
        t: 1.0,
        label: String::new(),
        // The law is smooth: drawn over the noisy loss, it runs under it.
        pred: tokens
            .iter()
            .map(|d| 2.0 + 9.0 * (-d / 5e9).exp() - 0.03)
            .collect(),
        tokens,
        loss,
        held_out: Vec::new(),
        band: Vec::new(),
        schedule: Vec::new(),
    };
    // Linear: on a log axis most of the curve is in its last tenth.
    let opts = PlotOptions {
        x_scale: report::XScale::Linear,
        ..Default::default()
    };
    let path = dir.path().join("big.svg");
    report::draw_grid(&path, std::slice::from_ref(&panel), &opts).unwrap();
    let size = std::fs::metadata(&path).unwrap().len();
    // 143k points written as-is would take several MB.
    assert!(size < 300_000, "SVG of {size} bytes");
    let png = dir.path().join("big.png");
    report::draw_grid(&png, &[panel], &opts).unwrap();
    assert_every_cell_drawn(&decode_png(&png), 1, 1);
}

#[test]
fn unknown_extension_is_refused() {
    let dir = tempdir();
    let err = report::draw_grid(
        &dir.path().join("grid.jpg"),
        &sim_panels(5),
        &PlotOptions::default(),
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains(".png or .svg"), "{err:#}");
    assert!(!dir.path().join("grid.jpg").exists());
}

// ------------------------------------------------------------ residuals

/// Every polyline of the SVG drawn in `colour` (its stroke), as its points.
fn svg_polylines(svg: &str, colour: [i32; 3]) -> Vec<Vec<(f64, f64)>> {
    let stroke = format!(
        "stroke=\"#{:02X}{:02X}{:02X}\"",
        colour[0], colour[1], colour[2]
    );
    svg.split('<')
        .filter(|el| el.starts_with("polyline ") && el.contains(&stroke))
        .map(|el| {
            let start = el.find(" points=\"").unwrap() + " points=\"".len();
            el[start..start + el[start..].find('"').unwrap()]
                .split_whitespace()
                .map(|p| {
                    let (x, y) = p.split_once(',').unwrap();
                    (x.parse().unwrap(), y.parse().unwrap())
                })
                .collect()
        })
        .collect()
}

const RESIDUAL_BLUE: [i32; 3] = [31, 119, 180];
const ZERO_GREY: [i32; 3] = [90, 90, 90];

#[test]
fn residuals_sit_above_zero_where_the_law_overshoots_on_a_robust_range() {
    let dir = tempdir();
    let mut panels = panels_of(&pythia_like(200), &TRUTH, None);
    let layout = report::grid_layout(&panels);
    // The smallest model's law overshoots by 0.02, the others undershoot
    // by 0.02; one step-0 miss of 5 must not set the range.
    let col_of = |i: usize| layout.cells[i].1;
    for (i, p) in panels.iter_mut().enumerate() {
        let r = if col_of(i) == 0 { 0.02 } else { -0.02 };
        p.pred = p.loss.iter().map(|l| l + r).collect();
    }
    let last = (0..panels.len()).find(|&i| col_of(i) == 3).unwrap();
    panels[last].pred[0] = panels[last].loss[0] + 5.0;
    let (lo, hi) = report::residual_range(&panels);
    assert!(lo == -hi && (hi - 0.022).abs() < 1e-9, "({lo}, {hi})");

    let svg_path = dir.path().join("residuals.svg");
    report::draw_residuals(&svg_path, &panels, &PlotOptions::default()).unwrap();
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert_eq!(svg_texts(&svg, report::RESIDUALS_TITLE), 1, "the title");
    assert_eq!(svg_texts(&svg, "Residual"), 1, "one legend entry");
    assert_eq!(svg_texts(&svg, "Pred"), 0, "no prediction line");
    let zeros = svg_polylines(&svg, ZERO_GREY);
    let blues = svg_polylines(&svg, RESIDUAL_BLUE);
    for (i, p) in panels.iter().enumerate() {
        let c = col_of(i);
        let in_cell = |pts: &&Vec<(f64, f64)>| {
            let (x, y) = pts[0];
            y >= HEAD as f64 && col_at(x) == Some(c)
        };
        let zero: Vec<_> = zeros.iter().filter(in_cell).collect();
        assert_eq!(zero.len(), 1, "panel {c}: one zero line");
        assert!(
            zero[0].iter().all(|&(_, y)| y == zero[0][0].1),
            "horizontal"
        );
        let y0 = zero[0][0].1;
        let mut ys: Vec<f64> = blues
            .iter()
            .filter(in_cell)
            .flatten()
            .map(|&(_, y)| y)
            .collect();
        assert!(
            ys.len() >= p.tokens.len() / 2,
            "panel {c}: {} points",
            ys.len()
        );
        ys.sort_by(f64::total_cmp);
        // 0.02 of a ±0.022 range: most of the way from zero to the edge
        // (the plotting area is about 200 px high, so ~90 px).
        let median = ys[ys.len() / 2];
        if c == 0 {
            assert!(median < y0 - 60.0, "panel {c}: {median} vs zero at {y0}");
        } else {
            assert!(median > y0 + 60.0, "panel {c}: {median} vs zero at {y0}");
        }
    }

    // The PNG of the same panels: the grid's size, a blue line in every
    // cell and nothing orange.
    let png = dir.path().join("residuals.png");
    report::draw_residuals(&png, &panels, &PlotOptions::default()).unwrap();
    let img = decode_png(&png);
    assert_eq!((img.width, img.height), (LEFT + 4 * W, HEAD + H + FOOT));
    for c in 0..4 {
        let n = cell_counts(&img, 0, c);
        assert!(n.blue > 100 && n.orange == 0, "cell (0, {c}): {n:?}");
    }
}

#[test]
fn held_out_residuals_are_green_and_in_the_legend() {
    let dir = tempdir();
    let ds = pythia_like(200);
    let held: Vec<bool> = ds
        .configs
        .iter()
        .flat_map(|c| (0..c.len).map(move |i| i >= c.len * 3 / 4))
        .collect();
    let panels = panels_of(&ds, &TRUTH, Some(&held));
    let png = dir.path().join("held.png");
    report::draw_residuals(&png, &panels, &PlotOptions::default()).unwrap();
    let img = decode_png(&png);
    for c in 0..4 {
        let n = cell_counts(&img, 0, c);
        assert!(n.green > 100 && n.blue > 100, "cell (0, {c}): {n:?}");
    }
    assert!(counts(&img, 0..img.width, 0..HEAD).green > 10, "legend");
    let svg_path = dir.path().join("held.svg");
    report::draw_residuals(&svg_path, &panels, &PlotOptions::default()).unwrap();
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert_eq!(svg_texts(&svg, "Held out"), 1);
}

#[test]
fn long_residual_curves_are_decimated_and_the_x_axis_follows_the_options() {
    let dir = tempdir();
    let n = 143_000;
    let tokens: Vec<f64> = (0..n).map(|i| 1e6 + i as f64 * 2.1e6).collect();
    let loss: Vec<f64> = tokens
        .iter()
        .map(|d| 2.0 + 9.0 * (-d / 5e9).exp())
        .collect();
    let panel = Panel {
        run: "big".into(),
        n: 1e9,
        t: 1.0,
        pred: loss
            .iter()
            .enumerate()
            .map(|(i, l)| l + 0.05 * ((i % 17) as f64 / 17.0 - 0.5))
            .collect(),
        tokens,
        loss,
        ..Default::default()
    };
    let opts = PlotOptions {
        x_label: "Steps".into(),
        x_unit: 1.0,
        x_scale: report::XScale::Log,
        title: Some("Real vs Pred · test law · R² = 0.5".into()),
        ..Default::default()
    };
    let path = dir.path().join("big.svg");
    report::draw_residuals(&path, std::slice::from_ref(&panel), &opts).unwrap();
    let size = std::fs::metadata(&path).unwrap().len();
    // 143k points written as-is would take several MB.
    assert!(size < 200_000, "SVG of {size} bytes");
    let svg = std::fs::read_to_string(&path).unwrap();
    let points: usize = svg_polylines(&svg, RESIDUAL_BLUE)
        .iter()
        .map(Vec::len)
        .sum();
    assert!(points <= 2000 + 10, "{points} points drawn");
    assert_eq!(
        svg_texts(&svg, "Steps (log scale)"),
        1,
        "the x label of the options"
    );
    // A log axis labels its ticks as counts (e.g. "1M", "100M").
    assert!(svg_texts(&svg, "100M") == 1, "log ticks");
    assert_eq!(
        svg_texts(&svg, "Residuals (pred − loss) · test law · R² = 0.5"),
        1
    );
}

/// Curves of `points` points whose loss jumps up and down by up to `amp`
/// about the law from one point to the next: the noise whose thick-line
/// joins once shot spikes out of the residual panels.
fn noisy_panels(points: usize, amp: f64) -> Vec<Panel> {
    let mut panels = panels_of(&pythia_like(points), &TRUTH, None);
    for p in &mut panels {
        for (i, (loss, pred)) in p.loss.iter_mut().zip(&p.pred).enumerate() {
            let u = (i * 7919 % 1000) as f64 / 1000.0;
            let sign = if i % 2 == 0 { 1.0 } else { -1.0 };
            *loss = pred + sign * amp * (0.2 + u);
        }
    }
    panels
}

/// Blue pixels outside the panels' plotting areas: in the header's title,
/// the strips naming the axes, and each cell's title and tick labels.
fn blue_outside_plots(img: &Image, rows: usize, cols: usize) -> Vec<String> {
    let mut found = Vec::new();
    let mut check = |what: String, xs: std::ops::Range<usize>, ys: std::ops::Range<usize>| {
        let n = counts(img, xs, ys).blue;
        if n > 0 {
            found.push(format!("{what}: {n} blue pixels"));
        }
    };
    check("title".into(), 0..img.width, 0..48);
    check("left strip".into(), 0..LEFT, HEAD..img.height);
    check("foot".into(), 0..img.width, img.height - FOOT..img.height);
    for r in 0..rows {
        for c in 0..cols {
            let (x0, y0) = (LEFT + c * W, HEAD + r * H);
            // The title above the plotting area, the x ticks' labels under
            // it and the y ticks' labels left of it.
            check(format!("cell ({r}, {c}) title"), x0..x0 + W, y0..y0 + 30);
            check(
                format!("cell ({r}, {c}) x ticks"),
                x0..x0 + W,
                y0 + H - 18..y0 + H,
            );
            check(format!("cell ({r}, {c}) y ticks"), x0..x0 + 44, y0..y0 + H);
        }
    }
    found
}

#[test]
fn noisy_lines_stay_inside_their_panels() {
    let dir = tempdir();
    // 500 points (thin lines), 150 (thick ones, cut at their sharp turns)
    // and a few (thick, hardly any turn).
    for points in [500, 150, 12] {
        let panels = noisy_panels(points, 0.05);
        for residuals in [true, false] {
            let png = dir.path().join(format!("noisy-{points}-{residuals}.png"));
            if residuals {
                report::draw_residuals(&png, &panels, &PlotOptions::default()).unwrap();
            } else {
                draw(&png, &panels);
            }
            let img = decode_png(&png);
            let stray = blue_outside_plots(&img, 1, 4);
            assert!(stray.is_empty(), "{points} points: {stray:?}");
            for c in 0..4 {
                assert!(
                    cell_counts(&img, 0, c).blue > 100,
                    "{points} points, cell {c}"
                );
            }
        }
    }
}

#[test]
fn profile_ticks_and_titles_keep_exponents_and_decimals() {
    use sweepfit::profile::{End, ProfileInterval, ProfileReport};
    let dir = tempdir();
    let curve = |lo: f64, hi: f64, best: f64, values: Vec<f64>| {
        let statistic = values
            .iter()
            .map(|v| 3.84 * ((v - best) / ((hi - lo) / 2.0)).powi(2))
            .collect();
        ProfileInterval {
            lo,
            hi,
            lo_end: End::Found,
            hi_end: End::Found,
            lo_statistic: 3.84,
            hi_statistic: 3.84,
            open: String::new(),
            values,
            statistic,
        }
    };
    let grid = |lo: f64, hi: f64| -> Vec<f64> {
        (0..=20).map(|i| lo + (hi - lo) * i as f64 / 20.0).collect()
    };
    // The example sweep's t2 and A, whose ticks once read "95, 1, 105,
    // 11, 115" and "2 4 6 8", and whose titles printed raw numbers (the
    // y axis, 0 to about 17, has ticks 0, 5, 10, 15 in both).
    let mut params = indexmap::IndexMap::new();
    params.insert(
        "t2".to_string(),
        curve(10359742.6, 10598533.4, 1.048e7, grid(9.6e6, 1.14e7)),
    );
    params.insert(
        "A".to_string(),
        curve(203.6, 349.6, 270.0, grid(40.0, 820.0)),
    );
    let report = ProfileReport {
        level: 0.95,
        threshold: 3.841458820694124,
        params,
        notes: Vec::new(),
    };
    let path = dir.path().join("profile.svg");
    report::draw_profiles(&path, &report, "Profile likelihood").unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    assert_eq!(svg_texts(&svg, "t2 [1.036e7, 1.06e7]"), 1, "t2's title");
    assert_eq!(svg_texts(&svg, "A [204, 350]"), 1, "A's title");
    for tick in ["1e7", "1.05e7", "1.1e7", "200", "400", "600", "800"] {
        assert_eq!(svg_texts(&svg, tick), 1, "tick {tick}");
    }
    for lost in ["95", "105", "115"] {
        assert_eq!(svg_texts(&svg, lost), 0, "tick {lost}");
    }
}

#[test]
fn a_long_row_of_groups_wraps_without_doubled_titles() {
    let dir = tempdir();
    // A law fit --by dataset of three data sets at five sizes: per-size
    // columns of three, one row of fifteen, each titled with its group.
    let sets = ["books", "code", "web"];
    let sizes = [7e7, 1.6e8, 4.1e8, 1e9, 2.8e9];
    let base = panels_of(&pythia_like(40), &TRUTH, None);
    let mut panels = Vec::new();
    for (k, &n) in sizes.iter().enumerate() {
        for set in sets {
            let label = format!("{set}, N = {}", format_count(n));
            panels.push(Panel {
                run: label.clone(),
                n,
                t: 0.0,
                label,
                ..base[k % base.len()].clone()
            });
        }
    }
    let layout = report::grid_layout(&panels);
    assert!(layout.wrapped);
    assert_eq!((layout.rows.len(), layout.cols.len()), (4, 4));
    let path = dir.path().join("groups.svg");
    draw(&path, &panels);
    let svg = std::fs::read_to_string(&path).unwrap();
    let size = format!(
        r#"width="{}" height="{}""#,
        LEFT + 4 * W,
        HEAD + 4 * H + FOOT
    );
    assert!(svg.contains(&size), "not a 4 x 4 grid");
    for p in &panels {
        assert_eq!(svg_texts(&svg, &p.label), 1, "{}", p.label);
    }
    assert!(!svg.contains("(books"), "a doubled title");
    let png = dir.path().join("groups.png");
    draw(&png, &panels);
    let img = decode_png(&png);
    for i in 0..15 {
        assert!(cell_counts(&img, i / 4, i % 4).blue > 100, "panel {i}");
    }
    assert_eq!(cell_counts(&img, 3, 3).ink, 0, "the 16th cell is blank");
}

#[test]
fn held_out_markers_are_thinned_on_long_curves() {
    let dir = tempdir();
    let ds = pythia_like(500);
    let held = vec![true; ds.points()];
    let panels = panels_of(&ds, &TRUTH, Some(&held));
    let path = dir.path().join("held.svg");
    draw(&path, &panels);
    let svg = std::fs::read_to_string(&path).unwrap();
    let most = report::max_markers(&PlotOptions::default());
    for c in 0..4 {
        let markers = svg_marks(&svg)
            .iter()
            .filter(|(k, (x, y))| is_green(*k) && *y >= HEAD as f64 && col_at(*x) == Some(c))
            .count();
        assert!(
            markers >= most / 2 && markers <= most,
            "panel {c}: {markers} markers"
        );
    }
}

#[test]
fn a_band_too_thin_to_see_is_named_so_and_drawn_on_the_residuals() {
    let dir = tempdir();
    // Replicates moving E by ±0.002, evenly: a band a thousandth of the
    // loss range, from 0.0019 below the law to 0.0019 above it (the 2.5th
    // and 97.5th percentiles).
    let mut panels = noisy_panels(200, 0.01);
    for p in &mut panels {
        p.band = p.pred.iter().map(|&v| (v - 0.0019, v + 0.0019)).collect();
    }
    let opts = PlotOptions {
        band_label: "95% band (curves)".into(),
        ..Default::default()
    };
    let svg_path = dir.path().join("thin.svg");
    report::draw_grid(&svg_path, &panels, &opts).unwrap();
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert_eq!(
        svg_texts(
            &svg,
            "95% band (curves), median width 0.0038: too thin to see here"
        ),
        1
    );
    // On the residuals' scale (±0.013 or so) it shows, about zero.
    let png = dir.path().join("thin-residuals.png");
    report::draw_residuals(&png, &panels, &opts).unwrap();
    let img = decode_png(&png);
    for c in 0..4 {
        let n = band_pixels(&img, 0, c);
        assert!(n > 500, "cell (0, {c}): {n} band pixels");
    }
    let svg_path = dir.path().join("thin-residuals.svg");
    report::draw_residuals(&svg_path, &panels, &opts).unwrap();
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert_eq!(svg_texts(&svg, "95% band (curves) about the prediction"), 1);
}

// ------------------------------------------------------------------ CLI

/// Whether the run succeeded, and everything it printed.
fn sweepfit(cwd: &Path, args: &[&str]) -> (bool, String) {
    let run = common::sweepfit(cwd, args);
    (run.ok, run.stdout + &run.stderr)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn fit_plot_writes_both_pictures_and_plot_refuses_to_overwrite() {
    let dir = tempdir();
    let sim = dir.path().join("sim.csv");
    let (ok, text) = sweepfit(
        dir.path(),
        &["simulate", "--out", s(&sim), "--points", "60"],
    );
    assert!(ok, "{text}");
    let out = dir.path().join("out");
    let (ok, text) = sweepfit(
        dir.path(),
        &["fit", s(&sim), "--plot", "--starts", "8", "--out", s(&out)],
    );
    assert!(ok, "{text}");
    assert_every_cell_drawn(&decode_png(&out.join("grid.png")), 4, 5);
    let svg = std::fs::read_to_string(out.join("grid.svg")).unwrap();
    assert!(svg.contains("T = 4, N = 1.36B") && svg_texts(&svg, "Pred") == 1);
    // The title names the law and its R² on the whole sweep.
    let fit = sweepfit::lawfit::read_law_fit(&out.join("fit.json"))
        .unwrap()
        .report;
    let r2 = format!("R² = {:.4}", fit.metrics.r2);
    let titles: Vec<&str> = svg.lines().filter(|l| l.contains(&r2)).collect();
    assert!(
        titles.len() == 1 && titles[0].contains(&fit.law),
        "{r2} of {}: {titles:?}",
        fit.law
    );

    // `plot --fit` defaults to pred.csv and grid.png beside fit.json, which
    // `fit --plot` already wrote.
    let fit = out.join("fit.json");
    let png = out.join("grid.png");
    let before = std::fs::read(&png).unwrap();
    let (ok, text) = sweepfit(dir.path(), &["plot", "--fit", s(&fit)]);
    assert!(!ok, "overwrote without --force:\n{text}");
    assert!(
        text.contains("grid.png") && text.contains("--force"),
        "{text}"
    );
    assert_eq!(std::fs::read(&png).unwrap(), before, "left untouched");
    let (ok, text) = sweepfit(dir.path(), &["plot", "--fit", s(&fit), "--force"]);
    assert!(ok, "{text}");

    // From pred.csv alone (no fit.json beside it), to SVG; then again
    // without --force.
    let alone = dir.path().join("alone");
    std::fs::create_dir(&alone).unwrap();
    let pred = alone.join("pred.csv");
    std::fs::copy(out.join("pred.csv"), &pred).unwrap();
    let again = dir.path().join("again.svg");
    let args = ["plot", "--data", s(&pred), "--out", s(&again)];
    let (ok, text) = sweepfit(dir.path(), &args);
    assert!(ok, "{text}");
    let svg = std::fs::read_to_string(&again).unwrap();
    assert!(svg.contains("T = 1, N = 53M") && svg_texts(&svg, "Real") == 1);
    // A pred.csv alone says nothing about the fit: the plain title.
    assert_eq!(svg_texts(&svg, report::DEFAULT_TITLE), 1);
    let (ok, text) = sweepfit(dir.path(), &args);
    assert!(!ok && text.contains("exists"), "{text}");

    // Beside its fit.json, a pred.csv is drawn with the fit: its title.
    let with_fit = dir.path().join("with-fit.svg");
    let beside = out.join("pred.csv");
    let args = ["plot", "--data", s(&beside), "--out", s(&with_fit)];
    let (ok, text) = sweepfit(dir.path(), &args);
    assert!(ok, "{text}");
    let svg = std::fs::read_to_string(&with_fit).unwrap();
    assert_eq!(svg_texts(&svg, report::DEFAULT_TITLE), 0);
    assert!(svg.contains("looplm law · R²"));

    // A long CSV needs --fit for its predictions.
    let (ok, text) = sweepfit(dir.path(), &["plot", "--data", s(&sim), "--out", "x.png"]);
    assert!(!ok && text.contains("pred"), "{text}");
    let (ok, text) = sweepfit(
        dir.path(),
        &[
            "plot",
            "--fit",
            s(&fit),
            "--data",
            s(&sim),
            "--out",
            "x.png",
        ],
    );
    assert!(ok, "{text}");
    assert_every_cell_drawn(&decode_png(&dir.path().join("x.png")), 4, 5);
}

#[test]
fn fit_plot_writes_the_residuals_and_plot_residuals_draws_them() {
    let dir = tempdir();
    let sim = dir.path().join("sim.csv");
    let (ok, text) = sweepfit(
        dir.path(),
        &["simulate", "--out", s(&sim), "--points", "60"],
    );
    assert!(ok, "{text}");
    let out = dir.path().join("out");
    let (ok, text) = sweepfit(
        dir.path(),
        &["fit", s(&sim), "--plot", "--starts", "8", "--out", s(&out)],
    );
    assert!(ok, "{text}");
    assert!(
        text.contains("residuals.png") && text.contains("residuals.svg"),
        "{text}"
    );
    let grid = decode_png(&out.join("grid.png"));
    let resid = decode_png(&out.join("residuals.png"));
    assert_eq!((resid.width, resid.height), (grid.width, grid.height));
    for r in 0..4 {
        for c in 0..5 {
            let n = cell_counts(&resid, r, c);
            assert!(n.blue > 100 && n.orange == 0, "cell ({r}, {c}): {n:?}");
        }
    }
    let svg = std::fs::read_to_string(out.join("residuals.svg")).unwrap();
    assert!(svg.starts_with("<svg ") && svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("T = 4, N = 1.36B"));
    // The fit's title with the residuals in place of "Real vs Pred".
    let fit = sweepfit::lawfit::read_law_fit(&out.join("fit.json"))
        .unwrap()
        .report;
    let title = format!(
        "{} · {} law · R² = {:.4}",
        report::RESIDUALS_TITLE,
        fit.law,
        fit.metrics.r2
    );
    assert_eq!(svg_texts(&svg, &title), 1, "{title}");

    // `plot --residuals` defaults to residuals.png beside pred.csv, which
    // `fit --plot` already wrote: refused, then redrawn the same with --force.
    let fit = out.join("fit.json");
    let png = out.join("residuals.png");
    let before = std::fs::read(&png).unwrap();
    let (ok, text) = sweepfit(dir.path(), &["plot", "--fit", s(&fit), "--residuals"]);
    assert!(!ok, "overwrote without --force:\n{text}");
    assert!(
        text.contains("residuals.png") && text.contains("--force"),
        "{text}"
    );
    assert_eq!(std::fs::read(&png).unwrap(), before, "left untouched");
    let args = ["plot", "--fit", s(&fit), "--residuals", "--force"];
    let (ok, text) = sweepfit(dir.path(), &args);
    assert!(ok, "{text}");
    assert_eq!(std::fs::read(&png).unwrap(), before, "the same picture");

    // Beside --data, whatever it is; from a pred.csv alone, the plain title.
    let args = ["plot", "--fit", s(&fit), "--data", s(&sim), "--residuals"];
    let (ok, text) = sweepfit(dir.path(), &args);
    assert!(ok, "{text}");
    let beside = decode_png(&dir.path().join("residuals.png"));
    assert_eq!((beside.width, beside.height), (grid.width, grid.height));
    // From pred.csv alone (no fit.json beside it).
    let again = dir.path().join("again.svg");
    let alone = dir.path().join("alone");
    std::fs::create_dir(&alone).unwrap();
    let pred = alone.join("pred.csv");
    std::fs::copy(out.join("pred.csv"), &pred).unwrap();
    let args = [
        "plot",
        "--data",
        s(&pred),
        "--residuals",
        "--out",
        s(&again),
    ];
    let (ok, text) = sweepfit(dir.path(), &args);
    assert!(ok, "{text}");
    let svg = std::fs::read_to_string(&again).unwrap();
    assert_eq!(svg_texts(&svg, report::RESIDUALS_TITLE), 1);
    assert_eq!(svg_texts(&svg, "Real"), 0);
}

#[test]
fn fit_plot_with_profile_draws_the_profiles_and_without_it_does_not() {
    let dir = tempdir();
    let sim = dir.path().join("sim.csv");
    let (ok, text) = sweepfit(
        dir.path(),
        &[
            "simulate",
            "--out",
            s(&sim),
            "--points",
            "60",
            "--seed",
            "3",
        ],
    );
    assert!(ok, "{text}");
    let fit = |out: &Path, extra: &[&str]| {
        let mut args = vec![
            "fit",
            s(&sim),
            "--plot",
            "--starts",
            "16",
            "--backend",
            "cpu",
            "--out",
            s(out),
        ];
        args.extend_from_slice(extra);
        let (ok, text) = sweepfit(dir.path(), &args);
        assert!(ok, "{text}");
        text
    };
    let out = dir.path().join("out");
    let text = fit(&out, &["--profile", "alpha,beta"]);
    assert!(
        text.contains("profile.png") && text.contains("profile.svg"),
        "{text}"
    );
    // Two panels side by side under the header.
    let png = decode_png(&out.join("profile.png"));
    assert!(png.width > 0 && png.height > 0);
    assert_eq!((png.width, png.height), (2 * W, HEAD + H));
    let svg = std::fs::read_to_string(out.join("profile.svg")).unwrap();
    assert!(svg.starts_with("<svg ") && svg.trim_end().ends_with("</svg>"));
    for name in ["alpha", "beta"] {
        assert!(svg.contains(name), "profile.svg lacks {name}");
    }
    // The threshold's label names the level, and the title the fit.
    assert!(svg_texts(&svg, "95%") == 2, "one threshold label per panel");
    let report = sweepfit::lawfit::read_law_fit(&out.join("fit.json"))
        .unwrap()
        .report;
    let title = format!(
        "{} · {} law · R² = {:.4}",
        report::PROFILE_TITLE,
        report.law,
        report.metrics.r2
    );
    assert_eq!(svg_texts(&svg, &title), 1, "{title}");

    // Without --profile: the grid and the residuals only.
    let plain = dir.path().join("plain");
    let text = fit(&plain, &[]);
    assert!(plain.join("grid.png").exists() && plain.join("residuals.png").exists());
    assert!(!plain.join("profile.png").exists(), "{text}");
    assert!(!plain.join("profile.svg").exists() && !text.contains("profile.png"));
}

#[test]
fn help_documents_plot_and_fit_plot() {
    let dir = tempdir();
    let (ok, text) = sweepfit(dir.path(), &["plot", "--help"]);
    assert!(ok, "{text}");
    for w in [
        "--fit",
        "--data",
        "--out",
        "--force",
        "pred.csv",
        "percentile",
        "--residuals",
        "residuals.png",
        "--x-scale",
    ] {
        assert!(text.contains(w), "plot --help lacks {w}:\n{text}");
    }
    let (ok, text) = sweepfit(dir.path(), &["fit", "--help"]);
    assert!(
        ok && text.contains("--plot")
            && text.contains("--x-scale")
            && text.contains("grid.svg")
            && text.contains("residuals.svg")
            && text.contains("profile.svg"),
        "{text}"
    );
}

#[test]
fn a_law_fit_by_groups_is_near_square_and_its_pred_csv_plots() {
    let dir = tempdir();
    // Chinchilla's law for three data sets at five sizes each: fitted
    // --by dataset, one row of fifteen panels before it was wrapped.
    let csv = dir.path().join("groups.csv");
    let mut text = String::from("dataset,N,tokens,loss\n");
    for (k, set) in ["books", "code", "web"].iter().enumerate() {
        for n in [7e7f64, 1.6e8, 4.1e8, 1e9, 2.8e9] {
            for i in 0..10 {
                let d = 1e9 * 1.6f64.powi(i);
                let loss = 1.7 + 0.1 * k as f64 + 400.0 / n.powf(0.34) + 410.0 / d.powf(0.28);
                text.push_str(&format!("{set},{n},{d},{loss}\n"));
            }
        }
    }
    std::fs::write(&csv, text).unwrap();
    let out = dir.path().join("out");
    let args = [
        "fit",
        s(&csv),
        "--law",
        "chinchilla",
        "--by",
        "dataset",
        "--starts",
        "8",
        "--backend",
        "cpu",
        "--plot",
        "--out",
        s(&out),
    ];
    let (ok, text) = sweepfit(dir.path(), &args);
    assert!(ok, "{text}");
    let size = format!(
        r#"width="{}" height="{}""#,
        LEFT + 4 * W,
        HEAD + 4 * H + FOOT
    );
    let svg = std::fs::read_to_string(out.join("grid.svg")).unwrap();
    assert!(svg.contains(&size), "not a 4 x 4 grid");
    assert_eq!(svg_texts(&svg, "books, N = 70M"), 1);
    assert!(!svg.contains("(books"), "a doubled title");
    // Tokens from 1B to 69B: under two decades, a linear axis.
    assert_eq!(svg_texts(&svg, "D (B)"), 1);

    // The law fit's pred.csv has no N,T,tokens columns: drawn with the
    // fit.json beside it, the same picture; on a log axis if asked.
    let again = dir.path().join("again.svg");
    let pred = out.join("pred.csv");
    let args = ["plot", "--data", s(&pred), "--out", s(&again)];
    let (ok, text) = sweepfit(dir.path(), &args);
    assert!(ok, "{text}");
    assert_eq!(std::fs::read_to_string(&again).unwrap(), svg);
    let log = dir.path().join("log.svg");
    let args = [
        "plot",
        "--data",
        s(&pred),
        "--out",
        s(&log),
        "--x-scale",
        "log",
    ];
    let (ok, text) = sweepfit(dir.path(), &args);
    assert!(ok, "{text}");
    let svg = std::fs::read_to_string(&log).unwrap();
    assert_eq!(svg_texts(&svg, "D (log scale)"), 1);
    assert!(svg_texts(&svg, "10B") >= 1, "log ticks");

    // Without a fit.json beside it, a law's pred.csv asks for --fit.
    let alone = dir.path().join("alone.csv");
    std::fs::copy(&pred, &alone).unwrap();
    let args = ["plot", "--data", s(&alone), "--out", "x.png"];
    let (ok, text) = sweepfit(dir.path(), &args);
    assert!(!ok && text.contains("--fit"), "{text}");
}

/// Data with nothing that tells its curves apart (no run column, no
/// variable constant along them) is one panel titled "all rows", not
/// "T = 0, N = 0" from the wrap's indices; a curve of one row, which has
/// no line, gets its real and predicted values marked.
#[test]
fn one_row_without_a_run_is_titled_and_marked() {
    let dir = tempdir();
    let csv = common::chinchilla_csv(dir.path(), 4, 0.002);
    let (ok, text) = sweepfit(
        dir.path(),
        &[
            "fit",
            s(&csv),
            "--law",
            "chinchilla",
            "--backend",
            "cpu",
            "--starts",
            "4",
            "--out",
            "fit",
        ],
    );
    assert!(ok, "{text}");
    std::fs::write(dir.path().join("one.csv"), "N,tokens,loss\n1e8,1e9,3.0\n").unwrap();
    let (ok, text) = sweepfit(
        dir.path(),
        &[
            "plot",
            "--fit",
            "fit/fit.json",
            "--data",
            "one.csv",
            "--out",
            "one.svg",
        ],
    );
    assert!(ok, "{text}");
    let svg = std::fs::read_to_string(dir.path().join("one.svg")).unwrap();
    assert_eq!(svg_texts(&svg, "all rows"), 1, "{svg}");
    assert!(!svg.contains("T = 0"), "{svg}");
    // The two marks: the real value filled blue, the prediction ringed
    // orange (the legend draws lines, not circles).
    let circles: Vec<&str> = svg.split("<circle ").skip(1).collect();
    assert_eq!(circles.len(), 2, "{svg}");
    let colour = |el: &str, attr: &str| {
        let at = el.find(&format!("{attr}=\"#"))? + attr.len() + 3;
        let c = |i: usize| i32::from_str_radix(&el[at + i..at + i + 2], 16).ok();
        Some([c(0)?, c(2)?, c(4)?])
    };
    assert!(
        circles
            .iter()
            .any(|el| colour(el, "fill").is_some_and(is_blue)),
        "{svg}"
    );
    assert!(
        circles
            .iter()
            .any(|el| colour(el, "stroke").is_some_and(is_orange)),
        "{svg}"
    );
}
