//! Node-level unit tests: the event-driven transitions of docs/behaviour.md §3.3, the link-up
//! and link-down procedures (§3.4, §3.5), gossip (§4), routing (§5), events (§6), admin (§7)
//! and discovery (§8), each driven through the public surface.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use crate::config::{ClusterConfig, Config, DbMode, NodeConfig};
use crate::id::ClusterId;
use crate::link::LinkState;
use crate::message::*;
use crate::node::{ConnectionId, DropReason, Event, Node, Transmit, TransmitTo};
use crate::send::SendStatus;
use crate::test_support::{C1, at, config, n, url};

/// Node `me` with peers `peers`, discovery mode unless stated.
fn node_with(me: u32, peers: &[u32], db_mode: DbMode) -> Node {
    Node::new(config(me, peers, db_mode), at(0), 7).unwrap()
}

/// [`node_with`] after its first tick (at 1 s), its first PINGs drained.
fn ticked(me: u32, peers: &[u32], db_mode: DbMode) -> Node {
    let mut node = node_with(me, peers, db_mode);
    node.handle_timeout(at(1000));
    drain(&mut node);
    node
}

fn drain(node: &mut Node) -> Vec<Transmit> {
    core::iter::from_fn(|| node.poll_transmit()).collect()
}

fn events(node: &mut Node) -> Vec<Event> {
    core::iter::from_fn(|| node.poll_event()).collect()
}

fn internal(src: u32, body: InternalBody) -> Message {
    Message::Internal(Internal::new(C1, n(src), body))
}

fn sent_to(ts: &[Transmit], to: u32) -> Vec<&InternalBody> {
    ts.iter()
        .filter(|t| matches!(t.to, TransmitTo::Node { id, .. } if id == n(to)))
        .filter_map(|t| match &t.message {
            Message::Internal(m) => Some(&m.body),
            Message::Routed(_) => None,
        })
        .collect()
}

/// A PING body.
fn ping(req_node_list: bool) -> InternalBody {
    InternalBody::Ping(Ping { req_node_list })
}

/// An LS_UPDATE originated by node 2 (timestamp 5, path [2]) about its link to
/// `neighbour`.
fn ls_from_2(seq: i32, neighbour: u32, state: LinkUpdate) -> Message {
    internal(
        2,
        InternalBody::LsUpdate(LsUpdate {
            seq,
            timestamp: 5,
            neighbour: n(neighbour),
            state,
            path: vec![n(2)],
        }),
    )
}

fn link(node: &Node, peer: u32) -> LinkState {
    node.cluster(C1)
        .unwrap()
        .node(n(peer))
        .unwrap()
        .link_state()
}

const CONN: ConnectionId = ConnectionId(9);

/// Brings the link to `peer` UP: first tick pings, the PONG completes it.
fn bring_up(node: &mut Node, peer: u32, now: u64, pong_list: &[u32]) -> Vec<Transmit> {
    let pong = Pong {
        nodes: pong_list.iter().map(|&i| n(i)).collect(),
    };
    node.handle_message(at(now), CONN, internal(peer, InternalBody::Pong(pong)))
        .unwrap();
    drain(node)
}

#[test]
fn first_tick_pings_every_peer_with_node_list_request() {
    let mut node = node_with(1, &[2, 3], DbMode::Discovery);
    node.handle_timeout(at(999));
    assert!(drain(&mut node).is_empty(), "no tick before one period");
    node.handle_timeout(at(1000));
    let ts = drain(&mut node);
    for peer in [2, 3] {
        assert_eq!(sent_to(&ts, peer), [&ping(true)]);
    }
    assert_eq!(link(&node, 2), LinkState::Restarted);
}

#[test]
fn ping_from_known_node_is_answered_with_the_other_known_nodes() {
    let mut node = node_with(1, &[2, 3, 4], DbMode::Discovery);
    node.handle_message(at(10), CONN, internal(2, ping(true)))
        .unwrap();
    let ts = drain(&mut node);
    let InternalBody::Pong(p) = sent_to(&ts, 2)[0] else {
        panic!()
    };
    let mut ids = p.nodes.clone();
    ids.sort();
    assert_eq!(ids, [n(3), n(4)], "all known except itself and the pinger");
    node.handle_message(at(20), CONN, internal(2, ping(false)))
        .unwrap();
    assert_eq!(
        sent_to(&drain(&mut node), 2),
        [&InternalBody::Pong(Pong::default())]
    );
}

#[test]
fn ping_from_a_down_node_is_answered_then_probed_at_once() {
    let mut node = node_with(1, &[2], DbMode::Discovery);
    node.set_status(at(0), C1, Some(n(2)), false).unwrap();
    node.set_status(at(0), C1, Some(n(2)), true).unwrap();
    // Force DOWN through failed probing.
    node.handle_timeout(at(1000));
    drain(&mut node);
    // The PING of each tick is refused.
    node.handle_send_failed(at(1001), C1, n(2), true, None);
    for t in [2000, 3000, 4000] {
        node.handle_timeout(at(t));
        drain(&mut node);
        node.handle_send_failed(at(t + 1), C1, n(2), true, None);
    }
    assert_eq!(link(&node, 2), LinkState::Down);
    ping_from_2_is_answered_and_probed_at_once(&mut node, 5000);
}

