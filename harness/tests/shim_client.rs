//! The shim client against tiny shell-script shims: the handshake, well-behaved replies,
//! and every way a shim can fail (crash, hang, garbage, wrong protocol), each followed
//! by a restart that works.

use latchkey_harness::iut::shim_client::ShimProcess;
use latchkey_harness::iut::{Iut, IutError};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tempfile::TempDir;

const TIMEOUT: Duration = Duration::from_millis(300);

const HELLO: &str = r#"'{"ok":true,"protocol":1,"implementation":"echo-shim"}'"#;

/// A shim whose behaviour is chosen by the request's `op`; anything else gets an empty
/// success, preceded by a log line and a blank line the client must skip.
fn modes_shim(dir: &Path) -> String {
    let pidfile = dir.join("sleep.pid");
    script(
        dir,
        "modes.sh",
        &format!(
            r#"
while IFS= read -r line; do
  case "$line" in
    *'"op":"hello"'*) echo {HELLO} ;;
    *'"op":"crash"'*) echo "boom: assertion failed in step" >&2; exit 3 ;;
    *'"op":"hang"'*) sleep 60 & echo $! > '{pidfile}'; wait ;;
    *'"op":"garbage"'*) echo 'this is not json' ;;
    *'"op":"long"'*) i=0; while [ $i -lt 300 ]; do printf x; i=$((i+1)); done; echo ;;
    *'"op":"array"'*) echo '[1,2]' ;;
    *'"op":"twice"'*) echo '{{"ok":true,"output":{{}}}}'; echo '{{"ok":true,"output":{{}}}}' ;;
    *'"op":"noisy"'*) i=0; while [ $i -lt 3000 ]; do echo "stderr line $i" >&2; i=$((i+1)); done; echo LAST >&2; exit 1 ;;
    *'"op":"orphan"'*) sleep 60 >/dev/null 2>&1 & echo $! > '{pidfile}'; exit 4 ;;
    *'"op":"close"'*) exec 1>&-; sleep 60 ;;
    *) echo '# handling request'; echo; echo '{{"ok":true,"output":{{}}}}' ;;
  esac
done
"#,
            pidfile = pidfile.display()
        ),
    )
}

fn script(dir: &Path, name: &str, body: &str) -> String {
    let path: PathBuf = dir.join(name);
    std::fs::write(&path, body).expect("write shim script");
    format!("sh '{}'", path.display())
}

fn spawn_modes() -> (TempDir, ShimProcess) {
    let dir = tempfile::tempdir().expect("temp dir");
    let shim = ShimProcess::spawn(&modes_shim(dir.path()), TIMEOUT).expect("spawn modes shim");
    (dir, shim)
}

fn op(name: &str) -> serde_json::Value {
    json!({"op": name})
}

/// Whether our child `pid` is gone from the process table, i.e. killed and reaped.
fn wait_until_reaped(pid: u32) -> bool {
    wait_for(pid, false)
}

/// Whether `pid` is dead; a grandchild may linger as a zombie for its new parent to reap.
fn wait_until_dead(pid: u32) -> bool {
    wait_for(pid, true)
}

fn wait_for(pid: u32, zombie_is_dead: bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return true,
            // The state letter follows the `(comm)` field.
            Ok(stat)
                if zombie_is_dead
                    && stat.rsplit(") ").next().is_some_and(|s| s.starts_with('Z')) =>
            {
                return true;
            }
            Ok(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    false
}

fn assert_restart_works(shim: &mut ShimProcess) {
    assert!(!shim.is_running());
    assert!(
        matches!(shim.call(&op("ping")), Err(IutError::Crashed(m)) if m.contains("not running"))
    );
    shim.restart().expect("restart");
    assert!(shim.is_running());
    assert_eq!(
        shim.call(&op("ping")).expect("call after restart"),
        json!({"ok": true, "output": {}})
    );
}

#[test]
fn handshake_names_the_implementation_and_calls_skip_log_lines() {
    let (_dir, mut shim) = spawn_modes();
    assert_eq!(shim.name(), "echo-shim");
    for _ in 0..3 {
        let reply = shim
            .call(&json!({"op": "decode", "bytes": "00ff"}))
            .unwrap();
        assert_eq!(reply, json!({"ok": true, "output": {}}));
    }
    // A restart of a healthy shim replaces the process.
    let before = shim.pid().unwrap();
    shim.restart().unwrap();
    assert_ne!(shim.pid().unwrap(), before);
    assert!(wait_until_reaped(before));
    assert!(shim.call(&op("ping")).is_ok());
}

#[test]
fn crash_reports_exit_status_and_stderr_then_restart_works() {
    let (_dir, mut shim) = spawn_modes();
    let pid = shim.pid().unwrap();
    let Err(IutError::Crashed(message)) = shim.call(&op("crash")) else {
        panic!("expected a crash");
    };
    assert!(message.contains("exit status: 3"), "{message}");
    assert!(
        message.contains("boom: assertion failed in step"),
        "{message}"
    );
    assert!(wait_until_reaped(pid));
    assert_restart_works(&mut shim);
}

#[test]
fn crash_on_second_request() {
    let dir = tempfile::tempdir().unwrap();
    let command = script(
        dir.path(),
        "second.sh",
        &format!(
            r#"
n=0
while IFS= read -r line; do
  case "$line" in
    *'"op":"hello"'*) echo {HELLO} ;;
    *) n=$((n+1))
       if [ $n -ge 2 ]; then echo "second request kills me" >&2; exit 7; fi
       echo '{{"ok":true,"output":{{}}}}' ;;
  esac
done
"#
        ),
    );
    let mut shim = ShimProcess::spawn(&command, TIMEOUT).unwrap();
    assert!(shim.call(&op("first")).is_ok());
    let err = shim.call(&op("second")).unwrap_err();
    assert!(
        matches!(&err, IutError::Crashed(m) if m.contains("exit status: 7") && m.contains("second request kills me")),
        "{err:?}"
    );
    // The counter starts over in the new process.
    assert_restart_works(&mut shim);
}

