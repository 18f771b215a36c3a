//! Booting the User-Mode Linux machine for one scenario.
//!
//! The kernel runs as an ordinary host process with the host's root mounted read-only
//! (hostfs), so the host's dbus-daemon, bluetoothd, btmon and our debug binaries run inside
//! unchanged. Its console goes to `console.log` in the run folder. UML's exit status does
//! not carry the script's: the script writes `done` and the judges read the folder.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::run::SetupError;

/// Memory of the UML machine: the daemons are debug builds, bluetoothd and dbus are small.
const MEMORY: &str = "mem=1024M";

/// How one boot ended.
#[derive(Debug, Clone, Copy)]
pub struct Boot {
    /// Wall time from start to the machine's power-off (or the kill).
    pub elapsed: Duration,
    /// Whether it was killed at the time limit.
    pub timed_out: bool,
}

/// Boots `kernel` with `init` (uml/init.sh) on the run folder `dir`; kills the whole process
/// group after `limit`.
pub fn boot(kernel: &Path, init: &Path, dir: &Path, limit: Duration) -> Result<Boot, SetupError> {
    let console = File::create(dir.join("console.log")).map_err(SetupError::Io)?;
    let console_err = console.try_clone().map_err(SetupError::Io)?;
    let mut child = Command::new(kernel)
        .args(kernel_args(init, dir))
        .stdin(Stdio::null())
        .stdout(console)
        .stderr(console_err)
        // Its own process group: UML forks a host process per guest address space, and a
        // timeout must kill them all.
        .process_group(0)
        .spawn()
        .map_err(|e| SetupError::Boot(format!("cannot start {}: {e}", kernel.display())))?;
    let start = Instant::now();
    let pgid = child.id();
    let timed_out = loop {
        match child.try_wait() {
            Ok(Some(_)) => break false,
            Ok(None) if start.elapsed() >= limit => break true,
            Ok(None) => sleep(Duration::from_millis(50)),
            Err(e) => return Err(SetupError::Boot(format!("waiting for UML: {e}"))),
        }
    };
    kill_group(pgid);
    let _ = child.wait();
    Ok(Boot {
        elapsed: start.elapsed(),
        timed_out,
    })
}

/// The UML kernel's panic line and the function it died in, from `console.log`, if it
/// panicked.
pub fn kernel_panic(dir: &Path) -> Option<String> {
    let console = std::fs::read_to_string(dir.join("console.log")).ok()?;
    panic_in(&console)
}

fn panic_in(console: &str) -> Option<String> {
    let mut lines = console.lines();
    let panic = lines
        .find(|l| l.starts_with("Kernel panic"))?
        .trim()
        .to_owned();
    let comm = console.lines().find_map(|l| {
        l.split_once(" Comm: ")
            .map(|(_, c)| c.split_whitespace().next().unwrap_or(""))
    });
    let first_frame = console.lines().find_map(|l| {
        l.trim()
            .strip_prefix('[')
            .and_then(|r| r.split_once("] "))
            .map(|(_, f)| f.trim())
    });
    Some(format!(
        "{panic} (in {}, at {})",
        comm.unwrap_or("?"),
        first_frame.unwrap_or("?")
    ))
}

/// The kernel command line. `uml_dir` keeps UML's pid/mconsole files in the run folder.
fn kernel_args(init: &Path, dir: &Path) -> Vec<String> {
    let uml_dir: PathBuf = dir.join(".uml");
    vec![
        MEMORY.into(),
        "rootfstype=hostfs".into(),
        "hostfs=/".into(),
        "ro".into(),
        "con=null".into(),
        "con0=fd:0,fd:1".into(),
        format!("uml_dir={}", uml_dir.display()),
        "init=/bin/sh".into(),
        "--".into(),
        init.display().to_string(),
        dir.display().to_string(),
    ]
}

/// SIGKILL to the group (no-op when it is already gone). No libc: `kill(1)` does it.
fn kill_group(pgid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_gets_the_run_folder_after_the_double_dash() {
        let args = kernel_args(
            Path::new("/src/uml/init.sh"),
            Path::new("/out/runs/unlock-1"),
        );
        let dash = args.iter().position(|a| a == "--").expect("--");
        assert_eq!(args[dash - 1], "init=/bin/sh");
        assert_eq!(args[dash + 1], "/src/uml/init.sh");
        assert_eq!(args[dash + 2], "/out/runs/unlock-1");
        assert!(args.contains(&"ro".to_owned()) && args.contains(&"hostfs=/".to_owned()));
        assert!(args.contains(&"uml_dir=/out/runs/unlock-1/.uml".to_owned()));
    }

    #[test]
    fn a_kernel_panic_is_found_with_its_process_and_function() {
        let console = "Run /bin/sh as init process\n\
            Kernel panic - not syncing: Kernel mode fault at addr 0x0, ip 0x6039fb83\n\
            CPU: 0 PID: 87 Comm: bluetoothd Not tainted 6.1.192 #1\n\
            Call Trace:\n [<603be296>] l2cap_conn_free+0x1c/0x4d\n [<603bee73>] kref_put+0x11/0x2a\n";
        assert_eq!(
            panic_in(console).as_deref(),
            Some(
                "Kernel panic - not syncing: Kernel mode fault at addr 0x0, ip 0x6039fb83 \
                 (in bluetoothd, at l2cap_conn_free+0x1c/0x4d)"
            )
        );
        assert_eq!(panic_in("sysrq: Power Off\nreboot: Power down\n"), None);
    }

    #[test]
    fn a_hung_machine_is_killed_at_the_limit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fake = dir.path().join("linux");
        std::fs::write(&fake, "#!/bin/sh\nsleep 30 & sleep 30\n").expect("write");
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        let b = boot(
            &fake,
            Path::new("/x"),
            dir.path(),
            Duration::from_millis(300),
        )
        .expect("boot");
        assert!(b.timed_out);
        assert!(b.elapsed < Duration::from_secs(5), "{:?}", b.elapsed);
    }
}
