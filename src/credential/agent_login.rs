//! Subscription logins imported from agents (`craik agent import`),
//! refreshed by craik.
//!
//! An agent run through craik's proxy holds only a placeholder for its
//! login, so it cannot refresh it: craik does, at the agent vendor's token
//! endpoint as the agent's own OAuth client (the client ids below are the
//! public ones the agents ship with). Vendors rotate refresh tokens, so
//! after a refresh the new tokens are written back into the file the
//! login was imported from, when that file still holds the refresh token
//! craik used: the agent used outside craik, and the next `sync` import,
//! then find a live login rather than a dead one.

use std::io::Read;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use zeroize::Zeroizing;

/// How an agent's vendor refreshes its logins.
#[derive(Debug, Clone, Copy)]
pub struct Vendor {
    pub token_url: &'static str,
    pub client_id: &'static str,
    /// Google's installed-app flow has a client secret that is not secret
    /// (Gemini CLI publishes it in its source).
    pub client_secret: Option<&'static str>,
    /// A JSON body (Anthropic, OpenAI) rather than a form (Google).
    pub json: bool,
}

/// The vendor of an agent (by name) that keeps a subscription login.
pub fn vendor(agent: &str) -> Option<Vendor> {
    match agent {
        "claude" => Some(Vendor {
            token_url: "https://platform.claude.com/v1/oauth/token",
            client_id: "9d1c250a-e61b-44d9-88ed-5944d1962f5e",
            client_secret: None,
            json: true,
        }),
        "codex" => Some(Vendor {
            token_url: "https://auth.openai.com/oauth/token",
            client_id: "app_EMoamEEZ73f0CkXaXp7hrann",
            client_secret: None,
            json: true,
        }),
        "gemini" => Some(Vendor {
            token_url: "https://oauth2.googleapis.com/token",
            client_id: "681255809395-oo8ft2oprdrnp9e3aqf6av3hmdib135j.apps.googleusercontent.com",
            client_secret: Some("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"),
            json: false,
        }),
        _ => None,
    }
}

/// When a JWT-shaped access token (OpenAI's) expires, from its `exp`.
pub fn jwt_expiry(token: &str) -> Option<DateTime<Utc>> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let exp = serde_json::from_slice::<Value>(&bytes)
        .ok()?
        .get("exp")?
        .as_i64()?;
    DateTime::from_timestamp(exp, 0)
}

/// Reads the agent's file: a regular file of the user's, not through a
/// symbolic link; `None` when it is anything else.
fn read_own(path: &Path) -> Option<Zeroizing<Vec<u8>>> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
        .ok()?;
    let m = f.metadata().ok()?;
    if !m.is_file() || m.uid() != crate::home::current_uid() {
        return None;
    }
    let mut buf = Zeroizing::new(Vec::new());
    f.read_to_end(&mut buf).ok()?;
    Some(buf)
}

/// Why a write-back failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the refreshed login back to {path}: {why}")]
pub struct WriteBackError {
    path: String,
    why: String,
}

/// What a refresh returned.
pub struct Rotated<'a> {
    pub access: &'a str,
    pub refresh: Option<&'a str>,
    pub id_token: Option<&'a str>,
    pub expires_at: DateTime<Utc>,
}

/// Writes rotated tokens back into the agent's own file at `place`, when
/// it is a file (not a variable or the Keychain), still a regular file of
/// the user's, and still holds `used` as its refresh token. Returns
/// whether it wrote.
pub fn write_back(
    agent: &str,
    place: &str,
    used: &str,
    new: &Rotated,
) -> Result<bool, WriteBackError> {
    let path = Path::new(place);
    if !path.is_absolute() {
        return Ok(false);
    }
    let Some(bytes) = read_own(path) else {
        return Ok(false);
    };
    let Ok(mut v) = serde_json::from_slice::<Value>(&bytes) else {
        return Ok(false);
    };
    let ms = new.expires_at.timestamp_millis();
    let holds = |o: &Value, key: &str| o.get(key).and_then(Value::as_str) == Some(used);
    let set = |o: &mut Value, key: &str, val: Option<&str>| {
        if let (Some(val), Some(m)) = (val, o.as_object_mut()) {
            m.insert(key.into(), json!(val));
        }
    };
    match agent {
        "claude" => {
            let Some(o) = v
                .get_mut("claudeAiOauth")
                .filter(|o| holds(o, "refreshToken"))
            else {
                return Ok(false);
            };
            set(o, "accessToken", Some(new.access));
            set(o, "refreshToken", new.refresh);
            o["expiresAt"] = json!(ms);
        }
        "codex" => {
            let Some(t) = v.get_mut("tokens").filter(|t| holds(t, "refresh_token")) else {
                return Ok(false);
            };
            set(t, "access_token", Some(new.access));
            set(t, "refresh_token", new.refresh);
            set(t, "id_token", new.id_token);
            v["last_refresh"] = json!(Utc::now().to_rfc3339());
        }
        "gemini" => {
            if !holds(&v, "refresh_token") {
                return Ok(false);
            }
            set(&mut v, "access_token", Some(new.access));
            set(&mut v, "refresh_token", new.refresh);
            set(&mut v, "id_token", new.id_token);
            v["expiry_date"] = json!(ms);
        }
        _ => return Ok(false),
    }
    let out = Zeroizing::new(serde_json::to_vec_pretty(&v).unwrap_or_default());
    crate::home::write_atomic_path(path, &out).map_err(|e| WriteBackError {
        path: place.into(),
        why: e.to_string(),
    })?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_back_only_over_the_refresh_token_it_used() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("auth.json");
        let new = Rotated {
            access: "a2",
            refresh: Some("r2"),
            id_token: None,
            expires_at: Utc::now(),
        };
        std::fs::write(
            &p,
            r#"{"tokens":{"access_token":"a1","refresh_token":"r1"},"x":1}"#,
        )
        .unwrap();
        let place = p.display().to_string();
        assert!(!write_back("codex", &place, "other", &new).unwrap());
        assert!(write_back("codex", &place, "r1", &new).unwrap());
        let v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        assert_eq!(v["tokens"]["refresh_token"], "r2");
        assert_eq!(v["x"], 1);
        assert!(!write_back("codex", "$CODEX_HOME", "r1", &new).unwrap());
        assert!(jwt_expiry("a.eyJleHAiOjE5MDAwMDAwMDB9.c").is_some());
        assert!(jwt_expiry("not a jwt").is_none());
    }
}
