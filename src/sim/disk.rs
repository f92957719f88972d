//! A simulated disk under the real storage code ([`SimFs`], a [`FileSystem`]): what a power cut
//! keeps is only what was synced, a write being made when the power goes may be torn, writes
//! fail with EIO or ENOSPC, and a record file may be found damaged.
//!
//! **The model.** Every file has the content the process sees and the content that is on the
//! platter for sure (set by `fsync`/`fdatasync`). Names are the same: the directory the process
//! sees, and the one on disk, to which a directory `fsync` writes every pending creation and
//! rename (one directory per node). A power cut ([`SimFs::power_cut`]) then keeps:
//!
//! - of the pending name changes, a prefix in order (a journaling file system writes its
//!   metadata in order, and may have written some of it on its own);
//! - of a file that was only appended to since its last sync, the synced content plus a prefix
//!   of the appended bytes, whose last sector-sized piece may be garbage (a torn write);
//! - of a file rewritten otherwise (created again, cut), the synced content.
//!
//! This is pessimistic where POSIX allows it and no more: code that syncs a file before renaming
//! it over the old one, and syncs the directory before it acknowledges, loses nothing; code that
//! skips either may lose or tear what it acknowledged, and the simulator sees what follows.
//! A save fails with the drawn rate ([`SimFs::draw_save_failure`], once per save the driver
//! hands the storage code): ENOSPC fails its next append, which then does nothing; EIO fails
//! its next `fsync`, which drops the unsynced content it was to write (Linux marks the pages
//! clean: the data is gone, not merely late).
//!
//! **Crashes inside a write.** [`SimFs::arm_power_cut`] makes the `k`-th file operation from now
//! a power cut: an append is half done when it comes (some of its bytes reach the file, to be
//! kept or torn by the cut), any other operation not at all; that operation and every one after
//! it fail until the world restarts the node ([`SimFs::take_power_cut`]).
//!
//! **Mutations.** [`DiskMutation`] drops the storage code's file or directory `fsync`s, as if
//! the code never made them: the simulator must catch what a crash then loses.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::Mutex;

use crate::net::driver::RuntimeMutation;
use crate::net::fs::FileSystem;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The size of the piece of a torn write that may be garbage.
const SECTOR: usize = 512;

/// A deliberately broken storage behaviour, for the simulator to catch (the runtime mutations
/// `storage-skips-fsync` and `storage-skips-directory-fsync`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DiskMutation {
    /// The storage code is correct.
    #[default]
    None,
    /// Every file `fsync` and `fdatasync` is skipped: acknowledged records live in the page
    /// cache only, and a power cut loses them.
    SkipFileSync,
    /// Every directory `fsync` is skipped: a renamed record may come back as the old one after
    /// a power cut.
    SkipDirSync,
}

impl DiskMutation {
    /// The disk's part of a runtime mutation.
    pub fn of(m: RuntimeMutation) -> Self {
        match m {
            RuntimeMutation::StorageSkipsFsync => DiskMutation::SkipFileSync,
            RuntimeMutation::StorageSkipsDirectoryFsync => DiskMutation::SkipDirSync,
            _ => DiskMutation::None,
        }
    }
}

/// One file: what the process sees, and what is on the disk for sure.
#[derive(Clone, Debug, Default)]
struct Inode {
    seen: Vec<u8>,
    synced: Vec<u8>,
    /// Only appended to since the last sync (`seen` extends `synced`).
    appended: bool,
}

/// Which operation of a save fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Failing {
    Append,
    Sync,
}

/// A file's name, as bytes (compared far faster than a `Path`'s components).
type Name = Vec<u8>;

fn name(path: &Path) -> &[u8] {
    path.as_os_str().as_encoded_bytes()
}

/// A name change not yet made durable by a directory `fsync`.
#[derive(Clone, Debug)]
enum NameChange {
    Link(Name, u64),
    Rename(Name, Name),
}

#[derive(Debug)]
struct FsState {
    inodes: BTreeMap<u64, Inode>,
    names: BTreeMap<Name, u64>,
    synced_names: BTreeMap<Name, u64>,
    pending: Vec<NameChange>,
    next_inode: u64,
    rng: ChaCha8Rng,
    fail_p: f64,
    /// Draws the failures of saves (its own stream, so that power cuts draw apart).
    fail_rng: ChaCha8Rng,
    /// A failure drawn for the save under way: its next append (ENOSPC) or sync (EIO) fails.
    fail_next: Option<Failing>,
    failed: u64,
    /// A power cut at the `n`-th next file operation.
    cut_in: Option<u32>,
    /// The power went: every operation fails until the node restarts.
    cut: bool,
    torn: u64,
    mutation: DiskMutation,
}

