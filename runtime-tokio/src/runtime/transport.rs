//! TCP transport of the engine (docs/wire.md §2.4): one listener per local BIN address, one
//! outgoing connection per destination URL bound to the local URL's IP, packets read on
//! inbound and outbound connections alike, bounded per-connection send queues, transparent
//! reconnects.
//!
//! Every connection has a reader task (bytes → engine) and a writer task (queued packets →
//! socket). The writer keeps two queues, one per [`Lane`]: every queued control packet
//! (PING, PONG, topology) is written before the next bulk one (SYNC data, module packets),
//! so a link's liveness never waits behind a large sync. The connection tables live in the
//! engine task; no locks.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use clusterer_core::ConnectionId;
use clusterer_proto::{Destination, Lane, OutgoingPacket};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Bulk packets queued per connection; past it a send fails (counted, reported to the core).
pub const SEND_QUEUE_PACKETS: usize = 4096;
/// Control packets queued per connection (they are few: a PING or PONG per link and tick,
/// topology floods); past it a send fails like a bulk one.
pub(crate) const CONTROL_QUEUE_PACKETS: usize = 1024;
/// How long an outgoing connect may take before its packets are reported failed.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Read buffer per connection.
const READ_CHUNK: usize = 64 * 1024;

/// What IO tasks tell the engine.
#[derive(Debug)]
pub(crate) enum NetInput {
    /// The listener accepted a connection; the engine registers it.
    Accepted(TcpStream, SocketAddr),
    /// A connection is established (accepted, or connected by us).
    Opened(ConnectionId, SocketAddr),
    /// Bytes read.
    Bytes(ConnectionId, Vec<u8>),
    /// The connection ended (EOF, error, or connect failure).
    Closed(ConnectionId),
    /// A packet could not be written.
    SendFailed(OutgoingPacket),
}

/// The sending side of a connection's two queues.
struct Queues {
    control: mpsc::Sender<OutgoingPacket>,
    bulk: mpsc::Sender<OutgoingPacket>,
}

/// The writer's side of a connection's two queues.
struct Lanes {
    control: mpsc::Receiver<OutgoingPacket>,
    bulk: mpsc::Receiver<OutgoingPacket>,
}

/// A connection's queues: `(senders for the engine, receivers for the writer task)`.
fn queues() -> (Queues, Lanes) {
    let (control, control_rx) = mpsc::channel(CONTROL_QUEUE_PACKETS);
    let (bulk, bulk_rx) = mpsc::channel(SEND_QUEUE_PACKETS);
    (
        Queues { control, bulk },
        Lanes {
            control: control_rx,
            bulk: bulk_rx,
        },
    )
}

impl Queues {
    /// Queues `packet` in its lane without waiting.
    fn try_send(
        &self,
        packet: OutgoingPacket,
    ) -> Result<(), mpsc::error::TrySendError<OutgoingPacket>> {
        match packet.info.lane {
            Lane::Control => self.control.try_send(packet),
            Lane::Bulk => self.bulk.try_send(packet),
        }
    }
}

impl Lanes {
    /// The next packet to write: a control packet whenever one is queued. `None` once the
    /// engine dropped the connection (both senders are dropped together).
    async fn recv(&mut self) -> Option<OutgoingPacket> {
        tokio::select! {
            biased;
            p = self.control.recv() => p,
            p = self.bulk.recv() => p,
        }
    }

    /// Closes both queues and hands back whatever was still queued, control packets first.
    async fn drain(mut self, input: &mpsc::Sender<NetInput>) {
        self.control.close();
        self.bulk.close();
        while let Some(p) = self.control.recv().await {
            if input.send(NetInput::SendFailed(p)).await.is_err() {
                return;
            }
        }
        while let Some(p) = self.bulk.recv().await {
            if input.send(NetInput::SendFailed(p)).await.is_err() {
                return;
            }
        }
    }
}

struct Conn {
    writer: Queues,
    tasks: Vec<JoinHandle<()>>,
    /// For outgoing connections: the destination URL address.
    outgoing_to: Option<SocketAddr>,
}

/// Transport counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransportCounters {
    /// Outgoing connections attempted.
    pub connects: u64,
    /// Outgoing connections that failed.
    pub connect_failures: u64,
    /// Inbound connections accepted.
    pub accepted: u64,
    /// Packets refused because a send queue was full.
    pub queue_overflows: u64,
    /// Bytes written.
    pub bytes_written: u64,
}

/// The connection tables and task spawner.
pub(crate) struct Transport {
    input: mpsc::Sender<NetInput>,
    next_id: u64,
    conns: HashMap<ConnectionId, Conn>,
    outgoing: HashMap<SocketAddr, ConnectionId>,
    listeners: Vec<JoinHandle<()>>,
    pub(crate) counters: TransportCounters,
    counters_rx: mpsc::UnboundedReceiver<u64>,
    counters_tx: mpsc::UnboundedSender<u64>,
}

