//! Receiving invalidations from the other instances over Redis pub/sub.
//!
//! Each instance subscribes to `<namespace>:inv` and `<namespace>:ack`. Invalidations are
//! `"<instance> <id> <kind> <value>"` with kind `t` (tag), `k` (key) or `*` (clear): an
//! instance applies the others' to its memory tier, then sends a receipt
//! `"<sender> <id>"` on the ack channel; its own it only counts as received.
//!
//! The memory tier is trusted only while the subscription is known to be alive: it is
//! pinged every liveness interval, and a ping that fails or goes unanswered for a timeout
//! (a half-open connection, a failover without a reset) drops it. From then until it is
//! established again, reads skip the memory tier (this instance could not hear the
//! others' writes); when it is back, the tier is flushed and trusted again.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;

use super::memory::MemoryTier;
use super::redis::RedisTier;

/// What one invalidation message asks for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Message<'a> {
    pub(crate) sender: &'a str,
    pub(crate) id: u64,
    pub(crate) kind: &'a str,
    pub(crate) value: &'a str,
}

pub(crate) fn parse(payload: &str) -> Option<Message<'_>> {
    let mut parts = payload.splitn(4, ' ');
    let sender = parts.next()?;
    let id = parts.next()?.parse().ok()?;
    let kind = parts.next()?;
    let value = parts.next().unwrap_or_default();
    Some(Message {
        sender,
        id,
        kind,
        value,
    })
}

/// Applies one message of another instance to this instance's memory tier; `false` for an
/// unknown kind.
pub(crate) fn apply(memory: &MemoryTier, msg: &Message<'_>) -> bool {
    match msg.kind {
        "t" => memory.invalidate_tag(msg.value),
        "k" => memory.invalidate(msg.value),
        "*" => memory.clear(),
        _ => return false,
    }
    memory.count_invalidation();
    true
}

/// Keeps a subscription alive for as long as the cache lives (the task is aborted when the
/// cache is dropped). `ready` fires after the first successful subscription.
pub(crate) async fn subscribe_loop(
    tier: Arc<RedisTier>,
    memory: Arc<MemoryTier>,
    ready: tokio::sync::oneshot::Sender<()>,
) {
    let (channel, acks) = (tier.channel(), tier.ack_channel());
    let instance = tier.settings.instance.clone();
    let timeout = tier.settings.timeout;
    let mut ready = Some(ready);
    let min_backoff = Duration::from_millis(50);
    let mut backoff = min_backoff;
    let mut lost = false;
    loop {
        let connect = async {
            let mut pubsub = tier.client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            pubsub.subscribe(&acks).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        if let Ok(Ok(pubsub)) = tokio::time::timeout(timeout * 4, connect).await {
            backoff = min_backoff;
            // Subscribed first, flushed second: nothing published from now on is missed,
            // and nothing loaded before survives.
            memory.set_trusted(true);
            if lost {
                tracing::info!("query cache: invalidation channel subscribed again");
                lost = false;
            }
            if let Some(ready) = ready.take() {
                let _ = ready.send(());
            }
            let (mut sink, mut messages) = pubsub.split();
            let mut liveness = tokio::time::interval(tier.settings.liveness_interval);
            liveness.tick().await;
            let why = loop {
                tokio::select! {
                    msg = messages.next() => {
                        let Some(msg) = msg else { break "connection closed" };
                        let Ok(payload) = std::str::from_utf8(msg.get_payload_bytes()) else {
                            continue;
                        };
                        if msg.get_channel_name() == acks {
                            if let Some((to, id)) = payload.split_once(' ')
                                && to == instance
                                && let Ok(id) = id.parse()
                            {
                                tier.receipt(id);
                            }
                            continue;
                        }
                        let Some(m) = parse(payload) else {
                            tracing::debug!(payload, "query cache: unknown invalidation message");
                            continue;
                        };
                        if m.sender == instance {
                            tier.receipt(m.id);
                        } else if apply(&memory, &m) {
                            tier.acknowledge(m.sender, m.id).await;
                        }
                    }
                    _ = liveness.tick() => {
                        let ping = tokio::time::timeout(timeout, sink.ping::<redis::Value>()).await;
                        if !matches!(ping, Ok(Ok(_))) {
                            break "no answer to a ping";
                        }
                    }
                }
            };
            // Until the subscription is back, this instance cannot hear invalidations.
            memory.set_trusted(false);
            if !lost {
                tracing::warn!(
                    reason = why,
                    "query cache: invalidation channel lost; reads skip the memory tier until it is back"
                );
                lost = true;
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(tier.settings.retry_interval.max(min_backoff));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::memory::MemoryCapacity;
    use crate::cache::metrics::CacheMetrics;

    #[test]
    fn messages_parse_and_apply() {
        let m = MemoryTier::new(MemoryCapacity::Entries(10), CacheMetrics::default());
        let put = |k| {
            let s = m.snapshot(k, &["t 1"]);
            m.insert(k, 1u8, Duration::from_secs(9), &["t 1"], 1, &s)
        };
        put("a");
        let msg = parse("other 7 t t 1").unwrap();
        assert_eq!(
            msg,
            Message {
                sender: "other",
                id: 7,
                kind: "t",
                value: "t 1"
            }
        );
        assert!(apply(&m, &msg));
        assert_eq!(m.get::<u8>("a"), None);
        put("b");
        assert!(apply(&m, &parse("other 8 k b").unwrap()));
        assert_eq!(m.get::<u8>("b"), None);
        put("c");
        assert!(apply(&m, &parse("other 9 * ").unwrap()));
        assert_eq!(m.get::<u8>("c"), None);
        assert!(parse("other x t t").is_none());
        assert!(!apply(&m, &parse("other 1 ? x").unwrap()));
    }
}
