//! `admin-user add|passwd|list|remove`: the admin web UI's users. Passwords come from a
//! private file or a prompt without echo (twice), and are stored as argon2id hashes only.

use std::path::Path;

use zeroize::Zeroizing;

use super::AdminUserCmd;
use super::values::show_ms;
use crate::commands::ACTOR_CLI;
use crate::error::IssuerdError;
use crate::fsutil;
use crate::password::hash_new_password;
use crate::store::Store;
use crate::time;

pub(super) fn run(store: &mut Store, cmd: AdminUserCmd) -> Result<(), IssuerdError> {
    match cmd {
        AdminUserCmd::Add(a) => {
            // Refuse an existing name before asking for a password.
            if store.admin_user(&a.name)?.is_some() {
                return Err(IssuerdError::AdminUserExists(a.name));
            }
            let hash = hash_new_password(&password(&a.name, a.password_file.as_deref())?)
                .map_err(|e| IssuerdError::Password(e.0))?;
            store.add_admin_user(&a.name, &hash, time::now().0, ACTOR_CLI)?;
            eprintln!("added admin user {:?}", a.name);
        }
        AdminUserCmd::Passwd(a) => {
            if store.admin_user(&a.name)?.is_none() {
                return Err(IssuerdError::UnknownAdminUser(a.name));
            }
            let hash = hash_new_password(&password(&a.name, a.password_file.as_deref())?)
                .map_err(|e| IssuerdError::Password(e.0))?;
            store.set_admin_password(&a.name, &hash, time::now().0, ACTOR_CLI)?;
            eprintln!("password of {:?} changed; its sessions are ended", a.name);
        }
        AdminUserCmd::List { json } => {
            let users = store.admin_users()?;
            if json {
                let v: Vec<serde_json::Value> = users
                    .iter()
                    .map(|u| {
                        serde_json::json!({
                            "name": u.name,
                            "created_at_ms": u.created_at_ms,
                            "password_changed_at_ms": u.password_changed_at_ms,
                            "failed_logins": u.failed_logins,
                            "first_failure_ms": u.first_failure_ms,
                            "locked_until_ms": u.locked_until_ms,
                            "last_login_ms": u.last_login_ms,
                        })
                    })
                    .collect();
                let text = serde_json::to_string_pretty(&v)
                    .map_err(|e| IssuerdError::Control(e.to_string()))?;
                out!("{text}");
            } else {
                for u in &users {
                    out!(
                        "{}  created {}  last login {}{}",
                        u.name,
                        show_ms(Some(u.created_at_ms)),
                        show_ms(u.last_login_ms),
                        u.locked_until_ms
                            .filter(|t| *t > time::now().0)
                            .map(|t| format!("  locked until {}", show_ms(Some(t))))
                            .unwrap_or_default()
                    );
                }
                eprintln!("{} admin user(s)", users.len());
            }
        }
        AdminUserCmd::Remove { name } => {
            store.remove_admin_user(&name, time::now().0, ACTOR_CLI)?;
            eprintln!("removed admin user {name:?}");
        }
    }
    Ok(())
}

/// The password from the first line of a private file, or typed twice without echo.
fn password(user: &str, file: Option<&Path>) -> Result<Zeroizing<String>, IssuerdError> {
    if let Some(path) = file {
        let bytes = fsutil::read_private(path, "password")?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| IssuerdError::Password(format!("{} is not UTF-8", path.display())))?;
        let line = text.lines().next().unwrap_or("");
        return Ok(Zeroizing::new(line.to_owned()));
    }
    let prompt = |p: &str| {
        rpassword::prompt_password(p)
            .map(Zeroizing::new)
            .map_err(|e| {
                IssuerdError::Password(format!(
                    "cannot read it from the terminal: {e} (use --password-file)"
                ))
            })
    };
    let first = prompt(&format!("password for {user}: "))?;
    let second = prompt("again: ")?;
    if first != second {
        return Err(IssuerdError::Password(
            "the two passwords differ".to_owned(),
        ));
    }
    Ok(first)
}
