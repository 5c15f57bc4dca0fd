//! Choosing the backend for new secrets.
//!
//! `CRAIK_KEYRING_BACKEND` wins. Otherwise: the macOS Keychain, the Windows
//! Credential Manager, and on Linux the Secret Service when a session bus
//! answers, else the kernel keyring when the login has a session keyring
//! of its own and it takes a write, else the encrypted file.

use serde::Serialize;

use super::{Backend, KeyringStore, Result, SecretStore};
use crate::home::Home;

/// One backend that was considered.
#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    pub backend: Backend,
    /// `usable`, `unavailable: <why>`, `not probed`, `not on this platform`.
    pub state: String,
}

/// The outcome of selection.
#[derive(Debug, Clone, Serialize)]
pub struct Selection {
    pub backend: Backend,
    pub reason: String,
    pub probes: Vec<Probe>,
}

const PROBE_HANDLE: &str = "craik-probe";

fn probe_keyring(backend: Backend, write: bool) -> std::result::Result<(), String> {
    let store = KeyringStore::new(backend);
    if write {
        // A handle of its own: two craik processes probing at once must
        // not read or delete each other's probe (one would then see the
        // backend unusable and put a secret elsewhere).
        let handle = format!("{PROBE_HANDLE}-{}", &super::new_handle()["craik-".len()..]);
        let value = b"probe";
        let written = store.set(&handle, value).map_err(|e| e.to_string());
        let back = written.and_then(|()| store.get(&handle).map_err(|e| e.to_string()));
        let _ = store.delete(&handle);
        let back = back?;
        if back.as_deref().map(Vec::as_slice) != Some(value.as_slice()) {
            return Err("a probe secret did not read back".into());
        }
        Ok(())
    } else {
        store.get(PROBE_HANDLE).map(drop).map_err(|e| e.to_string())
    }
}

/// The keyutils backend keeps secrets in the session keyring, which
/// must be the login's own. Without one, the kernel lends the process the
/// user-session keyring (`_uid_ses.<uid>`), and the keyring crate's first
/// call gives the process a new, empty session keyring instead: secrets
/// written before it are then out of reach (the key `craik unlock` left
/// too), and those written after die with the process. So it is not
/// probed at all, and the probe has no side effect on this process.
#[cfg(target_os = "linux")]
fn own_session_keyring() -> std::result::Result<(), String> {
    use linux_keyutils::{KeyRing, KeyRingIdentifier};
    let ring = KeyRing::from_special_id(KeyRingIdentifier::Session, false)
        .and_then(|r| r.metadata())
        .map_err(|e| format!("no session keyring: {e}"))?;
    if ring.get_description().starts_with("_uid_ses.") {
        return Err(
            "this login has no session keyring of its own (run inside one: keyctl session -)"
                .into(),
        );
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn own_session_keyring() -> std::result::Result<(), String> {
    Ok(())
}

fn probe(backend: Backend) -> Probe {
    let state = if !backend.compiled_in() {
        "not on this platform".to_string()
    } else {
        let r = match backend {
            Backend::File => Ok(()),
            Backend::SecretService => {
                if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() {
                    Err("no session bus (DBUS_SESSION_BUS_ADDRESS is not set)".to_string())
                } else {
                    probe_keyring(backend, false)
                }
            }
            // The kernel keyring can exist yet refuse writes; try one.
            Backend::Keyutils => own_session_keyring().and_then(|()| probe_keyring(backend, true)),
            other => probe_keyring(other, false),
        };
        match r {
            Ok(()) => "usable".to_string(),
            Err(why) => format!("unavailable: {why}"),
        }
    };
    Probe { backend, state }
}

/// Selects the backend for new secrets.
pub fn select_backend(_home: &Home) -> Result<Selection> {
    if let Some(name) = std::env::var("CRAIK_KEYRING_BACKEND")
        .ok()
        .filter(|s| !s.is_empty())
    {
        let backend: Backend = name.parse()?;
        if !backend.compiled_in() {
            return Err(super::SecretError::NotCompiled(backend));
        }
        return Ok(Selection {
            backend,
            reason: format!("CRAIK_KEYRING_BACKEND={name}"),
            probes: vec![],
        });
    }
    let order: &[Backend] = if cfg!(target_os = "macos") {
        &[Backend::Keychain, Backend::File]
    } else if cfg!(target_os = "windows") {
        &[Backend::Wincred, Backend::File]
    } else {
        &[Backend::SecretService, Backend::Keyutils, Backend::File]
    };
    let mut probes = Vec::new();
    for &b in order {
        let p = probe(b);
        let usable = p.state == "usable";
        probes.push(p);
        if usable {
            let reason = match b {
                Backend::SecretService => "a Secret Service answered on the session bus",
                Backend::Keyutils => "no Secret Service answered; the kernel keyring is usable",
                Backend::File => "no OS keyring is usable; using the encrypted file",
                Backend::Keychain => "the macOS Keychain is the platform store",
                Backend::Wincred => "the Windows Credential Manager is the platform store",
            };
            return Ok(Selection {
                backend: b,
                reason: reason.to_string(),
                probes,
            });
        }
    }
    unreachable!("the file backend is always usable")
}
