//! GuestGrants kept across restarts (spec §8.7, "Stored grants"), so a guest that already holds a grant
//! unlocks without the network. Each is stored as received, sealed to the enrollment key:
//! the file adds nothing the enrollment bundle beside it does not already protect. One file
//! per lock, `STATE_DIR/grants/{lock_id}.guestgrant` (hex, mode 0600, written atomically).

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use latchkey::LockId;
use tracing::warn;

use crate::private_file::{read_private, write_private};

const SUFFIX: &str = ".guestgrant";
/// A GuestGrant is 158 bytes; the hex file is twice that. Anything much larger is not ours.
const MAX_FILE: u64 = 4096;

/// The grant folder.
#[derive(Debug, Clone)]
pub(crate) struct GrantStore {
    dir: PathBuf,
}

impl GrantStore {
    /// Opens (creating, mode 0700) the folder.
    pub(crate) fn open(dir: &Path) -> io::Result<Self> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    fn path(&self, lock: &LockId) -> PathBuf {
        self.dir.join(format!("{lock}{SUFFIX}"))
    }

    /// Stores the GuestGrant for `lock`, replacing the previous one.
    pub(crate) fn save(&self, lock: &LockId, payload: &[u8]) -> io::Result<()> {
        write_private(&self.path(lock), hex::encode(payload).as_bytes())
    }

    /// Forgets the grant for `lock` (no-op when none is stored).
    pub(crate) fn remove(&self, lock: &LockId) {
        if let Err(e) = fs::remove_file(self.path(lock))
            && e.kind() != io::ErrorKind::NotFound
        {
            warn!(%lock, error = %e, "cannot remove the stored grant");
        }
    }

    /// Every stored grant. Unreadable, unprivate or malformed files are logged and skipped
    /// (and left for the user to look at): a guest without them only asks for new grants.
    pub(crate) fn load(&self) -> Vec<(LockId, Vec<u8>)> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(lock) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(SUFFIX))
                .and_then(|id| id.parse::<LockId>().ok())
            else {
                continue;
            };
            match read_private(&path, MAX_FILE) {
                Ok(text) => match hex::decode(text.trim()) {
                    Ok(bytes) => out.push((lock, bytes)),
                    Err(_) => warn!(path = %path.display(), "stored grant is not hex; skipped"),
                },
                Err(e) => {
                    warn!(path = %path.display(), error = ?e, "stored grant unreadable; skipped")
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock(b: u8) -> LockId {
        format!("{b:02x}").repeat(16).parse().expect("lock id")
    }

    #[test]
    fn grants_round_trip_per_lock_and_are_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = GrantStore::open(&dir.path().join("grants")).expect("open");
        store.save(&lock(1), &[1, 2, 3]).expect("save");
        store.save(&lock(2), &[4]).expect("save");
        store.save(&lock(1), &[9, 9]).expect("replace");
        let mut all = store.load();
        all.sort_by_key(|(l, _)| *l);
        assert_eq!(all, vec![(lock(1), vec![9, 9]), (lock(2), vec![4])]);
        let mode = |p: &Path| fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode(&dir.path().join("grants")), 0o700);
        assert_eq!(mode(&store.path(&lock(1))), 0o600);
        store.remove(&lock(1));
        store.remove(&lock(3));
        assert_eq!(store.load(), vec![(lock(2), vec![4])]);
    }

    #[test]
    fn foreign_readable_and_garbage_files_are_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = GrantStore::open(dir.path()).expect("open");
        fs::write(dir.path().join("notes.txt"), "x").expect("write");
        let open = store.path(&lock(4));
        fs::write(&open, "0102").expect("write");
        fs::set_permissions(&open, fs::Permissions::from_mode(0o644)).expect("chmod");
        store.save(&lock(5), &[1]).expect("save");
        fs::write(store.path(&lock(5)), "zz").expect("write");
        fs::set_permissions(store.path(&lock(5)), fs::Permissions::from_mode(0o600))
            .expect("chmod");
        assert!(store.load().is_empty());
    }
}
