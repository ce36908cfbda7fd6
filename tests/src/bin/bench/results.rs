//! What a benchmark run found: metrics with one sample per run (reported as median, min and
//! max), the targets of issue 12 judged on those medians, the printed table and the JSON file.
//!
//! ```text
//!   section code ─ record(section, metric, unit, sample) ─▶ Results ─┬─▶ table on stdout
//!                                                                    └─▶ bench-results/*.json
//! ```

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::{Value, json};

/// Median, min and max of some samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

/// The summary of `samples` (empty samples give NaN, printed as `–`).
pub fn summarize(samples: &[f64]) -> Summary {
    let mut sorted: Vec<f64> = samples.iter().copied().filter(|v| !v.is_nan()).collect();
    if sorted.is_empty() {
        return Summary {
            median: f64::NAN,
            min: f64::NAN,
            max: f64::NAN,
        };
    }
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let median = if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    };
    Summary {
        median,
        min: sorted[0],
        max: sorted[n - 1],
    }
}

/// The nearest-rank percentile `p` (0–100) of `samples`.
pub fn percentile(samples: &[f64], p: f64) -> f64 {
    let mut sorted = samples.to_vec();
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// One measured quantity of one section.
#[derive(Debug, Clone)]
pub struct Metric {
    pub section: String,
    pub name: String,
    pub unit: String,
    pub samples: Vec<f64>,
}

/// A target of issue 12, judged on a metric's median.
#[derive(Debug, Clone)]
pub struct Target {
    pub goal: String,
    pub section: String,
    pub metric: String,
    /// `(median) -> met?`
    pub check: fn(f64) -> bool,
}

/// Everything one `scripts/bench` run measured.
#[derive(Debug, Default)]
pub struct Results {
    pub metrics: Vec<Metric>,
    pub targets: Vec<Target>,
    /// Free-form facts: versions, sizes, settings (shown above the table and kept in JSON).
    pub facts: Vec<(String, Value)>,
    /// Remarks printed under the table (what a figure includes, why a target cannot be met).
    pub notes: Vec<String>,
}

impl Results {
    /// Adds one sample (typically one per run) to `section`/`name`.
    pub fn record(&mut self, section: &str, name: &str, unit: &str, sample: f64) {
        match self
            .metrics
            .iter_mut()
            .find(|m| m.section == section && m.name == name)
        {
            Some(m) => m.samples.push(sample),
            None => self.metrics.push(Metric {
                section: section.into(),
                name: name.into(),
                unit: unit.into(),
                samples: vec![sample],
            }),
        }
    }

    pub fn fact(&mut self, key: &str, value: Value) {
        self.facts.retain(|(k, _)| k != key);
        self.facts.push((key.into(), value));
    }

    pub fn note(&mut self, text: impl Into<String>) {
        let text = text.into();
        if !self.notes.contains(&text) {
            self.notes.push(text);
        }
    }

    pub fn target(&mut self, goal: &str, section: &str, metric: &str, check: fn(f64) -> bool) {
        self.targets.push(Target {
            goal: goal.into(),
            section: section.into(),
            metric: metric.into(),
            check,
        });
    }

    fn find(&self, section: &str, name: &str) -> Option<&Metric> {
        self.metrics
            .iter()
            .find(|m| m.section == section && m.name == name)
    }

    /// `(goal, median, met)` for every target whose metric was measured.
    pub fn judged(&self) -> Vec<(String, f64, Option<bool>)> {
        self.targets
            .iter()
            .map(|t| match self.find(&t.section, &t.metric) {
                Some(m) => {
                    let median = summarize(&m.samples).median;
                    (
                        t.goal.clone(),
                        median,
                        (!median.is_nan()).then(|| (t.check)(median)),
                    )
                }
                None => (t.goal.clone(), f64::NAN, None),
            })
            .collect()
    }

    /// The table printed at the end of a run.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let width = self
            .metrics
            .iter()
            .map(|m| m.name.chars().count())
            .max()
            .unwrap_or(10)
            .max(10);
        for section in self.sections() {
            let _ = writeln!(out, "\n{section}");
            let _ = writeln!(
                out,
                "  {:<width$}  {:>12}  {:>12}  {:>12}  {:<6} runs",
                "metric", "median", "min", "max", "unit"
            );
            for m in self.metrics.iter().filter(|m| m.section == section) {
                self.row(&mut out, m, width);
            }
        }
        let judged = self.judged();
        if !judged.is_empty() {
            let _ = writeln!(out, "\ntargets (judged on medians)");
            for (goal, median, met) in judged {
                let verdict = match met {
                    Some(true) => "met",
                    Some(false) => "MISSED",
                    None => "not measured",
                };
                let _ = writeln!(out, "  {verdict:<12} {goal} (median {})", number(median));
            }
        }
        if !self.notes.is_empty() {
            let _ = writeln!(out, "\nnotes");
            for n in &self.notes {
                let _ = writeln!(out, "  - {n}");
            }
        }
        out
    }

    /// The sections in the order they were first recorded.
    fn sections(&self) -> Vec<&str> {
        let mut sections: Vec<&str> = Vec::new();
        for m in &self.metrics {
            if !sections.contains(&m.section.as_str()) {
                sections.push(&m.section);
            }
        }
        sections
    }

    fn row(&self, out: &mut String, m: &Metric, width: usize) {
        let [median, min, max] = figures(m);
        let (unit, runs) = (&m.unit, m.samples.len());
        let _ = writeln!(
            out,
            "  {:<width$}  {median:>12}  {min:>12}  {max:>12}  {unit:<6} {runs}",
            m.name
        );
    }

    /// The whole run as JSON (metrics with their samples, targets, facts, notes).
    pub fn to_json(&self) -> Value {
        let metrics: Vec<Value> = self
            .metrics
            .iter()
            .map(|m| {
                let s = summarize(&m.samples);
                json!({
                    "section": m.section, "metric": m.name, "unit": m.unit,
                    "median": finite(s.median), "min": finite(s.min), "max": finite(s.max),
                    "samples": m.samples.iter().map(|v| finite(*v)).collect::<Vec<_>>(),
                })
            })
            .collect();
        let targets: Vec<Value> = self
            .judged()
            .into_iter()
            .map(|(goal, median, met)| json!({"goal": goal, "median": finite(median), "met": met}))
            .collect();
        let facts: serde_json::Map<String, Value> = self.facts.iter().cloned().collect();
        json!({"facts": facts, "metrics": metrics, "targets": targets, "notes": self.notes})
    }

    /// The metrics and targets as Markdown tables, for BENCHMARKS.md.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        for section in self.sections() {
            let _ = writeln!(out, "\n#### {section}\n");
            let _ = writeln!(out, "| metric | median | min | max | unit | runs |");
            let _ = writeln!(out, "|---|---:|---:|---:|---|---:|");
            for m in self.metrics.iter().filter(|m| m.section == section) {
                let [median, min, max] = figures(m);
                let (unit, runs) = (&m.unit, m.samples.len());
                let _ = writeln!(out, "| {} | {median} | {min} | {max} | {unit} | {runs} |", m.name);
            }
        }
        let _ = writeln!(
            out,
            "\n#### Targets\n\n| target | median | verdict |\n|---|---:|---|"
        );
        for (goal, median, met) in self.judged() {
            let verdict = match met {
                Some(true) => "met",
                Some(false) => "**missed**",
                None => "not measured",
            };
            let _ = writeln!(out, "| {goal} | {} | {verdict} |", number(median));
        }
        out
    }

    /// Writes [`Results::to_json`] to `path` and [`Results::markdown`] beside it (`.md`).
    pub fn write_json(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let text = serde_json::to_string_pretty(&self.to_json())?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
        let md = path.with_extension("md");
        std::fs::write(&md, self.markdown()).with_context(|| format!("writing {}", md.display()))
    }
}

