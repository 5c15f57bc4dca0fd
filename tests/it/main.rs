//! Integration tests: the real craik binary, real files, real secret
//! stores and a real SQLite log.
//!
//! Two tiers (README.md, "Tests"):
//! - **fast**, needing nothing but the binary: `docs`, `exits` (every
//!   documented exit path, pinned) and `layout`;
//! - **system**, the rest: real files and stores, a local provider
//!   server in-process (`broker`, `canary`, `group`, `tokens`,
//!   `profiles`), and real services or privileges, each failing with
//!   what to install when it is missing: `operator`, `policy`, `idp` (the
//!   Node test OpenID provider), `secrets` (the kernel keyring,
//!   gnome-keyring), `receipts` (disk faults: read-only mounts, a full
//!   tmpfs, `chattr`, as root), `boundary` and `home` (bubblewrap,
//!   keyctl, root), `agents` (the agent CLIs from npm), `onboard` (the IdP
//!   and a pseudo-terminal).

mod agents;
mod boundary;
mod broker;
mod canary;
mod common;
mod docs;
mod exits;
mod group;
mod home;
mod idp;
mod layout;
mod onboard;
mod operator;
mod page;
mod policy;
mod profiles;
mod receipts;
mod secrets;
mod stigmem;
mod team;
mod tokens;
mod upstream;
mod workload;
