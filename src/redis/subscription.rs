//! [`Subscription`]: the messages of one channel, on any topology.
//!
//! On a single node or a Sentinel-watched primary it is a plain `SUBSCRIBE` on its own
//! connection (to the primary the sentinels name at the time). On a cluster it is a
//! sharded `SSUBSCRIBE` (Redis 7) over RESP3, which reaches the node owning the
//! channel's slot and follows the slot when it moves. Either way a subscription can lose
//! messages while it reconnects: the caller proves it is current by other means (a
//! version read beside the data) and treats messages as a fast path only.

use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{PubSubSink, PubSubStream};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::RoutingInfo;
use redis::{Msg, PushInfo, PushKind};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::timeout;

use super::conn::{Link, Subscriber, cluster_builder, slot_of};
use super::describe;

/// See the module docs.
pub(crate) struct Subscription {
    inner: Inner,
    step: Duration,
}

enum Inner {
    PubSub {
        sink: PubSubSink,
        stream: PubSubStream,
    },
    Cluster {
        conn: ClusterConnection,
        pushes: UnboundedReceiver<PushInfo>,
        owner: RoutingInfo,
    },
}

impl Subscription {
    /// Subscribes to `channel`; opening and every later ping are bounded by `step`.
    pub(crate) async fn open(link: &Link, channel: &str, step: Duration) -> Result<Self, String> {
        let timed_out = || format!("redis: subscribing took longer than {step:?}");
        let client = match &link.subscriber {
            Subscriber::Single(client) => client.clone(),
            Subscriber::Sentinel(sentinel) => sentinel.primary_client().await?,
            Subscriber::Cluster {
                seeds,
                auth,
                timeout: connect_timeout,
            } => {
                let (tx, pushes) = tokio::sync::mpsc::unbounded_channel();
                let client = cluster_builder(seeds, auth, *connect_timeout)?
                    .use_protocol(redis::ProtocolVersion::RESP3)
                    .push_sender(tx)
                    .build()
                    .map_err(describe)?;
                let mut conn = timeout(step, client.get_async_connection())
                    .await
                    .map_err(|_| timed_out())?
                    .map_err(describe)?;
                timeout(step, conn.ssubscribe(channel))
                    .await
                    .map_err(|_| timed_out())?
                    .map_err(describe)?;
                return Ok(Subscription {
                    inner: Inner::Cluster {
                        conn,
                        pushes,
                        owner: slot_of(channel),
                    },
                    step,
                });
            }
        };
        let pubsub = timeout(step, client.get_async_pubsub())
            .await
            .map_err(|_| timed_out())?
            .map_err(describe)?;
        let (mut sink, stream) = pubsub.split();
        timeout(step, sink.subscribe(channel))
            .await
            .map_err(|_| timed_out())?
            .map_err(describe)?;
        Ok(Subscription {
            inner: Inner::PubSub { sink, stream },
            step,
        })
    }

    /// The next message's payload; `None` when the subscription ended or may have
    /// missed messages. On a cluster the client resubscribes by itself after a lost
    /// link or a moved slot; a lost link or the server's unsubscription still ends this
    /// subscription, so the caller reloads instead of trusting a stream with a gap.
    pub(crate) async fn next(&mut self) -> Option<Vec<u8>> {
        match &mut self.inner {
            Inner::PubSub { stream, .. } => {
                stream.next().await.map(|m| m.get_payload_bytes().to_vec())
            }
            Inner::Cluster { pushes, .. } => loop {
                let push = pushes.recv().await?;
                match push.kind {
                    PushKind::SMessage | PushKind::Message => {
                        if let Some(m) = Msg::from_push_info(push) {
                            return Some(m.get_payload_bytes().to_vec());
                        }
                    }
                    PushKind::Disconnection | PushKind::SUnsubscribe | PushKind::Unsubscribe => {
                        return None;
                    }
                    _ => {}
                }
            },
        }
    }

    /// Proves the link the messages come over answers, within the step.
    pub(crate) async fn ping(&mut self) -> Result<(), String> {
        let step = self.step;
        let answered = match &mut self.inner {
            Inner::PubSub { sink, .. } => timeout(step, sink.ping::<redis::Value>())
                .await
                .map(|r| r.map(drop)),
            Inner::Cluster { conn, owner, .. } => {
                timeout(step, conn.route_command(redis::cmd("PING"), owner.clone()))
                    .await
                    .map(|r| r.map(drop))
            }
        };
        answered
            .map_err(|_| "subscription does not answer a ping".to_owned())?
            .map_err(describe)
    }
}
