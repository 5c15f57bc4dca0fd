//! The secret store: the only place secret material lives.
//!
//! Two kinds of backend implement [`SecretStore`]: the OS keyring (macOS
//! Keychain, Windows Credential Manager, Linux Secret Service, the Linux
//! kernel keyring) through the `keyring` crate, and an encrypted file
//! `secrets.enc` (argon2id + XChaCha20-Poly1305).
//!
//! [`Secrets`] is the façade the rest of craik uses. Secrets are addressed by
//! opaque random handles; `secret-index.json` records, for each handle, the
//! backend that holds it and what it is for (never the secret), so a secret
//! is always read from where it was put even if the preferred backend
//! changes, and `migrate` can move every secret.

mod file;
mod index;
mod keyring_store;
pub mod memory;
pub mod reference;
pub mod seal;
mod select;
pub mod unlock;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use rand::RngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::home::{Home, HomeError};

pub use file::{FileStore, SECRETS_FILE};
pub use index::{INDEX_FILE, IndexEntry, SecretIndex};
pub use keyring_store::KeyringStore;
pub use secrecy::{ExposeSecret, SecretString};
pub use select::{Probe, Selection, select_backend};

/// A secret as craik holds it past where it was read: `SecretString`
/// (secrecy), whose `Debug` prints `[REDACTED]` and which zeroizes on
/// drop. Copied into a buffer of exactly its length, so that making the
/// boxed string moves nothing and leaves no copy behind.
pub fn hold(s: &str) -> SecretString {
    let mut exact = String::with_capacity(s.len());
    exact.push_str(s);
    SecretString::from(exact)
}

/// A secret store backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Backend {
    #[serde(rename = "keychain")]
    Keychain,
    #[serde(rename = "secret-service")]
    SecretService,
    #[serde(rename = "keyutils")]
    Keyutils,
    #[serde(rename = "wincred")]
    Wincred,
    #[serde(rename = "file")]
    File,
}

impl Backend {
    pub const ALL: [Backend; 5] = [
        Backend::Keychain,
        Backend::SecretService,
        Backend::Keyutils,
        Backend::Wincred,
        Backend::File,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Keychain => "keychain",
            Backend::SecretService => "secret-service",
            Backend::Keyutils => "keyutils",
            Backend::Wincred => "wincred",
            Backend::File => "file",
        }
    }

    /// Whether secrets in this backend are lost at reboot.
    pub fn volatile(self) -> bool {
        self == Backend::Keyutils
    }

    /// Whether this build of craik can use the backend on this platform.
    pub fn compiled_in(self) -> bool {
        match self {
            Backend::Keychain => cfg!(target_os = "macos"),
            Backend::SecretService | Backend::Keyutils => cfg!(target_os = "linux"),
            Backend::Wincred => cfg!(target_os = "windows"),
            Backend::File => true,
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Backend {
    type Err = SecretError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Backend::ALL
            .into_iter()
            .find(|b| b.as_str() == s)
            .ok_or_else(|| SecretError::UnknownBackend(s.to_string()))
    }
}

/// Errors of the secret store. None of them carries secret material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    #[error("unknown secret store backend {0:?}")]
    UnknownBackend(String),
    #[error("secret store backend {0} is not available on this platform")]
    NotCompiled(Backend),
    #[error("secret store backend {backend} is not usable: {why}")]
    Unavailable { backend: Backend, why: String },
    /// `from_env`: the password came from `CRAIK_KEYRING_PASSWORD`, not
    /// from the prompt.
    #[error("{path}: wrong password")]
    WrongPassword { path: PathBuf, from_env: bool },
    #[error("{path} failed its integrity check (the file was modified or damaged)")]
    Integrity { path: PathBuf },
    #[error("{path}: {detail}")]
    Corrupt { path: PathBuf, detail: String },
    #[error("the encrypted secret store needs a password and none was given")]
    NoPassword,
    #[error("the passwords did not match")]
    PasswordMismatch,
    /// An internal key is not in the backend in use, and making a new one
    /// would lose what the old one protects.
    #[error("the {purpose} is not in the secret store in use ({backend}): {why}")]
    InternalKeyMissing {
        purpose: String,
        backend: Backend,
        why: String,
    },
    #[error("secret {handle} is not in the {backend} secret store")]
    Missing { handle: String, backend: Backend },
    /// A handle asked for one purpose holds a secret kept for another (a
    /// session file naming a provider key as its refresh token).
    #[error(
        "secret {handle} is kept for {found:?}, not for {wanted:?}; craik hands it out only for what it was stored for"
    )]
    WrongPurpose {
        handle: String,
        wanted: String,
        found: String,
    },
    #[error(transparent)]
    Home(#[from] HomeError),
}

