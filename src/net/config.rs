//! The TOML cluster files of IronRSL ([`RslClusterConfig`]: replica addresses, protocol
//! parameters, data directory) and IronKV ([`KvClusterConfig`]: host addresses, protocol
//! parameters), and the reader they share.
//!
//! ```toml
//! replicas = ["127.0.0.1:4000", "127.0.0.1:4001", "127.0.0.1:4002"]
//! cluster_id = "prod-1"             # optional: names the cluster in storage files
//! data_dir = "ironfleet-data"      # without it replicas run only with --ephemeral
//!
//! [params]                         # optional; every field optional (IronRSL's defaults)
//! max_log_length = 7
//! baseline_view_timeout_ms = 1000
//! max_view_timeout_ms = 60000
//! heartbeat_period_ms = 100
//! max_batch_size = 32
//! max_batch_delay_ms = 10
//! max_request_queue = 1024
//! propose_when_idle = true         # false: IronRSL's original batching (always wait the delay)
//! ```
//!
//! IronKV:
//!
//! ```toml
//! hosts = ["127.0.0.1:5000", "127.0.0.1:5001", "127.0.0.1:5002"]   # hosts[0] owns all at start
//!
//! [params]                 # optional; every field optional
//! retransmit_ms = 200
//! max_delegations = 64
//! max_unacked = 1024
//! max_delegate_bytes = 60000
//! ```
//!
//! Unknown keys are rejected, and every error names the field it is about. Model-only
//! parameters (view bounds, eager heartbeats, mutations) cannot be set here.

use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::actors::kv::KvParams;
use crate::actors::rsl::Params;
use std::sync::Arc;

use crate::net::auth::{self, ClusterKey};
use crate::net::codec;
use crate::net::journal::HostLog;
use crate::net::storage::StorageFile;

/// What is wrong with a cluster file.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not valid TOML, or a field of the wrong type, or an unknown field.
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message (it names the key and the line).
        message: String,
    },
    /// A field with a value that is well-typed but not allowed.
    #[error("{path}: field `{field}`: {problem}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The field, as a TOML key path (`params.max_batch_size`, `replicas[2]`).
        field: String,
        /// What is wrong with it.
        problem: String,
    },
}

/// The first rule RSL parameters `p` violate, as (field, problem).
fn check_rsl_params(p: &Params) -> Option<(&'static str, String)> {
    let positive = [
        ("params.max_log_length", p.max_log_length),
        (
            "params.baseline_view_timeout_ms",
            p.baseline_view_timeout_ms,
        ),
        ("params.heartbeat_period_ms", p.heartbeat_period_ms),
        ("params.max_batch_size", p.max_batch_size as u64),
        ("params.max_request_queue", p.max_request_queue as u64),
        ("params.max_client_sessions", p.max_client_sessions as u64),
    ];
    if let Some((f, _)) = positive.iter().find(|(_, v)| *v == 0) {
        return Some((f, "must be at least 1".into()));
    }
    if p.max_view_timeout_ms < p.baseline_view_timeout_ms {
        return Some((
            "params.max_view_timeout_ms",
            format!(
                "{} is below baseline_view_timeout_ms ({})",
                p.max_view_timeout_ms, p.baseline_view_timeout_ms
            ),
        ));
    }
    if p.heartbeat_period_ms >= p.baseline_view_timeout_ms {
        return Some((
            "params.heartbeat_period_ms",
            format!(
                "{} must be below baseline_view_timeout_ms ({}), or every epoch ends \
                 before a heartbeat can show the leader is alive",
                p.heartbeat_period_ms, p.baseline_view_timeout_ms
            ),
        ));
    }
    let chunk_max = codec::MAX_DATAGRAM - 200;
    if !(1..=chunk_max).contains(&p.state_chunk_bytes) {
        return Some((
            "params.state_chunk_bytes",
            format!(
                "{} is not in 1..={chunk_max} (a chunk and its header must fit one datagram)",
                p.state_chunk_bytes
            ),
        ));
    }
    let one_b = one_b_bytes_max(p);
    if one_b > codec::MAX_DATAGRAM {
        return Some((
            "params.max_batch_size",
            format!(
                "{} with max_log_length {}: a 1b carrying a full log window could take {one_b} \
                 bytes, more than one datagram ({}); a view change could never complete. \
                 Lower max_batch_size or max_log_length",
                p.max_batch_size,
                p.max_log_length,
                codec::MAX_DATAGRAM
            ),
        ));
    }
    None
}

