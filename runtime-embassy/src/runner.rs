//! The [`Runner`]: one future that drives the engine loop and one worker per socket of
//! the pool, joined (embassy tasks cannot be generic, so the caller spawns this one
//! future in one task of its own).

use core::convert::Infallible;
use core::net::SocketAddr;

use embassy_futures::join::{join, join_array};
use embassy_futures::select::{Either, select};
use embassy_futures::yield_now;
use embassy_net::tcp::TcpSocket;
use embassy_time::{Duration, Timer, with_timeout};

use crate::log;
use crate::state::{Role, Shared};
use crate::{ACCEPT_RETRY, CONNECT_TIMEOUT, TCP_KEEP_ALIVE, TCP_TIMEOUT};

/// Drives the node; spawn [`Runner::run`] once (see the crate docs).
pub struct Runner<const SOCKETS: usize> {
    pub(crate) shared: &'static Shared<SOCKETS>,
    pub(crate) sockets: [TcpSocket<'static>; SOCKETS],
}

impl<const SOCKETS: usize> Runner<SOCKETS> {
    /// Runs the node forever: the engine loop and every socket's worker.
    pub async fn run(self) -> ! {
        let Runner { shared, sockets } = self;
        let mut index = 0;
        let workers = sockets.map(|socket| {
            let i = index;
            index += 1;
            worker(shared, i, socket)
        });
        let (never, _) = join(engine(shared), join_array(workers)).await;
        match never {}
    }
}

/// The driving loop: write what the endpoint produced, then sleep until its deadline or
/// until a worker or a handle has news.
async fn engine<const SOCKETS: usize>(shared: &'static Shared<SOCKETS>) -> Infallible {
    loop {
        let (more, deadline) = shared.with(|st| {
            let more = st.flush(&shared.slot_wake, &shared.events);
            (more, st.clock.deadline(st.endpoint.poll_timeout()))
        });
        if more {
            yield_now().await;
            continue;
        }
        if let Either::First(()) = select(Timer::at(deadline), shared.engine_wake.wait()).await {
            shared.with(|st| {
                let now = st.clock.now();
                st.endpoint.handle_timeout(now);
            });
        }
    }
}

/// What a socket's worker does: wait for a role, listen or connect, then carry the
/// connection until it ends, and start over.
async fn worker<const SOCKETS: usize>(
    shared: &'static Shared<SOCKETS>,
    i: usize,
    mut socket: TcpSocket<'static>,
) -> Infallible {
    loop {
        let role = loop {
            let role = shared.with(|st| st.slots[i].role);
            if role != Role::Idle {
                break role;
            }
            shared.slot_wake[i].wait().await;
        };
        let peer = match role {
            Role::Listen(port) => accept(&mut socket, port).await,
            Role::Connect(to) => connect(&mut socket, to).await,
            Role::Idle | Role::Connected => None,
        };
        let Some(peer) = peer else {
            socket.abort();
            shared.with(|st| st.closed(i));
            shared.engine_wake.signal(());
            if matches!(role, Role::Listen(_)) {
                Timer::after(ACCEPT_RETRY).await;
            }
            continue;
        };
        socket.set_timeout(Some(TCP_TIMEOUT));
        socket.set_keep_alive(Some(TCP_KEEP_ALIVE));
        socket.set_nagle_enabled(false);
        let id = shared.with(|st| st.opened(i, peer));
        log::debug!("slot {}: connection {} open", i, id.0);
        shared.engine_wake.signal(());
        serve(shared, i, &mut socket).await;
        socket.abort();
        // Let the RST go out before the socket is used again.
        let _ = with_timeout(Duration::from_millis(500), socket.flush()).await;
        shared.with(|st| st.closed(i));
        log::debug!("slot {}: connection {} closed", i, id.0);
        shared.engine_wake.signal(());
    }
}

/// Waits for a connection on `port`; the peer's address.
async fn accept(socket: &mut TcpSocket<'static>, port: u16) -> Option<SocketAddr> {
    match socket.accept(port).await {
        Ok(()) => socket.remote_endpoint().map(SocketAddr::from),
        Err(e) => {
            log::warning!("cannot listen on port {}: {:?}", port, e);
            None
        }
    }
}

/// Connects to `to` within [`CONNECT_TIMEOUT`].
async fn connect(socket: &mut TcpSocket<'static>, to: SocketAddr) -> Option<SocketAddr> {
    match with_timeout(CONNECT_TIMEOUT, socket.connect(to)).await {
        Ok(Ok(())) => Some(to),
        Ok(Err(e)) => {
            log::debug!("connect failed: {:?}", e);
            None
        }
        Err(_) => {
            log::debug!("connect timed out");
            None
        }
    }
}

/// Carries slot `i`'s connection: bytes read go to the endpoint as they come, queued
/// packets are written as the socket takes them. Returns when the connection ends (peer
/// close, reset, timeout, framing error).
async fn serve<const SOCKETS: usize>(
    shared: &'static Shared<SOCKETS>,
    i: usize,
    socket: &mut TcpSocket<'static>,
) {
    let (mut reader, mut writer) = socket.split();
    let read = async {
        loop {
            let handled = reader
                .read_with(|data| {
                    let ok = shared.with(|st| st.received(i, data));
                    (data.len(), ok)
                })
                .await;
            match handled {
                Ok(true) => shared.engine_wake.signal(()),
                // Framing error, peer closed, or reset.
                Ok(false) | Err(_) => return,
            }
        }
    };
    let write = async {
        loop {
            while shared.with(|st| st.slots[i].queues.is_empty()) {
                shared.slot_wake[i].wait().await;
            }
            let written = writer
                .write_with(|buf| {
                    let n = shared.with(|st| st.write_into(i, buf));
                    (n, ())
                })
                .await;
            if written.is_err() {
                return;
            }
        }
    };
    select(read, write).await;
}
