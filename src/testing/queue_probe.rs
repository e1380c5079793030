//! The queue contract: for every queue of the run, each consuming service takes a probe
//! message published to it and answers on the probe's `reply_to` queue.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::supervisor::plan::RunPlan;
use crate::supervisor::run::Settled;
use crate::workspace::Workspace;
use crate::workspace::url::AmqpUrl;

use super::amqp::AmqpClient;
use super::report::{Case, Outcome};

/// The header that marks msvc's probe messages; the worker template answers them.
pub const PROBE_HEADER: &str = "x-msvc-probe";
/// How long the consumers of a queue get to answer its probes.
const PROBE_TIMEOUT: Duration = Duration::from_secs(15);
/// A probe nobody took leaves the queue after this long.
const PROBE_EXPIRATION_MS: u64 = 10_000;

/// For every queue of the plan, each consuming service takes a probe published to it:
/// msvc publishes probe messages (marked by [`PROBE_HEADER`], with a `reply_to` queue of
/// its own) until every running consumer instance has answered, or time is up.
pub fn queue_probes(
    ws: &Workspace,
    plan: &RunPlan,
    settled: &Settled,
    running: &[String],
    amqp_url: Option<&str>,
) -> Vec<Case> {
    let mut queues: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for service in &plan.order {
        for q in &ws.manifest.services[service].consumes {
            queues.entry(q.as_str()).or_default().push(service.as_str());
        }
    }
    let mut cases = Vec::new();
    for (queue, consumers) in queues {
        let name = format!("takes a probe message from queue `{queue}`");
        let mut want: Vec<(&str, String, i32)> = Vec::new();
        for service in &consumers {
            if !running.iter().any(|r| r == service) {
                cases.push(Case::contract_skipped(
                    service,
                    &name,
                    format!("{service} is not running"),
                ));
                continue;
            }
            for i in settled
                .instances
                .iter()
                .filter(|i| i.service == *service && !i.is_infrastructure)
            {
                if let Some(pid) = i.pid {
                    want.push((service, i.label.clone(), pid));
                }
            }
        }
        if want.is_empty() {
            continue;
        }
        let start = Instant::now();
        let answered = match amqp_url {
            Some(url) => probe_queue(url, queue, &want),
            None => Err("no broker URL".to_string()),
        };
        for service in consumers.iter().filter(|s| want.iter().any(|w| w.0 == **s)) {
            let (outcome, message) = match &answered {
                Err(e) => (
                    Outcome::Failed,
                    Some(format!("cannot probe queue `{queue}`: {e}")),
                ),
                Ok((pids, published)) => {
                    let silent: Vec<String> = want
                        .iter()
                        .filter(|w| w.0 == *service && !pids.contains(&w.2))
                        .map(|w| format!("{} (pid {})", w.1, w.2))
                        .collect();
                    if silent.is_empty() {
                        (Outcome::Passed, None)
                    } else {
                        (
                            Outcome::Failed,
                            Some(format!(
                                "{} did not answer any of the {published} probe messages msvc published to `{queue}` within {}s: it does not consume the queue, or its consumer does not answer probes (src/probe.rs of the worker template)",
                                silent.join(", "),
                                PROBE_TIMEOUT.as_secs()
                            )),
                        )
                    }
                }
            };
            cases.push(Case::contract(
                service,
                &name,
                outcome,
                message,
                start.elapsed(),
            ));
        }
    }
    cases
}

/// Publishes probes to `queue` until every pid of `want` answered or time is up;
/// returns the pids that answered and how many probes were published.
fn probe_queue(
    url: &str,
    queue: &str,
    want: &[(&str, String, i32)],
) -> std::result::Result<(Vec<i32>, usize), String> {
    // lapin is built here with no certificate store, so it could not verify a TLS
    // broker; the probe speaks plain AMQP only.
    let parsed = AmqpUrl::parse(url)
        .filter(|u| !u.tls)
        .ok_or_else(|| "the broker URL does not read as amqp://".to_string())?;
    let mut client =
        AmqpClient::connect(&parsed, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    let reply_to = client.declare("").map_err(|e| e.to_string())?;
    client.declare(queue).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + PROBE_TIMEOUT;
    let mut answered: Vec<i32> = Vec::new();
    let mut published = 0;
    let body = br#"{"msvc_probe":true}"#;
    while Instant::now() < deadline && !want.iter().all(|w| answered.contains(&w.2)) {
        published += 1;
        let id = format!("msvc-test-{}-{published}", std::process::id());
        client
            .publish(
                queue,
                body,
                &[(PROBE_HEADER, "1")],
                &reply_to,
                &id,
                PROBE_EXPIRATION_MS,
            )
            .map_err(|e| e.to_string())?;
        // Each round gives the consumers a second to answer before the next probe.
        let round = Instant::now() + Duration::from_secs(1);
        while Instant::now() < round {
            match client.get(&reply_to).map_err(|e| e.to_string())? {
                Some(reply) => {
                    if let Some(pid) = serde_json::from_slice::<serde_json::Value>(&reply)
                        .ok()
                        .and_then(|v| v["pid"].as_i64())
                        .and_then(|p| i32::try_from(p).ok())
                        && !answered.contains(&pid)
                    {
                        answered.push(pid);
                    }
                }
                None => std::thread::sleep(Duration::from_millis(50)),
            }
            if want.iter().all(|w| answered.contains(&w.2)) {
                break;
            }
        }
    }
    client.close();
    Ok((answered, published))
}
