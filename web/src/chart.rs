//! The Job page's duration chart: the last runs' durations as bars, oldest left, with the p50
//! and p95 lines, drawn on the server as SVG (no script, no inline style: the CSP allows none).

use std::fmt::Write as _;
use std::time::Duration;

use crate::layout;

const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 140.0;

/// The `q`-quantile (0..=1) of `sorted`, nearest-rank.
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// The chart of `durations` (newest first, as the database lists them), or None for none.
pub fn durations(durations: &[Duration]) -> Option<String> {
    if durations.is_empty() {
        return None;
    }
    let secs: Vec<f64> = durations.iter().rev().map(Duration::as_secs_f64).collect();
    let mut sorted = secs.clone();
    sorted.sort_by(f64::total_cmp);
    let p50 = quantile(&sorted, 0.50)?;
    let p95 = quantile(&sorted, 0.95)?;
    // One run far slower than the rest (a 10-minute run among 5-second ones) would flatten every
    // other bar to nothing: the scale stops at three times p95, and a longer bar is drawn to the
    // top (it is marked slow, and its title gives its real duration).
    let longest = sorted.last().copied().unwrap_or(0.0);
    let top = longest.min(p95 * 3.0).max(p95).max(0.001) * 1.1;
    let y = |s: f64| HEIGHT - s.min(top) / top * HEIGHT;
    let step = WIDTH / secs.len() as f64;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {h}" role="img" aria-label="durations of the last {n} runs: p50 {p50}, p95 {p95}" xmlns="http://www.w3.org/2000/svg">"#,
        h = HEIGHT + 16.0,
        n = secs.len(),
        p50 = layout::seconds(p50),
        p95 = layout::seconds(p95),
    );
    for (i, s) in secs.iter().enumerate() {
        let class = if *s > p95 { "bar slow" } else { "bar" };
        let _ = write!(
            svg,
            r#"<rect class="{class}" x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}"><title>{}</title></rect>"#,
            i as f64 * step + 1.0,
            y(*s),
            (step - 2.0).max(1.0),
            HEIGHT - y(*s),
            layout::seconds(*s)
        );
    }
    // p50 labelled at the left end of its line, p95 at the right: close values do not overlap.
    for (label, value, class, x, anchor) in [
        ("p50", p50, "p50", 4.0, "start"),
        ("p95", p95, "p95", WIDTH - 4.0, "end"),
    ] {
        let _ = write!(
            svg,
            r#"<line class="{class}" x1="0" x2="{WIDTH}" y1="{y:.1}" y2="{y:.1}"/><text class="{class}" x="{x}" y="{ty:.1}" text-anchor="{anchor}">{label} {v}</text>"#,
            y = y(value),
            ty = (y(value) - 3.0).max(10.0),
            v = layout::seconds(value),
        );
    }
    svg.push_str("</svg>");
    Some(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), Some(50.0));
        assert_eq!(quantile(&v, 0.95), Some(95.0));
        assert_eq!(quantile(&[7.0], 0.95), Some(7.0));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn the_chart_has_a_bar_per_run_and_both_lines() {
        let d: Vec<Duration> = (1..=20).map(Duration::from_secs).collect();
        let svg = durations(&d).expect("a chart");
        assert_eq!(svg.matches("<rect").count(), 20);
        assert!(
            svg.contains("p50 10 s") && svg.contains("p95 19 s"),
            "{svg}"
        );
        assert!(durations(&[]).is_none());
    }

    #[test]
    fn one_very_slow_run_does_not_flatten_the_others() {
        let mut d: Vec<Duration> = (0..40).map(|i| Duration::from_secs(4 + i % 3)).collect();
        d.insert(0, Duration::from_secs(600));
        let svg = durations(&d).expect("a chart");
        // Every ordinary bar is at least a fifth of the chart's height tall.
        let heights: Vec<f64> = svg
            .split("height=\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next()?.parse().ok())
            .collect();
        assert_eq!(heights.len(), 41, "{svg}");
        let ordinary = heights.iter().take(40).fold(f64::MAX, |a, &b| a.min(b));
        assert!(ordinary >= HEIGHT / 5.0, "{ordinary} of {HEIGHT}: {svg}");
        // The slow one reaches the top and still says how long it took.
        assert!(svg.contains("<title>10 min 0 s</title>"), "{svg}");
        assert!(
            svg.contains(r#"text-anchor="start">p50"#) && svg.contains(r#"text-anchor="end">p95"#)
        );
    }
}
