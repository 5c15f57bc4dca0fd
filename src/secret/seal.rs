//! Seals: a keyed MAC over the state craik decides by, so that a file a
//! same-user process edits by hand is detected and refused, not trusted.
//!
//! The operator session (`operator-session.json`), the profiles and their
//! grants (`auth-profiles.json`) and every approval receipt carry a seal
//! made with a per-home key of 32 random bytes kept in the secret store
//! (purpose `seal-key`, made on first use). Each use names its domain, so
//! a seal made for one kind of state never verifies another. Without the
//! key a seal cannot be made; an agent craik runs gets no way to the store
//! (its environment is scrubbed of the store's password and home), so it
//! cannot forge one.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::{Result, SecretError, Secrets};

/// Purpose under which the seal key is recorded in the secret index.
pub const SEAL_KEY_PURPOSE: &str = "seal-key";
const PREFIX: &str = "hmac-sha256:";

/// What a seal covers: one domain per kind of state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Domain {
    Session,
    Profiles,
    Approval,
    Request,
    /// `agent-config.json`: the agents' modes per scope.
    AgentConfig,
    /// `oidc-cache.json`, `workload-cache.json`: issuers' keys.
    OidcCache,
    /// `workload-session.json`.
    Workload,
    /// `team.json`.
    Team,
    /// `team-grants.json`: the last copy of the team's grants.
    TeamGrants,
}

impl Domain {
    fn label(self) -> &'static [u8] {
        match self {
            Domain::Session => b"craik-seal-session-v1",
            Domain::Profiles => b"craik-seal-profiles-v1",
            Domain::Approval => b"craik-seal-approval-v1",
            Domain::Request => b"craik-seal-approval-request-v1",
            Domain::AgentConfig => b"craik-seal-agent-config-v1",
            Domain::OidcCache => b"craik-seal-oidc-cache-v1",
            Domain::Workload => b"craik-seal-workload-session-v1",
            Domain::Team => b"craik-seal-team-config-v1",
            Domain::TeamGrants => b"craik-seal-team-grants-v1",
        }
    }
}

#[derive(Clone)]
pub struct SealKey {
    key: Zeroizing<Vec<u8>>,
}

/// Keys already read in this process, by home: a proxy re-checks its
/// profiles per change, and the store need not be asked each time.
static CACHE: Mutex<Option<HashMap<PathBuf, SealKey>>> = Mutex::new(None);

impl SealKey {
    /// The home's seal key, made on first use (while nothing is sealed).
    pub fn load(secrets: &Secrets) -> Result<SealKey> {
        SealKey::load_or(secrets, false)
    }

    /// [`SealKey::load`]; with `renew`, a missing key is made anew even
    /// though sealed files exist (`craik auth reseal`, which seals the
    /// profiles again; a session must log in again).
    pub fn load_or(secrets: &Secrets, renew: bool) -> Result<SealKey> {
        let home = secrets.home().root().to_path_buf();
        if let Some(k) = CACHE
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .and_then(|m| m.get(&home))
        {
            return Ok(k.clone());
        }
        let home_dir = secrets.home().clone();
        let may_create = move || -> std::result::Result<(), String> {
            if renew {
                return Ok(());
            }
            // A sealed file without its key: a new key would make it (and
            // whatever an edit put in it) sealed anew, so never silently.
            let sealed = |name: &str| {
                home_dir
                    .read(name)
                    .ok()
                    .flatten()
                    .is_some_and(|b| String::from_utf8_lossy(&b).contains("\"seal\""))
            };
            match [
                "auth-profiles.json",
                "operator-session.json",
                "workload-session.json",
            ]
            .into_iter()
            .find(|n| sealed(n))
            {
                Some(n) => Err(format!("{n} was sealed with it")),
                None => Ok(()),
            }
        };
        let key = secrets.internal(SEAL_KEY_PURPOSE, false, may_create, || {
            let mut k = Zeroizing::new(vec![0u8; 32]);
            rand::rngs::OsRng.fill_bytes(&mut k);
            k
        })?;
        if key.len() != 32 {
            return Err(SecretError::Corrupt {
                path: secrets.home().path(super::INDEX_FILE),
                detail: "the stored seal key is not 32 bytes".into(),
            });
        }
        let k = SealKey { key };
        CACHE
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(HashMap::new)
            .insert(home, k.clone());
        Ok(k)
    }

    /// A key from raw bytes (tests).
    pub fn from_bytes(bytes: [u8; 32]) -> SealKey {
        SealKey {
            key: Zeroizing::new(bytes.to_vec()),
        }
    }

    fn mac(&self, domain: Domain, bytes: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("any key length");
        mac.update(domain.label());
        mac.update(&[0]);
        mac.update(bytes);
        mac
    }

    /// The seal of `bytes` in `domain`: `hmac-sha256:<64 hex>`.
    pub fn seal(&self, domain: Domain, bytes: &[u8]) -> String {
        format!(
            "{PREFIX}{}",
            hex::encode(self.mac(domain, bytes).finalize().into_bytes())
        )
    }

    /// Whether `seal` is the seal of `bytes` in `domain` (compared in
    /// constant time).
    pub fn verify(&self, domain: Domain, bytes: &[u8], seal: &str) -> bool {
        let Some(hexed) = seal.strip_prefix(PREFIX) else {
            return false;
        };
        let Ok(tag) = hex::decode(hexed) else {
            return false;
        };
        self.mac(domain, bytes).verify_slice(&tag).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_verify_only_their_bytes_domain_and_key() {
        let k = SealKey::from_bytes([1; 32]);
        let s = k.seal(Domain::Session, b"alice");
        assert!(s.starts_with(PREFIX) && s.len() == PREFIX.len() + 64);
        assert!(k.verify(Domain::Session, b"alice", &s));
        assert!(!k.verify(Domain::Session, b"alicf", &s));
        assert!(!k.verify(Domain::Profiles, b"alice", &s));
        assert!(!SealKey::from_bytes([2; 32]).verify(Domain::Session, b"alice", &s));
        for bad in [
            "",
            "hmac-sha256:",
            "hmac-sha256:zz",
            &s[..s.len() - 2],
            "sha256:00",
        ] {
            assert!(!k.verify(Domain::Session, b"alice", bad), "{bad:?}");
        }
    }
}
