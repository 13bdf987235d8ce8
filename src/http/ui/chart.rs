//! The overview's chart: licenses sold and devices activated per day, drawn on the
//! server as an SVG (no script, no library fetched by the browser). Only numbers and
//! dates computed here go into it, so it is marked safe for the template.

use std::fmt::Write;

use crate::licensing::dashboard::Day;

const W: f64 = 720.0;
const H: f64 = 200.0;
const LEFT: f64 = 36.0;
const BOTTOM: f64 = 22.0;

/// Bars for licenses sold, a line for activations, one slot per day.
pub fn svg(days: &[Day]) -> String {
    let max = days
        .iter()
        .map(|d| d.sold.max(d.activations))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let plot_w = W - LEFT - 4.0;
    let plot_h = H - BOTTOM - 8.0;
    let slot = plot_w / days.len().max(1) as f64;
    let y = |v: i64| 8.0 + plot_h - (v as f64 / max) * plot_h;
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" role="img" aria-labelledby="chart-title" class="chart"><title id="chart-title">Licenses sold (bars) and devices activated (line) per day, last {n} days; at most {m} in a day</title>"##,
        n = days.len(),
        m = max as i64
    );
    for frac in [0.0, 0.5, 1.0] {
        let v = (max * frac).round() as i64;
        let yy = y(v);
        let _ = write!(
            s,
            r##"<line x1="{LEFT}" x2="{W}" y1="{yy:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{x:.1}" y="{ty:.1}" font-size="10" text-anchor="end" fill="#555">{v}</text>"##,
            x = LEFT - 4.0,
            ty = yy + 3.0
        );
    }
    for (i, d) in days.iter().enumerate() {
        let x = LEFT + i as f64 * slot;
        let top = y(d.sold);
        let _ = write!(
            s,
            r##"<rect x="{x:.1}" y="{top:.1}" width="{w:.1}" height="{h:.1}" fill="#3b6fb6"><title>{day}: {sold} sold, {act} activated</title></rect>"##,
            w = (slot - 1.0).max(1.0),
            h = 8.0 + plot_h - top,
            day = d.day,
            sold = d.sold,
            act = d.activations
        );
        if i % 15 == 0 {
            let _ = write!(
                s,
                r##"<text x="{x:.1}" y="{ty}" font-size="10" fill="#555">{label}</text>"##,
                ty = H - 6.0,
                label = d.day.format("%b %d")
            );
        }
    }
    let points: Vec<String> = days
        .iter()
        .enumerate()
        .map(|(i, d)| {
            format!(
                "{:.1},{:.1}",
                LEFT + (i as f64 + 0.5) * slot,
                y(d.activations)
            )
        })
        .collect();
    let _ = write!(
        s,
        r##"<polyline points="{}" fill="none" stroke="#d9822b" stroke-width="2"/></svg>"##,
        points.join(" ")
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_bar_per_day_and_a_line() {
        let first = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let days: Vec<Day> = first
            .iter_days()
            .take(90)
            .enumerate()
            .map(|(i, day)| Day {
                day,
                sold: i as i64 % 7,
                activations: i as i64 % 5,
            })
            .collect();
        let svg = svg(&days);
        assert_eq!(svg.matches("<rect").count(), 90);
        assert!(svg.contains("<polyline"));
        assert!(svg.contains("2026-01-01: 0 sold, 0 activated"));
        assert!(svg.ends_with("</svg>"));
        assert!(!svg.contains("<script"));
    }
}
