//! craik: a credential broker for AI-provider credentials.
//!
//! The library is the product; the `craik` binary is a thin shell over it.
//! Every module owns one concept of the domain:
//!
//! - [`home`]: `CRAIK_HOME`, owner-only atomic files and cross-process locks.
//! - [`profile`]: credential profile ids, kinds and the profile store.
//! - [`secret`]: the secret store (OS keyring or encrypted file).
//! - [`source`]: turning a profile into credential material, and its health.
//! - [`audit`]: receipts, identity hashes and the hash-chained SQLite log.
#![forbid(unsafe_code)]

// Owner-only files, signals, process groups and /proc are Unix's; nothing
// else is built or tested.
#[cfg(not(unix))]
compile_error!("craik supports Unix only (Linux; macOS untested): see README.md");

pub mod agent;
pub mod approval;
pub mod audit;
pub mod broker;
pub mod context;
pub mod credential;
pub mod doctor;
pub mod duration;
pub mod error;
pub mod exit;
pub mod home;
pub mod operator;
pub mod page;
pub mod pattern;
pub mod policy;
pub mod pool;
pub mod profile;
pub mod provider;
pub mod secret;
pub mod team;
pub mod term;

pub use error::{Error, Result};
