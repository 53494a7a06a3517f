//! The tokio engine over real sockets on 127.0.0.x: discovery, link probing, routed
//! messages, failure detection.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use clusterer_core::message::{GenericKind, RoutedBody};
use clusterer_core::{
    ClusterConfig, ClusterId, Config, DbMode, Event, LinkState, NodeConfig, NodeId, SendStatus,
};
use clusterer_tokio::runtime::{Cluster, Handle, StartOptions};

const C1: ClusterId = match ClusterId::new(1) {
    Some(c) => c,
    None => panic!(),
};

fn n(i: u32) -> NodeId {
    NodeId::new(i).unwrap()
}

fn config(me: u32, port: u16, neighbours: &[u32]) -> Config {
    let mut c = Config::new(n(me), DbMode::Discovery);
    c.timers.ping_interval_s = 1;
    c.timers.ping_timeout_ms = 300;
    c.timers.node_timeout_s = 2;
    c.clusters.push(ClusterConfig {
        id: C1,
        local: NodeConfig::new(n(me), format!("bin:127.0.0.{me}:{port}")),
        nodes: neighbours
            .iter()
            .map(|&p| NodeConfig::new(n(p), format!("bin:127.0.0.{p}:{port}")))
            .collect(),
    });
    c
}

async fn start(me: u32, port: u16, neighbours: &[u32]) -> Handle {
    let mut opts = StartOptions::new(config(me, port, neighbours));
    opts.seed = Some(u64::from(me));
    Cluster::start(opts).await.unwrap().0
}

async fn link_states(h: &Handle) -> Vec<(u32, LinkState)> {
    h.call(|s| {
        s.endpoint
            .node()
            .cluster(C1)
            .map(|c| {
                c.nodes()
                    .iter()
                    .map(|n| (n.id().get(), n.link_state()))
                    .collect()
            })
            .unwrap_or_default()
    })
    .await
    .unwrap()
}

async fn wait_for<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_daemons_discover_each_other_from_one_neighbour() {
    let port = 17_101;
    let a = start(1, port, &[]).await;
    let b = start(2, port, &[1]).await;
    let c = start(3, port, &[1]).await;
    for h in [&a, &b, &c] {
        wait_for("all links up", || async {
            let l = link_states(h).await;
            l.len() == 2 && l.iter().all(|(_, s)| *s == LinkState::Up)
        })
        .await;
    }
    // GENERIC_MSG request from 2 to 3 arrives with its tag.
    let mut events = c.subscribe();
    let (status, tag) = b.send_req(C1, n(3), b"ask:ping".to_vec()).await.unwrap();
    assert_eq!(status, SendStatus::Success);
    let got = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Event::Received {
                source,
                body: RoutedBody::GenericMsg(m),
                ..
            } = events.recv().await.unwrap()
            {
                return (source, m);
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(got.0, n(2));
    assert_eq!(
        (got.1.kind, got.1.tag.clone(), got.1.payload.clone()),
        (GenericKind::Request, tag.into_bytes(), b"ask:ping".to_vec())
    );
    for h in [a, b, c] {
        h.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_daemon_is_detected_down_and_comes_back() {
    let port = 17_102;
    let a = start(1, port, &[2]).await;
    let b = start(2, port, &[1]).await;
    wait_for("link up", || async {
        link_states(&a).await == [(2, LinkState::Up)]
    })
    .await;
    let mut events = a.subscribe();
    b.shutdown().await;
    let down = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Event::NodeStateChanged {
                node, up: false, ..
            } = events.recv().await.unwrap()
            {
                return node;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(down, n(2));
    wait_for("link down", || async {
        link_states(&a).await == [(2, LinkState::Down)]
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _b = start(2, port, &[1]).await;
    wait_for("link up again", || async {
        link_states(&a).await == [(2, LinkState::Up)]
    })
    .await;
    a.shutdown().await;
}

#[tokio::test]
async fn bins_urls_are_refused_at_start_with_a_clear_error() {
    let mut config = config(1, 17_103, &[2]);
    config.clusters[0].nodes[0].url = "bins:127.0.0.2:17103".into();
    let err = Cluster::start(StartOptions::new(config)).await.unwrap_err();
    assert!(err.to_string().contains("bins: (BIN over TLS)"), "{err}");
}
