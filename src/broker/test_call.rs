//! `craik auth test`: the family's test call through the same pipeline.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Map;

use super::{CallSpec, Started, base_url_of};
use crate::Error;
use crate::audit::Status;
use crate::context::Context;
use crate::pool::Outcome;
use crate::provider;

#[derive(Debug, Serialize)]
pub struct TestResult {
    pub profile: String,
    pub pool: Option<String>,
    pub run: String,
    /// `ok`, `rejected`, `rate_limited`, `expired`, `unreachable`.
    pub status: Status,
    pub http_status: Option<u16>,
    pub latency_ms: u64,
}

impl TestResult {
    pub fn exit_code(&self) -> i32 {
        match self.status {
            Status::Ok => crate::exit::OK,
            Status::Rejected | Status::Expired => crate::exit::CREDENTIAL_UNAVAILABLE,
            _ => crate::exit::ERROR,
        }
    }
}

pub fn test(ctx: &mut Context, spec: &CallSpec) -> crate::Result<TestResult> {
    let call = spec
        .resolve(ctx, &[])?
        .authorize(ctx, || {})?
        .start(ctx, Map::new())?;
    let Some(credential) = call.material() else {
        return delegated_test(ctx, &call);
    };
    let family = provider::info(call.profile().provider_family);
    let base = match base_url_of(call.profile()) {
        Ok(b) => b,
        Err(e) => return Err(call.abandon(ctx, e)),
    };
    let url = provider::join(&base, family.test_path);
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| Error::internal("cannot build the HTTP client", e))?;
    let mut req = client.get(&url);
    for (k, v) in family.auth_headers(credential, |_| None) {
        req = req.header(k, v);
    }
    let t0 = Instant::now();
    let resp = req.send();
    let latency_ms = t0.elapsed().as_millis() as u64;
    let (status, http_status) = match resp {
        Err(_) => (Status::Unreachable, None),
        Ok(r) => {
            let code = r.status().as_u16();
            let body = r.text().unwrap_or_default().to_ascii_lowercase();
            let s = match code {
                200..=299 => Status::Ok,
                401 | 403 if body.contains("expired") => Status::Expired,
                429 => Status::RateLimited,
                500..=599 => Status::Unreachable,
                _ => Status::Rejected,
            };
            (s, Some(code))
        }
    };
    let mut details = Map::new();
    details.insert("method".into(), "GET".into());
    details.insert("path".into(), family.test_path.into());
    details.insert("status".into(), http_status.into());
    details.insert("latency_ms".into(), latency_ms.into());
    call.finish(
        ctx,
        status,
        Some(Outcome::from_status(http_status)),
        Some(status),
        details,
    )?;
    Ok(TestResult {
        profile: call.profile().id.to_string(),
        pool: call.pool().map(|p| p.to_string()),
        run: call.run().to_string(),
        status,
        http_status,
        latency_ms,
    })
}

/// How long `claude -p` may take in `auth test`.
const CLAUDE_TIMEOUT: Duration = Duration::from_secs(60);

/// A marker profile: run the provider's CLI with a trivial prompt, with
/// every provider credential variable removed so it uses its own session.
fn delegated_test(ctx: &mut Context, call: &Started) -> crate::Result<TestResult> {
    if call.profile().provider_family != crate::profile::Family::Anthropic {
        return Err(call.abandon(
            ctx,
            Error::input(
                format!(
                    "profile {} delegates to its provider's CLI; craik tests only the Claude CLI this way",
                    call.profile().id
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
    // The provider's CLI uses its own session: no provider variable, and
    // nothing of craik's.
    let child_env = match super::child::ChildEnv::for_home(ctx) {
        Ok(e) => e,
        Err(e) => return Err(call.abandon(ctx, e)),
    };
    cmd.env_clear();
    cmd.envs(child_env.inherited());
    let t0 = Instant::now();
    let status = match cmd.spawn() {
        Err(_) => Status::Unreachable,
        Ok(mut child) => loop {
            match child.try_wait() {
                Ok(Some(s)) if s.success() => break Status::Ok,
                Ok(Some(_)) => break Status::Rejected,
                Ok(None) if t0.elapsed() > CLAUDE_TIMEOUT => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break Status::Unreachable;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                Err(_) => break Status::Unreachable,
            }
        },
    };
    let latency_ms = t0.elapsed().as_millis() as u64;
    let mut details = Map::new();
    details.insert("command".into(), "claude -p".into());
    details.insert("latency_ms".into(), latency_ms.into());
    let outcome = if status == Status::Ok {
        Outcome::Ok
    } else {
        Outcome::Failed
    };
    call.finish(ctx, status, Some(outcome), Some(status), details)?;
    Ok(TestResult {
        profile: call.profile().id.to_string(),
        pool: call.pool().map(|p| p.to_string()),
        run: call.run().to_string(),
        status,
        http_status: None,
        latency_ms,
    })
}
