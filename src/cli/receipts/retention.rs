//! `craik receipts archive` and `craik receipts prune`.

use super::*;

use craik::audit::retention::{self, Archived};
use craik::audit::{NewReceipt, ReceiptKind, Status};

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("end").required(true).args(["until", "through"])))]
pub struct ArchiveArgs {
    /// Archive the receipts made at or before this time (RFC 3339, or a
    /// duration before now: 90d, 2w).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Archive the receipts up to this seq.
    #[arg(long, value_name = "SEQ")]
    pub through: Option<i64>,
    /// The archive file to write (must not exist).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    /// The archive file written by craik receipts archive.
    #[arg(long, value_name = "FILE")]
    pub archive: PathBuf,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

fn receipt(
    kind: ReceiptKind,
    ctx: &mut Context,
    a: &Archived,
    file: &std::path::Path,
) -> NewReceipt {
    NewReceipt::new(kind, Status::Ok)
        .operator(craik::operator::current(ctx).ok().flatten())
        .detail("first_seq", a.first_seq)
        .detail("last_seq", a.last_seq)
        .detail("last_hash", a.last_hash.as_str())
        .detail("receipts", a.receipts)
        .detail("file", file.display().to_string())
}

fn show(a: &Archived, file: &std::path::Path, done: &str, json: bool) {
    if json {
        let mut v = serde_json::to_value(a).unwrap_or_default();
        v["file"] = serde_json::json!(file);
        output::json(&v);
    } else {
        outln!(
            "{done} receipts {} to {} ({}) {}",
            a.first_seq,
            a.last_seq,
            a.receipts,
            craik::term::printable(&file.display().to_string())
        );
    }
}

pub fn archive(mut ctx: Context, args: ArchiveArgs) -> craik::Result<i32> {
    let ArchiveArgs {
        until,
        through,
        out,
        json,
    } = args;
    let a = {
        let log = &ctx.read_audit_log()?;
        let through = match (through, until) {
            (Some(n), _) => n,
            (None, Some(t)) => {
                let t = parse_time(&t)?.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                retention::last_before(log, &t)?.ok_or_else(|| {
                    Error::input(
                        format!("no receipt was made at or before {t}"),
                        "give a later --until, or see the oldest with: craik receipts export | head -n1",
                    )
                })?
            }
            (None, None) => unreachable!("clap requires --until or --through"),
        };
        retention::archive(&ctx.home, &ctx.secrets, log, through, &out)?
    };
    let r = receipt(ReceiptKind::ReceiptsArchived, &mut ctx, &a, &out);
    ctx.record(r)?;
    show(&a, &out, "archived", json);
    if !json {
        errln!(
            "hint: keep a copy where the agent cannot write, then: craik receipts prune --archive {}",
            craik::term::printable(&out.display().to_string())
        );
    }
    Ok(exit::OK)
}

pub fn prune(mut ctx: Context, args: PruneArgs) -> craik::Result<i32> {
    let PruneArgs { archive, json } = args;
    // The signing key's own public key, not audit-signing.pub beside the
    // log (which an agent can replace along with a forged archive).
    let trusted = craik::audit::checkpoint::public_key(&ctx.secrets)?;
    // A member of a team prunes only what its team store holds.
    if craik::team::config(&ctx.home)?.is_some() {
        let st = craik::team::status(&mut ctx)?;
        let recs = retention::check_file(&archive, Some(&trusted))?;
        let last = recs.last().map_or(0, |a| a.last_seq);
        if st.shipped_seq < last {
            return Err(Error::input(
                format!(
                    "the team store holds this home's receipts up to {} only, and the archive reaches {last}",
                    st.shipped_seq
                ),
                "let the receipts ship first (craik team status shows the backlog), then prune",
            ));
        }
    }
    let a = retention::prune(&mut ctx.audit()?.0, &archive, &trusted)?;
    let r = receipt(ReceiptKind::ReceiptsPruned, &mut ctx, &a, &archive);
    ctx.record(r)?;
    // The automatic checkpoint may name a pruned receipt: one of the tail.
    let log = ctx.read_audit_log()?;
    craik::audit::checkpoint::renew_auto(&ctx.home, &ctx.secrets, &log)?;
    show(&a, &archive, "pruned", json);
    Ok(exit::OK)
}
