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
//!   IPC, UTS and user namespaces, and no controlling terminal to inject
//!   input into;
//! - it may make no kernel-keyring call and open no `AF_ALG` socket (a
//!   seccomp filter, [`super::seccomp`]), though it inherits craik's
//!   session keyring;
//! - with a proxy, no network but its loopback, where a relay passes
//!   connections to the proxy ([`Isolation`]); without, the host's.
//!
//! bubblewrap (Debian: `bubblewrap`) must be installed; craik never falls
//! back to running the child unsandboxed.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use std::os::fd::AsRawFd;

use super::child::ChildCommand;
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

/// The hidden command the sandbox starts first when it has no network:
/// `craik __sandbox-relay ADDR SOCKET -- CMD...` ([`relay_inside`]).
pub const RELAY_COMMAND: &str = "__sandbox-relay";
/// Where the relay's socket directory appears inside the sandbox.
const INSIDE_SOCKET_DIR: &str = "/run/craik";
const SOCKET_NAME: &str = "proxy.sock";

/// A sandbox without the host's network (`--unshare-net`): abstract Unix
/// sockets (a D-Bus bus, X11), other hosts and other local services are
/// out of reach, and the proxy is reached through a relay. Inside, craik
/// listens on the proxy's own address on the sandbox's loopback and
/// passes each connection to a Unix socket in `socket_dir` (bound in),
/// which the proxy serves itself ([`Isolation::start`]).
pub struct Isolation {
    pub addr: std::net::SocketAddr,
    pub socket_dir: PathBuf,
    dir: tempfile::TempDir,
    listener: tokio::net::UnixListener,
}

impl Isolation {
    /// A private (0700) directory and the socket in it, for the proxy at
    /// `addr`. Needs a runtime entered (the socket is tokio's).
    pub fn new(addr: std::net::SocketAddr) -> crate::Result<Isolation> {
        let dir = tempfile::Builder::new()
            .prefix("craik-sandbox-")
            .tempdir()
            .map_err(|e| Error::internal("cannot make the sandbox's socket directory", e))?;
        let listener = tokio::net::UnixListener::bind(dir.path().join(SOCKET_NAME))
            .map_err(|e| Error::internal("cannot listen on the sandbox's socket", e))?;
        Ok(Isolation {
            addr,
            socket_dir: dir.path().to_path_buf(),
            dir,
            listener,
        })
    }

    /// The socket, for the proxy to serve (`proxy::serve`'s `sandbox`),
    /// and the directory, removed when the returned guard is dropped
    /// (after the child).
    pub fn start(self) -> (SocketDir, tokio::net::UnixListener) {
        (SocketDir { _dir: self.dir }, self.listener)
    }
}

/// The sandbox's socket directory, while its child runs
/// ([`Isolation::start`]).
pub struct SocketDir {
    _dir: tempfile::TempDir,
}

/// Connections the relay passes at once, as many as the proxy takes by
/// default: more wait to be accepted (the kernel's backlog holds them).
const RELAY_CONNECTIONS: usize = super::proxy::MAX_CONNECTIONS;

/// A failed `accept` (out of descriptors, say): wait a little and go on.
/// The relay must not stop for good over a passing shortage, nor spin.
async fn accept_failed() {
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
}

/// The relay's loop: takes each connection `accept` gives (at most
/// [`RELAY_CONNECTIONS`] at once; a failed accept waits and goes on) and
/// passes it to `pass` on a task of its own.
async fn relay<S, A, P, F>(mut accept: impl FnMut() -> A, pass: P)
where
    A: std::future::Future<Output = std::io::Result<S>>,
    P: Fn(S) -> F,
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(RELAY_CONNECTIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        match accept().await {
            Ok(conn) => {
                let done = pass(conn);
                tokio::spawn(async move {
                    done.await;
                    drop(permit);
                });
            }
            Err(_) => accept_failed().await,
        }
    }
}

/// The relay's connection onwards, tried for up to 2 s: a connection
/// accepted while descriptors were short is passed on once some are
/// free, not dropped unanswered.
async fn retrying<T, F: std::future::Future<Output = std::io::Result<T>>>(
    mut connect: impl FnMut() -> F,
) -> Option<T> {
    for _ in 0..40 {
        if let Ok(t) = connect().await {
            return Some(t);
        }
        accept_failed().await;
    }
    None
}

