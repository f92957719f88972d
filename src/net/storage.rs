//! Durable storage files: what an actor saved (`Command::Save`), written so that a crash never
//! leaves a half-written record, and read back only if it is whole, this actor's, and this
//! cluster's.
//!
//! A file is one record:
//!
//! ```text
//! "IFST" | version (1 byte) | identity length (2 bytes LE) | identity (UTF-8)
//!        | payload length (4 bytes LE) | payload (postcard of Option<Storage>) | CRC-32 (4 bytes LE)
//! ```
//!
//! The CRC covers every byte before it. The identity names the cluster and the actor's index
//! (`cluster 7f3a… replica 2`), so a file copied from another replica or another cluster is
//! refused rather than adopted. A payload of `None` is a fresh actor that has saved nothing yet:
//! [`StorageFile::init`] writes it when an operator starts a new actor, so that a later start
//! tells "new, nothing to remember" from "the file is gone".
//!
//! Writes go to `<file>.tmp`, are fsynced, renamed over the file, and the directory is fsynced;
//! every failure is an error (the runtime stops the actor rather than let a message promise what
//! was not stored).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use thiserror::Error;

use super::fs::{dir_of, FileSystem, OsFs};

const MAGIC: &[u8; 4] = b"IFST";
/// 2: postcard payloads instead of JSON; IronRSL's reply cache became the bounded client
/// session table (with its watermark).
const VERSION: u8 = 2;

/// How an actor (a replica, a host) starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Startup {
    /// From its storage, which must exist, be whole, and be this actor's of this cluster.
    Restore,
    /// As a new actor: its storage is created, and must not exist yet.
    Init,
    /// With no storage at all (the cluster file has no `data_dir`): the actor forgets its state
    /// when it stops (a replica its votes and promises, a host its pairs and ranges), so
    /// restarting it is unsafe. For tests and demos.
    Ephemeral,
}

/// Checks that `startup` suits a cluster whose storage is in `data_dir` (none: only
/// ephemeral; some: never ephemeral) and creates the directory. `what` says what the actor
/// must keep ("a host must keep its pairs and ranges").
pub(crate) fn prepare_storage(
    data_dir: &Option<PathBuf>,
    startup: Startup,
    what: &str,
) -> anyhow::Result<()> {
    match (data_dir, startup) {
        (None, Startup::Ephemeral) => Ok(()),
        (None, _) => anyhow::bail!(
            "the cluster file has no data_dir: {what} on disk to be safe across restarts; set \
             data_dir, or pass --ephemeral to run without storage (unsafe across restarts)"
        ),
        (Some(d), Startup::Ephemeral) => anyhow::bail!(
            "--ephemeral, but the cluster file keeps storage in {}: remove one of them",
            d.display()
        ),
        (Some(d), _) => {
            std::fs::create_dir_all(d).map_err(|e| anyhow::anyhow!("creating {}: {e}", d.display()))
        }
    }
}

/// How a whole in-process cluster starts, given where its members' storage would be (`None`: no
/// `data_dir`): ephemeral without storage; from storage when every member's is there; as a new
/// cluster when none is; an error when only some are (a member that lost its storage must not
/// silently start empty). `members` names them in the error ("replicas", "hosts").
pub(crate) fn cluster_startup(
    files: Option<Vec<PathBuf>>,
    members: &str,
) -> anyhow::Result<Startup> {
    let Some(files) = files else {
        return Ok(Startup::Ephemeral);
    };
    let missing: Vec<String> = files
        .iter()
        .filter(|f| !f.exists())
        .map(|f| f.display().to_string())
        .collect();
    match missing.len() {
        0 => Ok(Startup::Restore),
        n if n == files.len() => Ok(Startup::Init),
        _ => anyhow::bail!(
            "some {members}' storage is missing ({}): refusing to start them empty",
            missing.join(", ")
        ),
    }
}

/// Where an actor's durable state goes: the runtime hands it every save of a group of steps, in
/// order, before any message of those steps leaves.
pub trait Store<S>: Send {
    /// Creates the storage of a new actor, holding nothing yet; refuses if it exists.
    fn init(&mut self) -> Result<(), StorageError>;
    /// What the actor stored (`None`: initialised, nothing saved yet). Missing, corrupt or
    /// foreign storage is an error.
    fn load(&mut self) -> Result<Option<S>, StorageError>;
    /// Makes `saves` durable, in order; returns the bytes written.
    fn save_all(&mut self, saves: Vec<S>) -> Result<u64, StorageError>;
}

/// A storage file holds the whole durable state: of a group of saves only the last is written.
impl<S: Serialize + DeserializeOwned + Send> Store<S> for StorageFile {
    fn init(&mut self) -> Result<(), StorageError> {
        StorageFile::init::<S>(self)
    }

    fn load(&mut self) -> Result<Option<S>, StorageError> {
        StorageFile::load(self)
    }

    fn save_all(&mut self, saves: Vec<S>) -> Result<u64, StorageError> {
        match saves.last() {
            Some(last) => self.save(last),
            None => Ok(0),
        }
    }
}

