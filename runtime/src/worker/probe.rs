//! `msvc test`'s queue probe: a message marked with the [`PROBE_HEADER`] header is
//! acknowledged without calling the handler or counting it in the metrics, and answered
//! on its `reply_to` queue with this service's name, the queue and the process id, so
//! `msvc test` sees that each consumer takes messages from the queue.

use lapin::{
    BasicProperties, Channel,
    message::Delivery,
    options::{BasicAckOptions, BasicPublishOptions},
    types::ShortString,
};

/// The header that marks a probe message (any value).
pub const PROBE_HEADER: &str = "x-msvc-probe";

/// Whether a message with these properties is a probe.
pub fn is_probe(properties: &BasicProperties) -> bool {
    properties
        .headers()
        .as_ref()
        .is_some_and(|h| h.inner().keys().any(|k| k.as_str() == PROBE_HEADER))
}

/// The reply to a probe taken from `queue`.
pub fn reply_body(queue: &str, service: &str) -> Vec<u8> {
    serde_json::json!({
        "service": service,
        "queue": queue,
        "pid": std::process::id(),
    })
    .to_string()
    .into_bytes()
}

/// Answers `delivery` when it is a probe: replies on its `reply_to` queue through
/// `publisher` (a channel in confirm mode), then acks it. Returns whether it was one.
pub async fn answer(
    delivery: &Delivery,
    queue: &str,
    service: &str,
    publisher: &Channel,
) -> Result<bool, lapin::Error> {
    if !is_probe(&delivery.properties) {
        return Ok(false);
    }
    if let Some(reply_to) = delivery.properties.reply_to() {
        let mut properties =
            BasicProperties::default().with_content_type(ShortString::from("application/json"));
        if let Some(id) = delivery.properties.correlation_id() {
            properties = properties.with_correlation_id(id.clone());
        }
        publisher
            .basic_publish(
                ShortString::default(),
                reply_to.clone(),
                BasicPublishOptions::default(),
                &reply_body(queue, service),
                properties,
            )
            .await?
            .await?;
    }
    delivery.ack(BasicAckOptions::default()).await?;
    tracing::debug!(queue, "answered a probe of msvc test");
    Ok(true)
}

#[cfg(test)]
mod tests {
    use lapin::types::{AMQPValue, FieldTable};

    use super::*;

    #[test]
    fn a_probe_is_marked_by_its_header() {
        assert!(!is_probe(&BasicProperties::default()));
        let mut headers = FieldTable::default();
        headers.insert("x-msvc-attempts".into(), AMQPValue::LongLongInt(1));
        assert!(!is_probe(
            &BasicProperties::default().with_headers(headers.clone())
        ));
        headers.insert(PROBE_HEADER.into(), AMQPValue::LongString("1".into()));
        assert!(is_probe(&BasicProperties::default().with_headers(headers)));
    }

    #[test]
    fn the_reply_names_the_service_and_the_process() {
        let reply: serde_json::Value =
            serde_json::from_slice(&reply_body("orders", "audit-worker")).unwrap();
        assert_eq!(reply["service"], "audit-worker");
        assert_eq!(reply["queue"], "orders");
        assert_eq!(reply["pid"], std::process::id());
    }
}
