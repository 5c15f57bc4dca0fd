//! `craik exec`: run a child with the credential in its environment (never
//! its argv), signals forwarded, and exit with its status. With
//! `--via-proxy` the child gets only a proxy's address and token.

use std::sync::Arc;
use std::time::Instant;

use serde_json::Map;

use super::proxy::{self, ProxyState, Upstream};
use super::{CallSpec, Started};
use crate::Error;
use crate::audit::Status;
use crate::audit::store::group::GroupCommitter;
use crate::context::Context;
use crate::pool::Outcome;
use crate::provider;

pub struct ExecSpec {
    pub call: CallSpec,
    pub via_proxy: bool,
    /// Run the child under bubblewrap ([`super::sandbox`]).
    pub sandbox: bool,
    pub argv: Vec<String>,
    /// More setup of the child once its proxy listens (an agent's
    /// environment and files: [`crate::agent::run`]); needs `via_proxy`.
    pub launch: Option<Box<dyn Launch>>,
}

/// The proxy a child of `exec --via-proxy` talks to.
pub struct ProxyEndpoint<'a> {
    pub addr: std::net::SocketAddr,
    /// The proxy token (what the child presents; never the credential).
    pub token: &'a str,
}

/// Setup of a child beyond the proxy's address and token, made after the
/// scrubbed environment is in place.
pub trait Launch {
    /// `proxy` is `None` when the child gets no credential at all
    /// ([`run_without_credential`]).
    fn configure(
        &self,
        cmd: &mut tokio::process::Command,
        proxy: Option<&ProxyEndpoint>,
    ) -> crate::Result<()>;
    /// Directories the child must be able to write inside the sandbox.
    fn writable(&self) -> Vec<std::path::PathBuf>;
    /// Whether the child needs the host's network beside the proxy (a
    /// sandbox otherwise gives it none).
    fn needs_network(&self) -> bool {
        false
    }
}

/// The server half of `--via-proxy`: the shutdown sender and the task.
type ProxyHandle = (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
);

/// The child's command before its environment: `argv` itself, or under
/// bubblewrap with `--sandbox` (and `writable` bound writable).
fn base_command(
    ctx: &Context,
    argv: &[String],
    sandbox: bool,
    writable: &[std::path::PathBuf],
    isolation: Option<&super::sandbox::Isolation>,
) -> crate::Result<super::child::ChildCommand> {
    if sandbox {
        let cwd = std::env::current_dir().map_err(|e| {
            Error::input(
                format!("cannot read the working directory: {e}"),
                "run craik from a directory that exists",
            )
        })?;
        let user_home = std::env::var_os("HOME").map(std::path::PathBuf::from);
        super::sandbox::command(
            argv,
            &ctx.home,
            &cwd,
            user_home.as_deref(),
            writable,
            isolation,
        )
    } else {
        let mut c = tokio::process::Command::new(&argv[0]);
        c.args(&argv[1..]);
        Ok(super::child::ChildCommand::plain(c))
    }
}

