//! Files that hold secrets: read only when no one else may read them, written 0600
//! atomically (docs/daemons.md, "Key files").

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// Why a private file could not be read.
#[derive(Debug)]
pub(crate) enum ReadPrivateError {
    /// Opening or reading failed.
    Io(io::Error),
    /// Group or others may read it: the mode bits.
    NotPrivate(u32),
    /// A directory, socket, …
    NotAFile,
    /// Longer than the caller's limit.
    TooLarge(u64),
}

/// Reads a UTF-8 file of at most `max` bytes, refusing one that group or others can read.
/// The mode is checked on the opened file, so a swap between check and read is harmless.
pub(crate) fn read_private(path: &Path, max: u64) -> Result<Zeroizing<String>, ReadPrivateError> {
    let bytes = read_private_bytes(path, max)?;
    match std::str::from_utf8(&bytes) {
        Ok(text) => Ok(Zeroizing::new(text.to_owned())),
        Err(e) => Err(ReadPrivateError::Io(io::Error::new(
            io::ErrorKind::InvalidData,
            e,
        ))),
    }
}

/// [`read_private`] for any bytes (an image of a QR code).
pub(crate) fn read_private_bytes(
    path: &Path,
    max: u64,
) -> Result<Zeroizing<Vec<u8>>, ReadPrivateError> {
    let file = File::open(path).map_err(ReadPrivateError::Io)?;
    let meta = file.metadata().map_err(ReadPrivateError::Io)?;
    if !meta.is_file() {
        return Err(ReadPrivateError::NotAFile);
    }
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(ReadPrivateError::NotPrivate(mode & 0o7777));
    }
    if meta.len() > max {
        return Err(ReadPrivateError::TooLarge(meta.len()));
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0)));
    // `take` bounds a file that grew after the metadata was read.
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadPrivateError::Io)?;
    if bytes.len() as u64 > max {
        return Err(ReadPrivateError::TooLarge(bytes.len() as u64));
    }
    Ok(bytes)
}

/// Writes `bytes` to `path` with mode 0600: a temporary file in the same directory, fsync,
/// rename over `path`, fsync the directory. A crash leaves the old file or the new one.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let _ = fs::remove_file(&tmp);
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        // The umask cannot widen 0600, but an existing ACL default could: set it explicitly.
        f.set_permissions(fs::Permissions::from_mode(0o600))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
