//! `--svg FILE`: a scenario's result as line charts, one panel per figure,
//! drawn with plotters' SVG backend (text is left to the viewer's
//! `sans-serif`, so no font is loaded and the file depends only on the data).

use std::ops::Range;
use std::path::Path;

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;

use super::SimError;

const WIDTH: u32 = 900;
const PANEL_HEIGHT: u32 = 380;

/// A figure: a title over panels stacked vertically.
#[derive(Debug, Clone)]
pub struct Chart {
    pub title: String,
    pub panels: Vec<Panel>,
}

/// One set of axes.
#[derive(Debug, Clone, Default)]
pub struct Panel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// Logarithmic y axis; points with y ≤ 0 are left out.
    pub log_y: bool,
    pub series: Vec<Series>,
    /// Vertical dashed lines at these x values (events such as a failure).
    pub x_marks: Vec<f64>,
    /// Horizontal grey lines at these y values (such as a capacity).
    pub y_marks: Vec<f64>,
}

#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

impl Chart {
    /// Writes the chart to `path` as SVG.
    pub fn write(&self, path: &Path) -> Result<(), SimError> {
        let svg = self.render().map_err(|message| SimError::Chart {
            path: path.to_path_buf(),
            message,
        })?;
        std::fs::write(path, svg).map_err(|source| SimError::Write {
            path: path.to_path_buf(),
            source,
        })
    }

    /// The SVG document.
    pub fn render(&self) -> Result<String, String> {
        let mut svg = String::new();
        {
            let height = PANEL_HEIGHT * self.panels.len().max(1) as u32 + 40;
            let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
            root.fill(&WHITE).map_err(text)?;
            let root = root.titled(&self.title, ("sans-serif", 22)).map_err(text)?;
            let areas = root.split_evenly((self.panels.len().max(1), 1));
            for (panel, area) in self.panels.iter().zip(&areas) {
                draw_panel(panel, area)?;
            }
            root.present().map_err(text)?;
        }
        Ok(svg)
    }
}

/// An axis label: at most two decimals, no trailing zeros (`1000`, `0.25`).
fn tick(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn text(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn draw_panel<DB: DrawingBackend>(
    panel: &Panel,
    area: &DrawingArea<DB, Shift>,
) -> Result<(), String> {
    let points = || {
        panel
            .series
            .iter()
            .flat_map(|s| s.points.iter())
            .filter(|(x, y)| x.is_finite() && y.is_finite() && (!panel.log_y || *y > 0.0))
    };
    let (mut x_lo, mut x_hi) = (f64::INFINITY, f64::NEG_INFINITY);
    let (mut y_lo, mut y_hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for &(x, y) in points() {
        x_lo = x_lo.min(x);
        x_hi = x_hi.max(x);
        y_lo = y_lo.min(y);
        y_hi = y_hi.max(y);
    }
    for &y in panel.y_marks.iter().filter(|y| y.is_finite()) {
        y_lo = y_lo.min(y);
        y_hi = y_hi.max(y);
    }
    if !x_lo.is_finite() || !y_lo.is_finite() {
        (x_lo, x_hi, y_lo, y_hi) = (0.0, 1.0, 1.0, 10.0);
    }
    if x_hi <= x_lo {
        x_hi = x_lo + 1.0;
    }
    if panel.log_y {
        let lo = (y_lo * 0.7).max(f64::MIN_POSITIVE);
        let hi = (y_hi * 1.5).max(lo * 10.0);
        draw_on(area, panel, x_lo..x_hi, (lo..hi).log_scale(), lo..hi)
    } else {
        let hi = if y_hi > 0.0 { y_hi * 1.08 } else { 1.0 };
        let lo = y_lo.min(0.0);
        draw_on(area, panel, x_lo..x_hi, lo..hi, lo..hi)
    }
}

fn draw_on<DB, Y>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
    x: Range<f64>,
    y: Y,
    y_span: Range<f64>,
) -> Result<(), String>
where
    DB: DrawingBackend,
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(x.clone(), y)
        .map_err(text)?;
    chart
        .configure_mesh()
        .x_desc(panel.x_label.as_str())
        .y_desc(panel.y_label.as_str())
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&|v| tick(*v))
        .light_line_style(WHITE)
        .draw()
        .map_err(text)?;
    let grey = BLACK.mix(0.35);
    for &m in &panel.y_marks {
        chart
            .draw_series(LineSeries::new(
                [(x.start, m), (x.end, m)],
                grey.stroke_width(1),
            ))
            .map_err(text)?;
    }
    for &m in &panel.x_marks {
        chart
            .draw_series(DashedLineSeries::new(
                [(m, y_span.start), (m, y_span.end)],
                6,
                4,
                grey.stroke_width(1),
            ))
            .map_err(text)?;
    }
    for (i, s) in panel.series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let points = s
            .points
            .iter()
            .copied()
            .filter(|(x, y)| x.is_finite() && y.is_finite() && (!panel.log_y || *y > 0.0));
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(text)?
            .label(s.name.as_str())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.5))
        .draw()
        .map_err(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(log_y: bool) -> Chart {
        Chart {
            title: "t".into(),
            panels: vec![Panel {
                title: "p".into(),
                x_label: "x".into(),
                y_label: "y".into(),
                log_y,
                series: vec![Series {
                    name: "s".into(),
                    points: vec![(0.0, 0.0), (1.0, 10.0), (2.0, 100.0)],
                }],
                x_marks: vec![1.0],
                y_marks: vec![50.0],
            }],
        }
    }

    #[test]
    fn renders_the_same_svg_twice() {
        for log_y in [false, true] {
            let a = chart(log_y).render().expect("svg");
            assert!(a.starts_with("<svg"), "{}", &a[..40.min(a.len())]);
            assert!(a.contains("<polyline") || a.contains("<path"));
            assert_eq!(a, chart(log_y).render().expect("svg"));
        }
    }

    #[test]
    fn ticks_drop_trailing_zeros() {
        assert_eq!(tick(1_000_000.0), "1000000");
        assert_eq!(tick(0.25), "0.25");
        assert_eq!(tick(0.1), "0.1");
        assert_eq!(tick(12.0), "12");
    }

    #[test]
    fn an_empty_panel_still_draws() {
        let mut c = chart(true);
        c.panels[0].series[0].points.clear();
        c.panels[0].y_marks.clear();
        assert!(c.render().is_ok());
    }
}
