//! A durable IronKV host's storage: a snapshot file and a write-ahead log ([`HostLog`]).
//!
//! A host saves either a whole snapshot or the journal records of a step (see
//! `actors::kv::HostSave`). The snapshot is a [`StorageFile`] (checksummed, stamped with the
//! cluster and the host's index) holding `(generation, HostStorage)`; the log is one file:
//!
//! ```text
//! header: "IFWL" | version (1) | generation (8 LE) | identity length (2 LE) | identity | CRC-32 (4 LE)
//! record: payload length (4 LE) | number (8 LE) | CRC-32 of payload (4 LE)
//!         | CRC-32 of the 16 bytes before (4 LE) | payload (postcard of Vec<HostRecord>)
//! ```
//!
//! A group of saves is one record, appended and made durable with one `fdatasync` (group
//! commit: the runtime hands over every save of the steps it ran together). Records are
//! numbered from 1 in each log. A snapshot is written with a
//! new generation, then the log is replaced by an empty one of that generation (written aside,
//! fsynced, renamed, directory fsynced), so a crash in between leaves an older log, which the
//! next start ignores: its records are in the snapshot.
//!
//! Loading replays the log over the snapshot, up to the first place that is not a whole record
//! with the next number. What follows is either a torn append (a crash during an append that
//! was never acknowledged: its bytes may be cut short, zeros, or garbage) or damage to
//! acknowledged records. They are told apart by what comes after: a whole record with a later
//! number anywhere after that place proves the records before it were acknowledged, so the log
//! is damaged and the host refuses to start; with none, the tail is a torn append and is cut off.
//! (Since a group is one record, a torn append never leaves a whole record of its own behind.
//! A damaged *last* record reads as a torn append: no log can tell the two apart without a
//! second copy.) A log of another generation ahead of the snapshot, a log of another host, or
//! a missing log, is corruption too.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::actors::kv::{HostRecord, HostSave, HostStorage};

use super::fs::{FileSystem, OsFs};
use super::storage::{replace_durably, StorageError, StorageFile, Store};

const MAGIC: &[u8; 4] = b"IFWL";
/// 2: one numbered record per group, with a checksummed record header.
const VERSION: u8 = 2;
/// A record's header: length, number, payload CRC, header CRC.
const RECORD_HEADER: usize = 4 + 8 + 4 + 4;
/// The largest record accepted when reading (a step's records: far below this).
const MAX_RECORD: usize = 1 << 28;

/// A host's snapshot file and write-ahead log.
pub struct HostLog {
    snapshot: StorageFile,
    log_path: PathBuf,
    identity: String,
    /// The generation of the snapshot on disk (the log's records apply to it).
    generation: u64,
    /// Whether the log takes appends (once loaded or initialised).
    open: bool,
    /// The number of the last record in the log.
    last_record: u64,
    fs: Arc<dyn FileSystem>,
}

/// The snapshot as stored: its generation and the state.
type Snapshot = (u64, HostStorage);

impl HostLog {
    /// The storage at `<base>.snapshot` and `<base>.log`, which must carry `identity`.
    pub fn new(base: &Path, identity: String) -> Self {
        Self::on(Arc::new(OsFs::default()), base, identity)
    }

    /// The same, on the file system `fs`.
    pub fn on(fs: Arc<dyn FileSystem>, base: &Path, identity: String) -> Self {
        HostLog {
            snapshot: StorageFile::on(
                fs.clone(),
                base.with_extension("snapshot"),
                identity.clone(),
            ),
            log_path: base.with_extension("log"),
            identity,
            generation: 0,
            open: false,
            last_record: 0,
            fs,
        }
    }

    /// The snapshot file's path.
    pub fn snapshot_path(&self) -> &Path {
        self.snapshot.path()
    }