/// Node 2 pings us at `now`: we answer PONG, probe it with PING(1) at once, and the link
/// is RESTARTED.
fn ping_from_2_is_answered_and_probed_at_once(node: &mut Node, now: u64) {
    let message = internal(2, ping(true));
    node.handle_message(at(now), CONN, message).unwrap();
    let to2: Vec<_> = sent_to(&drain(node), 2).into_iter().cloned().collect();
    assert!(matches!(to2[0], InternalBody::Pong(_)));
    assert_eq!(to2[1], ping(true));
    assert_eq!(link(node, 2), LinkState::Restarted);
}

#[test]
fn link_up_sends_ls_update_to_others_and_full_topology_to_the_new_neighbour() {
    let mut node = ticked(1, &[2, 3], DbMode::Discovery);
    bring_up(&mut node, 3, 1005, &[]);
    let ts = bring_up(&mut node, 2, 1010, &[3]);
    // LS_UPDATE(2 UP) to 3 only.
    let to3 = sent_to(&ts, 3);
    let InternalBody::LsUpdate(u) = to3[0] else {
        panic!("{to3:?}")
    };
    assert_eq!(
        (u.neighbour, u.state, u.seq, u.path.as_slice()),
        (n(2), LinkUpdate::Up, 0, &[n(1)][..])
    );
    // FULL_TOP_UPDATE to 2: me first (no description), then 3 without a description
    // because 2's PONG listed it.
    let to2 = sent_to(&ts, 2);
    let InternalBody::FullTopUpdate(f) = to2[0] else {
        panic!("{to2:?}")
    };
    assert_eq!(f.seq, 1, "second FULL_TOP_UPDATE sent");
    assert_eq!(f.entries[0].node, n(1));
    assert!(f.entries[0].description.is_none());
    assert_eq!(f.entries[0].neighbours, [n(2), n(3)]);
    assert_eq!(f.entries[0].ls_seq, 0);
    assert_eq!(f.entries.len(), 2);
    assert_eq!(f.entries[1].node, n(3));
    assert!(f.entries[1].description.is_none());
    assert_eq!(
        f.entries[1].neighbours,
        [n(1)],
        "our UP link to 3 is in 3's list as we send it"
    );
    // The first link-up had nobody else to tell: no LS_UPDATE, counter untouched until now.
}

#[test]
fn full_topology_describes_nodes_the_destination_did_not_list() {
    let mut node = ticked(1, &[2, 3], DbMode::Discovery);
    let ts = bring_up(&mut node, 2, 1005, &[]);
    let InternalBody::FullTopUpdate(f) = sent_to(&ts, 2)[0] else {
        panic!()
    };
    let d = f.entries[1].description.as_ref().unwrap();
    assert_eq!(
        (
            f.entries[1].node,
            d.url.as_str(),
            d.priority,
            d.no_ping_retries
        ),
        (n(3), "bin:127.0.0.3:5566", 50, 3)
    );
    assert_eq!((f.entries[1].ls_seq, f.entries[1].ls_timestamp), (-1, 0));
}

#[test]
fn reachability_events_follow_paths_not_direct_links() {
    let mut node = ticked(1, &[2, 3], DbMode::Discovery);
    bring_up(&mut node, 2, 1005, &[]);
    assert_eq!(
        events(&mut node),
        [Event::NodeStateChanged {
            cluster: C1,
            node: n(2),
            up: true
        }]
    );
    // 2 reports a link to 3: 3 becomes reachable through 2.
    node.handle_message(at(1100), CONN, ls_from_2(0, 3, LinkUpdate::Up))
        .unwrap();
    assert_eq!(
        events(&mut node),
        [Event::NodeStateChanged {
            cluster: C1,
            node: n(3),
            up: true
        }]
    );
    assert_eq!(node.next_hop(C1, n(3)), Some(n(2)));
    // A direct link to 3 coming up changes the next hop but raises no event.
    bring_up(&mut node, 3, 1200, &[]);
    assert!(events(&mut node).is_empty());
    assert_eq!(node.next_hop(C1, n(3)), Some(n(3)));
    let reports: Vec<_> = node
        .node_state_reports()
        .iter()
        .map(|r| r.text.clone())
        .collect();
    assert_eq!(
        reports,
        ["Node [2], cluster [1] is UP", "Node [3], cluster [1] is UP"]
    );
}

#[test]
fn stale_ls_update_is_dropped_and_not_flooded() {
    let mut node = ticked(1, &[2, 3, 4], DbMode::Discovery);
    bring_up(&mut node, 2, 1001, &[]);
    bring_up(&mut node, 4, 1002, &[]);
    let u = LsUpdate {
        seq: 3,
        timestamp: 5,
        neighbour: n(3),
        state: LinkUpdate::Up,
        path: vec![n(2)],
    };
    node.handle_message(
        at(1100),
        CONN,
        internal(2, InternalBody::LsUpdate(u.clone())),
    )
    .unwrap();
    let flooded = drain(&mut node);
    let InternalBody::LsUpdate(f) = sent_to(&flooded, 4)[0] else {
        panic!()
    };
    assert_eq!(f.path, [n(2), n(1)], "path extended with our id");
    assert!(sent_to(&flooded, 2).is_empty(), "never back into the path");
    assert_eq!(
        node.handle_message(at(1200), CONN, internal(2, InternalBody::LsUpdate(u))),
        Err(DropReason::StaleUpdate)
    );
    assert!(drain(&mut node).is_empty());
}

