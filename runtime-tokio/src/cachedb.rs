//! The shipped capability `cachedb-local-repl`: a replicated key/value cache compatible with
//! OpenSIPS `cachedb_local` (docs/cachedb-local.md).
//!
//! Collections are configured like OpenSIPS' `cache_collections` (`default/r; sess/r = 4;
//! loc`): `/r` marks a collection replicated, `= N` (hash size) is accepted and ignored, and a
//! non-replicated `default` is added at the head when none is listed. A `system` name of MI
//! commands is `local` (the first collection) or `local:<collection>` (the collection of that
//! name; OpenSIPS maps groups through `cachedb_url`, we map the group to the collection of
//! the same name).
//!
//! Replication: a store or remove on a replicated collection is applied locally first, then
//! sent as INSERT/REMOVE to every reachable node; received packets are applied in arrival
//! order and never re-sent; a sync sends one chunk per live entry with its remaining
//! lifetime. Fixes over OpenSIPS (the quirks of docs/cachedb-local.md §10): a negative
//! expiry deletes the key (quirk #9), an entry too large to encode is kept locally and
//! reported (quirk #7), a chunk for an unknown collection is skipped without abandoning the
//! rest (quirk #5).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use clusterer_core::capability::{Capability, CapabilityEvent, NodeMatch, Rejected};
use clusterer_core::message::{CachedbLocalEntry, CachedbLocalPacket, ModulePacket};
use clusterer_core::{ClusterId, NodeId};
use clusterer_proto::wire::cachedb_local;
use serde_json::{Value, json};

use crate::mi::{Dispatcher, MiError, RegisterError};
use crate::runtime::Handle;

/// The capability name on the wire.
pub const CAPABILITY: &str = cachedb_local::CAPABILITY;

/// (key, value) pairs, sorted by key.
pub type KeyValues = Vec<(Vec<u8>, Vec<u8>)>;

/// One collection of the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CollectionSpec {
    /// Name (without `/r`).
    pub name: String,
    /// Replicated (`/r`).
    pub replicated: bool,
}

/// A `cache_collections` string that does not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CollectionsError(pub String);

impl fmt::Display for CollectionsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CollectionsError {}

/// Parses `cache_collections` (docs/cachedb-local.md §2.2).
///
/// # Errors
/// A name defined twice, an empty name, or a hash size that is not a number.
pub fn parse_collections(spec: &str) -> Result<Vec<CollectionSpec>, CollectionsError> {
    let mut out: Vec<CollectionSpec> = Vec::new();
    for part in spec.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, size) = match part.split_once('=') {
            Some((n, s)) => (n.trim(), Some(s.trim())),
            None => (part, None),
        };
        if let Some(size) = size
            && size.parse::<u32>().is_err()
        {
            return Err(CollectionsError(format!(
                "collection \"{name}\": hash size \"{size}\" is not a number"
            )));
        }
        let (name, replicated) = match name.strip_suffix("/r") {
            Some(n) => (n.trim(), true),
            None => (name, false),
        };
        if name.is_empty() {
            return Err(CollectionsError(format!(
                "empty collection name in \"{part}\""
            )));
        }
        if out.iter().any(|c| c.name == name) {
            return Err(CollectionsError(format!(
                "collection \"{name}\" is defined twice"
            )));
        }
        out.push(CollectionSpec {
            name: name.to_string(),
            replicated,
        });
    }
    if !out.iter().any(|c| c.name == "default") {
        out.insert(
            0,
            CollectionSpec {
                name: "default".into(),
                replicated: false,
            },
        );
    }
    Ok(out)
}

#[derive(Clone, Debug)]
struct Entry {
    value: Vec<u8>,
    expires: Option<Instant>,
}

impl Entry {
    fn live(&self, now: Instant) -> bool {
        self.expires.is_none_or(|e| e > now)
    }
}

#[derive(Debug)]
struct Collection {
    spec: CollectionSpec,
    entries: HashMap<Vec<u8>, Entry>,
}

/// Why a cache operation failed (MI error texts of docs/cachedb-local.md §8).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheError {
    /// The system/collection is unknown.
    UnknownCollection(String),
    /// The key is missing or expired.
    NotFound,
}

impl fmt::Display for CacheError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CacheError::UnknownCollection(c) => write!(f, "unknown collection \"{c}\""),
            CacheError::NotFound => f.write_str("Value not found"),
        }
    }
}

