//! Small self-contained SVG line charts: the benchmark's latency-throughput curve (the shape of
//! IronFleet's figure) and the checker's state-space growth. No dependencies; the output opens in
//! any browser.

use std::fmt::Write;

/// One line of a chart.
#[derive(Clone, Debug)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// Stroke colour (any SVG colour).
    pub colour: String,
    /// Dashed line.
    pub dashed: bool,
    /// Points: (x, y, label drawn next to the point).
    pub points: Vec<(f64, f64, String)>,
}

/// A chart: title, axis labels, lines.
#[derive(Clone, Debug)]
pub struct Chart {
    /// Title at the top.
    pub title: String,
    /// X axis label.
    pub x_label: String,
    /// Y axis label.
    pub y_label: String,
    /// The lines.
    pub series: Vec<Series>,
}

/// A "nice" tick step (1, 2 or 5 times a power of ten) giving about `n` ticks over `span`.
fn tick_step(span: f64, n: f64) -> f64 {
    if span <= 0.0 || !span.is_finite() {
        return 1.0;
    }
    let raw = span / n;
    let mag = 10f64.powf(raw.log10().floor());
    let r = raw / mag;
    let m = if r <= 1.0 {
        1.0
    } else if r <= 2.0 {
        2.0
    } else if r <= 5.0 {
        5.0
    } else {
        10.0
    };
    m * mag
}

fn fmt_tick(v: f64) -> String {
    if v.abs() >= 1_000_000.0 {
        format!("{}M", v / 1_000_000.0)
    } else if v.abs() >= 10_000.0 {
        format!("{}k", v / 1000.0)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl Chart {
    /// The chart as an SVG document.
    pub fn to_svg(&self) -> String {
        let (w, h) = (760.0, 480.0);
        let (left, right, top, bottom) = (80.0, 180.0, 50.0, 60.0);
        let pw = w - left - right;
        let ph = h - top - bottom;
        let all = || self.series.iter().flat_map(|s| s.points.iter());
        let xmax = all().map(|p| p.0).fold(0.0, f64::max);
        let ymax = all().map(|p| p.1).fold(0.0, f64::max);
        let xstep = tick_step(xmax, 6.0);
        let ystep = tick_step(ymax, 6.0);
        let xtop = ((xmax / xstep).ceil() * xstep).max(xstep);
        let ytop = ((ymax / ystep).ceil() * ystep).max(ystep);
        let sx = |x: f64| left + x / xtop * pw;
        let sy = |y: f64| top + ph - y / ytop * ph;
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
        let _ = writeln!(
            s,
            r#"<text x="{}" y="25" text-anchor="middle" font-size="15">{}</text>"#,
            left + pw / 2.0,
            esc(&self.title)
        );
        // Grid and ticks.
        let mut x = 0.0;
        while x <= xtop + xstep / 2.0 {
            let px = sx(x);
            let _ = writeln!(
                s,
                r##"<line x1="{px:.1}" y1="{top}" x2="{px:.1}" y2="{:.1}" stroke="#e0e0e0"/><text x="{px:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
                top + ph,
                top + ph + 18.0,
                fmt_tick(x)
            );
            x += xstep;
        }
        let mut y = 0.0;
        while y <= ytop + ystep / 2.0 {
            let py = sy(y);
            let _ = writeln!(
                s,
                r##"<line x1="{left}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" stroke="#e0e0e0"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
                left + pw,
                left - 8.0,
                py + 4.0,
                fmt_tick(y)
            );
            y += ystep;
        }
        let _ = writeln!(
            s,
            r#"<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="black"/>"#
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            left + pw / 2.0,
            h - 15.0,
            esc(&self.x_label)
        );
        let _ = writeln!(
            s,
            r#"<text transform="translate(20 {:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
            top + ph / 2.0,
            esc(&self.y_label)
        );
        // Lines, points, labels, legend.
        for (i, ser) in self.series.iter().enumerate() {
            let pts: Vec<String> = ser
                .points
                .iter()
                .map(|p| format!("{:.1},{:.1}", sx(p.0), sy(p.1)))
                .collect();
            let dash = if ser.dashed {
                r#" stroke-dasharray="6 4""#
            } else {
                ""
            };
            let _ = writeln!(
                s,
                r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"{dash}/>"#,
                pts.join(" "),
                ser.colour
            );
            for p in &ser.points {
                let _ = writeln!(
                    s,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{}"/><text x="{:.1}" y="{:.1}" font-size="10">{}</text>"#,
                    sx(p.0),
                    sy(p.1),
                    ser.colour,
                    sx(p.0) + 5.0,
                    sy(p.1) - 5.0,
                    esc(&p.2)
                );
            }
            let ly = top + 10.0 + 20.0 * i as f64;
            let lx = left + pw + 15.0;
            let _ = writeln!(
                s,
                r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{}" stroke-width="2"{dash}/><text x="{}" y="{}">{}</text>"#,
                lx + 25.0,
                ser.colour,
                lx + 30.0,
                ly + 4.0,
                esc(&ser.name)
            );
        }
        s.push_str("</svg>\n");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_steps_are_round() {
        assert_eq!(tick_step(100.0, 5.0), 20.0);
        assert_eq!(tick_step(7.0, 6.0), 2.0);
        assert_eq!(tick_step(45_000.0, 6.0), 10_000.0);
        assert_eq!(tick_step(0.0, 6.0), 1.0);
    }

    #[test]
    fn svg_holds_every_series_and_point() {
        let chart = Chart {
            title: "a <title>".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            series: vec![Series {
                name: "rsl".into(),
                colour: "red".into(),
                dashed: false,
                points: vec![(1.0, 2.0, "1".into()), (3.0, 4.0, "16".into())],
            }],
        };
        let svg = chart.to_svg();
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<circle").count(), 2);
        assert!(svg.contains("a &lt;title&gt;"));
        assert_eq!(svg.matches("<polyline").count(), 1);
    }
}
