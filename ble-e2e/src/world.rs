//! The deployment every boot starts from, made on the host with the real binaries: an
//! issuer key, one lock (`add-lock`), two enrolled guests (`enroll-guest`, `guest enroll`).

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::run::SetupError;

/// Bluetooth company id of the deployment (the SIG's test id, as the daemons' default).
pub const COMPANY_ID: u16 = 0xFFFF;
/// The embedded broker inside the UML machine.
pub const BROKER: &str = "mqtt://127.0.0.1:1883";
/// The lock's id.
pub const LOCK_ID: &str = "e2e0000000000000000000000000100c";
/// The enrolled guests: name and guest id.
pub const GUESTS: [(&str, &str); 2] = [
    ("g1", "e2e00000000000000000000000000001"),
    ("g2", "e2e00000000000000000000000000002"),
];

/// Paths of the programs a boot runs.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// latchkey-issuer.
    pub issuer: PathBuf,
    /// latchkey-lock.
    pub lock: PathBuf,
    /// latchkey-guest.
    pub guest: PathBuf,
    /// This program (the replay attacker).
    pub e2e: PathBuf,
}

impl Binaries {
    /// The daemons in `dir` (by default where this program is: the same cargo profile).
    pub fn find(dir: &Path) -> Result<Self, SetupError> {
        let pick = |name: &str| -> Result<PathBuf, SetupError> {
            let p = dir.join(name);
            if p.is_file() {
                Ok(p)
            } else {
                Err(SetupError::MissingBinary(p))
            }
        };
        Ok(Self {
            issuer: pick("latchkey-issuer")?,
            lock: pick("latchkey-lock")?,
            guest: pick("latchkey-guest")?,
            e2e: std::env::current_exe().map_err(SetupError::Io)?,
        })
    }
}

/// The template deployment (`OUT/world`): copied into each boot's folder.
#[derive(Debug)]
pub struct World {
    /// Its folder: issuer-state/, lock/, guests/NAME/.
    pub dir: PathBuf,
}

impl World {
    /// Creates the deployment in `dir` (emptied first) with the real commands.
    pub fn create(dir: &Path, bins: &Binaries) -> Result<Self, SetupError> {
        if dir.exists() {
            fs::remove_dir_all(dir).map_err(SetupError::Io)?;
        }
        fs::create_dir_all(dir.join("guests")).map_err(SetupError::Io)?;
        let state = dir.join("issuer-state");
        let issuer = |args: &[&str]| -> Result<(), SetupError> {
            let mut cmd = Command::new(&bins.issuer);
            cmd.arg("--state-dir").arg(&state).args(args);
            run(cmd)
        };
        issuer(&["keygen"])?;
        let lock_dir = dir.join("lock");
        issuer(&[
            "add-lock",
            "--lock-id",
            LOCK_ID,
            "--broker-url",
            BROKER,
            "--out",
            path_str(&lock_dir)?,
        ])?;
        for (name, id) in GUESTS {
            let bundle = dir.join(format!("{name}.bundle.json"));
            issuer(&[
                "enroll-guest",
                "--guest-id",
                id,
                "--lock",
                LOCK_ID,
                "--broker-url",
                BROKER,
                "--out",
                path_str(&bundle)?,
            ])?;
            let mut cmd = Command::new(&bins.guest);
            cmd.arg("enroll")
                .arg("--bundle")
                .arg(&bundle)
                .arg("--state-dir")
                .arg(dir.join("guests").join(name));
            run(cmd)?;
        }
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    /// Guest ids by name, for the judges.
    pub fn guest_ids() -> BTreeMap<String, String> {
        GUESTS
            .iter()
            .map(|(n, id)| ((*n).to_owned(), (*id).to_owned()))
            .collect()
    }

    /// Copies the deployment into a boot's folder `to` (permissions kept: keys stay 0600).
    pub fn copy_into(&self, to: &Path) -> Result<(), SetupError> {
        for part in ["issuer-state", "lock", "guests"] {
            copy_tree(&self.dir.join(part), &to.join(part)).map_err(SetupError::Io)?;
        }
        Ok(())
    }
}

fn path_str(p: &Path) -> Result<&str, SetupError> {
    p.to_str()
        .ok_or_else(|| SetupError::Io(io::Error::other(format!("non-UTF-8 path {p:?}"))))
}

fn run(mut cmd: Command) -> Result<(), SetupError> {
    let out = cmd.output().map_err(SetupError::Io)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(SetupError::Command {
            command: format!("{cmd:?}"),
            output: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

/// Recursive copy keeping permissions (`fs::copy` copies them; directories get theirs set).
fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir_all(to)?;
    fs::set_permissions(to, fs::metadata(from)?.permissions())?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn copy_tree_keeps_modes_and_nesting() {
        let dir = tempfile::tempdir().expect("tempdir");
        let from = dir.path().join("a");
        fs::create_dir_all(from.join("b")).expect("mkdir");
        fs::write(from.join("b/key.pem"), "k").expect("write");
        fs::set_permissions(from.join("b/key.pem"), fs::Permissions::from_mode(0o600))
            .expect("chmod");
        fs::set_permissions(from.join("b"), fs::Permissions::from_mode(0o700)).expect("chmod");
        let to = dir.path().join("c");
        copy_tree(&from, &to).expect("copy");
        let mode = |p: &Path| fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(fs::read_to_string(to.join("b/key.pem")).expect("read"), "k");
        assert_eq!(mode(&to.join("b/key.pem")), 0o600);
        assert_eq!(mode(&to.join("b")), 0o700);
    }

    #[test]
    fn ids_are_32_hex_digits_and_distinct() {
        let all: Vec<&str> = std::iter::once(LOCK_ID)
            .chain(GUESTS.iter().map(|(_, id)| *id))
            .collect();
        for id in &all {
            assert_eq!(id.len(), 32);
            assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        }
        assert_eq!(World::guest_ids().len(), GUESTS.len());
    }

    #[test]
    fn a_missing_daemon_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = Binaries::find(dir.path()).expect_err("empty dir");
        assert!(err.to_string().contains("latchkey-issuer"), "{err}");
    }
}