/// The most bytes one counter request takes in a message: the client id and sequence number
/// (postcard varints, at most 10 bytes each) and the operation's tag.
const COUNTER_REQUEST_BYTES_MAX: u64 = 21;

/// An upper bound on the size of a 1b, the largest message a replica's log makes: a vote per
/// slot of the window, each a batch of `max_batch_size` requests, with its header, ballots,
/// slot numbers, lengths and the MAC. (The 2a of one batch is smaller; state transfer carries
/// the app state and session table in chunks.)
fn one_b_bytes_max(p: &Params) -> usize {
    let per_vote = 10 + 15 + 5 + COUNTER_REQUEST_BYTES_MAX.saturating_mul(p.max_batch_size as u64);
    let total = 3 + 15 + 10 + 5 + auth::TAG_LEN as u64 + p.max_log_length.saturating_mul(per_vote);
    usize::try_from(total).unwrap_or(usize::MAX)
}

/// An IronRSL cluster: who the replicas are, how they run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RslClusterConfig {
    /// The replicas' IPv4 socket addresses, in configuration order (the order defines which
    /// replica leads which view).
    pub replicas: Vec<SocketAddrV4>,
    /// The cluster's name, written into every storage file so that a file of another cluster
    /// is refused. Without it the replica address list names the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    /// Where replicas keep their storage (`replica-N.storage`); relative paths are relative to
    /// the cluster file. Without it a replica runs only with `--ephemeral` (it forgets its
    /// promises when it stops: unsafe across restarts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// The cluster key (`ironfleet rsl keygen`), relative to the cluster file: every datagram
    /// between replicas carries a MAC under it. Without it replicas recognise each other by
    /// address alone, which anyone can spoof.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// Protocol parameters.
    #[serde(default)]
    pub params: Params,
}

/// The most replicas a cluster may have (a quorum of them must fit in the proposer's bookkeeping
/// and every heartbeat goes to all).
pub const MAX_REPLICAS: usize = 31;

/// A cluster file's text parsed as `T`; a syntax or type error, or an unknown key, names the key.
fn from_toml<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Syntax {
        path: path.to_owned(),
        message: e.to_string().trim_end().to_string(),
    })
}

/// The error for a well-typed `field` of the file at `path` whose value is not allowed.
fn invalid(path: &Path, field: String, problem: String) -> ConfigError {
    ConfigError::Invalid {
        path: path.to_owned(),
        field,
        problem,
    }
}

/// A `key_file` made relative to the cluster file at `path`; an empty one is an error.
fn resolve_key_file(
    path: &Path,
    key_file: Option<PathBuf>,
) -> Result<Option<PathBuf>, (String, String)> {
    match key_file {
        Some(k) if k.as_os_str().is_empty() => Err(("key_file".into(), "is empty".into())),
        Some(k) => Ok(Some(auth::resolve(path, &k))),
        None => Ok(None),
    }
}

/// The key a cluster file names, loaded, or `None` (peers unauthenticated).
pub(crate) fn load_key(key_file: &Option<PathBuf>) -> anyhow::Result<Option<Arc<ClusterKey>>> {
    match key_file {
        Some(p) => Ok(Some(Arc::new(ClusterKey::load(p)?))),
        None => Ok(None),
    }
}

/// Warns, for an operator starting a server process, that a cluster file without `key_file`
/// leaves its peers unauthenticated.
pub(crate) fn warn_if_unauthenticated(key_file: &Option<PathBuf>) {
    if key_file.is_none() {
        tracing::warn!(
            "no key_file in the cluster file: peers are recognised by address alone \
             (spoofable); see `keygen`"
        );
    }
}

/// A cluster file's text.
pub(crate) fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })
}

/// The first problem of a cluster file's address list `field` (none, too many, port 0, listed
/// twice), as (field, problem).
pub(crate) fn check_addresses(
    field: &str,
    addrs: &[SocketAddrV4],
    max: usize,
) -> Option<(String, String)> {
    if addrs.is_empty() {
        return Some((field.into(), "needs at least one address".into()));
    }
    if addrs.len() > max {
        return Some((
            field.into(),
            format!("{} addresses; at most {max}", addrs.len()),
        ));
    }
    for (i, a) in addrs.iter().enumerate() {
        if a.port() == 0 {
            return Some((
                format!("{field}[{i}]"),
                format!("{a}: port 0 is not a fixed address"),
            ));
        }
        if let Some(j) = addrs[..i].iter().position(|b| b == a) {
            return Some((
                format!("{field}[{i}]"),
                format!("{a} is already {field}[{j}]"),
            ));
        }
    }
    None
}

