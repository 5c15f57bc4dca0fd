//! OAuth profiles: access tokens refreshed (OpenAI's OAuth, any OIDC
//! issuer) or minted (Google: Application Default Credentials, or a
//! service-account key through the JWT bearer grant, RFC 7523) at use time.
//!
//! Access and refresh tokens live in the secret store under separate
//! handles; the profile keeps the handles, the token endpoint, the expiry
//! and the last refresh time. Google refresh tokens are never stored:
//! craik reads the ADC file each time it mints. A refresh takes a lock per
//! profile and re-reads the profile first, so concurrent craik processes
//! refresh once, not once each.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::Error;
use crate::context::Context;
use crate::credential::source::SourceError;
use crate::profile::{Profile, ProfileError, ProfileId, ProfileStore};

pub use crate::profile::oauth_meta::*;

/// OIDC access tokens are refreshed this close to expiry.
const OIDC_WINDOW_SECS: i64 = 300;
/// Google access tokens are used until this close to expiry.
const GOOGLE_WINDOW_SECS: i64 = 120;
/// Scopes asked for Google access tokens.
pub const GOOGLE_SCOPES: &str = "https://www.googleapis.com/auth/cloud-platform https://www.googleapis.com/auth/generative-language";
const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

fn fail(id: &ProfileId, why: impl Into<String>) -> Error {
    SourceError::OAuth {
        id: id.to_string(),
        why: why.into(),
    }
    .into()
}

pub(super) fn expires(p: &Profile) -> Option<DateTime<Utc>> {
    p.meta(META_EXPIRES)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.with_timezone(&Utc))
}

fn fresh(p: &Profile, window: i64) -> bool {
    p.meta(META_ACCESS).is_some()
        && expires(p).is_some_and(|t| (t - Utc::now()).num_seconds() > window)
}

fn window(p: &Profile) -> i64 {
    if matches!(p.meta(META_SOURCE), Some("oidc" | SOURCE_AGENT)) {
        OIDC_WINDOW_SECS
    } else {
        GOOGLE_WINDOW_SECS
    }
}

/// New tokens: the access token, a rotated refresh token, the lifetime
/// in seconds.
type Fresh = (Zeroizing<String>, Option<Zeroizing<String>>, Option<u64>);

/// A token endpoint's answer.
#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    id_token: Option<String>,
}

fn http() -> crate::Result<reqwest::blocking::Client> {
    let ca = std::env::var("CRAIK_OIDC_CA_FILE").ok().map(PathBuf::from);
    Ok(crate::operator::http_client(ca.as_deref())?)
}

fn post_form(id: &ProfileId, url: &str, form: &[(&str, &str)]) -> crate::Result<TokenResponse> {
    post(id, url, form, false)
}

/// Posts `fields` to a token endpoint, as a form or as a JSON object.
fn post(
    id: &ProfileId,
    url: &str,
    fields: &[(&str, &str)],
    as_json: bool,
) -> crate::Result<TokenResponse> {
    let req = http()?.post(url);
    let req = if as_json {
        let body: serde_json::Map<String, serde_json::Value> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
            .collect();
        req.header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(serde_json::Value::Object(body).to_string())
    } else {
        req.form(fields)
    };
    let resp = req
        .timeout(Duration::from_secs(30))
        .send()
        .map_err(|e| fail(id, format!("token endpoint {url} unreachable: {e}")))?;
    let status = resp.status();
    let body = resp.text().unwrap_or_default();
    if !status.is_success() {
        let code = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
            .unwrap_or_else(|| format!("HTTP {status}"));
        return Err(fail(id, format!("the token endpoint refused: {code}")));
    }
    serde_json::from_str(&body)
        .map_err(|_| fail(id, "the token endpoint's answer has no access_token"))
}

