//! Remote MI: runs every MI_CMD the engine receives (`cluster_send_mi`,
//! `cluster_broadcast_mi` on another node) through the local [`Dispatcher`], with
//! positional string parameters, as OpenSIPS does (docs/behaviour.md §11): commands that only
//! take named parameters are refused, the outcome is logged, nothing is sent back.
//!
//! Outcomes are also published to [`RemoteMi::subscribe`]rs (hooks, tests).

use std::future::Future;
use std::sync::Arc;

use clusterer_core::message::RoutedBody;
use clusterer_core::{ClusterId, Event, NodeId};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;

use super::dispatcher::{Dispatcher, Origin};
use super::error::MiResult;
use crate::runtime::Handle;

/// Outcomes buffered per subscriber.
pub const OUTCOME_CHANNEL_CAPACITY: usize = 256;

/// What a received MI command did.
#[derive(Clone, Debug, PartialEq)]
pub struct RemoteMiOutcome {
    /// Cluster of the MI_CMD.
    pub cluster: ClusterId,
    /// The node that sent it.
    pub source: NodeId,
    /// The command name.
    pub command: String,
    /// Its positional parameters.
    pub params: Vec<String>,
    /// The local result (logged, never sent back).
    pub result: MiResult,
}

/// The running remote MI task.
#[derive(Debug)]
pub struct RemoteMi {
    task: JoinHandle<()>,
    outcomes: broadcast::Sender<RemoteMiOutcome>,
}

impl RemoteMi {
    /// Subscribes `handle`'s events now (no MI_CMD received after this call is missed)
    /// and spawns the task; it ends when `shutdown` completes.
    pub fn spawn<S>(handle: &Handle, dispatcher: Arc<Dispatcher>, shutdown: S) -> RemoteMi
    where
        S: Future<Output = ()> + Send + 'static,
    {
        let events = handle.subscribe();
        let (outcomes, _) = broadcast::channel(OUTCOME_CHANNEL_CAPACITY);
        let tx = outcomes.clone();
        let task = tokio::spawn(async move {
            tokio::select! {
                () = run(events, dispatcher, tx) => {}
                () = shutdown => {}
            }
        });
        RemoteMi { task, outcomes }
    }

    /// Receives the outcome of every MI command run from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<RemoteMiOutcome> {
        self.outcomes.subscribe()
    }

    /// Waits for the task to end (after the shutdown future completed).
    pub async fn join(self) {
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "remote MI task failed");
        }
    }

    /// Stops the task without waiting for the shutdown future.
    pub fn abort(&self) {
        self.task.abort();
    }
}

async fn run(
    mut events: broadcast::Receiver<Event>,
    dispatcher: Arc<Dispatcher>,
    outcomes: broadcast::Sender<RemoteMiOutcome>,
) {
    loop {
        let event = match events.recv().await {
            Ok(e) => e,
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(
                    missed = n,
                    "remote MI fell behind the engine events; some MI commands were not run"
                );
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        let Event::Received {
            cluster,
            source,
            body: RoutedBody::MiCmd(cmd),
            ..
        } = event
        else {
            continue;
        };
        tracing::debug!(command = %cmd.command, %cluster, %source, "received MI command");
        let result = dispatcher
            .run_positional(
                &cmd.command,
                cmd.params.clone(),
                Origin::Remote { cluster, source },
            )
            .await;
        match &result {
            Ok(_) => {
                tracing::info!(command = %cmd.command, %cluster, %source, "MI command returned with success")
            }
            Err(e) => {
                tracing::info!(command = %cmd.command, %cluster, %source, error = %e, "MI command returned with error")
            }
        }
        // No subscriber is not an error.
        let _ = outcomes.send(RemoteMiOutcome {
            cluster,
            source,
            command: cmd.command,
            params: cmd.params,
            result,
        });
    }
}
