//! Charts drawn on the server as SVG: no script, nothing fetched.

use maud::{Markup, html};

/// Colours of the series, in order; the last is "other" (page.css has
/// the same, as `.s0`..`.s5`, for the legend).
const COLOURS: [&str; 6] = [
    "#3b6ea8", "#d08c2f", "#4f9a5b", "#a8443b", "#7a5ba8", "#8a8a8a",
];
/// Series shown by name; the rest are summed as "other".
const SERIES: usize = 5;

/// Use per day, split by a key (an operator, a credential).
pub struct Daily {
    /// Days (`YYYY-MM-DD`), oldest first, each with counts per key.
    pub days: Vec<(String, Vec<(String, i64)>)>,
}

impl Daily {
    /// The keys with the most use overall, largest first.
    fn top(&self) -> Vec<String> {
        let mut totals: std::collections::BTreeMap<&str, i64> = Default::default();
        for (_, counts) in &self.days {
            for (k, n) in counts {
                *totals.entry(k).or_default() += n;
            }
        }
        let mut v: Vec<(&str, i64)> = totals.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v.into_iter().map(|(k, _)| k.to_string()).collect()
    }

    /// A stacked bar chart: one bar per day, a segment per key.
    pub fn svg(&self, title: &str) -> Markup {
        let top = self.top();
        let named: Vec<&String> = top.iter().take(SERIES).collect();
        let has_other = top.len() > SERIES;
        // Each day's stack: the named keys in order, then "other".
        let stacks: Vec<(&str, Vec<i64>)> = self
            .days
            .iter()
            .map(|(day, counts)| {
                let mut seg: Vec<i64> = named
                    .iter()
                    .map(|k| counts.iter().filter(|(c, _)| c == *k).map(|(_, n)| n).sum())
                    .collect();
                let other: i64 = counts
                    .iter()
                    .filter(|(c, _)| !named.contains(&c))
                    .map(|(_, n)| n)
                    .sum();
                seg.push(other);
                (day.as_str(), seg)
            })
            .collect();
        let max = stacks
            .iter()
            .map(|(_, s)| s.iter().sum::<i64>())
            .max()
            .unwrap_or(0)
            .max(1);
        let (w, h, left, bottom) = (720.0_f64, 200.0_f64, 40.0_f64, 30.0_f64);
        let n = stacks.len().max(1) as f64;
        let slot = (w - left) / n;
        let bar = (slot * 0.8).clamp(1.0, 48.0);
        let y = |v: i64| (h - bottom) * (v as f64) / (max as f64);
        html! {
            figure.chart {
                figcaption { (title) }
                svg role="img" aria-label=(title) viewBox=(format!("0 0 {w} {h}")) width="100%" {
                    line x1=(left) y1=(h - bottom) x2=(w) y2=(h - bottom) stroke="#999" {}
                    text x="2" y="12" font-size="10" { (max) }
                    text x="2" y=(h - bottom) font-size="10" { "0" }
                    @for (i, (day, seg)) in stacks.iter().enumerate() {
                        @let x = left + slot * i as f64 + (slot - bar) / 2.0;
                        @let mut base = h - bottom;
                        @for (j, v) in seg.iter().enumerate() {
                            @if *v > 0 {
                                @let hgt = y(*v);
                                @let top_y = { base -= hgt; base };
                                @let key = named.get(j).map(|k| k.as_str()).unwrap_or("other");
                                rect x=(format!("{x:.1}")) y=(format!("{top_y:.1}")) width=(format!("{bar:.1}")) height=(format!("{hgt:.1}")) fill=(COLOURS[j.min(COLOURS.len() - 1)]) {
                                    title { (day) " " (key) ": " (v) }
                                }
                            }
                        }
                        @if stacks.len() <= 16 || i % (stacks.len() / 8).max(1) == 0 {
                            text x=(format!("{:.1}", x)) y=(h - 12.0) font-size="9" { (day.get(5..).unwrap_or(day)) }
                        }
                    }
                }
                ul.legend {
                    @for (j, k) in named.iter().enumerate() {
                        li { span class=(format!("swatch s{j}")) {} (k) }
                    }
                    @if has_other {
                        li { span class=(format!("swatch s{SERIES}")) {} "other" }
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
    fn stacks_the_top_keys_and_sums_the_rest() {
        let d = Daily {
            days: vec![
                (
                    "2026-12-01".into(),
                    (0..7).map(|i| (format!("k{i}"), i + 1)).collect(),
                ),
                ("2026-12-02".into(), vec![("k6".into(), 3)]),
            ],
        };
        let svg = d.svg("use").into_string();
        assert!(svg.contains("k6: 7") && svg.contains("k6: 3"), "{svg}");
        assert!(
            svg.contains("other: 3"),
            "k0 (1) and k1 (2) are other: {svg}"
        );
        assert_eq!(svg.matches("<rect").count(), 7);
    }
}
