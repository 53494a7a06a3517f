//! Prometheus text exposition of the engine's state: node counts, link state per peer,
//! packets sent/received/relayed/dropped by reason, sync status and chunks per capability,
//! sharing tag states.

use std::fmt::Write;

use clusterer_core::LinkState;
use clusterer_core::shtag::ShtagState;

use crate::runtime::EngineState;

/// Renders every metric in the Prometheus text format (version 0.0.4).
pub fn render(state: &EngineState<'_>) -> String {
    let node = state.endpoint.node();
    let counters = state.endpoint.counters();
    let stats = node.stats();
    let mut out = String::with_capacity(4096);
    // One metric family: help, type, then `name{labels} value` lines.
    let push = |out: &mut String, name: &str, kind: &str, help: &str, lines: &[String]| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for l in lines {
            let _ = writeln!(out, "{name}{l}");
        }
    };
    push(
        &mut out,
        "clusterer_nodes",
        "gauge",
        "Other-node entries over all clusters.",
        &[format!(" {}", stats.nodes)],
    );
    push(
        &mut out,
        "clusterer_nodes_up",
        "gauge",
        "Nodes whose direct link is UP.",
        &[format!(" {}", stats.nodes_up)],
    );
    push(
        &mut out,
        "clusterer_nodes_down",
        "gauge",
        "Nodes whose direct link is not UP.",
        &[format!(" {}", stats.nodes_down)],
    );
    let mut links = Vec::new();
    let mut reachable = Vec::new();
    for c in node.clusters() {
        for n in c.nodes() {
            let up = u8::from(n.link_state() == LinkState::Up);
            links.push(format!(
                "{{cluster=\"{}\",node=\"{}\",state=\"{}\"}} {up}",
                c.id(),
                n.id(),
                n.link_state().mi_name()
            ));
            reachable.push(format!(
                "{{cluster=\"{}\",node=\"{}\"}} {}",
                c.id(),
                n.id(),
                u8::from(n.is_reachable())
            ));
        }
    }
    push(
        &mut out,
        "clusterer_link_up",
        "gauge",
        "1 when the direct link to the node is UP; the state label is Up, Probe or Down.",
        &links,
    );
    push(
        &mut out,
        "clusterer_node_reachable",
        "gauge",
        "1 when the node has a route (direct or relayed).",
        &reachable,
    );
    push(
        &mut out,
        "clusterer_packets_received_total",
        "counter",
        "BIN packets decoded from peers.",
        &[format!(" {}", counters.received)],
    );
    push(
        &mut out,
        "clusterer_packets_sent_total",
        "counter",
        "BIN packets encoded for sending, relays included.",
        &[format!(" {}", counters.sent)],
    );
    push(
        &mut out,
        "clusterer_packets_relayed_total",
        "counter",
        "Routed packets forwarded for other nodes.",
        &[format!(" {}", counters.relayed)],
    );
    push(
        &mut out,
        "clusterer_send_failures_total",
        "counter",
        "Sends the transport could not complete.",
        &[format!(" {}", counters.send_failures)],
    );
    let dropped: Vec<String> = counters
        .dropped
        .iter()
        .map(|(cause, n)| format!("{{reason=\"{}\"}} {n}", cause.name()))
        .collect();
    push(
        &mut out,
        "clusterer_packets_dropped_total",
        "counter",
        "Received packets dropped, by reason.",
        &dropped,
    );
    push(
        &mut out,
        "clusterer_connections",
        "gauge",
        "Open TCP connections.",
        &[format!(" {}", state.connections)],
    );
    push(
        &mut out,
        "clusterer_send_queue_overflows_total",
        "counter",
        "Packets refused because a connection's send queue was full.",
        &[format!(" {}", state.transport.queue_overflows)],
    );
    let mut sync_status = Vec::new();
    let mut chunks = Vec::new();
    let mut skipped = Vec::new();
    for c in node.clusters() {
        for cap in c.capabilities() {
            let labels = format!("{{cluster=\"{}\",capability=\"{}\"}}", c.id(), cap.name());
            sync_status.push(format!("{labels} {}", cap.status().code()));
            chunks.push(format!("{labels} {}", cap.chunks_received()));
            skipped.push(format!("{labels} {}", cap.rejected_packets()));
        }
    }
    push(
        &mut out,
        "clusterer_capability_sync_status",
        "gauge",
        "Sync status: -3 not synced, -2 pending, -1 in progress, 1 synced.",
        &sync_status,
    );
    push(
        &mut out,
        "clusterer_capability_sync_chunks_total",
        "counter",
        "Sync chunks received.",
        &chunks,
    );
    push(
        &mut out,
        "clusterer_capability_rejected_packets_total",
        "counter",
        "Live packets the capability could not apply.",
        &skipped,
    );
    let tags: Vec<String> = node
        .shtags()
        .map(|(cluster, t)| {
            format!(
                "{{cluster=\"{cluster}\",tag=\"{}\"}} {}",
                t.name(),
                u8::from(t.state() == ShtagState::Active)
            )
        })
        .collect();
    push(
        &mut out,
        "clusterer_sharing_tag_active",
        "gauge",
        "1 when the sharing tag is active on this node.",
        &tags,
    );
    out
}
