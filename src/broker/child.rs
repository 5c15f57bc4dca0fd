//! The environment of every process craik starts for someone else (`exec`'s
//! child, the provider CLI `auth test` runs): the parent's, minus whatever
//! would let the child reach a credential craik did not mean to give it.
//!
//! The child is untrusted (DESIGN's threat model). From its environment it
//! must not learn craik's home, the encrypted store's password or backend,
//! the audit key, another profile's source, or a base URL that would send
//! the injected key somewhere else. What craik injects (the credential in
//! plain `exec`, a proxy token and address with `--via-proxy`) is added
//! after the scrub.

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};

use crate::context::Context;
use crate::profile::{Kind, META_ENV_VAR, META_REF, ProfileStore};
use crate::provider::{BASE_URL_ENV_VARS, CREDENTIAL_ENV_VARS};
use crate::secret::reference::SecretRef;

/// Besides these, no child inherits a variable of
/// [`CREDENTIAL_ENV_VARS`] or [`BASE_URL_ENV_VARS`] (the family table's
/// lists). Name prefixes no child inherits: craik's own variables (`CRAIK_HOME`,
/// `CRAIK_KEYRING_PASSWORD`, `CRAIK_KEYRING_BACKEND`, `CRAIK_AUDIT_KEY`,
/// `CRAIK_POLICY`, the OIDC settings, and any added later).
pub const SCRUBBED_PREFIXES: &[&str] = &["CRAIK_"];

/// The variables one child must not inherit.
#[derive(Debug, Clone, Default)]
pub struct ChildEnv {
    /// Names removed beyond the fixed lists: what stored profiles read
    /// from, and what `CRAIK_AUDIT_KEY` names.
    sources: BTreeSet<OsString>,
}

impl ChildEnv {
    /// Reads every stored profile's source variable (an `api-key`
    /// profile's `env_var`, a `secret-ref` profile's `env:NAME`) and the
    /// variable `CRAIK_AUDIT_KEY` names, if any.
    pub fn for_home(ctx: &Context) -> crate::Result<ChildEnv> {
        let mut sources = BTreeSet::new();
        for p in &ProfileStore::new(&ctx.home).load()?.profiles {
            match p.kind {
                Kind::ApiKey => {
                    if let Some(v) = p.meta(META_ENV_VAR) {
                        sources.insert(OsString::from(v));
                    }
                }
                Kind::SecretRef => {
                    if let Some(Ok(SecretRef::Env(v))) = p.meta(META_REF).map(SecretRef::parse) {
                        sources.insert(OsString::from(v));
                    }
                }
                _ => {}
            }
        }
        if let Some(Ok(SecretRef::Env(v))) = std::env::var("CRAIK_AUDIT_KEY")
            .ok()
            .as_deref()
            .map(SecretRef::parse)
        {
            sources.insert(OsString::from(v));
        }
        Ok(ChildEnv { sources })
    }

    /// Also removes `name` (the source of a profile not in the store, as
    /// `--provider anthropic` picks).
    pub fn also(mut self, name: &str) -> ChildEnv {
        self.sources.insert(OsString::from(name));
        self
    }

    /// Whether a child must not inherit `name`.
    pub fn removes(&self, name: &OsStr) -> bool {
        let s = name.to_string_lossy();
        SCRUBBED_PREFIXES.iter().any(|p| s.starts_with(p))
            || CREDENTIAL_ENV_VARS.iter().any(|v| s == *v)
            || BASE_URL_ENV_VARS.iter().any(|v| s == *v)
            || self.sources.contains(name)
    }

    /// The parent's environment without what [`ChildEnv::removes`]: give
    /// it to a command after `env_clear()`.
    pub fn inherited(&self) -> Vec<(OsString, OsString)> {
        std::env::vars_os()
            .filter(|(k, _)| !self.removes(k))
            .collect()
    }
}

/// The command of a child not yet started: under `--sandbox`, bubblewrap's,
/// with the seccomp filter it reads from an inherited descriptor, which
/// stays open until the child has started.
pub struct ChildCommand {
    cmd: tokio::process::Command,
    sandbox_filter: Option<std::fs::File>,
    /// What must live as long as the child (a sandbox's relay).
    guards: Vec<Box<dyn Send>>,
}

