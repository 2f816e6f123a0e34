//! Metric charts as inline SVG: one chart per metric, one line per run, over steps or time, on
//! a linear or log scale, with axes, tick values and hover values. Drawn on the server, so a
//! chart is there without any script.

use maud::{html, Markup};

const WIDTH: f64 = 560.0;
const HEIGHT: f64 = 240.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 32.0;
/// Longer histories are thinned to about this many vertices (every k-th point, plus the last):
/// more would not show on 500 pixels and would make pages heavy.
const MAX_VERTICES: usize = 1000;

/// One logged value at a step and a time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub step: i64,
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    pub value: f64,
}

/// What the x axis counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Axis {
    #[default]
    Step,
    /// Seconds since the first value of the chart.
    Time,
}

/// How charts are drawn: the x axis and a linear or logarithmic y axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChartOptions {
    pub axis: Axis,
    pub log: bool,
}

/// One line of a chart: a run's values of the chart's metric.
pub struct Series {
    pub label: String,
    pub points: Vec<Point>,
}

/// Hover targets per line, at most (sampled evenly, the last always): each has its value as a
/// tooltip, so a chart's size stays bounded however long the history.
const HOVER_POINTS: usize = 100;
/// Lines get these colour classes in turn.
const COLOURS: usize = 8;

/// A round step that cuts `lo..=hi` into about `count` parts.
fn tick_step(lo: f64, hi: f64, count: usize) -> f64 {
    let raw = (hi - lo) / count.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude)
}

/// Round tick values from a multiple of the step at or below `lo` to one at or above `hi`, so
/// that the axis starts and ends on a labelled tick.
fn ticks(lo: f64, hi: f64, count: usize) -> Vec<f64> {
    if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) {
        return vec![lo];
    }
    let step = tick_step(lo, hi, count);
    let first = (lo / step + 1e-9).floor() as i64;
    let last = (hi / step - 1e-9).ceil() as i64;
    (first..=last)
        .map(|i| {
            let tick = i as f64 * step;
            if tick.abs() < step * 1e-9 {
                0.0
            } else {
                tick
            }
        })
        .collect()
}

