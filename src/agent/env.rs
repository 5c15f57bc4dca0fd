//! `craik agent env`: the credential and settings an agent needs, written
//! to an env file (0600) for a process craik does not start, such as
//! `docker run --env-file`; with a home directory, the agent's own files
//! too, for a container to mount as its home. The material goes through
//! the broker's pipeline ([`crate::broker::export`]) and only into the
//! file: never to standard output.
//!
//! Unlike `agent run`, this hands the real credential over: the process
//! that reads the file holds it. Its receipts say so (capability
//! `export`, the file and format).

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use super::{Agent, AgentError};
use crate::broker::CallSpec;
use crate::context::Context;
use crate::profile::{Kind, Profile};

/// How the env file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `KEY=value` lines (`docker run --env-file`).
    Docker,
    /// `export KEY='value'` lines (`. FILE`).
    Shell,
    /// One JSON object.
    Json,
}

impl Format {
    pub const ALL: [Format; 3] = [Format::Docker, Format::Shell, Format::Json];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Docker => "docker",
            Format::Shell => "shell",
            Format::Json => "json",
        }
    }
}

pub struct EnvRequest {
    pub agent: Agent,
    pub call: CallSpec,
    pub format: Format,
    pub out: PathBuf,
    pub home_dir: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
pub struct EnvResult {
    pub agent: String,
    pub profile: String,
    pub out: String,
    pub format: String,
    /// The variable names written (never their values).
    pub variables: Vec<String>,
    /// The files written under the home directory (relative).
    pub home_files: Vec<String>,
}

/// The variables `agent` needs to use `profile`'s credential directly.
fn variables(
    agent: Agent,
    profile: &Profile,
    material: &str,
) -> Result<Vec<(&'static str, Zeroizing<String>)>, AgentError> {
    let plain = |s: &str| Zeroizing::new(s.to_string());
    let mut v = Vec::new();
    match agent {
        Agent::Claude => {
            if profile.kind == Kind::OAuth {
                v.push(("CLAUDE_CODE_OAUTH_TOKEN", plain(material)));
            } else {
                v.push(("ANTHROPIC_API_KEY", plain(material)));
            }
            if let Some(b) = &profile.base_url {
                v.push(("ANTHROPIC_BASE_URL", plain(b)));
            }
            v.push(("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", plain("1")));
        }
        Agent::Codex => {
            v.push(("OPENAI_API_KEY", plain(material)));
            v.push(("CODEX_HOME", plain("$HOME/.codex")));
        }
        Agent::Gemini => {
            v.push(("GEMINI_API_KEY", plain(material)));
            if let Some(b) = &profile.base_url {
                v.push(("GOOGLE_GEMINI_BASE_URL", plain(b)));
            }
            v.push(("GEMINI_CLI_TRUST_WORKSPACE", plain("true")));
        }
        Agent::OpenCode | Agent::Amp => {
            return Err(AgentError::Unsupported(
                format!("craik agent env does not write {agent}'s settings"),
                "the agents it writes for are claude, codex and gemini".into(),
            ));
        }
    }
    // CODEX_HOME names a path in the container, which craik cannot know:
    // the home directory's files carry the setting instead.
    v.retain(|(k, _)| *k != "CODEX_HOME");
    Ok(v)
}

/// The agent's own files for a direct run (no secrets in them: the key
/// stays in the environment).
fn home_files(agent: Agent, profile: &Profile) -> Vec<(&'static str, String)> {
    match agent {
        Agent::Claude => vec![(
            ".claude.json",
            json!({"hasCompletedOnboarding": true}).to_string(),
        )],
        Agent::Codex => {
            let base = crate::provider::base_url(profile)
                .unwrap_or_else(|| "https://api.openai.com/v1".into());
            vec![(
                ".codex/config.toml",
                format!(
                    "# Written by craik agent env.\n\
                     model_provider = \"craik-env\"\n\n\
                     [model_providers.craik-env]\n\
                     name = \"craik-env\"\n\
                     base_url = \"{base}\"\n\
                     env_key = \"OPENAI_API_KEY\"\n\
                     wire_api = \"responses\"\n\
                     supports_websockets = false\n\n\
                     [analytics]\nenabled = false\n\n[features]\nplugins = false\n"
                ),
            )]
        }
        Agent::Gemini => vec![(
            ".gemini/settings.json",
            json!({
                "security": {"auth": {"selectedType": "gemini-api-key"}},
                "privacy": {"usageStatisticsEnabled": false},
            })
            .to_string(),
        )],
        Agent::OpenCode | Agent::Amp => vec![],
    }
}

/// Single-quotes a value for a POSIX shell.
fn shell_quote(v: &str) -> String {
    format!("'{}'", v.replace('\'', "'\\''"))
}

fn render(format: Format, vars: &[(&'static str, Zeroizing<String>)]) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::new());
    match format {
        Format::Docker => {
            for (k, v) in vars {
                out.push_str(k);
                out.push('=');
                out.push_str(v);
                out.push('\n');
            }
        }
        Format::Shell => {
            for (k, v) in vars {
                out.push_str("export ");
                out.push_str(k);
                out.push('=');
                out.push_str(&shell_quote(v));
                out.push('\n');
            }
        }
        Format::Json => {
            let m: Map<String, Value> = vars
                .iter()
                .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
                .collect();
            out.push_str(&serde_json::to_string_pretty(&m).unwrap_or_default());
            out.push('\n');
        }
    }
    out
}

/// Checks an output path before anything is authorized: not a symbolic
/// link or anything but a regular file, in a directory that exists.
fn check_out(out: &Path) -> Result<(), AgentError> {
    let bad = |why: &str| AgentError::Home {
        path: out.display().to_string(),
        why: why.into(),
    };
    if let Ok(m) = out.symlink_metadata()
        && !m.is_file()
    {
        return Err(bad(
            "it exists and is not a regular file (a symbolic link?)",
        ));
    }
    if !crate::home::dir_of(out).is_dir() {
        return Err(bad("its directory does not exist"));
    }
    Ok(())
}

/// `craik agent env`.
pub fn write_env(ctx: &mut Context, req: EnvRequest) -> crate::Result<EnvResult> {
    if !Agent::RUNNABLE.contains(&req.agent) {
        return Err(AgentError::Unsupported(
            format!("craik agent env does not write {}'s settings", req.agent),
            "the agents it writes for are claude, codex and gemini".into(),
        )
        .into());
    }
    if req.agent == Agent::Codex && req.home_dir.is_none() {
        return Err(AgentError::Unsupported(
            "codex needs its config.toml to send an API key (OPENAI_API_KEY alone is not used)"
                .into(),
            "add --home-dir DIR and mount DIR as the container's home".into(),
        )
        .into());
    }
    check_out(&req.out)?;
    if let Some(d) = &req.home_dir {
        super::run::private_dir(d)?;
    }
    let mut details = Map::new();
    details.insert("agent".into(), req.agent.as_str().into());
    details.insert("exported_to".into(), req.out.display().to_string().into());
    details.insert("format".into(), req.format.as_str().into());
    if let Some(d) = &req.home_dir {
        details.insert("home_dir".into(), d.display().to_string().into());
    }
    let agent = req.agent;
    let mut names = Vec::new();
    let mut written = Vec::new();
    let profile = crate::broker::export::export(ctx, &req.call, details, |profile, material| {
        if profile.kind == Kind::OAuth && agent != Agent::Claude {
            return Err(AgentError::Unsupported(
                format!("{agent} cannot use a subscription login from an env file"),
                "name an API-key profile".into(),
            )
            .into());
        }
        let expected = agent.family().expect("runnable agents have a family");
        if profile.provider_family != expected {
            return Err(AgentError::Unsupported(
                format!(
                    "{agent} talks to {expected}, and {} is a {} profile",
                    profile.id, profile.provider_family
                ),
                format!("name a {expected} profile or pool"),
            )
            .into());
        }
        let vars = variables(agent, profile, material)?;
        if let Some(dir) = &req.home_dir {
            for (rel, body) in home_files(agent, profile) {
                let path = dir.join(rel);
                super::run::private_dir(crate::home::dir_of(&path))?;
                crate::home::write_atomic_path(&path, body.as_bytes())?;
                written.push(rel.to_string());
            }
        }
        crate::home::write_atomic_path(&req.out, render(req.format, &vars).as_bytes())?;
        names = vars.iter().map(|(k, _)| k.to_string()).collect();
        let mut done = Map::new();
        done.insert("variables".into(), names.clone().into());
        done.insert("home_files".into(), written.clone().into());
        Ok(done)
    })?;
    Ok(EnvResult {
        agent: agent.to_string(),
        profile: profile.id.to_string(),
        out: req.out.display().to_string(),
        format: req.format.as_str().to_string(),
        variables: names,
        home_files: written,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_each_format() {
        let vars = vec![
            ("A", Zeroizing::new("x'y".to_string())),
            ("B", Zeroizing::new("2".to_string())),
        ];
        assert_eq!(*render(Format::Docker, &vars), "A=x'y\nB=2\n");
        assert_eq!(
            *render(Format::Shell, &vars),
            "export A='x'\\''y'\nexport B='2'\n"
        );
        let j: Value = serde_json::from_str(&render(Format::Json, &vars)).unwrap();
        assert_eq!(j, json!({"A": "x'y", "B": "2"}));
    }
}
