//! Events for operators: the OpenSIPS event names and parameters, hooks that run a command
//! per event (the keepalived-notify use: move a VIP when a sharing tag turns active), and
//! an optional JSON-lines event log.
//!
//! | event | parameters (environment of hooks) |
//! |---|---|
//! | `E_CLUSTERER_NODE_STATE_CHANGED` | `CLUSTERER_CLUSTER_ID`, `CLUSTERER_NODE_ID`, `CLUSTERER_NEW_STATE` (0 down, 1 up) |
//! | `E_CLUSTERER_SHARING_TAG_CHANGED` | `CLUSTERER_NAME`, `CLUSTERER_CLUSTER`, `CLUSTERER_STATE` (`active`/`backup`), `CLUSTERER_REASON` |
//! | `E_CLUSTERER_REQ_RECEIVED` | `CLUSTERER_CLUSTER_ID`, `CLUSTERER_SRC_ID`, `CLUSTERER_MSG`, `CLUSTERER_TAG` |
//! | `E_CLUSTERER_RPL_RECEIVED` | same as REQ_RECEIVED |
//!
//! Every hook also gets `CLUSTERER_EVENT` (the event name) and `CLUSTERER_MY_NODE_ID`.
//! Hooks run one at a time per hook in event order, each bounded by a timeout, in their own
//! task: a slow hook never stalls the engine.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use clusterer_core::message::{GenericKind, RoutedBody};
use clusterer_core::{Event, NodeId};
use serde_json::{Map, Value, json};
use tokio::io::AsyncWriteExt;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

/// Queued events per hook before new ones are dropped (and logged).
pub const HOOK_QUEUE: usize = 1024;

/// An operator-facing event: its OpenSIPS name and ordered parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedEvent {
    /// `E_CLUSTERER_...`.
    pub name: &'static str,
    /// Parameters in OpenSIPS order, values as strings.
    pub params: Vec<(&'static str, String)>,
}

impl NamedEvent {
    /// Maps a core event; `None` for events operators do not see (MI_CMD is executed by the
    /// MI layer, not announced).
    pub fn from_event(event: &Event) -> Option<NamedEvent> {
        match event {
            Event::NodeStateChanged { cluster, node, up } => Some(NamedEvent {
                name: "E_CLUSTERER_NODE_STATE_CHANGED",
                params: vec![
                    ("cluster_id", cluster.to_string()),
                    ("node_id", node.to_string()),
                    ("new_state", u8::from(*up).to_string()),
                ],
            }),
            Event::ShtagChanged {
                name,
                cluster,
                state,
                reason,
            } => Some(NamedEvent {
                name: "E_CLUSTERER_SHARING_TAG_CHANGED",
                params: vec![
                    ("name", name.clone()),
                    ("cluster", cluster.to_string()),
                    ("state", state.name().to_string()),
                    ("reason", reason.clone()),
                ],
            }),
            Event::Received {
                cluster,
                source,
                body: RoutedBody::GenericMsg(m),
                ..
            } => Some(NamedEvent {
                name: match m.kind {
                    GenericKind::Request => "E_CLUSTERER_REQ_RECEIVED",
                    GenericKind::Reply => "E_CLUSTERER_RPL_RECEIVED",
                },
                params: vec![
                    ("cluster_id", cluster.to_string()),
                    ("src_id", source.to_string()),
                    ("msg", String::from_utf8_lossy(&m.payload).into_owned()),
                    ("tag", String::from_utf8_lossy(&m.tag).into_owned()),
                ],
            }),
            Event::Received { .. } => None,
        }
    }

    /// The hook key of this event in `[hooks]`.
    pub fn hook_key(&self) -> &'static str {
        match self.name {
            "E_CLUSTERER_NODE_STATE_CHANGED" => "node_state_changed",
            "E_CLUSTERER_SHARING_TAG_CHANGED" => "sharing_tag_changed",
            "E_CLUSTERER_REQ_RECEIVED" => "req_received",
            _ => "rpl_received",
        }
    }

    /// One JSON object for the event log.
    pub fn to_json(&self, unix_time: f64) -> Value {
        let mut params = Map::new();
        for (k, v) in &self.params {
            // Numeric parameters stay numbers, as OpenSIPS types them.
            let value = match v.parse::<i64>() {
                Ok(n)
                    if matches!(
                        *k,
                        "cluster_id" | "node_id" | "new_state" | "cluster" | "src_id"
                    ) =>
                {
                    json!(n)
                }
                _ => json!(v),
            };
            params.insert((*k).to_string(), value);
        }
        json!({ "time": unix_time, "event": self.name, "params": params })
    }
}

/// Hook settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HookOptions {
    /// Hook key (`node_state_changed`, `sharing_tag_changed`, `req_received`,
    /// `rpl_received`) → shell command (`sh -c`).
    pub commands: BTreeMap<String, String>,
    /// Longest a hook may run before it is killed.
    pub timeout: Duration,
    /// JSON-lines event log, appended.
    pub event_log: Option<PathBuf>,
}

