//! Metric charts as inline SVG: one line per metric over its steps, with axes and tick values.
//! Drawn on the server, so a chart is there without any script.

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

/// One logged value at a step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub step: i64,
    pub value: f64,
}

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

/// The chart of one metric; points need not be sorted, non-finite values are left out.
pub fn line_chart(key: &str, points: &[Point]) -> Markup {
    let mut points: Vec<Point> = points
        .iter()
        .copied()
        .filter(|p| p.value.is_finite())
        .collect();
    points.sort_by_key(|p| p.step);
    let logged = points.len();
    if logged > MAX_VERTICES {
        let every = logged.div_ceil(MAX_VERTICES);
        let last = points[logged - 1];
        points = points.into_iter().step_by(every).collect();
        if points.last() != Some(&last) {
            points.push(last);
        }
    }
    let Some(last) = points.last().copied() else {
        return html! {
            figure.chart data-metric=(key) {
                h3 { (key) }
                p.muted { "No finite values to plot." }
            }
        };
    };
    let (min_step, max_step) = (points[0].step as f64, last.step as f64);
    let (mut lo, mut hi) = points
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p.value), hi.max(p.value))
        });
    if hi - lo < f64::EPSILON * hi.abs().max(1.0) {
        lo -= 1.0;
        hi += 1.0;
    }
    let y_ticks = ticks(lo, hi, 4);
    lo = lo.min(y_ticks.first().copied().unwrap_or(lo));
    hi = hi.max(y_ticks.last().copied().unwrap_or(hi));
    let span_steps = (max_step - min_step).max(1.0);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |step: f64| LEFT + (step - min_step) / span_steps * plot_w;
    let y = |value: f64| TOP + (hi - value) / (hi - lo) * plot_h;
    let x_ticks: Vec<f64> = ticks(min_step, max_step.max(min_step + 1.0), 5)
        .into_iter()
        .filter(|t| t.fract() == 0.0 && *t >= min_step && *t <= max_step.max(min_step + 1.0))
        .collect();
    let polyline = points
        .iter()
        .map(|p| format!("{:.1},{:.1}", x(p.step as f64), y(p.value)))
        .collect::<Vec<_>>()
        .join(" ");
    let summary = format!(
        "{key}: {logged} points, steps {} to {}, last value {}",
        points[0].step,
        last.step,
        label(last.value)
    );
    html! {
        figure.chart data-metric=(key) {
            h3 { (key) " " span.muted { "last " (label(last.value)) " at step " (last.step) } }
            svg viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img" aria-label=(summary) {
                title { (summary) }
                @for t in &y_ticks {
                    line.grid x1=(LEFT) x2=(WIDTH - RIGHT) y1=(format!("{:.1}", y(*t))) y2=(format!("{:.1}", y(*t))) {}
                    text.tick x=(LEFT - 6.0) y=(format!("{:.1}", y(*t) + 4.0)) text-anchor="end" { (label(*t)) }
                }
                @for t in &x_ticks {
                    text.tick x=(format!("{:.1}", x(*t))) y=(HEIGHT - BOTTOM + 16.0) text-anchor="middle" { (label(*t)) }
                }
                line.axis x1=(LEFT) x2=(LEFT) y1=(TOP) y2=(HEIGHT - BOTTOM) {}
                line.axis x1=(LEFT) x2=(WIDTH - RIGHT) y1=(HEIGHT - BOTTOM) y2=(HEIGHT - BOTTOM) {}
                text.tick x=(LEFT + plot_w / 2.0) y=(HEIGHT - 4.0) text-anchor="middle" { "step" }
                polyline.line data-points=(points.len()) points=(polyline) {}
                @if points.len() == 1 {
                    circle.dot cx=(format!("{:.1}", x(last.step as f64))) cy=(format!("{:.1}", y(last.value))) r="3" {}
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
                value: 3.0,
            },
            Point {
                step: 1,
                value: f64::NAN,
            },
            Point {
                step: 0,
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
                value: 1.0,
            }],
        )
        .into_string();
        assert!(!svg.contains("<script>"));
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
