//! TCP transport of the engine (wire.md §2.4): one listener per local BIN address, one
//! outgoing connection per destination URL bound to the local URL's IP, packets read on
//! inbound and outbound connections alike, bounded per-connection send queues, transparent
//! reconnects.
//!
//! Every connection has a reader task (bytes → engine) and a writer task (queued packets →
//! socket). The connection tables live in the engine task; no locks.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use clusterer_core::ConnectionId;
use clusterer_proto::{Destination, OutgoingPacket};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Packets queued per connection; past it a send fails (counted, reported to the core).
pub const SEND_QUEUE_PACKETS: usize = 4096;
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

struct Conn {
    writer: mpsc::Sender<OutgoingPacket>,
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
        let id = match packet.to {
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
                match p.to {
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
        let (tx, rx) = mpsc::channel(SEND_QUEUE_PACKETS);
        let input = self.input.clone();
        let counters = self.counters_tx.clone();
        let task = tokio::spawn(async move {
            match connect_from(dest, bind_ip).await {
                Ok(stream) => run_connection(id, stream, dest, rx, input, counters).await,
                Err(_) => {
                    fail_queue(rx, &input).await;
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
        let (tx, rx) = mpsc::channel(SEND_QUEUE_PACKETS);
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

/// Reports every queued packet as failed.
async fn fail_queue(mut rx: mpsc::Receiver<OutgoingPacket>, input: &mpsc::Sender<NetInput>) {
    rx.close();
    while let Some(p) = rx.recv().await {
        if input.send(NetInput::SendFailed(p)).await.is_err() {
            return;
        }
    }
}

/// Runs an established connection: announces it, then reads and writes until either side
/// fails; unsent packets are reported failed.
async fn run_connection(
    id: ConnectionId,
    stream: TcpStream,
    peer: SocketAddr,
    mut rx: mpsc::Receiver<OutgoingPacket>,
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
    fail_queue(rx, &input).await;
    let _ = input.send(NetInput::Closed(id)).await;
}