/// The profile's current access token: refreshed or minted first when it
/// is missing or near expiry (once across processes).
pub(crate) fn access_token(
    ctx: &mut Context,
    profile: &Profile,
) -> crate::Result<Zeroizing<String>> {
    // Imported from an agent: refreshed by craik when the import recorded
    // where (a refresh token and the vendor's token endpoint); otherwise
    // used until it expires.
    let refreshable = profile.meta(META_REFRESH).is_some()
        && profile.meta(META_TOKEN_ENDPOINT).is_some()
        && expires(profile).is_some();
    if profile.meta(META_SOURCE) == Some(SOURCE_AGENT) && !refreshable {
        return match expires(profile) {
            Some(t) if t <= Utc::now() => {
                let agent = profile.meta(META_AGENT).unwrap_or("the agent");
                Err(SourceError::AgentLogin {
                    id: profile.id.to_string(),
                    agent: agent.to_string(),
                    why: format!(
                        "the {agent} login imported into it expired at {}{}",
                        t.to_rfc3339(),
                        if profile.meta(META_REFRESH).is_some() {
                            ""
                        } else {
                            " and has no refresh token"
                        }
                    ),
                }
                .into())
            }
            _ => read(ctx, profile),
        };
    }
    let w = window(profile);
    if fresh(profile, w) {
        return read(ctx, profile);
    }
    let _lock = ctx.home.lock(&format!("oauth-{}", profile.id))?;
    let current = ProfileStore::new(&ctx.home)
        .load()?
        .get(&profile.id)
        .cloned()
        .ok_or_else(|| ProfileError::NotFound(profile.id.to_string()))?;
    // Someone else refreshed while we waited for the lock: use theirs.
    if fresh(&current, w)
        || (current.meta(META_LAST_REFRESH) != profile.meta(META_LAST_REFRESH)
            && current.meta(META_ACCESS).is_some()
            && expires(&current).is_some_and(|t| t > Utc::now()))
    {
        return read(ctx, &current);
    }
    if current.meta(META_SOURCE) == Some(SOURCE_AGENT) {
        return refresh_agent(ctx, &current);
    }
    let (token, refresh, lifetime) = match current.meta(META_SOURCE) {
        Some("oidc") => refresh_oidc(ctx, &current)?,
        Some("service-account") => mint_service_account(
            &current,
            &PathBuf::from(current.meta(META_PATH).unwrap_or_default()),
        )?,
        Some("adc") => mint_adc(&current)?,
        _ => return Err(fail(&current.id, "unknown oauth_source")),
    };
    store(
        ctx,
        &current,
        &token,
        refresh.as_ref().map(|r| r.as_str()),
        expiry_after(lifetime),
        None,
    )?;
    Ok(token)
}

/// When a token given `lifetime` seconds (an hour when the endpoint does
/// not say; a day at most) expires.
fn expiry_after(lifetime: Option<u64>) -> DateTime<Utc> {
    Utc::now() + chrono::Duration::seconds(lifetime.unwrap_or(3600).min(86_400) as i64)
}

/// The access token an OAuth (or exchange) profile holds now.
pub(super) fn read(ctx: &Context, p: &Profile) -> crate::Result<Zeroizing<String>> {
    let h = p.meta(META_ACCESS).unwrap_or_default();
    let bytes = ctx
        .secrets
        .get_for(h, &crate::secret::purpose::oauth_access(&p.id.to_string()))?;
    String::from_utf8(bytes.to_vec())
        .map(Zeroizing::new)
        .map_err(|_| fail(&p.id, "the stored access token is not text"))
}

fn refresh_oidc(ctx: &Context, p: &Profile) -> crate::Result<Fresh> {
    let rh = p.meta(META_REFRESH).ok_or_else(|| {
        fail(
            &p.id,
            "the access token expired and there is no refresh token; run craik auth login again",
        )
    })?;
    let endpoint = p.meta(META_TOKEN_ENDPOINT).unwrap_or_default();
    // Where the refresh token goes is read from auth-profiles.json, which
    // any process of the user can edit: https (or loopback) only.
    crate::operator::check_issuer(endpoint)
        .map_err(|e| fail(&p.id, format!("token endpoint: {e}")))?;
    let rt = Zeroizing::new(
        String::from_utf8_lossy(&ctx.secrets.get_for(
            rh,
            &crate::secret::purpose::oauth_refresh(&p.id.to_string()),
        )?)
        .into_owned(),
    );
    let client_id = p.meta(META_CLIENT_ID).unwrap_or_default();
    let r = post_form(
        &p.id,
        endpoint,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt),
            ("client_id", client_id),
        ],
    )?;
    Ok((
        Zeroizing::new(r.access_token),
        r.refresh_token.map(Zeroizing::new),
        r.expires_in,
    ))
}

