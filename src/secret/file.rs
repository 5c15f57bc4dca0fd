//! The encrypted-file backend, `secrets.enc`.
//!
//! Format (version 1):
//! ```text
//! craik-secrets v1\n
//! {"kdf":"argon2id","m_cost":..,"t_cost":..,"p_cost":..,"salt":"..","check":"..","nonce":".."}\n
//! <XChaCha20-Poly1305 ciphertext of {"secrets":{"<handle>":"<base64>"}}>
//! ```
//! The key is argon2id(password, salt). The two header lines are the AEAD's
//! associated data, so any change to them fails authentication. `check` is
//! HMAC-SHA256(key, "craik-secrets password check"), truncated to 16 bytes:
//! it tells a wrong password apart from a damaged file without revealing
//! anything about the password beyond what the ciphertext already does.
//!
//! Every change is a read-modify-write under the home's lock, written
//! atomically, with a fresh random nonce.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use super::{Backend, Result, SecretError, SecretStore};
use crate::home::Home;

pub const SECRETS_FILE: &str = "secrets.enc";
const MAGIC: &[u8] = b"craik-secrets v1\n";
/// argon2id parameters for new files (OWASP's recommended minimum is
/// 19 MiB, t=2; we use more memory).
const M_COST: u32 = 64 * 1024;
const T_COST: u32 = 2;
const P_COST: u32 = 1;
/// Largest parameters accepted from a file (a tampered header must not make
/// craik allocate without bound).
const MAX_M_COST: u32 = 1024 * 1024;
const MAX_T_COST: u32 = 16;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    kdf: String,
    m_cost: u32,
    t_cost: u32,
    p_cost: u32,
    salt: String,
    check: String,
    nonce: String,
}

#[derive(Default, Serialize, Deserialize)]
struct Plain {
    secrets: BTreeMap<String, String>,
}

impl Drop for Plain {
    fn drop(&mut self) {
        for v in self.secrets.values_mut() {
            v.zeroize();
        }
    }
}

/// Process-wide cache of the password and of the last derived key, so a
/// process derives once per salt.
struct KeyCache {
    password: Option<Zeroizing<String>>,
    derived: Option<Derived>,
}

/// A derived key and the salt and parameters it was derived with.
type Derived = (Vec<u8>, u32, u32, u32, Zeroizing<[u8; 32]>);

static CACHE: Mutex<KeyCache> = Mutex::new(KeyCache {
    password: None,
    derived: None,
});

fn password(confirm: bool) -> Result<Zeroizing<String>> {
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = &cache.password {
        return Ok(p.clone());
    }
    let p = if let Ok(p) = std::env::var("CRAIK_KEYRING_PASSWORD") {
        Zeroizing::new(p)
    } else if std::io::stdin().is_terminal() || std::io::stderr().is_terminal() {
        let p = Zeroizing::new(
            rpassword::prompt_password("craik secret store password: ")
                .map_err(|_| SecretError::NoPassword)?,
        );
        if confirm {
            let again = Zeroizing::new(
                rpassword::prompt_password("repeat the password: ")
                    .map_err(|_| SecretError::NoPassword)?,
            );
            if again != p {
                return Err(SecretError::PasswordMismatch);
            }
        }
        p
    } else {
        return Err(SecretError::NoPassword);
    };
    if p.is_empty() {
        return Err(SecretError::NoPassword);
    }
    cache.password = Some(p.clone());
    Ok(p)
}

fn derive(password: &str, salt: &[u8], m: u32, t: u32, p: u32) -> Result<Zeroizing<[u8; 32]>> {
    {
        let cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((s, cm, ct, cp, key)) = &cache.derived
            && s == salt
            && (*cm, *ct, *cp) == (m, t, p)
        {
            return Ok(key.clone());
        }
    }
    let params = argon2::Params::new(m, t, p, Some(32)).map_err(|e| SecretError::Corrupt {
        path: SECRETS_FILE.into(),
        detail: format!("bad KDF parameters: {e}"),
    })?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut key = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(password.as_bytes(), salt, key.as_mut())
        .map_err(|e| SecretError::Corrupt {
            path: SECRETS_FILE.into(),
            detail: format!("key derivation failed: {e}"),
        })?;
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    cache.derived = Some((salt.to_vec(), m, t, p, key.clone()));
    Ok(key)
}

fn check_value(key: &[u8; 32]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
    mac.update(b"craik-secrets password check");
    mac.finalize().into_bytes()[..16].to_vec()
}

/// The encrypted-file secret store of a home.
pub struct FileStore {
    home: Home,
}

impl FileStore {
    pub fn new(home: Home) -> FileStore {
        FileStore { home }
    }

    fn corrupt(&self, detail: impl Into<String>) -> SecretError {
        SecretError::Corrupt {
            path: self.home.path(SECRETS_FILE),
            detail: detail.into(),
        }
    }

