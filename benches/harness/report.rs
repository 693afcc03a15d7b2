//! Results: one row per figure with its baseline and ratio, written as JSON (for tracking) and
//! printed as the Markdown table BENCHMARKS.md holds.
use std::path::Path;

use serde::Serialize;

use crate::system::Machine;

/// Which direction of a figure is good.
#[derive(Clone, Copy, Debug, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    Higher,
    Lower,
}

impl Better {
    fn as_str(self) -> &'static str {
        match self {
            Better::Higher => "higher",
            Better::Lower => "lower",
        }
    }
}

/// One measured figure.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub scenario: &'static str,
    pub backend: &'static str,
    pub case: String,
    pub metric: &'static str,
    pub unit: &'static str,
    pub goftgu: f64,
    pub baseline: f64,
    /// goftgu / baseline.
    pub ratio: f64,
    pub better: Better,
    pub baseline_is: &'static str,
    pub note: String,
}

/// A builder for rows of one scenario on one backend.
pub struct Scope {
    pub scenario: &'static str,
    pub backend: &'static str,
    pub baseline_is: &'static str,
}

impl Scope {
    #[allow(clippy::too_many_arguments)]
    pub fn row(
        &self,
        case: impl Into<String>,
        metric: &'static str,
        unit: &'static str,
        better: Better,
        goftgu: f64,
        baseline: f64,
        note: impl Into<String>,
    ) -> Row {
        Row {
            scenario: self.scenario,
            backend: self.backend,
            case: case.into(),
            metric,
            unit,
            goftgu,
            baseline,
            ratio: if baseline > 0.0 {
                goftgu / baseline
            } else {
                f64::NAN
            },
            better,
            baseline_is: self.baseline_is,
            note: note.into(),
        }
    }
}

/// A whole run.
#[derive(Debug, Serialize)]
pub struct Report {
    pub machine: Machine,
    pub elapsed_seconds: f64,
    pub rows: Vec<Row>,
}

impl Report {
    pub fn new(machine: Machine) -> Self {
        Report {
            machine,
            elapsed_seconds: 0.0,
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Row) {
        eprintln!(
            "  {} {} {} {}: goftgu {} {} | baseline {} | ratio {:.2} ({} is better){}",
            row.scenario,
            row.backend,
            row.case,
            row.metric,
            fmt(row.goftgu),
            row.unit,
            fmt(row.baseline),
            row.ratio,
            row.better.as_str(),
            if row.note.is_empty() {
                String::new()
            } else {
                format!(" [{}]", row.note)
            }
        );
        self.rows.push(row);
    }

    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, serde_json::to_string_pretty(self)?)?;
        Ok(())
    }

    pub fn markdown(&self) -> String {
        let m = &self.machine;
        let mut out = format!(
            "Measured {} on {} cores ({}), {} GiB, commit {}, server{} pinned apart from the load generator; whole run {:.0} s.\n\n",
            m.date,
            m.cores,
            m.cpu,
            m.memory_gib,
            m.commit,
            if m.pinned { "s" } else { "s not" },
            self.elapsed_seconds
        );
        out.push_str("| scenario | db | case | metric | goftgu | baseline | ratio | better | baseline is | note |\n");
        out.push_str("|---|---|---|---|---:|---:|---:|---|---|---|\n");
        for r in &self.rows {
            out.push_str(&format!(
                "| {} | {} | {} | {} ({}) | {} | {} | {:.2} | {} | {} | {} |\n",
                r.scenario,
                r.backend,
                r.case,
                r.metric,
                r.unit,
                fmt(r.goftgu),
                fmt(r.baseline),
                r.ratio,
                r.better.as_str(),
                r.baseline_is,
                r.note
            ));
        }
        out
    }
}

fn fmt(value: f64) -> String {
    if value.abs() >= 100.0 {
        format!("{value:.0}")
    } else if value.abs() >= 1.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.3}")
    }
}

/// The `p`-th percentile (0–100) of `values` (sorted here), nearest rank.
pub fn percentile(values: &mut [u32], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_unstable();
    let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1] as f64
}