impl RslClusterConfig {
    /// A cluster of these replicas with default parameters and no storage.
    pub fn new(replicas: Vec<SocketAddrV4>) -> Self {
        RslClusterConfig {
            replicas,
            cluster_id: None,
            data_dir: None,
            key_file: None,
            params: Params::default(),
        }
    }

    /// Parses and validates a cluster file's text; `path` names it in errors and anchors a
    /// relative `data_dir`.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let mut cfg: RslClusterConfig = from_toml(path, text)?;
        let invalid = |field: String, problem: String| invalid(path, field, problem);
        if let Some((field, problem)) = check_addresses("replicas", &cfg.replicas, MAX_REPLICAS) {
            return Err(invalid(field, problem));
        }
        if let Some((field, problem)) = check_rsl_params(&cfg.params) {
            return Err(invalid(field.into(), problem));
        }
        cfg.data_dir = resolve_storage(path, &cfg.cluster_id, cfg.data_dir.take())
            .map_err(|p| invalid(p.0, p.1))?;
        cfg.key_file =
            resolve_key_file(path, cfg.key_file.take()).map_err(|p| invalid(p.0, p.1))?;
        Ok(cfg)
    }

    /// Reads and validates a cluster file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::parse(path, &read(path)?)
    }

    /// The file's text for this configuration.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a cluster configuration always serializes")
    }

    /// Replica `id`'s storage file, if the cluster keeps storage.
    pub(crate) fn storage_of(&self, id: usize) -> Option<StorageFile> {
        let d = self.data_dir.as_ref()?;
        let cluster = cluster_name(&self.cluster_id, &self.replicas);
        Some(StorageFile::new(
            d.join(format!("replica-{id}.storage")),
            format!("cluster {cluster} replica {id}"),
        ))
    }
}

/// The first rule KV parameters `p` violate, as (field, problem).
fn check_kv_params(p: &KvParams) -> Option<(&'static str, String)> {
    if !(1..=60_000).contains(&p.retransmit_ms) {
        return Some((
            "params.retransmit_ms",
            format!("{} is not in 1..=60000", p.retransmit_ms),
        ));
    }
    if p.max_client_channels == 0 {
        return Some(("params.max_client_channels", "must be at least 1".into()));
    }
    if p.snapshot_every == 0 {
        return Some(("params.snapshot_every", "must be at least 1".into()));
    }
    if p.max_delegations < 3 {
        return Some((
            "params.max_delegations",
            format!(
                "{}: must be at least 3 (one shard can add two ranges)",
                p.max_delegations
            ),
        ));
    }
    if !(1..=1 << 20).contains(&p.max_unacked) {
        return Some((
            "params.max_unacked",
            format!("{} is not in 1..=1048576", p.max_unacked),
        ));
    }
    let limit = codec::MAX_DATAGRAM - 1_000;
    if p.max_delegate_bytes > limit {
        return Some((
            "params.max_delegate_bytes",
            format!(
                "{}: a Delegate must fit one datagram (at most {limit})",
                p.max_delegate_bytes
            ),
        ));
    }
    None
}

/// An IronKV cluster: who the hosts are, how they run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KvClusterConfig {
    /// The hosts' IPv4 socket addresses; `hosts[0]` owns every key at start.
    pub hosts: Vec<SocketAddrV4>,
    /// The cluster's name, written into every storage file so that a file of another cluster
    /// is refused. Without it the host address list names the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    /// Where hosts keep their storage (`host-N.snapshot` and `host-N.log`); relative paths are
    /// relative to the cluster file. Without it a host runs only with `--ephemeral` (it forgets
    /// its pairs and ranges when it stops: unsafe across restarts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// The cluster key (`ironfleet kv keygen`), relative to the cluster file: every datagram
    /// between hosts carries a MAC under it. Without it hosts recognise each other by address
    /// alone, which anyone can spoof.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// Protocol parameters.
    #[serde(default)]
    pub params: KvParams,
}

/// The most hosts a cluster file may list.
pub const MAX_HOSTS: usize = 64;

