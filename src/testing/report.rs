//! The result of `msvc test`: one case per test, a table per service, and the text,
//! JSON and `JUnit` renderings of it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};
use serde::Serialize;

use crate::check::junit::xml_text;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Passed,
    Failed,
    Skipped,
}

/// Which part of `msvc test` a case comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Suite {
    /// The service's own tests (`cargo test`).
    Unit,
    /// A contract test against the running system.
    Contract,
}

impl Suite {
    pub fn as_str(self) -> &'static str {
        match self {
            Suite::Unit => "unit",
            Suite::Contract => "contract",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Case {
    pub service: String,
    pub suite: Suite,
    pub name: String,
    pub outcome: Outcome,
    /// Why it failed or was skipped, for the user.
    pub message: Option<String>,
    #[serde(serialize_with = "secs")]
    pub time: Duration,
}

impl Case {
    /// A contract case.
    pub fn contract(
        service: &str,
        name: &str,
        outcome: Outcome,
        message: Option<String>,
        time: Duration,
    ) -> Self {
        Self {
            service: service.to_string(),
            suite: Suite::Contract,
            name: name.to_string(),
            outcome,
            message,
            time,
        }
    }

    /// A contract case not run, and why.
    pub fn contract_skipped(service: &str, name: &str, why: String) -> Self {
        Self::contract(service, name, Outcome::Skipped, Some(why), Duration::ZERO)
    }
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's signature
fn secs<S: serde::Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1000.0).round() / 1000.0)
}

/// Counts of one service.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Tally {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    #[serde(serialize_with = "secs")]
    pub time: Duration,
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub cases: Vec<Case>,
    /// The last output lines of each service that failed a contract test.
    pub logs: BTreeMap<String, Vec<String>>,
}

impl Report {
    pub fn failed(&self) -> bool {
        self.cases.iter().any(|c| c.outcome == Outcome::Failed)
    }

    /// Per service, in first-seen order.
    pub fn tallies(&self) -> Vec<(String, Tally)> {
        let mut out: Vec<(String, Tally)> = Vec::new();
        for c in &self.cases {
            let i = if let Some(i) = out.iter().position(|(s, _)| *s == c.service) {
                i
            } else {
                out.push((c.service.clone(), Tally::default()));
                out.len() - 1
            };
            let t = &mut out[i].1;
            match c.outcome {
                Outcome::Passed => t.passed += 1,
                Outcome::Failed => t.failed += 1,
                Outcome::Skipped => t.skipped += 1,
            }
            t.time += c.time;
        }
        out
    }

