//! The management interface: OpenSIPS-compatible MI commands over JSON-RPC 2.0, so the
//! daemon is driven with the same `opensips-cli` operators already use
//! (`opensips-cli -o communication_type=http -o url=http://127.0.0.1:8888/mi -x mi
//! clusterer_list`), plus remote MI between nodes. (The `clusterer mi` command-line client
//! is part of the `clusterer` binary.)
//!
//! | module | what |
//! |---|---|
//! | [`dispatcher`] | [`Dispatcher`]: command table, recipes, JSON-RPC framing, [`Dispatcher::register`] for other modules |
//! | [`params`] | parameter access with the MI core's type rules and error texts |
//! | [`error`] | [`MiError`]: JSON-RPC error objects |
//! | [`commands`] | the built-in commands: core (`uptime`, `version`, `which`, `help`, `ps`), clusterer (§15), status/report group and statistics |
//! | [`remote`] | [`RemoteMi`]: runs MI_CMDs received from other nodes |
//! | [`server`] | [`MiServer`]: HTTP (axum), `POST /mi` |
//! | [`ctime`] | report dates as `ctime(3)` writes them, in UTC |
//!
//! [`MiService::start`] wires all of it for one engine:
//!
//! ```no_run
//! # async fn demo(handle: clusterer_tokio::runtime::Handle) -> std::io::Result<()> {
//! use clusterer_tokio::mi::{MiOptions, MiService};
//! let mi = MiService::start(handle, &MiOptions::default()).await?;
//! // Other modules add their commands:
//! mi.dispatcher().register("demo_ping", &[&[]], |_| async { Ok("pong".into()) }).ok();
//! // The database plugs into clusterer_reload:
//! // mi.clusterer().set_reload_hook(Some(hook));
//! mi.shutdown().await;
//! # Ok(()) }
//! ```

pub mod commands;
pub mod ctime;
pub mod dispatcher;
pub mod error;
pub mod params;
pub mod remote;
pub mod server;

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use commands::clusterer::{ClustererMi, ClustererMiOptions, ReloadHook, StatusHook};
pub use dispatcher::{
    Call, CommandSpec, Dispatcher, Handler, HandlerFuture, Origin, RegisterError,
};
pub use error::{MiError, MiResult};
pub use params::{Params, RawParams};
pub use remote::{RemoteMi, RemoteMiOutcome};
pub use server::MiServer;

use crate::runtime::Handle;

/// Default MI listen address (OpenSIPS' `httpd` default port).
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 8888);
/// Default MI path.
pub const DEFAULT_PATH: &str = "/mi";
/// Default limit of a request body, 1 MiB (as the `[mi]` configuration). OpenSIPS' `httpd`
/// accepts 1024 bytes by default and hangs on larger bodies; ours answers 413 past the
/// limit.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// The `[mi]` settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MiOptions {
    /// Serve MI over HTTP. Remote MI (commands from other nodes) runs either way.
    pub enabled: bool,
    /// Address to listen on.
    pub listen: SocketAddr,
    /// URL path of the JSON-RPC endpoint.
    pub path: String,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Options of the clusterer commands.
    pub clusterer: ClustererMiOptions,
}

impl Default for MiOptions {
    fn default() -> Self {
        MiOptions {
            enabled: true,
            listen: DEFAULT_LISTEN,
            path: DEFAULT_PATH.to_owned(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            clusterer: ClustererMiOptions::default(),
        }
    }
}

/// A dispatcher with every built-in command for `handle`'s engine, and the clusterer
/// commands' context (for [`ClustererMi::set_reload_hook`]).
///
/// # Errors
/// Cannot fail on a fresh dispatcher; [`RegisterError`] is passed on for the signature.
pub fn engine_dispatcher(
    handle: Handle,
    options: ClustererMiOptions,
) -> Result<(Arc<Dispatcher>, Arc<ClustererMi>), RegisterError> {
    let dispatcher = Arc::new(Dispatcher::new());
    commands::core::register(&dispatcher, SystemTime::now())?;
    let clusterer = ClustererMi::new(handle, options);
    clusterer.register(&dispatcher)?;
    Ok((dispatcher, clusterer))
}

/// MI for one engine: the dispatcher, the remote MI task and (when enabled) the HTTP
/// server. Dropping it without [`MiService::shutdown`] also stops both tasks (without
/// waiting for them).
#[derive(Debug)]
pub struct MiService {
    dispatcher: Arc<Dispatcher>,
    clusterer: Arc<ClustererMi>,
    remote: RemoteMi,
    server: Option<(SocketAddr, JoinHandle<io::Result<()>>)>,
    stop: watch::Sender<bool>,
}

impl MiService {
    /// Builds the dispatcher, starts remote MI and, when `options.enabled`, binds and
    /// serves HTTP.
    ///
    /// # Errors
    /// The bind error of the HTTP listener.
    pub async fn start(handle: Handle, options: &MiOptions) -> io::Result<MiService> {
        let (dispatcher, clusterer) =
            engine_dispatcher(handle.clone(), options.clusterer).map_err(io::Error::other)?;
        let (stop, stopped) = watch::channel(false);
        let signal = |mut rx: watch::Receiver<bool>| async move {
            // Ends when `true` is sent or the sender is gone.
            let _ = rx.wait_for(|s| *s).await;
        };
        let server = if options.enabled {
            let server = MiServer::bind(
                options.listen,
                &options.path,
                options.max_body_bytes,
                Arc::clone(&dispatcher),
            )
            .await?;
            let addr = server.local_addr();
            tracing::info!(%addr, path = %options.path, "MI listening");
            let task = tokio::spawn(server.serve(signal(stopped.clone())));
            Some((addr, task))
        } else {
            None
        };
        let remote = RemoteMi::spawn(&handle, Arc::clone(&dispatcher), signal(stopped));
        Ok(MiService {
            dispatcher,
            clusterer,
            remote,
            server,
            stop,
        })
    }

    /// The command table (register more commands here).
    pub fn dispatcher(&self) -> &Arc<Dispatcher> {
        &self.dispatcher
    }

    /// The clusterer commands (plug the DB reload here).
    pub fn clusterer(&self) -> &Arc<ClustererMi> {
        &self.clusterer
    }

    /// The remote MI task (subscribe to its outcomes here).
    pub fn remote(&self) -> &RemoteMi {
        &self.remote
    }

    /// The HTTP address, when serving.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.server.as_ref().map(|(a, _)| *a)
    }

    /// Stops the HTTP server (after the requests in progress) and remote MI.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Some((_, task)) = self.server {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "MI server failed"),
                Err(e) => tracing::error!(error = %e, "MI server task failed"),
            }
        }
        self.remote.join().await;
    }
}
