//! The status/report group `clusterer` (docs/behaviour.md §13) through OpenSIPS' core commands
//! `sr_get_status`, `sr_list_status`, `sr_list_reports`, `sr_list_identifiers`, and the
//! statistics of §14 through `get_statistics`, `list_statistics`, `reset_statistics`.
//!
//! Identifiers, listed like OpenSIPS (most recently registered first): one `cap:<name>`
//! per local capability, then `sharing_tags`, then `node_states`. Report dates are
//! [`ctime_utc`] of the timestamp (OpenSIPS uses the host's local time; the captures were
//! taken on a UTC host).

use std::sync::Arc;

use clusterer_core::Node;
use serde_json::{Map, Value, json};

use super::clusterer::ClustererMi;
use crate::mi::ctime::ctime_utc;
use crate::mi::dispatcher::{Call, CommandSpec, Dispatcher, RegisterError};
use crate::mi::error::{MiError, MiResult};

/// The only status/report group served.
pub const GROUP: &str = "clusterer";
/// The statistics group (module) name.
pub const STATS_GROUP: &str = "clusterer";
/// The statistics, in registration order.
pub const STATISTICS: [&str; 3] = [
    "clusterer_nodes",
    "clusterer_nodes_up",
    "clusterer_nodes_down",
];

/// One identifier of the group, copied out of the engine.
#[derive(Clone, Debug)]
struct Identifier {
    name: String,
    status: i32,
    details: Option<&'static str>,
    reports: Vec<(i64, String)>,
}

impl Identifier {
    fn status_json(&self, with_name: bool) -> Value {
        let mut m = Map::new();
        if with_name {
            m.insert("Name".into(), Value::from(self.name.clone()));
        }
        m.insert("Readiness".into(), Value::from(self.status >= 0));
        m.insert("Status".into(), Value::from(self.status));
        if let Some(d) = self.details {
            m.insert("Details".into(), Value::from(d));
        }
        Value::Object(m)
    }

    fn reports_json(&self) -> Value {
        Value::Array(
            self.reports
                .iter()
                .map(|(ts, log)| json!({ "Timestamp": ts, "Date": ctime_utc(*ts), "Log": log }))
                .collect(),
        )
    }
}

fn snapshot(node: &Node) -> Vec<Identifier> {
    let mut out: Vec<Identifier> = Vec::new();
    for c in node.clusters().iter().rev() {
        for cap in c.capabilities() {
            let name = format!("cap:{}", cap.name());
            if out.iter().any(|i| i.name == name) {
                continue;
            }
            let status = cap.status();
            out.push(Identifier {
                name,
                status: status.code(),
                details: Some(status.details()),
                reports: cap
                    .reports()
                    .iter()
                    .map(|r| (r.unix_time, r.text.clone()))
                    .collect(),
            });
        }
    }
    for (name, ring) in [
        ("sharing_tags", node.shtag_reports()),
        ("node_states", node.node_state_reports()),
    ] {
        out.push(Identifier {
            name: name.into(),
            status: 1,
            details: None,
            reports: ring.iter().map(|r| (r.unix_time, r.text.clone())).collect(),
        });
    }
    out
}

fn group_not_found() -> MiError {
    MiError::new(404, "Group not found")
}

impl ClustererMi {
    /// Registers the `sr_*` and statistics commands.
    pub(crate) fn register_status(self: &Arc<Self>, d: &Dispatcher) -> Result<(), RegisterError> {
        let cmd = |name: &str, help: &str| CommandSpec::new(name, "core").help(help);
        self.add(
            d,
            cmd(
                "sr_get_status",
                "gets the status (only) of a 'status-report' group/identifier",
            )
            .recipe(&["group"])
            .recipe(&["group", "identifier"]),
            Self::sr_get_status,
        )?;
        self.add(
            d,
            cmd(
                "sr_list_status",
                "list the status of all the identifiers in a group or all",
            )
            .recipe(&[])
            .recipe(&["group"]),
            Self::sr_list_status,
        )?;
        self.add(
            d,
            cmd(
                "sr_list_reports",
                "list the reports produced by some 'status-report' identifiers",
            )
            .recipe(&[])
            .recipe(&["group"])
            .recipe(&["group", "identifier"]),
            Self::sr_list_reports,
        )?;
        self.add(
            d,
            cmd(
                "sr_list_identifiers",
                "list the identifiers from a group or all",
            )
            .recipe(&[])
            .recipe(&["group"]),
            Self::sr_list_identifiers,
        )?;
        let stat = |name: &str, help: &str| CommandSpec::new(name, "statistics").help(help);
        self.add(
            d,
            stat(
                "get_statistics",
                "prints the statistics (all, group or one) realtime values.",
            )
            .recipe(&["statistics"]),
            Self::get_statistics,
        )?;
        self.add(
            d,
            stat(
                "list_statistics",
                "lists all the registered statistics and their types",
            )
            .recipe(&[])
            .recipe(&["statistics"]),
            Self::list_statistics,
        )?;
        self.add(
            d,
            stat(
                "reset_statistics",
                "resets the value of a statistic variable",
            )
            .recipe(&["statistics"]),
            Self::reset_statistics,
        )?;
        Ok(())
    }

    async fn identifiers(&self) -> Result<Vec<Identifier>, MiError> {
        Ok(self.handle.call(|s| snapshot(s.endpoint.node())).await?)
    }

    /// `group` parameter: must name our group.
    fn check_group(call: &Call) -> Result<Option<()>, MiError> {
        match call.params.opt_string("group")? {
            None => Ok(None),
            Some(g) if g == GROUP => Ok(Some(())),
            Some(_) => Err(group_not_found()),
        }
    }