    /// The summary table, then each failure with its message and the service's last lines.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let tallies = self.tallies();
        let width = tallies
            .iter()
            .map(|(s, _)| s.len())
            .chain([7])
            .max()
            .unwrap_or(7);
        let failures: Vec<&Case> = self
            .cases
            .iter()
            .filter(|c| c.outcome == Outcome::Failed)
            .collect();
        for c in &failures {
            let _ = writeln!(
                out,
                "FAILED {} {} `{}`",
                c.service,
                c.suite.as_str(),
                c.name
            );
            if let Some(m) = &c.message {
                for line in m.lines() {
                    let _ = writeln!(out, "  {line}");
                }
            }
        }
        for (service, lines) in &self.logs {
            let _ = writeln!(out, "last lines of {service}:");
            if lines.is_empty() {
                let _ = writeln!(out, "  (it printed nothing)");
            }
            for line in lines {
                let _ = writeln!(out, "  | {line}");
            }
        }
        if !failures.is_empty() || !self.logs.is_empty() {
            out.push('\n');
        }
        let _ = writeln!(
            out,
            "{:<width$}  {:>6}  {:>6}  {:>7}  {:>7}",
            "service", "passed", "failed", "skipped", "time"
        );
        let mut total = Tally::default();
        for (service, t) in &tallies {
            let _ = writeln!(
                out,
                "{service:<width$}  {:>6}  {:>6}  {:>7}  {:>6.1}s",
                t.passed,
                t.failed,
                t.skipped,
                t.time.as_secs_f64()
            );
            total.passed += t.passed;
            total.failed += t.failed;
            total.skipped += t.skipped;
            total.time += t.time;
        }
        let _ = writeln!(
            out,
            "{:<width$}  {:>6}  {:>6}  {:>7}  {:>6.1}s",
            "total",
            total.passed,
            total.failed,
            total.skipped,
            total.time.as_secs_f64()
        );
        let _ = writeln!(
            out,
            "\ntest result: {}",
            if self.failed() { "FAILED" } else { "ok" }
        );
        out
    }

    /// `JUnit` XML: one test suite per service, one test case per case.
    pub fn junit(&self) -> String {
        let mut xml = quick_junit::Report::new("msvc test");
        xml.set_time(self.cases.iter().map(|c| c.time).sum());
        for (service, t) in self.tallies() {
            let mut suite = TestSuite::new(xml_text(&service));
            suite.set_time(t.time);
            for c in self.cases.iter().filter(|c| c.service == service) {
                let message = c.message.as_deref().unwrap_or("");
                let first = message.lines().next().unwrap_or("");
                let status = match c.outcome {
                    Outcome::Passed => TestCaseStatus::success(),
                    Outcome::Skipped => {
                        let mut skipped = TestCaseStatus::skipped();
                        skipped.set_message(xml_text(first));
                        skipped
                    }
                    Outcome::Failed => {
                        let mut body = message.to_string();
                        if let Some(lines) = self.logs.get(&service) {
                            body.push_str("\nlast lines of the service:\n");
                            for l in lines {
                                body.push_str(l);
                                body.push('\n');
                            }
                        }
                        let mut failure = TestCaseStatus::non_success(NonSuccessKind::Failure);
                        failure
                            .set_message(xml_text(first))
                            .set_type(c.suite.as_str())
                            .set_description(xml_text(&body));
                        failure
                    }
                };
                let mut case = TestCase::new(xml_text(&c.name), status);
                case.set_classname(xml_text(&format!("{service}.{}", c.suite.as_str())))
                    .set_time(c.time);
                suite.add_test_case(case);
            }
            xml.add_test_suite(suite);
        }
        xml.to_string()
            .expect("JUnit XML of strings is written into memory")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(service: &str, name: &str, outcome: Outcome) -> Case {
        Case {
            service: service.to_string(),
            suite: Suite::Contract,
            name: name.to_string(),
            outcome,
            message: (outcome == Outcome::Failed).then(|| "it <broke>".to_string()),
            time: Duration::from_millis(250),
        }
    }

    #[test]
    fn tallies_and_renders() {
        let mut report = Report {
            cases: vec![
                case("user-api", "health", Outcome::Passed),
                case("user-api", "GET /user/{id}", Outcome::Failed),
                case("email-worker", "health", Outcome::Skipped),
            ],
            ..Report::default()
        };
        report
            .logs
            .insert("user-api".to_string(), vec!["boom".to_string()]);
        assert!(report.failed());
        let text = report.text();
        assert!(text.contains("FAILED user-api contract `GET /user/{id}`\n  it <broke>"));
        assert!(text.contains("last lines of user-api:\n  | boom"));
        assert!(
            text.contains("user-api           1       1        0     0.5s"),
            "{text}"
        );
        let xml = report.junit();
        // Read as XML: the writer decides the attributes' order.
        let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}:\n{xml}"));
        let root = doc.root_element();
        assert_eq!(
            [
                root.attribute("tests"),
                root.attribute("failures"),
                root.attribute("skipped")
            ],
            [Some("3"), Some("1"), Some("1")],
            "{xml}"
        );
        let suite = root
            .children()
            .find(|n| n.has_tag_name("testsuite") && n.attribute("name") == Some("user-api"))
            .unwrap_or_else(|| panic!("{xml}"));
        assert_eq!(
            [suite.attribute("tests"), suite.attribute("failures")],
            [Some("2"), Some("1")],
            "{xml}"
        );
        let failure = suite
            .descendants()
            .find(|n| n.has_tag_name("failure"))
            .unwrap_or_else(|| panic!("{xml}"));
        assert_eq!(failure.attribute("message"), Some("it <broke>"));
        assert_eq!(failure.attribute("type"), Some("contract"));
        assert_eq!(
            failure.text(),
            Some("it <broke>\nlast lines of the service:\nboom\n")
        );
        assert!(xml.contains("message=\"it &lt;broke&gt;\""));
        assert!(xml.contains("<skipped message=\"\"/>"));
    }
}