impl std::error::Error for CacheError {}

/// The cache, shared between the engine (capability side) and the MI (operator side).
#[derive(Clone, Debug)]
pub struct Cache {
    inner: Arc<Mutex<Vec<Collection>>>,
}

impl Cache {
    /// A cache with these collections, all empty.
    pub fn new(collections: Vec<CollectionSpec>) -> Self {
        let collections = collections
            .into_iter()
            .map(|spec| Collection {
                spec,
                entries: HashMap::new(),
            })
            .collect();
        Cache {
            inner: Arc::new(Mutex::new(collections)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Collection>> {
        // A panic while holding the lock cannot leave an entry half-written (every change
        // is a single map operation), so a poisoned lock is still consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The collection a `system` name selects: `local` → the first, `local:<c>` → `<c>`.
    ///
    /// # Errors
    /// [`CacheError::UnknownCollection`].
    pub fn resolve(&self, system: &str) -> Result<String, CacheError> {
        let guard = self.lock();
        let name = match system.split_once(':') {
            Some(("local", group)) => group.to_string(),
            None if system == "local" => guard
                .first()
                .map(|c| c.spec.name.clone())
                .unwrap_or_default(),
            _ => return Err(CacheError::UnknownCollection(system.to_string())),
        };
        if guard.iter().any(|c| c.spec.name == name) {
            Ok(name)
        } else {
            Err(CacheError::UnknownCollection(system.to_string()))
        }
    }

    /// Whether a collection is replicated.
    pub fn is_replicated(&self, collection: &str) -> bool {
        self.lock()
            .iter()
            .any(|c| c.spec.name == collection && c.spec.replicated)
    }

    /// Stores `key` = `value` for `expiry` seconds (0 = never; negative = delete).
    ///
    /// # Errors
    /// [`CacheError::UnknownCollection`].
    pub fn store(
        &self,
        collection: &str,
        key: &[u8],
        value: &[u8],
        expiry: i32,
    ) -> Result<(), CacheError> {
        let mut guard = self.lock();
        let c = guard
            .iter_mut()
            .find(|c| c.spec.name == collection)
            .ok_or_else(|| CacheError::UnknownCollection(collection.to_string()))?;
        if expiry < 0 {
            c.entries.remove(key);
            return Ok(());
        }
        let expires = (expiry > 0).then(|| Instant::now() + Duration::from_secs(expiry as u64));
        c.entries.insert(
            key.to_vec(),
            Entry {
                value: value.to_vec(),
                expires,
            },
        );
        Ok(())
    }

    /// Removes `key` (a missing key is not an error).
    ///
    /// # Errors
    /// [`CacheError::UnknownCollection`].
    pub fn remove(&self, collection: &str, key: &[u8]) -> Result<(), CacheError> {
        let mut guard = self.lock();
        let c = guard
            .iter_mut()
            .find(|c| c.spec.name == collection)
            .ok_or_else(|| CacheError::UnknownCollection(collection.to_string()))?;
        c.entries.remove(key);
        Ok(())
    }

    /// The live value of `key`; an expired entry is deleted and reported missing.
    ///
    /// # Errors
    /// [`CacheError::UnknownCollection`] or [`CacheError::NotFound`].
    pub fn fetch(&self, collection: &str, key: &[u8]) -> Result<Vec<u8>, CacheError> {
        let now = Instant::now();
        let mut guard = self.lock();
        let c = guard
            .iter_mut()
            .find(|c| c.spec.name == collection)
            .ok_or_else(|| CacheError::UnknownCollection(collection.to_string()))?;
        match c.entries.get(key) {
            Some(e) if e.live(now) => Ok(e.value.clone()),
            Some(_) => {
                c.entries.remove(key);
                Err(CacheError::NotFound)
            }
            None => Err(CacheError::NotFound),
        }
    }

    /// Live (key, value) pairs of a collection whose key matches the shell glob `pattern`,
    /// sorted by key.
    ///
    /// # Errors
    /// [`CacheError::UnknownCollection`].
    pub fn fetch_glob(&self, collection: &str, pattern: &str) -> Result<KeyValues, CacheError> {
        let now = Instant::now();
        let guard = self.lock();
        let c = guard
            .iter()
            .find(|c| c.spec.name == collection)
            .ok_or_else(|| CacheError::UnknownCollection(collection.to_string()))?;
        let mut out: Vec<_> = c
            .entries
            .iter()
            .filter(|(k, e)| e.live(now) && glob_match(pattern.as_bytes(), k))
            .map(|(k, e)| (k.clone(), e.value.clone()))
            .collect();
        out.sort();
        Ok(out)
    }

    /// Removes every key matching `pattern` (local only, never replicated); returns how many.
    ///
    /// # Errors
    /// [`CacheError::UnknownCollection`].
    pub fn remove_glob(&self, collection: &str, pattern: &str) -> Result<usize, CacheError> {
        let mut guard = self.lock();
        let c = guard
            .iter_mut()
            .find(|c| c.spec.name == collection)
            .ok_or_else(|| CacheError::UnknownCollection(collection.to_string()))?;
        let before = c.entries.len();
        c.entries.retain(|k, _| !glob_match(pattern.as_bytes(), k));
        Ok(before - c.entries.len())
    }

    /// Deletes expired entries (the cleaner timer; never replicated). Returns how many.
    pub fn purge_expired(&self) -> usize {
        let now = Instant::now();
        let mut guard = self.lock();
        let mut purged = 0;
        for c in guard.iter_mut() {
            let before = c.entries.len();
            c.entries.retain(|_, e| e.live(now));
            purged += before - c.entries.len();
        }
        purged
    }

    /// Live entries of a collection, sorted by key (for tests and the demo).
    pub fn snapshot(&self, collection: &str) -> KeyValues {
        self.fetch_glob(collection, "*").unwrap_or_default()
    }

    /// Applies a record received from the cluster (live INSERT or sync chunk): unknown
    /// collection → rejected; not replicated here → ignored; negative expiry → delete.
    fn apply_entry(&self, e: &CachedbLocalEntry) -> Result<(), Rejected> {
        if !self.lock().iter().any(|c| c.spec.name == e.collection) {
            return Err(Rejected(format!("Collection: {} not found", e.collection)));
        }
        if !self.is_replicated(&e.collection) {
            return Ok(());
        }
        self.store(&e.collection, &e.key, &e.value, e.expiry)
            .map_err(|err| Rejected(err.to_string()))
    }

    /// The live packet replicating a local store or remove, when the collection is
    /// replicated.
    pub fn replication_packet(&self, op: &CachedbLocalPacket) -> Option<ModulePacket> {
        let collection = match op {
            CachedbLocalPacket::Insert(e) => &e.collection,
            CachedbLocalPacket::Remove { collection, .. } => collection,
        };
        if !self.is_replicated(collection) {
            return None;
        }
        match cachedb_local::to_module_packet(op) {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::error!(collection, error = %e, "entry too large to replicate; kept locally");
                None
            }
        }
    }
}

/// Matches a shell glob (`*`, `?`, `[...]` with ranges and `!`/`^` negation, `\` escapes)
/// against the whole of `text`.
pub fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    // Iterative matcher with backtracking on the last `*`.
    let (mut p, mut t) = (0, 0);
    let (mut star, mut star_t) = (None, 0);
    while t < text.len() {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    star = Some(p);
                    star_t = t;
                    p += 1;
                    continue;
                }
                b'?' => {
                    p += 1;
                    t += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, next)) = class_match(&pattern[p..], text[t]) {
                        if matched {
                            p += next;
                            t += 1;
                            continue;
                        }
                    } else if text[t] == b'[' {
                        p += 1;
                        t += 1;
                        continue;
                    }
                }
                b'\\' if p + 1 < pattern.len() => {
                    if pattern[p + 1] == text[t] {
                        p += 2;
                        t += 1;
                        continue;
                    }
                }
                c => {
                    if c == text[t] {
                        p += 1;
                        t += 1;
                        continue;
                    }
                }
            }
        }
        match star {
            Some(s) => {
                p = s + 1;
                star_t += 1;
                t = star_t;
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Matches `[...]` at the start of `pattern`: (matched, length of the class).
fn class_match(pattern: &[u8], c: u8) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(pattern.get(i), Some(b'!' | b'^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < pattern.len() {
        let lo = pattern[i];
        if lo == b']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        if pattern.get(i + 1) == Some(&b'-') && pattern.get(i + 2).is_some_and(|&h| h != b']') {
            let hi = pattern[i + 2];
            matched |= lo <= c && c <= hi;
            i += 3;
        } else {
            matched |= lo == c;
            i += 1;
        }
    }
    None
}

