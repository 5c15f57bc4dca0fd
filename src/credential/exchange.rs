//! `oidc-exchange` profiles: the workload's token traded for the
//! credential at use time (OAuth 2.0 Token Exchange, RFC 8693).
//!
//! The subject token is read again from the workload's source for each
//! exchange and checked to still name the operator of the session; it is
//! never stored. The issued token is kept in the secret store (never a
//! plain file) until 60 s before `expires_in` runs out (5 minutes when the
//! endpoint does not say), bound to the operator it was issued for: a
//! different operator's call exchanges anew. Exchanges take the profile's
//! lock and re-read the profile, so concurrent craik processes exchange
//! once. Each exchange leaves a `credential_exchanged` receipt.

use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret as _;
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::audit::{ReceiptKind, Status};
use crate::context::Context;
use crate::credential::source::SourceError;
use crate::profile::exchange::{
    META_EXCHANGED_FOR, META_REQUESTED_TYPE, META_SCOPE, of as endpoint_of,
};
use crate::profile::oauth_meta::{META_ACCESS, META_EXPIRES, META_LAST_REFRESH};
use crate::profile::{Profile, ProfileError, ProfileStore};

/// The issued token is exchanged again this close to its expiry.
pub const WINDOW_SECS: i64 = 60;
/// How long an issued token without `expires_in` is used.
pub const DEFAULT_LIFETIME_SECS: i64 = 300;
/// The longest it is used, whatever the endpoint says.
const MAX_LIFETIME_SECS: i64 = 86_400;
const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
const ID_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";

/// The workload's token, read again from its source: it must still be
/// the authorized operator's.
fn workload_token(
    ctx: &mut Context,
    operator: &crate::audit::Operator,
) -> crate::Result<secrecy::SecretString> {
    let session = crate::operator::workload::load(&ctx.home)?
        .filter(|s| s.subject == operator.subject && s.issuer == operator.issuer);
    let config = match session {
        Some(s) => s.config()?,
        None => crate::operator::workload::WorkloadConfig::from_env()?.ok_or_else(|| {
            crate::operator::OperatorError::Workload(
                "the workload's session changed since the call was authorized; run it again".into(),
            )
        })?,
    };
    let (subject_token, claims) = crate::operator::workload::verify(&ctx.home, &config)?;
    if claims.subject != operator.subject || claims.issuer != operator.issuer {
        return Err(crate::operator::OperatorError::Workload(
            "the workload's token now names another subject than the one the call was authorized for; run it again".into(),
        )
        .into());
    }
    Ok(subject_token)
}

/// A person's current ID token, kept in the secret store by `craik login`
/// (and each refresh): the session must still be the authorized
/// operator's, and not expired.
fn person_token(
    ctx: &mut Context,
    profile: &Profile,
    operator: &crate::audit::Operator,
) -> crate::Result<secrecy::SecretString> {
    let session = crate::operator::session::load(&ctx.home)?
        .filter(|s| s.subject == operator.subject && s.issuer == operator.issuer)
        .ok_or_else(|| {
            fail(
                profile,
                "the operator's session changed since the call was authorized",
                "run it again",
            )
        })?;
    if session.expired() {
        return Err(crate::operator::OperatorError::Expired(
            "the session's ID token has expired".into(),
        )
        .into());
    }
    let handle = session.id_token_handle.ok_or_else(|| {
        fail(
            profile,
            "this session keeps no ID token (it was made by an earlier craik)",
            "log in again: craik login",
        )
    })?;
    let bytes = ctx
        .secrets
        .get_for(&handle, crate::secret::purpose::OPERATOR_ID_TOKEN)?;
    let text = String::from_utf8(bytes.to_vec()).map_err(|_| {
        fail(
            profile,
            "the stored ID token is not text",
            "log in again: craik login",
        )
    })?;
    Ok(secrecy::SecretString::from(text))
}

fn fail(p: &Profile, why: impl Into<String>, hint: impl Into<String>) -> crate::Error {
    SourceError::Exchange {
        id: p.id.to_string(),
        why: why.into(),
        hint: hint.into(),
    }
    .into()
}

use super::oauth::{expires, read};