impl KvClusterConfig {
    /// A cluster of these hosts with default parameters.
    pub fn new(hosts: Vec<SocketAddrV4>) -> Self {
        KvClusterConfig {
            hosts,
            cluster_id: None,
            data_dir: None,
            key_file: None,
            params: KvParams::default(),
        }
    }

    /// Parses and validates a cluster file's text; `path` names it in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let mut cfg: KvClusterConfig = from_toml(path, text)?;
        let invalid = |field: String, problem: String| invalid(path, field, problem);
        if let Some((field, problem)) = check_addresses("hosts", &cfg.hosts, MAX_HOSTS) {
            return Err(invalid(field, problem));
        }
        if let Some((field, problem)) = check_kv_params(&cfg.params) {
            return Err(invalid(field.into(), problem));
        }
        cfg.data_dir = resolve_storage(path, &cfg.cluster_id, cfg.data_dir.take())
            .map_err(|p| invalid(p.0, p.1))?;
        cfg.key_file =
            resolve_key_file(path, cfg.key_file.take()).map_err(|p| invalid(p.0, p.1))?;
        Ok(cfg)
    }

    /// Reads and validates a cluster file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::parse(path, &read(path)?)
    }

    /// The file's text for this configuration.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a cluster configuration always serializes")
    }

    /// Host `id`'s snapshot and log, if the cluster keeps storage.
    pub(crate) fn storage_of(&self, id: usize) -> Option<HostLog> {
        let d = self.data_dir.as_ref()?;
        let cluster = cluster_name(&self.cluster_id, &self.hosts);
        Some(HostLog::new(
            &d.join(format!("host-{id}")),
            format!("cluster {cluster} host {id}"),
        ))
    }
}

/// Checks `cluster_id` and resolves `data_dir` relative to the cluster file at `path`; an
/// error is (field, problem).
fn resolve_storage(
    path: &Path,
    cluster_id: &Option<String>,
    data_dir: Option<PathBuf>,
) -> Result<Option<PathBuf>, (String, String)> {
    if cluster_id
        .as_ref()
        .is_some_and(|c| c.is_empty() || c.len() > 200)
    {
        return Err(("cluster_id".into(), "must be 1 to 200 characters".into()));
    }
    match data_dir {
        Some(d) if d.as_os_str().is_empty() => Err(("data_dir".into(), "is empty".into())),
        Some(d) if d.is_relative() => Ok(Some(path.parent().unwrap_or(Path::new(".")).join(d))),
        d => Ok(d),
    }
}

