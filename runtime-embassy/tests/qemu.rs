//! The firmware on an emulated MCU against real daemons: the `mps2-an386` image under QEMU
//! (LAN9118 on a TAP device) as node 3 beside two `clusterer run` daemons, in a network
//! namespace (root and qemu-system-arm; skips with a notice elsewhere). The checks are in
//! `support::scenario`.

mod support;

#[test]
fn the_firmware_under_qemu_joins_two_daemons() {
    support::scenario(support::Embedded::Qemu);
}
