//! The embassy runtime on a real TCP/IP stack against real daemons: `tap_node`
//! (embassy-net on a TAP device) as node 3 beside two `clusterer run` daemons, in a network
//! namespace (root; skips with a notice elsewhere). The checks are in `support::scenario`.

mod support;

#[test]
fn an_embassy_node_on_a_tap_device_joins_two_daemons() {
    support::scenario(support::Embedded::TapNode);
}
