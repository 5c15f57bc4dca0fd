//! `exec --sandbox`: the child runs under bubblewrap, where nothing of
//! craik's exists. What it can and cannot reach is in docs/security.md;
//! in short:
//!
//! - the whole filesystem is read-only, but for the working directory
//!   (writable) and a private, empty `HOME`, `/tmp` and `/run` (into which
//!   the program's own directory, or its `node_modules`, is bound back
//!   read-only when it lives there);
//! - `CRAIK_HOME` (the encrypted store, the log), the user's keyring
//!   directories, the D-Bus session bus and the SSH agent socket (in
//!   `HOME`, `/tmp` or `/run`) do not exist;
//! - it has its own PID namespace (craik's process is not there to read),
//!   IPC and UTS namespaces, a user namespace (the kernel's user keyring
//!   is another) and a fresh session keyring, and no controlling terminal
//!   to inject input into;
//! - the network is the host's, so the proxy stays reachable on loopback.
//!
//! bubblewrap and keyctl (Debian: `bubblewrap`, `keyutils`) must be
//! installed; craik never falls back to running the child unsandboxed.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::Error;
use crate::home::Home;

/// The program bubblewrap installs as.
const BWRAP: &str = "bwrap";

/// Finds `name` on `PATH`.
fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn missing(tool: &str, package: &str) -> Error {
    Error::input(
        format!("--sandbox needs {tool}, which is not installed"),
        format!(
            "install it (Debian/Ubuntu: apt-get install {package}; Fedora: dnf install {package}), or run without --sandbox"
        ),
    )
}

/// Where `program` is: a path (relative to `cwd`), or found on `PATH`.
fn resolve(program: &str, cwd: &Path) -> Option<PathBuf> {
    if program.contains('/') {
        Some(cwd.join(program))
    } else {
        which(program)
    }
}

/// What to bind read-only so that `program` runs although it lives in a
/// directory the sandbox empties (`masked`): for the path it was found at
/// and the file it resolves to, the nearest `node_modules` above it (an
/// npm-installed agent needs its package and their dependencies), else
/// its directory; only the file itself when that directory is a masked
/// root or holds craik's home. Nothing for what is visible anyway.
fn program_binds(
    program: &Path,
    masked: &[&Path],
    visible: &[&Path],
    craik_home: &Path,
) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    let real = std::fs::canonicalize(program).ok();
    for p in std::iter::once(program.to_path_buf()).chain(real) {
        if !masked.iter().any(|m| covers(m, &p)) || visible.iter().any(|v| covers(v, &p)) {
            continue;
        }
        let dir = p
            .ancestors()
            .find(|a| a.file_name().is_some_and(|n| n == "node_modules"))
            .or_else(|| p.parent())
            .map(Path::to_path_buf);
        let bind = match dir {
            Some(d) if !masked.contains(&d.as_path()) && !covers(&d, craik_home) => d,
            _ => p.clone(),
        };
        if !out.iter().any(|o| covers(o, &bind)) {
            out.retain(|o| !covers(&bind, o));
            out.push(bind);
        }
    }
    out
}

/// Whether `a` is `b` or one of its ancestors.
fn covers(a: &Path, b: &Path) -> bool {
    b.starts_with(a)
}

