//! Plots written as PNG and SVG with plotters, using the embedded DejaVu Sans font so no system
//! font library is needed.

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::atomic_write_path;
use crate::error::{Error, Result};

static FONT: Once = Once::new();

fn register_font() {
    FONT.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
            .unwrap_or_else(|_| panic!("the embedded DejaVu Sans font is a valid TrueType file"));
    });
}

/// A named set of points drawn with one colour.
pub struct Series<'a> {
    pub name: &'a str,
    pub points: &'a [(f64, f64)],
    pub color: RGBColor,
}

/// Log-log scatter of the series, with the line `y = x` when `diagonal` is set, written to
/// `stem.png` and `stem.svg`. Points with a non-positive or non-finite coordinate cannot be shown
/// on log axes and are left out (the CSV next to the plot keeps every value).
pub fn scatter_loglog(
    stem: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series<'_>],
    diagonal: bool,
) -> Result<()> {
    register_font();
    let positive: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().filter(|p| on_log_axes(p.0) && on_log_axes(p.1)).flat_map(|p| [p.0, p.1]))
        .collect();
    if positive.is_empty() {
        return Err(Error::invalid("plot", format!("{title}: at least one positive finite point")));
    }
    let lo = positive.iter().copied().fold(f64::INFINITY, f64::min) / 2.0;
    let hi = positive.iter().copied().fold(0.0, f64::max) * 2.0;
    let png = stem.with_extension("png");
    let svg = stem.with_extension("svg");
    let labels = (title, x_label, y_label);
    atomic_write_path(&png, |tmp| {
        draw_scatter(BitMapBackend::new(tmp, (900, 700)).into_drawing_area(), labels, series, diagonal, (lo, hi))
    })?;
    atomic_write_path(&svg, |tmp| {
        draw_scatter(SVGBackend::new(tmp, (900, 700)).into_drawing_area(), labels, series, diagonal, (lo, hi))
    })
}

fn draw_scatter<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    (title, x_label, y_label): (&str, &str, &str),
    series: &[Series<'_>],
    diagonal: bool,
    (lo, hi): (f64, f64),
) -> std::result::Result<(), String> {
    let e = |err: DrawingAreaErrorKind<DB::ErrorType>| err.to_string();
    root.fill(&WHITE).map_err(e)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(15)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d((lo..hi).log_scale(), (lo..hi).log_scale())
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .label_style(("sans-serif", 15))
        .x_label_formatter(&|v| format!("{v:.0e}"))
        .y_label_formatter(&|v| format!("{v:.0e}"))
        .draw()
        .map_err(e)?;
    if diagonal {
        chart
            .draw_series(LineSeries::new([(lo, lo), (hi, hi)], GREEN.stroke_width(2)))
            .map_err(e)?
            .label("y = x (bound)")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], GREEN.stroke_width(2)));
    }
    for s in series {
        let color = s.color;
        let points = s.points.iter().copied().filter(|&(x, y)| on_log_axes(x) && on_log_axes(y));
        chart
            .draw_series(points.map(|p| Circle::new(p, 4, color.filled())))
            .map_err(e)?
            .label(s.name)
            .legend(move |(x, y)| Circle::new((x + 10, y), 4, color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .draw()
        .map_err(e)?;
    root.present().map_err(e)
}

fn on_log_axes(v: f64) -> bool {
    v > 0.0 && v.is_finite()
}