    /// The log's path.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    fn io(&self, op: &'static str, source: std::io::Error) -> StorageError {
        StorageError::Io {
            path: self.log_path.clone(),
            op,
            source,
        }
    }

    fn corrupt(&self, why: String) -> StorageError {
        StorageError::Corrupt {
            path: self.log_path.clone(),
            why,
        }
    }

    fn header(&self, generation: u64) -> Vec<u8> {
        let id = self.identity.as_bytes();
        let mut b = Vec::with_capacity(4 + 1 + 8 + 2 + id.len() + 4);
        b.extend_from_slice(MAGIC);
        b.push(VERSION);
        b.extend_from_slice(&generation.to_le_bytes());
        b.extend_from_slice(&(id.len() as u16).to_le_bytes());
        b.extend_from_slice(id);
        let crc = crc32fast::hash(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b
    }

    /// Replaces the log by an empty one of `generation`, durably, and opens it for appends.
    fn reset_log(&mut self, generation: u64) -> Result<u64, StorageError> {
        let header = self.header(generation);
        let tmp = self.log_path.with_extension("log.tmp");
        self.open = false;
        replace_durably(&*self.fs, &self.log_path, &tmp, &header)?;
        self.open = true;
        self.last_record = 0;
        Ok(header.len() as u64)
    }

    /// The log's records after a header of this host and `generation`, the length of the
    /// whole records (where a torn tail starts), and the number of the last. `None`: the log is
    /// of an older generation (its records are in the snapshot).
    fn read_log(&self, generation: u64) -> Result<Option<LogContent>, StorageError> {
        let bytes = match self.fs.read(&self.log_path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(self.corrupt(
                    "the write-ahead log is missing: the writes it held would be lost".into(),
                ))
            }
            Err(e) => return Err(self.io("read", e)),
        };
        let id = self.identity.as_bytes();
        let header_len = 4 + 1 + 8 + 2 + id.len() + 4;
        if bytes.len() < 15 || &bytes[..4] != MAGIC {
            return Err(self.corrupt("not a write-ahead log (bad magic)".into()));
        }
        if bytes[4] != VERSION {
            return Err(self.corrupt(format!(
                "log format version {} (this build reads {VERSION})",
                bytes[4]
            )));
        }
        let found_len = u16::from_le_bytes([bytes[13], bytes[14]]) as usize;
        let end = 15 + found_len + 4;
        if bytes.len() < end {
            return Err(self.corrupt("the log's header is cut short".into()));
        }
        let crc = u32::from_le_bytes(bytes[end - 4..end].try_into().expect("4 bytes"));
        if crc32fast::hash(&bytes[..end - 4]) != crc {
            return Err(self.corrupt("the log's header fails its checksum".into()));
        }
        let found = String::from_utf8_lossy(&bytes[15..15 + found_len]).into_owned();
        if found != self.identity {
            return Err(StorageError::Foreign {
                path: self.log_path.clone(),
                found,
                expected: self.identity.clone(),
            });
        }
        debug_assert_eq!(end, header_len);
        let log_generation = u64::from_le_bytes(bytes[5..13].try_into().expect("8 bytes"));
        if log_generation < generation {
            return Ok(None);
        }
        if log_generation > generation {
            return Err(self.corrupt(format!(
                "the log is of generation {log_generation}, ahead of the snapshot's {generation}"
            )));
        }
        let mut records = Vec::new();
        let mut at = end;
        let mut last = 0;
        while at < bytes.len() {
            match whole_record_at(&bytes, at) {
                Some((number, body, next)) if number == last + 1 => {
                    let group: Vec<HostRecord> = postcard::from_bytes(body).map_err(|e| {
                        self.corrupt(format!(
                            "record {number} at offset {at} does not decode: {e}"
                        ))
                    })?;
                    records.extend(group);
                    last = number;
                    at = next;
                }
                _ => {
                    // A torn append, unless a later record follows (see the module doc).
                    if let Some((o, n)) = (at..bytes.len()).find_map(|o| {
                        whole_record_at(&bytes, o)
                            .and_then(|(n, _, _)| (n > last).then_some((o, n)))
                    }) {
                        return Err(self.corrupt(format!(
                            "the log is damaged at offset {at} (after record {last}), and record \
                             {n} follows at offset {o}"
                        )));
                    }
                    break;
                }
            }
        }
        Ok(Some(LogContent {
            records,
            whole: at,
            last,
        }))
    }
}

