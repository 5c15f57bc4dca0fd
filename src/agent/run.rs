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

use super::AgentError;
use super::config::{AgentConfig, Mode, Resolved};
use super::{Agent, source};
use crate::audit::{NewReceipt, ReceiptKind, Status};
use crate::broker::exec::{ExecSpec, Launch, ProxyEndpoint};
use crate::broker::{CallSpec, Target};
use crate::context::Context;
use crate::profile::{Kind, ProfileId, ProfileStore};

/// The file in an agent's home listing what craik wrote there, so mode
/// `ignore` can take it away again.
const FORWARDED: &str = ".craik-forwarded.json";

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
    "CODE_ASSIST_ENDPOINT",
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
    /// The mode asked for with `--mode` (else: the credential named, the
    /// scopes of `agent-config.json`, or `sync`).
    pub mode: Option<Mode>,
    /// The workspace the scopes match (default: the working directory).
    pub workspace: Option<PathBuf>,
    pub role: Option<String>,
    pub args: Vec<String>,
}

/// What a run forwards to the agent (always through the proxy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Forward {
    Nothing,
    /// An API key: the proxy swaps the agent's proxy token for it.
    ApiKey,
    /// A Claude subscription's token, sent by the proxy as a bearer token.
    OauthToken,
    /// A Codex (ChatGPT) or Gemini CLI (Google) subscription login: the
    /// agent gets a login file or variables holding only the proxy token,
    /// pointed at the proxy; the proxy sends the real access token to the
    /// subscription's API.
    Subscription,
}

impl Forward {
    fn as_str(self) -> &'static str {
        match self {
            Forward::Nothing => "nothing",
            Forward::ApiKey => "api_key",
            Forward::OauthToken => "oauth_token",
            Forward::Subscription => "subscription",
        }
    }

    /// The mode a credential implies when it is named: a Codex or Gemini
    /// subscription login is what `sync` forwards.
    fn mode(self) -> Mode {
        match self {
            Forward::ApiKey => Mode::ApiKey,
            Forward::OauthToken => Mode::OauthToken,
            Forward::Subscription => Mode::Sync,
            Forward::Nothing => Mode::Ignore,
        }
    }
}

/// What a credential of `kind` forwards to `agent`.
fn forward_of(agent: Agent, kind: Kind) -> Result<Forward, AgentError> {
    match (agent, kind) {
        (_, Kind::Marker) => Err(AgentError::Unsupported(
            "a marker profile delegates to the provider's CLI and has no credential to proxy"
                .into(),
            "run the agent with a profile that holds a key: craik agent import, or craik auth add"
                .into(),
        )),
        (Agent::Claude, Kind::OAuth) => Ok(Forward::OauthToken),
        (Agent::Codex | Agent::Gemini, Kind::OAuth) => Ok(Forward::Subscription),
        (_, Kind::OAuth) => Err(AgentError::Unsupported(
            format!("{agent} with a subscription login is not supported"),
            format!(
                "run {agent} with an API key profile: craik auth add {}:NAME --kind=keyring-ref",
                agent.family().map(|f| f.as_str()).unwrap_or("openai")
            ),
        )),
        _ => Ok(Forward::ApiKey),
    }
}

/// What a subscription's login file names besides the token: the
/// account and plan recorded at import (Codex sends the account id as
/// `ChatGPT-Account-ID`).
#[derive(Default)]
struct Login {
    account: Option<String>,
    plan: Option<String>,
}

/// The agent's private home and what to put in it.
struct AgentLaunch {
    agent: Agent,
    home: PathBuf,
    allow_vendor_traffic: bool,
    forward: Forward,
    login: Login,
}

/// A JWT-shaped placeholder for Codex's `id_token` (Codex decodes its
/// claims for the account and plan, and does not check the signature):
/// it names the account and plan, and signs nothing.
fn placeholder_id_token(login: &Login) -> String {
    use base64::Engine;
    let b64 = |v: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let claims = json!({
        "iss": "craik",
        "exp": chrono::Utc::now().timestamp() + 86_400,
        "https://api.openai.com/auth": {
            "chatgpt_account_id": login.account,
            "chatgpt_plan_type": login.plan,
        },
    });
    format!(
        "{}.{}.{}",
        b64(json!({"alg": "none", "typ": "JWT"})),
        b64(claims),
        b64(json!("placeholder"))
    )
}

