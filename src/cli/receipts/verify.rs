//! `craik receipts verify`.

use super::*;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A checkpoint file written by craik receipts checkpoint.
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Vec<PathBuf>,
    /// The key checkpoints must be signed with: its base64, or a file
    /// holding it (a copy of audit-signing.pub). Default: this home's
    /// audit-signing.pub.
    #[arg(long, value_name = "KEY|FILE")]
    pub public_key: Option<String>,
    /// An archive file written by craik receipts archive, of a range
    /// since pruned: checked whole and against the log's record of it.
    #[arg(long, value_name = "FILE")]
    pub archive: Vec<PathBuf>,
    /// Every chain of the team store instead of this home's log (a
    /// read-only login suffices); --checkpoint then takes team
    /// checkpoints (craik receipts checkpoint --team).
    #[arg(long)]
    pub team: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

fn run_team(
    mut ctx: Context,
    files: &[PathBuf],
    trusted: Option<&str>,
    json: bool,
) -> craik::Result<i32> {
    let cps = files
        .iter()
        .map(|f| craik::team::load_checkpoint(f, trusted))
        .collect::<Result<Vec<_>, _>>()?;
    let chains = craik::team::verify(&mut ctx, &cps)?;
    let ok = chains.iter().all(|c| c.damage.is_none());
    if json {
        let list: Vec<serde_json::Value> = chains
            .iter()
            .map(|c| {
                serde_json::json!({
                    "home_id": c.home_id, "label": c.label, "receipts": c.receipts,
                    "damage": c.damage.as_ref().map(|(seq, what)| serde_json::json!({"seq": seq, "what": what})),
                })
            })
            .collect();
        output::json(&serde_json::json!({"ok": ok, "chains": list}));
    } else {
        for c in &chains {
            match &c.damage {
                None => outln!(
                    "ok    home {} ({}): {} receipts verify",
                    c.home_id,
                    craik::term::printable(&c.label),
                    c.receipts
                ),
                Some((seq, what)) => outln!(
                    "FAIL  home {} ({}): receipt {seq}: {what}",
                    c.home_id,
                    craik::term::printable(&c.label)
                ),
            }
        }
    }
    Ok(if ok { exit::OK } else { exit::ERROR })
}

pub fn run(ctx: Context, args: Args) -> craik::Result<i32> {
    let Args {
        checkpoint: files,
        archive: archives,
        public_key,
        team,
        json,
    } = args;
    let key_given = public_key.is_some();
    let trusted = match public_key {
        Some(k) => Some(craik::audit::checkpoint::trusted_key(&k)?),
        None => ctx
            .home
            .read(craik::audit::checkpoint::PUBLIC_KEY_FILE)?
            .map(|b| String::from_utf8_lossy(&b).trim().to_string()),
    };
    if team {
        return run_team(ctx, &files, trusted.as_deref(), json);
    }
    let mut cps = files
        .iter()
        .map(|f| craik::audit::checkpoint::load(f, trusted.as_deref()))
        .collect::<Result<Vec<_>, _>>()?;
    let log = open_log(&ctx)?;
    let auto = craik::audit::checkpoint::load_auto(
        &ctx.home,
        trusted.as_deref(),
        key_given,
        !files.is_empty(),
    )?;
    cps.extend(auto.checkpoint);
    let mut report = log.verify_signed(&cps, trusted.as_deref())?;
    // Checkpoints of archived receipts, against the archives given.
    for cp in craik::audit::retention::check_files(&log, &archives, trusted.as_deref(), &cps)? {
        let covered = craik::audit::archived_checkpoint_warning(cp);
        report.warnings.retain(|w| *w != covered);
    }
    report.warnings.extend(auto.warnings);
    // The chain's own damage first; a chain that verifies is still
    // not vouched for when its checkpoint was removed.
    let mut missing_json = None;
    if let Some(missing) = auto.missing {
        if report.damage.is_some() {
            report.warnings.push(missing.to_string());
        } else if json {
            // Not vouched for: the JSON says why, and the exit code is 1.
            report.ok = false;
            missing_json = Some(serde_json::json!({
                "error": missing.to_string(),
                "hint": missing.hint(),
            }));
        } else {
            return Err(missing.into());
        }
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
        if let Some(m) = missing_json {
            v["checkpoint_missing"] = m;
        }
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
        errln!("hint: {before}compare the log with a backup, then restore audit.db from it");
    } else {
        let archived = match report.archived_through {
            Some(n) => format!(
                "; receipts 1 to {n} archived and pruned, {} archive file(s) checked",
                archives.len()
            ),
            None => String::new(),
        };
        outln!(
            "verified {} receipts; chain intact (tail seq {}, {} checkpoint(s) held{archived})",
            report.verified,
            report.tail_seq,
            report.checkpoints_checked
        );
    }
    Ok(if report.ok { exit::OK } else { exit::ERROR })
}
