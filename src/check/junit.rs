//! `--format junit`: `JUnit` XML, one test case per check that ran. A check with errors
//! fails; its warnings are kept in the case's output.

use std::fmt::Write as _;

use super::Report;
use super::catalog::CHECKS;
use super::diagnostic::Level;
use super::output::{PathStyle, render};

pub fn junit(report: &Report, paths: &PathStyle) -> String {
    let mut cases = String::new();
    let mut tests = 0;
    let mut failures = 0;
    for c in CHECKS {
        if report.levels.level(c.id).is_none() || (c.id == "PROTO_BREAKING" && !report.ran_breaking)
        {
            continue;
        }
        tests += 1;
        let found: Vec<_> = report.diagnostics.iter().filter(|d| d.id == c.id).collect();
        let errors = found.iter().filter(|d| d.level == Level::Error).count();
        let _ = write!(
            cases,
            "    <testcase name=\"{}\" classname=\"msvc.check.{}\"",
            c.id,
            c.family.as_str()
        );
        if found.is_empty() {
            cases.push_str("/>\n");
            continue;
        }
        cases.push_str(">\n");
        let body: String = found
            .iter()
            .map(|d| render(d, paths, false) + "\n")
            .collect();
        if errors > 0 {
            failures += 1;
            let first = &found[0].message;
            let _ = writeln!(
                cases,
                "      <failure message=\"{}\" type=\"{}\">{}</failure>",
                escape(&if found.len() == 1 {
                    first.clone()
                } else {
                    format!("{} problems, the first: {first}", found.len())
                }),
                c.id,
                escape(&body)
            );
        } else {
            let _ = writeln!(cases, "      <system-out>{}</system-out>", escape(&body));
        }
        cases.push_str("    </testcase>\n");
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <testsuites name=\"msvc check\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\">\n  \
         <testsuite name=\"msvc check\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\">\n\
         {cases}  </testsuite>\n</testsuites>\n"
    )
}

/// Escapes text for XML attributes and content; characters XML 1.0 cannot hold become U+FFFD.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_markup_and_control_characters() {
        assert_eq!(
            super::escape("<a & \"b\">\u{1}"),
            "&lt;a &amp; &quot;b&quot;&gt;\u{FFFD}"
        );
    }
}
