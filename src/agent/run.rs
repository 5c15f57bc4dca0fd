//! `craik agent run`: an agent started through craik's proxy, with a
//! private home holding only what that agent needs to talk to the proxy.
//!
//! The agent never holds the credential: it gets the proxy's address and
//! token, in the form that agent honours (environment variables, and for
//! Codex a `config.toml` naming the proxy as its model provider); the
//! proxy injects the real key (or, for a Claude subscription, the OAuth
//! token) into each upstream request. Its `HOME` is a fresh directory
//! (0700, removed after the run unless `--keep-home`), so it does not read
//! the user's own agent logins, and the variables that would point it at
//! another config directory are removed. The vendors' non-essential
//! traffic (telemetry, update checks) is turned off unless asked for.
//!
//! `agent.started` and `agent.finished` receipts frame the proxy's
//! per-call receipts of the run.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::json;

use super::Agent;
use super::AgentError;
use crate::audit::{NewReceipt, ReceiptKind, Status};
use crate::broker::exec::{ExecSpec, Launch, ProxyEndpoint};
use crate::broker::{CallSpec, Target};
use crate::context::Context;
use crate::profile::{Kind, ProfileStore};

/// Variables that would point an agent at another config directory (the
/// user's own logins) or a non-default credential store: no agent
/// inherits them.
pub const AGENT_CONFIG_VARS: &[&str] = &[
    "CLAUDE_CONFIG_DIR",
    "CODEX_HOME",
    "GEMINI_CLI_HOME",
    "GEMINI_CLI_SYSTEM_SETTINGS_PATH",
    "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_GENAI_USE_VERTEXAI",
    "GOOGLE_GENAI_USE_GCA",
    "CODEX_REFRESH_TOKEN_URL_OVERRIDE",
    "ANTHROPIC_API_KEY_HELPER",
    "CLAUDE_CODE_USE_BEDROCK",
    "CLAUDE_CODE_USE_VERTEX",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "XDG_STATE_HOME",
    "XDG_CACHE_HOME",
];

/// What `craik agent run` was asked.
pub struct RunRequest {
    pub agent: Agent,
    /// A profile or pool; `None`: the profile `agent import` writes.
    pub target: Option<Target>,
    pub run: String,
    pub policy_files: Vec<PathBuf>,
    pub wait: Option<std::time::Duration>,
    pub sandbox: bool,
    /// Keep the agent's home in this directory (made 0700 if missing).
    pub keep_home: Option<PathBuf>,
    /// Leave the vendor's telemetry and update checks on.
    pub allow_vendor_traffic: bool,
    pub args: Vec<String>,
}

/// How the credential reaches the upstream: `api_key`, or `oauth_token`
/// (a Claude subscription's token, injected by the proxy).
fn mode_of(agent: Agent, kind: Kind) -> Result<&'static str, AgentError> {
    match (agent, kind) {
        (_, Kind::Marker) => Err(AgentError::Unsupported(
            "a marker profile delegates to the provider's CLI and has no credential to proxy"
                .into(),
            "run the agent with a profile that holds a key: craik agent import, or craik auth add"
                .into(),
        )),
        (Agent::Claude, Kind::OAuth) => Ok("oauth_token"),
        (_, Kind::OAuth) => Err(AgentError::Unsupported(
            format!(
                "{agent} with a subscription login (mode oauth_token) is not supported: its subscription API is not the provider's public one"
            ),
            format!(
                "run {agent} with an API key profile: craik auth add {}:NAME --kind=keyring-ref",
                agent.family().map(|f| f.as_str()).unwrap_or("openai")
            ),
        )),
        _ => Ok("api_key"),
    }
}

/// The agent's private home and what to put in it.
struct AgentLaunch {
    agent: Agent,
    home: PathBuf,
    allow_vendor_traffic: bool,
}

/// Makes `dir` (0700) unless it is there; refuses a symbolic link or a
/// directory that is not the user's alone.
fn private_dir(dir: &Path) -> Result<(), AgentError> {
    use std::os::unix::fs::DirBuilderExt;
    let err = |why: String| AgentError::Home {
        path: dir.display().to_string(),
        why,
    };
    match crate::home::check_owner_only(dir, true) {
        Ok(true) => {}
        Ok(false) => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| err(e.to_string()))?,
        Err(e) => return Err(err(e.to_string())),
    }
    let mode = std::fs::metadata(dir)
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()))
        .map_err(|e| err(e.to_string()))?;
    if mode & 0o077 != 0 {
        return Err(err(format!(
            "group or others may enter it (mode {:o}); chmod 700 it",
            mode & 0o777
        )));
    }
    Ok(())
}

