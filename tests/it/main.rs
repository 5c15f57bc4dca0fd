//! Integration tests: the real craik binary, real files, real secret
//! stores and a real SQLite log.

mod common;
mod home;
mod profiles;
mod secrets;
mod canary;
mod receipts;