/// The name storage files carry: the cluster id, or else the member address list.
fn cluster_name(id: &Option<String>, members: &[SocketAddrV4]) -> String {
    match id {
        Some(c) => c.clone(),
        None => members
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(","),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RslClusterConfig, ConfigError> {
        RslClusterConfig::parse(Path::new("/etc/cluster.toml"), text)
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn minimal_file_gets_defaults() {
        let c =
            parse(r#"replicas = ["127.0.0.1:4000", "127.0.0.1:4001", "127.0.0.1:4002"]"#).unwrap();
        assert_eq!(c.replicas.len(), 3);
        assert_eq!(c.params, Params::default());
        assert_eq!(c.storage_of(0), None);
    }

    #[test]
    fn round_trips_through_toml() {
        let mut c = RslClusterConfig::new(vec!["127.0.0.1:4000".parse().unwrap()]);
        c.data_dir = Some("/var/lib/ironfleet".into());
        c.params.max_batch_size = 8;
        let back = RslClusterConfig::parse(Path::new("x.toml"), &c.to_toml()).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn relative_data_dir_is_relative_to_the_file() {
        let c = parse("replicas = [\"127.0.0.1:4000\"]\ndata_dir = \"data\"").unwrap();
        let f = c.storage_of(0).unwrap();
        assert_eq!(f.path(), Path::new("/etc/data/replica-0.storage"));
    }

    #[test]
    fn errors_name_the_field() {
        assert!(err("replicas = []").contains("field `replicas`"));
        assert!(err(r#"replicas = ["127.0.0.1:1", "127.0.0.1:1"]"#)
            .contains("field `replicas[1]`: 127.0.0.1:1 is already replicas[0]"));
        assert!(err(r#"replicas = ["127.0.0.1:0"]"#).contains("field `replicas[0]`"));
        let e = err("replicas = [\"127.0.0.1:1\"]\n[params]\nmax_batch_size = 0");
        assert!(
            e.contains("field `params.max_batch_size`: must be at least 1"),
            "{e}"
        );
        let e = err("replicas = [\"127.0.0.1:1\"]\n[params]\nheartbeat_period_ms = 5000");
        assert!(e.contains("field `params.heartbeat_period_ms`"), "{e}");
        let e = err("replicas = [\"127.0.0.1:1\"]\n[params]\nmax_batch_size = 2000");
        assert!(
            e.contains("field `params.max_batch_size`") && e.contains("datagram"),
            "{e}"
        );
        let e = err("replicas = [\"127.0.0.1:1\"]\n[params]\nmax_view_timeout_ms = 10");
        assert!(e.contains("field `params.max_view_timeout_ms`"), "{e}");
    }

    #[test]
    fn syntax_and_type_errors_name_the_key() {
        let e = err(r#"replicas = ["localhost"]"#);
        assert!(e.contains("replicas"), "{e}");
        let e = err("replicas = [\"127.0.0.1:1\"]\n[params]\nmax_batch_size = \"big\"");
        assert!(e.contains("max_batch_size"), "{e}");
        let e = err("replicas = [\"127.0.0.1:1\"]\nreplica_count = 3");
        assert!(e.contains("replica_count"), "{e}");
        let e = err("replicas = [\"127.0.0.1:1\"]\n[params]\nmax_view = 3");
        assert!(e.contains("max_view"), "{e}");
        assert!(err("").contains("replicas"));
    }

    #[test]
    fn missing_file_is_reported_with_its_path() {
        let e = RslClusterConfig::load(Path::new("/nonexistent/cluster.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/cluster.toml"), "{e}");
    }

    fn kv_err(text: &str) -> String {
        KvClusterConfig::parse(Path::new("/etc/kv.toml"), text)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn cluster_files_are_validated_field_by_field() {
        let ok = KvClusterConfig::parse(
            Path::new("kv.toml"),
            "hosts = [\"127.0.0.1:5000\", \"127.0.0.1:5001\"]",
        )
        .unwrap();
        assert_eq!(ok.params, KvParams::default());
        let back = KvClusterConfig::parse(Path::new("kv.toml"), &ok.to_toml()).unwrap();
        assert_eq!(back, ok);
        assert!(kv_err("hosts = []").contains("field `hosts`"));
        assert!(kv_err(r#"hosts = ["127.0.0.1:1", "127.0.0.1:1"]"#)
            .contains("field `hosts[1]`: 127.0.0.1:1 is already hosts[0]"));
        assert!(
            kv_err("hosts = [\"127.0.0.1:1\"]\n[params]\nmax_delegations = 2")
                .contains("field `params.max_delegations`")
        );
        assert!(
            kv_err("hosts = [\"127.0.0.1:1\"]\n[params]\nretransmit_ms = 0")
                .contains("field `params.retransmit_ms`")
        );
        assert!(
            kv_err("hosts = [\"127.0.0.1:1\"]\n[params]\nmax_delegate_bytes = 70000")
                .contains("field `params.max_delegate_bytes`")
        );
        assert!(kv_err("hosts = [\"127.0.0.1:1\"]\nreplicas = []").contains("replicas"));
    }

    /// The bound holds for a real 1b with every field at its largest.
    #[test]
    fn the_1b_size_bound_covers_a_full_window_of_full_batches() {
        use crate::actors::rsl::{Ballot, Counter, CounterOp, Request, RslMsg, Vote};
        use stateright::actor::Id;
        let p = Params {
            max_batch_size: 40,
            max_log_length: 9,
            ..Params::default()
        };
        let big = Ballot {
            seqno: u64::MAX,
            proposer: u32::MAX,
        };
        let batch: Vec<Request<Counter>> = (0..p.max_batch_size)
            .map(|_| Request {
                client: Id::from(usize::MAX),
                seqno: u64::MAX,
                op: CounterOp::Inc,
            })
            .collect();
        let votes = (0..p.max_log_length)
            .map(|i| {
                (
                    u64::MAX - i,
                    Vote {
                        bal: big,
                        batch: std::sync::Arc::new(batch.clone()),
                    },
                )
            })
            .collect();
        let m = RslMsg::<Counter>::OneB {
            bal: big,
            log_truncation_point: u64::MAX,
            votes: std::sync::Arc::new(votes),
        };
        let len = codec::encode(&m).unwrap().len() + auth::TAG_LEN;
        assert!(
            len <= one_b_bytes_max(&p),
            "{len} > {}",
            one_b_bytes_max(&p)
        );
    }
}
