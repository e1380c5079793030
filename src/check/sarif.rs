//! `--format sarif`: a SARIF 2.1.0 log, as GitHub code scanning and other CI tools read it.
//! Every check is a rule; every diagnostic a result.
//!
//! Written with `serde_json` rather than the serde-sarif crate: that crate generates its
//! types from the SARIF schema in a build script (schemafy, syn, prettyplease), which
//! every clean build of msvc would pay for, to fill in the dozen fields used here. The
//! log is validated against the SARIF 2.1.0 schema by a test (sarif-multitool) instead.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::Report;
use super::catalog::CHECKS;
use super::output::PathStyle;
use crate::workspace::diagnostic::Level;

pub const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

pub fn sarif(report: &Report, paths: &PathStyle) -> String {
    let rules: Vec<Value> = CHECKS
        .iter()
        .map(|c| {
            let level = report.levels.level(c.id);
            let mut rule = json!({
                "id": c.id,
                "shortDescription": { "text": capitalise(c.summary) },
                "fullDescription": { "text": c.detail },
                "help": {
                    "text": c.fix,
                    "markdown": format!("{}\n\nRun `msvc check --explain {}` for more.", c.fix, c.id),
                },
                "defaultConfiguration": {
                    "enabled": level.is_some(),
                    "level": sarif_level(level.unwrap_or(c.level)),
                },
                "properties": { "tags": [c.family.as_str()] },
            });
            // SARIF wants the name omitted when it would only repeat the ID.
            let name = pascal(c.id);
            if !name.eq_ignore_ascii_case(c.id) {
                rule["name"] = json!(name);
            }
            rule
        })
        .collect();
    let results: Vec<Value> = report
        .diagnostics
        .iter()
        .map(|d| {
            let mut text = d.message.clone();
            if let Some(h) = &d.hint {
                text.push_str("\nhint: ");
                text.push_str(h);
            }
            let mut result = json!({
                "ruleId": d.id,
                "level": sarif_level(d.level),
                "message": { "text": text },
            });
            if let Some(index) = CHECKS.iter().position(|c| c.id == d.id) {
                result["ruleIndex"] = json!(index);
            }
            if let (Some(loc), Some(file)) = (&d.location, paths.show(d)) {
                let mut physical = json!({
                    "artifactLocation": { "uri": uri(&file), "uriBaseId": "%SRCROOT%" },
                });
                if loc.line > 0 {
                    let mut region = json!({
                        "startLine": loc.line,
                        "startColumn": loc.column,
                        "endLine": loc.line,
                        "endColumn": loc.column + loc.width,
                    });
                    if let Some(line) = &loc.source_line {
                        let (text, _, _) = crate::error::excerpt(line, loc.column, loc.width);
                        region["snippet"] = json!({ "text": text });
                    }
                    physical["region"] = region;
                }
                result["locations"] = json!([{ "physicalLocation": physical }]);
            }
            result
        })
        .collect();
    let log = json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "msvc",
                    "semanticVersion": env!("CARGO_PKG_VERSION"),
                    "informationUri": env!("CARGO_PKG_REPOSITORY"),
                    "rules": rules,
                }
            },
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    });
    let mut text = serde_json::to_string_pretty(&log).expect("plain data serialises");
    text.push('\n');
    text
}

fn sarif_level(level: Level) -> &'static str {
    match level {
        Level::Error => "error",
        Level::Warning => "warning",
    }
}

/// A relative path as a URI reference: `/`-separated, with reserved characters escaped.
fn uri(path: &str) -> String {
    let mut out = String::new();
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn pascal(id: &str) -> String {
    heck::ToPascalCase::to_pascal_case(id.to_ascii_lowercase().as_str())
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => format!("{}{}.", f.to_uppercase(), c.as_str()),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn uris_escape_what_they_must() {
        assert_eq!(
            super::uri("services/a b/Dockerfile"),
            "services/a%20b/Dockerfile"
        );
        assert_eq!(super::uri("../x.toml"), "../x.toml");
    }
}