#[test]
fn updates_with_long_paths_are_applied_but_not_flooded() {
    let mut node = ticked(1, &[2, 3, 4], DbMode::Discovery);
    bring_up(&mut node, 2, 1001, &[]);
    bring_up(&mut node, 4, 1002, &[]);
    let mut path = vec![n(2); MAX_WIRE_PATH_LEN];
    path[0] = n(2);
    let u = LsUpdate {
        seq: 1,
        timestamp: 5,
        neighbour: n(3),
        state: LinkUpdate::Up,
        path,
    };
    node.handle_message(at(1100), CONN, internal(2, InternalBody::LsUpdate(u)))
        .unwrap();
    assert!(drain(&mut node).is_empty());
    assert_eq!(node.cluster(C1).unwrap().adjacency(n(2)), [n(3)]);
}

#[test]
fn ls_update_saying_down_while_my_link_is_up_restarts_probing() {
    let mut node = ticked(1, &[2, 3], DbMode::Discovery);
    bring_up(&mut node, 2, 1001, &[]);
    bring_up(&mut node, 3, 1002, &[]);
    node.handle_message(at(1100), CONN, ls_from_2(0, 1, LinkUpdate::Down))
        .unwrap();
    assert_eq!(link(&node, 2), LinkState::RestartPinging);
    let ts = drain(&mut node);
    let InternalBody::LsUpdate(d) = sent_to(&ts, 3)[0] else {
        panic!()
    };
    assert_eq!(
        (d.neighbour, d.state),
        (n(2), LinkUpdate::Down),
        "link-down procedure ran"
    );
}

#[test]
fn full_top_update_listing_me_while_down_restarts_probing() {
    let mut node = ticked(1, &[2, 3], DbMode::Discovery);
    bring_up(&mut node, 2, 1001, &[]);
    node.set_status(at(1002), C1, Some(n(3)), false).unwrap();
    node.set_status(at(1003), C1, Some(n(3)), true).unwrap();
    // Drive 3 to DOWN: never answers, retries 3.
    for t in [2000, 3000, 4000, 5000, 6000] {
        node.handle_timeout(at(t));
        drain(&mut node);
        node.handle_message(
            at(t),
            CONN,
            internal(2, InternalBody::Pong(Pong::default())),
        )
        .ok();
    }
    assert_eq!(link(&node, 3), LinkState::Down);
    let f = FullTopUpdate {
        seq: 0,
        timestamp: 9,
        entries: vec![TopologyEntry {
            node: n(3),
            description: None,
            ls_seq: 0,
            ls_timestamp: 9,
            neighbours: vec![n(1)],
        }],
        path: vec![n(2)],
    };
    node.handle_message(at(6100), CONN, internal(2, InternalBody::FullTopUpdate(f)))
        .unwrap();
    assert_eq!(link(&node, 3), LinkState::RestartPinging);
}

#[test]
fn full_top_update_replaces_adjacency_but_keeps_links_to_the_originator() {
    let mut node = ticked(1, &[2, 3, 4], DbMode::Database);
    bring_up(&mut node, 2, 1001, &[]);
    let f = FullTopUpdate {
        seq: 0,
        timestamp: 9,
        entries: vec![
            TopologyEntry {
                node: n(2),
                description: None,
                ls_seq: 4,
                ls_timestamp: 9,
                neighbours: vec![n(1), n(3)],
            },
            TopologyEntry {
                node: n(3),
                description: None,
                ls_seq: 2,
                ls_timestamp: 9,
                neighbours: vec![n(2), n(4)],
            },
        ],
        path: vec![n(2)],
    };
    node.handle_message(at(1100), CONN, internal(2, InternalBody::FullTopUpdate(f)))
        .unwrap();
    let c = node.cluster(C1).unwrap();
    assert_eq!(c.adjacency(n(2)), [n(3)]);
    assert_eq!(c.adjacency(n(3)), [n(4), n(2)]);
    assert_eq!(c.ls_stamp(n(3)).unwrap().seq, 2);
    assert_eq!(
        node.route(C1, n(4)).map(|r| (r.next_hop, r.hops)),
        Some((n(2), 3))
    );
    // A later update from 2 says 3 only links to 2: 3→4 goes, 3→2 (the originator) stays.
    let f = FullTopUpdate {
        seq: 1,
        timestamp: 9,
        entries: vec![TopologyEntry {
            node: n(3),
            description: None,
            ls_seq: 3,
            ls_timestamp: 9,
            neighbours: vec![],
        }],
        path: vec![n(2)],
    };
    node.handle_message(at(1200), CONN, internal(2, InternalBody::FullTopUpdate(f)))
        .unwrap();
    assert_eq!(node.cluster(C1).unwrap().adjacency(n(3)), [n(2)]);
    assert_eq!(node.next_hop(C1, n(4)), None);
}