impl SecretError {
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            SecretError::UnknownBackend(_) => format!(
                "CRAIK_KEYRING_BACKEND takes one of {}",
                Backend::ALL.map(|b| b.as_str()).join(", ")
            ),
            SecretError::NotCompiled(_) => {
                "choose another backend with CRAIK_KEYRING_BACKEND (file works everywhere)".into()
            }
            SecretError::Unavailable { backend, .. } => match backend {
                Backend::SecretService => "start a Secret Service (gnome-keyring, KWallet) in this session, or set CRAIK_KEYRING_BACKEND=keyutils or file".into(),
                Backend::Keyutils => "run inside a session keyring (keyctl session -) or set CRAIK_KEYRING_BACKEND=file".into(),
                _ => "set CRAIK_KEYRING_BACKEND=file to use the encrypted file".into(),
            },
            SecretError::WrongPassword { from_env: true, .. } => {
                "check CRAIK_KEYRING_PASSWORD; nothing was changed".into()
            }
            SecretError::WrongPassword { from_env: false, .. } => {
                "type the password this store was made with (it is case-sensitive); nothing was changed".into()
            }
            SecretError::Integrity { .. } | SecretError::Corrupt { .. } => {
                "nothing was changed; restore secrets.enc from a backup, or move it aside and add the secrets again".into()
            }
            SecretError::NoPassword => {
                "run craik on a terminal to be prompted, unlock the store for a while with craik unlock, or set CRAIK_KEYRING_PASSWORD".into()
            }
            SecretError::PasswordMismatch => "try again".into(),
            SecretError::InternalKeyMissing { .. } => {
                "select the store that holds it (CRAIK_KEYRING_BACKEND) or restore it; if it is lost (the kernel keyring after a reboot), make a new one with: craik auth reseal (then log in again)".into()
            }
            SecretError::WrongPurpose { .. } => {
                "a file under CRAIK_HOME names the wrong secret: check operator-session.json and auth-profiles.json (craik doctor), and log in or add the profile again".into()
            }
            SecretError::Missing { .. } => {
                "store the secret again (craik auth add --force), or check craik auth storage status".into()
            }
            SecretError::Home(e) => return e.hint(),
        })
    }
}

pub type Result<T, E = SecretError> = std::result::Result<T, E>;

/// What a secret is kept for, as `secret-index.json` records it: every
/// read of a secret names the purpose it expects ([`Secrets::get_for`]).
pub mod purpose {
    /// An operator's OIDC refresh token.
    pub const OPERATOR_REFRESH: &str = "operator refresh token";
    /// The operator's current ID token (an `oidc-exchange` profile's
    /// subject token when a person is the operator).
    pub const OPERATOR_ID_TOKEN: &str = "operator id token";

    /// craik's own keys, kept under fixed handles
    /// ([`super::Secrets::internal`]): the seal key, the audit key and the
    /// checkpoint signing key.
    pub const INTERNAL: [&str; 3] = ["seal-key", "audit-key", "audit-signing-key"];

    /// A profile's stored credential (`keyring-ref`).
    pub fn profile(id: &str) -> String {
        format!("profile {id}")
    }

    /// A `stigmem-ref` profile's API key for its node.
    pub fn stigmem_key(id: &str) -> String {
        format!("stigmem api key {id}")
    }

    /// An `oauth` profile's access token.
    pub fn oauth_access(id: &str) -> String {
        format!("oauth access token {id}")
    }