/// Starts the hook runners and the event log writer on `events`; they end when the engine
/// stops.
pub fn spawn(
    options: HookOptions,
    my_id: NodeId,
    mut events: broadcast::Receiver<Event>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut runners: BTreeMap<String, mpsc::Sender<NamedEvent>> = BTreeMap::new();
        for (key, command) in &options.commands {
            let (tx, rx) = mpsc::channel(HOOK_QUEUE);
            tokio::spawn(run_hook(
                key.clone(),
                command.clone(),
                options.timeout,
                my_id,
                rx,
            ));
            runners.insert(key.clone(), tx);
        }
        let mut log = match &options.event_log {
            Some(path) => match tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .await
            {
                Ok(f) => Some(f),
                Err(e) => {
                    tracing::error!(path = %path.display(), error = %e, "cannot open the event log");
                    None
                }
            },
            None => None,
        };
        loop {
            let event = match events.recv().await {
                Ok(e) => e,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "event consumer fell behind; events lost");
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            let Some(named) = NamedEvent::from_event(&event) else {
                continue;
            };
            tracing::info!(event = named.name, params = ?named.params, "event");
            if let Some(file) = &mut log {
                let now = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map(|d| d.as_secs_f64())
                    .unwrap_or(0.0);
                let mut line = named.to_json(now).to_string();
                line.push('\n');
                if let Err(e) = file.write_all(line.as_bytes()).await {
                    tracing::error!(error = %e, "cannot write the event log");
                }
            }
            if let Some(tx) = runners.get(named.hook_key())
                && tx.try_send(named).is_err()
            {
                tracing::warn!("hook queue full; event not passed to its hook");
            }
        }
    })
}

async fn run_hook(
    key: String,
    command: String,
    timeout: Duration,
    my_id: NodeId,
    mut rx: mpsc::Receiver<NamedEvent>,
) {
    while let Some(event) = rx.recv().await {
        let mut cmd = tokio::process::Command::new("sh");
        cmd.arg("-c")
            .arg(&command)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        cmd.env("CLUSTERER_EVENT", event.name);
        cmd.env("CLUSTERER_MY_NODE_ID", my_id.to_string());
        for (k, v) in &event.params {
            cmd.env(format!("CLUSTERER_{}", k.to_ascii_uppercase()), v);
        }
        let result = match cmd.spawn() {
            Ok(child) => tokio::time::timeout(timeout, child.wait_with_output()).await,
            Err(e) => {
                tracing::error!(hook = key, error = %e, "cannot start hook");
                continue;
            }
        };
        match result {
            Ok(Ok(out)) if out.status.success() => tracing::debug!(hook = key, "hook done"),
            Ok(Ok(out)) => {
                tracing::warn!(hook = key, status = %out.status, stderr = %String::from_utf8_lossy(&out.stderr), "hook failed")
            }
            Ok(Err(e)) => tracing::error!(hook = key, error = %e, "hook failed"),
            Err(_) => tracing::error!(
                hook = key,
                timeout_ms = timeout.as_millis() as u64,
                "hook timed out and was killed"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clusterer_core::message::GenericMsg;
    use clusterer_core::{ClusterId, ShtagState};

    #[test]
    fn events_carry_the_opensips_names_and_parameters() {
        let c = ClusterId::new(1).unwrap();
        let e = Event::NodeStateChanged {
            cluster: c,
            node: NodeId::new(3).unwrap(),
            up: false,
        };
        let named = NamedEvent::from_event(&e).unwrap();
        assert_eq!(named.name, "E_CLUSTERER_NODE_STATE_CHANGED");
        assert_eq!(
            named.params,
            [
                ("cluster_id", "1".to_string()),
                ("node_id", "3".into()),
                ("new_state", "0".into())
            ]
        );
        assert_eq!(
            named.to_json(1.5).to_string(),
            r#"{"time":1.5,"event":"E_CLUSTERER_NODE_STATE_CHANGED","params":{"cluster_id":1,"node_id":3,"new_state":0}}"#
        );
        let t = Event::ShtagChanged {
            name: "vip".into(),
            cluster: c,
            state: ShtagState::Active,
            reason: "MI command".into(),
        };
        assert_eq!(
            NamedEvent::from_event(&t).unwrap().hook_key(),
            "sharing_tag_changed"
        );
        let r = Event::Received {
            cluster: c,
            source: NodeId::new(2).unwrap(),
            version: 1,
            body: RoutedBody::GenericMsg(GenericMsg {
                kind: GenericKind::Reply,
                tag: b"t".to_vec(),
                payload: b"m".to_vec(),
            }),
        };
        let named = NamedEvent::from_event(&r).unwrap();
        assert_eq!(
            (named.name, named.hook_key()),
            ("E_CLUSTERER_RPL_RECEIVED", "rpl_received")
        );
    }

    #[tokio::test]
    async fn hooks_get_the_parameters_in_their_environment() {
        let dir = std::env::temp_dir().join(format!("clusterer-hook-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("out");
        let log = dir.join("events.jsonl");
        let mut commands = BTreeMap::new();
        commands.insert(
            "sharing_tag_changed".to_string(),
            format!("echo \"$CLUSTERER_EVENT $CLUSTERER_NAME $CLUSTERER_STATE $CLUSTERER_REASON $CLUSTERER_MY_NODE_ID\" >> {}", out.display()),
        );
        let options = HookOptions {
            commands,
            timeout: Duration::from_secs(5),
            event_log: Some(log.clone()),
        };
        let (tx, rx) = broadcast::channel(16);
        let task = spawn(options, NodeId::new(7).unwrap(), rx);
        let c = ClusterId::new(1).unwrap();
        tx.send(Event::ShtagChanged {
            name: "vip".into(),
            cluster: c,
            state: ShtagState::Active,
            reason: "MI command".into(),
        })
        .unwrap();
        for _ in 0..100 {
            if std::fs::read_to_string(&out).is_ok_and(|s| s.ends_with('\n')) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "E_CLUSTERER_SHARING_TAG_CHANGED vip active MI command 7\n"
        );
        let line = std::fs::read_to_string(&log).unwrap();
        assert!(
            line.contains(r#""event":"E_CLUSTERER_SHARING_TAG_CHANGED""#),
            "{line}"
        );
        drop(tx);
        task.await.unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
