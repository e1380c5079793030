//! The one place that writes to stdout and stderr: format, colour, quiet.

use std::io::Write as _;

use anstyle::{AnsiColor, Style};
use serde::Serialize;

use crate::plan::{Action, WritePlan};

/// How a command prints its results; each command accepts some of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// For people (every command).
    Text,
    /// Machine-readable (every command).
    Json,
    /// GitHub Actions annotations (check).
    Github,
    #[value(help = "SARIF 2.1.0, for code scanning (check)")]
    Sarif,
    #[value(help = "JUnit XML, for CI test reports (check, test)")]
    Junit,
    /// A mermaid flowchart (graph, its default).
    Mermaid,
    /// Graphviz (graph).
    Dot,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Json => "json",
            Format::Github => "github",
            Format::Sarif => "sarif",
            Format::Junit => "junit",
            Format::Mermaid => "mermaid",
            Format::Dot => "dot",
        }
    }
}

const GREEN: Style = AnsiColor::Green.on_default().bold();
const YELLOW: Style = AnsiColor::Yellow.on_default().bold();
const RED: Style = AnsiColor::Red.on_default().bold();
const CYAN: Style = AnsiColor::Cyan.on_default().bold();
const DIM: Style = Style::new().dimmed();

#[derive(Debug, Clone, Copy)]
pub struct Printer {
    pub format: Format,
    pub quiet: bool,
}

impl Printer {
    pub fn new(format: Format, quiet: bool) -> Self {
        Self { format, quiet }
    }

    pub fn is_json(&self) -> bool {
        self.format == Format::Json
    }

    /// A status line like cargo's: a right-aligned verb, then the message.
    pub fn status(&self, verb: &str, message: &str) {
        if self.quiet || self.is_json() {
            return;
        }
        let mut err = anstream::stderr();
        let _ = writeln!(err, "{GREEN}{verb:>12}{GREEN:#} {message}");
    }

    /// A line for the user on stdout (text format only).
    pub fn line(&self, message: &str) {
        if self.quiet || self.is_json() {
            return;
        }
        let mut out = anstream::stdout();
        let _ = writeln!(out, "{message}");
    }

    pub fn warn(&self, message: &str) {
        let mut err = anstream::stderr();
        let _ = writeln!(err, "{YELLOW}warning{YELLOW:#}: {message}");
    }

    /// A JSON document on stdout (json format only).
    pub fn json(&self, value: &impl Serialize) {
        if !self.is_json() {
            return;
        }
        let mut out = anstream::stdout();
        let text = serde_json::to_string_pretty(value).expect("plain data serialises");
        let _ = writeln!(out, "{text}");
    }

    pub fn error(&self, err: &crate::error::Error) {
        let mut stderr = anstream::stderr();
        let text = err.render();
        let mut lines = text.lines();
        if let Some(first) = lines.next() {
            let rest = first.strip_prefix("error:").unwrap_or(first);
            let _ = writeln!(stderr, "{RED}error{RED:#}:{rest}");
        }
        for line in lines {
            if let Some(rest) = line.strip_prefix("hint:") {
                let _ = writeln!(stderr, "{CYAN}hint{CYAN:#}:{rest}");
            } else {
                let _ = writeln!(stderr, "{line}");
            }
        }
    }

    /// Prints what a plan would do: one line per file, then diffs of changed files.
    pub fn plan(&self, plan: &WritePlan, diff_paths: &[&str]) {
        if self.is_json() {
            #[derive(Serialize)]
            struct PlanJson<'a> {
                files: &'a [crate::plan::PlannedFile],
                diffs: std::collections::BTreeMap<String, String>,
            }
            let diffs = plan
                .files()
                .iter()
                .filter(|f| diff_paths.iter().any(|p| f.path.as_os_str() == *p))
                .filter(|f| matches!(f.action, Action::Create | Action::Update))
                .map(|f| (f.path.display().to_string(), f.unified_diff()))
                .collect();
            self.json(&PlanJson {
                files: plan.files(),
                diffs,
            });
            return;
        }
        let mut out = anstream::stdout();
        for f in plan.files() {
            let (style, word) = match f.action {
                Action::Create => (GREEN, "create"),
                Action::Update => (YELLOW, "update"),
                Action::Unchanged => (DIM, "unchanged"),
                Action::Keep => (DIM, "keep"),
                Action::Conflict => (RED, "conflict"),
                Action::Delete => (RED, "delete"),
            };
            let _ = writeln!(out, "  {style}{word:<9}{style:#} {}", f.path.display());
        }
        for f in plan.files() {
            if !diff_paths.iter().any(|p| f.path.as_os_str() == *p)
                || !matches!(f.action, Action::Create | Action::Update)
            {
                continue;
            }
            let _ = writeln!(out);
            for line in f.unified_diff().lines() {
                let style = if line.starts_with("+++") || line.starts_with("---") {
                    Style::new().bold()
                } else if line.starts_with('+') {
                    AnsiColor::Green.on_default()
                } else if line.starts_with('-') {
                    AnsiColor::Red.on_default()
                } else if line.starts_with("@@") {
                    AnsiColor::Cyan.on_default()
                } else {
                    Style::new()
                };
                let _ = writeln!(out, "{style}{line}{style:#}");
            }
        }
    }
}