#[test]
fn transport_error_on_a_non_ping_send_restarts_probing_and_tears_down() {
    let mut node = ticked(1, &[2, 3], DbMode::Discovery);
    bring_up(&mut node, 2, 1001, &[]);
    bring_up(&mut node, 3, 1002, &[]);
    // A refused UNKNOWN_ID: hop-by-hop, not a PING.
    node.handle_send_failed(at(1100), C1, n(2), false, None);
    assert_eq!(link(&node, 2), LinkState::RestartPinging);
    let ts = drain(&mut node);
    let InternalBody::LsUpdate(d) = sent_to(&ts, 3)[0] else {
        panic!()
    };
    assert_eq!((d.neighbour, d.state), (n(2), LinkUpdate::Down));
}

#[test]
fn silent_peer_goes_down_after_retries_and_raises_node_down() {
    let mut node = node_with(1, &[2], DbMode::Discovery);
    node.handle_timeout(at(1000));
    bring_up(&mut node, 2, 1001, &[]);
    events(&mut node);
    // Keep-alive at 5 s, then rule 2 at 6 s (link-down: 2 is unreachable now).
    node.handle_timeout(at(5000));
    assert_eq!(sent_to(&drain(&mut node), 2), [&ping(false)]);
    node.handle_timeout(at(6000));
    assert_eq!(link(&node, 2), LinkState::Retrying);
    assert_eq!(
        events(&mut node),
        [Event::NodeStateChanged {
            cluster: C1,
            node: n(2),
            up: false
        }]
    );
    for t in [7000, 8000, 9000] {
        node.handle_timeout(at(t));
    }
    assert_eq!(link(&node, 2), LinkState::Down);
    // Re-probed ping_interval (not node_timeout) after the last ping (sent at 8 s).
    drain(&mut node);
    node.handle_timeout(at(11_000));
    assert!(drain(&mut node).is_empty());
    node.handle_timeout(at(12_000));
    assert_eq!(sent_to(&drain(&mut node), 2), [&ping(true)]);
}

#[test]
fn routed_traffic_from_a_down_node_restarts_probing() {
    let mut node = node_with(1, &[2], DbMode::Discovery);
    node.set_status(at(0), C1, Some(n(2)), false).unwrap();
    node.set_status(at(0), C1, Some(n(2)), true).unwrap();
    let c = node.clusters.iter_mut().next().unwrap();
    c.node_mut(n(2)).unwrap().link.set_state(LinkState::Down);
    let m = Message::Routed(Routed::new(
        Trailer {
            cluster: C1,
            source: n(2),
            destination: n(1),
        },
        RoutedBody::ShtagActive(ShtagActive { tag: "vip".into() }),
    ));
    node.handle_message(at(10), CONN, m).unwrap();
    assert_eq!(link(&node, 2), LinkState::RestartPinging);
    // The SHTAG_ACTIVE itself created the tag as backup (no change, no event).
    assert_eq!(node.cluster(C1).unwrap().shtags()[0].name(), "vip");
    assert!(events(&mut node).is_empty());
}

#[test]
fn unknown_id_is_answered_with_our_description_and_restarts_probing() {
    let mut node = ticked(1, &[2], DbMode::Discovery);
    node.handle_message(at(1001), CONN, internal(2, InternalBody::UnknownId))
        .unwrap();
    let ts = drain(&mut node);
    let InternalBody::NodeDescription(d) = sent_to(&ts, 2)[0] else {
        panic!()
    };
    assert_eq!(
        (d.info.url.as_str(), d.info.priority, d.path.as_slice()),
        ("bin:127.0.0.1:5566", 50, &[n(1)][..])
    );
    assert_eq!(link(&node, 2), LinkState::RestartPinging);
}

#[test]
fn ping_from_unknown_node_gets_unknown_id_on_its_connection() {
    let mut node = node_with(1, &[], DbMode::Discovery);
    node.handle_message(at(5), ConnectionId(77), internal(9, ping(true)))
        .unwrap();
    let ts = drain(&mut node);
    assert_eq!(ts.len(), 1);
    assert_eq!(ts[0].to, TransmitTo::Connection(ConnectionId(77)));
    assert_eq!(ts[0].message, internal(1, InternalBody::UnknownId));
    let mut db = node_with(1, &[], DbMode::Database);
    let r = db.handle_message(at(5), CONN, internal(9, ping(true)));
    assert_eq!(r, Err(DropReason::UnknownSource));
}

#[test]
fn node_description_from_unknown_node_is_learned_and_flooded() {
    let mut node = ticked(1, &[2], DbMode::Discovery);
    bring_up(&mut node, 2, 1001, &[]);
    let d = NodeDescription {
        info: NodeInfo {
            url: "bin:127.0.0.9:5566".into(),
            sip_addr: String::new(),
            priority: 3,
            no_ping_retries: 2,
        },
        path: vec![n(9)],
    };
    node.handle_message(
        at(1100),
        CONN,
        internal(9, InternalBody::NodeDescription(d)),
    )
    .unwrap();
    let c = node.cluster(C1).unwrap();
    let learned = c.node(n(9)).unwrap();
    assert_eq!(
        (
            learned.priority(),
            learned.no_ping_retries(),
            learned.db_id()
        ),
        (3, 2, None)
    );
    assert_eq!(learned.link_state(), LinkState::RestartPinging);
    assert_eq!(c.nodes()[0].id(), n(9), "most recently learned first");
    let ts = drain(&mut node);
    let InternalBody::NodeDescription(f) = sent_to(&ts, 2)[0] else {
        panic!()
    };
    assert_eq!(f.path, [n(9), n(1)]);
}

