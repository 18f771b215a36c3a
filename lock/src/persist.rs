//! Accepted grants and revocations, kept raw under `state_dir/messages/` so a restarted lock
//! keeps its sessions and revocations (spec LK-REV-4, §7.2.1), and the unlock counts of
//! limited grants (LK-LIM-1). The raw LockGrant is safe at rest: its session key is wrapped
//! to this lock's private key.
//!
//! Files are `{grant_id}.grant`, `{grant_id}.revocation` and `{grant_id}.unlocks` (the count
//! in decimal), mode 0600, written atomically (temp file, fsync, rename, fsync of the
//! directory). Each is deleted once it expires: a grant and its count at the grant's
//! `not_after`, a revocation at its `expires_at`. A revoked grant's file is kept until its
//! `not_after` too, so that replaying it before its revocation rebuilds the tombstone
//! (LK-REV-5).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use latchkey::GrantId;
use tracing::{debug, warn};

/// What a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    // Per grant, in this order at replay: the grant is installed, then its revocation
    // removes it again and leaves the tombstone that recognises its beacons (LK-REV-5);
    // a count is restored into a session that is still installed. Grant by grant, so a
    // revoked grant never holds a session slot a live one needs (LK-GRT-9).
    Grant,
    Revocation,
    UnlockCount,
}

impl Kind {
    fn extension(self) -> &'static str {
        match self {
            Kind::Grant => "grant",
            Kind::Revocation => "revocation",
            Kind::UnlockCount => "unlocks",
        }
    }

    fn from_extension(ext: &str) -> Option<Self> {
        match ext {
            "grant" => Some(Kind::Grant),
            "revocation" => Some(Kind::Revocation),
            "unlocks" => Some(Kind::UnlockCount),
            _ => None,
        }
    }
}

/// The text of an unlock-count file.
pub(crate) fn encode_count(count: u16) -> Vec<u8> {
    format!("{count}\n").into_bytes()
}

/// The count in an unlock-count file, if it holds one.
pub(crate) fn decode_count(bytes: &[u8]) -> Option<u16> {
    std::str::from_utf8(bytes).ok()?.trim().parse().ok()
}

/// One stored message read back at start.
#[derive(Debug)]
pub(crate) struct Stored {
    pub(crate) grant_id: GrantId,
    pub(crate) kind: Kind,
    pub(crate) bytes: Vec<u8>,
}

/// The message directory and the expiry time of every file in it.
#[derive(Debug)]
pub(crate) struct MessageStore {
    dir: PathBuf,
    expiry: BinaryHeap<Reverse<(u64, GrantId, Kind)>>,
    /// Grants whose unlock-count file has an expiry entry.
    counted: HashSet<GrantId>,
}

impl MessageStore {
    /// Opens (creating, mode 0700) `state_dir` and `state_dir/messages`.
    pub(crate) fn open(state_dir: &Path) -> io::Result<Self> {
        create_private_dir(state_dir)?;
        let dir = state_dir.join("messages");
        create_private_dir(&dir)?;
        Ok(Self {
            dir,
            expiry: BinaryHeap::new(),
            counted: HashSet::new(),
        })
    }

    /// The directory holding the files.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, grant_id: &GrantId, kind: Kind) -> PathBuf {
        self.dir.join(format!("{grant_id}.{}", kind.extension()))
    }

    /// Every stored file, grant by grant (ids ascending), each grant's files in [`Kind`]
    /// order. Leftover temp files are removed; files with other names are left alone (and
    /// logged).
    pub(crate) fn load(&self) -> io::Result<Vec<Stored>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            let path = entry.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if name.ends_with(".tmp") {
                // A write interrupted before its rename: never a complete message.
                let _ = fs::remove_file(&path);
                continue;
            }
            let parsed = name.split_once('.').and_then(|(id, ext)| {
                Some((id.parse::<GrantId>().ok()?, Kind::from_extension(ext)?))
            });
            let Some((grant_id, kind)) = parsed else {
                warn!(file = %path.display(), "ignoring unexpected file in the message store");
                continue;
            };
            match fs::read(&path) {
                Ok(bytes) => out.push(Stored {
                    grant_id,
                    kind,
                    bytes,
                }),
                Err(e) => warn!(file = %path.display(), error = %e, "cannot read stored message"),
            }
        }
        out.sort_by_key(|s| (s.grant_id, s.kind));
        Ok(out)
    }

    /// Stores a file atomically and remembers to delete it at `expires_at_s`.
    pub(crate) fn save(
        &mut self,
        grant_id: &GrantId,
        kind: Kind,
        bytes: &[u8],
        expires_at_s: u64,
    ) -> io::Result<()> {
        let path = self.path(grant_id, kind);
        write_atomic(&path, bytes)?;
        self.track(grant_id, kind, expires_at_s);
        Ok(())
    }

    /// Remembers that an existing file expires at `expires_at_s`.
    pub(crate) fn track(&mut self, grant_id: &GrantId, kind: Kind, expires_at_s: u64) {
        if kind == Kind::UnlockCount {
            self.counted.insert(*grant_id);
        }
        self.expiry.push(Reverse((expires_at_s, *grant_id, kind)));
    }

    /// Replaces the unlock count of a grant; deleted at `expires_at_s` (its `not_after`).
    pub(crate) fn save_unlock_count(
        &mut self,
        grant_id: &GrantId,
        count: u16,
        expires_at_s: u64,
    ) -> io::Result<()> {
        write_atomic(
            &self.path(grant_id, Kind::UnlockCount),
            &encode_count(count),
        )?;
        // Each write replaces the same file: one expiry entry per grant is enough.
        if self.counted.insert(*grant_id) {
            self.track(grant_id, Kind::UnlockCount, expires_at_s);
        }
        Ok(())
    }

    /// Deletes a message file, if present.
    pub(crate) fn remove(&self, grant_id: &GrantId, kind: Kind) {
        let path = self.path(grant_id, kind);
        match fs::remove_file(&path) {
            Ok(()) => debug!(file = %path.display(), "stored message removed"),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => warn!(file = %path.display(), error = %e, "cannot remove stored message"),
        }
    }

    /// Deletes the files whose expiry is at or before `now_s`.
    pub(crate) fn prune(&mut self, now_s: u64) {
        while let Some(Reverse((at, grant_id, kind))) = self.expiry.peek().copied() {
            if at > now_s {
                break;
            }
            self.expiry.pop();
            if kind == Kind::UnlockCount {
                self.counted.remove(&grant_id);
            }
            self.remove(&grant_id, kind);
        }
    }

    /// The next expiry, Unix seconds.
    pub(crate) fn next_expiry(&self) -> Option<u64> {
        self.expiry.peek().map(|Reverse((at, _, _))| *at)
    }
}

fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension(format!(
        "{}.tmp",
        path.extension().and_then(|e| e.to_str()).unwrap_or("msg")
    ));
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let result = (|| {
        let mut f = options.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        // The rename is durable only once the directory entry is.
        if let Some(parent) = path.parent() {
            fs::File::open(parent)?.sync_all()?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_load_prune_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = MessageStore::open(&dir.path().join("state")).unwrap();
        let (a, b) = (GrantId([1; 16]), GrantId([2; 16]));
        store.save(&a, Kind::Grant, b"grant-a", 100).unwrap();
        store.save(&b, Kind::Revocation, b"rev-b", 50).unwrap();
        std::fs::write(store.dir().join("junk.txt"), b"x").unwrap();
        std::fs::write(store.dir().join("x.grant.tmp"), b"x").unwrap();

        let loaded = store.load().unwrap();
        let kinds: Vec<_> = loaded.iter().map(|s| (s.grant_id, s.kind)).collect();
        assert_eq!(kinds, [(a, Kind::Grant), (b, Kind::Revocation)]);
        assert_eq!(loaded[0].bytes, b"grant-a");
        assert!(!store.dir().join("x.grant.tmp").exists());

        assert_eq!(store.next_expiry(), Some(50));
        store.prune(50);
        assert_eq!(store.load().unwrap().len(), 1);
        store.prune(100);
        assert!(store.load().unwrap().is_empty());
    }

    #[test]
    fn each_grant_replays_grant_then_revocation_then_count() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = MessageStore::open(dir.path()).unwrap();
        let (a, b) = (GrantId([1; 16]), GrantId([2; 16]));
        store.save_unlock_count(&a, 2, 100).unwrap();
        store.save(&b, Kind::Grant, b"grant-b", 100).unwrap();
        store.save(&a, Kind::Revocation, b"rev-a", 100).unwrap();
        store.save(&a, Kind::Grant, b"grant-a", 100).unwrap();
        let kinds: Vec<_> = store
            .load()
            .unwrap()
            .iter()
            .map(|s| (s.grant_id, s.kind))
            .collect();
        assert_eq!(
            kinds,
            [
                (a, Kind::Grant),
                (a, Kind::Revocation),
                (a, Kind::UnlockCount),
                (b, Kind::Grant)
            ]
        );
    }

    #[test]
    fn an_unlock_count_is_replaced_in_place_and_expires_with_its_grant() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = MessageStore::open(dir.path()).unwrap();
        let a = GrantId([4; 16]);
        for n in 1..=3 {
            store.save_unlock_count(&a, n, 100).unwrap();
        }
        let loaded = store.load().unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(decode_count(&loaded[0].bytes), Some(3));
        // One expiry entry, however often the count changed.
        assert_eq!(store.expiry.len(), 1);
        store.prune(100);
        assert!(store.load().unwrap().is_empty());
        // A count written after the prune is tracked again.
        store.save_unlock_count(&a, 4, 200).unwrap();
        assert_eq!(store.next_expiry(), Some(200));
    }

    #[test]
    fn counts_decode_only_from_a_decimal_u16() {
        assert_eq!(decode_count(&encode_count(65_535)), Some(65_535));
        assert_eq!(decode_count(b" 7 \n"), Some(7));
        for bad in [&b""[..], b"-1", b"65536", b"x", b"\xff"] {
            assert_eq!(decode_count(bad), None, "{bad:?}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn files_and_directories_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let mut store = MessageStore::open(&state).unwrap();
        store
            .save(&GrantId([3; 16]), Kind::Grant, b"g", u64::MAX)
            .unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&state), 0o700);
        assert_eq!(mode(store.dir()), 0o700);
        let file = store.dir().join(format!("{}.grant", GrantId([3; 16])));
        assert_eq!(mode(&file), 0o600);
    }
}