/// Builds the child's command (and, with `--via-proxy`, starts the proxy).
fn prepare_child(
    ctx: &mut Context,
    call: &Arc<Started>,
    spec: &ExecSpec,
    rt: &tokio::runtime::Runtime,
) -> crate::Result<(super::child::ChildCommand, Option<ProxyHandle>)> {
    let family = provider::info(call.profile().provider_family);
    let writable = spec
        .launch
        .as_ref()
        .map(|l| l.writable())
        .unwrap_or_default();
    let mut child_env = super::child::ChildEnv::for_home(ctx)?;
    if let Some(v) = call.profile().meta(crate::profile::META_ENV_VAR) {
        // A profile not in the store (--provider) reads this one.
        child_env = child_env.also(v);
    }
    let new_command = |isolation: Option<&super::sandbox::Isolation>| {
        let mut cmd = base_command(ctx, &spec.argv, spec.sandbox, &writable, isolation)?;
        cmd.env_clear();
        cmd.envs(child_env.inherited());
        Ok::<_, Error>(cmd)
    };
    let mut proxy_handle = None;
    let cmd = match (call.material(), spec.via_proxy) {
        (None, true) => {
            return Err(Error::input(
                format!(
                    "profile {} has no credential to proxy (it delegates to the provider's CLI)",
                    call.profile().id
                ),
                "drop --via-proxy",
            ));
        }
        (_, false) if spec.launch.is_some() => {
            return Err(Error::Bug(
                "an agent runs only through craik's proxy".into(),
            ));
        }
        (None, false) => new_command(None)?,
        (Some(cred), false) => {
            let mut cmd = new_command(None)?;
            for (k, v) in family.exec_env(cred) {
                cmd.env(k, v);
            }
            if let Some(b) = &call.profile().base_url {
                cmd.env(family.env_base_url, b);
            }
            cmd
        }
        (Some(_), true) => {
            let recheck = super::pipeline::Recheck::new(ctx, &spec.call, call);
            let upstream = Upstream::new(call.clone(), recheck)?;
            let committer = GroupCommitter::start(ctx.open_audit_log()?)?;
            super::auto_checkpoints(ctx, &committer);
            super::ship_to_team(&ctx.home);
            let state = Arc::new(ProxyState::new(
                proxy::new_token(),
                family,
                vec![upstream],
                None,
                committer,
            )?);
            let listener = rt
                .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
                .map_err(|e| {
                    Error::input(
                        format!("cannot listen on loopback: {e}"),
                        "check the network namespace",
                    )
                })?;
            let addr = listener
                .local_addr()
                .map_err(|e| Error::internal("cannot read the proxy's own address", e))?;
            // Sandboxed, the child gets no network but the proxy (unless
            // the launch keeps the host's, for an agent's vendor traffic).
            let isolation =
                if spec.sandbox && spec.launch.as_ref().is_none_or(|l| !l.needs_network()) {
                    let _in_rt = rt.enter();
                    Some(super::sandbox::Isolation::new(addr)?)
                } else {
                    None
                };
            let mut cmd = new_command(isolation.as_ref())?;
            let sandbox_socket = isolation.map(|iso| {
                let (dir, socket) = iso.start();
                cmd.hold(dir);
                socket
            });
            for (k, v) in state.client_env(addr) {
                cmd.env(k, v);
            }
            if let Some(launch) = &spec.launch {
                launch.configure(
                    &mut cmd,
                    Some(&ProxyEndpoint {
                        addr,
                        token: state.token(),
                    }),
                )?;
            }
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let server = rt.spawn(proxy::serve(listener, sandbox_socket, state, async {
                let _ = rx.await;
            }));
            proxy_handle = Some((tx, server));
            cmd
        }
    };
    Ok((cmd, proxy_handle))
}

/// Runs `argv` with no credential at all (an agent in mode `ignore`):
/// the scrubbed environment, the sandbox if asked, and `launch`'s setup;
/// nothing goes through the broker, so there is no call to receipt.
/// Returns the child's exit code.
pub fn run_without_credential(
    ctx: &Context,
    argv: &[String],
    sandbox: bool,
    launch: &dyn Launch,
) -> crate::Result<i32> {
    let mut cmd = base_command(ctx, argv, sandbox, &launch.writable(), None)?;
    cmd.env_clear();
    cmd.envs(super::child::ChildEnv::for_home(ctx)?.inherited());
    launch.configure(&mut cmd, None)?;
    let rt = proxy::runtime(Some(1))?;
    rt.block_on(super::child::run_child(cmd))
        .map(|(code, _)| code)
        .map_err(|e| Error::spawn(&argv[0], &e))
}

/// `craik exec`.
pub fn exec(ctx: &mut Context, spec: ExecSpec) -> crate::Result<i32> {
    if spec.argv.is_empty() {
        return Err(Error::input(
            "no command to run",
            "craik exec --profile ID -- CMD [ARGS...]",
        ));
    }
    let mut details = Map::new();
    details.insert("command".into(), spec.argv[0].clone().into());
    details.insert("via_proxy".into(), spec.via_proxy.into());
    let rt = proxy::runtime(Some(2))?;
    let call = Arc::new(
        spec.call
            .resolve(ctx, &[])?
            .authorize(ctx, || {})?
            .start(ctx, details)?,
    );
    let (cmd, proxy_handle) = match prepare_child(ctx, &call, &spec, &rt) {
        Ok(x) => x,
        Err(e) => return Err(call.abandon(ctx, e)),
    };
    let t0 = Instant::now();
    let result = rt.block_on(super::child::run_child(cmd));
    if let Some((tx, server)) = proxy_handle {
        let _ = tx.send(());
        let _ = rt.block_on(server);
    }
    let mut details = Map::new();
    details.insert(
        "duration_ms".into(),
        (t0.elapsed().as_millis() as u64).into(),
    );
    match result {
        Ok((code, signal)) => {
            details.insert("exit_code".into(), code.into());
            if let Some(s) = signal {
                details.insert("signal".into(), s.into());
            }
            call.finish(
                ctx,
                if code == 0 { Status::Ok } else { Status::Error },
                Some(Outcome::Ok),
                None,
                details,
            )?;
            Ok(code)
        }
        Err(e) => {
            details.insert("error".into(), e.to_string().into());
            call.finish(ctx, Status::SpawnFailed, None, None, details)?;
            Err(Error::spawn(&spec.argv[0], &e))
        }
    }
}
