//! Integration tests: the real craik binary, real files, real secret
//! stores and a real SQLite log.

mod canary;
mod common;
mod home;
mod profiles;
mod receipts;
mod secrets;
mod tokens;
mod idp;
mod operator;
mod policy;