/// A value as a short tick label.
fn label(value: f64) -> String {
    let abs = value.abs();
    if abs != 0.0 && !(1e-3..1e6).contains(&abs) {
        format!("{value:.2e}")
    } else if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        let text = format!("{value:.4}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// The chart of one metric of one run; points need not be sorted, non-finite values are left
/// out.
#[cfg(test)]
pub fn line_chart(key: &str, points: &[Point]) -> Markup {
    chart(
        key,
        &[Series {
            label: key.to_string(),
            points: points.to_vec(),
        }],
        ChartOptions::default(),
    )
}

/// Every `every`-th point and the last, so that at most about `max` remain.
fn thin(points: Vec<(f64, Point)>, max: usize) -> Vec<(f64, Point)> {
    let logged = points.len();
    if logged <= max {
        return points;
    }
    let every = logged.div_ceil(max);
    let last = points[logged - 1];
    let mut kept: Vec<(f64, Point)> = points.into_iter().step_by(every).collect();
    if kept.last().map(|p| p.1) != Some(last.1) {
        kept.push(last);
    }
    kept
}

/// A line as drawn: its index (its colour), its series, and its points with their x values.
type Line<'a> = (usize, &'a Series, Vec<(f64, Point)>);

/// One chart of a metric with a line per series (runs compared), axes, tick values, a legend
/// when there is more than one line, and hover values.
pub fn chart(key: &str, series: &[Series], options: ChartOptions) -> Markup {
    let t0 = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.timestamp))
        .min()
        .unwrap_or(0);
    let x_of = |p: &Point| match options.axis {
        Axis::Step => p.step as f64,
        Axis::Time => (p.timestamp - t0) as f64 / 1000.0,
    };
    let y_of = |v: f64| if options.log { v.log10() } else { v };
    let mut logged = 0;
    // (x, point) per line, sorted by x, thinned.
    let lines: Vec<Line> = series
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut pts: Vec<(f64, Point)> = s
                .points
                .iter()
                .filter(|p| p.value.is_finite() && (!options.log || p.value > 0.0))
                .map(|p| (x_of(p), *p))
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            logged += pts.len();
            (i, s, thin(pts, MAX_VERTICES))
        })
        .filter(|(_, _, pts)| !pts.is_empty())
        .collect();
    if lines.is_empty() {
        let why = if options.log {
            "No positive values to plot on a log scale."
        } else {
            "No finite values to plot."
        };
        return html! {
            figure.chart data-metric=(key) {
                h3 { (key) }
                p.muted { (why) }
            }
        };
    }
    let all = || lines.iter().flat_map(|(_, _, pts)| pts.iter());
    let (min_x, max_x) = all().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
        (lo.min(p.0), hi.max(p.0))
    });
    let (mut lo, mut hi) = all().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
        let y = y_of(p.1.value);
        (lo.min(y), hi.max(y))
    });
    if hi - lo < f64::EPSILON * hi.abs().max(1.0) {
        lo -= 1.0;
        hi += 1.0;
    }
    let y_ticks = if options.log {
        ((lo + 1e-9).floor() as i64..=(hi - 1e-9).ceil() as i64)
            .map(|k| k as f64)
            .collect()
    } else {
        ticks(lo, hi, 4)
    };
    lo = lo.min(y_ticks.first().copied().unwrap_or(lo));
    hi = hi.max(y_ticks.last().copied().unwrap_or(hi));
    let span_x = (max_x - min_x).max(1.0);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |v: f64| LEFT + (v - min_x) / span_x * plot_w;
    let y = |value: f64| TOP + (hi - y_of(value)) / (hi - lo) * plot_h;
    let y_at = |tick: f64| TOP + (hi - tick) / (hi - lo) * plot_h;
    let x_end = max_x.max(min_x + 1.0);
    let x_ticks: Vec<f64> = ticks(min_x, x_end, 5)
        .into_iter()
        .filter(|t| (options.axis == Axis::Time || t.fract() == 0.0) && *t >= min_x && *t <= x_end)
        .collect();
    let single = lines.len() == 1 && series.len() == 1;
    let summary = if single {
        let pts = &lines[0].2;
        let (first, last) = (pts[0].1, pts[pts.len() - 1].1);
        format!(
            "{key}: {logged} points, steps {} to {}, last value {}",
            first.step,
            last.step,
            label(last.value)
        )
    } else {
        format!("{key}: {} runs, {logged} points", lines.len())
    };
    let x_title = match options.axis {
        Axis::Step => "step",
        Axis::Time => "seconds since the first value",
    };
    let tick_label = |t: f64| {
        if options.log {
            label(10f64.powf(t))
        } else {
            label(t)
        }
    };
    html! {
        figure.chart data-metric=(key) data-scale=(if options.log { "log" } else { "linear" }) {
            h3 {
                (key)
                @if single {
                    @let last = lines[0].2[lines[0].2.len() - 1].1;
                    " " span.muted { "last " (label(last.value)) " at step " (last.step) }
                }
            }
            svg viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img" aria-label=(summary) {
                title { (summary) }
                @for t in &y_ticks {
                    line.grid x1=(LEFT) x2=(WIDTH - RIGHT) y1=(format!("{:.1}", y_at(*t))) y2=(format!("{:.1}", y_at(*t))) {}
                    text.tick x=(LEFT - 6.0) y=(format!("{:.1}", y_at(*t) + 4.0)) text-anchor="end" { (tick_label(*t)) }
                }
                @for t in &x_ticks {
                    text.tick x=(format!("{:.1}", x(*t))) y=(HEIGHT - BOTTOM + 16.0) text-anchor="middle" { (label(*t)) }
                }
                line.axis x1=(LEFT) x2=(LEFT) y1=(TOP) y2=(HEIGHT - BOTTOM) {}
                line.axis x1=(LEFT) x2=(WIDTH - RIGHT) y1=(HEIGHT - BOTTOM) y2=(HEIGHT - BOTTOM) {}
                text.tick x=(LEFT + plot_w / 2.0) y=(HEIGHT - 4.0) text-anchor="middle" { (x_title) }
                @for (i, s, pts) in &lines {
                    @let colour = format!("s{}", i % COLOURS);
                    @let polyline = pts.iter().map(|(px, p)| format!("{:.1},{:.1}", x(*px), y(p.value))).collect::<Vec<_>>().join(" ");
                    polyline class=(format!("line {colour}")) data-series=(s.label) data-points=(pts.len()) points=(polyline) {}
                    @if pts.len() == 1 {
                        circle class=(format!("dot {colour}")) cx=(format!("{:.1}", x(pts[0].0))) cy=(format!("{:.1}", y(pts[0].1.value))) r="3" {}
                    }
                    @for (px, p) in thin(pts.clone(), HOVER_POINTS) {
                        circle class=(format!("pt {colour}")) cx=(format!("{:.1}", x(px))) cy=(format!("{:.1}", y(p.value))) r="5" {
                            title { @if !single { (s.label) " · " } "step " (p.step) ": " (label(p.value)) }
                        }
                    }
                }
            }
            @if !single {
                ul.legend {
                    @for (i, s, _) in &lines {
                        li { span class=(format!("swatch s{}", i % COLOURS)) {} (s.label) }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn polyline_points(markup: &str) -> usize {
        let start = markup.find(" points=\"").expect("a polyline") + 9;
        let end = start + markup[start..].find('"').unwrap();
        markup[start..end].split_whitespace().count()
    }

    #[test]
    fn one_vertex_per_step() {
        let points: Vec<Point> = (0..50)
            .map(|step| Point {
                step,
                timestamp: 0,
                value: 1.0 / (step as f64 + 1.0),
            })
            .collect();
        let svg = line_chart("loss", &points).into_string();
        assert_eq!(polyline_points(&svg), 50);
        assert!(svg.contains("data-points=\"50\""));
        assert!(svg.contains("<title>loss: 50 points, steps 0 to 49"));
    }

    #[test]
    fn skips_non_finite_and_handles_flat_lines() {
        let points = [
            Point {
                step: 2,
                timestamp: 0,
                value: 3.0,
            },
            Point {
                step: 1,
                timestamp: 0,
                value: f64::NAN,
            },
            Point {
                step: 0,
                timestamp: 0,
                value: 3.0,
            },
        ];
        let svg = line_chart("acc", &points).into_string();
        assert_eq!(polyline_points(&svg), 2);
        assert!(!svg.contains("NaN"));
        let single = line_chart(
            "x",
            &[Point {
                step: 5,
                timestamp: 0,
                value: 1.0,
            }],
        )
        .into_string();
        assert!(single.contains("<circle"));
        assert!(line_chart("none", &[])
            .into_string()
            .contains("No finite values"));
    }

    #[test]
    fn long_histories_are_thinned_but_keep_their_ends() {
        let points: Vec<Point> = (0..10_001)
            .map(|step| Point {
                step,
                timestamp: 0,
                value: step as f64,
            })
            .collect();
        let svg = line_chart("long", &points).into_string();
        let vertices = polyline_points(&svg);
        assert!(vertices <= MAX_VERTICES + 1, "{vertices}");
        assert!(vertices >= MAX_VERTICES / 2);
        assert!(svg.contains("long: 10001 points, steps 0 to 10000"));
    }

    #[test]
    fn the_key_is_escaped() {
        let svg = line_chart(
            "<script>",
            &[Point {
                step: 0,
                timestamp: 0,
                value: 1.0,
            }],
        )
        .into_string();
        assert!(!svg.contains("<script>"));
    }

    #[test]
    fn runs_overlay_with_a_legend_log_scale_and_bounded_hover_points() {
        let series: Vec<Series> = (0..3)
            .map(|run| Series {
                label: format!("run-{run}"),
                points: (0..2000)
                    .map(|step| Point {
                        step,
                        timestamp: 1_000_000 + step * 10,
                        value: (run as f64 + 1.0) * (step as f64 + 1.0),
                    })
                    .collect(),
            })
            .collect();
        let svg = chart("auc", &series, ChartOptions::default()).into_string();
        assert_eq!(svg.matches("<polyline").count(), 3);
        assert_eq!(svg.matches("<li>").count(), 3, "a legend");
        let hover = svg.matches("class=\"pt ").count();
        assert!(hover <= 3 * (HOVER_POINTS + 1), "{hover}");
        let log = chart(
            "loss",
            &series,
            ChartOptions {
                axis: Axis::Time,
                log: true,
            },
        )
        .into_string();
        assert!(
            log.contains("data-scale=\"log\"") && log.contains("seconds since the first value")
        );
        assert!(log.contains(">1000<"), "powers of ten on a log axis: {log}");
        let negative = chart(
            "x",
            &[Series {
                label: "x".into(),
                points: vec![Point {
                    step: 0,
                    timestamp: 0,
                    value: -1.0,
                }],
            }],
            ChartOptions {
                axis: Axis::Step,
                log: true,
            },
        )
        .into_string();
        assert!(negative.contains("No positive values"));
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(ticks(0.0, 1.0, 4), vec![0.0, 0.25, 0.5, 0.75, 1.0]);
        assert_eq!(ticks(0.0, 49.0, 5), vec![0.0, 10.0, 20.0, 30.0, 40.0, 50.0]);
        let labels: Vec<String> = ticks(0.5, 0.9083, 4).into_iter().map(label).collect();
        assert_eq!(labels, ["0.4", "0.6", "0.8", "1"]);
        assert_eq!(label(0.5), "0.5");
        assert_eq!(label(1234567.0), "1.23e6");
    }
}