/// Makes `dir` (0700) unless it is there; refuses a symbolic link or a
/// directory that is not the user's alone.
pub(crate) fn private_dir(dir: &Path) -> Result<(), AgentError> {
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
    /// The files craik writes into the agent's home (relative paths).
    fn files(agent: Agent) -> &'static [&'static str] {
        match agent {
            Agent::Claude => &[".claude.json"],
            Agent::Codex => &[".codex/config.toml", ".codex/auth.json"],
            Agent::Gemini => &[".gemini/settings.json"],
            Agent::OpenCode | Agent::Amp => &[],
        }
    }

    /// Removes what an earlier run forwarded into this (kept) home.
    fn remove_forwarded(&self) -> crate::Result<Vec<String>> {
        let list = self.home.join(FORWARDED);
        let Some(bytes) = crate::agent::source::read_source(&list)? else {
            return Ok(vec![]);
        };
        let names: Vec<String> = serde_json::from_slice(&bytes).unwrap_or_default();
        let mut removed = Vec::new();
        for n in names {
            // Only the names craik writes, never a path it was handed.
            if Self::files(self.agent).contains(&n.as_str()) {
                let p = self.home.join(&n);
                if p.symlink_metadata().is_ok_and(|m| m.is_file())
                    && std::fs::remove_file(&p).is_ok()
                {
                    removed.push(n);
                }
            }
        }
        let _ = std::fs::remove_file(&list);
        Ok(removed)
    }

    /// Writes the agent's files for a proxy at `base` with `token`.
    fn write_files(&self, base: &str, token: &str) -> crate::Result<()> {
        let quiet = !self.allow_vendor_traffic;
        let names = serde_json::to_vec(Self::files(self.agent)).unwrap_or_default();
        write(&self.home.join(FORWARDED), &names)?;
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
                let mut toml = if self.forward == Forward::Subscription {
                    // A ChatGPT login: the proxy stands for chatgpt.com
                    // (model calls under /backend-api/codex, the account
                    // check under /backend-api/wham: Codex uses other
                    // paths for a base URL not ending in /backend-api),
                    // and auth.json holds only the proxy token where the
                    // access token would be.
                    let auth = json!({
                        "auth_mode": "chatgpt",
                        "OPENAI_API_KEY": null,
                        "tokens": {
                            "id_token": placeholder_id_token(&self.login),
                            "access_token": token,
                            "refresh_token": "craik-placeholder",
                            "account_id": self.login.account,
                        },
                        // Recent, so Codex does not try a refresh of its own.
                        "last_refresh": chrono::Utc::now().to_rfc3339(),
                    });
                    write(&dir.join("auth.json"), auth.to_string().as_bytes())?;
                    format!(
                        "# Written by craik agent run: Codex talks to craik's proxy only.\n\
                         model_provider = \"craik\"\n\
                         chatgpt_base_url = \"{base}/backend-api\"\n\n\
                         [model_providers.craik]\n\
                         name = \"craik\"\n\
                         base_url = \"{base}/backend-api/codex\"\n\
                         requires_openai_auth = true\n\
                         wire_api = \"responses\"\n\
                         supports_websockets = false\n"
                    )
                } else {
                    format!(
                        "# Written by craik agent run: Codex talks to craik's proxy only.\n\
                         model_provider = \"craik\"\n\n\
                         [model_providers.craik]\n\
                         name = \"craik\"\n\
                         base_url = \"{base}\"\n\
                         env_key = \"OPENAI_API_KEY\"\n\
                         wire_api = \"responses\"\n\
                         supports_websockets = false\n"
                    )
                };
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
                let selected = if self.forward == Forward::Subscription {
                    "oauth-personal"
                } else {
                    "gemini-api-key"
                };
                let mut settings = json!({
                    "security": {"auth": {"selectedType": selected}},
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
        proxy: Option<&ProxyEndpoint>,
    ) -> crate::Result<()> {
        match proxy {
            Some(p) => self.write_files(&format!("http://{}", p.addr), p.token)?,
            None => {
                self.remove_forwarded()?;
            }
        }
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
                if let (Some(p), Forward::Subscription) = (proxy, self.forward) {
                    // A Google login: Code Assist calls go to the proxy
                    // with the proxy token as the access token, so Gemini
                    // CLI neither reads a login file nor refreshes one.
                    cmd.env("GOOGLE_GENAI_USE_GCA", "true");
                    cmd.env("GOOGLE_CLOUD_ACCESS_TOKEN", p.token);
                    cmd.env("CODE_ASSIST_ENDPOINT", format!("http://{}", p.addr));
                    cmd.env("NO_BROWSER", "true");
                }
            }
            Agent::OpenCode | Agent::Amp => {}
        }
        Ok(())
    }

    fn writable(&self) -> Vec<PathBuf> {
        vec![self.home.clone()]
    }

    /// The vendor's own traffic (telemetry, update checks) goes to the
    /// vendor, not through the proxy: only when it is allowed.
    fn needs_network(&self) -> bool {
        self.allow_vendor_traffic
    }
}