/// Why a storage file could not be used.
#[derive(Debug, Error)]
pub enum StorageError {
    /// No file where the actor's storage must be: starting empty would forget its promises.
    #[error(
        "{path}: no storage file; a replica that starts without the votes and promises it \
         stored could break agreement. Start a new replica with --init, or restore the file"
    )]
    Missing {
        /// The file.
        path: PathBuf,
    },
    /// `--init` for an actor that already has storage: initialising would erase it.
    #[error("{path}: storage already exists; --init is only for a new replica (remove --init)")]
    AlreadyExists {
        /// The file.
        path: PathBuf,
    },
    /// Not a whole storage record: truncated, damaged, or not a storage file at all.
    #[error("{path}: corrupt storage file: {why}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What check failed.
        why: String,
    },
    /// A whole record, but another actor's or another cluster's.
    #[error("{path}: storage of {found}, but this is {expected}")]
    Foreign {
        /// The file.
        path: PathBuf,
        /// The identity in the file.
        found: String,
        /// This actor's identity.
        expected: String,
    },
    /// The file system refused a read, write, fsync or rename.
    #[error("{path}: {op} failed: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The system's error.
        source: std::io::Error,
    },
}

/// One actor's storage file and the identity it must carry, on a file system (the operating
/// system's, or the simulator's).
#[derive(Clone, Debug)]
pub struct StorageFile {
    path: PathBuf,
    identity: String,
    fs: Arc<dyn FileSystem>,
}

impl PartialEq for StorageFile {
    fn eq(&self, o: &Self) -> bool {
        self.path == o.path && self.identity == o.identity
    }
}

impl Eq for StorageFile {}

impl StorageFile {
    /// The file at `path`, which must carry `identity` (the cluster and the actor's index).
    pub fn new(path: PathBuf, identity: String) -> Self {
        Self::on(Arc::new(OsFs::default()), path, identity)
    }

    /// The same, on the file system `fs`.
    pub fn on(fs: Arc<dyn FileSystem>, path: PathBuf, identity: String) -> Self {
        StorageFile { path, identity, fs }
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates the file of a new actor, holding nothing yet; refuses if the file exists.
    pub fn init<S: Serialize>(&self) -> Result<(), StorageError> {
        if self.fs.exists(&self.path) {
            return Err(StorageError::AlreadyExists {
                path: self.path.clone(),
            });
        }
        self.write(&None::<S>).map(|_| ())
    }

    /// What the actor saved last (`None`: initialised, nothing saved yet). A missing, corrupt or
    /// foreign file is an error.
    pub fn load<S: DeserializeOwned>(&self) -> Result<Option<S>, StorageError> {
        let bytes = match self.fs.read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StorageError::Missing {
                    path: self.path.clone(),
                })
            }
            Err(source) => return Err(self.io("read", source)),
        };
        let (identity, payload) = decode(&bytes).map_err(|why| StorageError::Corrupt {
            path: self.path.clone(),
            why,
        })?;
        if identity != self.identity {
            return Err(StorageError::Foreign {
                path: self.path.clone(),
                found: identity,
                expected: self.identity.clone(),
            });
        }
        postcard::from_bytes(payload).map_err(|e| StorageError::Corrupt {
            path: self.path.clone(),
            why: format!("the record does not decode: {e}"),
        })
    }

    /// Replaces the file's record with `storage`, durably: write, fsync, rename, fsync the
    /// directory. Any failure is an error. Returns the bytes written.
    pub fn save<S: Serialize>(&self, storage: &S) -> Result<u64, StorageError> {
        self.write(&Some(storage))
    }

    fn write<S: Serialize>(&self, storage: &Option<S>) -> Result<u64, StorageError> {
        let payload = postcard::to_allocvec(storage).map_err(|e| StorageError::Corrupt {
            path: self.path.clone(),
            why: format!("the record does not encode: {e}"),
        })?;
        let bytes = encode(&self.identity, &payload);
        replace_durably(
            &*self.fs,
            &self.path,
            &self.path.with_extension("tmp"),
            &bytes,
        )?;
        Ok(bytes.len() as u64)
    }

    fn io(&self, op: &'static str, source: std::io::Error) -> StorageError {
        StorageError::Io {
            path: self.path.clone(),
            op,
            source,
        }
    }
}

/// Replaces the file at `path` by `bytes`, durably and atomically: written to `tmp`, fsynced,
/// renamed over `path`, the directory fsynced. A crash at any point leaves the old file or the
/// new one, whole.
pub(crate) fn replace_durably(
    fs: &dyn FileSystem,
    path: &Path,
    tmp: &Path,
    bytes: &[u8],
) -> Result<(), StorageError> {
    let io = |at: &Path, op, source| StorageError::Io {
        path: at.to_owned(),
        op,
        source,
    };
    fs.create(tmp).map_err(|e| io(tmp, "create", e))?;
    fs.append(tmp, bytes).map_err(|e| io(tmp, "write", e))?;
    fs.sync(tmp).map_err(|e| io(tmp, "fsync", e))?;
    fs.rename(tmp, path).map_err(|e| io(path, "rename", e))?;
    sync_dir_of(fs, path)
}