/// The capability side of the cache, registered with the node.
#[derive(Debug)]
pub struct CachedbCapability {
    cache: Cache,
}

impl CachedbCapability {
    /// The capability over `cache`.
    pub fn new(cache: Cache) -> Self {
        CachedbCapability { cache }
    }
}

impl Capability for CachedbCapability {
    fn data_version(&self) -> i32 {
        cachedb_local::DATA_VERSION
    }

    fn produce_sync_chunks(&mut self, requester: NodeId, chunk: &mut dyn FnMut(&[u8])) {
        let now = Instant::now();
        let guard = self.cache.lock();
        let mut too_large = 0;
        for c in guard.iter().filter(|c| c.spec.replicated) {
            for (key, e) in c.entries.iter().filter(|(_, e)| e.live(now)) {
                // Remaining lifetime in whole seconds, at least 1 for a live expiring entry.
                let expiry = e.expires.map_or(0, |x| {
                    let left = x.saturating_duration_since(now).as_secs_f64().ceil();
                    (left as i64).clamp(1, i64::from(i32::MAX)) as i32
                });
                let record = CachedbLocalEntry {
                    collection: c.spec.name.clone(),
                    key: key.clone(),
                    value: e.value.clone(),
                    expiry,
                };
                match cachedb_local::emit_entry(&record) {
                    Ok(bytes) => chunk(&bytes),
                    Err(_) => too_large += 1,
                }
            }
        }
        if too_large > 0 {
            tracing::error!(requester = %requester, too_large, "cache entries too large to sync");
        }
    }