/// The modes every runnable agent would get here, for the error that
/// says why one has no credential.
fn modes_here(cfg: &AgentConfig, workspace: &Path, role: Option<&str>) -> String {
    Agent::RUNNABLE
        .iter()
        .map(|a| {
            let r = cfg.resolve(*a, workspace, role);
            format!("{a}={} ({})", r.mode.as_str(), r.scope)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The profile `agent import` writes for `agent`.
fn default_profile(agent: Agent) -> crate::Result<ProfileId> {
    let family = agent.family().expect("runnable agents have a family");
    Ok(ProfileId::new(family, super::import::default_name(agent))?)
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
    let cwd = match &req.workspace {
        Some(w) => w.clone(),
        None => std::env::current_dir().map_err(|e| {
            crate::Error::input(
                format!("cannot read the working directory: {e}"),
                "run craik from a directory that exists, or pass --workspace",
            )
        })?,
    };
    let workspace = super::config::workspace_path(&cwd)?;
    let cfg = AgentConfig::load(&ctx.home, &ctx.secrets)?;
    let store = ProfileStore::new(&ctx.home).load()?;
    let kind_of = |t: &Target| -> crate::Result<(Kind, crate::profile::Family)> {
        Ok(match t {
            Target::Profile(id) => {
                let p = store.get(id).ok_or_else(|| store.missing(id))?;
                (p.kind, p.provider_family)
            }
            Target::Pool(id) => (Kind::KeyringRef, id.family()),
            Target::Implicit(p) => (p.kind, p.provider_family),
        })
    };
    // The mode, and the scope that chose it.
    let resolved = match (req.mode, &req.target) {
        (Some(m), _) => Resolved {
            agent: agent.to_string(),
            mode: m,
            scope: "flag".into(),
        },
        (None, Some(t)) => Resolved {
            agent: agent.to_string(),
            mode: forward_of(agent, kind_of(t)?.0)?.mode(),
            scope: "credential".into(),
        },
        (None, None) => cfg.resolve(agent, &workspace, req.role.as_deref()),
    };
    let missing = |checked: String| AgentError::Missing {
        agent,
        mode: resolved.mode.as_str(),
        scope: resolved.scope.clone(),
        checked,
        modes: modes_here(&cfg, &workspace, req.role.as_deref()),
    };
    // The credential the mode forwards (none for `ignore`).
    let target = match resolved.mode {
        Mode::Ignore => None,
        // A Codex or Gemini subscription login named with --profile: the
        // mode it implies is sync, without the re-import.
        Mode::Sync if resolved.scope == "credential" => req.target.clone(),
        Mode::Sync => {
            if req.target.is_some() {
                return Err(AgentError::Unsupported(
                    "mode sync forwards the host agent's own login, not a profile you name".into(),
                    "drop --mode sync to forward the login the profile holds, or drop --profile/--pool".into(),
                )
                .into());
            }
            let id = default_profile(agent)?;
            match source::discover(agent, None) {
                // Imported fresh at each launch (in place: approvals stay).
                Ok(_) => {
                    super::import::import(
                        ctx,
                        super::import::ImportRequest {
                            agent,
                            from: None,
                            name: None,
                            dry_run: false,
                            base_url: None,
                            token_url: None,
                            allow_local_base_url: false,
                        },
                    )?;
                    Some(Target::Profile(id))
                }
                // The host has none: what an earlier sync imported stays.
                Err(AgentError::NotFound { checked, .. }) => {
                    let kept = store
                        .get(&id)
                        .is_some_and(|p| p.meta(super::import::META_AGENT) == Some(agent.as_str()));
                    if !kept {
                        return Err(missing(format!(
                            "{}, and no earlier import ({id})",
                            source::list(&checked)
                        ))
                        .into());
                    }
                    Some(Target::Profile(id))
                }
                Err(e) => return Err(e.into()),
            }
        }
        Mode::ApiKey | Mode::OauthToken => {
            if resolved.mode == Mode::OauthToken && agent != Agent::Claude {
                return Err(AgentError::Unsupported(
                    format!("mode oauth_token is for claude only, not {agent}"),
                    "use api_key or sync".into(),
                )
                .into());
            }
            match &req.target {
                Some(t) => Some(t.clone()),
                None => {
                    let id = default_profile(agent)?;
                    if store.get(&id).is_none() {
                        return Err(missing(format!(
                            "no --profile or --pool, and no profile {id}"
                        ))
                        .into());
                    }
                    Some(Target::Profile(id))
                }
            }
        }
    };
    // The credential must fit the agent and the mode.
    let mut named = None;
    let mut pool = None;
    if let Some(t) = &target {
        let store = ProfileStore::new(&ctx.home).load()?;
        let (kind, target_family) = match t {
            Target::Profile(id) => {
                let p = store.get(id).ok_or_else(|| store.missing(id))?;
                (p.kind, p.provider_family)
            }
            other => kind_of(other)?,
        };
        if target_family != family {
            return Err(AgentError::Unsupported(
                format!(
                    "{agent} talks to {family}, and the credential named is for {target_family}"
                ),
                format!("name a {family} profile or pool"),
            )
            .into());
        }
        let implied = forward_of(agent, kind)?.mode();
        if resolved.mode != Mode::Sync && implied != resolved.mode {
            return Err(AgentError::Unsupported(
                format!(
                    "mode {} needs {}, and the credential named is {}",
                    resolved.mode.as_str(),
                    if resolved.mode == Mode::ApiKey {
                        "an API key"
                    } else {
                        "a Claude subscription login"
                    },
                    if implied == Mode::ApiKey {
                        "an API key"
                    } else {
                        "a subscription login"
                    },
                ),
                if implied == Mode::Sync {
                    "drop --mode: a Codex or Gemini subscription login is forwarded as mode sync"
                        .to_string()
                } else {
                    format!("pass --mode {} or name another profile", implied.as_str())
                },
            )
            .into());
        }
        match t {
            Target::Profile(id) => named = Some((id.to_string(), kind)),
            Target::Implicit(p) => named = Some((p.id.to_string(), p.kind)),
            Target::Pool(id) => pool = Some(id.to_string()),
        }
    }
    let forward = match (&target, &named) {
        (None, _) => Forward::Nothing,
        (Some(_), Some((_, k))) => forward_of(agent, *k)?,
        (Some(_), None) => Forward::ApiKey,
    };
    let forwarded = forward.as_str();
    // What a subscription's login file names (not secret): the account
    // and plan the import recorded.
    let login = match (&target, forward) {
        (Some(Target::Profile(id)), Forward::Subscription) => {
            let store = ProfileStore::new(&ctx.home).load()?;
            let p = store.get(id).ok_or_else(|| store.missing(id))?;
            Login {
                account: p.meta(super::import::META_ACCOUNT).map(str::to_string),
                plan: p.meta(super::import::META_PLAN).map(str::to_string),
            }
        }
        _ => Login::default(),
    };
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
    let receipt = |rk: ReceiptKind, status: Status| {
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
            .detail("mode", resolved.mode.as_str())
            .detail("mode_scope", resolved.scope.as_str())
            .detail("forwarded", forwarded)
    };
    ctx.record(
        receipt(ReceiptKind::AgentStarted, Status::Ok)
            .detail("sandbox", req.sandbox)
            .detail("home_kept", req.keep_home.is_some())
            .detail("vendor_traffic", req.allow_vendor_traffic),
    )?;
    let t0 = Instant::now();
    let mut argv = vec![agent.program().to_string()];
    argv.extend(req.args);
    let launch = AgentLaunch {
        agent,
        home,
        allow_vendor_traffic: req.allow_vendor_traffic,
        forward,
        login,
    };
    let result = match target {
        None => crate::broker::exec::run_without_credential(ctx, &argv, req.sandbox, &launch),
        Some(target) => crate::broker::exec::exec(
            ctx,
            ExecSpec {
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
                launch: Some(Box::new(launch)),
            },
        ),
    };
    let duration_ms = t0.elapsed().as_millis() as u64;
    let finished = match &result {
        Ok(code) => receipt(
            ReceiptKind::AgentFinished,
            if *code == 0 {
                Status::Ok
            } else {
                Status::Error
            },
        )
        .detail("exit_code", *code),
        Err(e) => receipt(ReceiptKind::AgentFinished, Status::Error)
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
        assert_eq!(
            forward_of(Agent::Claude, Kind::OAuth).unwrap().mode(),
            Mode::OauthToken
        );
        assert_eq!(
            forward_of(Agent::Codex, Kind::KeyringRef).unwrap().mode(),
            Mode::ApiKey
        );
        assert_eq!(
            forward_of(Agent::Codex, Kind::OAuth).unwrap(),
            Forward::Subscription
        );
        assert_eq!(
            forward_of(Agent::Gemini, Kind::OAuth).unwrap().mode(),
            Mode::Sync
        );
        assert!(forward_of(Agent::OpenCode, Kind::OAuth).is_err());
        assert!(forward_of(Agent::Gemini, Kind::Marker).is_err());
    }
}
