//! The agents' modes and their scopes: `agent-config.json` in CRAIK_HOME
//! (sealed like the profiles file, schema in
//! schemas/agent-config.schema.json), `craik agent config set/show`.
//!
//! A rule sets a mode for any combination of an agent, a workspace (a
//! directory and everything under it) and a role. The rule that matches
//! most specifically wins: a workspace outranks a role, a role an agent,
//! a longer workspace a shorter one; with no rule the mode is `sync`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Agent, AgentError};
use crate::home::Home;
use crate::secret::Secrets;
use crate::secret::seal::{Domain, SealKey};

pub const CONFIG_FILE: &str = "agent-config.json";

/// How an agent gets its credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The host agent's current login, imported fresh at each launch.
    Sync,
    /// An API-key profile or pool, through the proxy.
    ApiKey,
    /// A Claude subscription's token, through the proxy (Claude only).
    OauthToken,
    /// Nothing forwarded.
    Ignore,
}

impl Mode {
    pub const ALL: [Mode; 4] = [Mode::Sync, Mode::ApiKey, Mode::OauthToken, Mode::Ignore];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Sync => "sync",
            Mode::ApiKey => "api_key",
            Mode::OauthToken => "oauth_token",
            Mode::Ignore => "ignore",
        }
    }
}

/// One rule: a mode for the runs it matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// An absolute directory: the rule covers runs in it and under it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    pub mode: Mode,
}

impl Rule {
    /// The scope it names, for messages and receipts: `global`,
    /// `agent=codex`, `workspace=/src/app,role=ci`, ...
    pub fn scope(&self) -> String {
        let mut parts = Vec::new();
        if let Some(w) = &self.workspace {
            parts.push(format!("workspace={}", w.display()));
        }
        if let Some(r) = &self.role {
            parts.push(format!("role={r}"));
        }
        if let Some(a) = &self.agent {
            parts.push(format!("agent={a}"));
        }
        if parts.is_empty() {
            "global".into()
        } else {
            parts.join(",")
        }
    }

    fn matches(&self, agent: Agent, workspace: &Path, role: Option<&str>) -> bool {
        self.agent.as_deref().is_none_or(|a| a == agent.as_str())
            && self
                .workspace
                .as_deref()
                .is_none_or(|w| workspace.starts_with(w))
            && self.role.as_deref().is_none_or(|r| Some(r) == role)
    }

    /// Higher is more specific.
    fn rank(&self) -> (u8, usize) {
        let bits = (self.workspace.is_some() as u8) << 2
            | (self.role.is_some() as u8) << 1
            | self.agent.is_some() as u8;
        let depth = self
            .workspace
            .as_deref()
            .map(|w| w.components().count())
            .unwrap_or(0);
        (bits, depth)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    #[serde(default = "one")]
    pub version: u32,
    #[serde(default)]
    pub rules: Vec<Rule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal: Option<String>,
}

fn one() -> u32 {
    1
}

/// The mode a run gets, and the scope that chose it.
#[derive(Debug, Clone, Serialize)]
pub struct Resolved {
    pub agent: String,
    pub mode: Mode,
    /// `flag` (`--mode`), `credential` (a named profile or pool), a
    /// rule's scope, or `default`.
    pub scope: String,
}

impl AgentConfig {
    fn sealed_bytes(&self) -> Vec<u8> {
        let bare = AgentConfig {
            version: self.version,
            rules: self.rules.clone(),
            seal: None,
        };
        serde_json::to_vec(&bare).expect("config serializes")
    }

    /// Loads the file (absent: no rules). An edited file (its seal does
    /// not verify) is refused.
    pub fn load(home: &Home, secrets: &Secrets) -> crate::Result<AgentConfig> {
        let path = home.path(CONFIG_FILE);
        let Some(bytes) = home.read(CONFIG_FILE)? else {
            return Ok(AgentConfig {
                version: 1,
                ..AgentConfig::default()
            });
        };
        let bad = |why: String| AgentError::Config {
            path: path.display().to_string(),
            why,
        };
        let cfg: AgentConfig =
            serde_json::from_slice(&bytes).map_err(|e| bad(format!("it is not valid: {e}")))?;
        if cfg.version != 1 {
            return Err(bad(format!("version {} is not 1", cfg.version)).into());
        }
        let key = SealKey::load(secrets)?;
        match &cfg.seal {
            Some(s) if key.verify(Domain::AgentConfig, &cfg.sealed_bytes(), s) => Ok(cfg),
            Some(_) => Err(bad("it does not match its seal (edited outside craik)".into()).into()),
            None => Err(bad("it has no seal".into()).into()),
        }
    }

