//! Plots written as PNG and SVG with plotters, using the embedded DejaVu Sans font so no system
//! font library is needed.

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, Ranged, ValueFormatter};
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

/// A named set of points drawn with one colour, as markers or as a line.
pub struct Series<'a> {
    pub name: &'a str,
    pub points: &'a [(f64, f64)],
    pub color: RGBColor,
    pub line: bool,
}

/// Title and axis labels of a plot.
pub struct Labels<'a> {
    pub title: &'a str,
    pub x: &'a str,
    pub y: &'a str,
}

/// Axis scales and the reference line `y = x` (a bound drawn in green).
#[derive(Clone, Copy)]
pub struct Axes {
    pub log: bool,
    pub diagonal: bool,
}

/// Writes `stem.png` and `stem.svg`. On log axes, points with a non-positive coordinate are left
/// out (the CSV next to the plot keeps every value); non-finite points are always left out.
pub fn plot(stem: &Path, labels: &Labels<'_>, series: &[Series<'_>], axes: Axes) -> Result<()> {
    register_font();
    let shown = |v: f64| v.is_finite() && (!axes.log || v > 0.0);
    let visible: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|s| {
            s.points
                .iter()
                .copied()
                .filter(|&(x, y)| shown(x) && shown(y))
        })
        .collect();
    if visible.is_empty() {
        return Err(Error::invalid(
            "plot",
            format!("{}: at least one point that can be drawn", labels.title),
        ));
    }
    let bounds = |f: fn(&(f64, f64)) -> f64| {
        visible
            .iter()
            .map(f)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            })
    };
    let (mut x, mut y) = (bounds(|p| p.0), bounds(|p| p.1));
    if axes.diagonal {
        let joint = (x.0.min(y.0), x.1.max(y.1));
        (x, y) = (joint, joint);
    }
    let pad = |(lo, hi): (f64, f64)| {
        if axes.log {
            (lo / 2.0, hi * 2.0)
        } else {
            let span = (hi - lo).max(1e-12 * hi.abs().max(1.0));
            (lo - 0.05 * span, hi + 0.05 * span)
        }
    };
    let (x, y) = (pad(x), pad(y));
    let png = stem.with_extension("png");
    let svg = stem.with_extension("svg");
    let draw_png = |tmp: &Path| {
        draw_on(
            BitMapBackend::new(tmp, (900, 700)).into_drawing_area(),
            labels,
            series,
            axes,
            x,
            y,
        )
    };
    let draw_svg = |tmp: &Path| {
        draw_on(
            SVGBackend::new(tmp, (900, 700)).into_drawing_area(),
            labels,
            series,
            axes,
            x,
            y,
        )
    };
    atomic_write_path(&png, draw_png)?;
    atomic_write_path(&svg, draw_svg)
}

fn draw_on<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    labels: &Labels<'_>,
    series: &[Series<'_>],
    axes: Axes,
    x: (f64, f64),
    y: (f64, f64),
) -> std::result::Result<(), String> {
    if axes.log {
        draw(
            root,
            labels,
            series,
            axes,
            (x.0..x.1).log_scale(),
            (y.0..y.1).log_scale(),
            |v| format!("{v:.0e}"),
        )
    } else {
        draw(root, labels, series, axes, x.0..x.1, y.0..y.1, tick_label)
    }
}

/// A linear axis's tick: at most three decimals, trailing zeros dropped (`0.2`, `85`, `10000`).
fn tick_label(v: &f64) -> String {
    let fixed = format!("{v:.3}");
    let trimmed = fixed.trim_end_matches('0').trim_end_matches('.');
    match trimmed {
        "-0" => "0".to_owned(),
        t => t.to_owned(),
    }
}

fn draw<DB, X, Y>(
    root: DrawingArea<DB, Shift>,
    labels: &Labels<'_>,
    series: &[Series<'_>],
    axes: Axes,
    x_range: X,
    y_range: Y,
    format: fn(&f64) -> String,
) -> std::result::Result<(), String>
where
    DB: DrawingBackend,
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let e = |err: DrawingAreaErrorKind<DB::ErrorType>| err.to_string();
    let shown = |v: f64| v.is_finite() && (!axes.log || v > 0.0);
    root.fill(&WHITE).map_err(e)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(labels.title, ("sans-serif", 24))
        .margin(15)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(x_range, y_range)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc(labels.x)
        .y_desc(labels.y)
        .label_style(("sans-serif", 15))
        .x_label_formatter(&format)
        .y_label_formatter(&format)
        .draw()
        .map_err(e)?;
    if axes.diagonal {
        let (lo, hi) = (chart.x_range().start, chart.x_range().end);
        chart
            .draw_series(LineSeries::new([(lo, lo), (hi, hi)], GREEN.stroke_width(2)))
            .map_err(e)?
            .label("y = x (bound)")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], GREEN.stroke_width(2)));
    }
    for s in series {
        let color = s.color;
        let points: Vec<(f64, f64)> = s
            .points
            .iter()
            .copied()
            .filter(|&(x, y)| shown(x) && shown(y))
            .collect();
        if s.line {
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))
                .map_err(e)?
                .label(s.name)
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2))
                });
        } else {
            chart
                .draw_series(
                    points
                        .into_iter()
                        .map(|p| Circle::new(p, 4, color.filled())),
                )
                .map_err(e)?
                .label(s.name)
                .legend(move |(x, y)| Circle::new((x + 10, y), 4, color.filled()));
        }
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

#[cfg(test)]
mod tests {
    use super::tick_label;

    #[test]
    fn ticks_drop_trailing_zeros() {
        for (v, label) in [
            (0.2, "0.2"),
            (85.0, "85"),
            (10000.0, "10000"),
            (0.125, "0.125"),
            (0.00004, "0"),
            (-0.0, "0"),
            (-1.5, "-1.5"),
        ] {
            assert_eq!(tick_label(&v), label);
        }
    }
}