/// A node's simulated disk (one directory). Shared by the node's storage code (through
/// [`FileSystem`]) and the world (faults, power cuts).
#[derive(Debug)]
pub struct SimFs {
    state: Mutex<FsState>,
}

fn cut_error() -> io::Error {
    io::Error::other("the power is off (simulated power cut)")
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{}: no such file", path.display()),
    )
}

impl FsState {
    /// Counts down to an armed power cut, then fails the operation if a failure was drawn for
    /// an operation of its kind (`fails`).
    fn enter(&mut self, fails: Option<Failing>) -> io::Result<()> {
        if self.cut {
            return Err(cut_error());
        }
        if let Some(n) = self.cut_in {
            if n <= 1 {
                self.cut_in = None;
                return Err(cut_error()); // the caller cuts the power
            }
            self.cut_in = Some(n - 1);
        }
        if fails.is_some() && self.fail_next == fails {
            self.fail_next = None;
            return Err(failure(fails));
        }
        Ok(())
    }

    /// `enter`, turning an armed cut into the power cut itself.
    fn begin(&mut self, fails: Option<Failing>) -> io::Result<()> {
        let was_cut = self.cut;
        let armed = self.cut_in == Some(1);
        let r = self.enter(fails);
        if r.is_err() && armed && !was_cut {
            self.power_cut();
        }
        r
    }

    fn inode(&mut self, path: &Path) -> io::Result<&mut Inode> {
        let id = *self.names.get(name(path)).ok_or_else(|| not_found(path))?;
        Ok(self.inodes.get_mut(&id).expect("a name points at a file"))
    }

    /// What survives a power cut (see the module doc); the process's view becomes it.
    fn power_cut(&mut self) {
        self.cut = true;
        self.cut_in = None;
        let keep = if self.pending.is_empty() {
            0
        } else {
            self.rng.random_range(0..=self.pending.len())
        };
        for change in self.pending.drain(..keep) {
            apply(&mut self.synced_names, change);
        }
        self.pending.clear();
        self.names = self.synced_names.clone();
        let live: Vec<u64> = self.names.values().copied().collect();
        self.inodes.retain(|id, _| live.contains(id));
        for inode in self.inodes.values_mut() {
            if inode.seen == inode.synced {
                continue;
            }
            if inode.seen.starts_with(&inode.synced) {
                let extra = inode.seen.len() - inode.synced.len();
                // Nothing, all, or some of it reached the platter.
                let kept = match self.rng.random_range(0..3) {
                    0 => 0,
                    1 => extra,
                    _ => self.rng.random_range(0..=extra),
                };
                let mut image = inode.seen[..inode.synced.len() + kept].to_vec();
                if kept > 0 && kept < extra && self.rng.random_bool(0.5) {
                    // The last piece was being written: garbage.
                    let from = image.len() - (kept.min(SECTOR));
                    for b in &mut image[from..] {
                        *b = self.rng.random();
                    }
                }
                if kept < extra {
                    self.torn += 1;
                }
                inode.synced = image;
            }
            inode.seen = inode.synced.clone();
            inode.appended = true;
        }
    }
}

/// The error of a failed append (ENOSPC) or sync (EIO).
fn failure(which: Option<Failing>) -> io::Error {
    let (code, what) = match which {
        Some(Failing::Append) => (28, "ENOSPC"),
        _ => (5, "EIO"),
    };
    io::Error::new(
        io::Error::from_raw_os_error(code).kind(),
        format!("{what} (simulated)"),
    )
}

fn apply(names: &mut BTreeMap<Name, u64>, change: NameChange) {
    match change {
        NameChange::Link(p, id) => {
            names.insert(p, id);
        }
        NameChange::Rename(from, to) => {
            if let Some(id) = names.remove(&from) {
                names.insert(to, id);
            }
        }
    }
}

