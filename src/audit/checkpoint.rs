//! Signed checkpoints: (seq, hash, time) signed with an Ed25519 key kept in
//! the secret store. Keep checkpoint files away from the log (as CloudTrail
//! digest files are kept): `verify --checkpoint` then catches even a
//! truncated tail. The public key is written to `audit-signing.pub`.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{SecondsFormat, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{AuditError, AuditLog, Result};
use crate::home::Home;
use crate::secret::Secrets;

pub const SIGNING_PURPOSE: &str = "audit-signing-key";
pub const PUBLIC_KEY_FILE: &str = "audit-signing.pub";

/// A checkpoint file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a craik checkpoint (a JSON object)")]
pub struct CheckpointFile {
    pub version: u32,
    pub seq: i64,
    pub hash: String,
    pub created_at: String,
    /// Ed25519 public key, base64.
    pub public_key: String,
    /// Ed25519 signature over [`signed_message`], base64.
    pub signature: String,
}

/// A checkpoint read back and checked.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    pub seq: i64,
    pub hash: String,
    pub source: String,
    /// The key it was signed with, base64.
    pub public_key: String,
}

pub fn signed_message(seq: i64, hash: &str, created_at: &str) -> Vec<u8> {
    format!("craik-checkpoint v1\n{seq}\n{hash}\n{created_at}\n").into_bytes()
}

fn signing_key(secrets: &Secrets) -> Result<SigningKey> {
    let bytes = secrets
        .internal(
            SIGNING_PURPOSE,
            true,
            || Ok(()),
            || {
                let key = SigningKey::generate(&mut rand::rngs::OsRng);
                Zeroizing::new(key.to_bytes().to_vec())
            },
        )
        .map_err(|e| AuditError::SigningKey {
            why: e.to_string(),
            hint: e.hint(),
        })?;
    let arr: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| AuditError::SigningKey {
            why: "the stored signing key is not 32 bytes".into(),
            hint: None,
        })?;
    Ok(SigningKey::from_bytes(&arr))
}

/// Signs `message` with this home's checkpoint key (made on first use;
/// `audit-signing.pub` written beside the log): (public key, signature),
/// both base64. The team checkpoint's signer.
pub fn sign(home: &Home, secrets: &Secrets, message: &[u8]) -> Result<(String, String)> {
    let key = signing_key(secrets)?;
    let public_key = B64.encode(key.verifying_key().to_bytes());
    home.write_atomic(PUBLIC_KEY_FILE, format!("{public_key}\n").as_bytes())
        .map_err(|e| AuditError::CannotCheckpoint {
            path: home.path(PUBLIC_KEY_FILE),
            why: e.to_string(),
        })?;
    Ok((public_key, B64.encode(key.sign(message).to_bytes())))
}

/// Whether `signature` (base64) is `public_key`'s (base64) over `message`.
pub fn signature_verifies(public_key: &str, message: &[u8], signature: &str) -> bool {
    let Some(key) = parse_key(public_key) else {
        return false;
    };
    B64.decode(signature)
        .ok()
        .and_then(|b| Signature::from_slice(&b).ok())
        .is_some_and(|sig| key.verify(message, &sig).is_ok())
}

/// The automatic checkpoint, kept beside the log (not in it): a rewrite
/// of the log with recomputed hashes, or a cut tail, no longer matches it.
pub const AUTO_FILE: &str = "audit-checkpoint.json";
/// An automatic checkpoint is made after this many receipts...
pub const AUTO_EVERY: i64 = 1_000;
/// ...or when the last one is older than this, and receipts were added.
pub const AUTO_AGE: std::time::Duration = std::time::Duration::from_secs(3600);
/// How much of the log's tail an automatic checkpoint verifies first.
const AUTO_VERIFY_TAIL: i64 = 5_000;

/// Makes the automatic checkpoint ([`AUTO_FILE`]) when `seq` (the receipt
/// just appended) calls for one: none yet, [`AUTO_EVERY`] receipts since
/// the last, or the last older than [`AUTO_AGE`]. Returns whether it did.
pub fn auto(home: &Home, secrets: &Secrets, log: &AuditLog, seq: i64) -> Result<bool> {
    let path = home.path(AUTO_FILE);
    let last = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice::<CheckpointFile>(&b).ok());
    let due = match &last {
        // Gone although this home has signed before, and the log is not
        // a new one: evidence, not something to paper over with a
        // checkpoint of whatever the log says now (`verify` fails until
        // the user puts one back).
        None if seq > 1 && signed_before(home) => false,
        None => true,
        Some(cp) => {
            let old = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_none_or(|age| age > AUTO_AGE);
            seq >= cp.seq + AUTO_EVERY || (old && seq > cp.seq)
        }
    };
    if !due {
        return Ok(false);
    }
    renew_auto(home, secrets, log)?;
    Ok(true)
}