#[test]
fn full_top_update_teaches_described_nodes_in_discovery_mode_only() {
    for (mode, learns) in [(DbMode::Discovery, true), (DbMode::Database, false)] {
        let mut node = node_with(1, &[2], mode);
        node.handle_timeout(at(1000));
        drain(&mut node);
        bring_up(&mut node, 2, 1001, &[]);
        let info = NodeInfo {
            url: url(5),
            sip_addr: String::new(),
            priority: 50,
            no_ping_retries: 3,
        };
        let f = FullTopUpdate {
            seq: 0,
            timestamp: 1,
            entries: vec![
                TopologyEntry {
                    node: n(2),
                    description: None,
                    ls_seq: 0,
                    ls_timestamp: 1,
                    neighbours: vec![n(1), n(5)],
                },
                TopologyEntry {
                    node: n(5),
                    description: Some(info),
                    ls_seq: 0,
                    ls_timestamp: 1,
                    neighbours: vec![n(2)],
                },
            ],
            path: vec![n(2)],
        };
        node.handle_message(at(1100), CONN, internal(2, InternalBody::FullTopUpdate(f)))
            .unwrap();
        assert_eq!(node.cluster(C1).unwrap().node(n(5)).is_some(), learns);
        assert_eq!(node.next_hop(C1, n(5)).is_some(), learns);
    }
}

#[test]
fn clusters_past_128_nodes_refuse_new_nodes() {
    let peers: Vec<u32> = (2..130).collect();
    let mut node = node_with(1, &peers, DbMode::Discovery);
    let d = NodeDescription {
        info: NodeInfo {
            url: url(200),
            sip_addr: String::new(),
            priority: 1,
            no_ping_retries: 1,
        },
        path: vec![n(200)],
    };
    let r = node.handle_message(at(1), CONN, internal(200, InternalBody::NodeDescription(d)));
    assert_eq!(r, Err(DropReason::ClusterFull));
    assert_eq!(node.cluster(C1).unwrap().nodes().len(), MAX_NODES);
}

#[test]
fn disabling_the_local_node_takes_every_link_down_without_ls_updates() {
    let mut node = ticked(1, &[2, 3], DbMode::Discovery);
    bring_up(&mut node, 2, 1001, &[]);
    bring_up(&mut node, 3, 1002, &[]);
    events(&mut node);
    node.set_status(at(2000), C1, None, false).unwrap();
    assert!(
        drain(&mut node).is_empty(),
        "peers find out through missed PONGs"
    );
    assert_eq!(
        (link(&node, 2), link(&node, 3)),
        (LinkState::Down, LinkState::Down)
    );
    assert_eq!(events(&mut node).len(), 2);
    node.handle_timeout(at(70_000));
    assert!(drain(&mut node).is_empty(), "no pings while disabled");
    let r = node.handle_message(at(70_001), CONN, internal(2, ping(false)));
    assert_eq!(r, Err(DropReason::LocalDisabled));
    assert_eq!(
        node.send_to(
            at(70_002),
            C1,
            n(2),
            RoutedBody::RemoveNode(RemoveNode { node: n(3) })
        ),
        SendStatus::CurrDisabled
    );
    node.set_status(at(71_000), C1, None, true).unwrap();
    assert_eq!(link(&node, 2), LinkState::RestartPinging);
}

#[test]
fn disabling_a_remote_node_tears_its_link_down_and_stops_probing() {
    let mut node = ticked(1, &[2, 3], DbMode::Discovery);
    bring_up(&mut node, 2, 1001, &[]);
    bring_up(&mut node, 3, 1002, &[]);
    node.set_status(at(1100), C1, Some(n(2)), false).unwrap();
    let ts = drain(&mut node);
    let InternalBody::LsUpdate(d) = sent_to(&ts, 3)[0] else {
        panic!()
    };
    assert_eq!((d.neighbour, d.state), (n(2), LinkUpdate::Down));
    node.handle_timeout(at(100_000));
    assert!(
        sent_to(&drain(&mut node), 2).is_empty(),
        "disabled nodes are not probed"
    );
    let r = node.handle_message(at(100_001), CONN, internal(2, ping(false)));
    assert_eq!(r, Err(DropReason::SourceDisabled));
    let s = node.send_to(
        at(100_002),
        C1,
        n(2),
        RoutedBody::RemoveNode(RemoveNode { node: n(3) }),
    );
    assert_eq!(
        s,
        SendStatus::Success,
        "success without sending (quirk #8, API parity)"
    );
    assert!(drain(&mut node).is_empty());
    assert_eq!(
        node.set_status(at(1), C1, Some(n(42)), true),
        Err(crate::admin::SetStatusError::UnknownNode)
    );
}