/// Refreshes a subscription login imported from an agent, as the agent's
/// own OAuth client, stores it, and writes the rotated tokens back into
/// the agent's file (see [`crate::agent::refresh`]).
fn refresh_agent(ctx: &mut Context, p: &Profile) -> crate::Result<Zeroizing<String>> {
    let agent = p.meta(META_AGENT).unwrap_or_default();
    let vendor = super::agent_login::vendor(agent)
        .ok_or_else(|| fail(&p.id, format!("craik cannot refresh a {agent:?} login")))?;
    let relogin = |why: String| -> crate::Error {
        SourceError::AgentLogin {
            id: p.id.to_string(),
            agent: agent.to_string(),
            why: format!("the {agent} login expired and could not be refreshed: {why}"),
        }
        .into()
    };
    let endpoint = p.meta(META_TOKEN_ENDPOINT).unwrap_or_default();
    // Where the refresh token goes is read from auth-profiles.json (sealed,
    // but written by any craik import): https (or loopback) only.
    crate::operator::check_issuer(endpoint)
        .map_err(|e| fail(&p.id, format!("token endpoint: {e}")))?;
    let rt = Zeroizing::new(
        String::from_utf8_lossy(&ctx.secrets.get_for(
            p.meta(META_REFRESH).unwrap_or_default(),
            &crate::secret::purpose::oauth_refresh(&p.id.to_string()),
        )?)
        .into_owned(),
    );
    let client_id = p.meta(META_CLIENT_ID).unwrap_or(vendor.client_id);
    let mut fields = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", rt.as_str()),
        ("client_id", client_id),
    ];
    if let Some(secret) = vendor.client_secret {
        fields.push(("client_secret", secret));
    }
    let r = post(&p.id, endpoint, &fields, vendor.json).map_err(|e| match e {
        crate::Error::Source(SourceError::OAuth { why, .. }) => relogin(why),
        other => other,
    })?;
    let access = Zeroizing::new(r.access_token);
    let refresh = r.refresh_token.map(Zeroizing::new);
    let id_token = r.id_token.map(Zeroizing::new);
    // OpenAI answers without expires_in: its access token is a JWT.
    let lifetime = r.expires_in.or_else(|| {
        super::agent_login::jwt_expiry(&access)
            .map(|t| (t - Utc::now()).num_seconds().max(0) as u64)
    });
    let expires_at = expiry_after(lifetime);
    // Written back first: should craik's own store fail now, the agent's
    // file still holds a live login for the next import.
    let place = p.meta(META_IMPORTED_FROM).unwrap_or_default();
    let rotated = super::agent_login::Rotated {
        access: &access,
        refresh: refresh.as_ref().map(|r| r.as_str()),
        id_token: id_token.as_ref().map(|r| r.as_str()),
        expires_at,
    };
    let written_back = match super::agent_login::write_back(agent, place, &rt, &rotated) {
        Ok(true) => serde_json::Value::from(place),
        Ok(false) => serde_json::Value::Null,
        Err(e) => serde_json::Value::from(format!("failed: {e}")),
    };
    store(
        ctx,
        p,
        &access,
        refresh.as_ref().map(|r| r.as_str()),
        expires_at,
        Some(written_back),
    )?;
    Ok(access)
}

#[derive(Deserialize)]
struct ServiceAccount {
    client_email: String,
    private_key: String,
    #[serde(default)]
    private_key_id: Option<String>,
    #[serde(default)]
    token_uri: Option<String>,
}

/// Reads a Google credential file: owner-only, a regular file.
fn read_google_file(id: &ProfileId, path: &PathBuf) -> crate::Result<serde_json::Value> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).map_err(|e| fail(id, format!("{}: {e}", path.display())))?;
    if m.mode() & 0o077 != 0 || m.uid() != crate::home::current_uid() {
        return Err(fail(
            id,
            format!(
                "{} must be yours and readable by you alone (chmod 600)",
                path.display()
            ),
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| fail(id, format!("{}: {e}", path.display())))?;
    serde_json::from_slice(&bytes).map_err(|_| {
        fail(
            id,
            format!("{} is not a Google credential file", path.display()),
        )
    })
}

fn mint_service_account(p: &Profile, path: &PathBuf) -> crate::Result<Fresh> {
    let v = read_google_file(&p.id, path)?;
    let sa: ServiceAccount = serde_json::from_value(v).map_err(|_| {
        fail(
            &p.id,
            format!("{} is not a service-account key", path.display()),
        )
    })?;
    let token_uri = sa
        .token_uri
        .clone()
        .unwrap_or_else(|| GOOGLE_TOKEN_URI.to_string());
    let now = Utc::now().timestamp();
    let claims = serde_json::json!({
        "iss": sa.client_email, "sub": sa.client_email, "aud": token_uri,
        "scope": GOOGLE_SCOPES, "iat": now, "exp": now + 3600,
    });
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = sa.private_key_id.clone();
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(sa.private_key.as_bytes()).map_err(|_| {
        fail(
            &p.id,
            "the service-account private key is not an RSA PEM key",
        )
    })?;
    let assertion = Zeroizing::new(
        jsonwebtoken::encode(&header, &claims, &key)
            .map_err(|e| fail(&p.id, format!("cannot sign the assertion: {e}")))?,
    );
    let r = post_form(
        &p.id,
        &token_uri,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", &assertion),
        ],
    )?;
    Ok((Zeroizing::new(r.access_token), None, r.expires_in))
}

