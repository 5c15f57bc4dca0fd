//! `stigmem-ref` profiles: the credential is read from a stigmem node at
//! each use, never cached, so a value revoked at the node is refused at
//! the next call.
//!
//! What craik sends: `GET {node_url}/v1/facts?entity=E&relation=R&scope=S`
//! with `Accept: application/json` and, when the profile has an API key,
//! `Authorization: Bearer <key>`; no redirect is followed, the answer is
//! read up to 1 MiB within the profile's timeout (default 5 s). What it
//! takes: `{"value": "<credential>", "revoked": false}`. `"revoked": true`
//! or HTTP 410 is a revoked value; 404, no such fact; 401/403, the API key
//! was refused. Each is exit 7 with a hint, and the node's text is never
//! shown (it may echo what it holds).

use std::io::Read as _;
use std::time::Duration;

use zeroize::Zeroizing;

use crate::profile::Profile;
use crate::profile::stigmem::{Fact, of};

const MAX_ANSWER: u64 = 1024 * 1024;

/// Why no value was read: what happened and what to do.
#[derive(Debug)]
pub struct Refusal {
    pub why: String,
    pub hint: String,
}

fn fail(_p: &Profile, why: impl Into<String>, hint: impl Into<String>) -> Refusal {
    Refusal {
        why: why.into(),
        hint: hint.into(),
    }
}

/// The fact's value, read now, with the node's API key when the profile
/// has one (the caller reads it from the secret store).
pub(crate) fn material(p: &Profile, key: Option<&[u8]>) -> Result<Zeroizing<String>, Refusal> {
    let fact = of(p).map_err(|why| {
        fail(
            p,
            why,
            format!(
                "add it again: craik auth add {} --kind=stigmem-ref --node URL --entity E --force",
                p.id
            ),
        )
    })?;
    fetch(p, &fact, key)
}

fn fetch(p: &Profile, fact: &Fact<'_>, key: Option<&[u8]>) -> Result<Zeroizing<String>, Refusal> {
    let mut url = url::Url::parse(fact.node)
        .map_err(|_| fail(p, "node_url is not a URL", "check the profile's --node"))?;
    url.path_segments_mut()
        .map_err(|_| {
            fail(
                p,
                "node_url cannot take a path",
                "check the profile's --node",
            )
        })?
        .pop_if_empty()
        .extend(["v1", "facts"]);
    url.query_pairs_mut()
        .append_pair("entity", fact.entity)
        .append_pair("relation", fact.relation)
        .append_pair("scope", fact.scope);
    let timeout = Duration::from_millis(fact.timeout_ms);
    let http = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("craik/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| {
            fail(
                p,
                format!("cannot build an HTTP client: {e}"),
                "report this",
            )
        })?;
    let mut req = http.get(url).header("Accept", "application/json");
    if let Some(k) = key {
        let k = std::str::from_utf8(k).map_err(|_| {
            fail(
                p,
                "the stored API key is not text",
                "store it again with --stdin",
            )
        })?;
        req = req.bearer_auth(k);
    }
    let node = fact.node;
    let resp = req.send().map_err(|e| {
        let why = if e.is_timeout() {
            format!(
                "the node {node} did not answer within {} ms",
                fact.timeout_ms
            )
        } else {
            format!("the node {node} is unreachable")
        };
        fail(
            p,
            why,
            "check --node and that the node runs (--timeout gives it longer)",
        )
    })?;
    let status = resp.status().as_u16();
    let mut body = Vec::new();
    resp.take(MAX_ANSWER + 1)
        .read_to_end(&mut body)
        .map_err(|_| {
            fail(
                p,
                format!("the node {node}'s answer could not be read"),
                "try again",
            )
        })?;
    let body = Zeroizing::new(body);
    let who = format!(
        "{} of {} in scope {}",
        fact.relation, fact.entity, fact.scope
    );
    match status {
        200 => {}
        410 => return Err(revoked(p, &who)),
        404 => {
            return Err(fail(
                p,
                format!("the node holds no {who}"),
                "check --entity, --relation and --scope against the node",
            ));
        }
        401 | 403 => {
            return Err(fail(
                p,
                format!("the node refused craik's API key (HTTP {status})"),
                format!(
                    "store the node's API key again: craik auth add {} --kind=stigmem-ref ... --stdin --force",
                    p.id
                ),
            ));
        }
        s => {
            return Err(fail(
                p,
                format!("the node answered HTTP {s}"),
                "check the node's logs",
            ));
        }
    }
    if body.len() as u64 > MAX_ANSWER {
        return Err(fail(
            p,
            "the node's answer is larger than 1 MiB",
            "check --node",
        ));
    }
    let v: serde_json::Value = serde_json::from_slice(&body).map_err(|_| {
        fail(
            p,
            "the node's answer is not JSON",
            "check --node: it must be a stigmem node",
        )
    })?;
    if v.get("revoked").and_then(serde_json::Value::as_bool) == Some(true) {
        return Err(revoked(p, &who));
    }
    match v.get("value").and_then(serde_json::Value::as_str) {
        Some(s) if !s.trim().is_empty() => Ok(Zeroizing::new(s.trim().to_string())),
        _ => Err(fail(
            p,
            format!("the node's answer for {who} has no value"),
            "check --relation: the fact must hold the credential as a string",
        )),
    }
}

fn revoked(p: &Profile, who: &str) -> Refusal {
    fail(
        p,
        format!("the node says {who} was revoked"),
        "a revoked credential is never used; ask whoever keeps it for a new one",
    )
}

/// Redacted health: where it reads, without reading (a read is a use).
pub fn health(p: &Profile) -> (bool, String) {
    match of(p) {
        Ok(f) => (
            true,
            format!(
                "reads {} of {} ({}) from {} at use",
                f.relation, f.entity, f.scope, f.node
            ),
        ),
        Err(why) => (false, why),
    }
}
