//! Next-hop computation on a 128-node cluster (docs/behaviour.md §5.3).
//!
//! The local node (id 1) knows 127 peers; every node is linked to about 8 random others
//! (a seeded random graph, symmetric, connected). The topology is taught to a core `Node`
//! the way the protocol does it: PONGs bring the local node's links UP, then one
//! FULL_TOP_UPDATE from a neighbour carries every node's adjacency list.
//!
//! - `route/bfs_full_128`: the full breadth-first search behind an invalidated cache
//!   (`RouteTable::compute` over the node's own table, exactly what `Node::route` runs when
//!   the topology version changed).
//! - `route/cached_lookup_128`: `Node::route` with a valid cache.
//! - `route/ls_update_then_route_128`: an LS_UPDATE that changes a remote link (the cache is
//!   invalidated, reachability is re-evaluated with a full search, the update is flooded to
//!   the UP neighbours), then `Node::route`.
//!
//! `cargo bench -p clusterer-tests --bench routing`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::BTreeSet;
use std::hint::black_box;

use clusterer_core::message::{
    FullTopUpdate, Internal, InternalBody, LinkUpdate, LsUpdate, Message, Pong, TopologyEntry,
};
use clusterer_core::route::{RouteNode, RouteTable};
use clusterer_core::{ConnectionId, DbMode, Node, NodeId, Now};
use clusterer_tests::sim::{CLUSTER, SimRng, nid, node_config};
use criterion::{Criterion, criterion_group, criterion_main};

const NODES: u32 = 128;
const DEGREE: usize = 8;
const CONN: ConnectionId = ConnectionId(1);

fn at(ms: u64) -> Now {
    Now::new(ms, 1_800_000_000 + (ms / 1000) as i64)
}

/// A connected random graph: a ring for connectivity, then random chords up to ~DEGREE.
fn random_graph(seed: u64) -> Vec<BTreeSet<u32>> {
    let n = NODES as usize;
    let mut adj = vec![BTreeSet::new(); n + 1];
    let link = |adj: &mut Vec<BTreeSet<u32>>, a: u32, b: u32| {
        if a != b {
            adj[a as usize].insert(b);
            adj[b as usize].insert(a);
        }
    };
    for i in 1..=NODES {
        link(&mut adj, i, i % NODES + 1);
    }
    let mut rng = SimRng::new(seed);
    for i in 1..=NODES {
        while adj[i as usize].len() < DEGREE {
            let j = rng.range(1, u64::from(NODES)) as u32;
            link(&mut adj, i, j);
        }
    }
    adj
}

fn internal(src: NodeId, body: InternalBody) -> Message {
    Message::Internal(Internal::new(CLUSTER, src, body))
}

/// Node 1 with the whole topology of `graph` learned.
fn build_node(graph: &[BTreeSet<u32>]) -> Node {
    let peers: Vec<u32> = (2..=NODES).collect();
    let mut node = Node::new(node_config(1, &peers, DbMode::Database), at(0), 7).unwrap();
    node.handle_timeout(at(1000));
    while node.poll_transmit().is_some() {}
    let neighbours: Vec<u32> = graph[1].iter().copied().collect();
    for &p in &neighbours {
        let pong = Pong {
            nodes: (1..=NODES).filter(|&i| i != p && i != 1).map(nid).collect(),
        };
        node.handle_message(at(1005), CONN, internal(nid(p), InternalBody::Pong(pong)))
            .unwrap();
    }
    while node.poll_transmit().is_some() {}
    let from = neighbours[0];
    let mut entries = vec![TopologyEntry {
        node: nid(from),
        description: None,
        ls_seq: 0,
        ls_timestamp: 1_800_000_001,
        neighbours: graph[from as usize].iter().map(|&i| nid(i)).collect(),
    }];
    for i in (2..=NODES).filter(|&i| i != from) {
        entries.push(TopologyEntry {
            node: nid(i),
            description: None,
            ls_seq: 0,
            ls_timestamp: 1_800_000_001,
            neighbours: graph[i as usize].iter().map(|&j| nid(j)).collect(),
        });
    }
    let update = FullTopUpdate {
        seq: 0,
        timestamp: 1_800_000_001,
        entries,
        path: vec![nid(from)],
    };
    node.handle_message(
        at(1010),
        CONN,
        internal(nid(from), InternalBody::FullTopUpdate(update)),
    )
    .unwrap();
    while node.poll_transmit().is_some() {}
    while node.poll_event().is_some() {}
    for i in 2..=NODES {
        assert!(
            node.route(CLUSTER, nid(i)).is_some(),
            "node {i} unreachable"
        );
    }
    node
}

fn bench_routing(c: &mut Criterion) {
    let graph = random_graph(0x0128_0008);
    let mut node = build_node(&graph);
    let max_hops = (2..=NODES)
        .filter_map(|i| node.route(CLUSTER, nid(i)))
        .map(|r| r.hops)
        .max()
        .unwrap();
    eprintln!(
        "topology: {NODES} nodes, {} links, local degree {}, longest route {max_hops} hops",
        graph.iter().map(BTreeSet::len).sum::<usize>() / 2,
        graph[1].len()
    );

    let cluster = node.cluster(CLUSTER).unwrap();
    let me = cluster.local().id();
    let direct: Vec<NodeId> = cluster.local_adjacency().to_vec();
    let nodes: Vec<RouteNode<'_>> = cluster
        .nodes()
        .iter()
        .map(|n| RouteNode {
            id: n.id(),
            priority: n.priority(),
            adjacency: cluster.adjacency(n.id()),
        })
        .collect();
    c.bench_function("route/bfs_full_128", |b| {
        b.iter(|| RouteTable::compute(black_box(me), black_box(&direct), black_box(&nodes)));
    });
    drop(nodes);

    let mut dest = 2u32;
    c.bench_function("route/cached_lookup_128", |b| {
        b.iter(|| {
            dest = if dest >= NODES { 2 } else { dest + 1 };
            black_box(node.route(CLUSTER, nid(dest)))
        });
    });

    // A link between two far nodes goes down and up again, alternately.
    let origin = (2..=NODES)
        .find(|&i| !graph[1].contains(&i) && graph[i as usize].len() > 1)
        .unwrap();
    let target = *graph[origin as usize].iter().find(|&&j| j != 1).unwrap();
    let relay = *graph[1].iter().next().unwrap();
    let mut seq = 1;
    let mut ms = 2000;
    c.bench_function("route/ls_update_then_route_128", |b| {
        b.iter(|| {
            seq += 1;
            ms += 1;
            let state = if seq % 2 == 0 {
                LinkUpdate::Down
            } else {
                LinkUpdate::Up
            };
            let update = LsUpdate {
                seq,
                timestamp: 1_800_000_002,
                neighbour: nid(target),
                state,
                path: vec![nid(origin), nid(relay)],
            };
            node.handle_message(
                at(ms),
                CONN,
                internal(nid(origin), InternalBody::LsUpdate(update)),
            )
            .unwrap();
            while node.poll_transmit().is_some() {}
            while node.poll_event().is_some() {}
            black_box(node.route(CLUSTER, nid(target)))
        });
    });
}

criterion_group!(benches, bench_routing);
criterion_main!(benches);
