//! The one place that writes to stdout and stderr: format, colour, quiet.

use std::io::Write as _;

use serde::Serialize;

use crate::error::palette::{DIM, ERROR as RED, SUCCESS as GREEN, WARNING as YELLOW};
use crate::error::render::diff_style;
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
        Self::event(verb, message, false);
    }

    /// A status line on stderr for code that runs without a `Printer` (the log streamer
    /// of `msvc up`, which decides itself what quiet leaves out); `warning` paints the
    /// verb yellow instead of green.
    pub fn event(verb: &str, message: &str, warning: bool) {
        let style = if warning { YELLOW } else { GREEN };
        let mut err = anstream::stderr().lock();
        let _ = writeln!(err, "{style}{verb:>12}{style:#} {message}");
    }

    /// A document rendered whole (a check report, a graph, SARIF, `JUnit`) on stdout,
    /// whatever the format; its colours are dropped when stdout is not a terminal or
    /// `NO_COLOR` is set.
    pub fn write(&self, text: &str) {
        let mut out = anstream::stdout();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }

    /// A whole rendered document on stderr: findings that stop a command.
    pub fn write_err(&self, text: &str) {
        let mut err = anstream::stderr();
        let _ = err.write_all(text.as_bytes());
        let _ = err.flush();
    }

    /// stdout itself, for a stream whose lines the caller formats and flushes: the
    /// merged logs of `msvc up` and `msvc logs`, the reaper's events to `msvc up`.
    pub fn raw_stdout() -> std::io::Stdout {
        std::io::stdout()
    }

    /// Whether what goes to stdout may be coloured: a terminal, and `NO_COLOR` unset.
    pub fn stdout_has_color() -> bool {
        !matches!(
            anstream::AutoStream::choice(&std::io::stdout()),
            anstream::ColorChoice::Never
        )
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
        Self::warning(message);
    }

    /// A warning on stderr, for code that runs without a `Printer` (the reaper).
    pub fn warning(message: &str) {
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
        let _ = stderr.write_all(err.render_styled().as_bytes());
    }

    /// Prints what a plan would do: one line per file, then diffs of changed files.
    pub fn plan(&self, plan: &WritePlan, diff_paths: &[&str]) {
        fn action_word(action: Action) -> (anstyle::Style, &'static str) {
            match action {
                Action::Create => (GREEN, "create"),
                Action::Update => (YELLOW, "update"),
                Action::Unchanged => (DIM, "unchanged"),
                Action::Keep => (DIM, "keep"),
                Action::Conflict => (RED, "conflict"),
                Action::Delete => (RED, "delete"),
            }
        }
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
        // The runtime crate is one unit, written whole: one line per action, not per file.
        let runtime = format!("{}/", crate::workspace::RUNTIME_DIR);
        let mut runtime_lines: Vec<(Action, usize)> = Vec::new();
        for f in plan.files() {
            if f.path.to_string_lossy().starts_with(&runtime) {
                match runtime_lines.iter_mut().find(|(a, _)| *a == f.action) {
                    Some((_, n)) => *n += 1,
                    None => runtime_lines.push((f.action, 1)),
                }
            }
        }
        let mut runtime_done = false;
        for f in plan.files() {
            if f.path.to_string_lossy().starts_with(&runtime) {
                if !runtime_done {
                    runtime_done = true;
                    for (action, n) in &runtime_lines {
                        let (style, word) = action_word(*action);
                        let files = if *n == 1 { "file" } else { "files" };
                        let _ =
                            writeln!(out, "  {style}{word:<9}{style:#} {runtime} ({n} {files})");
                    }
                }
                continue;
            }
            let (style, word) = action_word(f.action);
            let _ = writeln!(out, "  {style}{word:<9}{style:#} {}", f.path.display());
        }
        self.diffs(plan, diff_paths);
    }

    /// Prints the unified diff of each file of `diff_paths` the plan creates or updates.
    pub fn diffs(&self, plan: &WritePlan, diff_paths: &[&str]) {
        let mut out = anstream::stdout();
        for f in plan.files() {
            if !diff_paths.iter().any(|p| f.path.as_os_str() == *p)
                || !matches!(f.action, Action::Create | Action::Update)
            {
                continue;
            }
            let _ = writeln!(out);
            for line in f.unified_diff().lines() {
                let style = diff_style(line);
                let _ = writeln!(out, "{style}{line}{style:#}");
            }
        }
    }
}