impl Store<HostSave> for HostLog {
    fn init(&mut self) -> Result<(), StorageError> {
        if self.fs.exists(self.snapshot.path()) || self.fs.exists(&self.log_path) {
            return Err(StorageError::AlreadyExists {
                path: self.snapshot.path().to_owned(),
            });
        }
        self.snapshot.init::<Snapshot>()?;
        self.generation = 0;
        self.reset_log(0).map(|_| ())
    }

    fn load(&mut self) -> Result<Option<HostSave>, StorageError> {
        let snapshot: Option<Snapshot> = self.snapshot.load()?;
        let generation = snapshot.as_ref().map_or(0, |(g, _)| *g);
        let log = self.read_log(generation)?;
        self.generation = generation;
        let state = match (snapshot, log) {
            (Some((_, st)), None) => {
                // A crash between a snapshot and the reset of the log: start a fresh log.
                self.reset_log(generation)?;
                Some(st)
            }
            (None, None) => {
                self.reset_log(generation)?;
                None
            }
            (None, Some(log)) if !log.records.is_empty() => {
                return Err(self.corrupt("log records but no snapshot to apply them to".into()))
            }
            (None, Some(log)) => {
                self.cut(&log)?;
                None
            }
            (Some((_, mut st)), Some(log)) => {
                self.cut(&log)?;
                for r in log.records {
                    st.apply(r);
                }
                Some(st)
            }
        };
        Ok(state.map(HostSave::Snapshot))
    }

    fn save_all(&mut self, saves: Vec<HostSave>) -> Result<u64, StorageError> {
        let mut written = 0;
        // Records before the last snapshot are in it.
        let from = saves
            .iter()
            .rposition(|s| matches!(s, HostSave::Snapshot(_)))
            .unwrap_or(0);
        let mut group = Vec::new();
        for save in saves.into_iter().skip(from) {
            match save {
                HostSave::Snapshot(st) => {
                    let generation = self.generation + 1;
                    written += self.snapshot.save(&(generation, st))?;
                    self.generation = generation;
                    written += self.reset_log(generation)?;
                }
                HostSave::Journal(records) => group.extend(records),
            }
        }
        if !group.is_empty() {
            let body = postcard::to_allocvec(&group)
                .map_err(|e| self.corrupt(format!("a record does not encode: {e}")))?;
            if body.len() > MAX_RECORD {
                return Err(self.corrupt(format!(
                    "a group of {} bytes is larger than a record may be",
                    body.len()
                )));
            }
            let number = self.last_record + 1;
            let buf = encode_record(number, &body);
            let path = self.log_path.clone();
            let io = |op, source| StorageError::Io {
                path: path.clone(),
                op,
                source,
            };
            if !self.open {
                return Err(io("append", std::io::Error::other("the log is not open")));
            }
            self.fs.append(&path, &buf).map_err(|e| io("append", e))?;
            self.fs.sync_data(&path).map_err(|e| io("fdatasync", e))?;
            self.last_record = number;
            written += buf.len() as u64;
        }
        Ok(written)
    }
}

impl HostLog {
    /// Cuts the log after its whole records (a torn tail goes) and opens it for appends.
    fn cut(&mut self, log: &LogContent) -> Result<(), StorageError> {
        let whole = log.whole;
        let len = self
            .fs
            .len(&self.log_path)
            .map_err(|e| self.io("stat", e))?;
        if len != whole as u64 {
            self.fs
                .set_len(&self.log_path, whole as u64)
                .map_err(|e| self.io("truncate", e))?;
            self.fs
                .sync(&self.log_path)
                .map_err(|e| self.io("fsync", e))?;
        }
        self.open = true;
        self.last_record = log.last;
        Ok(())
    }
}

/// What a log holds: its records in order, where its whole records end, the last's number.
struct LogContent {
    records: Vec<HostRecord>,
    whole: usize,
    last: u64,
}