/// Writes the automatic checkpoint of the log's tail now, whenever it was
/// last made (after a prune, whose receipts an older one may name).
pub fn renew_auto(home: &Home, secrets: &Secrets, log: &AuditLog) -> Result<()> {
    let path = home.path(AUTO_FILE);
    let cp = make_checked(home, secrets, log, Some(AUTO_VERIFY_TAIL))?;
    let text = serde_json::to_string_pretty(&cp).expect("checkpoint serializes") + "\n";
    home.write_atomic(AUTO_FILE, text.as_bytes())
        .map_err(|e| AuditError::CannotCheckpoint {
            path: path.clone(),
            why: e.to_string(),
        })
}

/// Whether this home has made a checkpoint before: its public key file,
/// or its signing key in `secret-index.json`. (Not the key in the store:
/// in the OS keyrings craik's own keys are per user, shared by homes.)
/// An agent that deletes the checkpoint, the public key and the index
/// entry makes craik start afresh; an exported checkpoint is the defence
/// against that (docs/security.md).
fn signed_before(home: &Home) -> bool {
    home.path(PUBLIC_KEY_FILE).exists()
        || crate::secret::SecretIndex::load(home)
            .map(|idx| idx.secrets.values().any(|e| e.purpose == SIGNING_PURPOSE))
            .unwrap_or(true)
}

/// What [`load_auto`] found beside the log.
#[derive(Debug, Default)]
pub struct AutoCheckpoint {
    pub checkpoint: Option<Checkpoint>,
    pub warnings: Vec<String>,
    /// Gone although this home has signed before: `verify` fails with
    /// this once the chain itself has been checked.
    pub missing: Option<AuditError>,
}

/// The automatic checkpoint beside the log, for `verify`, and warnings.
/// One signed by another key than `trusted` is an error, unless
/// `key_given` (a checkpoint from elsewhere is being checked with
/// `--public-key`): then it is left out with a warning. A missing one
/// while this home has signed before is an error (it may have been
/// removed to hide a rewrite), unless `others_given` (checkpoints kept
/// elsewhere are being checked).
pub fn load_auto(
    home: &Home,
    trusted: Option<&str>,
    key_given: bool,
    others_given: bool,
) -> Result<AutoCheckpoint> {
    let path = home.path(AUTO_FILE);
    if !path.exists() {
        if signed_before(home) && !others_given {
            return Ok(AutoCheckpoint {
                missing: Some(AuditError::CheckpointMissing { path }),
                ..AutoCheckpoint::default()
            });
        }
        let warnings = others_given
            .then(|| {
                format!(
                    "there is no automatic checkpoint ({}); only the checkpoints given were checked",
                    path.display()
                )
            })
            .into_iter()
            .collect();
        return Ok(AutoCheckpoint {
            warnings,
            ..AutoCheckpoint::default()
        });
    }
    match load(&path, trusted) {
        Ok(cp) => Ok(AutoCheckpoint {
            checkpoint: Some(cp),
            ..AutoCheckpoint::default()
        }),
        Err(e) if key_given => Ok(AutoCheckpoint {
            warnings: vec![format!(
                "the automatic checkpoint {} was not checked: {e}",
                path.display()
            )],
            ..AutoCheckpoint::default()
        }),
        Err(e) => Err(e),
    }
}

/// Writes a checkpoint of the current tail; returns it and the public key.
pub fn make(home: &Home, secrets: &Secrets, log: &AuditLog) -> Result<CheckpointFile> {
    make_checked(home, secrets, log, None)
}

/// [`make`], verifying the whole log first, or its last `tail` receipts.
fn make_checked(
    home: &Home,
    secrets: &Secrets,
    log: &AuditLog,
    tail: Option<i64>,
) -> Result<CheckpointFile> {
    let (seq, hash, _) = log.tail()?.ok_or_else(|| AuditError::CannotCheckpoint {
        path: log.path().to_path_buf(),
        why: "the log is empty; there is nothing to checkpoint".into(),
    })?;
    // Never sign a damaged log, nor one whose pruned ranges' records are
    // not this key's own (one planted in audit.db with receipts deleted).
    let key = signing_key(secrets)?;
    let public_key = B64.encode(key.verifying_key().to_bytes());
    let report = match tail {
        None => log.verify(&[])?,
        Some(n) => log.verify_tail(n)?,
    };
    // Nor one that no longer holds the automatic checkpoint signed before:
    // a log rewritten with every hash recomputed verifies as a chain, and
    // a fresh checkpoint of it would wash the rewrite clean.
    let held = held_auto(home, &public_key)?;
    let damage = match report.damage {
        Some(d) => Some(d),
        None => log.checkpoints_damage(&held)?,
    };
    if let Some(d) = damage.or(log.archived_damage(&public_key)?) {
        return Err(AuditError::CannotCheckpoint {
            path: log.path().to_path_buf(),
            why: format!(
                "the log is damaged at seq {} ({}); craik will not sign it",
                d.seq, d.what
            ),
        });
    }
    let created_at = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    let sig = key.sign(&signed_message(seq, &hash, &created_at));
    home.write_atomic(PUBLIC_KEY_FILE, format!("{public_key}\n").as_bytes())
        .map_err(|e| AuditError::CannotCheckpoint {
            path: home.path(PUBLIC_KEY_FILE),
            why: e.to_string(),
        })?;
    Ok(CheckpointFile {
        version: 1,
        seq,
        hash,
        created_at,
        public_key,
        signature: B64.encode(sig.to_bytes()),
    })
}