    /// Decrypts the file. `None` when it does not exist.
    fn load(&self) -> Result<Option<(Header, Plain)>> {
        let Some(bytes) = self.home.read(SECRETS_FILE)? else {
            return Ok(None);
        };
        let rest = bytes
            .strip_prefix(MAGIC)
            .ok_or_else(|| self.corrupt("not a craik secret store (bad magic line)"))?;
        let nl = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| self.corrupt("truncated header"))?;
        let header_line = &rest[..nl];
        let ciphertext = &rest[nl + 1..];
        let aad = &bytes[..MAGIC.len() + nl + 1];
        let header: Header = serde_json::from_slice(header_line)
            .map_err(|e| self.corrupt(format!("bad header: {e}")))?;
        if header.kdf != "argon2id"
            || header.m_cost > MAX_M_COST
            || header.t_cost > MAX_T_COST
            || header.p_cost == 0
            || header.p_cost > 16
        {
            return Err(self.corrupt("unsupported KDF parameters in header"));
        }
        let b64 = |s: &str, what: &str| {
            B64.decode(s)
                .map_err(|_| self.corrupt(format!("bad {what} in header")))
        };
        let salt = b64(&header.salt, "salt")?;
        let check = b64(&header.check, "check")?;
        let nonce = b64(&header.nonce, "nonce")?;
        if nonce.len() != 24 || salt.len() < 16 {
            return Err(self.corrupt("bad nonce or salt length"));
        }
        let key = match self.unlocked_key(&salt, &header, &check) {
            Some(k) => k,
            None => {
                let pw = password(false)?;
                derive(&pw, &salt, header.m_cost, header.t_cost, header.p_cost)?
            }
        };
        if check_value(&key) != check {
            return Err(SecretError::WrongPassword {
                path: self.home.path(SECRETS_FILE),
                from_env: std::env::var_os("CRAIK_KEYRING_PASSWORD").is_some(),
            });
        }
        let cipher = XChaCha20Poly1305::new(key.as_ref().into());
        let plain = Zeroizing::new(
            cipher
                .decrypt(
                    XNonce::from_slice(&nonce),
                    Payload {
                        msg: ciphertext,
                        aad,
                    },
                )
                .map_err(|_| SecretError::Integrity {
                    path: self.home.path(SECRETS_FILE),
                })?,
        );
        let plain: Plain = serde_json::from_slice(&plain)
            .map_err(|_| self.corrupt("decrypted contents are not valid"))?;
        Ok(Some((header, plain)))
    }

    /// Encrypts `plain` over the file. With the key `craik unlock` keeps,
    /// under the same salt; with the password, under a new salt (and the
    /// current KDF parameters), so that a key copied while the store was
    /// unlocked opens no version written with the password since.
    fn save(&self, old: Option<&Header>, plain: &Plain, rekey: bool) -> Result<()> {
        let unlocked = old.filter(|_| !rekey).and_then(|h| {
            let salt = B64.decode(&h.salt).ok()?;
            let check = B64.decode(&h.check).ok()?;
            Some((salt.clone(), h, self.unlocked_key(&salt, h, &check)?))
        });
        let (salt, m, t, p, key) = match unlocked {
            Some((salt, h, key)) => (salt, h.m_cost, h.t_cost, h.p_cost, key),
            None => {
                let password = password(old.is_none())?;
                // The password must be the store's own: a wrong one (a
                // stale variable, a typo, the kept key having expired since
                // the file was opened) would re-encrypt everything under it.
                if let Some(h) = old {
                    self.check_password(&password, h)?;
                }
                let mut salt = vec![0u8; 16];
                rand::rngs::OsRng.fill_bytes(&mut salt);
                let key = derive(&password, &salt, M_COST, T_COST, P_COST)?;
                (salt, M_COST, T_COST, P_COST, key)
            }
        };
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let header = Header {
            kdf: "argon2id".into(),
            m_cost: m,
            t_cost: t,
            p_cost: p,
            salt: B64.encode(&salt),
            check: B64.encode(check_value(&key)),
            nonce: B64.encode(nonce),
        };
        let mut out = MAGIC.to_vec();
        out.extend(serde_json::to_vec(&header).expect("header serializes"));
        out.push(b'\n');
        let aad = out.clone();
        let msg = Zeroizing::new(serde_json::to_vec(plain).expect("secrets serialize"));
        let cipher = XChaCha20Poly1305::new(key.as_ref().into());
        let ct = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &msg,
                    aad: &aad,
                },
            )
            .map_err(|_| self.corrupt("encryption failed"))?;
        out.extend(ct);
        self.home.write_atomic(SECRETS_FILE, &out)?;
        Ok(())
    }

    /// The key `password` derives under `h`'s salt, when it is the one
    /// `h` was written with.
    fn check_password(&self, password: &str, h: &Header) -> Result<Zeroizing<[u8; 32]>> {
        let salt = B64.decode(&h.salt).map_err(|_| self.corrupt("bad salt"))?;
        let key = derive(password, &salt, h.m_cost, h.t_cost, h.p_cost)?;
        if B64.encode(check_value(&key)) != h.check {
            return Err(SecretError::WrongPassword {
                path: self.home.path(SECRETS_FILE),
                from_env: std::env::var_os("CRAIK_KEYRING_PASSWORD").is_some(),
            });
        }
        Ok(key)
    }

    /// Writes the file again under a new salt, with the password (never
    /// with a kept key); returns the new key.
    fn rekey(&self) -> Result<Zeroizing<[u8; 32]>> {
        let _lock = self.home.lock(SECRETS_FILE)?;
        let (header, plain) = self
            .load()?
            .ok_or_else(|| self.corrupt("the store vanished while it was re-keyed"))?;
        self.save(Some(&header), &plain, true)?;
        let bytes = self.home.read(SECRETS_FILE)?.unwrap_or_default();
        let header = self.header(&bytes)?;
        self.check_password(&password(false)?, &header)
    }

    fn modify(&self, f: impl FnOnce(&mut Plain) -> bool) -> Result<bool> {
        let _lock = self.home.lock(SECRETS_FILE)?;
        let (header, mut plain) = match self.load()? {
            Some((h, p)) => (Some(h), p),
            None => (None, Plain::default()),
        };
        let changed = f(&mut plain);
        if changed {
            self.save(header.as_ref(), &plain, false)?;
        }
        Ok(changed)
    }

    /// The key `craik unlock` left in the kernel keyring, when it opens
    /// this file (a stale or planted one does not, and is ignored); kept
    /// in the process's cache like a derived key.
    fn unlocked_key(&self, salt: &[u8], h: &Header, check: &[u8]) -> Option<Zeroizing<[u8; 32]>> {
        let key = super::unlock::get(&self.home)?;
        if check_value(&key) != check {
            return None;
        }
        let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        cache.derived = Some((salt.to_vec(), h.m_cost, h.t_cost, h.p_cost, key.clone()));
        Some(key)
    }

    /// `craik unlock`: derives the key from the password (asked for even
    /// when the store is unlocked already: unlocking again needs it
    /// again), checks it opens the file, and keeps it in the kernel
    /// keyring for `ttl`.
    pub fn unlock(&self, ttl: std::time::Duration) -> Result<()> {
        let Some(bytes) = self.home.read(SECRETS_FILE)? else {
            return Err(SecretError::Unavailable {
                backend: Backend::File,
                why: format!(
                    "there is no {} to unlock yet",
                    self.home.path(SECRETS_FILE).display()
                ),
            });
        };
        let header = self.header(&bytes)?;
        self.check_password(&password(false)?, &header)?;
        // The whole file must open with it, not just the check; it is
        // re-keyed (a new salt) so that the key kept for this unlock is
        // not the one any earlier unlock kept. The new key replaces the
        // old one in the keyring (same description).
        let key = self.rekey()?;
        let keep_err = |why: String| SecretError::Unavailable {
            backend: Backend::Keyutils,
            why: format!("cannot keep the key in the kernel keyring: {why}"),
        };
        super::unlock::put(&self.home, &key, ttl).map_err(keep_err)
    }

    /// The header line of the file's `bytes`.
    fn header(&self, bytes: &[u8]) -> Result<Header> {
        let rest = bytes
            .strip_prefix(MAGIC)
            .ok_or_else(|| self.corrupt("not a craik secret store (bad magic line)"))?;
        let line = rest.split(|&b| b == b'\n').next().unwrap_or_default();
        serde_json::from_slice(line).map_err(|e| self.corrupt(format!("bad header: {e}")))
    }

    /// Number of secrets held (opens the file, so a wrong password shows).
    pub fn count(&self) -> Result<usize> {
        Ok(self.load()?.map(|(_, p)| p.secrets.len()).unwrap_or(0))
    }
}

impl SecretStore for FileStore {
    fn backend(&self) -> Backend {
        Backend::File
    }

    fn get(&self, handle: &str) -> Result<Option<Zeroizing<Vec<u8>>>> {
        let Some((_, plain)) = self.load()? else {
            return Ok(None);
        };
        match plain.secrets.get(handle) {
            None => Ok(None),
            Some(v) => Ok(Some(Zeroizing::new(
                B64.decode(v).map_err(|_| self.corrupt("bad entry"))?,
            ))),
        }
    }

    fn set(&self, handle: &str, secret: &[u8]) -> Result<()> {
        self.modify(|p| {
            let mut old = p.secrets.insert(handle.to_string(), B64.encode(secret));
            if let Some(o) = old.as_mut() {
                o.zeroize();
            }
            true
        })
        .map(drop)
    }

    fn delete(&self, handle: &str) -> Result<bool> {
        self.modify(|p| match p.secrets.remove(handle) {
            Some(mut v) => {
                v.zeroize();
                true
            }
            None => false,
        })
    }
}