#[test]
fn send_codes_follow_the_opensips_api() {
    let mut node = node_with(1, &[2, 3], DbMode::Discovery);
    let body = || {
        RoutedBody::GenericMsg(GenericMsg {
            kind: GenericKind::Request,
            tag: b"t".to_vec(),
            payload: b"p".to_vec(),
        })
    };
    assert_eq!(
        node.send_to(at(1), ClusterId::new(5).unwrap(), n(2), body()),
        SendStatus::SendErr
    );
    assert_eq!(node.send_to(at(1), C1, n(9), body()), SendStatus::SendErr);
    assert_eq!(node.send_to(at(1), C1, n(2), body()), SendStatus::DestDown);
    assert_eq!(
        node.send_to(at(1), C1, n(1), body()),
        SendStatus::Success,
        "delivered locally"
    );
    assert!(matches!(events(&mut node)[..], [Event::Received { source, .. }] if source == n(1)));
    node.handle_timeout(at(1000));
    drain(&mut node);
    bring_up(&mut node, 2, 1001, &[]);
    assert_eq!(
        node.send_to(at(1100), C1, n(2), body()),
        SendStatus::Success
    );
    assert_eq!(
        node.broadcast(at(1100), C1, body()),
        SendStatus::Success,
        "one of two sent"
    );
    let ts = drain(&mut node);
    assert_eq!(
        ts.iter()
            .filter(|t| matches!(t.message, Message::Routed(_)))
            .count(),
        2
    );
    assert_eq!(SendStatus::DestDown.code(), -1);
}

#[test]
fn relays_forward_toward_the_destination_or_drop_with_a_reason() {
    let mut node = ticked(1, &[2, 3], DbMode::Discovery);
    bring_up(&mut node, 2, 1001, &[]);
    let m = |dest| {
        Message::Routed(Routed::new(
            Trailer {
                cluster: C1,
                source: n(2),
                destination: n(dest),
            },
            RoutedBody::ShtagActive(ShtagActive { tag: "x".into() }),
        ))
    };
    assert_eq!(
        node.handle_message(at(1100), CONN, m(3)),
        Err(DropReason::NoRoute)
    );
    assert_eq!(
        node.handle_message(at(1100), CONN, m(8)),
        Err(DropReason::UnknownDestination)
    );
    bring_up(&mut node, 3, 1102, &[]);
    node.handle_message(at(1200), CONN, m(3)).unwrap();
    let ts = drain(&mut node);
    assert_eq!(ts.len(), 1);
    assert!(matches!(ts[0].to, TransmitTo::Node { id, .. } if id == n(3)));
    assert_eq!(ts[0].message, m(3), "relayed unchanged");
}

#[test]
fn rerouting_disabled_means_direct_links_only() {
    let mut cfg = Config::new(n(1), DbMode::Discovery);
    cfg.enable_rerouting = false;
    cfg.clusters.push(ClusterConfig {
        id: C1,
        local: NodeConfig::new(n(1), url(1)),
        nodes: vec![NodeConfig::new(n(2), url(2)), NodeConfig::new(n(3), url(3))],
    });
    let mut node = Node::new(cfg, at(0), 1).unwrap();
    node.handle_timeout(at(1000));
    drain(&mut node);
    bring_up(&mut node, 2, 1001, &[]);
    assert_eq!(
        node.next_hop(C1, n(2)),
        Some(n(2)),
        "direct UP links are reachable (quirk #1 fixed)"
    );
    node.handle_message(at(1100), CONN, ls_from_2(0, 3, LinkUpdate::Up))
        .unwrap();
    assert_eq!(node.next_hop(C1, n(3)), None);
    let body = RoutedBody::ShtagActive(ShtagActive { tag: "x".into() });
    assert_eq!(
        node.send_to(at(1200), C1, n(3), body.clone()),
        SendStatus::DestDown
    );
    let relay = Message::Routed(Routed::new(
        Trailer {
            cluster: C1,
            source: n(2),
            destination: n(3),
        },
        body,
    ));
    assert_eq!(
        node.handle_message(at(1200), CONN, relay),
        Err(DropReason::ReroutingDisabled)
    );
}

#[test]
fn remove_node_forgets_the_node_everywhere_and_the_target_disables_itself() {
    let mut node = ticked(1, &[2, 3], DbMode::Discovery);
    bring_up(&mut node, 2, 1001, &[]);
    bring_up(&mut node, 3, 1002, &[]);
    events(&mut node);
    node.remove_node(at(1100), C1, n(3)).unwrap();
    let routed: Vec<_> = drain(&mut node)
        .into_iter()
        .filter(|t| matches!(t.message, Message::Routed(_)))
        .collect();
    assert_eq!(routed.len(), 2, "REMOVE_NODE to 2 and to the target 3");
    assert!(node.cluster(C1).unwrap().node(n(3)).is_none());
    assert_eq!(
        events(&mut node),
        [Event::NodeStateChanged {
            cluster: C1,
            node: n(3),
            up: false
        }]
    );
    // Receiving side, as the target.
    let mut target = node_with(3, &[1, 2], DbMode::Discovery);
    let m = Message::Routed(Routed::new(
        Trailer {
            cluster: C1,
            source: n(1),
            destination: n(3),
        },
        RoutedBody::RemoveNode(RemoveNode { node: n(3) }),
    ));
    target.handle_message(at(5), CONN, m).unwrap();
    assert!(!target.cluster(C1).unwrap().local().enabled());
    let mut db = node_with(1, &[2], DbMode::Database);
    assert_eq!(
        db.remove_node(at(1), C1, n(2)),
        Err(crate::discovery::RemoveNodeError::DbMode)
    );
}