fn parse_key(s: &str) -> Option<VerifyingKey> {
    let b = B64.decode(s.trim()).ok()?;
    VerifyingKey::from_bytes(&b.try_into().ok()?).ok()
}

/// The automatic checkpoint this home holds, checked against
/// `public_key` (the signing key's own, not `audit-signing.pub`, which
/// the agent can replace); none when there is no file. A file that does
/// not check out is an error: signing or archiving over it would hide
/// whatever it was replaced to hide.
pub fn held_auto(home: &Home, public_key: &str) -> Result<Vec<Checkpoint>> {
    let path = home.path(AUTO_FILE);
    if !path.exists() {
        return Ok(Vec::new());
    }
    Ok(vec![load(&path, Some(public_key))?])
}

/// The public key of this home's checkpoint signing key.
pub fn public_key(secrets: &Secrets) -> Result<String> {
    Ok(B64.encode(signing_key(secrets)?.verifying_key().to_bytes()))
}

/// Reads and checks a checkpoint file. The signature is checked against
/// `trusted` (the home's `audit-signing.pub`) when given; a checkpoint
/// signed by any other key is refused.
pub fn load(path: &Path, trusted: Option<&str>) -> Result<Checkpoint> {
    let bytes = std::fs::read(path).map_err(|e| AuditError::Checkpoint {
        path: PathBuf::from(path),
        why: e.to_string(),
    })?;
    parse(&bytes, path, trusted)
}

/// Checks the bytes of a checkpoint file read from `path` (named in
/// errors), as [`load`] does.
pub fn parse(bytes: &[u8], path: &Path, trusted: Option<&str>) -> Result<Checkpoint> {
    let bad = |why: String| AuditError::Checkpoint {
        path: PathBuf::from(path),
        why,
    };
    let cp: CheckpointFile =
        serde_json::from_slice(bytes).map_err(|e| bad(format!("not a checkpoint: {e}")))?;
    if cp.version != 1 {
        return Err(bad(format!("unsupported version {}", cp.version)));
    }
    let key_text = match trusted {
        Some(t) => {
            if t.trim() != cp.public_key.trim() {
                return Err(bad(
                    "signed by a key other than the trusted one (--public-key, else this home's audit-signing.pub)".into(),
                ));
            }
            t
        }
        None => cp.public_key.as_str(),
    };
    let key = parse_key(key_text).ok_or_else(|| bad("bad public key".into()))?;
    let sig = B64
        .decode(&cp.signature)
        .ok()
        .and_then(|b| Signature::from_slice(&b).ok())
        .ok_or_else(|| bad("bad signature encoding".into()))?;
    key.verify(&signed_message(cp.seq, &cp.hash, &cp.created_at), &sig)
        .map_err(|_| bad("the signature does not verify".into()))?;
    Ok(Checkpoint {
        seq: cp.seq,
        hash: cp.hash,
        source: path.display().to_string(),
        public_key: cp.public_key,
    })
}

/// The key `verify --public-key` names: base64 of an Ed25519 public key,
/// or a file holding one (a copy of `audit-signing.pub`); as base64.
pub fn trusted_key(given: &str) -> Result<String> {
    if parse_key(given).is_some() {
        return Ok(given.trim().to_string());
    }
    let text = std::fs::read_to_string(given).map_err(|e| {
        AuditError::PublicKey(format!(
            "--public-key {given:?} is neither an Ed25519 public key in base64 nor a readable file ({e})"
        ))
    })?;
    if parse_key(&text).is_none() {
        return Err(AuditError::PublicKey(format!(
            "--public-key {given:?}: the file holds no Ed25519 public key in base64"
        )));
    }
    Ok(text.trim().to_string())
}
