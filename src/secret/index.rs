//! `secret-index.json`: which backend holds each handle, and what for.
//! Holds no secret material.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Backend, Result, SecretError};
use crate::home::Home;

pub const INDEX_FILE: &str = "secret-index.json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexEntry {
    pub backend: Backend,
    pub purpose: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretIndex {
    pub version: u32,
    pub secrets: BTreeMap<String, IndexEntry>,
}

impl Default for SecretIndex {
    fn default() -> Self {
        SecretIndex {
            version: 1,
            secrets: BTreeMap::new(),
        }
    }
}

impl SecretIndex {
    pub fn load(home: &Home) -> Result<SecretIndex> {
        let Some(bytes) = home.read(INDEX_FILE)? else {
            return Ok(SecretIndex::default());
        };
        let corrupt = |detail: String| SecretError::Corrupt {
            path: home.path(INDEX_FILE),
            detail,
        };
        let idx: SecretIndex =
            serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        if idx.version != 1 {
            return Err(corrupt(format!("unsupported version {}", idx.version)));
        }
        Ok(idx)
    }

    pub fn update(home: &Home, f: impl FnOnce(&mut SecretIndex) -> Result<()>) -> Result<()> {
        let _lock = home.lock(INDEX_FILE)?;
        let before = SecretIndex::load(home)?;
        let mut idx = before.clone();
        f(&mut idx)?;
        if idx != before {
            let mut out = serde_json::to_vec_pretty(&idx).expect("index serializes");
            out.push(b'\n');
            home.write_atomic(INDEX_FILE, &out)?;
        }
        Ok(())
    }

    pub fn record(&mut self, handle: &str, backend: Backend, purpose: &str) {
        self.secrets.insert(
            handle.to_string(),
            IndexEntry {
                backend,
                purpose: purpose.to_string(),
                created_at: Utc::now(),
            },
        );
    }
}
