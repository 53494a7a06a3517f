//! What the example nodes (the TAP node, the firmware) do with events: one line per event,
//! and an answer to every GENERIC_MSG request — so a test can read a node's view from its
//! output and check a request/reply round trip. Application behaviour, not protocol.
//!
//! ```text
//! node_up cluster=1 node=2
//! tag_changed cluster=1 tag="vip" state=active reason="election (no active node reachable)"
//! received cluster=1 source=1 kind=request tag="1-1-…" msg="hello"
//! ```
//!
//! Strings a peer supplied (tags, payloads) are printed escaped (`{:?}` of their lossy UTF-8),
//! so they can never break a line or inject a control sequence.

use alloc::borrow::Cow;
use alloc::vec::Vec;
use core::fmt;

use clusterer_core::message::{GenericKind, GenericMsg, RoutedBody};
use clusterer_core::{ClusterId, Event, NodeId, SendStatus};

use crate::Handle;

/// Prefix of the payload of the answer to a request.
pub const REPLY_PREFIX: &[u8] = b"reply:";

/// An event as one output line.
#[derive(Debug)]
pub struct EventLine<'a>(pub &'a Event);

fn lossy(bytes: &[u8]) -> Cow<'_, str> {
    alloc::string::String::from_utf8_lossy(bytes)
}

impl fmt::Display for EventLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Event::NodeStateChanged { cluster, node, up } => write!(
                f,
                "{} cluster={cluster} node={node}",
                if *up { "node_up" } else { "node_down" }
            ),
            Event::ShtagChanged {
                name,
                cluster,
                state,
                reason,
            } => write!(
                f,
                "tag_changed cluster={cluster} tag={name:?} state={} reason={reason:?}",
                state.name()
            ),
            Event::Received {
                cluster,
                source,
                body: RoutedBody::GenericMsg(m),
                ..
            } => write!(
                f,
                "received cluster={cluster} source={source} kind={} tag={:?} msg={:?}",
                match m.kind {
                    GenericKind::Request => "request",
                    GenericKind::Reply => "reply",
                },
                lossy(&m.tag),
                lossy(&m.payload)
            ),
            Event::Received {
                cluster, source, ..
            } => write!(f, "received cluster={cluster} source={source} kind=other"),
        }
    }
}

/// The request in `event`, if it is a GENERIC_MSG request: (cluster, source, message).
pub fn request(
    event: &Event,
) -> Option<(
    clusterer_core::ClusterId,
    clusterer_core::NodeId,
    &GenericMsg,
)> {
    match event {
        Event::Received {
            cluster,
            source,
            body: RoutedBody::GenericMsg(m),
            ..
        } if m.kind == GenericKind::Request => Some((*cluster, *source, m)),
        _ => None,
    }
}

/// Answers a GENERIC_MSG request in `event` with a reply carrying its tag and
/// `reply:<payload>`: the cluster, the requester and how the send went; `None` when
/// `event` is no request.
pub fn answer_request<const SOCKETS: usize>(
    handle: &Handle<SOCKETS>,
    event: &Event,
) -> Option<(ClusterId, NodeId, SendStatus)> {
    let (cluster, source, m) = request(event)?;
    let mut reply = Vec::with_capacity(REPLY_PREFIX.len() + m.payload.len());
    reply.extend_from_slice(REPLY_PREFIX);
    reply.extend_from_slice(&m.payload);
    let status = handle.send_generic(cluster, source, GenericKind::Reply, &m.tag, &reply);
    Some((cluster, source, status))
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::string::ToString;

    use super::*;
    use clusterer_core::ShtagState;

    #[test]
    fn lines_name_the_event_and_escape_what_peers_sent() {
        let n = |i| NodeId::new(i).unwrap();
        let up = Event::NodeStateChanged {
            cluster: ClusterId::MIN,
            node: n(2),
            up: true,
        };
        assert_eq!(EventLine(&up).to_string(), "node_up cluster=1 node=2");
        let tag = Event::ShtagChanged {
            name: "vip".into(),
            cluster: ClusterId::MIN,
            state: ShtagState::Active,
            reason: "MI command".into(),
        };
        assert_eq!(
            EventLine(&tag).to_string(),
            "tag_changed cluster=1 tag=\"vip\" state=active reason=\"MI command\""
        );
        let hostile = Event::Received {
            cluster: ClusterId::MIN,
            source: n(1),
            version: 1,
            body: RoutedBody::GenericMsg(GenericMsg {
                kind: GenericKind::Request,
                tag: b"t\n1".to_vec(),
                payload: b"\x1b[2Jhi\xff".to_vec(),
            }),
        };
        let line = EventLine(&hostile).to_string();
        assert_eq!(
            line,
            "received cluster=1 source=1 kind=request tag=\"t\\n1\" msg=\"\\u{1b}[2Jhi\u{fffd}\""
        );
        assert!(!line.contains('\n') && !line.contains('\x1b'));
        assert_eq!(request(&hostile).map(|(_, s, _)| s), Some(n(1)));
        assert!(request(&up).is_none());
    }
}
