//! Integration tests: the real craik binary, real files, real secret
//! stores and a real SQLite log.

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
mod policy;
mod profiles;
mod receipts;
mod secrets;
mod tokens;
mod upstream;
