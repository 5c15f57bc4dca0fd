//! Choosing the backend for new secrets.
//!
//! `CRAIK_KEYRING_BACKEND` wins. Otherwise: the macOS Keychain, the Windows
//! Credential Manager, and on Linux the Secret Service when a session bus
//! answers, else the kernel keyring when usable, else the encrypted file.

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
        let value = b"probe";
        store.set(PROBE_HANDLE, value).map_err(|e| e.to_string())?;
        let back = store.get(PROBE_HANDLE).map_err(|e| e.to_string())?;
        let _ = store.delete(PROBE_HANDLE);
        if back.as_deref().map(Vec::as_slice) != Some(value.as_slice()) {
            return Err("a probe secret did not read back".into());
        }
        Ok(())
    } else {
        store.get(PROBE_HANDLE).map(drop).map_err(|e| e.to_string())
    }
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
            Backend::Keyutils => probe_keyring(backend, true),
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