    fn save(&self, home: &Home, secrets: &Secrets) -> crate::Result<()> {
        let key = SealKey::load(secrets)?;
        let sealed = AgentConfig {
            version: 1,
            rules: self.rules.clone(),
            seal: Some(key.seal(Domain::AgentConfig, &self.sealed_bytes())),
        };
        let mut out = serde_json::to_vec_pretty(&sealed).expect("config serializes");
        out.push(b'\n');
        Ok(home.write_atomic(CONFIG_FILE, &out)?)
    }

    /// The mode for `agent` run in `workspace` under `role`.
    pub fn resolve(&self, agent: Agent, workspace: &Path, role: Option<&str>) -> Resolved {
        let best = self
            .rules
            .iter()
            .filter(|r| r.matches(agent, workspace, role))
            .max_by_key(|r| r.rank());
        match best {
            Some(r) => Resolved {
                agent: agent.to_string(),
                mode: r.mode,
                scope: r.scope(),
            },
            None => Resolved {
                agent: agent.to_string(),
                mode: Mode::Sync,
                scope: "default".into(),
            },
        }
    }
}

/// A workspace as rules store it: absolute, symbolic links resolved.
pub fn workspace_path(dir: &Path) -> crate::Result<PathBuf> {
    std::fs::canonicalize(dir).map_err(|e| {
        AgentError::Config {
            path: dir.display().to_string(),
            why: format!("the workspace cannot be resolved: {e}"),
        }
        .into()
    })
}

/// `craik agent config set`: adds the rule, replacing one of the same
/// scope. Under the profiles' lock, so two changes never lose one.
pub fn set(
    home: &Home,
    secrets: &Secrets,
    mode: Mode,
    agent: Option<Agent>,
    workspace: Option<&Path>,
    role: Option<&str>,
) -> crate::Result<Rule> {
    if mode == Mode::OauthToken && agent.is_some_and(|a| a != Agent::Claude) {
        return Err(AgentError::Unsupported(
            "mode oauth_token is for claude only".into(),
            "other agents' subscription tokens are not accepted by the providers' public APIs; use api_key or sync".into(),
        )
        .into());
    }
    let rule = Rule {
        agent: agent.map(|a| a.to_string()),
        workspace: workspace.map(workspace_path).transpose()?,
        role: role.map(str::to_string),
        mode,
    };
    let _lock = home.lock(CONFIG_FILE)?;
    let mut cfg = AgentConfig::load(home, secrets)?;
    cfg.rules.retain(|r| {
        (r.agent.as_ref(), r.workspace.as_ref(), r.role.as_ref())
            != (
                rule.agent.as_ref(),
                rule.workspace.as_ref(),
                rule.role.as_ref(),
            )
    });
    cfg.rules.push(rule.clone());
    cfg.save(home, secrets)?;
    Ok(rule)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(agent: Option<&str>, ws: Option<&str>, role: Option<&str>, mode: Mode) -> Rule {
        Rule {
            agent: agent.map(Into::into),
            workspace: ws.map(Into::into),
            role: role.map(Into::into),
            mode,
        }
    }

    #[test]
    fn the_most_specific_rule_wins() {
        let cfg = AgentConfig {
            version: 1,
            rules: vec![
                rule(None, None, None, Mode::Ignore),
                rule(Some("codex"), None, None, Mode::ApiKey),
                rule(None, Some("/src"), None, Mode::Sync),
                rule(None, Some("/src/app"), None, Mode::ApiKey),
                rule(Some("claude"), Some("/src"), Some("ci"), Mode::OauthToken),
            ],
            seal: None,
        };
        let r = |a, w: &str, role| {
            let x = cfg.resolve(a, Path::new(w), role);
            (x.mode, x.scope)
        };
        assert_eq!(
            r(Agent::Gemini, "/tmp", None),
            (Mode::Ignore, "global".into())
        );
        assert_eq!(
            r(Agent::Codex, "/tmp", None),
            (Mode::ApiKey, "agent=codex".into())
        );
        assert_eq!(r(Agent::Codex, "/src/x", None).0, Mode::Sync);
        assert_eq!(r(Agent::Codex, "/src/app/y", None).0, Mode::ApiKey);
        assert_eq!(
            r(Agent::Claude, "/src/app", Some("ci")),
            (
                Mode::OauthToken,
                "workspace=/src,role=ci,agent=claude".into()
            )
        );
        // "/srcx" is not under "/src".
        assert_eq!(r(Agent::Gemini, "/srcx", None).0, Mode::Ignore);
        let empty = AgentConfig::default();
        let d = empty.resolve(Agent::Claude, Path::new("/"), None);
        assert_eq!((d.mode, d.scope.as_str()), (Mode::Sync, "default"));
    }
}