/// The command that runs `argv` sandboxed, from `cwd`, for a user whose
/// home directory is `user_home` and craik's home `home`; `writable` are
/// more directories bound writable (an agent's private home).
pub fn command(
    argv: &[String],
    home: &Home,
    cwd: &Path,
    user_home: Option<&Path>,
    writable: &[PathBuf],
) -> crate::Result<tokio::process::Command> {
    let bwrap = which(BWRAP).ok_or_else(|| missing("bubblewrap (bwrap)", "bubblewrap"))?;
    which("keyctl").ok_or_else(|| missing("keyctl", "keyutils"))?;
    let craik_home = home.root().to_path_buf();
    // The working directory is bound writable: it must not hold the home
    // directory or craik's.
    let exposed = std::iter::once(craik_home.as_path()).chain(user_home);
    for p in exposed {
        if covers(cwd, p) || writable.iter().any(|w| covers(w, p)) {
            return Err(Error::input(
                format!(
                    "--sandbox makes the working directory writable, and {} is or holds {}",
                    cwd.display(),
                    p.display()
                ),
                "run the agent from its project directory",
            ));
        }
    }
    let mut args: Vec<OsString> = Vec::new();
    let mut arg = |a: &str| args.push(a.into());
    for a in [
        "--die-with-parent",
        "--new-session",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-user",
        "--unshare-cgroup-try",
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        "--tmpfs",
        "/tmp",
        "--tmpfs",
        "/run",
        "--tmpfs",
        "/var/tmp",
    ] {
        arg(a);
    }
    if let Some(h) = user_home {
        args.push("--tmpfs".into());
        args.push(h.into());
    }
    args.push("--bind".into());
    args.push(cwd.into());
    args.push(cwd.into());
    for w in writable {
        args.push("--bind".into());
        args.push(w.into());
        args.push(w.into());
    }
    // The program itself, where it lives in a directory the sandbox
    // empties (an agent installed under HOME or /tmp): read-only.
    let mut masked: Vec<&Path> = vec![Path::new("/tmp"), Path::new("/run"), Path::new("/var/tmp")];
    masked.extend(user_home);
    let visible: Vec<&Path> = std::iter::once(cwd)
        .chain(writable.iter().map(PathBuf::as_path))
        .collect();
    if let Some(program) = argv.first().and_then(|a| resolve(a, cwd)) {
        for p in program_binds(&program, &masked, &visible, &craik_home) {
            args.push("--ro-bind".into());
            args.push(p.clone().into());
            args.push(p.into());
        }
    }
    // After the working directory, so a home inside it stays hidden.
    args.push("--tmpfs".into());
    args.push(craik_home.clone().into());
    args.push("--chdir".into());
    args.push(cwd.into());
    args.push("--unsetenv".into());
    args.push("SSH_AUTH_SOCK".into());
    args.push("--unsetenv".into());
    args.push("DBUS_SESSION_BUS_ADDRESS".into());
    args.push("--".into());
    // A fresh session keyring for the shell, which the command then
    // inherits (keyctl new_session replaces its parent's keyring).
    args.push("sh".into());
    args.push("-c".into());
    args.push(
        "keyctl new_session >/dev/null 2>&1 || { echo 'craik --sandbox: cannot start a fresh session keyring' >&2; exit 126; }; exec \"$0\" \"$@\"".into(),
    );
    args.extend(argv.iter().map(OsString::from));
    let mut cmd = tokio::process::Command::new(bwrap);
    cmd.args(args);
    Ok(cmd)
}

/// The host pids of the command bubblewrap `bwrap` runs: its
/// grandchildren (bubblewrap's own init in the PID namespace is its
/// child), read from `/proc/<pid>/task/<pid>/children`. Empty when they
/// cannot be found (not started yet, or a kernel without that file).
pub(super) fn command_pids(bwrap: rustix::process::Pid) -> Vec<rustix::process::Pid> {
    let children = |pid: i32| -> Vec<i32> {
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .map(|s| {
                s.split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    children(bwrap.as_raw_nonzero().get())
        .into_iter()
        .flat_map(children)
        .filter_map(rustix::process::Pid::from_raw)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_in_an_emptied_directory_is_bound_back_read_only() {
        let home = Path::new("/home/u");
        let masked = [
            Path::new("/tmp"),
            Path::new("/run"),
            Path::new("/var/tmp"),
            home,
        ];
        let visible = [Path::new("/home/u/proj")];
        let craik = Path::new("/home/u/.craik");
        let binds = |p: &str| program_binds(Path::new(p), &masked, &visible, craik);
        assert_eq!(
            binds("/home/u/.local/bin/claude"),
            [PathBuf::from("/home/u/.local/bin")]
        );
        assert_eq!(
            binds("/tmp/ci/tests/agents/node_modules/.bin/gemini"),
            [PathBuf::from("/tmp/ci/tests/agents/node_modules")]
        );
        // Its directory is the whole home, or holds craik's: the file alone.
        assert_eq!(binds("/home/u/claude"), [PathBuf::from("/home/u/claude")]);
        assert_eq!(binds("/tmp/codex"), [PathBuf::from("/tmp/codex")]);
        // Visible anyway: nothing.
        assert!(binds("/usr/bin/claude").is_empty());
        assert!(binds("/home/u/proj/node_modules/.bin/codex").is_empty());
    }
}