    /// An `oauth` profile's refresh token.
    pub fn oauth_refresh(id: &str) -> String {
        format!("oauth refresh token {id}")
    }
}

/// A place secrets can be kept, addressed by handle.
pub trait SecretStore {
    fn backend(&self) -> Backend;
    /// The secret under `handle`, or `None`.
    fn get(&self, handle: &str) -> Result<Option<Zeroizing<Vec<u8>>>>;
    fn set(&self, handle: &str, secret: &[u8]) -> Result<()>;
    /// Deletes; true if something was there.
    fn delete(&self, handle: &str) -> Result<bool>;
}

/// True for a handle craik would generate (`craik-` and 32 hex digits).
pub fn valid_handle(h: &str) -> bool {
    h.strip_prefix("craik-")
        .is_some_and(|rest| rest.len() == 32 && rest.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A fresh opaque handle.
pub fn new_handle() -> String {
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    format!("craik-{}", hex::encode(b))
}

/// Opens the store object for one backend.
pub fn open_backend(home: &Home, backend: Backend) -> Result<Box<dyn SecretStore>> {
    if !backend.compiled_in() {
        return Err(SecretError::NotCompiled(backend));
    }
    Ok(match backend {
        Backend::File => Box::new(FileStore::new(home.clone())),
        other => Box::new(KeyringStore::new(other)),
    })
}

/// What `migrate` did (or would do).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Migration {
    pub to: String,
    pub moved: Vec<String>,
    pub already: Vec<String>,
    pub dry_run: bool,
}

/// The façade: selection plus the index.
pub struct Secrets {
    home: Home,
    selection: std::cell::OnceCell<Selection>,
}

impl Secrets {
    pub fn new(home: &Home) -> Secrets {
        Secrets {
            home: home.clone(),
            selection: std::cell::OnceCell::new(),
        }
    }

    /// The home whose index this façade keeps.
    pub fn home(&self) -> &Home {
        &self.home
    }

    /// The backend new secrets go to, and why (probes on first call).
    pub fn selection(&self) -> Result<&Selection> {
        if let Some(s) = self.selection.get() {
            return Ok(s);
        }
        let s = select_backend(&self.home)?;
        Ok(self.selection.get_or_init(|| s))
    }

    pub fn index(&self) -> Result<SecretIndex> {
        SecretIndex::load(&self.home)
    }

    /// Where `handle` lives: as recorded, else the selected backend.
    pub fn backend_of(&self, handle: &str) -> Result<Backend> {
        match self.index()?.secrets.get(handle) {
            Some(e) => Ok(e.backend),
            None => Ok(self.selection()?.backend),
        }
    }

    /// Stores a new secret under a fresh handle and records it.
    pub fn put(&self, purpose: &str, secret: &[u8]) -> Result<String> {
        let handle = new_handle();
        let backend = self.selection()?.backend;
        open_backend(&self.home, backend)?.set(&handle, secret)?;
        if let Err(e) = SecretIndex::update(&self.home, |idx| {
            idx.record(&handle, backend, purpose);
            Ok(())
        }) {
            let _ = open_backend(&self.home, backend).and_then(|s| s.delete(&handle));
            return Err(e);
        }
        Ok(handle)
    }

    /// Replaces the secret under an existing handle, in place.
    pub fn replace(&self, handle: &str, secret: &[u8]) -> Result<()> {
        let backend = self.backend_of(handle)?;
        open_backend(&self.home, backend)?.set(handle, secret)
    }

    /// The secret under `handle`; an error if it is missing.
    pub fn get(&self, handle: &str) -> Result<Zeroizing<Vec<u8>>> {
        let backend = self.backend_of(handle)?;
        open_backend(&self.home, backend)?
            .get(handle)?
            .ok_or_else(|| SecretError::Missing {
                handle: handle.to_string(),
                backend,
            })
    }

    /// The secret under `handle`, only if it was stored for `purpose`
    /// (as `secret-index.json` records it): a handle copied from another
    /// profile, or a session naming a provider key as its refresh token,
    /// gets nothing.
    pub fn get_for(&self, handle: &str, purpose: &str) -> Result<Zeroizing<Vec<u8>>> {
        let recorded = self.index()?.secrets.get(handle).map(|e| e.purpose.clone());
        match recorded {
            Some(p) if p == purpose => self.get(handle),
            Some(found) => Err(SecretError::WrongPurpose {
                handle: handle.to_string(),
                wanted: purpose.to_string(),
                found,
            }),
            None => Err(SecretError::WrongPurpose {
                handle: handle.to_string(),
                wanted: purpose.to_string(),
                found: "nothing (the handle is not in secret-index.json)".into(),
            }),
        }
    }

    /// Whether `handle` holds a secret.
    pub fn exists(&self, handle: &str) -> Result<bool> {
        let backend = self.backend_of(handle)?;
        Ok(open_backend(&self.home, backend)?.get(handle)?.is_some())
    }

    /// Deletes the secret and its index entry; true if it existed.
    pub fn delete(&self, handle: &str) -> Result<bool> {
        let backend = self.backend_of(handle)?;
        let existed = open_backend(&self.home, backend)?.delete(handle)?;
        SecretIndex::update(&self.home, |idx| {
            idx.secrets.remove(handle);
            Ok(())
        })?;
        Ok(existed)
    }

    /// Moves every recorded secret to `to`. A secret is deleted from its old
    /// backend only after the new one returns it intact. Idempotent.
    pub fn migrate(&self, to: Backend, dry_run: bool) -> Result<Migration> {
        self.migrate_where(to, dry_run, |_| true)
    }

    /// Moves craik's internal keys (seal, audit, signing) to `to` first, so
    /// a migration can read them there and write its receipt: the one
    /// time they are read from where the index says (an explicit command).
    pub fn migrate_internal(&self, to: Backend) -> Result<Migration> {
        self.migrate_where(to, false, |e| {
            purpose::INTERNAL.contains(&e.purpose.as_str())
        })
    }

    fn migrate_where(
        &self,
        to: Backend,
        dry_run: bool,
        only: impl Fn(&IndexEntry) -> bool,
    ) -> Result<Migration> {
        let target = open_backend(&self.home, to)?;
        let mut report = Migration {
            to: to.to_string(),
            dry_run,
            ..Default::default()
        };
        let index = self.index()?;
        for (handle, entry) in index.secrets.iter().filter(|(_, e)| only(e)) {
            if entry.backend == to {
                report.already.push(handle.clone());
                continue;
            }
            if dry_run {
                report.moved.push(handle.clone());
                continue;
            }
            let source = open_backend(&self.home, entry.backend)?;
            let Some(secret) = source.get(handle)? else {
                // Already copied by an interrupted earlier run?
                if target.get(handle)?.is_some() {
                    self.set_index_backend(handle, to)?;
                    report.moved.push(handle.clone());
                    continue;
                }
                return Err(SecretError::Missing {
                    handle: handle.clone(),
                    backend: entry.backend,
                });
            };
            target.set(handle, &secret)?;
            match target.get(handle)? {
                Some(copy) if copy.as_slice() == secret.as_slice() => {}
                _ => {
                    return Err(SecretError::Unavailable {
                        backend: to,
                        why: "a secret written there could not be read back".into(),
                    });
                }
            }
            self.set_index_backend(handle, to)?;
            source.delete(handle)?;
            report.moved.push(handle.clone());
        }
        Ok(report)
    }

    fn set_index_backend(&self, handle: &str, to: Backend) -> Result<()> {
        SecretIndex::update(&self.home, |idx| {
            if let Some(e) = idx.secrets.get_mut(handle) {
                e.backend = to;
            }
            Ok(())
        })
    }
}

impl Secrets {
    /// The handle an internal key (`purpose`) is kept under: fixed, so
    /// that finding it never goes through `secret-index.json`, which any
    /// process of the user can edit.
    pub fn internal_handle(purpose: &str) -> String {
        use sha2::{Digest, Sha256};
        let d = Sha256::digest(format!("craik-internal-key:{purpose}"));
        format!("craik-{}", &hex::encode(d)[..32])
    }

    /// An internal key (the seal key, the audit key, the checkpoint
    /// signing key), read from the backend in use under its fixed handle
    /// ([`Secrets::internal_handle`]), never where the index says: an
    /// edited index can neither point craik at a key someone else planted
    /// in another backend nor relabel a secret it knows as the key.
    ///
    /// When it is not there: with `legacy`, a key an earlier craik kept
    /// under a random handle *in the backend in use* is adopted (copied
    /// under the fixed handle); else `make` makes one, if `may_create`
    /// says a new key loses nothing (no state sealed with an old one).
    /// Creation is serialized across processes.
    pub fn internal(
        &self,
        purpose: &str,
        legacy: bool,
        may_create: impl Fn() -> std::result::Result<(), String>,
        make: impl FnOnce() -> Zeroizing<Vec<u8>>,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let handle = Secrets::internal_handle(purpose);
        let backend = self.selection()?.backend;
        let store = open_backend(&self.home, backend)?;
        // The index only counts and migrates it; it is written only when
        // it does not say so already (a read-only home stays readable).
        let record = |home: &Home| {
            // An entry for another backend stays: looking at a home with
            // another backend selected (doctor, say) writes nothing, and
            // the index keeps saying where this home's key is.
            let ok = |idx: &SecretIndex| {
                idx.secrets
                    .get(&handle)
                    .is_some_and(|e| e.backend != backend || e.purpose == purpose)
            };
            if ok(&SecretIndex::load(home)?) {
                return Ok(());
            }
            SecretIndex::update(home, |idx| {
                if !ok(idx) {
                    idx.record(&handle, backend, purpose);
                }
                Ok(())
            })
        };
        if let Some(v) = store.get(&handle)? {
            record(&self.home)?;
            return Ok(v);
        }
        let _lock = self.home.lock(&format!("secret-{purpose}"))?;
        if let Some(v) = store.get(&handle)? {
            record(&self.home)?;
            return Ok(v);
        }
        if legacy
            && let Some(old) = self.index()?.secrets.iter().find_map(|(h, e)| {
                (e.purpose == purpose && e.backend == backend && *h != handle).then(|| h.clone())
            })
            && let Some(v) = store.get(&old)?
        {
            store.set(&handle, &v)?;
            SecretIndex::update(&self.home, |idx| {
                idx.secrets.remove(&old);
                idx.record(&handle, backend, purpose);
                Ok(())
            })?;
            let _ = store.delete(&old);
            return Ok(v);
        }
        // Recorded in another backend: never read from there (an edited
        // index could name any), and never replaced by a new key.
        if let Some(elsewhere) = self
            .index()?
            .secrets
            .iter()
            .find(|(h, e)| (e.purpose == purpose || **h == handle) && e.backend != backend)
            .map(|(_, e)| e.backend)
        {
            return Err(SecretError::InternalKeyMissing {
                purpose: purpose.to_string(),
                backend,
                why: format!(
                    "secret-index.json records it in {elsewhere}; move it here with: craik auth migrate-secrets --to {backend} (or select {elsewhere} with CRAIK_KEYRING_BACKEND={elsewhere})"
                ),
            });
        }
        may_create().map_err(|why| SecretError::InternalKeyMissing {
            purpose: purpose.to_string(),
            backend,
            why,
        })?;
        let value = make();
        store.set(&handle, &value)?;
        record(&self.home)?;
        Ok(value)
    }

    /// Replaces an internal key with `value` (a team's shared audit key),
    /// under its fixed handle in the backend in use.
    pub fn replace_internal(&self, purpose: &str, value: &[u8]) -> Result<()> {
        let handle = Secrets::internal_handle(purpose);
        let backend = self.selection()?.backend;
        let store = open_backend(&self.home, backend)?;
        let _lock = self.home.lock(&format!("secret-{purpose}"))?;
        store.set(&handle, value)?;
        SecretIndex::update(&self.home, |idx| {
            idx.secrets.remove(&handle);
            idx.record(&handle, backend, purpose);
            Ok(())
        })
    }
}
