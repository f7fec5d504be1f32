//! Hand-written SVG charts for the pipeline report (no plotting crate): a
//! horizontal bar chart with one labelled bar per row.

use std::fmt::Write as _;

/// One bar: its label, its value and the text printed after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    /// Row label (left of the bar).
    pub label: String,
    /// Length, in the chart's unit.
    pub value: f64,
    /// Printed right of the bar (e.g. `3/4`).
    pub note: String,
}

/// Escapes text for XML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

const ROW: f64 = 16.0;
const LABEL_WIDTH: f64 = 330.0;
const BAR_WIDTH: f64 = 420.0;
const TOP: f64 = 48.0;

/// A horizontal bar chart: `title`, the unit of the axis (`x_label`),
/// bars scaled to `max` (the largest value when `None`), ticks at
/// quarters of the axis.
pub fn bar_chart(title: &str, x_label: &str, bars: &[Bar], max: Option<f64>) -> String {
    let max = max
        .unwrap_or_else(|| bars.iter().map(|b| b.value).fold(0.0, f64::max))
        .max(f64::MIN_POSITIVE);
    let width = LABEL_WIDTH + BAR_WIDTH + 110.0;
    let height = TOP + ROW * bars.len() as f64 + 44.0;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(
        svg,
        r##"<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>"##
    );
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="22" font-size="15" font-weight="bold">{}</text>"#,
        10,
        escape(title)
    );
    let axis_y = TOP + ROW * bars.len() as f64 + 4.0;
    for quarter in 0..=4 {
        let x = LABEL_WIDTH + BAR_WIDTH * f64::from(quarter) / 4.0;
        let value = max * f64::from(quarter) / 4.0;
        let _ = writeln!(
            svg,
            r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{axis_y:.1}" stroke="#dddddd"/>"##,
            TOP - 4.0
        );
        let _ = writeln!(
            svg,
            r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            axis_y + 14.0,
            escape(&format_tick(value))
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        LABEL_WIDTH + BAR_WIDTH / 2.0,
        axis_y + 30.0,
        escape(x_label)
    );
    for (i, bar) in bars.iter().enumerate() {
        let y = TOP + ROW * i as f64;
        let length = (bar.value.max(0.0) / max).min(1.0) * BAR_WIDTH;
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            LABEL_WIDTH - 6.0,
            y + 11.0,
            escape(&shorten(&bar.label, 52))
        );
        let _ = writeln!(
            svg,
            r##"<rect x="{LABEL_WIDTH:.1}" y="{:.1}" width="{length:.1}" height="{:.1}" fill="#3b75af"><title>{}</title></rect>"##,
            y + 2.0,
            ROW - 4.0,
            escape(&format!("{}: {}", bar.label, bar.note))
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
            LABEL_WIDTH + length + 4.0,
            y + 11.0,
            escape(&bar.note)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn format_tick(value: f64) -> String {
    if value >= 10.0 || value == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

/// At most `max` characters, with an ellipsis when cut.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(max.saturating_sub(1)).collect();
    short.push('…');
    short
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks that `svg` is well-formed XML of the subset the charts use:
    /// balanced elements, quoted attributes, no raw `<` or `&` in text.
    fn assert_well_formed(svg: &str) {
        let mut stack: Vec<String> = Vec::new();
        let mut rest = svg;
        while let Some(start) = rest.find('<') {
            assert_text(&rest[..start]);
            let end = rest[start..].find('>').expect("unclosed tag") + start;
            let tag = &rest[start + 1..end];
            assert!(!tag.contains('<'), "`<` inside a tag: {tag}");
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(
                    stack.pop().as_deref(),
                    Some(name.trim()),
                    "mismatched </{name}>"
                );
            } else {
                let self_closing = tag.ends_with('/');
                let body = tag.trim_end_matches('/');
                let name = body.split_whitespace().next().expect("tag name");
                assert_eq!(body.matches('"').count() % 2, 0, "unbalanced quotes: {tag}");
                assert_text(body);
                if !self_closing {
                    stack.push(name.to_owned());
                }
            }
            rest = &rest[end + 1..];
        }
        assert_text(rest);
        assert!(stack.is_empty(), "unclosed elements: {stack:?}");
    }

    fn assert_text(text: &str) {
        for (i, _) in text.match_indices('&') {
            let entity = &text[i..];
            assert!(
                ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"]
                    .iter()
                    .any(|e| entity.starts_with(e)),
                "raw & in text: {text}"
            );
        }
    }

    #[test]
    fn chart_is_well_formed_and_scaled() {
        let bars = vec![
            Bar {
                label: "T1003 <OS Credential Dumping> & \"friends\"".into(),
                value: 1.0,
                note: "4/4".into(),
            },
            Bar {
                label: "T1059".into(),
                value: 0.5,
                note: "1/2".into(),
            },
        ];
        let svg = bar_chart("Recall per technique", "recall", &bars, Some(1.0));
        assert_well_formed(&svg);
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.contains("&lt;OS Credential Dumping&gt; &amp; &quot;friends&quot;"));
        // the full bar is 420 wide, the half bar 210
        assert!(svg.contains(r#"width="420.0" height="12.0""#), "{svg}");
        assert!(svg.contains(r#"width="210.0" height="12.0""#), "{svg}");
        assert_well_formed(&bar_chart("empty", "s", &[], None));
    }

    #[test]
    fn the_checker_rejects_broken_xml() {
        let broken = std::panic::catch_unwind(|| assert_well_formed("<svg><g></svg>"));
        assert!(broken.is_err());
        let raw = std::panic::catch_unwind(|| assert_well_formed("<svg>a & b</svg>"));
        assert!(raw.is_err());
    }
}