/// Median, min and max of a metric, as printed.
fn figures(m: &Metric) -> [String; 3] {
    let s = summarize(&m.samples);
    [number(s.median), number(s.min), number(s.max)]
}

fn finite(v: f64) -> Value {
    if v.is_finite() {
        json!((v * 1000.0).round() / 1000.0)
    } else {
        Value::Null
    }
}

/// A figure with sensible precision: 3 significant digits below 100, whole numbers above.
pub fn number(v: f64) -> String {
    if v.is_nan() {
        return "–".into();
    }
    let a = v.abs();
    if a >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_and_percentiles() {
        let s = summarize(&[3.0, 1.0, 2.0]);
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert_eq!(summarize(&[1.0, 2.0, 3.0, 10.0]).median, 2.5);
        assert!(summarize(&[]).median.is_nan());
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&[5.0], 99.0), 5.0);
    }

    #[test]
    fn targets_are_judged_on_medians() {
        let mut r = Results::default();
        for v in [4.0, 6.0, 7.0] {
            r.record("dav", "speed-up", "x", v);
        }
        r.target("≥5× faster", "dav", "speed-up", |m| m >= 5.0);
        r.target("not run", "imap", "ratio", |m| m <= 1.0);
        let judged = r.judged();
        assert_eq!(judged[0].1, 6.0);
        assert_eq!(judged[0].2, Some(true));
        assert_eq!(judged[1].2, None);
        let table = r.table();
        assert!(table.contains("speed-up") && table.contains("met"), "{table}");
        assert_eq!(r.to_json()["metrics"][0]["samples"], json!([4.0, 6.0, 7.0]));
        let md = r.markdown();
        assert!(md.contains("| speed-up | 6 | 4 | 7 | x | 3 |"), "{md}");
        assert!(md.contains("| ≥5× faster | 6 | met |"), "{md}");
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(number(1234.56), "1235");
        assert_eq!(number(12.345), "12.3");
        assert_eq!(number(1.2345), "1.23");
        assert_eq!(number(0.01234), "0.012");
        assert_eq!(number(3.0), "3");
    }
}
