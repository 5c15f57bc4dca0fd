//! `craik receipts ...`

use std::io::{Read, Write};
use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};

use craik::audit::{AuditLog, Filter, Receipt, checkpoint, parse_time};
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
pub enum ReceiptsCommand {
    /// List receipts, newest first.
    List {
        /// Operator subject or email.
        #[arg(long)]
        operator: Option<String>,
        /// Operator identity hash (see craik receipts hash).
        #[arg(long, value_name = "H")]
        operator_hash: Option<String>,
        /// Profile id, or a pattern as in policies: `*` within a part
        /// (openai:*), `**` across ':', `?` one character.
        #[arg(long, value_name = "GLOB")]
        profile: Option<String>,
        /// Credential identity hash (see craik receipts hash).
        #[arg(long, value_name = "H")]
        identity_hash: Option<String>,
        /// Only receipts of this kind (call.started, denial, approval, ...).
        #[arg(long, value_name = "K")]
        kind: Option<String>,
        /// Only receipts with this status (ok, denied, failed, ...).
        #[arg(long, value_name = "S")]
        status: Option<String>,
        /// The run id (default: a fresh run_<hex>).
        #[arg(long, value_name = "R")]
        run: Option<String>,
        /// RFC 3339, or relative: 30m, 24h, 7d.
        #[arg(long, value_name = "T")]
        since: Option<String>,
        /// Only receipts at or before this time (RFC 3339, or 30m, 24h, 7d ago).
        #[arg(long, value_name = "T")]
        until: Option<String>,
        #[arg(long, value_name = "N", default_value_t = 100)]
        limit: usize,
        /// Print the result as JSON.
        #[arg(long, conflicts_with_all = ["jsonl", "csv"])]
        json: bool,
        /// One JSON object per line.
        #[arg(long, conflicts_with = "csv")]
        jsonl: bool,
        /// CSV with a header line.
        #[arg(long)]
        csv: bool,
    },
    /// Show one receipt.
    Show {
        /// A receipt id (rcpt_...) or seq.
        id: String,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Counts by kind, status, profile and operator.
    Stats {
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stream every receipt, oldest first.
    Export {
        #[arg(long, value_enum)]
        format: ExportFormat,
        /// Only receipts at or after this time (RFC 3339, or 30m, 24h, 7d ago).
        #[arg(long, value_name = "T")]
        since: Option<String>,
    },
    /// Recompute every hash and link; check checkpoints. Exit 1 on damage.
    Verify {
        /// A checkpoint file written by craik receipts checkpoint.
        #[arg(long, value_name = "FILE")]
        checkpoint: Vec<PathBuf>,
        /// The key checkpoints must be signed with: its base64, or a file
        /// holding it (a copy of audit-signing.pub). Default: this home's
        /// audit-signing.pub.
        #[arg(long, value_name = "KEY|FILE")]
        public_key: Option<String>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write a signed checkpoint of the log's current tail.
    Checkpoint {
        /// Where to write it (default: standard output).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the identity hash the log would hold for a value read from
    /// standard input: a credential (--family) or an operator subject
    /// (--operator-issuer).
    Hash {
        /// Hash a credential of this provider family (openai, anthropic,
        /// gemini, chat_completions) read from standard input.
        #[arg(
            long,
            value_name = "F",
            conflicts_with = "operator_issuer",
            required_unless_present = "operator_issuer"
        )]
        family: Option<String>,
        /// Hash an operator subject read from standard input, of this
        /// issuer.
        #[arg(long, value_name = "ISS")]
        operator_issuer: Option<String>,
    },
}

const CSV_HEADER: [&str; 22] = [
    "seq",
    "id",
    "created_at",
    "kind",
    "run_id",
    "capability",
    "status",
    "reason",
    "policy_condition",
    "auth_profile_id",
    "auth_kind",
    "auth_identity_hash",
    "provider_family",
    "pool_id",
    "operator_subject",
    "operator_issuer",
    "operator_email",
    "operator_groups",
    "operator_identity_hash",
    "details",
    "prev_hash",
    "hash",
];

fn csv_row(r: &Receipt) -> [String; 22] {
    let o = |v: &Option<String>| v.clone().unwrap_or_default();
    [
        r.seq.to_string(),
        r.id.clone(),
        r.created_at.clone(),
        r.kind.clone(),
        o(&r.run_id),
        o(&r.capability),
        r.status.clone(),
        o(&r.reason),
        o(&r.policy_condition),
        o(&r.auth_profile_id),
        o(&r.auth_kind),
        o(&r.auth_identity_hash),
        o(&r.provider_family),
        o(&r.pool_id),
        o(&r.operator_subject),
        o(&r.operator_issuer),
        o(&r.operator_email),
        o(&r.operator_groups),
        o(&r.operator_identity_hash),
        r.details.clone(),
        r.prev_hash.clone(),
        r.hash.clone(),
    ]
}

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
        ReceiptsCommand::List {
            operator,
            operator_hash,
            profile,
            identity_hash,
            kind,
            status,
            run,
            since,
            until,
            limit,
            json,
            jsonl,
            csv,
        } => {
            for (flag, h) in [
                ("--operator-hash", &operator_hash),
                ("--identity-hash", &identity_hash),
            ] {
                if let Some(h) = h {
                    check_hash(flag, h)?;
                }
            }
            let filter = Filter {
                operator,
                operator_hash,
                profile,
                identity_hash,
                kind,
                status,
                run,
                since: time(since)?,
                until: time(until)?,
                limit: Some(limit),
                ascending: false,
            };
            if let (Some(s), Some(u)) = (filter.since, filter.until)
                && s > u
            {
                return Err(Error::input(
                    format!(
                        "--since ({}) is after --until ({}): no receipt can match",
                        s.to_rfc3339(),
                        u.to_rfc3339()
                    ),
                    "swap them: --since is the earlier time",
                ));
            }
            let log = open_log(&ctx)?;
            let rows = log.list(&filter)?;
            // A kind mistyped finds nothing, which reads like "never happened".
            if rows.is_empty()
                && let Some(k) = &filter.kind
                && let kinds = log.kinds()?
                && !kinds.contains(k)
            {
                errln!(
                    "craik: note: no receipt in this log has kind {k:?}; its kinds: {}",
                    if kinds.is_empty() {
                        "none yet".to_string()
                    } else {
                        kinds.join(", ")
                    }
                );
            }
            if json {
                let rows: Vec<_> = rows.iter().map(Receipt::to_json).collect();
                output::json(&serde_json::json!({ "receipts": rows }));
            } else if jsonl {
                let mut out = std::io::BufWriter::new(output::Out);
                for r in &rows {
                    serde_json::to_writer(&mut out, &r.to_json()).map_err(io_err)?;
                    writeln!(out).map_err(io_err)?;
                }
                out.flush().map_err(io_err)?;
            } else if csv {
                let mut w = csv::Writer::from_writer(output::Out);
                w.write_record(CSV_HEADER).map_err(io_err)?;
                for r in &rows {
                    w.write_record(csv_row(r)).map_err(io_err)?;
                }
                w.flush().map_err(io_err)?;
            } else {
                let mut t = output::table(&[
                    "SEQ", "TIME", "KIND", "STATUS", "VIA", "PROFILE", "OPERATOR", "RUN",
                ]);
                for r in &rows {
                    t.add_row(vec![
                        r.seq.to_string(),
                        r.created_at.clone(),
                        r.kind.clone(),
                        r.status.clone(),
                        // exec, proxy, check, test, approve, grant.
                        r.capability.clone().unwrap_or_default(),
                        r.auth_profile_id.clone().unwrap_or_default(),
                        r.operator_email
                            .clone()
                            .or_else(|| r.operator_subject.clone())
                            .unwrap_or_default(),
                        r.run_id.clone().unwrap_or_default(),
                    ]);
                }
                output::print_table(&t);
            }
            Ok(exit::OK)
        }
        ReceiptsCommand::Show { id, json } => {
            let r = open_log(&ctx)?.get(&id)?;
            if json {
                output::json(&r.to_json());
            } else {
                let v = serde_json::to_value(r.to_json()).unwrap_or_default();
                if let serde_json::Value::Object(mut m) = v {
                    // In the receipt's own order (seq first), not the map's.
                    for k in CSV_HEADER {
                        let Some(v) = m.remove(k) else { continue };
                        let shown = match v {
                            serde_json::Value::Null => "-".to_string(),
                            serde_json::Value::String(s) => s,
                            other => other.to_string(),
                        };
                        outln!("{k:>24}  {}", craik::term::printable(&shown));
                    }
                }
            }
            Ok(exit::OK)
        }
        ReceiptsCommand::Stats { json } => {
            let s = open_log(&ctx)?.stats()?;
            if json {
                output::json(&s);
            } else {
                outln!("receipts: {}", s.total);
                for (title, map) in [
                    ("by kind", &s.by_kind),
                    ("by status", &s.by_status),
                    ("by profile", &s.by_profile),
                    ("by operator", &s.by_operator),
                ] {
                    if map.is_empty() {
                        outln!("{title}: none");
                        continue;
                    }
                    outln!("{title}:");
                    for (k, n) in map {
                        outln!("  {k}: {n}");
                    }
                }
            }
            Ok(exit::OK)
        }
        ReceiptsCommand::Export { format, since } => {
            let filter = Filter {
                since: time(since)?,
                ascending: true,
                ..Default::default()
            };
            let log = open_log(&ctx)?;
            let stdout = output::Out;
            match format {
                ExportFormat::Jsonl => {
                    let mut out = std::io::BufWriter::new(stdout);
                    log.for_each(&filter, |r| {
                        serde_json::to_writer(&mut out, &r.to_json())?;
                        out.write_all(b"\n")
                    })?;
                    out.flush().map_err(io_err)?;
                }
                ExportFormat::Csv => {
                    let mut w = csv::Writer::from_writer(stdout);
                    w.write_record(CSV_HEADER).map_err(io_err)?;
                    log.for_each(&filter, |r| {
                        w.write_record(csv_row(&r)).map_err(std::io::Error::other)
                    })?;
                    w.flush().map_err(io_err)?;
                }
            }
            Ok(exit::OK)
        }
        ReceiptsCommand::Verify {
            checkpoint: files,
            public_key,
            json,
        } => {
            let key_given = public_key.is_some();
            let trusted = match public_key {
                Some(k) => Some(checkpoint::trusted_key(&k)?),
                None => ctx
                    .home
                    .read(checkpoint::PUBLIC_KEY_FILE)?
                    .map(|b| String::from_utf8_lossy(&b).trim().to_string()),
            };
            let mut cps = files
                .iter()
                .map(|f| checkpoint::load(f, trusted.as_deref()))
                .collect::<Result<Vec<_>, _>>()?;
            let log = open_log(&ctx)?;
            let auto =
                checkpoint::load_auto(&ctx.home, trusted.as_deref(), key_given, !files.is_empty())?;
            cps.extend(auto.checkpoint);
            let mut report = log.verify(&cps)?;
            report.warnings.extend(auto.warnings);
            // The chain's own damage first; a chain that verifies is still
            // not vouched for when its checkpoint was removed.
            if let Some(missing) = auto.missing {
                if report.damage.is_none() {
                    return Err(missing.into());
                }
                report.warnings.push(missing.to_string());
            }
            if trusted.is_none() {
                for cp in &cps {
                    report.warnings.push(format!(
                        "{} is checked only against the key it names ({}): this home has no audit-signing.pub, so nothing shows the key is yours; pass --public-key",
                        cp.source, cp.public_key
                    ));
                }
            }
            for w in &report.warnings {
                errln!("craik: warning: {w}");
            }
            if json {
                let mut v = serde_json::to_value(&report).unwrap_or_default();
                v["checkpoints"] = cps
                    .iter()
                    .map(|cp| {
                        serde_json::json!({
                            "file": cp.source, "seq": cp.seq, "hash": cp.hash,
                            "public_key": cp.public_key, "key_trusted": trusted.is_some(),
                        })
                    })
                    .collect();
                output::json(&v);
            } else if let Some(d) = &report.damage {
                // The chain may link past a receipt a checkpoint says was
                // other: what verifies is what comes before the damage.
                let before = report.verified.min((d.seq - 1).max(0));
                outln!("verified {before} receipts before damage");
                outln!("DAMAGED at seq {}: {}: {}", d.seq, d.what, d.detail);
                let before = if d.seq > 1 {
                    format!("receipts 1 to {} verify; ", d.seq - 1)
                } else {
                    String::new()
                };
                errln!(
                    "hint: {before}compare the log with a backup, then restore audit.db from it"
                );
            } else {
                outln!(
                    "verified {} receipts; chain intact (tail seq {}, {} checkpoint(s) held)",
                    report.verified,
                    report.tail_seq,
                    report.checkpoints_checked
                );
            }
            Ok(if report.ok { exit::OK } else { exit::ERROR })
        }
        ReceiptsCommand::Checkpoint { out, json } => {
            let log = open_log(&ctx)?;
            let cp = checkpoint::make(&ctx.home, &ctx.secrets, &log)?;
            let text = serde_json::to_string_pretty(&cp).expect("checkpoint serializes") + "\n";
            if let Some(path) = &out {
                craik::home::write_atomic_path(path, text.as_bytes())?;
            }
            if json {
                output::json(&serde_json::json!({
                    "seq": cp.seq, "hash": cp.hash, "created_at": cp.created_at,
                    "public_key": cp.public_key, "file": out,
                    "checkpoint": cp,
                }));
            } else if out.is_none() {
                out!("{text}");
            } else {
                outln!("checkpoint of seq {} written", cp.seq);
            }
            Ok(exit::OK)
        }
        ReceiptsCommand::Hash {
            family,
            operator_issuer,
        } => {
            if operator_issuer
                .as_deref()
                .is_some_and(|i| i.trim().is_empty())
            {
                return Err(Error::input(
                    "--operator-issuer is empty",
                    "give the issuer URL the operator signs in with (craik whoami --json shows it)",
                ));
            }
            let mut value = zeroize::Zeroizing::new(String::new());
            std::io::stdin()
                .take(64 * 1024)
                .read_to_string(&mut value)
                .map_err(|e| {
                    Error::input(
                        format!("cannot read standard input: {e}"),
                        "pipe the value in",
                    )
                })?;
            let v = value.trim_end_matches(['\r', '\n']);
            if v.is_empty() {
                return Err(Error::input(
                    "nothing on standard input",
                    "pipe the value in: printf %s \"$KEY\" | craik receipts hash --family openai",
                ));
            }
            let key = ctx.load_audit_key()?;
            let h = match (family, operator_issuer) {
                (Some(f), _) => {
                    let f: Family = f.parse()?;
                    key.credential_material(f.as_str(), v)
                }
                (None, Some(iss)) => key.operator(&iss, v),
                (None, None) => unreachable!("clap requires one"),
            };
            outln!("{h}");
            Ok(exit::OK)
        }
    }
}