#[test]
fn own_id_unknown_cluster_and_statistics() {
    let mut node = node_with(1, &[2, 3], DbMode::Discovery);
    let r = node.handle_message(at(1), CONN, internal(1, InternalBody::UnknownId));
    assert_eq!(r, Err(DropReason::OwnSource));
    let other = Message::Internal(Internal::new(
        ClusterId::new(2).unwrap(),
        n(2),
        InternalBody::UnknownId,
    ));
    assert_eq!(
        node.handle_message(at(1), CONN, other),
        Err(DropReason::UnknownCluster)
    );
    node.handle_timeout(at(1000));
    bring_up(&mut node, 2, 1001, &[]);
    let s = node.stats();
    assert_eq!((s.nodes, s.nodes_up, s.nodes_down), (2, 1, 1));
}

#[test]
fn generated_tags_have_the_prefix_and_24_random_characters() {
    let mut node = node_with(1234, &[], DbMode::Discovery);
    let a = node.generate_tag(ClusterId::new(10_000).unwrap());
    assert!(a.starts_with("10000-1234-"));
    assert_eq!(a.len(), "10000-1234-".len() + 24);
    assert_ne!(a, node.generate_tag(ClusterId::new(10_000).unwrap()));
}

#[test]
fn reload_rebuilds_the_table_and_restarts_probing() {
    let mut node = ticked(1, &[2, 3], DbMode::Database);
    bring_up(&mut node, 2, 1001, &[]);
    events(&mut node);
    let new = ClusterConfig {
        id: C1,
        local: NodeConfig::new(n(1), url(1)),
        nodes: vec![NodeConfig::new(n(2), url(2)), NodeConfig::new(n(4), url(4))],
    };
    node.reload(at(2000), vec![new]).unwrap();
    let c = node.cluster(C1).unwrap();
    let ids: Vec<_> = c.nodes().iter().map(|n| n.id()).collect();
    assert_eq!(
        ids,
        [n(4), n(2)],
        "reverse provisioning order, node 3 gone, node 4 added"
    );
    assert!(
        c.nodes()
            .iter()
            .all(|n| n.link_state() == LinkState::RestartPinging)
    );
    assert_eq!(
        events(&mut node),
        [Event::NodeStateChanged {
            cluster: C1,
            node: n(2),
            up: false
        }]
    );
    node.handle_timeout(at(3000));
    let ts = drain(&mut node);
    assert_eq!(sent_to(&ts, 4), [&ping(true)]);
    let bad = ClusterConfig {
        id: C1,
        local: NodeConfig::new(n(1), url(1)),
        nodes: vec![NodeConfig::new(n(1), url(1))],
    };
    assert!(
        node.reload(at(3000), vec![bad]).is_err(),
        "invalid table refused, nothing changed"
    );
    assert_eq!(node.cluster(C1).unwrap().nodes().len(), 2);
}

#[test]
fn overtaken_ls_update_about_another_link_is_still_applied_and_flooded_once() {
    let mut node = ticked(1, &[2, 3, 4, 5], DbMode::Database);
    bring_up(&mut node, 2, 1001, &[]);
    bring_up(&mut node, 5, 1002, &[]);
    // seq 2 (link 2–4 up) overtakes seq 1 (link 2–3 up).
    node.handle_message(at(1100), CONN, ls_from_2(2, 4, LinkUpdate::Up))
        .unwrap();
    node.handle_message(at(1101), CONN, ls_from_2(1, 3, LinkUpdate::Up))
        .unwrap();
    let mut adj = node.cluster(C1).unwrap().adjacency(n(2)).to_vec();
    adj.sort();
    assert_eq!(
        adj,
        [n(3), n(4)],
        "both links known although seq 1 came late"
    );
    let flooded = drain(&mut node);
    assert_eq!(sent_to(&flooded, 5).len(), 2, "each update flooded once");
    assert_eq!(
        node.handle_message(at(1102), CONN, ls_from_2(1, 3, LinkUpdate::Up)),
        Err(DropReason::StaleUpdate),
        "a duplicate is dropped"
    );
    // An old update about a link already updated later is flooded but not applied.
    node.handle_message(at(1103), CONN, ls_from_2(4, 3, LinkUpdate::Down))
        .unwrap();
    node.handle_message(at(1104), CONN, ls_from_2(3, 3, LinkUpdate::Up))
        .unwrap();
    assert_eq!(node.cluster(C1).unwrap().adjacency(n(2)), [n(4)]);
}

#[test]
fn late_ticks_do_not_skip_a_keepalive() {
    // A tick that runs late must not make the next, less late, tick see "just under" the
    // interval: rules are evaluated at the scheduled tick time.
    let mut node = node_with(1, &[2], DbMode::Discovery);
    node.handle_timeout(at(1003)); // the tick due at 1000 runs 3 ms late
    bring_up(&mut node, 2, 1004, &[]);
    drain(&mut node);
    for t in [2000, 3001, 4000] {
        node.handle_timeout(at(t));
        assert!(drain(&mut node).is_empty());
    }
    node.handle_timeout(at(5000));
    assert_eq!(sent_to(&drain(&mut node), 2), [&ping(false)]);
}

#[test]
fn ping_from_a_node_waiting_to_be_reprobed_is_probed_at_once() {
    let mut node = node_with(1, &[2], DbMode::Discovery);
    assert_eq!(link(&node, 2), LinkState::RestartPinging);
    ping_from_2_is_answered_and_probed_at_once(&mut node, 10);
}

