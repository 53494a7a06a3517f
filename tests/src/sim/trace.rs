//! The run's trace: one line per delivery, failure, event and fault, stamped with virtual
//! time. Two runs with the same seed produce the same trace byte for byte; a failing test
//! prints its tail together with the seed.

use std::fmt::Write as _;
use std::io;

use clusterer_core::message::{InternalBody, LinkUpdate, Message};
use clusterer_core::{Instant, NodeId};
use clusterer_proto::wire;

/// How much of the trace a run keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TraceMode {
    /// Nothing is formatted (fastest; for benchmarks).
    Off,
    /// Lines are formatted and hashed but not kept (cheap determinism checks on long runs).
    Hash,
    /// Lines are kept (and hashed).
    #[default]
    Full,
}

/// The trace of one run.
#[derive(Clone, Debug, Default)]
pub struct Trace {
    mode: TraceMode,
    lines: Vec<String>,
    hash: u64,
    count: u64,
}

/// FNV-1a offset basis.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a prime.
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

impl Trace {
    /// An empty trace.
    pub fn new(mode: TraceMode) -> Self {
        Trace {
            mode,
            lines: Vec::new(),
            hash: FNV_OFFSET,
            count: 0,
        }
    }

    /// Whether lines are formatted at all (callers skip building them otherwise).
    pub fn enabled(&self) -> bool {
        self.mode != TraceMode::Off
    }

    /// The mode.
    pub fn mode(&self) -> TraceMode {
        self.mode
    }

    /// Appends a line at virtual time `at`.
    pub fn record(&mut self, at: Instant, text: &str) {
        if !self.enabled() {
            return;
        }
        let line = format!("{:>11} {text}", at.to_string());
        for b in line.bytes().chain(std::iter::once(b'\n')) {
            self.hash = (self.hash ^ u64::from(b)).wrapping_mul(FNV_PRIME);
        }
        self.count += 1;
        if self.mode == TraceMode::Full {
            self.lines.push(line);
        }
    }

    /// The kept lines (empty unless [`TraceMode::Full`]).
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// FNV-1a hash over every line recorded so far (each followed by `\n`).
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// Number of lines recorded (kept or not).
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The last `n` kept lines joined with newlines (for failure messages).
    pub fn tail(&self, n: usize) -> String {
        let start = self.lines.len().saturating_sub(n);
        self.lines[start..].join("\n")
    }

    /// Writes every kept line to `out`.
    ///
    /// # Errors
    /// The writer's error.
    pub fn write_to(&self, mut out: impl io::Write) -> io::Result<()> {
        for line in &self.lines {
            writeln!(out, "{line}")?;
        }
        Ok(())
    }
}

/// The spec name of a packet's type (`PING`, `GENERIC_MSG`, `MODULE`, `MALFORMED`), read
/// without allocating.
pub fn packet_kind(bytes: &[u8]) -> &'static str {
    wire::parse_view(bytes).map_or("MALFORMED", |view| view.kind().name())
}

fn ids(list: &[NodeId]) -> String {
    let mut s = String::from("[");
    for (i, id) in list.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "{id}");
    }
    s.push(']');
    s
}

/// A one-line description of a packet for the trace: type, originator and the fields that
/// matter for topology (sequence numbers, neighbours, paths).
pub fn describe_packet(bytes: &[u8]) -> String {
    let message = match wire::parse(bytes) {
        Ok(m) => m,
        Err(e) => return format!("MALFORMED({e:?}, {} bytes)", bytes.len()),
    };
    match message {
        Message::Internal(m) => {
            let o = m.source;
            match &m.body {
                InternalBody::Ping(p) => format!("PING({}) o{o}", u8::from(p.req_node_list)),
                InternalBody::Pong(p) => format!("PONG{} o{o}", ids(&p.nodes)),
                InternalBody::LsUpdate(u) => format!(
                    "LS_UPDATE o{o} seq{} ts{} {}-{} {} path{}",
                    u.seq,
                    u.timestamp,
                    o,
                    u.neighbour,
                    match u.state {
                        LinkUpdate::Up => "UP",
                        LinkUpdate::Down => "DOWN",
                    },
                    ids(&u.path)
                ),
                InternalBody::FullTopUpdate(u) => {
                    let mut s = format!("FULL_TOP_UPDATE o{o} seq{} ts{} {{", u.seq, u.timestamp);
                    for (i, e) in u.entries.iter().enumerate() {
                        if i > 0 {
                            s.push(' ');
                        }
                        let _ = write!(
                            s,
                            "{}{}@{}:{}",
                            e.node,
                            if e.description.is_some() { "*" } else { "" },
                            e.ls_seq,
                            ids(&e.neighbours)
                        );
                    }
                    let _ = write!(s, "}} path{}", ids(&u.path));
                    s
                }
                InternalBody::UnknownId => format!("UNKNOWN_ID o{o}"),
                InternalBody::NodeDescription(d) => {
                    format!("NODE_DESCRIPTION o{o} {} path{}", d.info.url, ids(&d.path))
                }
                InternalBody::CapUpdate(u) => format!(
                    "CAP_UPDATE o{o} seq{} reply{} path{}",
                    u.seq,
                    u8::from(u.require_reply),
                    ids(&u.path)
                ),
            }
        }
        Message::Routed(r) => format!(
            "{} {}->{}",
            r.body.type_name(),
            r.trailer.source,
            r.trailer.destination
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_mode_hashes_like_full_mode_without_keeping_lines() {
        let mut full = Trace::new(TraceMode::Full);
        let mut hashed = Trace::new(TraceMode::Hash);
        let mut off = Trace::new(TraceMode::Off);
        for t in [&mut full, &mut hashed, &mut off] {
            t.record(Instant::from_millis(1500), "crash n3");
            t.record(Instant::from_millis(2000), "restart n3");
        }
        assert_eq!(full.hash(), hashed.hash());
        assert_eq!(full.lines().len(), 2);
        assert!(hashed.lines().is_empty());
        assert_eq!(hashed.len(), 2);
        assert!(off.is_empty());
        assert_eq!(full.lines()[0], "     1.500s crash n3");
    }
}
