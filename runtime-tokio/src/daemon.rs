//! `clusterer run`: the daemon. Reads the configuration, provisions the node table from the
//! database in db_mode 1, starts the engine with the shipped replicated cache when
//! configured, then MI (JSON-RPC over HTTP, remote MI), hooks and the event log, the
//! Prometheus endpoint and the cache cleaner; stops cleanly on SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use clap::Args;
use clusterer_core::{ClusterId, DbMode, NodeId};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::cachedb::{self, Cache, CachedbCapability};
use crate::config::{ClusterPersistency, DaemonConfig};
use crate::db;
use crate::mi::{ClustererMiOptions, MiError, MiOptions, MiService, ReloadHook, StatusHook};
use crate::runtime::{CapabilityRegistration, Cluster, Handle, StartOptions};

/// How often expired cache entries are purged (OpenSIPS `cache_clean_period` default).
pub const CACHE_CLEAN_PERIOD: Duration = Duration::from_secs(600);

/// `clusterer run` arguments.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// The configuration file (TOML with the OpenSIPS clusterer parameters; see
    /// runtime-tokio/examples/clusterer.toml).
    #[arg(short, long, value_name = "FILE")]
    pub config: PathBuf,
}

/// Why the daemon could not start.
#[derive(Debug)]
pub struct DaemonError(pub String);

impl std::fmt::Display for DaemonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DaemonError {}

/// Sets up `tracing` output filtered by `RUST_LOG` (default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The multi-threaded tokio runtime of the `clusterer` commands; on failure the error is
/// printed and the exit code to return is given back.
///
/// # Errors
/// Exit code 1 when the runtime cannot be built (the reason is on standard error).
pub fn tokio_runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("error: cannot start the tokio runtime: {e}");
            ExitCode::from(1)
        })
}

