//! A small self-contained SVG chart: hit ratio against capacity, one line per policy.

use std::fmt::Write as _;

/// One line of the chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The legend label.
    pub label: String,
    /// (capacity, hit ratio in 0..1) points.
    pub points: Vec<(u64, f64)>,
}

const COLORS: [&str; 10] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
    "#7f7f7f", "#bcbd22",
];

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Renders the chart. Capacities are on a log scale when they span more than a factor of
/// ten; hit ratios from 0 to 100 %.
pub fn hit_ratio_svg(title: &str, series: &[Series]) -> String {
    let (w, h) = (760.0f64, 440.0f64);
    let (left, right, top, bottom) = (60.0, 170.0, 40.0, 50.0);
    let pw = w - left - right;
    let ph = h - top - bottom;
    let caps: Vec<u64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .collect();
    let min = caps.iter().copied().min().unwrap_or(1).max(1) as f64;
    let max = caps.iter().copied().max().unwrap_or(1).max(1) as f64;
    let log = max / min > 10.0;
    let xf = |c: u64| -> f64 {
        let c = (c.max(1)) as f64;
        let t = if max <= min {
            0.5
        } else if log {
            (c.ln() - min.ln()) / (max.ln() - min.ln())
        } else {
            (c - min) / (max - min)
        };
        left + t * pw
    };
    let yf = |r: f64| top + (1.0 - r.clamp(0.0, 1.0)) * ph;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="{}" y="22" font-size="15" text-anchor="middle">{}</text>"#,
        left + pw / 2.0,
        escape(title)
    );
    for i in 0..=10 {
        let r = f64::from(i) / 10.0;
        let y = yf(r);
        let _ = writeln!(
            out,
            r##"<line x1="{left}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e5e5e5"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}%</text>"##,
            left + pw,
            left - 6.0,
            y + 4.0,
            i * 10
        );
    }
    let mut ticks: Vec<u64> = caps.clone();
    ticks.sort_unstable();
    ticks.dedup();
    for c in &ticks {
        let x = xf(*c);
        let _ = writeln!(
            out,
            r##"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{:.1}" stroke="#f0f0f0"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{c}</text>"##,
            top + ph,
            top + ph + 16.0
        );
    }
    let _ = writeln!(
        out,
        r##"<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>"##
    );
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">capacity{}</text>"#,
        left + pw / 2.0,
        h - 12.0,
        if log { " (log scale)" } else { "" }
    );
    let _ = writeln!(
        out,
        r#"<text x="16" y="{:.1}" text-anchor="middle" transform="rotate(-90 16 {:.1})">hit ratio</text>"#,
        top + ph / 2.0,
        top + ph / 2.0
    );
    for (i, s) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let mut pts = s.points.clone();
        pts.sort_by_key(|p| p.0);
        let path: Vec<String> = pts
            .iter()
            .map(|&(c, r)| format!("{:.1},{:.1}", xf(c), yf(r)))
            .collect();
        let _ = writeln!(
            out,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
            path.join(" ")
        );
        for &(c, r) in &pts {
            let _ = writeln!(
                out,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"><title>{} @ {c}: {:.2}%</title></circle>"#,
                xf(c),
                yf(r),
                escape(&s.label),
                r * 100.0
            );
        }
        let ly = top + 14.0 + i as f64 * 18.0;
        let lx = left + pw + 14.0;
        let _ = writeln!(
            out,
            r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{color}" stroke-width="3"/><text x="{}" y="{}">{}</text>"#,
            lx + 20.0,
            lx + 26.0,
            ly + 4.0,
            escape(&s.label)
        );
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_lines_and_legend() {
        let svg = hit_ratio_svg(
            "t <1>",
            &[
                Series {
                    label: "lru".into(),
                    points: vec![(100, 0.2), (1000, 0.5), (10_000, 0.7)],
                },
                Series {
                    label: "wtinylfu".into(),
                    points: vec![(100, 0.3), (1000, 0.6), (10_000, 0.8)],
                },
            ],
        );
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("t &lt;1&gt;"));
        assert!(svg.contains("log scale"));
        // A single point does not divide by zero.
        let one = hit_ratio_svg(
            "x",
            &[Series {
                label: "a".into(),
                points: vec![(5, 0.5)],
            }],
        );
        assert!(!one.contains("NaN"));
    }
}