/// Fsyncs the directory holding `path`, so a rename or a new file in it survives a crash.
pub(crate) fn sync_dir_of(fs: &dyn FileSystem, path: &Path) -> Result<(), StorageError> {
    let dir = dir_of(path);
    fs.sync_dir(dir).map_err(|source| StorageError::Io {
        path: dir.to_owned(),
        op: "fsync directory",
        source,
    })
}

fn encode(identity: &str, payload: &[u8]) -> Vec<u8> {
    let id = identity.as_bytes();
    let mut b = Vec::with_capacity(4 + 1 + 2 + id.len() + 4 + payload.len() + 4);
    b.extend_from_slice(MAGIC);
    b.push(VERSION);
    b.extend_from_slice(&(id.len() as u16).to_le_bytes());
    b.extend_from_slice(id);
    b.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    b.extend_from_slice(payload);
    let crc = crc32fast::hash(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

/// The identity and payload of a record, or what is wrong with it.
fn decode(b: &[u8]) -> Result<(String, &[u8]), String> {
    if b.len() < 4 + 1 + 2 + 4 + 4 {
        return Err(format!("{} bytes is shorter than any record", b.len()));
    }
    let (body, crc) = b.split_at(b.len() - 4);
    let crc = u32::from_le_bytes(crc.try_into().expect("4 bytes"));
    if &body[..4] != MAGIC {
        return Err("not a storage file (bad magic)".into());
    }
    if body[4] != VERSION {
        return Err(format!(
            "format version {} (this build reads {VERSION})",
            body[4]
        ));
    }
    if crc32fast::hash(body) != crc {
        return Err("checksum mismatch (torn or damaged)".into());
    }
    let id_len = u16::from_le_bytes([body[5], body[6]]) as usize;
    let rest = &body[7..];
    if rest.len() < id_len + 4 {
        return Err("identity runs past the end".into());
    }
    let identity = std::str::from_utf8(&rest[..id_len])
        .map_err(|_| "identity is not UTF-8".to_string())?
        .to_string();
    let rest = &rest[id_len..];
    let len = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
    let payload = &rest[4..];
    if payload.len() != len {
        return Err(format!(
            "payload of {} bytes, header says {len}",
            payload.len()
        ));
    }
    Ok((identity, payload))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn file(dir: &Path, name: &str, identity: &str) -> StorageFile {
        StorageFile::new(dir.join(name), identity.into())
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("ironfleet-storage-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn init_then_save_then_load() {
        let d = temp_dir("roundtrip");
        let f = file(&d, "r0", "cluster c replica 0");
        f.init::<Vec<u64>>().unwrap();
        assert_eq!(f.load::<Vec<u64>>().unwrap(), None);
        f.save(&vec![1u64, 2, 3]).unwrap();
        assert_eq!(f.load::<Vec<u64>>().unwrap(), Some(vec![1, 2, 3]));
        assert!(matches!(
            f.init::<Vec<u64>>(),
            Err(StorageError::AlreadyExists { .. })
        ));
    }

    #[test]
    fn a_missing_file_is_an_error_not_an_empty_start() {
        let d = temp_dir("missing");
        let f = file(&d, "r0", "x");
        assert!(matches!(f.load::<u64>(), Err(StorageError::Missing { .. })));
    }

    #[test]
    fn a_file_of_another_replica_is_refused() {
        let d = temp_dir("foreign");
        file(&d, "r1", "cluster c replica 1").save(&7u64).unwrap();
        std::fs::copy(d.join("r1"), d.join("r0")).unwrap();
        let e = file(&d, "r0", "cluster c replica 0")
            .load::<u64>()
            .unwrap_err();
        assert!(matches!(e, StorageError::Foreign { .. }), "{e}");
        assert!(e.to_string().contains("replica 1"), "{e}");
    }

    #[test]
    fn a_failed_write_is_an_error() {
        let d = temp_dir("blocked");
        let f = file(&d, "r0", "x");
        // A directory where the temporary file goes: creating it fails, even for root.
        std::fs::create_dir(d.join("r0.tmp")).unwrap();
        assert!(matches!(f.save(&1u64), Err(StorageError::Io { .. })));
    }

    proptest! {
        /// Any damage to a record (a flipped bit anywhere, or a cut) is detected.
        #[test]
        fn damaged_records_are_refused(at in 0usize..200, bit in 0u8..8, cut in 0usize..200) {
            let bytes = encode("cluster c replica 0", br#"{"votes":[1,2,3],"bal":17}"#);
            let mut flipped = bytes.clone();
            let i = at % flipped.len();
            flipped[i] ^= 1 << bit;
            prop_assert!(decode(&flipped).is_err());
            prop_assert!(decode(&bytes[..cut % bytes.len()]).is_err());
            prop_assert!(decode(&bytes).is_ok());
        }
    }
}
