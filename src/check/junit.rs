//! `--format junit`: `JUnit` XML, one test case per check that ran. A check with errors
//! fails; its warnings are kept in the case's output.

use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite, XmlString};

use super::Report;
use super::catalog::CHECKS;
use super::output::{PathStyle, render};
use crate::workspace::diagnostic::Level;

pub fn junit(report: &Report, paths: &PathStyle) -> String {
    let mut suite = TestSuite::new("msvc check");
    for c in CHECKS {
        if report.levels.level(c.id).is_none()
            || (super::catalog::AGAINST_ONLY.contains(&c.id) && !report.ran_breaking)
        {
            continue;
        }
        let found: Vec<_> = report.diagnostics.iter().filter(|d| d.id == c.id).collect();
        let errors = found.iter().filter(|d| d.level == Level::Error).count();
        let body: String = found
            .iter()
            .map(|d| render(d, paths, false) + "\n")
            .collect();
        let status = if errors > 0 {
            let first = &found[0].message;
            let message = if found.len() == 1 {
                first.clone()
            } else {
                format!("{} problems, the first: {first}", found.len())
            };
            let mut failure = TestCaseStatus::non_success(NonSuccessKind::Failure);
            failure
                .set_message(xml_text(&message))
                .set_type(c.id)
                .set_description(xml_text(&body));
            failure
        } else {
            TestCaseStatus::success()
        };
        let mut case = TestCase::new(c.id, status);
        case.set_classname(format!("msvc.check.{}", c.family.as_str()));
        if errors == 0 && !found.is_empty() {
            case.set_system_out(xml_text(&body));
        }
        suite.add_test_case(case);
    }
    let mut xml = quick_junit::Report::new("msvc check");
    xml.add_test_suite(suite);
    xml.to_string()
        .expect("JUnit XML of strings is written into memory")
}

/// Text for `JUnit` XML: colour escapes dropped, and the characters XML 1.0 cannot hold
/// shown as U+FFFD, so a reader still sees that something was there.
pub(crate) fn xml_text(s: &str) -> XmlString {
    let kept: String = s
        .chars()
        .map(|c| match c {
            // ESC stays for XmlString, which takes out the colour sequence it starts.
            '\t' | '\n' | '\r' | '\u{1b}' => c,
            c if c < ' ' || c == '\u{FFFE}' || c == '\u{FFFF}' => '\u{FFFD}',
            c => c,
        })
        .collect();
    XmlString::new(kept)
}

#[cfg(test)]
mod tests {
    use super::xml_text;

    #[test]
    fn escapes_markup_and_control_characters() {
        assert_eq!(
            xml_text("<a & \"b\">\u{1}\u{FFFE}").as_str(),
            "<a & \"b\">\u{FFFD}\u{FFFD}"
        );
        assert_eq!(xml_text("\u{1b}[31merror\u{1b}[0m: x").as_str(), "error: x");
        // Markup is escaped where the XML is written, and reads back as it was.
        let mut case = quick_junit::TestCase::new("a", quick_junit::TestCaseStatus::success());
        case.set_system_out(xml_text("<a & \"b\">\u{1}"));
        let mut suite = quick_junit::TestSuite::new("s");
        suite.add_test_case(case);
        let mut report = quick_junit::Report::new("r");
        report.add_test_suite(suite);
        let xml = report.to_string().unwrap();
        assert!(
            xml.contains("<system-out>&lt;a &amp; &quot;b&quot;&gt;\u{FFFD}</system-out>"),
            "{xml}"
        );
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let out = doc
            .descendants()
            .find(|n| n.has_tag_name("system-out"))
            .unwrap();
        assert_eq!(out.text(), Some("<a & \"b\">\u{FFFD}"));
    }
}
