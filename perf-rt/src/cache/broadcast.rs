//! Receiving invalidations from the other instances over Redis pub/sub.
//!
//! Each instance subscribes to `<namespace>:inv`; messages are `"<instance> <kind> <value>"`
//! with kind `t` (tag), `k` (key) or `*` (clear). An instance ignores its own messages: it has
//! applied them already. Whenever the subscription is (re)established the in-memory tier is
//! flushed, because messages sent while it was down are lost (pub/sub does not queue).

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;

use super::memory::MemoryTier;
use super::redis::RedisTier;

/// Applies one message to this instance's in-memory tier.
pub(crate) fn apply(memory: &MemoryTier, own_instance: &str, payload: &str) {
    let mut parts = payload.splitn(3, ' ');
    let (Some(sender), Some(kind)) = (parts.next(), parts.next()) else {
        return;
    };
    if sender == own_instance {
        return;
    }
    let value = parts.next().unwrap_or_default();
    match kind {
        "t" => memory.invalidate_tag(value),
        "k" => memory.invalidate(value),
        "*" => memory.clear(),
        _ => tracing::debug!(payload, "query cache: unknown invalidation message"),
    }
}

/// Keeps a subscription alive for as long as the cache lives (the task is aborted when the
/// cache is dropped). `ready` fires after the first successful subscription.
pub(crate) async fn subscribe_loop(
    tier: Arc<RedisTier>,
    memory: Arc<MemoryTier>,
    ready: tokio::sync::oneshot::Sender<()>,
) {
    let channel = tier.channel();
    let instance = tier.settings.instance.clone();
    let mut ready = Some(ready);
    let min_backoff = Duration::from_millis(50);
    let mut backoff = min_backoff;
    let mut lost = false;
    loop {
        let connect = async {
            let mut pubsub = tier.client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        if let Ok(Ok(pubsub)) = tokio::time::timeout(tier.settings.timeout * 4, connect).await {
            backoff = min_backoff;
            memory.flush();
            if lost {
                tracing::info!("query cache: invalidation channel subscribed again");
                lost = false;
            }
            if let Some(ready) = ready.take() {
                let _ = ready.send(());
            }
            let mut messages = pubsub.into_on_message();
            while let Some(msg) = messages.next().await {
                if let Ok(payload) = std::str::from_utf8(msg.get_payload_bytes()) {
                    apply(&memory, &instance, payload);
                }
            }
            if !lost {
                tracing::warn!(
                    "query cache: invalidation channel lost; reconnecting (memory tier is flushed on return)"
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
    fn messages_apply_except_own() {
        let m = MemoryTier::new(MemoryCapacity::Entries(10), CacheMetrics::default());
        let put = |k| m.insert(k, 1u8, Duration::from_secs(9), &["t 1"], &[], 1, m.seq());
        put("a");
        apply(&m, "me", "me t t 1");
        assert_eq!(m.get::<u8>("a"), Some(1));
        apply(&m, "me", "other t t 1");
        assert_eq!(m.get::<u8>("a"), None);
        put("b");
        apply(&m, "me", "other k b");
        assert_eq!(m.get::<u8>("b"), None);
        put("c");
        apply(&m, "me", "other * ");
        assert_eq!(m.get::<u8>("c"), None);
    }
}