/// Runs `clusterer run`; returns when a signal stops the daemon.
pub fn run(args: &RunArgs) -> ExitCode {
    init_tracing();
    let config = match DaemonConfig::from_path(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let runtime = match tokio_runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    runtime.block_on(async move {
        let daemon = match Daemon::start(config).await {
            Ok(d) => d,
            Err(e) => {
                tracing::error!("{e}");
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        };
        wait_for_signal().await;
        tracing::info!("stopping");
        daemon.stop().await;
        ExitCode::SUCCESS
    })
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// A running daemon.
#[derive(Debug)]
pub struct Daemon {
    handle: Handle,
    engine: JoinHandle<()>,
    mi: MiService,
    hooks: JoinHandle<()>,
    metrics: Option<(SocketAddr, JoinHandle<()>)>,
    cleaner: Option<JoinHandle<()>>,
    cache: Option<Cache>,
}

impl Daemon {
    /// Starts everything the configuration asks for.
    ///
    /// # Errors
    /// [`DaemonError`] naming what failed (database, configuration, a listener).
    pub async fn start(config: DaemonConfig) -> Result<Daemon, DaemonError> {
        for w in &config.warnings {
            tracing::warn!("{w}");
        }
        let mut core = config.core.clone();
        let db = config.db.clone();
        if let (DbMode::Database, Some(settings)) = (core.db_mode, &db) {
            let p = db::load(settings, core.node_id)
                .await
                .map_err(|e| DaemonError(e.to_string()))?;
            for row in &p.skipped {
                tracing::warn!("provisioning: skipped {row}");
            }
            if p.clusters.is_empty() {
                return Err(DaemonError(format!(
                    "{}: no row for my_node_id {} in table {}",
                    db::redact_url(&settings.url),
                    core.node_id,
                    settings.table
                )));
            }
            core.clusters = p.clusters;
        }
        let mut options = StartOptions::new(core);
        options.endpoint = config.endpoint.clone();
        if let Some(addr) = config.listen.address {
            options.listen = vec![addr];
        }
        let mut cache = None;
        if let Some(cdb) = &config.cachedb_local {
            let c = Cache::new(cdb.collections.clone());
            if let Some(cluster) = cdb.cluster {
                options.capabilities.push(CapabilityRegistration {
                    cluster,
                    name: cachedb::CAPABILITY.into(),
                    startup_sync: cdb.persistency == ClusterPersistency::SyncFromCluster,
                    condition: clusterer_core::NodeMatch::Any,
                    handler: Box::new(CachedbCapability::new(c.clone())),
                });
            }
            cache = Some((c, cdb.cluster));
        }
        let (handle, engine) = Cluster::start(options)
            .await
            .map_err(|e| DaemonError(e.to_string()))?;
        tracing::info!(node = %handle.my_id(), listen = ?handle.listen_addrs(), "engine started");
        let hooks = crate::events::spawn(
            config.hooks.hook_options(),
            handle.my_id(),
            handle.subscribe(),
        );
        let mi_options = MiOptions {
            enabled: config.mi.enabled,
            listen: config.mi.listen,
            path: config.mi.path.clone(),
            max_body_bytes: config.mi.max_body_bytes,
            clusterer: ClustererMiOptions {
                enable_stats: config.enable_stats,
            },
        };
        let mi = MiService::start(handle.clone(), &mi_options)
            .await
            .map_err(|e| DaemonError(format!("MI: cannot listen on {}: {e}", config.mi.listen)))?;
        if let Some(settings) = db {
            mi.clusterer()
                .set_reload_hook(Some(reload_hook(handle.clone(), settings.clone())));
            mi.clusterer().set_status_hook(Some(status_hook(settings)));
        }
        let mut cleaner = None;
        if let Some((c, cluster)) = &cache {
            cachedb::register_mi(mi.dispatcher(), c.clone(), handle.clone(), *cluster)
                .map_err(|e| DaemonError(format!("cache MI commands: {e}")))?;
            let c = c.clone();
            cleaner = Some(tokio::spawn(async move {
                let mut tick = tokio::time::interval(CACHE_CLEAN_PERIOD);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let purged = c.purge_expired();
                    tracing::debug!(purged, "cache cleaner");
                }
            }));
        }
        let metrics = if config.metrics.enabled {
            Some(
                serve_metrics(handle.clone(), config.metrics.listen, &config.metrics.path)
                    .await
                    .map_err(|e| {
                        DaemonError(format!(
                            "metrics: cannot listen on {}: {e}",
                            config.metrics.listen
                        ))
                    })?,
            )
        } else {
            None
        };
        Ok(Daemon {
            handle,
            engine,
            mi,
            hooks,
            metrics,
            cleaner,
            cache: cache.map(|(c, _)| c),
        })
    }

    /// The engine handle.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Where MI listens, when enabled.
    pub fn mi_addr(&self) -> Option<SocketAddr> {
        self.mi.local_addr()
    }

    /// Where the Prometheus endpoint listens, when enabled.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|(a, _)| *a)
    }

    /// The replicated cache, when configured.
    pub fn cache(&self) -> Option<&Cache> {
        self.cache.as_ref()
    }

    /// Stops MI, metrics, hooks and the engine (connections close; peers see the node go).
    pub async fn stop(self) {
        self.mi.shutdown().await;
        if let Some((_, t)) = self.metrics {
            t.abort();
        }
        if let Some(t) = self.cleaner {
            t.abort();
        }
        self.handle.shutdown().await;
        let _ = self.engine.await;
        self.hooks.abort();
    }
}

/// `clusterer_reload`: loads the table and rebuilds the node table; the DB unreachable keeps
/// the current table and answers 500 `Failed to reload`. Skipped rows are reported in the
/// result (`"OK"` when none).
fn reload_hook(handle: Handle, settings: db::DbSettings) -> ReloadHook {
    let settings = Arc::new(settings);
    Arc::new(move || {
        let handle = handle.clone();
        let settings = Arc::clone(&settings);
        Box::pin(async move {
            let failed = || MiError::new(500, "Failed to reload");
            let p = db::load(&settings, handle.my_id()).await.map_err(|e| {
                tracing::error!(error = %e, "clusterer_reload: keeping the current node table");
                failed()
            })?;
            let skipped: Vec<String> = p.skipped.iter().map(ToString::to_string).collect();
            for s in &skipped {
                tracing::warn!("clusterer_reload: skipped {s}");
            }
            let clusters = p.clusters;
            let r = handle
                .call(move |s| s.endpoint.reload(s.now, clusters))
                .await;
            match r {
                Ok(Ok(())) if skipped.is_empty() => Ok(Value::from("OK")),
                Ok(Ok(())) => Ok(
                    json!({ "Result": "OK", "Skipped rows": skipped.len(), "Problems": skipped }),
                ),
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "clusterer_reload: invalid table, keeping the current one");
                    Err(failed())
                }
                Err(_) => Err(failed()),
            }
        })
    })
}

/// `clusterer_set_status` persistence: the `state` column of that (node, cluster) row only
/// (quirk #19 fixed).
fn status_hook(settings: db::DbSettings) -> StatusHook {
    let settings = Arc::new(settings);
    Arc::new(move |cluster: ClusterId, node: NodeId, enabled: bool| {
        let settings = Arc::clone(&settings);
        Box::pin(async move {
            db::set_state(&settings, cluster, node, enabled)
                .await
                .map_err(|e| e.to_string())
        })
    })
}

/// Serves the Prometheus text on `path`.
async fn serve_metrics(
    handle: Handle,
    listen: SocketAddr,
    path: &str,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let router = Router::new().route(
        path,
        get(move || {
            let handle = handle.clone();
            async move {
                let body = handle
                    .call(|s| crate::metrics::render(s))
                    .await
                    .unwrap_or_default();
                ([(CONTENT_TYPE, "text/plain; version=0.0.4")], body)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "metrics listening");
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "metrics server failed");
        }
    });
    Ok((addr, task))
}
