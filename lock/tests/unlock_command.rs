//! `unlock.command` runs on a verified unlock, with the grant's ids in its environment.

// Test helpers outside #[test] fns count as non-test code for clippy; unwrapping is how
// a test fails here.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Outcome, World, attempt, within};
use latchkey_lock::UnlockAction;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlock_command_runs_with_the_grant_in_its_environment() {
    let mut w = World::new("command").await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("unlocked");
    let script = dir.path().join("open-door.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s %s %s %s' \"$LATCHKEY_LOCK_ID\" \"$LATCHKEY_GRANT_ID\" \
             \"$LATCHKEY_GUEST_ID\" \"$LATCHKEY_SESSION_ID\" > '{out}.tmp'\nmv '{out}.tmp' '{out}'\n",
            out = out.display()
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut opts = w.lock_options(None);
    opts.unlock = UnlockAction::command(script.display().to_string());
    let lock = w.start_lock(opts).await;

    let (mut guest, grant) = w.installed_guest(&lock, 10, 0).await;
    let radio = w.air.radio("guest");
    let a = attempt(&mut guest, &radio, w.lock_id, &lock, false).await;
    assert_eq!(a.outcome, Outcome::Unlocked);

    within(10, "the command's output file", async {
        while !out.exists() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(
        text,
        format!(
            "{} {} {} {}",
            w.lock_id,
            grant.grant_id,
            guest.config().guest_id,
            grant.session_id
        )
    );
    lock.shutdown().await.unwrap();
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
}
