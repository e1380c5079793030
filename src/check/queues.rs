//! Queue checks: every consumed queue has a publisher, every published queue a consumer,
//! and a broker is declared when any queue is used.

use std::collections::BTreeMap;

use super::Context;
use crate::workspace::diagnostic::Diagnostic;
use crate::workspace::names::validate_queue_name;

pub fn check(ctx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    let services = &ctx.ws.manifest.services;
    // Queue -> (service, key, index) of every mention.
    let mut publishers: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut consumers: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    // Invalid names are QUEUE_NAME's to report; pairing them would only add noise.
    let valid = |q: &&String| validate_queue_name(q).is_ok();
    for (name, svc) in services {
        for q in svc.publishes.iter().filter(valid) {
            publishers.entry(q).or_default().push(name);
        }
        for q in svc.consumes.iter().filter(valid) {
            consumers.entry(q).or_default().push(name);
        }
    }
    // A service whose table does not read still pairs the queues it names.
    for (name, queues) in ctx.broken_queues {
        for q in queues.publishes.iter().filter(valid) {
            publishers.entry(q).or_default().push(name);
        }
        for q in queues.consumes.iter().filter(valid) {
            consumers.entry(q).or_default().push(name);
        }
    }
    let mut first_use: Option<[String; 4]> = None;
    for (name, svc) in services {
        for (key, list) in [("publishes", &svc.publishes), ("consumes", &svc.consumes)] {
            for (i, q) in list.iter().enumerate() {
                let index = i.to_string();
                let keys = ["services", name.as_str(), key, index.as_str()];
                if first_use.is_none() {
                    first_use = Some(keys.map(ToString::to_string));
                }
                if !valid(&q) {
                    continue;
                }
                if key == "consumes" && !publishers.contains_key(q.as_str()) {
                    out.push(
                        Diagnostic::new(
                            "QUEUE_NO_PUBLISHER",
                            format!("`{name}` consumes `{q}`, but no service publishes to it"),
                        )
                        .at(ctx.locate(&keys))
                        .hint(near_miss(q, &publishers).unwrap_or_else(|| {
                            format!("add it to a publisher: `msvc link SERVICE --publishes {q}`")
                        })),
                    );
                }
                if key == "publishes" && !consumers.contains_key(q.as_str()) {
                    out.push(
                        Diagnostic::new(
                            "QUEUE_NO_CONSUMER",
                            format!("`{name}` publishes to `{q}`, but no service consumes it"),
                        )
                        .at(ctx.locate(&keys))
                        .hint(near_miss(q, &consumers).unwrap_or_else(|| {
                            format!(
                                "add a worker for it: `msvc new {}-worker --worker --consumes {q}`",
                                q.replace(['_', '.'], "-")
                            )
                        })),
                    );
                }
            }
        }
    }
    if ctx.ws.manifest.broker.is_none()
        && let Some(keys) = first_use
    {
        let queues = ctx.ws.manifest.queues();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        out.push(
            Diagnostic::new(
                "BROKER_MISSING",
                format!(
                    "services use {} ({}) but services.toml has no [broker]",
                    if queues.len() == 1 {
                        "a queue"
                    } else {
                        "queues"
                    },
                    queues
                        .iter()
                        .map(|q| format!("`{q}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
            .at(ctx.locate(&keys))
            .hint(format!(
                "add `[broker]` with `kind = \"rabbitmq\"` and `url = \"{}\"`",
                crate::workspace::model::DEFAULT_AMQP_URL
            )),
        );
    }
}

/// "did you mean" among the queues the other side uses.
fn near_miss(queue: &str, other_side: &BTreeMap<&str, Vec<&str>>) -> Option<String> {
    let names: Vec<String> = other_side.keys().map(ToString::to_string).collect();
    let suggestion = crate::workspace::validate::did_you_mean(queue, names.iter())?;
    let found = suggestion
        .trim_start_matches("did you mean `")
        .trim_end_matches("`?");
    let who = other_side
        .get(found)
        .map(|v| v.join(", "))
        .unwrap_or_default();
    Some(format!("{suggestion} (used by {who})"))
}
