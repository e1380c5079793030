//! How a check report is printed: rustc-style text, JSON, GitHub workflow commands; SARIF
//! and `JUnit` live in their own modules.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::Report;
use crate::error::excerpt as window;
use crate::error::{Message, Severity, palette, slash_path};
use crate::workspace::diagnostic::{Diagnostic, Level};

/// How paths are shown: relative to where msvc runs, so that they can be clicked and
/// GitHub can annotate them.
#[derive(Debug, Clone)]
pub struct PathStyle {
    /// The workspace root as seen from the current directory (`""`, `shop/`, `../`).
    pub prefix: String,
}

impl PathStyle {
    pub fn new(root_from_cwd: &Path) -> Self {
        let p = slash_path(root_from_cwd);
        let prefix = if p.is_empty() || p == "." {
            String::new()
        } else {
            format!("{}/", p.trim_end_matches('/'))
        };
        Self { prefix }
    }

    pub fn show(&self, d: &Diagnostic) -> Option<String> {
        d.file().map(|f| format!("{}{f}", self.prefix))
    }
}

/// The rustc-style rendering of one diagnostic, with or without colour.
pub fn render(d: &Diagnostic, paths: &PathStyle, color: bool) -> String {
    let severity = match d.level {
        Level::Error => Severity::Error,
        Level::Warning => Severity::Warning,
    };
    Message {
        code: Some(d.id),
        place: d
            .location
            .as_ref()
            .map(|loc| (paths.show(d).unwrap_or_default(), loc)),
        notes: &d.notes,
        hint: d.hint.as_deref(),
        ..Message::new(severity, &d.message)
    }
    .render(color)
}

/// The closing line of a text report.
pub fn summary(report: &Report) -> String {
    let (errors, warnings) = (report.errors(), report.warnings());
    let counts = format!(
        "{} service{}, {} proto{}, {} check{}",
        report.services,
        plural(report.services),
        report.protos,
        plural(report.protos),
        report.checks_run(),
        plural(report.checks_run())
    );
    if !report.manifest_read {
        return "msvc check: services.toml could not be read, so nothing else was checked".into();
    }
    if errors == 0 && warnings == 0 {
        return format!("msvc check: no problems ({counts})");
    }
    let mut parts = Vec::new();
    if errors > 0 {
        parts.push(format!("{errors} error{}", plural(errors)));
    }
    if warnings > 0 {
        parts.push(format!("{warnings} warning{}", plural(warnings)));
    }
    format!("msvc check: {} ({counts})", parts.join(", "))
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The text report: every diagnostic, then the summary. `quiet` leaves out warnings and
/// the summary of a clean run.
pub fn text(report: &Report, paths: &PathStyle, color: bool, quiet: bool) -> String {
    let mut out = String::new();
    for d in &report.diagnostics {
        if quiet && d.level == Level::Warning {
            continue;
        }
        out.push_str(&render(d, paths, color));
        out.push('\n');
    }
    if !quiet || report.errors() > 0 {
        let line = summary(report);
        let style = if report.errors() > 0 {
            palette::ERROR
        } else if report.warnings() > 0 {
            palette::WARNING
        } else {
            palette::SUCCESS
        };
        if color {
            let _ = writeln!(out, "{style}{line}{style:#}");
        } else {
            let _ = writeln!(out, "{line}");
        }
    }
    out
}

#[derive(Serialize)]
struct JsonReport<'a> {
    summary: JsonSummary,
    diagnostics: Vec<JsonDiagnostic<'a>>,
}

#[derive(Serialize)]
struct JsonSummary {
    errors: usize,
    warnings: usize,
    services: usize,
    protos: usize,
    checks: usize,
}

#[derive(Serialize)]
struct JsonDiagnostic<'a> {
    id: &'a str,
    level: Level,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    column: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_column: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_line: Option<String>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    notes: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<&'a str>,
}

/// `--format json`: one document with a summary and every diagnostic.
pub fn json(report: &Report, paths: &PathStyle) -> String {
    let doc = JsonReport {
        summary: JsonSummary {
            errors: report.errors(),
            warnings: report.warnings(),
            services: report.services,
            protos: report.protos,
            checks: report.checks_run(),
        },
        diagnostics: report
            .diagnostics
            .iter()
            .map(|d| {
                let loc = d.location.as_ref().filter(|l| l.line > 0);
                JsonDiagnostic {
                    id: d.id,
                    level: d.level,
                    message: &d.message,
                    file: paths.show(d),
                    line: loc.map(|l| l.line),
                    column: loc.map(|l| l.column),
                    end_column: loc.map(|l| l.column + l.width),
                    source_line: loc.and_then(|l| {
                        l.source_line
                            .as_deref()
                            .map(|s| window(s, l.column, l.width).0)
                    }),
                    notes: &d.notes,
                    hint: d.hint.as_deref(),
                }
            })
            .collect(),
    };
    let mut text = serde_json::to_string_pretty(&doc).expect("plain data serialises");
    text.push('\n');
    text
}

/// `--format github`: workflow commands, which GitHub Actions turns into annotations.
pub fn github(report: &Report, paths: &PathStyle) -> String {
    let mut out = String::new();
    for d in &report.diagnostics {
        let mut props = Vec::new();
        if let Some(file) = paths.show(d) {
            props.push(format!("file={}", escape_property(&file)));
        }
        if let Some(loc) = d.location.as_ref().filter(|l| l.line > 0) {
            props.push(format!("line={}", loc.line));
            props.push(format!("col={}", loc.column));
            props.push(format!("endColumn={}", loc.column + loc.width));
        }
        props.push(format!("title={}", escape_property(d.id)));
        let mut message = d.message.clone();
        if let Some(hint) = &d.hint {
            let _ = write!(message, "\nhint: {hint}");
        }
        let _ = writeln!(
            out,
            "::{} {}::{}",
            d.level.as_str(),
            props.join(","),
            escape_data(&message)
        );
    }
    out
}

fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_escapes() {
        assert_eq!(escape_data("a%b\nc"), "a%25b%0Ac");
        assert_eq!(escape_property("a:b,c"), "a%3Ab%2Cc");
    }
}
