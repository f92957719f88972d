//! The file-system calls the storage code makes ([`FileSystem`]), so that the same storage code
//! runs over the operating system's files ([`OsFs`]) and over the simulator's disk, where a crash
//! loses what was not synced and may tear what was being written.
//!
//! The calls are by path and few: read, create (empty), append, cut, fsync a file, rename, fsync a
//! directory. They are exactly what [`super::storage::StorageFile`] and [`super::journal::HostLog`]
//! need to make a record durable (write aside, fsync, rename, fsync the directory) and to run a
//! write-ahead log (append, `fdatasync`, cut a torn tail).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The file operations of the storage code. Every call either does what it says or returns the
/// system's error; what is durable after a crash is only what an `fsync` ([`FileSystem::sync`],
/// [`FileSystem::sync_data`]) or, for names, a directory `fsync` ([`FileSystem::sync_dir`])
/// made durable.
pub trait FileSystem: Send + Sync + std::fmt::Debug {
    /// The whole content of the file at `path` (`NotFound` if there is none).
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Whether a file (or directory) is at `path`.
    fn exists(&self, path: &Path) -> bool;
    /// Creates an empty file at `path`, replacing the content of any file there.
    fn create(&self, path: &Path) -> io::Result<()>;
    /// Appends `bytes` to the file at `path`, which must exist.
    fn append(&self, path: &Path, bytes: &[u8]) -> io::Result<()>;
    /// The length of the file at `path`.
    fn len(&self, path: &Path) -> io::Result<u64>;
    /// Cuts (or extends with zeros) the file at `path` to `len` bytes.
    fn set_len(&self, path: &Path, len: u64) -> io::Result<()>;
    /// `fsync`: the file's content and metadata are durable when this returns.
    fn sync(&self, path: &Path) -> io::Result<()>;
    /// `fdatasync`: the file's content is durable when this returns.
    fn sync_data(&self, path: &Path) -> io::Result<()>;
    /// Renames `from` to `to`, atomically replacing any file at `to`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// `fsync` of the directory `dir`: the names in it (creations, renames) are durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// The operating system's files. The last file written is kept open, so that a record written
/// aside (create, append, fsync) or a run of log appends (append, `fdatasync`) opens it once.
#[derive(Debug, Default)]
pub struct OsFs {
    open: Mutex<Option<(PathBuf, File)>>,
}

impl OsFs {
    /// Runs `f` on the open file at `path`, opening it for appends if it is not the one open.
    fn with_open<T>(
        &self,
        path: &Path,
        f: impl FnOnce(&mut File) -> io::Result<T>,
    ) -> io::Result<T> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        match open.as_mut() {
            Some((p, file)) if p == path => f(file),
            _ => {
                let mut file = OpenOptions::new().append(true).open(path)?;
                let r = f(&mut file);
                *open = Some((path.to_owned(), file));
                r
            }
        }
    }

    /// Forgets the open file if it is at `path` (renamed or cut under it).
    fn forget(&self, path: &Path) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.as_ref().is_some_and(|(p, _)| p == path) {
            *open = None;
        }
    }
}

impl FileSystem for OsFs {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn create(&self, path: &Path) -> io::Result<()> {
        let file = File::create(path)?;
        *self.open.lock().unwrap_or_else(|e| e.into_inner()) = Some((path.to_owned(), file));
        Ok(())
    }

    fn append(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        self.with_open(path, |f| f.write_all(bytes))
    }

    fn len(&self, path: &Path) -> io::Result<u64> {
        Ok(std::fs::metadata(path)?.len())
    }

    fn set_len(&self, path: &Path, len: u64) -> io::Result<()> {
        self.forget(path);
        OpenOptions::new().write(true).open(path)?.set_len(len)
    }

    fn sync(&self, path: &Path) -> io::Result<()> {
        self.with_open(path, |f| f.sync_all())
    }

    fn sync_data(&self, path: &Path) -> io::Result<()> {
        self.with_open(path, |f| f.sync_data())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.forget(from);
        self.forget(to);
        std::fs::rename(from, to)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

/// The directory holding `path` (`.` for a bare file name).
pub(crate) fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_files_write_aside_rename_append_and_cut() {
        let d = std::env::temp_dir().join(format!("ironfleet-osfs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let fs = OsFs::default();
        let (tmp, file) = (d.join("f.tmp"), d.join("f"));
        fs.create(&tmp).unwrap();
        fs.append(&tmp, b"hello").unwrap();
        fs.sync(&tmp).unwrap();
        fs.rename(&tmp, &file).unwrap();
        fs.sync_dir(&d).unwrap();
        assert!(!fs.exists(&tmp));
        fs.append(&file, b" world").unwrap();
        fs.sync_data(&file).unwrap();
        assert_eq!(fs.read(&file).unwrap(), b"hello world");
        fs.set_len(&file, 5).unwrap();
        fs.append(&file, b"!").unwrap();
        assert_eq!(fs.read(&file).unwrap(), b"hello!");
        assert_eq!(fs.len(&file).unwrap(), 6);
        assert_eq!(
            fs.read(&d.join("none")).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        std::fs::remove_dir_all(&d).unwrap();
    }
}