#[test]
fn link_changes_nobody_is_told_of_still_count_once_the_counter_went_out() {
    // Found by the simulation campaign (gossip-gap runs): a node whose links all went down
    // and whose first link back had no other neighbour to tell sent its FULL_TOP_UPDATE
    // with the old counter; third parties holding that counter (with the old links)
    // ignored the entry. The changes nobody is told of now count.
    let mut node = ticked(1, &[2, 3], DbMode::Discovery);
    bring_up(&mut node, 3, 1005, &[]);
    let first = bring_up(&mut node, 2, 1010, &[3]);
    let InternalBody::LsUpdate(u) = sent_to(&first, 3)[0] else {
        panic!("{first:?}")
    };
    assert_eq!(u.seq, 0, "the first LS_UPDATE on the wire is seq 0");
    node.set_status(at(1100), C1, Some(n(2)), false).unwrap(); // LS_UPDATE seq 1 to 3
    node.set_status(at(1200), C1, Some(n(3)), false).unwrap(); // nobody to tell: seq 2
    drain(&mut node);
    node.set_status(at(1300), C1, Some(n(3)), true).unwrap();
    node.handle_timeout(at(2000));
    drain(&mut node);
    let back = bring_up(&mut node, 3, 2005, &[]); // nobody to tell: seq 3
    let InternalBody::FullTopUpdate(f) = sent_to(&back, 3)[0] else {
        panic!("{back:?}")
    };
    assert_eq!((f.entries[0].node, f.entries[0].ls_seq), (n(1), 3));
    assert_eq!(f.entries[0].neighbours, [n(3)]);
}

#[test]
fn restarted_originator_without_ls_updates_is_believed_at_once() {
    // Found by the simulation campaign (restart-missed runs): node 2 restarted and its
    // first FULL_TOP_UPDATE carries its own entry with no LS_UPDATE sent yet (seq −1);
    // its list replaces what we held from its previous life.
    let mut node = ticked(1, &[2, 3], DbMode::Discovery);
    bring_up(&mut node, 2, 1005, &[]);
    let ftu = |seq: i32, ts: i32, ls_seq: i32, neighbours: &[u32]| {
        internal(
            2,
            InternalBody::FullTopUpdate(FullTopUpdate {
                seq,
                timestamp: ts,
                entries: vec![TopologyEntry {
                    node: n(2),
                    description: None,
                    ls_seq,
                    // (−1, 0) when no LS_UPDATE was sent since the start (docs/wire.md §7.4).
                    ls_timestamp: if ls_seq < 0 { 0 } else { ts },
                    neighbours: neighbours.iter().map(|&i| n(i)).collect(),
                }],
                path: vec![n(2)],
            }),
        )
    };
    node.handle_message(at(1010), CONN, ftu(9, 100, 30, &[1, 3]))
        .unwrap();
    assert_eq!(node.cluster(C1).unwrap().adjacency(n(2)), [n(3)]);
    // Restarted at ts 200: top counter 0, no LS_UPDATE yet, only its link to us.
    node.handle_message(at(1020), CONN, ftu(0, 200, -1, &[1]))
        .unwrap();
    assert!(node.cluster(C1).unwrap().adjacency(n(2)).is_empty());
}

#[test]
fn list_learned_from_ls_updates_only_is_completed_by_a_full_list_at_the_same_counter() {
    // Node 1 (restarted) first hears of node 4 through an LS_UPDATE (link 4–3 up, seq 2):
    // it does not know of link 4–2, which came up before. Node 2's FULL_TOP_UPDATE lists
    // node 4 at the same counter with both links: the list is taken.
    let mut node = ticked(1, &[2, 3, 4], DbMode::Database);
    bring_up(&mut node, 2, 1001, &[]);
    let ls = internal(
        4,
        InternalBody::LsUpdate(LsUpdate {
            seq: 2,
            timestamp: 50,
            neighbour: n(3),
            state: LinkUpdate::Up,
            path: vec![n(4), n(2)],
        }),
    );
    node.handle_message(at(1100), CONN, ls).unwrap();
    let adjacency = |node: &Node| {
        let mut a = node.cluster(C1).unwrap().adjacency(n(4)).to_vec();
        a.sort();
        a
    };
    assert_eq!(adjacency(&node), [n(3)]);
    let entry = |neighbours: &[u32]| TopologyEntry {
        node: n(4),
        description: None,
        ls_seq: 2,
        ls_timestamp: 50,
        neighbours: neighbours.iter().map(|&i| n(i)).collect(),
    };
    let ftu = |seq: i32, neighbours: &[u32]| {
        internal(
            2,
            InternalBody::FullTopUpdate(FullTopUpdate {
                seq,
                timestamp: 60,
                entries: vec![
                    TopologyEntry {
                        node: n(2),
                        description: None,
                        ls_seq: 0,
                        ls_timestamp: 60,
                        neighbours: vec![n(1), n(4)],
                    },
                    entry(neighbours),
                ],
                path: vec![n(2)],
            }),
        )
    };
    node.handle_message(at(1200), CONN, ftu(0, &[2, 3]))
        .unwrap();
    assert_eq!(adjacency(&node), [n(2), n(3)]);
    // Once a full list is held, another node's list at the same counter is not taken.
    node.handle_message(at(1300), CONN, ftu(1, &[2])).unwrap();
    assert_eq!(adjacency(&node), [n(2), n(3)]);
}