fn write(path: &Path, data: &[u8]) -> crate::Result<()> {
    Ok(crate::home::write_atomic_path(path, data)?)
}

impl AgentLaunch {
    /// Writes the agent's files for a proxy at `base` with `token`.
    fn write_files(&self, base: &str, token: &str) -> crate::Result<()> {
        let quiet = !self.allow_vendor_traffic;
        match self.agent {
            Agent::Claude => {
                // Onboarding done, and the proxy token accepted as the
                // API key (Claude Code records the last 20 characters).
                let tail: String = token
                    .chars()
                    .rev()
                    .take(20)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                let state = json!({
                    "hasCompletedOnboarding": true,
                    "customApiKeyResponses": {"approved": [tail], "rejected": []},
                });
                write(
                    &self.home.join(".claude.json"),
                    state.to_string().as_bytes(),
                )?;
            }
            Agent::Codex => {
                let dir = self.home.join(".codex");
                private_dir(&dir)?;
                let mut toml = format!(
                    "# Written by craik agent run: Codex talks to craik's proxy only.\n\
                     model_provider = \"craik\"\n\n\
                     [model_providers.craik]\n\
                     name = \"craik\"\n\
                     base_url = \"{base}\"\n\
                     env_key = \"OPENAI_API_KEY\"\n\
                     wire_api = \"responses\"\n\
                     supports_websockets = false\n"
                );
                if quiet {
                    toml.push_str(
                        "\n[analytics]\nenabled = false\n\n[features]\nplugins = false\n",
                    );
                }
                write(&dir.join("config.toml"), toml.as_bytes())?;
            }
            Agent::Gemini => {
                let dir = self.home.join(".gemini");
                private_dir(&dir)?;
                let mut settings = json!({
                    "security": {"auth": {"selectedType": "gemini-api-key"}},
                });
                if quiet {
                    settings["privacy"] = json!({"usageStatisticsEnabled": false});
                }
                write(
                    &dir.join("settings.json"),
                    serde_json::to_vec_pretty(&settings)
                        .unwrap_or_default()
                        .as_slice(),
                )?;
            }
            Agent::OpenCode | Agent::Amp => {}
        }
        Ok(())
    }
}

impl Launch for AgentLaunch {
    fn configure(
        &self,
        cmd: &mut tokio::process::Command,
        proxy: &ProxyEndpoint,
    ) -> crate::Result<()> {
        let base = format!("http://{}", proxy.addr);
        self.write_files(&base, proxy.token)?;
        for v in AGENT_CONFIG_VARS {
            cmd.env_remove(v);
        }
        cmd.env("HOME", &self.home);
        let quiet = !self.allow_vendor_traffic;
        match self.agent {
            Agent::Claude => {
                if quiet {
                    cmd.env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1");
                    cmd.env("DISABLE_AUTOUPDATER", "1");
                }
            }
            Agent::Codex => {
                cmd.env("CODEX_HOME", self.home.join(".codex"));
            }
            Agent::Gemini => {
                cmd.env("GEMINI_CLI_TRUST_WORKSPACE", "true");
            }
            Agent::OpenCode | Agent::Amp => {}
        }
        Ok(())
    }

    fn writable(&self) -> Vec<PathBuf> {
        vec![self.home.clone()]
    }
}

