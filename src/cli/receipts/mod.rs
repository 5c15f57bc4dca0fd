//! `craik receipts ...`

mod checkpoint;
mod export;
mod hash;
mod list;
mod retention;
mod serve;
mod show;
mod stats;
mod verify;

use std::io::{Read, Write};
use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};

use craik::audit::{AuditLog, Filter, Receipt, parse_time};
use craik::context::Context;
use craik::profile::Family;
use craik::{Error, exit};

use super::output::{self, errln, out, outln};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    Jsonl,
    Csv,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)]
pub enum ReceiptsCommand {
    /// List receipts, newest first.
    List(list::Args),
    /// Show one receipt.
    Show(show::Args),
    /// Counts by kind, status, profile and operator.
    Stats(stats::Args),
    /// Stream every receipt, oldest first.
    Export(export::Args),
    /// Recompute every hash and link; check checkpoints. Exit 1 on damage.
    Verify(verify::Args),
    /// Write a signed checkpoint of the log's current tail.
    Checkpoint(checkpoint::Args),
    /// Copy the oldest receipts, up to a time or seq, to an archive file
    /// with a signed record of the range (the log is not changed).
    Archive(retention::ArchiveArgs),
    /// Delete from the log the range an archive file holds, after checking
    /// the file whole against the log; the log keeps the signed record.
    Prune(retention::PruneArgs),
    /// A read-only web page over the log (timeline, denials, approvals,
    /// use, chain status) on a loopback address, for people.
    Serve(serve::Args),
    /// Print the identity hash the log would hold for a value read from
    /// standard input: a credential (--family) or an operator subject
    /// (--operator-issuer).
    Hash(hash::Args),
}

use craik::audit::{CSV_HEADER, csv_row};

fn io_err(e: impl std::fmt::Display) -> Error {
    Error::input(
        format!("cannot write output: {e}"),
        "check where the output goes",
    )
}

/// An identity hash as the log holds it, `hmac-sha256:` and 64 hex digits:
/// anything else would match nothing, which reads like "never happened".
fn check_hash(flag: &str, h: &str) -> craik::Result<()> {
    let ok = h
        .strip_prefix("hmac-sha256:")
        .is_some_and(|x| x.len() == 64 && x.bytes().all(|b| b.is_ascii_hexdigit()));
    if ok {
        Ok(())
    } else {
        Err(Error::input(
            format!("{flag} {h:?} is not an identity hash (hmac-sha256: and 64 hex digits)"),
            "compute it with craik receipts hash, or copy it from a receipt",
        ))
    }
}

fn time(s: Option<String>) -> craik::Result<Option<chrono::DateTime<chrono::Utc>>> {
    Ok(s.map(|s| parse_time(&s)).transpose()?)
}

/// The commands here only read the log: a copy that cannot be written
/// is read as it is.
fn open_log(ctx: &Context) -> craik::Result<AuditLog> {
    ctx.read_audit_log()
}

pub fn run(cmd: ReceiptsCommand) -> craik::Result<i32> {
    let ctx = super::context()?;
    match cmd {
        ReceiptsCommand::List(a) => list::run(ctx, a),
        ReceiptsCommand::Show(a) => show::run(ctx, a),
        ReceiptsCommand::Stats(a) => stats::run(ctx, a),
        ReceiptsCommand::Export(a) => export::run(ctx, a),
        ReceiptsCommand::Verify(a) => verify::run(ctx, a),
        ReceiptsCommand::Checkpoint(a) => checkpoint::run(ctx, a),
        ReceiptsCommand::Archive(a) => retention::archive(ctx, a),
        ReceiptsCommand::Prune(a) => retention::prune(ctx, a),
        ReceiptsCommand::Hash(a) => hash::run(ctx, a),
        ReceiptsCommand::Serve(a) => serve::run(ctx, a),
    }
}
