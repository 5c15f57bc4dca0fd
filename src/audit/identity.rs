//! Keyed identity hashes: `hmac-sha256:<64 hex>`.
//!
//! The key is 32 random bytes made on first use and kept in the secret
//! store, or supplied by `CRAIK_AUDIT_KEY` (a secret reference, `env:` or
//! `file:`, holding 64 hex digits or base64 of 32 bytes) so that several
//! machines hash alike. Without the key a hash cannot be reversed or even
//! confirmed by guessing; with it, an auditor can compute the hash of a
//! known key or person (`craik receipts hash`) and find their receipts.

use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::{AuditError, Result};
use crate::secret::Secrets;
use crate::secret::reference::SecretRef;

/// Purpose under which the audit key is recorded in the secret index.
pub const AUDIT_KEY_PURPOSE: &str = "audit-key";
/// The home's own audit key, kept when it adopts a team's.
pub const PREVIOUS_KEY_PURPOSE: &str = "audit-key-before-team";

pub struct AuditKey {
    key: Zeroizing<Vec<u8>>,
}

fn decode_key(raw: &str) -> Option<Zeroizing<Vec<u8>>> {
    let raw = raw.trim();
    if raw.len() == 64
        && let Ok(k) = hex::decode(raw)
    {
        return Some(Zeroizing::new(k));
    }
    base64::engine::general_purpose::STANDARD
        .decode(raw)
        .ok()
        .filter(|k| k.len() == 32)
        .map(Zeroizing::new)
}

impl AuditKey {
    /// From `CRAIK_AUDIT_KEY` if set, else the secret store (created on
    /// first use).
    pub fn load(secrets: &Secrets) -> Result<AuditKey> {
        if let Some(r) = std::env::var("CRAIK_AUDIT_KEY")
            .ok()
            .filter(|s| !s.is_empty())
        {
            let r = SecretRef::parse(&r)
                .map_err(|e| AuditError::key(format!("CRAIK_AUDIT_KEY: {e}")))?;
            let raw = r
                .resolve()
                .map_err(|e| AuditError::key(format!("CRAIK_AUDIT_KEY: {e}")))?;
            let key = decode_key(&raw).ok_or_else(|| {
                AuditError::key("CRAIK_AUDIT_KEY must hold 32 bytes as 64 hex digits or base64")
            })?;
            return Ok(AuditKey { key });
        }
        let key = secrets
            .internal(
                AUDIT_KEY_PURPOSE,
                true,
                || Ok(()),
                || {
                    let mut k = Zeroizing::new(vec![0u8; 32]);
                    rand::rngs::OsRng.fill_bytes(&mut k);
                    k
                },
            )
            .map_err(AuditError::key_from_store)?;
        if key.len() != 32 {
            return Err(AuditError::key("the stored audit key is not 32 bytes"));
        }
        Ok(AuditKey { key })
    }

    /// A key from its text (64 hex digits or base64 of 32 bytes).
    pub fn parse(raw: &str) -> Result<AuditKey> {
        let key = decode_key(raw).ok_or_else(|| {
            AuditError::key("an audit key holds 32 bytes as 64 hex digits or base64")
        })?;
        Ok(AuditKey { key })
    }

    /// Makes `raw` (64 hex digits or base64 of 32 bytes, as
    /// `CRAIK_AUDIT_KEY` takes) this home's audit key: a team's shared
    /// key, so that every home hashes alike. Receipts written before keep
    /// the hashes of the old key.
    pub fn adopt(secrets: &Secrets, raw: &str) -> Result<AuditKey> {
        let k = AuditKey::parse(raw)?;
        // The home's own key is kept (once) beside it: the hashes of the
        // receipts written before stay computable.
        let own = AuditKey::load(secrets)?;
        if own.key != k.key {
            secrets
                .internal(PREVIOUS_KEY_PURPOSE, false, || Ok(()), || own.key.clone())
                .map_err(AuditError::key_from_store)?;
        }
        secrets
            .replace_internal(AUDIT_KEY_PURPOSE, &k.key)
            .map_err(AuditError::key_from_store)?;
        Ok(k)
    }

    /// A keyed value the team store keeps to tell whether a home hashes
    /// with the team's key: it says nothing of the key itself.
    pub fn team_check(&self) -> String {
        self.mac(&[b"craik-team-audit-key-check"])
    }

    /// A key from raw bytes (tests, benchmarks).
    pub fn from_bytes(bytes: [u8; 32]) -> AuditKey {
        AuditKey {
            key: Zeroizing::new(bytes.to_vec()),
        }
    }

    fn mac(&self, parts: &[&[u8]]) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("any key length");
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                mac.update(&[0]);
            }
            mac.update(&(p.len() as u64).to_le_bytes());
            mac.update(p);
        }
        let mut out = String::with_capacity(12 + 64);
        out.push_str("hmac-sha256:");
        out.push_str(&super::chain::hex32(&mac.finalize().into_bytes().into()));
        out
    }

    /// The identity of a credential from its material: the same key under
    /// two profile names hashes the same.
    pub fn credential_material(&self, family: &str, material: &str) -> String {
        self.mac(&[
            b"craik-credential-material",
            family.as_bytes(),
            material.as_bytes(),
        ])
    }

    /// The identity of a credential from its account identifier, when the
    /// provider tells us one.
    pub fn credential_account(&self, family: &str, account: &str) -> String {
        self.mac(&[
            b"craik-credential-account",
            family.as_bytes(),
            account.as_bytes(),
        ])
    }

    /// The identity of a credential that has no stable material (an OAuth
    /// token that rotates, a marker): how the profile names it.
    pub fn credential_profile(&self, family: &str, fingerprint: &str) -> String {
        self.mac(&[
            b"craik-credential-profile",
            family.as_bytes(),
            fingerprint.as_bytes(),
        ])
    }

    /// The identity of an operator: issuer and subject.
    pub fn operator(&self, issuer: &str, subject: &str) -> String {
        self.mac(&[b"craik-operator", issuer.as_bytes(), subject.as_bytes()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes() {
        let k = AuditKey::from_bytes([7; 32]);
        let a = k.credential_material("openai", "sk-1");
        assert!(a.starts_with("hmac-sha256:") && a.len() == 12 + 64);
        assert_eq!(a, k.credential_material("openai", "sk-1"));
        assert_ne!(a, k.credential_material("openai", "sk-2"));
        assert_ne!(a, k.credential_material("anthropic", "sk-1"));
        assert_ne!(k.operator("a", "bc"), k.operator("ab", "c"));
        let other = AuditKey::from_bytes([8; 32]);
        assert_ne!(a, other.credential_material("openai", "sk-1"));
        assert_eq!(decode_key(&"ab".repeat(32)).unwrap().len(), 32);
        assert!(decode_key("short").is_none());
    }

    #[test]
    fn internal_keys_are_the_ones_the_store_keeps_apart() {
        for p in [
            AUDIT_KEY_PURPOSE,
            crate::audit::checkpoint::SIGNING_PURPOSE,
            crate::secret::seal::SEAL_KEY_PURPOSE,
        ] {
            assert!(crate::secret::purpose::INTERNAL.contains(&p), "{p}");
        }
    }
}
