//! Sending routed messages for API callers, with the OpenSIPS return codes
//! (docs/behaviour.md §5.5).

use alloc::vec::Vec;

use core::net::IpAddr;

use crate::capability::NodeMatch;
use crate::cluster::Cluster;
use crate::id::{ClusterId, NodeId};
use crate::message::{Routed, RoutedBody, Trailer};
use crate::node::{Ctx, Node};
use crate::output::Event;
use crate::time::Now;

pub use crate::output::SendStatus;

impl Ctx<'_> {
    /// Unicast rules 2, 3, 5 and 6 of §5.5 (the caller checked cluster and local state).
    pub(crate) fn send_one(
        &mut self,
        c: &mut Cluster,
        dest: NodeId,
        version: i16,
        body: RoutedBody,
    ) -> SendStatus {
        let me = self.s.my_id;
        if dest == me {
            if let RoutedBody::GenericMsg(_) = body {
                self.out.event(Event::Received {
                    cluster: c.id,
                    source: me,
                    version,
                    body,
                });
                return SendStatus::Success;
            }
            return SendStatus::SendErr;
        }
        let Some(n) = c.node(dest) else {
            return SendStatus::SendErr;
        };
        if !n.enabled {
            return SendStatus::Success;
        }
        let trailer = Trailer {
            cluster: c.id,
            source: me,
            destination: dest,
        };
        if self.send_routed(
            c,
            Routed {
                version,
                trailer,
                body,
            },
        ) {
            SendStatus::Success
        } else {
            SendStatus::DestDown
        }
    }
}

impl Node {
    /// Sends `body` to `dest` over the shortest live path, with the body's standard BIN
    /// version (`cl_send_to`, `cluster_send_req/rpl`, `cluster_send_mi`).
    pub fn send_to(
        &mut self,
        now: Now,
        cluster: ClusterId,
        dest: NodeId,
        body: RoutedBody,
    ) -> SendStatus {
        let version = body.standard_version();
        self.send_to_with_version(now, cluster, dest, version, body)
    }

    /// As [`Node::send_to`] with an explicit BIN version (module packets carry the module's
    /// own version). A module packet needs its capability registered (else SendErr) and
    /// enabled (else Success without sending).
    pub fn send_to_with_version(
        &mut self,
        now: Now,
        cluster: ClusterId,
        dest: NodeId,
        version: i16,
        body: RoutedBody,
    ) -> SendStatus {
        self.with_sender(now, cluster, body, |ctx, c, body| {
            ctx.send_one(c, dest, version, body)
        })
    }

