//! How a check report is printed: rustc-style text, JSON, GitHub workflow commands; SARIF
//! and `JUnit` live in their own modules.

use std::fmt::Write as _;
use std::path::Path;

use anstyle::{AnsiColor, Style};
use serde::Serialize;

use super::Report;
use super::diagnostic::{Diagnostic, Level};
use crate::error::excerpt as window;
use crate::error::slash_path;

const RED: Style = AnsiColor::Red.on_default().bold();
const YELLOW: Style = AnsiColor::Yellow.on_default().bold();
const BLUE: Style = AnsiColor::Blue.on_default().bold();
const CYAN: Style = AnsiColor::Cyan.on_default().bold();
const BOLD: Style = Style::new().bold();

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
    let paint = |style: Style, text: &str| {
        if color {
            format!("{style}{text}{style:#}")
        } else {
            text.to_string()
        }
    };
    let mut out = String::new();
    let (style, word) = match d.level {
        Level::Error => (RED, "error"),
        Level::Warning => (YELLOW, "warning"),
    };
    let _ = writeln!(
        out,
        "{}{}",
        paint(style, &format!("{word}[{}]", d.id)),
        paint(BOLD, &format!(": {}", d.message))
    );
    let mut gutter_width = 1;
    if let Some(loc) = &d.location {
        let shown = paths.show(d).unwrap_or_default();
        let place = if loc.line == 0 {
            shown
        } else {
            format!("{shown}:{}:{}", loc.line, loc.column)
        };
        gutter_width = if loc.line == 0 {
            1
        } else {
            loc.line.to_string().len()
        };
        let pad = " ".repeat(gutter_width);
        let _ = writeln!(out, "{pad}{} {place}", paint(BLUE, "-->"));
        if let Some(line) = &loc.source_line
            && loc.line > 0
        {
            let bar = paint(BLUE, "|");
            let _ = writeln!(out, "{pad} {bar}");
            let (shown, indent, width) = window(line, loc.column, loc.width);
            let _ = writeln!(out, "{} {bar} {shown}", paint(BLUE, &loc.line.to_string()));
            let _ = writeln!(
                out,
                "{pad} {bar} {}{}",
                " ".repeat(indent),
                paint(style, &"^".repeat(width))
            );
        }
    }
    let pad = " ".repeat(gutter_width);
    for note in &d.notes {
        let mut lines = note.lines();
        let _ = writeln!(
            out,
            "{pad} {} {}",
            paint(BLUE, "="),
            format_args!("note: {}", lines.next().unwrap_or(""))
        );
        for line in lines {
            let styled = if !color {
                line.to_string()
            } else if line.starts_with("+++") || line.starts_with("---") {
                paint(BOLD, line)
            } else if line.starts_with('+') {
                paint(AnsiColor::Green.on_default(), line)
            } else if line.starts_with('-') {
                paint(AnsiColor::Red.on_default(), line)
            } else if line.starts_with("@@") {
                paint(AnsiColor::Cyan.on_default(), line)
            } else {
                line.to_string()
            };
            let _ = writeln!(out, "{pad}     {styled}");
        }
    }
    if let Some(hint) = &d.hint {
        let _ = writeln!(out, "{}: {hint}", paint(CYAN, "hint"));
    }
    out
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
            RED
        } else if report.warnings() > 0 {
            YELLOW
        } else {
            AnsiColor::Green.on_default().bold()
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
    fn long_lines_are_cut_around_the_span() {
        let (shown, indent, width) = window("a\tb", 3, 1);
        assert_eq!((shown.as_str(), indent, width), ("a    b", 5, 1));
        let long = format!("{}X{}", "a".repeat(300), "b".repeat(300));
        let (shown, indent, width) = window(&long, 301, 1);
        assert!(
            shown.starts_with("...") && shown.ends_with("..."),
            "{shown}"
        );
        assert_eq!(shown.chars().nth(indent), Some('X'));
        assert_eq!(width, 1);
        assert!(shown.len() < 130);
    }

    #[test]
    fn github_escapes() {
        assert_eq!(escape_data("a%b\nc"), "a%25b%0Ac");
        assert_eq!(escape_property("a:b,c"), "a%3Ab%2Cc");
    }
}
