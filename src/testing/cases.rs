//! The user's own contract cases (`contracts.toml`, read by [`crate::workspace::cases`]),
//! sent to the running services and judged.

use std::time::Instant;

use crate::supervisor::plan::RunPlan;
use crate::workspace::cases::UserCase;

use super::http::{excerpt, http};
use super::report::{Case, Outcome};

/// Whether `actual` has every field of `expected` with the same value (objects
/// recursively; anything else must be equal).
pub fn json_matches(expected: &serde_json::Value, actual: &serde_json::Value) -> bool {
    match (expected, actual) {
        (serde_json::Value::Object(e), serde_json::Value::Object(a)) => e
            .iter()
            .all(|(k, v)| a.get(k).is_some_and(|got| json_matches(v, got))),
        (serde_json::Value::Number(e), serde_json::Value::Number(a)) => e.as_f64() == a.as_f64(),
        _ => expected == actual,
    }
}

/// Sends each case to its service and judges the answer.
pub fn run(cases: &[UserCase], plan: &RunPlan, running: &[String]) -> Vec<Case> {
    cases
        .iter()
        .map(|c| {
            let name = c.name();
            if !running.contains(&c.service) {
                return Case::contract_skipped(
                    &c.service,
                    &name,
                    format!("{} is not running", c.service),
                );
            }
            let Some(port) = plan
                .instances
                .iter()
                .find(|i| i.service == c.service)
                .and_then(|i| i.port)
            else {
                return Case::contract_skipped(
                    &c.service,
                    &name,
                    format!("{} has no port", c.service),
                );
            };
            let start = Instant::now();
            let body = c.body.as_ref().map(ToString::to_string);
            let (outcome, message) = match http(port, &c.method, &c.path, body.as_deref()) {
                Err(e) => (
                    Outcome::Failed,
                    Some(format!("{} {}: no answer ({e})", c.method, c.path)),
                ),
                Ok((status, text)) => check_answer(c, status, &text),
            };
            Case::contract(&c.service, &name, outcome, message, start.elapsed())
        })
        .collect()
}

fn check_answer(c: &UserCase, status: u16, text: &str) -> (Outcome, Option<String>) {
    if let Some(want) = c.status
        && want != status
    {
        return (
            Outcome::Failed,
            Some(format!(
                "{} {}: expected status {want}, got {status}: {}",
                c.method,
                c.path,
                excerpt(text)
            )),
        );
    }
    if let Some(want) = &c.json {
        let got: serde_json::Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(_) => {
                return (
                    Outcome::Failed,
                    Some(format!(
                        "{} {}: expected JSON, got: {}",
                        c.method,
                        c.path,
                        excerpt(text)
                    )),
                );
            }
        };
        if !json_matches(want, &got) {
            return (
                Outcome::Failed,
                Some(format!(
                    "{} {}: expected JSON with {want}, got {got}",
                    c.method, c.path
                )),
            );
        }
    }
    (Outcome::Passed, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_fields_are_a_subset() {
        let actual = serde_json::json!({"id": 1, "name": "Alice", "tags": {"a": 1, "b": 2}});
        assert!(json_matches(&serde_json::json!({"id": 1.0}), &actual));
        assert!(json_matches(
            &serde_json::json!({"tags": {"b": 2}}),
            &actual
        ));
        assert!(!json_matches(&serde_json::json!({"id": 2}), &actual));
        assert!(!json_matches(&serde_json::json!({"email": "x"}), &actual));
    }
}
