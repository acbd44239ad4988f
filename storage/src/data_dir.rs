//! The data directory: created on first start, stamped with the layout it
//! was created with, and locked while a server uses it.
//!
//! Data is partitioned by virtual shard, so the number of virtual shards is
//! part of the on-disk layout: starting with another number would read every
//! room from the wrong partition. The stamp (`tessera-data.toml`, a few
//! `key = value` lines) records it and the format version; a mismatch stops
//! start-up with an error that says what to do. An exclusive `flock` on
//! `tessera.lock` keeps a second server (or a crashed server's restart
//! racing a stuck one) from writing the same files.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Version of the on-disk layout this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

const STAMP: &str = "tessera-data.toml";
const LOCK: &str = "tessera.lock";

/// Why a data directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    /// Filesystem trouble.
    #[error("data directory {path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Another process holds the lock.
    #[error("data directory {0} is in use by another tessera process")]
    Locked(PathBuf),
    /// The stamp is unreadable.
    #[error("data directory {path}: corrupt {STAMP}: {why}")]
    CorruptStamp {
        /// The directory.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// Created by a newer Tessera.
    #[error(
        "data directory {path} has format version {found}, newer than this build's {FORMAT_VERSION}: \
         run the newer tessera, or restore a backup"
    )]
    NewerFormat {
        /// The directory.
        path: PathBuf,
        /// Its format version.
        found: u32,
    },
    /// Created with another virtual shard count.
    #[error(
        "data directory {path} was created with vshards = {found}, but the configuration says {configured}: \
         the virtual shard count is fixed for the life of the data (set vshards = {found})"
    )]
    VShardMismatch {
        /// The directory.
        path: PathBuf,
        /// The stamped count.
        found: usize,
        /// The configured count.
        configured: usize,
    },
}

/// An open, locked data directory. The lock is held until this is dropped.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    vshards: usize,
    _lock: File,
}

impl DataDir {
    /// Opens (creating if needed) the data directory at `path` for a server
    /// with `vshards` virtual shards.
    pub fn open(path: &Path, vshards: usize) -> Result<Self, DataDirError> {
        let io_err = |source| DataDirError::Io { path: path.to_owned(), source };
        fs::create_dir_all(path).map_err(io_err)?;
        let lock = OpenOptions::new().create(true).truncate(false).write(true).open(path.join(LOCK)).map_err(io_err)?;
        // SAFETY: flock on a file descriptor we own; no memory is involved.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = io::Error::last_os_error();
            return Err(if e.kind() == io::ErrorKind::WouldBlock {
                DataDirError::Locked(path.to_owned())
            } else {
                io_err(e)
            });
        }
        let stamp_path = path.join(STAMP);
        match fs::read_to_string(&stamp_path) {
            Ok(text) => {
                let (format, found) =
                    parse_stamp(&text).map_err(|why| DataDirError::CorruptStamp { path: path.to_owned(), why })?;
                if format > FORMAT_VERSION {
                    return Err(DataDirError::NewerFormat { path: path.to_owned(), found: format });
                }
                if found != vshards {
                    return Err(DataDirError::VShardMismatch { path: path.to_owned(), found, configured: vshards });
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => write_stamp(path, vshards).map_err(io_err)?,
            Err(e) => return Err(io_err(e)),
        }
        Ok(Self { path: path.to_owned(), vshards, _lock: lock })
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The virtual shard count the data is partitioned by.
    pub fn vshards(&self) -> usize {
        self.vshards
    }
}

fn parse_stamp(text: &str) -> Result<(u32, usize), String> {
    let mut format = None;
    let mut vshards = None;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (key, value) = line.split_once('=').ok_or_else(|| format!("not key = value: {line:?}"))?;
        let value = value.trim();
        match key.trim() {
            "format_version" => format = Some(value.parse().map_err(|_| format!("bad format_version {value:?}"))?),
            "vshards" => vshards = Some(value.parse().map_err(|_| format!("bad vshards {value:?}"))?),
            _ => {}
        }
    }
    Ok((format.ok_or("no format_version")?, vshards.ok_or("no vshards")?))
}

/// Writes the stamp atomically (temp file, fsync, rename, fsync the
/// directory), so a crash never leaves a half-written stamp behind.
fn write_stamp(dir: &Path, vshards: usize) -> io::Result<()> {
    let tmp = dir.join(format!("{STAMP}.tmp"));
    let mut file = File::create(&tmp)?;
    write!(
        file,
        "# Written by tessera when this data directory was created. Do not edit.\n\
         format_version = {FORMAT_VERSION}\nvshards = {vshards}\n"
    )?;
    file.sync_all()?;
    fs::rename(&tmp, dir.join(STAMP))?;
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reopening_with_same_vshards_succeeds() {
        let dir = tempfile::tempdir().unwrap();
        drop(DataDir::open(dir.path(), 256).unwrap());
        assert_eq!(DataDir::open(dir.path(), 256).unwrap().vshards(), 256);
    }

    #[test]
    fn changing_vshards_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(DataDir::open(dir.path(), 256).unwrap());
        let err = DataDir::open(dir.path(), 64).unwrap_err();
        assert!(matches!(err, DataDirError::VShardMismatch { found: 256, configured: 64, .. }), "{err}");
    }

    #[test]
    fn second_server_on_same_dir_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _first = DataDir::open(dir.path(), 256).unwrap();
        assert!(matches!(DataDir::open(dir.path(), 256), Err(DataDirError::Locked(_))));
    }

    #[test]
    fn newer_format_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(STAMP), "format_version = 99\nvshards = 256\n").unwrap();
        assert!(matches!(DataDir::open(dir.path(), 256), Err(DataDirError::NewerFormat { found: 99, .. })));
    }

    #[test]
    fn corrupt_stamp_is_reported_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(STAMP), "garbage").unwrap();
        assert!(matches!(DataDir::open(dir.path(), 256), Err(DataDirError::CorruptStamp { .. })));
        assert_eq!(fs::read_to_string(dir.path().join(STAMP)).unwrap(), "garbage");
    }
}