    /// Runs a send of `body` in `cluster` once the rules every send shares passed: an
    /// unknown cluster is SendErr, a disabled local node CurrDisabled, and a module packet
    /// needs its capability registered and enabled ([`module_gate`]).
    fn with_sender(
        &mut self,
        now: Now,
        cluster: ClusterId,
        body: RoutedBody,
        send: impl FnOnce(&mut Ctx<'_>, &mut Cluster, RoutedBody) -> SendStatus,
    ) -> SendStatus {
        self.with_ctx(now, cluster, |ctx, c| {
            if !c.local.enabled {
                return SendStatus::CurrDisabled;
            }
            if let Some(status) = module_gate(c, &body) {
                return status;
            }
            send(ctx, c, body)
        })
        .unwrap_or(SendStatus::SendErr)
    }

    /// Sends `body` to every other enabled node of the cluster, one unicast each with its
    /// own destination (`cl_send_all`, `cluster_broadcast_req`, `cluster_broadcast_mi`).
    /// Success when no node matched or at least one copy was sent; DestDown when every
    /// matched node was unreachable.
    pub fn broadcast(&mut self, now: Now, cluster: ClusterId, body: RoutedBody) -> SendStatus {
        let version = body.standard_version();
        self.broadcast_matching(now, cluster, NodeMatch::Any, version, body)
    }

    /// Broadcast to the enabled nodes that pass `matching` (`cl_send_all_having`); with
    /// [`NodeMatch::All`] a GENERIC_MSG is also delivered locally (`include_self`).
    pub fn broadcast_matching(
        &mut self,
        now: Now,
        cluster: ClusterId,
        matching: NodeMatch,
        version: i16,
        body: RoutedBody,
    ) -> SendStatus {
        self.with_sender(now, cluster, body, |ctx, c, body| {
            let local_sip = c.local.sip_addr.clone();
            let targets: Vec<NodeId> = c
                .nodes
                .iter()
                .filter(|n| n.enabled && matching.matches(&local_sip, &n.sip_addr))
                .map(|n| n.id)
                .collect();
            let (mut sent, mut down) = (0usize, 0usize);
            for dest in &targets {
                match ctx.send_one(c, *dest, version, body.clone()) {
                    SendStatus::Success => sent += 1,
                    SendStatus::DestDown => down += 1,
                    _ => {}
                }
            }
            if matching == NodeMatch::All && matches!(body, RoutedBody::GenericMsg(_)) {
                let me = ctx.s.my_id;
                ctx.out.event(Event::Received {
                    cluster: c.id,
                    source: me,
                    version,
                    body,
                });
            }
            if targets.is_empty() || sent > 0 {
                SendStatus::Success
            } else if down == targets.len() {
                SendStatus::DestDown
            } else {
                SendStatus::SendErr
            }
        })
    }

    /// `cluster_check_addr`: whether `addr` belongs to another node of the cluster.
    /// [`AddrKind::Sip`] compares with the host of each node's sip_addr (a `sip:`/`sips:`
    /// scheme, an IPv6 `[...]` host, a port and URI parameters are understood);
    /// [`AddrKind::Bin`] compares an IPv4 or IPv6 address with each node's BIN URL address
    /// (quirk #20 fixed). The local node is never matched, as in OpenSIPS. `None` for an
    /// unknown cluster.
    pub fn check_addr(&self, cluster: ClusterId, addr: &str, kind: AddrKind) -> Option<bool> {
        let c = self.cluster(cluster)?;
        Some(match kind {
            AddrKind::Sip => {
                let wanted = sip_host(addr);
                c.nodes
                    .iter()
                    .any(|n| !n.sip_addr.is_empty() && sip_host(&n.sip_addr) == wanted)
            }
            AddrKind::Bin => match addr
                .trim()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
            {
                Ok(ip) => c
                    .nodes
                    .iter()
                    .any(|n| n.address.ip().to_canonical() == ip.to_canonical()),
                Err(_) => false,
            },
        })
    }
}

/// What [`Node::check_addr`] compares against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AddrKind {
    /// The nodes' SIP addresses.
    Sip,
    /// The nodes' BIN URL addresses.
    Bin,
}

/// Module sends: unknown capability → SendErr, disabled → Success without sending
/// (docs/behaviour.md §5.5 step 4).
fn module_gate(c: &Cluster, body: &RoutedBody) -> Option<SendStatus> {
    let RoutedBody::Module(p) = body else {
        return None;
    };
    match c.capability(&p.capability) {
        None => Some(SendStatus::SendErr),
        Some(cap) if !cap.enabled() => Some(SendStatus::Success),
        Some(_) => None,
    }
}

/// The host part of a SIP address: scheme, user part, port and parameters removed, IPv6
/// brackets stripped, compared case-insensitively by the caller's equality on lowercase.
fn sip_host(addr: &str) -> alloc::string::String {
    let mut s = addr.trim();
    for scheme in ["sips:", "sip:"] {
        if s.len() >= scheme.len() && s[..scheme.len()].eq_ignore_ascii_case(scheme) {
            s = &s[scheme.len()..];
        }
    }
    if let Some((_, host)) = s.rsplit_once('@') {
        s = host;
    }
    let s = s.split([';', '?']).next().unwrap_or(s);
    let host = if let Some(v6) = s.strip_prefix('[') {
        v6.split(']').next().unwrap_or(v6)
    } else if s.matches(':').count() > 1 {
        // A bare IPv6 address without a port.
        s
    } else {
        s.split(':').next().unwrap_or(s)
    };
    host.to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_hosts_drop_scheme_user_port_and_params() {
        assert_eq!(sip_host("10.0.0.1:5060"), "10.0.0.1");
        assert_eq!(
            sip_host("sip:proxy@10.0.0.1:5060;transport=tcp"),
            "10.0.0.1"
        );
        assert_eq!(sip_host("SIPS:[2001:DB8::1]:5061"), "2001:db8::1");
        assert_eq!(sip_host("2001:db8::1"), "2001:db8::1");
        assert_eq!(sip_host("Example.COM"), "example.com");
    }
}