impl SimFs {
    /// An empty disk whose saves fail with probability `fail_p`, drawing from `seed`.
    pub fn new(seed: u64, fail_p: f64, mutation: DiskMutation) -> Self {
        SimFs {
            state: Mutex::new(FsState {
                inodes: BTreeMap::new(),
                names: BTreeMap::new(),
                synced_names: BTreeMap::new(),
                pending: Vec::new(),
                next_inode: 0,
                rng: ChaCha8Rng::seed_from_u64(seed ^ 0x706f_7765_7263_7574),
                fail_p,
                fail_rng: ChaCha8Rng::seed_from_u64(seed),
                fail_next: None,
                failed: 0,
                cut_in: None,
                cut: false,
                torn: 0,
                mutation,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FsState> {
        // Single-threaded: a poisoned lock means a panic already happened; take it anyway.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Removes every file (a node initialised again, before it ever ran).
    pub fn wipe(&self) {
        let mut s = self.lock();
        s.inodes.clear();
        s.names.clear();
        s.synced_names.clear();
        s.pending.clear();
    }

    /// Sets the probability that a write fails (0 at the heal).
    pub fn set_fail_p(&self, p: f64) {
        self.lock().fail_p = p;
    }

    /// Draws whether the save about to be made fails (see the module doc).
    pub fn draw_save_failure(&self) {
        let mut s = self.lock();
        let p = s.fail_p;
        if p > 0.0 && s.fail_rng.random_bool(p) {
            s.failed += 1;
            s.fail_next = Some(if s.fail_rng.random_bool(0.5) {
                Failing::Sync
            } else {
                Failing::Append
            });
        }
    }

    /// A failure drawn for a save that made no operation it could hit: the save fails as a
    /// whole, before it writes anything.
    pub fn take_unused_failure(&self) -> Option<io::Error> {
        let mut s = self.lock();
        s.fail_next.take().map(|f| failure(Some(f)))
    }

    /// How many saves failed (EIO, ENOSPC).
    pub fn failed_writes(&self) -> u64 {
        self.lock().failed
    }

    /// How many files a power cut left torn.
    pub fn torn_writes(&self) -> u64 {
        self.lock().torn
    }

    /// The power goes now: only what was synced stays (see the module doc). The node's process
    /// is gone with it; [`SimFs::take_power_cut`] turns the disk on again.
    pub fn power_cut(&self) {
        self.lock().power_cut();
    }

    /// The power will go at the `k`-th file operation from now (`k >= 1`), in the middle of a
    /// write if one is made.
    pub fn arm_power_cut(&self, k: u32) {
        self.lock().cut_in = Some(k.max(1));
    }

    /// Whether an armed power cut is still to come.
    pub fn power_cut_armed(&self) -> bool {
        self.lock().cut_in.is_some()
    }

    /// Calls off an armed power cut that has not come.
    pub fn disarm_power_cut(&self) {
        self.lock().cut_in = None;
    }

    /// Whether the power is off (a cut came and the node has not restarted).
    pub fn is_cut(&self) -> bool {
        self.lock().cut
    }

    /// Whether the power went (an armed cut came); turns it on again for the restart.
    pub fn take_power_cut(&self) -> bool {
        let mut s = self.lock();
        std::mem::take(&mut s.cut)
    }

    /// Damages the file at `path` on the disk: one byte flipped (a disk that rotted). `false`
    /// if there is no such file.
    pub fn damage(&self, path: &Path) -> bool {
        let mut s = self.lock();
        let Some(&id) = s.synced_names.get(name(path)) else {
            return false;
        };
        let len = s.inodes[&id].synced.len();
        if len == 0 {
            return false;
        }
        let at = s.rng.random_range(0..len);
        let bit = s.rng.random_range(0..8);
        let inode = s.inodes.get_mut(&id).expect("named");
        inode.synced[at] ^= 1 << bit;
        if inode.seen.len() > at {
            inode.seen[at] ^= 1 << bit;
        }
        true
    }
}

impl FileSystem for SimFs {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let mut s = self.lock();
        s.begin(None)?;
        Ok(s.inode(path)?.seen.clone())
    }

    fn exists(&self, path: &Path) -> bool {
        self.lock().names.contains_key(name(path))
    }

    fn create(&self, path: &Path) -> io::Result<()> {
        let mut s = self.lock();
        s.begin(None)?;
        if let Ok(inode) = s.inode(path) {
            inode.seen.clear();
            inode.appended = false;
            return Ok(());
        }
        let id = s.next_inode;
        s.next_inode += 1;
        s.inodes.insert(
            id,
            Inode {
                appended: true,
                ..Inode::default()
            },
        );
        s.names.insert(name(path).to_vec(), id);
        s.pending.push(NameChange::Link(name(path).to_vec(), id));
        Ok(())
    }

    fn append(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let mut s = self.lock();
        if s.cut_in == Some(1) && !s.cut {
            // The power goes in the middle of this write: some of it reaches the file.
            s.cut_in = None;
            let part = s.rng.random_range(0..=bytes.len());
            if let Ok(inode) = s.inode(path) {
                inode.seen.extend_from_slice(&bytes[..part]);
            }
            s.power_cut();
            return Err(cut_error());
        }
        s.begin(Some(Failing::Append))?;
        s.inode(path)?.seen.extend_from_slice(bytes);
        Ok(())
    }

    fn len(&self, path: &Path) -> io::Result<u64> {
        let mut s = self.lock();
        s.begin(None)?;
        Ok(s.inode(path)?.seen.len() as u64)
    }

    fn set_len(&self, path: &Path, len: u64) -> io::Result<()> {
        let mut s = self.lock();
        s.begin(None)?;
        let len = usize::try_from(len).map_err(io::Error::other)?;
        let inode = s.inode(path)?;
        inode.seen.resize(len, 0);
        inode.appended = false;
        Ok(())
    }

    fn sync(&self, path: &Path) -> io::Result<()> {
        self.sync_data(path)
    }

    fn sync_data(&self, path: &Path) -> io::Result<()> {
        let mut s = self.lock();
        if let Err(e) = s.begin(Some(Failing::Sync)) {
            if !s.cut {
                // A failed fsync: the data it was to write is dropped.
                if let Ok(inode) = s.inode(path) {
                    inode.seen = inode.synced.clone();
                    inode.appended = true;
                }
            }
            return Err(e);
        }
        if s.mutation == DiskMutation::SkipFileSync {
            return Ok(());
        }
        let inode = s.inode(path)?;
        if inode.appended {
            let from = inode.synced.len();
            inode.synced.extend_from_slice(&inode.seen[from..]);
        } else {
            inode.synced.clone_from(&inode.seen);
        }
        inode.appended = true;
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut s = self.lock();
        s.begin(None)?;
        let id = s.names.remove(name(from)).ok_or_else(|| not_found(from))?;
        s.names.insert(name(to).to_vec(), id);
        s.pending
            .push(NameChange::Rename(name(from).to_vec(), name(to).to_vec()));
        Ok(())
    }

    fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
        let mut s = self.lock();
        s.begin(None)?;
        if s.mutation == DiskMutation::SkipDirSync {
            return Ok(());
        }
        let pending = std::mem::take(&mut s.pending);
        for change in pending {
            apply(&mut s.synced_names, change);
        }
        // Files no name points at any more (renamed over) are gone.
        let live: Vec<u64> = s
            .names
            .values()
            .chain(s.synced_names.values())
            .copied()
            .collect();
        s.inodes.retain(|id, _| live.contains(id));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::journal::HostLog;
    use crate::net::storage::{StorageError, StorageFile, Store};
    use std::sync::Arc;

    fn fs(seed: u64, mutation: DiskMutation) -> Arc<SimFs> {
        Arc::new(SimFs::new(seed, 0.0, mutation))
    }

    fn record(fs: &Arc<SimFs>) -> StorageFile {
        StorageFile::on(fs.clone(), "/d/a.storage".into(), "a".into())
    }

    #[test]
    fn a_power_cut_keeps_what_was_synced_and_drops_the_rest() {
        let d = fs(1, DiskMutation::None);
        let p = Path::new("/d/f");
        d.create(p).unwrap();
        d.append(p, b"synced").unwrap();
        d.sync(p).unwrap();
        d.sync_dir(Path::new("/d")).unwrap();
        d.set_len(p, 0).unwrap(); // rewritten, not synced
        d.power_cut();
        assert!(d.take_power_cut());
        assert_eq!(d.read(p).unwrap(), b"synced");
    }

    #[test]
    fn a_power_cut_keeps_a_prefix_of_the_unsynced_name_changes() {
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..32 {
            let d = fs(seed, DiskMutation::None);
            let (tmp, f) = (Path::new("/d/f.tmp"), Path::new("/d/f"));
            d.create(tmp).unwrap();
            d.append(tmp, b"x").unwrap();
            d.sync(tmp).unwrap();
            d.rename(tmp, f).unwrap();
            d.power_cut();
            d.take_power_cut();
            // Nothing, the creation only, or both: never the rename without the creation.
            seen.insert((d.exists(tmp), d.exists(f)));
            if d.exists(f) {
                assert_eq!(d.read(f).unwrap(), b"x");
            }
        }
        let all: std::collections::BTreeSet<_> =
            [(false, false), (true, false), (false, true)].into();
        assert_eq!(seen, all);
    }

    #[test]
    fn an_unsynced_append_is_kept_in_part_or_torn() {
        let mut shapes = std::collections::BTreeSet::new();
        for seed in 0..64 {
            let d = fs(seed, DiskMutation::None);
            let p = Path::new("/d/log");
            d.create(p).unwrap();
            d.sync(p).unwrap();
            d.sync_dir(Path::new("/d")).unwrap();
            d.append(p, &[7u8; 2000]).unwrap();
            d.power_cut();
            d.take_power_cut();
            let got = d.read(p).unwrap();
            assert!(got.len() <= 2000);
            shapes.insert((
                got.is_empty(),
                got.len() == 2000,
                got.iter().all(|&b| b == 7),
            ));
        }
        // Lost, kept whole, kept in part, and torn with garbage: every one happens.
        assert!(shapes.contains(&(true, false, true)));
        assert!(shapes.contains(&(false, true, true)));
        assert!(shapes.contains(&(false, false, true)));
        assert!(shapes.contains(&(false, false, false)));
    }

    #[test]
    fn the_storage_file_survives_every_power_cut_inside_a_save() {
        for k in 1..8 {
            for seed in 0..16 {
                let d = fs(seed, DiskMutation::None);
                let mut f = record(&d);
                Store::<u64>::init(&mut f).unwrap();
                f.save(&1u64).unwrap();
                d.arm_power_cut(k);
                let r = f.save(&2u64);
                d.disarm_power_cut(); // a save of fewer operations than k
                let cut = d.take_power_cut();
                assert_eq!(r.is_err(), cut, "k={k}");
                let got: Option<u64> = f.load().unwrap();
                // Either the old record or the new one, never damage, and a save that returned
                // Ok is never lost.
                if r.is_ok() {
                    assert_eq!(got, Some(2));
                } else {
                    assert!(
                        got == Some(1) || got == Some(2),
                        "k={k} seed={seed}: {got:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn without_fsyncs_an_acknowledged_save_is_lost_or_the_file_damaged() {
        for mutation in [DiskMutation::SkipFileSync, DiskMutation::SkipDirSync] {
            let mut lost = false;
            for seed in 0..32 {
                let d = fs(seed, mutation);
                let mut f = record(&d);
                Store::<u64>::init(&mut f).unwrap();
                f.save(&1u64).unwrap();
                d.power_cut();
                d.take_power_cut();
                match f.load::<u64>() {
                    Ok(Some(1)) => {}
                    Ok(_)
                    | Err(StorageError::Corrupt { .. })
                    | Err(StorageError::Missing { .. }) => lost = true,
                    Err(e) => panic!("{e}"),
                }
            }
            assert!(lost, "{mutation:?}: a power cut never lost the save");
        }
    }

    #[test]
    fn the_host_log_keeps_every_acknowledged_record_across_power_cuts() {
        use crate::actors::kv::{DelegationMap, HostRecord, HostSave, HostStorage, SingleDelivery};
        use stateright::actor::Id;
        let mut cuts = 0;
        for seed in 0..96u64 {
            let d = fs(seed, DiskMutation::None);
            let base = Path::new("/d/host");
            let mut log = HostLog::on(d.clone(), base, "h".into());
            log.init().unwrap();
            let mut st = HostStorage {
                delegation: DelegationMap::new(Id::from(0)),
                table: Default::default(),
                sd: SingleDelivery::new(7),
                restarts: 0,
            };
            log.save_all(vec![HostSave::Snapshot(st.clone())]).unwrap();
            let mut acked = Vec::new();
            for i in 0..8u64 {
                if i == 3 {
                    d.arm_power_cut(1 + (seed % 7) as u32);
                }
                let rec = HostRecord::Put(i.into(), vec![i as u8; 300]);
                // Every third save is a whole snapshot (a new generation and a fresh log).
                let save = if i % 3 == 2 {
                    let mut next = st.clone();
                    next.apply(rec.clone());
                    HostSave::Snapshot(next)
                } else {
                    HostSave::Journal(vec![rec.clone()])
                };
                match log.save_all(vec![save]) {
                    Ok(_) => {
                        st.apply(rec);
                        acked.push(i);
                    }
                    Err(_) => break,
                }
            }
            if d.take_power_cut() {
                cuts += 1;
            }
            let mut log = HostLog::on(d.clone(), base, "h".into());
            let Some(HostSave::Snapshot(got)) = log.load().unwrap() else {
                panic!("seed {seed}: no state")
            };
            for i in acked {
                assert!(
                    got.table.contains_key(&i.into()),
                    "seed {seed}: record {i} lost"
                );
            }
            // The log goes on after the restart.
            log.save_all(vec![HostSave::Journal(vec![HostRecord::Remove(
                0u64.into(),
            )])])
            .unwrap();
        }
        assert!(cuts > 40, "{cuts} power cuts");
    }
}
