//! Coding agents (Claude Code, Codex, Gemini CLI, OpenCode, Amp): finding
//! and importing the credentials they keep ([`source`], [`import`]), and
//! running them with a brokered credential ([`run`]).
//!
//! What each agent holds in each mode, and what the receipts record, is
//! in docs/agents.md.

pub mod config;
pub mod env;
pub mod import;
pub mod run;
pub mod source;

use std::fmt;

use crate::profile::Family;

/// An agent craik knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Agent {
    Claude,
    Codex,
    Gemini,
    OpenCode,
    Amp,
}

impl Agent {
    pub const ALL: [Agent; 5] = [
        Agent::Claude,
        Agent::Codex,
        Agent::Gemini,
        Agent::OpenCode,
        Agent::Amp,
    ];

    /// The agents `craik agent run` can start.
    pub const RUNNABLE: [Agent; 3] = [Agent::Claude, Agent::Codex, Agent::Gemini];

    pub fn as_str(self) -> &'static str {
        match self {
            Agent::Claude => "claude",
            Agent::Codex => "codex",
            Agent::Gemini => "gemini",
            Agent::OpenCode => "opencode",
            Agent::Amp => "amp",
        }
    }

    /// The program `craik agent run` starts (found on `PATH`).
    pub fn program(self) -> &'static str {
        self.as_str()
    }

    /// The provider family an agent's own credential is for (`None` for
    /// OpenCode, which keeps one per provider).
    pub fn family(self) -> Option<Family> {
        match self {
            Agent::Claude => Some(Family::Anthropic),
            Agent::Codex => Some(Family::OpenAi),
            Agent::Gemini => Some(Family::Gemini),
            Agent::OpenCode | Agent::Amp => None,
        }
    }
}

impl fmt::Display for Agent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What went wrong finding, importing or running an agent's credential.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// No place of the agent's discovery order holds a credential.
    #[error("no {agent} credential found (looked in: {})", source::list(.checked))]
    NotFound {
        agent: Agent,
        checked: Vec<source::Checked>,
    },
    /// A source file that must not be trusted: a symbolic link, not the
    /// user's, or readable by others.
    #[error("refused {place}: {why}")]
    Refused {
        place: String,
        why: String,
        hint: String,
    },
    /// A source that is there but cannot be read as the agent writes it.
    #[error("cannot read {place}: {why}")]
    Unreadable { place: String, why: String },
    /// A value that does not look like the credential it should be (the
    /// value itself is never shown).
    #[error("{place}: {what} does not look like {expected} (nothing was imported)")]
    Shape {
        place: String,
        what: String,
        expected: String,
    },
    /// A profile of that id exists and was not imported from this agent.
    #[error("profile {id} exists and was not imported from {agent}")]
    Taken { id: String, agent: Agent },
    /// The agent keeps credentials craik has no provider family for.
    #[error(
        "{agent}'s credential at {place} is for {provider}, which craik has no provider family for"
    )]
    NoFamily {
        agent: Agent,
        place: String,
        provider: String,
    },
    /// The agent cannot be run with this credential.
    #[error("{0}")]
    Unsupported(String, String),
    /// The mode chosen for a run has no credential to forward.
    #[error(
        "no credential for {agent} in mode {mode} (chosen by the {scope} scope): {checked}; the modes here: {modes}"
    )]
    Missing {
        agent: Agent,
        mode: &'static str,
        scope: String,
        checked: String,
        modes: String,
    },
    /// `agent-config.json` cannot be used.
    #[error("{path}: {why}")]
    Config { path: String, why: String },
    /// The agent's private home could not be made or written.
    #[error("agent home {path}: {why}")]
    Home { path: String, why: String },
}

impl AgentError {
    /// Exit 7 when the run has no credential, else 1.
    pub fn exit_code(&self) -> i32 {
        match self {
            AgentError::Missing { .. } | AgentError::NotFound { .. } => {
                crate::exit::CREDENTIAL_UNAVAILABLE
            }
            _ => crate::exit::ERROR,
        }
    }

    pub fn hint(&self) -> Option<String> {
        Some(match self {
            AgentError::NotFound { agent, .. } => format!(
                "sign in with {} first, or name the file: craik agent import {agent} --from PATH",
                agent.program()
            ),
            AgentError::Refused { hint, .. } => hint.clone(),
            AgentError::Unreadable { .. } => {
                "check the file is the agent's own, unedited; or name another with --from".into()
            }
            AgentError::Shape { .. } => {
                "sign in with the agent again so it writes a fresh credential, then import".into()
            }
            AgentError::Taken { agent, .. } => {
                format!("pick another profile name: craik agent import {agent} --name NAME")
            }
            AgentError::NoFamily { .. } => {
                "store the key yourself under a provider craik knows: craik auth add --help".into()
            }
            AgentError::Unsupported(_, hint) => hint.clone(),
            AgentError::Missing { agent, .. } => format!(
                "sign in with {agent} (mode sync imports its login), import one (craik agent import {agent}), or name an API-key profile: craik agent run {agent} --profile ID"
            ),
            AgentError::Config { .. } => {
                "remove the file and set the modes again (craik agent config set); a change made outside craik is not trusted".into()
            }
            AgentError::Home { .. } => {
                "check the directory is yours, not a symbolic link, and writable".into()
            }
        })
    }
}

/// Parses an agent name (a bad one names the agents, with a suggestion).
pub fn parse(s: &str) -> Result<Agent, String> {
    let names: Vec<&str> = Agent::ALL.iter().map(|a| a.as_str()).collect();
    Agent::ALL
        .iter()
        .copied()
        .find(|a| a.as_str() == s)
        .ok_or_else(|| match crate::term::did_you_mean(s, &names) {
            Some(m) => format!(
                "unknown agent {s:?}; did you mean {m}? The agents are {}",
                names.join(", ")
            ),
            None => format!("unknown agent {s:?}; the agents are {}", names.join(", ")),
        })
}
