//! The dashboard's chart of unlocks and rejections over time: an inline SVG bar chart
//! (two bars per interval, a `<title>` on each for a tooltip without script), followed by
//! the same figures as a table for screen readers and exact reading.

use maud::{Markup, html};

use super::model::ActivityBucket;

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;

/// One hour and one day, ms.
pub const HOUR_MS: u64 = 3_600_000;
/// One day, ms.
pub const DAY_MS: u64 = 86_400_000;

/// How a chart labels its intervals.
#[derive(Debug, Clone, Copy)]
pub struct Axis {
    /// Label of an interval from its start (ms).
    pub label: fn(u64) -> String,
    /// Put a label under every n-th interval.
    pub label_every: usize,
}

/// The smallest of 1, 2, 5, 10, 20, 50, … that is at least `max` (at least 1).
pub fn nice_ceiling(max: u64) -> u64 {
    let mut step = 1u64;
    loop {
        for m in [1, 2, 5] {
            let candidate = step.saturating_mul(m);
            if candidate >= max || candidate == u64::MAX {
                return candidate;
            }
        }
        step = step.saturating_mul(10);
    }
}

fn fmt(v: f64) -> String {
    format!("{v:.1}")
}

/// The chart of `buckets` (oldest first) titled `title`.
pub fn activity_chart(title: &str, buckets: &[ActivityBucket], axis: Axis) -> Markup {
    let max = buckets
        .iter()
        .map(|b| b.unlocks.max(b.rejections))
        .max()
        .unwrap_or(0);
    let y_max = nice_ceiling(max);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let slot = plot_w / buckets.len().max(1) as f64;
    let bar_w = slot * 0.38;
    let y_of = |v: u64| TOP + plot_h * (1.0 - v as f64 / y_max as f64);
    let ticks: Vec<u64> = if y_max.is_multiple_of(2) {
        vec![0, y_max / 2, y_max]
    } else {
        vec![0, y_max]
    };
    let totals = buckets.iter().fold((0u64, 0u64), |(u, r), b| {
        (u.saturating_add(b.unlocks), r.saturating_add(b.rejections))
    });
    html! {
        figure.chart {
            figcaption {
                (title) " — "
                span.legend-unlocks { "■ unlocks " (totals.0) }
                " · "
                span.legend-rejections { "■ rejections " (totals.1) }
            }
            svg xmlns="http://www.w3.org/2000/svg" viewBox=(format!("0 0 {WIDTH} {HEIGHT}"))
                role="img" aria-label=(format!("{title}: {} unlocks, {} rejections", totals.0, totals.1)) {
                @for t in &ticks {
                    line.grid x1=(fmt(LEFT)) x2=(fmt(WIDTH - RIGHT)) y1=(fmt(y_of(*t))) y2=(fmt(y_of(*t))) {}
                    text.axis-label x=(fmt(LEFT - 6.0)) y=(fmt(y_of(*t) + 4.0)) text-anchor="end" { (t) }
                }
                @for (i, b) in buckets.iter().enumerate() {
                    @let x = LEFT + slot * i as f64 + slot * 0.1;
                    @let label = (axis.label)(b.start_ms);
                    @if b.unlocks > 0 {
                        rect.bar-unlocks x=(fmt(x)) y=(fmt(y_of(b.unlocks))) width=(fmt(bar_w))
                            height=(fmt(TOP + plot_h - y_of(b.unlocks))) {
                            title { (label) ": " (b.unlocks) " unlocks" }
                        }
                    }
                    @if b.rejections > 0 {
                        rect.bar-rejections x=(fmt(x + bar_w)) y=(fmt(y_of(b.rejections))) width=(fmt(bar_w))
                            height=(fmt(TOP + plot_h - y_of(b.rejections))) {
                            title { (label) ": " (b.rejections) " rejections" }
                        }
                    }
                    @if i % axis.label_every.max(1) == 0 {
                        text.axis-label x=(fmt(x + bar_w)) y=(fmt(HEIGHT - 8.0)) text-anchor="middle" { (label) }
                    }
                }
                line.axis x1=(fmt(LEFT)) x2=(fmt(WIDTH - RIGHT)) y1=(fmt(TOP + plot_h)) y2=(fmt(TOP + plot_h)) {}
            }
            details {
                summary { "Figures" }
                table.figures {
                    thead { tr { th { "From" } th { "Unlocks" } th { "Rejections" } } }
                    tbody {
                        @for b in buckets {
                            tr { td { ((axis.label)(b.start_ms)) } td { (b.unlocks) } td { (b.rejections) } }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scale_is_a_round_number_at_or_above_the_maximum() {
        let cases = [
            (0, 1),
            (1, 1),
            (2, 2),
            (3, 5),
            (7, 10),
            (11, 20),
            (51, 100),
            (1000, 1000),
        ];
        for (max, expected) in cases {
            assert_eq!(nice_ceiling(max), expected, "max {max}");
        }
        assert_eq!(nice_ceiling(u64::MAX), u64::MAX);
    }

    #[test]
    fn bars_are_drawn_to_scale_with_titles() {
        let buckets = [
            ActivityBucket {
                start_ms: 0,
                unlocks: 10,
                rejections: 5,
            },
            ActivityBucket {
                start_ms: HOUR_MS,
                unlocks: 0,
                rejections: 0,
            },
        ];
        let axis = Axis {
            label: super::super::timefmt::format_hour,
            label_every: 1,
        };
        let svg = activity_chart("Last 2 hours", &buckets, axis).into_string();
        // Scale 10: the unlock bar spans the whole plot height (220 − 12 − 28 = 180).
        assert!(
            svg.contains(r#"class="bar-unlocks" x="79.4" y="12.0" width="134.5" height="180.0""#),
            "{svg}"
        );
        assert!(
            svg.contains(
                r#"class="bar-rejections" x="213.9" y="102.0" width="134.5" height="90.0""#
            ),
            "{svg}"
        );
        assert!(svg.contains("<title>00:00: 10 unlocks</title>"));
        assert_eq!(
            svg.matches("<rect").count(),
            2,
            "empty intervals draw no bar"
        );
        assert!(svg.contains("■ unlocks 10"));
        assert!(!svg.contains("style="), "no inline style (CSP)");
    }
}