fn mint_adc(p: &Profile) -> crate::Result<Fresh> {
    let path = PathBuf::from(p.meta(META_PATH).unwrap_or_default());
    let v = read_google_file(&p.id, &path)?;
    match v.get("type").and_then(|t| t.as_str()) {
        Some("service_account") => mint_service_account(p, &path),
        Some("authorized_user") => {
            let s = |k: &str| {
                v.get(k)
                    .and_then(|x| x.as_str())
                    .unwrap_or_default()
                    .to_string()
            };
            let token_uri = v
                .get("token_uri")
                .and_then(|x| x.as_str())
                .unwrap_or(GOOGLE_TOKEN_URI)
                .to_string();
            let rt = Zeroizing::new(s("refresh_token"));
            let secret = Zeroizing::new(s("client_secret"));
            let r = post_form(
                &p.id,
                &token_uri,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &rt),
                    ("client_id", &s("client_id")),
                    ("client_secret", &secret),
                ],
            )?;
            // A rotated Google refresh token is not kept: the ADC file
            // stays the source of truth.
            Ok((Zeroizing::new(r.access_token), None, r.expires_in))
        }
        _ => Err(fail(
            &p.id,
            format!(
                "{} is neither an authorized_user nor a service_account credential",
                path.display()
            ),
        )),
    }
}

/// Stores fresh tokens in place and records the refresh.
fn store(
    ctx: &mut Context,
    p: &Profile,
    access: &str,
    refresh: Option<&str>,
    expires_at: DateTime<Utc>,
    written_back: Option<serde_json::Value>,
) -> crate::Result<()> {
    let now = Utc::now();
    let access_handle = keep_access(ctx, p, access)?;
    if let (Some(rt), Some(h)) = (refresh, p.meta(META_REFRESH)) {
        ctx.secrets.replace(h, rt.as_bytes())?;
    }
    let mut receipt = p
        .receipt(
            crate::audit::ReceiptKind::CredentialRefreshed,
            crate::audit::Status::Ok,
        )
        .detail("source", p.meta(META_SOURCE).unwrap_or_default())
        .detail("expires_at", expires_at.to_rfc3339());
    if let Some(w) = written_back {
        // The agent's file the rotated login was written back to (null:
        // not a file, or no longer the login craik refreshed).
        receipt = receipt.detail("written_back", w);
    }
    ctx.record(receipt)?;
    let home = ctx.home.clone();
    ProfileStore::new(&home).update(|f| {
        if let Some(q) = f.get_mut(&p.id) {
            q.metadata.insert(META_ACCESS.into(), access_handle.clone());
            q.metadata
                .insert(META_EXPIRES.into(), expires_at.to_rfc3339());
            q.metadata
                .insert(META_LAST_REFRESH.into(), now.to_rfc3339());
        }
        Ok(())
    })
}

/// Puts `token` in the secret store as the profile's access token: in
/// place under its handle, or under a new one. Returns the handle.
pub(super) fn keep_access(ctx: &Context, p: &Profile, token: &str) -> crate::Result<String> {
    match p.meta(META_ACCESS) {
        Some(h) => {
            ctx.secrets.replace(h, token.as_bytes())?;
            Ok(h.to_string())
        }
        None => Ok(ctx.secrets.put(
            &crate::secret::purpose::oauth_access(&p.id.to_string()),
            token.as_bytes(),
        )?),
    }
}

/// Redacted health of an OAuth profile.
pub fn health(p: &Profile) -> (bool, String) {
    match p.meta(META_SOURCE) {
        Some("oidc") => match expires(p) {
            Some(t) if t > Utc::now() => {
                (true, format!("access token valid until {}", t.to_rfc3339()))
            }
            Some(t) if p.meta(META_REFRESH).is_some() => (
                true,
                format!(
                    "access token expired at {}; it will be refreshed",
                    t.to_rfc3339()
                ),
            ),
            _ => (
                false,
                "access token expired and there is no refresh token".into(),
            ),
        },
        Some("agent") => {
            let agent = p.meta(META_AGENT).unwrap_or("agent");
            match expires(p) {
                Some(t) if t > Utc::now() => (
                    true,
                    format!("{agent} login valid until {}", t.to_rfc3339()),
                ),
                Some(t) => (
                    false,
                    format!("{agent} login expired at {}; re-import it", t.to_rfc3339()),
                ),
                None => (true, format!("{agent} login (no expiry recorded)")),
            }
        }
        Some(src) => {
            let path = p.meta(META_PATH).unwrap_or_default();
            match std::fs::metadata(path) {
                Ok(_) => (true, format!("{src} credentials at {path}")),
                Err(_) => (false, format!("{src} credentials file {path} is missing")),
            }
        }
        None => (false, "no oauth_source".into()),
    }
}