impl Transport {
    pub(crate) fn new(input: mpsc::Sender<NetInput>) -> Self {
        let (counters_tx, counters_rx) = mpsc::unbounded_channel();
        Transport {
            input,
            next_id: 1,
            conns: HashMap::new(),
            outgoing: HashMap::new(),
            listeners: Vec::new(),
            counters: TransportCounters::default(),
            counters_rx,
            counters_tx,
        }
    }

    fn new_id(&mut self) -> ConnectionId {
        let id = ConnectionId(self.next_id);
        self.next_id += 1;
        id
    }

    /// Binds a listener on `addr` (SO_REUSEADDR) and accepts connections in a task; each
    /// accepted socket reaches the engine as [`NetInput::Accepted`].
    pub(crate) async fn listen(&mut self, addr: SocketAddr) -> io::Result<SocketAddr> {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        let listener = socket.listen(1024)?;
        let local = listener.local_addr()?;
        self.listeners
            .push(tokio::spawn(accept_loop(listener, self.input.clone())));
        Ok(local)
    }

    /// Drains transport counters updated by writer tasks.
    pub(crate) fn refresh_counters(&mut self) {
        while let Ok(n) = self.counters_rx.try_recv() {
            self.counters.bytes_written += n;
        }
    }

    /// Queues `packet` on its connection, opening an outgoing connection from `bind_ip` if
    /// needed. A packet that cannot be queued is handed back.
    pub(crate) fn send(
        &mut self,
        packet: OutgoingPacket,
        bind_ip: Option<IpAddr>,
    ) -> Result<(), OutgoingPacket> {
        let id = match packet.info.to {
            Destination::Connection(id) => id,
            Destination::Node { address, .. } => {
                let dest = address.socket;
                match self.outgoing.get(&dest) {
                    Some(id) => *id,
                    None => self.connect(dest, bind_ip),
                }
            }
        };
        let Some(conn) = self.conns.get(&id) else {
            return Err(packet);
        };
        match conn.writer.try_send(packet) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(p)) => {
                self.counters.queue_overflows += 1;
                Err(p)
            }
            Err(mpsc::error::TrySendError::Closed(p)) => {
                // The connection died under us: forget it and retry once on a new one.
                self.close(id);
                match p.info.to {
                    Destination::Node { address, .. } => {
                        let id = self.connect(address.socket, bind_ip);
                        match self.conns.get(&id) {
                            Some(c) => c.writer.try_send(p).map_err(|e| e.into_inner()),
                            None => Err(p),
                        }
                    }
                    Destination::Connection(_) => Err(p),
                }
            }
        }
    }

    /// Starts an outgoing connection to `dest`; packets queue until it is established.
    fn connect(&mut self, dest: SocketAddr, bind_ip: Option<IpAddr>) -> ConnectionId {
        let id = self.new_id();
        self.counters.connects += 1;
        let (tx, rx) = queues();
        let input = self.input.clone();
        let counters = self.counters_tx.clone();
        let task = tokio::spawn(async move {
            match connect_from(dest, bind_ip).await {
                Ok(stream) => run_connection(id, stream, dest, rx, input, counters).await,
                Err(_) => {
                    rx.drain(&input).await;
                    let _ = input.send(NetInput::Closed(id)).await;
                }
            }
        });
        self.conns.insert(
            id,
            Conn {
                writer: tx,
                tasks: vec![task],
                outgoing_to: Some(dest),
            },
        );
        self.outgoing.insert(dest, id);
        id
    }

    /// Registers an accepted connection and starts its tasks.
    pub(crate) fn accepted(&mut self, stream: TcpStream, peer: SocketAddr) -> ConnectionId {
        let id = self.new_id();
        self.counters.accepted += 1;
        let (tx, rx) = queues();
        let input = self.input.clone();
        let counters = self.counters_tx.clone();
        let task = tokio::spawn(run_connection(id, stream, peer, rx, input, counters));
        self.conns.insert(
            id,
            Conn {
                writer: tx,
                tasks: vec![task],
                outgoing_to: None,
            },
        );
        id
    }

    /// Forgets a connection and stops its tasks (framing error or EOF).
    pub(crate) fn close(&mut self, id: ConnectionId) {
        if let Some(conn) = self.conns.remove(&id) {
            if let Some(dest) = conn.outgoing_to
                && self.outgoing.get(&dest) == Some(&id)
            {
                self.outgoing.remove(&dest);
            }
            for t in conn.tasks {
                t.abort();
            }
        }
    }

    /// Open connections (inbound and outbound).
    pub(crate) fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Stops every task.
    pub(crate) fn shutdown(&mut self) {
        for t in self.listeners.drain(..) {
            t.abort();
        }
        let ids: Vec<ConnectionId> = self.conns.keys().copied().collect();
        for id in ids {
            self.close(id);
        }
    }
}