#[test]
fn hang_times_out_kills_the_process_group_then_restart_works() {
    let (dir, mut shim) = spawn_modes();
    let pid = shim.pid().unwrap();
    let start = Instant::now();
    assert_eq!(shim.call(&op("hang")), Err(IutError::Timeout(300)));
    let elapsed = start.elapsed();
    assert!(
        elapsed >= TIMEOUT && elapsed < Duration::from_secs(2),
        "{elapsed:?}"
    );
    assert!(wait_until_reaped(pid), "shell not reaped");
    // The `sleep` the shell started dies with it.
    let sleep_pid: u32 = std::fs::read_to_string(dir.path().join("sleep.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(wait_until_dead(sleep_pid), "grandchild left running");
    assert_restart_works(&mut shim);
}

#[test]
fn a_crash_takes_background_helpers_with_it() {
    let (dir, mut shim) = spawn_modes();
    let err = shim.call(&op("orphan")).unwrap_err();
    assert!(
        matches!(&err, IutError::Crashed(m) if m.contains("exit status: 4")),
        "{err:?}"
    );
    let helper: u32 = std::fs::read_to_string(dir.path().join("sleep.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(wait_until_dead(helper), "background helper left running");
}

#[test]
fn garbage_is_quoted_then_restart_works() {
    let (_dir, mut shim) = spawn_modes();
    assert_eq!(
        shim.call(&op("garbage")),
        Err(IutError::Garbage("this is not json".into()))
    );
    assert_restart_works(&mut shim);

    assert_eq!(
        shim.call(&op("array")),
        Err(IutError::Garbage("[1,2]".into()))
    );
    assert_restart_works(&mut shim);

    let Err(IutError::Garbage(quoted)) = shim.call(&op("long")) else {
        panic!("expected garbage");
    };
    assert_eq!(quoted, format!("{}…", "x".repeat(200)));
    assert_restart_works(&mut shim);
}

#[test]
fn an_unsolicited_line_is_garbage() {
    let (_dir, mut shim) = spawn_modes();
    assert!(shim.call(&op("twice")).is_ok());
    std::thread::sleep(Duration::from_millis(100));
    let err = shim.call(&op("ping")).unwrap_err();
    assert!(
        matches!(&err, IutError::Garbage(m) if m.starts_with("unsolicited line: ")),
        "{err:?}"
    );
    assert_restart_works(&mut shim);
}

#[test]
fn stderr_tail_is_bounded_and_keeps_the_end() {
    let (_dir, mut shim) = spawn_modes();
    let Err(IutError::Crashed(message)) = shim.call(&op("noisy")) else {
        panic!("expected a crash");
    };
    assert!(
        message.ends_with("LAST"),
        "{}",
        &message[message.len() - 100..]
    );
    assert!(message.len() < 8 * 1024 + 200, "{}", message.len());
    assert!(!message.contains("stderr line 0\n"));
}

#[test]
fn closing_stdout_without_exiting_is_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    // `exec`, or the outer `sh -c` would keep its copy of stdout open while it waits.
    let command = format!("exec {}", modes_shim(dir.path()));
    let mut shim = ShimProcess::spawn(&command, TIMEOUT).unwrap();
    let pid = shim.pid().unwrap();
    let err = shim.call(&op("close")).unwrap_err();
    assert!(
        matches!(&err, IutError::Crashed(m) if m.contains("stdout closed") && m.contains("killed")),
        "{err:?}"
    );
    assert!(wait_until_reaped(pid));
    assert_restart_works(&mut shim);
}

#[test]
fn wrong_protocol_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let command = script(
        dir.path(),
        "future.sh",
        r#"
read -r line
echo '{"ok":true,"protocol":2,"implementation":"future-shim"}'
cat > /dev/null
"#,
    );
    let err = ShimProcess::spawn(&command, TIMEOUT).unwrap_err();
    assert_eq!(
        err,
        IutError::Refused("shim speaks protocol 2, harness speaks 1".into())
    );
}

#[test]
fn hello_without_a_name_or_an_answer_fails() {
    let dir = tempfile::tempdir().unwrap();
    let nameless = script(
        dir.path(),
        "nameless.sh",
        "read -r line; echo '{\"ok\":true,\"protocol\":1}'; cat > /dev/null",
    );
    assert!(matches!(
        ShimProcess::spawn(&nameless, TIMEOUT),
        Err(IutError::Garbage(m)) if m.contains("implementation")
    ));
    assert!(matches!(
        ShimProcess::spawn("sleep 60", TIMEOUT),
        Err(IutError::Timeout(300))
    ));
}

#[test]
fn a_command_that_does_not_exist_is_a_crash_with_its_stderr() {
    let err = ShimProcess::spawn("definitely-not-a-latchkey-shim", TIMEOUT).unwrap_err();
    assert!(
        matches!(&err, IutError::Crashed(m) if m.contains("127") && m.contains("not found")),
        "{err:?}"
    );
}

#[test]
fn drop_kills_and_reaps_the_child() {
    let (_dir, shim) = spawn_modes();
    let pid = shim.pid().unwrap();
    drop(shim);
    assert!(wait_until_reaped(pid));
}
