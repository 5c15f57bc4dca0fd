//! `craik auth test`: the family's test call through the same pipeline.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Map;

use super::{CallSpec, base_url_of, finish_call, start_call};
use crate::Error;
use crate::context::Context;
use crate::pool::Outcome;
use crate::provider;

#[derive(Debug, Serialize)]
pub struct TestResult {
    pub profile: String,
    pub pool: Option<String>,
    pub run: String,
    /// `ok`, `rejected`, `rate_limited`, `expired`, `unreachable`.
    pub status: String,
    pub http_status: Option<u16>,
    pub latency_ms: u64,
}

impl TestResult {
    pub fn exit_code(&self) -> i32 {
        match self.status.as_str() {
            "ok" => crate::exit::OK,
            "rejected" | "expired" => crate::exit::CREDENTIAL_UNAVAILABLE,
            _ => crate::exit::ERROR,
        }
    }
}

pub fn test(ctx: &mut Context, spec: &CallSpec) -> crate::Result<TestResult> {
    let call = start_call(ctx, spec, &[], Map::new())?;
    let Some(credential) = call.credential.as_ref() else {
        return delegated_test(ctx, &call);
    };
    let family = provider::info(call.profile.provider_family);
    let base = match base_url_of(&call.profile) {
        Ok(b) => b,
        Err(e) => return Err(super::abandon_call(ctx, &call, e)),
    };
    let url = provider::join(&base, family.test_path);
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| Error::input(format!("cannot build the HTTP client: {e}"), "report this"))?;
    let mut req = client.get(&url);
    for (k, v) in family.auth_headers(credential, |_| None) {
        req = req.header(k, v);
    }
    let t0 = Instant::now();
    let resp = req.send();
    let latency_ms = t0.elapsed().as_millis() as u64;
    let (status, http_status) = match resp {
        Err(_) => ("unreachable", None),
        Ok(r) => {
            let code = r.status().as_u16();
            let body = r.text().unwrap_or_default().to_ascii_lowercase();
            let s = match code {
                200..=299 => "ok",
                401 | 403 if body.contains("expired") => "expired",
                429 => "rate_limited",
                500..=599 => "unreachable",
                _ => "rejected",
            };
            (s, Some(code))
        }
    };
    let mut details = Map::new();
    details.insert("method".into(), "GET".into());
    details.insert("path".into(), family.test_path.into());
    details.insert("status".into(), http_status.into());
    details.insert("latency_ms".into(), latency_ms.into());
    finish_call(
        ctx,
        &call,
        status,
        Some(Outcome::from_status(http_status)),
        Some(status),
        details,
    )?;
    Ok(TestResult {
        profile: call.profile.id.to_string(),
        pool: call.pool.as_ref().map(|p| p.to_string()),
        run: call.run.clone(),
        status: status.to_string(),
        http_status,
        latency_ms,
    })
}

/// How long `claude -p` may take in `auth test`.
const CLAUDE_TIMEOUT: Duration = Duration::from_secs(60);

/// A marker profile: run the provider's CLI with a trivial prompt, with
/// every provider credential variable removed so it uses its own session.
fn delegated_test(ctx: &mut Context, call: &super::Call) -> crate::Result<TestResult> {
    if call.profile.provider_family != crate::profile::Family::Anthropic {
        return Err(super::abandon_call(
            ctx,
            call,
            Error::input(
                format!(
                    "profile {} delegates to its provider's CLI; craik tests only the Claude CLI this way",
                    call.profile.id
                ),
                "test it with the provider's CLI",
            ),
        ));
    }
    let mut cmd = std::process::Command::new("claude");
    cmd.args(["-p", "Reply with the single word OK."])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    for v in provider::CREDENTIAL_ENV_VARS {
        cmd.env_remove(v);
    }
    let t0 = Instant::now();
    let status = match cmd.spawn() {
        Err(_) => "unreachable",
        Ok(mut child) => loop {
            match child.try_wait() {
                Ok(Some(s)) if s.success() => break "ok",
                Ok(Some(_)) => break "rejected",
                Ok(None) if t0.elapsed() > CLAUDE_TIMEOUT => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break "unreachable";
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                Err(_) => break "unreachable",
            }
        },
    };
    let latency_ms = t0.elapsed().as_millis() as u64;
    let mut details = Map::new();
    details.insert("command".into(), "claude -p".into());
    details.insert("latency_ms".into(), latency_ms.into());
    let outcome = if status == "ok" {
        Outcome::Ok
    } else {
        Outcome::Failed
    };
    finish_call(ctx, call, status, Some(outcome), Some(status), details)?;
    Ok(TestResult {
        profile: call.profile.id.to_string(),
        pool: call.pool.as_ref().map(|p| p.to_string()),
        run: call.run.clone(),
        status: status.to_string(),
        http_status: None,
        latency_ms,
    })
}