async fn accept_loop(listener: TcpListener, out: mpsc::Sender<NetInput>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                if out.send(NetInput::Accepted(stream, peer)).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Connects to `dest` from `bind_ip` (port chosen by the OS), as OpenSIPS binds outgoing
/// connections to its listener's address: peers authenticate by source IP.
async fn connect_from(dest: SocketAddr, bind_ip: Option<IpAddr>) -> io::Result<TcpStream> {
    let socket = if dest.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(ip) = bind_ip
        && ip.is_ipv4() == dest.is_ipv4()
    {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, socket.connect(dest))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Runs an established connection: announces it, then reads and writes until either side
/// fails; unsent packets are reported failed.
async fn run_connection(
    id: ConnectionId,
    stream: TcpStream,
    peer: SocketAddr,
    mut rx: Lanes,
    input: mpsc::Sender<NetInput>,
    counters: mpsc::UnboundedSender<u64>,
) {
    if input.send(NetInput::Opened(id, peer)).await.is_err() {
        return;
    }
    let (mut reader, mut writer) = stream.into_split();
    let read_input = input.clone();
    let mut read_task = tokio::spawn(async move {
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if read_input
                        .send(NetInput::Bytes(id, buf[..n].to_vec()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
    });
    loop {
        tokio::select! {
            _ = &mut read_task => break,
            packet = rx.recv() => {
                let Some(packet) = packet else { break };
                if writer.write_all(&packet.bytes).await.is_err() {
                    let _ = input.send(NetInput::SendFailed(packet)).await;
                    break;
                }
                let _ = counters.send(packet.bytes.len() as u64);
            }
        }
    }
    read_task.abort();
    rx.drain(&input).await;
    let _ = input.send(NetInput::Closed(id)).await;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use clusterer_core::{ClusterId, NodeAddress, NodeId};
    use clusterer_proto::endpoint::{PacketInfo, PacketKind};

    use super::*;

    const BULK_PACKETS: usize = 400;
    const BULK_SIZE: usize = 60_000;

    fn packet(port: u16, lane: Lane, fill: u8, len: usize) -> OutgoingPacket {
        let kind = match lane {
            Lane::Control => PacketKind::Internal,
            Lane::Bulk => PacketKind::Routed {
                destination: NodeId::new(2).unwrap(),
            },
        };
        OutgoingPacket {
            info: PacketInfo {
                cluster: ClusterId::new(1).unwrap(),
                to: Destination::Node {
                    id: NodeId::new(2).unwrap(),
                    address: NodeAddress::parse(&format!("bin:127.0.0.1:{port}")).unwrap(),
                },
                lane,
                kind,
                type_name: "TEST",
                relayed: false,
            },
            bytes: vec![fill; len],
        }
    }

    /// Issue 20 item 2: a PONG queued behind megabytes of SYNC packets to the same peer
    /// reached it after its ping_timeout. 24 MB of bulk packets are queued to a peer that
    /// does not read yet (the kernel buffers take a few MB, the rest waits in the queue),
    /// then one control packet: it must reach the peer before the bulk queue has drained,
    /// and every byte must arrive.
    #[tokio::test]
    async fn a_control_packet_overtakes_queued_bulk_packets_to_the_same_peer() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (input, mut engine) = mpsc::channel(1024);
        let mut transport = Transport::new(input);
        for _ in 0..BULK_PACKETS {
            transport
                .send(packet(port, Lane::Bulk, b'B', BULK_SIZE), None)
                .unwrap();
        }
        let (mut peer, _) = listener.accept().await.unwrap();
        // Let the writer fill the socket buffers while the peer does not read.
        tokio::time::sleep(Duration::from_millis(200)).await;
        transport
            .send(packet(port, Lane::Control, b'C', 10), None)
            .unwrap();
        let total = BULK_PACKETS * BULK_SIZE + 10;
        let mut received = Vec::with_capacity(total);
        let mut buf = vec![0u8; 1 << 16];
        while received.len() < total {
            let n = tokio::time::timeout(Duration::from_secs(20), peer.read(&mut buf))
                .await
                .expect("the peer kept receiving")
                .unwrap();
            assert!(n > 0, "connection closed after {} bytes", received.len());
            received.extend_from_slice(&buf[..n]);
        }
        let at = received
            .iter()
            .position(|&b| b == b'C')
            .expect("control packet");
        assert_eq!(&received[at..at + 10], &[b'C'; 10]);
        assert_eq!(at % BULK_SIZE, 0, "written between whole bulk packets");
        let before = at / BULK_SIZE;
        assert!(
            before < BULK_PACKETS / 2,
            "{before} of {BULK_PACKETS} bulk packets were written before the control packet"
        );
        assert!(received.iter().filter(|&&b| b == b'B').count() == BULK_PACKETS * BULK_SIZE);
        transport.shutdown();
        while engine.try_recv().is_ok() {}
    }
}