    fn apply_sync_chunk(
        &mut self,
        _donor: NodeId,
        data_version: i32,
        chunk: &[u8],
    ) -> Result<(), Rejected> {
        if data_version != cachedb_local::DATA_VERSION {
            tracing::info!(
                data_version,
                "cachedb sync data version differs from 1; applying anyway"
            );
        }
        let entry = cachedb_local::parse_entry(chunk).map_err(|e| Rejected(e.to_string()))?;
        self.cache.apply_entry(&entry.to_owned())
    }

    fn apply_packet(
        &mut self,
        _source: NodeId,
        _version: i16,
        packet: &ModulePacket,
    ) -> Result<(), Rejected> {
        match cachedb_local::parse(packet.packet_type, &packet.payload)
            .map_err(|e| Rejected(e.to_string()))?
        {
            CachedbLocalPacket::Insert(e) => self.cache.apply_entry(&e),
            CachedbLocalPacket::Remove { collection, key } => {
                if !self.cache.lock().iter().any(|c| c.spec.name == collection) {
                    return Err(Rejected(format!("Collection: {collection} not found")));
                }
                if self.cache.is_replicated(&collection) {
                    self.cache
                        .remove(&collection, &key)
                        .map_err(|e| Rejected(e.to_string()))?;
                }
                Ok(())
            }
        }
    }

    fn handle_event(&mut self, event: CapabilityEvent) {
        tracing::debug!(?event, "cachedb-local-repl event");
    }
}