/// Whether the cached token may be used for `bound` ([`bound_to`]).
fn cached_for(p: &Profile, bound: &str) -> bool {
    p.meta(META_ACCESS).is_some()
        && p.meta(META_EXCHANGED_FOR) == Some(bound)
        && expires(p).is_some_and(|t| (t - Utc::now()).num_seconds() > WINDOW_SECS)
}

/// The endpoint's answer (RFC 8693 section 2.2.1).
#[derive(Deserialize)]
struct Issued {
    access_token: String,
    #[serde(default)]
    issued_token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<i64>,
}

/// What the cached token is bound to: a keyed hash over the workload's
/// issuer, subject, audience, source and every claim but the ones that
/// change with each token (`exp`, `iat`, `nbf`, `jti`). Two workflows
/// that share a subject but differ in a claim the exchange endpoint may
/// trust on (`job_workflow_ref`) never share a token.
fn bound_to(ctx: &Context, op: &crate::audit::Operator) -> crate::Result<String> {
    let text = match &op.workload {
        Some(w) => {
            let claims: serde_json::Map<String, serde_json::Value> = w
                .claims
                .iter()
                .filter(|(k, _)| !["exp", "iat", "nbf", "jti"].contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            serde_json::json!({
                "issuer": op.issuer, "subject": op.subject, "source": w.source, "claims": claims,
            })
        }
        // A person: their issuer and subject (and groups, which a policy
        // may have decided on).
        None => serde_json::json!({
            "issuer": op.issuer, "subject": op.subject, "groups": op.groups, "person": true,
        }),
    }
    .to_string();
    let key = crate::secret::seal::SealKey::load(&ctx.secrets)?;
    Ok(key.seal(crate::secret::seal::Domain::Workload, text.as_bytes()))
}

/// The profile's credential for `operator`, the workload the call was
/// authorized for: the cached one, or a new exchange of its token.
pub(crate) fn access_token(
    ctx: &mut Context,
    profile: &Profile,
    operator: Option<&crate::audit::Operator>,
) -> crate::Result<Zeroizing<String>> {
    let Some(operator) = operator else {
        return Err(fail(
            profile,
            "an oidc-exchange profile trades the operator's token, and nobody is logged in",
            "run it as a workload (CRAIK_WORKLOAD=github, kubernetes or file:PATH, or craik login --workload), or log in: craik login",
        ));
    };
    let bound = bound_to(ctx, operator)?;
    if cached_for(profile, &bound) {
        return read(ctx, profile);
    }
    let _lock = ctx.home.lock(&format!("oauth-{}", profile.id))?;
    let current = ProfileStore::new(&ctx.home)
        .load()?
        .get(&profile.id)
        .cloned()
        .ok_or_else(|| ProfileError::NotFound(profile.id.to_string()))?;
    // Another process exchanged while this one waited.
    if cached_for(&current, &bound) {
        return read(ctx, &current);
    }
    let (url, audience) = endpoint_of(&current).map_err(|why| {
        fail(
            &current,
            why,
            format!(
                "add it again: craik auth add {} --kind=oidc-exchange --exchange-url URL --audience A --force",
                current.id
            ),
        )
    })?;
    let (subject_token, token_type) = match &operator.workload {
        Some(_) => (workload_token(ctx, operator)?, JWT_TYPE),
        None => (person_token(ctx, profile, operator)?, ID_TOKEN_TYPE),
    };
    let mut form = vec![
        ("grant_type", GRANT_TYPE),
        ("subject_token", subject_token.expose_secret()),
        ("subject_token_type", token_type),
        ("audience", audience),
    ];
    if let Some(t) = current.meta(META_REQUESTED_TYPE) {
        form.push(("requested_token_type", t));
    }
    if let Some(s) = current.meta(META_SCOPE) {
        form.push(("scope", s));
    }
    let issued = post(&current, url, audience, &form)?;
    let lifetime = issued
        .expires_in
        .filter(|s| *s > 0)
        .unwrap_or(DEFAULT_LIFETIME_SECS)
        .min(MAX_LIFETIME_SECS);
    let expires_at = Utc::now() + chrono::Duration::seconds(lifetime);
    let token = Zeroizing::new(issued.access_token);
    store(
        ctx,
        &current,
        &token,
        expires_at,
        operator,
        &bound,
        issued.issued_token_type.as_deref(),
    )?;
    Ok(token)
}

fn post(p: &Profile, url: &str, audience: &str, form: &[(&str, &str)]) -> crate::Result<Issued> {
    let ca = std::env::var("CRAIK_OIDC_CA_FILE")
        .ok()
        .map(std::path::PathBuf::from);
    let resp = crate::operator::http_client(ca.as_deref())?
        .post(url)
        .form(form)
        .timeout(Duration::from_secs(30))
        .send()
        .map_err(|e| {
            fail(
                p,
                format!("the exchange endpoint {url} is unreachable: {e}"),
                "check --exchange-url and the network (a private CA needs CRAIK_OIDC_CA_FILE)",
            )
        })?;
    let status = resp.status();
    let body = resp.text().unwrap_or_default();
    if !status.is_success() {
        // Only the error code is shown: a description may echo the request.
        let code = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
            .filter(|c| c.len() <= 64 && c.bytes().all(|b| b.is_ascii_graphic()))
            .unwrap_or_else(|| format!("HTTP {}", status.as_u16()));
        let hint = match code.as_str() {
            "invalid_target" => format!(
                "the endpoint will not issue a token for audience {audience:?}: check --audience (and --scope) against what it serves"
            ),
            "invalid_request" => "the endpoint refused the request's form: check --requested-token-type and --scope, and that the URL is its token-exchange endpoint".into(),
            "invalid_grant" | "unauthorized_client" | "access_denied" => "the endpoint does not trust this workload's token: check its trust for the workload's issuer and subject (craik whoami)".into(),
            _ => "check the exchange endpoint's logs; craik sent the workload's token as subject_token".into(),
        };
        return Err(fail(
            p,
            format!("the exchange endpoint refused: {code}"),
            hint,
        ));
    }
    serde_json::from_str::<Issued>(&body)
        .ok()
        .filter(|i| !i.access_token.is_empty())
        .ok_or_else(|| {
            fail(
                p,
                "the exchange endpoint's answer has no access_token",
                "check --exchange-url: it must be an RFC 8693 token endpoint",
            )
        })
}

fn store(
    ctx: &mut Context,
    p: &Profile,
    token: &str,
    expires_at: DateTime<Utc>,
    operator: &crate::audit::Operator,
    bound: &str,
    issued_type: Option<&str>,
) -> crate::Result<()> {
    let handle = super::oauth::keep_access(ctx, p, token)?;
    let (url, audience) = endpoint_of(p).unwrap_or_default();
    let mut r = p
        .receipt(ReceiptKind::CredentialExchanged, Status::Ok)
        .operator(Some(operator.clone()))
        .detail("exchange_url", url)
        .detail("audience", audience)
        .detail("expires_at", expires_at.to_rfc3339());
    if let Some(t) = issued_type {
        r = r.detail("issued_token_type", t);
    }
    ctx.record(r)?;
    let home = ctx.home.clone();
    let now = Utc::now().to_rfc3339();
    ProfileStore::new(&home).update(|f| {
        if let Some(q) = f.get_mut(&p.id) {
            q.metadata.insert(META_ACCESS.into(), handle.clone());
            q.metadata
                .insert(META_EXPIRES.into(), expires_at.to_rfc3339());
            q.metadata.insert(META_LAST_REFRESH.into(), now.clone());
            q.metadata
                .insert(META_EXCHANGED_FOR.into(), bound.to_string());
        }
        Ok(())
    })
}

/// Redacted health: where it exchanges, and whether a token is cached.
pub fn health(p: &Profile) -> (bool, String) {
    match endpoint_of(p) {
        Err(why) => (false, why),
        Ok((url, audience)) => match expires(p) {
            Some(t) if t > Utc::now() && p.meta(META_ACCESS).is_some() => (
                true,
                format!(
                    "exchanges at {url} for {audience}; a token is cached until {}",
                    t.to_rfc3339()
                ),
            ),
            _ => (
                true,
                format!("exchanges the workload's token at {url} for {audience} at use"),
            ),
        },
    }
}