    async fn sr_get_status(self: Arc<Self>, call: Call) -> MiResult {
        Self::check_group(&call)?;
        let identifier = call.params.opt_string("identifier")?;
        let ids = self.identifiers().await?;
        match identifier {
            // The group has no `main` identifier.
            None => Err(MiError::new(404, "Identity not found")),
            Some(all) if all.eq_ignore_ascii_case("all") => {
                let status = if ids.iter().any(|i| i.status < 0) {
                    -1
                } else {
                    1
                };
                Ok(json!({ "Readiness": status >= 0, "Status": status, "Details": "aggregated" }))
            }
            Some(name) => ids
                .iter()
                .find(|i| i.name == name)
                .map(|i| i.status_json(false))
                .ok_or_else(|| MiError::new(404, "Identity not found")),
        }
    }

    async fn sr_list_status(self: Arc<Self>, call: Call) -> MiResult {
        let group = Self::check_group(&call)?;
        let ids = self.identifiers().await?;
        let list = Value::Array(ids.iter().map(|i| i.status_json(true)).collect());
        Ok(match group {
            Some(()) => list,
            None => json!([{ "Name": GROUP, "Identifiers": list }]),
        })
    }

    async fn sr_list_reports(self: Arc<Self>, call: Call) -> MiResult {
        let group = Self::check_group(&call)?;
        let identifier = call.params.opt_string("identifier")?;
        let ids = self.identifiers().await?;
        if let Some(name) = identifier {
            return ids
                .iter()
                .find(|i| i.name == name)
                .map(Identifier::reports_json)
                .ok_or_else(|| MiError::new(404, "Identifier not found"));
        }
        let list = Value::Array(
            ids.iter()
                .map(|i| json!({ "Name": i.name, "Reports": i.reports_json() }))
                .collect(),
        );
        Ok(match group {
            Some(()) => list,
            None => json!([{ "Name": GROUP, "Identifiers": list }]),
        })
    }

    async fn sr_list_identifiers(self: Arc<Self>, call: Call) -> MiResult {
        let group = Self::check_group(&call)?;
        let ids = self.identifiers().await?;
        let names: Vec<&str> = ids.iter().map(|i| i.name.as_str()).collect();
        Ok(match group {
            Some(()) => json!({ "Group": GROUP, "Identifiers": names }),
            None => json!([{ "Group": GROUP, "Identifiers": names }]),
        })
    }

    /// The statistics' current values, in registration order.
    async fn statistics(&self) -> Result<Vec<(&'static str, u64)>, MiError> {
        if !self.options.enable_stats {
            return Ok(Vec::new());
        }
        let st = self.handle.call(|s| s.endpoint.node().stats()).await?;
        Ok(vec![
            (STATISTICS[0], st.nodes),
            (STATISTICS[1], st.nodes_up),
            (STATISTICS[2], st.nodes_down),
        ])
    }

    /// Resolves the `statistics` names: `all`, `<group>:` or one statistic (its name
    /// compared without case). `(key, value)` pairs in request order, keys
    /// `<group>:<name>` (or the bare name for single statistics when `bare_single`).
    fn select(
        stats: &[(&'static str, u64)],
        names: &[String],
        allow_all: bool,
        bare_single: bool,
    ) -> Option<Vec<(String, u64)>> {
        let mut out: Vec<(String, u64)> = Vec::new();
        let mut found = false;
        let mut push = |key: String, v: u64| {
            if !out.iter().any(|(k, _)| *k == key) {
                out.push((key, v));
            }
        };
        for name in names {
            if allow_all && name == "all" {
                for (n, v) in stats {
                    push(format!("{STATS_GROUP}:{n}"), *v);
                }
                found = true;
            } else if let Some(group) = name.strip_suffix(':').filter(|g| !g.is_empty()) {
                if group == STATS_GROUP && !stats.is_empty() {
                    for (n, v) in stats {
                        push(format!("{STATS_GROUP}:{n}"), *v);
                    }
                    found = true;
                }
            } else if let Some((n, v)) = stats.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
                let key = if bare_single {
                    (*n).to_owned()
                } else {
                    format!("{STATS_GROUP}:{n}")
                };
                push(key, *v);
                found = true;
            }
        }
        found.then_some(out)
    }

    async fn get_statistics(self: Arc<Self>, call: Call) -> MiResult {
        let names = call.params.strings("statistics")?;
        let stats = self.statistics().await?;
        let selected = Self::select(&stats, &names, true, false)
            .ok_or_else(|| MiError::new(404, "Statistics Not Found"))?;
        Ok(Value::Object(
            selected
                .into_iter()
                .map(|(k, v)| (k, Value::from(v)))
                .collect(),
        ))
    }

    async fn list_statistics(self: Arc<Self>, call: Call) -> MiResult {
        let stats = self.statistics().await?;
        let selected = if call.params.contains("statistics") {
            let names = call.params.strings("statistics")?;
            Self::select(&stats, &names, false, true)
                .ok_or_else(|| MiError::new(404, "Statistics Not Found"))?
        } else {
            stats
                .iter()
                .map(|(n, v)| (format!("{STATS_GROUP}:{n}"), *v))
                .collect()
        };
        // Computed on read: none of them can be reset.
        Ok(Value::Object(
            selected
                .into_iter()
                .map(|(k, _)| (k, Value::from("non-incremental")))
                .collect(),
        ))
    }

    async fn reset_statistics(self: Arc<Self>, call: Call) -> MiResult {
        let names = call.params.strings("statistics")?;
        let stats = self.statistics().await?;
        let found = names
            .iter()
            .any(|name| stats.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)));
        if found {
            // Nothing to reset: the values are computed on read.
            Ok(Value::from("OK"))
        } else {
            Err(MiError::new(404, "Statistics Not Found"))
        }
    }
}