impl ChildCommand {
    /// A command run as is.
    pub fn plain(cmd: tokio::process::Command) -> ChildCommand {
        ChildCommand {
            cmd,
            sandbox_filter: None,
            guards: Vec::new(),
        }
    }

    /// bubblewrap's command, and the file its `--seccomp` names.
    pub fn sandboxed(cmd: tokio::process::Command, filter: std::fs::File) -> ChildCommand {
        ChildCommand {
            cmd,
            sandbox_filter: Some(filter),
            guards: Vec::new(),
        }
    }

    /// Keeps `guard` until the child has ended.
    pub fn hold(&mut self, guard: impl Send + 'static) {
        self.guards.push(Box::new(guard));
    }
}

impl std::ops::Deref for ChildCommand {
    type Target = tokio::process::Command;
    fn deref(&self) -> &tokio::process::Command {
        &self.cmd
    }
}

impl std::ops::DerefMut for ChildCommand {
    fn deref_mut(&mut self) -> &mut tokio::process::Command {
        &mut self.cmd
    }
}

/// Runs the child; returns its exit code (128 + signal when killed).
/// SIGTERM, SIGINT, SIGHUP and SIGQUIT to craik go to the child; under
/// `--sandbox`, to the command bubblewrap runs (which bubblewrap itself
/// would not pass on).
pub(super) async fn run_child(cmd: ChildCommand) -> std::io::Result<(i32, Option<i32>)> {
    let ChildCommand {
        mut cmd,
        sandbox_filter,
        guards: _guards,
    } = cmd;
    let sandboxed = sandbox_filter.is_some();
    use std::os::unix::process::ExitStatusExt;
    use tokio::signal::unix::{SignalKind, signal};
    // Caught before the child exists, so none is lost in between.
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut quit = signal(SignalKind::quit())?;
    let mut child = cmd.spawn()?;
    // bubblewrap has its copy of the descriptor; craik's next child must not.
    drop(sandbox_filter);
    let pid = child
        .id()
        .and_then(|p| rustix::process::Pid::from_raw(p as i32));
    let forward = |sig: rustix::process::Signal| {
        let Some(pid) = pid else { return };
        let inside = if sandboxed { command_pids(pid) } else { vec![] };
        if inside.is_empty() {
            let _ = rustix::process::kill_process(pid, sig);
        }
        for p in inside {
            let _ = rustix::process::kill_process(p, sig);
        }
    };
    let status = loop {
        tokio::select! {
            s = child.wait() => break s?,
            _ = term.recv() => forward(rustix::process::Signal::TERM),
            _ = int.recv() => forward(rustix::process::Signal::INT),
            _ = hup.recv() => forward(rustix::process::Signal::HUP),
            _ = quit.recv() => forward(rustix::process::Signal::QUIT),
        }
    };
    Ok(match (status.code(), status.signal()) {
        (Some(c), _) => (c, None),
        (None, Some(s)) => (128 + s, Some(s)),
        _ => (1, None),
    })
}

/// The host pids of the command bubblewrap `bwrap` runs: its
/// grandchildren (bubblewrap's own init in the PID namespace is its
/// child), read from `/proc/<pid>/task/<pid>/children`. Empty when they
/// cannot be found (not started yet, or a kernel without that file).
fn command_pids(bwrap: rustix::process::Pid) -> Vec<rustix::process::Pid> {
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
    fn what_is_removed() {
        let env = ChildEnv::default().also("MY_KEY");
        for name in [
            "CRAIK_HOME",
            "CRAIK_KEYRING_PASSWORD",
            "CRAIK_ANYTHING_NEW",
            "OPENAI_API_KEY",
            "ANTHROPIC_BASE_URL",
            "GOOGLE_APPLICATION_CREDENTIALS",
            "MY_KEY",
        ] {
            assert!(env.removes(OsStr::new(name)), "{name}");
        }
        for name in [
            "PATH",
            "HOME",
            "TERM",
            "MY_KEY_2",
            "XCRAIK_HOME",
            "craik_home",
        ] {
            assert!(!env.removes(OsStr::new(name)), "{name}");
        }
    }
}