/// A record: its header and `body`.
fn encode_record(number: u64, body: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(RECORD_HEADER + body.len());
    b.extend_from_slice(&(body.len() as u32).to_le_bytes());
    b.extend_from_slice(&number.to_le_bytes());
    b.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    let crc = crc32fast::hash(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b.extend_from_slice(body);
    b
}

/// The whole record at offset `at` of `bytes`, if one is there: its number, its body, and
/// where it ends.
fn whole_record_at(bytes: &[u8], at: usize) -> Option<(u64, &[u8], usize)> {
    let header = bytes.get(at..at.checked_add(RECORD_HEADER)?)?;
    let word = |i: usize| u32::from_le_bytes(header[i..i + 4].try_into().expect("4 bytes"));
    if crc32fast::hash(&header[..16]) != word(16) {
        return None;
    }
    let len = word(0) as usize;
    if len > MAX_RECORD {
        return None;
    }
    let end = at + RECORD_HEADER + len;
    let body = bytes.get(at + RECORD_HEADER..end)?;
    if crc32fast::hash(body) != word(12) {
        return None;
    }
    let number = u64::from_le_bytes(header[4..12].try_into().expect("8 bytes"));
    Some((number, body, end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actors::kv::{DelegationMap, SingleDelivery};
    use stateright::actor::Id;

    fn temp_dir(tag: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("ironfleet-journal-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn empty() -> HostStorage {
        HostStorage {
            delegation: DelegationMap::new(Id::from(0)),
            table: Default::default(),
            sd: SingleDelivery::new(7),
            restarts: 0,
        }
    }

    fn put(k: u64, v: u8) -> HostSave {
        HostSave::Journal(vec![HostRecord::Put(k.into(), vec![v])])
    }

    fn log(d: &Path) -> HostLog {
        HostLog::new(&d.join("host-0"), "cluster c host 0".into())
    }

    fn table(s: Option<HostSave>) -> Vec<(u64, Vec<u8>)> {
        match s {
            Some(HostSave::Snapshot(st)) => st
                .table
                .into_iter()
                .map(|(k, v)| (String::from_utf8(k.0).unwrap().parse().unwrap(), v))
                .collect(),
            other => panic!("expected a snapshot, got {other:?}"),
        }
    }

    #[test]
    fn records_replay_over_the_snapshot_across_generations() {
        let d = temp_dir("replay");
        let mut l = log(&d);
        l.init().unwrap();
        assert_eq!(l.load().unwrap(), None);
        l.save_all(vec![HostSave::Snapshot(empty()), put(1, 1), put(2, 2)])
            .unwrap();
        l.save_all(vec![put(1, 9)]).unwrap();
        assert_eq!(
            table(log(&d).load().unwrap()),
            vec![(1, vec![9]), (2, vec![2])]
        );
        // A new snapshot with records after it in the same group.
        let mut st = empty();
        st.table.insert(5.into(), vec![5]);
        l.save_all(vec![put(3, 3), HostSave::Snapshot(st), put(6, 6)])
            .unwrap();
        assert_eq!(
            table(log(&d).load().unwrap()),
            vec![(5, vec![5]), (6, vec![6])]
        );
    }

    #[test]
    fn a_torn_last_record_is_cut_and_the_log_goes_on() {
        let d = temp_dir("torn");
        let mut l = log(&d);
        l.init().unwrap();
        l.save_all(vec![HostSave::Snapshot(empty()), put(1, 1)])
            .unwrap();
        l.save_all(vec![put(2, 2)]).unwrap();
        let path = l.log_path().to_owned();
        let len = std::fs::metadata(&path).unwrap().len();
        for cut in 1..=6 {
            let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            f.set_len(len - cut).unwrap();
            drop(f);
            let mut again = log(&d);
            assert_eq!(
                table(again.load().unwrap()),
                vec![(1, vec![1])],
                "cut {cut}"
            );
            // Appends continue after the last whole record.
            again.save_all(vec![put(2, 2)]).unwrap();
            assert_eq!(
                table(log(&d).load().unwrap()),
                vec![(1, vec![1]), (2, vec![2])]
            );
        }
    }

    /// Regression: a crash during an append can leave zeros (the file grew, its blocks were
    /// never written) or garbage after the last whole record. The log took a zero length for a
    /// record, and a garbage length for a huge record or for a damaged record with "whole
    /// records" after it: the host refused to start. (Found by the simulated disk.)
    #[test]
    fn a_torn_tail_of_zeros_or_garbage_is_cut() {
        let d = temp_dir("garbage");
        let mut l = log(&d);
        l.init().unwrap();
        l.save_all(vec![HostSave::Snapshot(empty())]).unwrap();
        l.save_all(vec![put(1, 1)]).unwrap();
        let path = l.log_path().to_owned();
        let good = std::fs::read(&path).unwrap();
        let mut tails: Vec<Vec<u8>> = vec![vec![0; 40], vec![0; 3], vec![0xff; 64]];
        // A length field pointing at a short record inside the garbage.
        let mut short = vec![5, 0, 0, 0];
        short.extend_from_slice(&[0xab; 30]);
        tails.push(short);
        for tail in tails {
            let mut bytes = good.clone();
            bytes.extend_from_slice(&tail);
            std::fs::write(&path, &bytes).unwrap();
            let mut again = log(&d);
            assert_eq!(table(again.load().unwrap()), vec![(1, vec![1])], "{tail:?}");
            again.save_all(vec![put(2, 2)]).unwrap();
            assert_eq!(
                table(log(&d).load().unwrap()),
                vec![(1, vec![1]), (2, vec![2])],
                "{tail:?}"
            );
        }
    }

    #[test]
    fn damage_before_whole_records_a_missing_log_and_a_foreign_log_are_refused() {
        let d = temp_dir("damage");
        let mut l = log(&d);
        l.init().unwrap();
        l.save_all(vec![HostSave::Snapshot(empty()), put(1, 1)])
            .unwrap();
        l.save_all(vec![put(2, 2)]).unwrap();
        let path = l.log_path().to_owned();
        let good = std::fs::read(&path).unwrap();
        let header = l.header(1).len();
        for at in [header + 9, header + RECORD_HEADER + 1] {
            // Inside the first record's header, then its payload: record 2 follows.
            let mut bad = good.clone();
            bad[at] ^= 1;
            std::fs::write(&path, &bad).unwrap();
            let e = log(&d).load().unwrap_err();
            assert!(e.to_string().contains("record 2 follows"), "{e}");
        }
        let mut bad = good.clone();
        bad[header + 9] ^= 1;
        std::fs::write(&path, &bad).unwrap();
        let e = log(&d).load().unwrap_err();
        assert!(matches!(e, StorageError::Corrupt { .. }), "{e}");
        std::fs::write(&path, &good).unwrap();
        let other = HostLog::new(&d.join("host-0"), "cluster c host 1".into());
        let e = HostLog {
            snapshot: l.snapshot.clone(),
            ..other
        }
        .load()
        .unwrap_err();
        assert!(matches!(e, StorageError::Foreign { .. }), "{e}");
        std::fs::remove_file(&path).unwrap();
        let e = log(&d).load().unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
        assert!(matches!(
            log(&d).init(),
            Err(StorageError::AlreadyExists { .. })
        ));
    }

    #[test]
    fn a_crash_between_a_snapshot_and_the_log_reset_keeps_the_snapshot() {
        let d = temp_dir("between");
        let mut l = log(&d);
        l.init().unwrap();
        l.save_all(vec![HostSave::Snapshot(empty()), put(1, 1)])
            .unwrap();
        let old_log = std::fs::read(l.log_path()).unwrap();
        let mut st = empty();
        st.table.insert(1.into(), vec![1]);
        st.table.insert(4.into(), vec![4]);
        l.save_all(vec![HostSave::Snapshot(st)]).unwrap();
        // The older log comes back, as if the reset had not happened.
        std::fs::write(l.log_path(), &old_log).unwrap();
        assert_eq!(
            table(log(&d).load().unwrap()),
            vec![(1, vec![1]), (4, vec![4])]
        );
    }
}