/// `craik __sandbox-relay ADDR SOCKET CMD...`, inside the sandbox: listens
/// on `addr` (the sandbox's loopback), passes each connection to the Unix
/// socket `socket`, runs `argv` (signals forwarded), and returns its exit
/// code when it ends.
pub fn relay_inside(addr: &str, socket: &str, argv: &[String]) -> crate::Result<i32> {
    if argv.is_empty() {
        return Err(Error::Bug("the sandbox relay was given no command".into()));
    }
    // Named for what it is: it holds no credential, only bytes passing.
    let _ = rustix::thread::set_name(c"craik-relay");
    let rt = super::proxy::runtime(Some(1))?;
    let socket = PathBuf::from(socket);
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(addr))
        .map_err(|e| Error::internal(format!("cannot listen on {addr} in the sandbox"), e))?;
    rt.spawn(async move {
        let listener = &listener;
        relay(
            move || async move { listener.accept().await.map(|(s, _)| s) },
            move |mut client: tokio::net::TcpStream| {
                let _ = client.set_nodelay(true);
                let socket = socket.clone();
                async move {
                    if let Some(mut out) =
                        retrying(|| tokio::net::UnixStream::connect(&socket)).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut out).await;
                    }
                }
            },
        )
        .await
    });
    let mut cmd = tokio::process::Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    rt.block_on(super::child::run_child(ChildCommand::plain(cmd)))
        .map(|(code, _)| code)
        .map_err(|e| Error::spawn(&argv[0], &e))
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

/// Binds `/dev/null` over `f` (and what it resolves to), if it exists.
fn null_over(args: &mut Vec<OsString>, f: &Path) {
    if !f.exists() {
        return;
    }
    for p in std::iter::once(f.to_path_buf()).chain(std::fs::canonicalize(f).ok()) {
        args.push("--ro-bind".into());
        args.push("/dev/null".into());
        args.push(p.into());
    }
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
    isolation: Option<&Isolation>,
) -> crate::Result<ChildCommand> {
    let bwrap = which(BWRAP).ok_or_else(|| missing("bubblewrap (bwrap)", "bubblewrap"))?;
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
    // The workload's token (a pod's projected token, a token file): the
    // agent is not the workload. A projected token's directory is emptied
    // (the kubelet rotates it through a symlink to a new directory, which
    // a bind over today's file would miss); a single file is covered.
    use crate::operator::workload::Source;
    match crate::operator::workload::source_in_use(home) {
        Some(Source::Kubernetes(f)) => {
            let dir = f.parent().filter(|d| {
                d.parent().is_some() && !covers(d, cwd) && !writable.iter().any(|w| covers(d, w))
            });
            match dir {
                Some(d) if d.is_dir() => {
                    args.push("--tmpfs".into());
                    args.push(d.into());
                }
                _ => null_over(&mut args, &f),
            }
        }
        Some(Source::File(f)) => null_over(&mut args, &f),
        _ => {}
    }
    args.push("--chdir".into());
    args.push(cwd.into());
    let mut relay: Vec<OsString> = Vec::new();
    if let Some(iso) = isolation {
        // No network but loopback: the proxy is reached through the relay
        // (craik itself, bound in read-only where it lives out of sight).
        let exe = std::env::current_exe()
            .map_err(|e| Error::internal("cannot find craik's own executable", e))?;
        for p in program_binds(&exe, &masked, &visible, &craik_home) {
            args.push("--ro-bind".into());
            args.push(p.clone().into());
            args.push(p.into());
        }
        args.push("--unshare-net".into());
        args.push("--bind".into());
        args.push(iso.socket_dir.clone().into());
        args.push(INSIDE_SOCKET_DIR.into());
        relay.push(exe.into());
        relay.push(RELAY_COMMAND.into());
        relay.push(iso.addr.to_string().into());
        relay.push(format!("{INSIDE_SOCKET_DIR}/{SOCKET_NAME}").into());
        // The command is the child's, untouched by craik's own parsing.
        relay.push("--".into());
    }
    args.push("--unsetenv".into());
    args.push("SSH_AUTH_SOCK".into());
    args.push("--unsetenv".into());
    args.push("DBUS_SESSION_BUS_ADDRESS".into());
    // No kernel keyring at all (super::seccomp says why).
    let filter = seccomp_filter()?;
    args.push("--seccomp".into());
    args.push(filter.as_raw_fd().to_string().into());
    args.push("--".into());
    args.extend(relay);
    args.extend(argv.iter().map(OsString::from));
    let mut cmd = tokio::process::Command::new(bwrap);
    cmd.args(args);
    Ok(ChildCommand::sandboxed(cmd, filter))
}

#[cfg(target_os = "linux")]
fn seccomp_filter() -> crate::Result<std::fs::File> {
    super::seccomp::inheritable_file()
}

#[cfg(not(target_os = "linux"))]
fn seccomp_filter() -> crate::Result<std::fs::File> {
    Err(missing("Linux (bubblewrap and seccomp)", "bubblewrap"))
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