/// Registers the cache MI commands of docs/cachedb-local.md §8 (`cache_store`, `cache_fetch`,
/// `cache_remove`, `cache_fetch_chunk`, `cache_remove_chunk`). A store or remove on a
/// replicated collection is replicated through `handle` to every reachable node of
/// `cluster` (when the cache is clustered).
///
/// # Errors
/// [`RegisterError`] when a command name is already taken.
pub fn register_mi(
    dispatcher: &Dispatcher,
    cache: Cache,
    handle: Handle,
    cluster: Option<ClusterId>,
) -> Result<(), RegisterError> {
    let ctx = Arc::new((cache, handle, cluster));
    let c = Arc::clone(&ctx);
    dispatcher.register(
        "cache_store",
        &[
            &["system", "attr", "value"],
            &["system", "attr", "value", "expire"],
        ],
        move |call| {
            let c = Arc::clone(&c);
            async move {
                let (cache, handle, cluster) = &*c;
                let p = &call.params;
                let system = nonempty(p.string("system")?, "Empty memory cache id")?;
                let attr = nonempty(p.string("attr")?, "Empty attribute name")?;
                let value = nonempty(p.string("value")?, "Empty value")?;
                let expire = p.opt_int("expire")?.unwrap_or(0);
                if expire < 0 {
                    return Err(MiError::invalid_params("Negative expire value"));
                }
                let failed = || MiError::new(500, "Cache store command failed");
                let collection = cache.resolve(&system).map_err(|_| failed())?;
                cache
                    .store(&collection, attr.as_bytes(), value.as_bytes(), expire)
                    .map_err(|_| failed())?;
                let op = CachedbLocalPacket::Insert(CachedbLocalEntry {
                    collection,
                    key: attr.into_bytes(),
                    value: value.into_bytes(),
                    expiry: expire,
                });
                replicate(cache, handle, *cluster, &op).await;
                Ok(Value::from("OK"))
            }
        },
    )?;
    let c = Arc::clone(&ctx);
    dispatcher.register("cache_fetch", &[&["system", "attr"]], move |call| {
        let c = Arc::clone(&c);
        async move {
            let (cache, _, _) = &*c;
            let system = nonempty(call.params.string("system")?, "Empty memory cache id")?;
            let attr = nonempty(call.params.string("attr")?, "Empty attribute name")?;
            let collection = cache
                .resolve(&system)
                .map_err(|_| MiError::new(500, "Cache fetch command failed"))?;
            match cache.fetch(&collection, attr.as_bytes()) {
                Ok(v) if !v.is_empty() => {
                    Ok(json!({ "key": attr, "value": String::from_utf8_lossy(&v) }))
                }
                Ok(_) | Err(CacheError::NotFound) => Err(MiError::new(400, "Value not found")),
                Err(_) => Err(MiError::new(500, "Cache fetch command failed")),
            }
        }
    })?;
    let c = Arc::clone(&ctx);
    dispatcher.register("cache_remove", &[&["system", "attr"]], move |call| {
        let c = Arc::clone(&c);
        async move {
            let (cache, handle, cluster) = &*c;
            let system = nonempty(call.params.string("system")?, "Empty memory cache id")?;
            let attr = nonempty(call.params.string("attr")?, "Empty attribute name")?;
            let failed = || MiError::new(500, "Cache remove command failed");
            let collection = cache.resolve(&system).map_err(|_| failed())?;
            cache
                .remove(&collection, attr.as_bytes())
                .map_err(|_| failed())?;
            let op = CachedbLocalPacket::Remove {
                collection,
                key: attr.into_bytes(),
            };
            replicate(cache, handle, *cluster, &op).await;
            Ok(Value::from("OK"))
        }
    })?;
    let c = Arc::clone(&ctx);
    dispatcher.register("cache_fetch_chunk", &[&["glob"], &["glob", "collection"]], move |call| {
        let c = Arc::clone(&c);
        async move {
            let (cache, _, _) = &*c;
            let glob = call.params.string("glob")?;
            let collection = chunk_collection(cache, call.params.opt_string("collection")?)?;
            let keys: Vec<Value> = cache
                .fetch_glob(&collection, &glob)
                .map_err(|e| MiError::new(404, e.to_string()))?
                .into_iter()
                .map(|(k, v)| json!({ "name": String::from_utf8_lossy(&k), "value": String::from_utf8_lossy(&v) }))
                .collect();
            Ok(json!({ "keys": keys }))
        }
    })?;
    let c = Arc::clone(&ctx);
    dispatcher.register(
        "cache_remove_chunk",
        &[&["glob"], &["glob", "collection"]],
        move |call| {
            let c = Arc::clone(&c);
            async move {
                let (cache, _, _) = &*c;
                let glob = call.params.string("glob")?;
                let collection = chunk_collection(cache, call.params.opt_string("collection")?)?;
                cache
                    .remove_glob(&collection, &glob)
                    .map_err(|e| MiError::new(404, e.to_string()))?;
                Ok(Value::from("OK"))
            }
        },
    )?;
    Ok(())
}

/// The collection of a glob command: the named one, or the first (like OpenSIPS). An
/// unknown collection is a clear 404 (docs/cachedb-local.md quirk #13 fixed).
fn chunk_collection(cache: &Cache, collection: Option<String>) -> Result<String, MiError> {
    match collection {
        Some(c) => cache
            .resolve(&format!("local:{c}"))
            .map_err(|_| MiError::new(404, format!("Collection {c} not found"))),
        None => cache
            .resolve("local")
            .map_err(|_| MiError::new(404, "No collection configured")),
    }
}

