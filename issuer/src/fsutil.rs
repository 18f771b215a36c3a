//! File-system helpers: private directories, atomic writes with explicit modes, and the
//! permission check every private file passes before it is read.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use tracing::warn;
use zeroize::Zeroizing;

use crate::error::IssuerdError;

/// Private files: keys, secrets, state.
pub(crate) const PRIVATE_FILE: u32 = 0o600;
/// Public files: public keys.
pub(crate) const PUBLIC_FILE: u32 = 0o644;
/// Directories holding private files.
pub(crate) const PRIVATE_DIR: u32 = 0o700;

/// Creates `dir` (and missing parents) mode 0700. An existing directory is kept as it is;
/// with `warn_if_open`, a warning says when others can enter it (the files inside are 0600
/// anyway).
pub(crate) fn ensure_private_dir(dir: &Path, warn_if_open: bool) -> Result<(), IssuerdError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR)
        .create(dir)
        .map_err(IssuerdError::io("create directory", dir))?;
    let meta = fs::metadata(dir).map_err(IssuerdError::io("inspect directory", dir))?;
    if !meta.is_dir() {
        return Err(IssuerdError::bad_file(
            "state directory",
            dir,
            "not a directory",
        ));
    }
    let mode = meta.permissions().mode() & 0o777;
    if warn_if_open && mode & 0o077 != 0 {
        warn!(
            dir = %dir.display(),
            mode = format!("{mode:04o}"),
            "directory is accessible by group or others; consider chmod 700"
        );
    }
    Ok(())
}

/// Refuses a private file that group or others can access (the fix is `chmod 600`).
pub(crate) fn check_private(path: &Path, what: &'static str) -> Result<(), IssuerdError> {
    let meta = fs::metadata(path).map_err(IssuerdError::io("inspect", path))?;
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(IssuerdError::InsecurePermissions {
            what,
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

/// Reads a private file after checking its mode. The bytes are wiped when dropped.
pub(crate) fn read_private(
    path: &Path,
    what: &'static str,
) -> Result<Zeroizing<Vec<u8>>, IssuerdError> {
    check_private(path, what)?;
    fs::read(path)
        .map(Zeroizing::new)
        .map_err(IssuerdError::io("read", path))
}

/// Reads a file if it exists.
pub(crate) fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, IssuerdError> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(IssuerdError::Io {
            action: "read",
            path: path.to_owned(),
            source: e,
        }),
    }
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, created
/// with `mode`, fsynced, renamed over `path`, then the directory fsynced. A crash leaves
/// either the old file or the new one, never a torn one.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), IssuerdError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(IssuerdError::io("create", &tmp))?;
        // The umask may have cleared bits of a public file's mode; set it exactly.
        f.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(IssuerdError::io("set permissions of", &tmp))?;
        f.write_all(bytes)
            .map_err(IssuerdError::io("write", &tmp))?;
        f.sync_all().map_err(IssuerdError::io("fsync", &tmp))?;
        fs::rename(&tmp, path).map_err(IssuerdError::io("rename into place", path))?;
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(IssuerdError::io("fsync directory", &dir))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// An exclusive advisory lock on a lock file, released when dropped.
#[derive(Debug)]
pub(crate) struct FileLock {
    _file: File,
}

fn open_lock_file(path: &Path) -> Result<File, IssuerdError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(PRIVATE_FILE)
        .open(path)
        .map_err(IssuerdError::io("open lock file", path))
}

impl FileLock {
    /// Takes the lock if it is free, else `None`.
    pub(crate) fn try_acquire(path: &Path) -> Result<Option<Self>, IssuerdError> {
        let file = open_lock_file(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Self { _file: file })),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(e)) => Err(IssuerdError::Io {
                action: "lock",
                path: path.to_owned(),
                source: e,
            }),
        }
    }
}