/// `craik agent run`: returns the agent's exit code.
pub fn run(ctx: &mut Context, req: RunRequest) -> crate::Result<i32> {
    let agent = req.agent;
    if !Agent::RUNNABLE.contains(&agent) {
        return Err(AgentError::Unsupported(
            format!("craik agent run does not start {agent} yet"),
            "the agents it runs are claude, codex and gemini; import the credential and use craik exec --via-proxy".into(),
        )
        .into());
    }
    let family = agent.family().expect("runnable agents have a family");
    let target = match req.target {
        Some(t) => t,
        None => {
            let id = crate::profile::ProfileId::new(family, super::import::default_name(agent))?;
            if ProfileStore::new(&ctx.home).load()?.get(&id).is_none() {
                return Err(AgentError::Unsupported(
                    format!("no profile for {agent}: name one with --profile or --pool (the default, {id}, does not exist)"),
                    format!("import {agent}'s own credential (craik agent import {agent}), or pass --profile ID"),
                )
                .into());
            }
            Target::Profile(id)
        }
    };
    // What the target names decides the mode; a pool's members must all
    // be of the agent's family (the proxy checks the member it picks).
    let (kind, target_family) = {
        let store = ProfileStore::new(&ctx.home).load()?;
        match &target {
            Target::Profile(id) => {
                let p = store
                    .get(id)
                    .ok_or_else(|| crate::profile::ProfileError::NotFound(id.to_string()))?;
                (p.kind, p.provider_family)
            }
            Target::Pool(id) => (Kind::KeyringRef, id.family()),
            Target::Implicit(p) => (p.kind, p.provider_family),
        }
    };
    if target_family != family {
        return Err(AgentError::Unsupported(
            format!("{agent} talks to {family}, and the credential named is for {target_family}"),
            format!("name a {family} profile or pool"),
        )
        .into());
    }
    let mode = mode_of(agent, kind)?;
    let program = agent.program().to_string();
    // The home: kept where asked, else a fresh private directory.
    let temp;
    let home = match &req.keep_home {
        Some(dir) => {
            private_dir(dir)?;
            std::fs::canonicalize(dir).map_err(|e| AgentError::Home {
                path: dir.display().to_string(),
                why: e.to_string(),
            })?
        }
        None => {
            temp = tempfile::Builder::new()
                .prefix("craik-agent-")
                .tempdir()
                .map_err(|e| AgentError::Home {
                    path: std::env::temp_dir().display().to_string(),
                    why: e.to_string(),
                })?;
            temp.path().to_path_buf()
        }
    };
    ctx.audit()?;
    let operator = crate::operator::current(ctx)?;
    let named = match &target {
        Target::Profile(id) => Some((id.to_string(), kind)),
        Target::Implicit(p) => Some((p.id.to_string(), p.kind)),
        Target::Pool(_) => None,
    };
    let pool = match &target {
        Target::Pool(id) => Some(id.to_string()),
        _ => None,
    };
    let started = |rk: ReceiptKind, status: Status| {
        let mut r = NewReceipt::new(rk, status);
        if let Some((id, kind)) = &named {
            r = r.profile(id, kind.as_str(), family.as_str());
        }
        if let Some(p) = &pool {
            r = r.detail("pool", p.as_str());
        }
        r.operator(operator.clone())
            .run(&req.run)
            .detail("agent", agent.as_str())
            .detail("mode", mode)
            .detail("mode_scope", "credential")
    };
    ctx.record(
        started(ReceiptKind::AgentStarted, Status::Ok)
            .detail("sandbox", req.sandbox)
            .detail("home_kept", req.keep_home.is_some())
            .detail("vendor_traffic", req.allow_vendor_traffic),
    )?;
    let t0 = Instant::now();
    let mut argv = vec![program];
    argv.extend(req.args);
    let spec = ExecSpec {
        call: CallSpec {
            target,
            run: req.run.clone(),
            policy_files: req.policy_files,
            capability: crate::broker::Capability::Exec,
            wait: req.wait,
        },
        via_proxy: true,
        sandbox: req.sandbox,
        argv,
        launch: Some(Box::new(AgentLaunch {
            agent,
            home,
            allow_vendor_traffic: req.allow_vendor_traffic,
        })),
    };
    let result = crate::broker::exec::exec(ctx, spec);
    let duration_ms = t0.elapsed().as_millis() as u64;
    let finished = match &result {
        Ok(code) => started(
            ReceiptKind::AgentFinished,
            if *code == 0 {
                Status::Ok
            } else {
                Status::Error
            },
        )
        .detail("exit_code", *code),
        Err(e) => started(ReceiptKind::AgentFinished, Status::Error)
            .detail("exit_code", e.exit_code())
            .detail("error", e.to_string()),
    };
    ctx.record(finished.detail("duration_ms", duration_ms))?;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        assert_eq!(mode_of(Agent::Claude, Kind::OAuth).unwrap(), "oauth_token");
        assert_eq!(mode_of(Agent::Codex, Kind::KeyringRef).unwrap(), "api_key");
        assert!(mode_of(Agent::Codex, Kind::OAuth).is_err());
        assert!(mode_of(Agent::Gemini, Kind::Marker).is_err());
    }
}