fn nonempty(value: String, error: &str) -> Result<String, MiError> {
    if value.is_empty() {
        Err(MiError::invalid_params(error))
    } else {
        Ok(value)
    }
}

/// Sends a local change to every reachable node (replicated collections only); failures
/// are only logged, as in OpenSIPS.
async fn replicate(
    cache: &Cache,
    handle: &Handle,
    cluster: Option<ClusterId>,
    op: &CachedbLocalPacket,
) {
    let Some(cluster) = cluster else { return };
    let Some(packet) = cache.replication_packet(op) else {
        return;
    };
    match handle
        .send_all(cluster, NodeMatch::Any, cachedb_local::BIN_VERSION, packet)
        .await
    {
        Ok(status) if status.code() < 0 => tracing::debug!(?status, "cache change not replicated"),
        Ok(_) => {}
        Err(e) => tracing::error!(error = %e, "cache change not replicated"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collections_parse_like_opensips() {
        let c = parse_collections("default/r; sess/r = 4; loc").unwrap();
        let names: Vec<_> = c.iter().map(|c| (c.name.as_str(), c.replicated)).collect();
        assert_eq!(names, [("default", true), ("sess", true), ("loc", false)]);
        let c = parse_collections("c1/r").unwrap();
        assert_eq!(
            c[0],
            CollectionSpec {
                name: "default".into(),
                replicated: false
            }
        );
        assert!(parse_collections("a; a/r").is_err());
        assert!(parse_collections("a = x").is_err());
    }

    #[test]
    fn globs_match_whole_keys() {
        assert!(glob_match(b"k*", b"kexp"));
        assert!(!glob_match(b"k*", b"xk"));
        assert!(glob_match(b"k?", b"k2"));
        assert!(glob_match(b"[a-c]x", b"bx"));
        assert!(!glob_match(b"[!a-c]x", b"bx"));
        assert!(glob_match(b"a\\*", b"a*"));
        assert!(glob_match(b"*", b""));
        assert!(glob_match(b"*a*b", b"xxaxxb"));
    }

    #[test]
    fn received_records_follow_the_replication_rules() {
        let cache = Cache::new(parse_collections("default/r; loc").unwrap());
        let mut cap = CachedbCapability::new(cache.clone());
        let entry = |c: &str, k: &str, v: &str, e: i32| CachedbLocalEntry {
            collection: c.into(),
            key: k.into(),
            value: v.into(),
            expiry: e,
        };
        let insert = |e| cachedb_local::to_module_packet(&CachedbLocalPacket::Insert(e)).unwrap();
        let n = NodeId::new(2).unwrap();
        cap.apply_packet(n, 1, &insert(entry("default", "k", "v", 0)))
            .unwrap();
        assert_eq!(cache.fetch("default", b"k").unwrap(), b"v");
        cap.apply_packet(n, 1, &insert(entry("loc", "k", "v", 0)))
            .unwrap();
        assert_eq!(
            cache.fetch("loc", b"k"),
            Err(CacheError::NotFound),
            "not replicated here: ignored"
        );
        assert!(
            cap.apply_packet(n, 1, &insert(entry("zz", "k", "v", 0)))
                .is_err()
        );
        cap.apply_packet(n, 1, &insert(entry("default", "k", "v", -5)))
            .unwrap();
        assert_eq!(
            cache.fetch("default", b"k"),
            Err(CacheError::NotFound),
            "negative expiry deletes"
        );
        let chunk = cachedb_local::emit_entry(&entry("default", "s", "1", 30)).unwrap();
        cap.apply_sync_chunk(n, 1, &chunk).unwrap();
        let mut chunks = Vec::new();
        cap.produce_sync_chunks(n, &mut |c| chunks.push(c.to_vec()));
        let e = cachedb_local::parse_entry(&chunks[0]).unwrap();
        assert_eq!((e.key, e.expiry), (&b"s"[..], 30), "remaining lifetime");
    }

    #[test]
    fn system_names_select_collections() {
        let cache = Cache::new(parse_collections("c1/r; default/r").unwrap());
        assert_eq!(
            cache.resolve("local").unwrap(),
            "c1",
            "the first collection, like OpenSIPS"
        );
        assert_eq!(cache.resolve("local:default").unwrap(), "default");
        assert!(cache.resolve("local:nope").is_err());
        assert!(cache.resolve("redis").is_err());
    }
}
