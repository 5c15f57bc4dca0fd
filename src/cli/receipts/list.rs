//! `craik receipts list`.

use super::*;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Operator subject or email.
    #[arg(long)]
    pub operator: Option<String>,
    /// Operator identity hash (see craik receipts hash).
    #[arg(long, value_name = "H")]
    pub operator_hash: Option<String>,
    /// Profile id, or a pattern as in policies: `*` within a part
    /// (openai:*), `**` across ':', `?` one character.
    #[arg(long, value_name = "GLOB")]
    pub profile: Option<String>,
    /// Credential identity hash (see craik receipts hash).
    #[arg(long, value_name = "H")]
    pub identity_hash: Option<String>,
    /// Only receipts of this kind (call.started, denial, approval, ...).
    #[arg(long, value_name = "K")]
    pub kind: Option<String>,
    /// Only receipts with this status (ok, denied, failed, ...).
    #[arg(long, value_name = "S")]
    pub status: Option<String>,
    /// Only receipts of this run.
    #[arg(long, value_name = "R")]
    pub run: Option<String>,
    /// Only receipts of calls this pool chose the profile for.
    #[arg(long, value_name = "P")]
    pub pool: Option<String>,
    /// RFC 3339, or relative: 30m, 24h, 7d.
    #[arg(long, value_name = "T")]
    pub since: Option<String>,
    /// Only receipts at or before this time (RFC 3339, or 30m, 24h, 7d ago).
    #[arg(long, value_name = "T")]
    pub until: Option<String>,
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub limit: usize,
    /// Print the result as JSON.
    #[arg(long, conflicts_with_all = ["jsonl", "csv"])]
    pub json: bool,
    /// One JSON object per line.
    #[arg(long, conflicts_with = "csv")]
    pub jsonl: bool,
    /// CSV with a header line.
    #[arg(long)]
    pub csv: bool,
    /// Every home's receipts in the team store (each with its home id)
    /// instead of this home's log.
    #[arg(long)]
    pub team: bool,
}

/// A receipt's cells in the table: SEQ, TIME, KIND, STATUS, VIA (the
/// capability: exec, proxy, check, test, approve, grant), PROFILE,
/// OPERATOR, RUN.
fn cells(r: &Receipt) -> Vec<String> {
    vec![
        r.seq.to_string(),
        r.created_at.clone(),
        r.kind.clone(),
        r.status.clone(),
        r.capability.clone().unwrap_or_default(),
        r.auth_profile_id.clone().unwrap_or_default(),
        r.operator_email
            .clone()
            .or_else(|| r.operator_subject.clone())
            .unwrap_or_default(),
        r.run_id.clone().unwrap_or_default(),
    ]
}

/// A receipt's JSON with the home it came from.
fn with_home(home: &str, r: &Receipt) -> serde_json::Value {
    let mut v = serde_json::to_value(r.to_json()).unwrap_or_default();
    v["home_id"] = home.into();
    v
}

pub fn run(ctx: Context, args: Args) -> craik::Result<i32> {
    let Args {
        operator,
        operator_hash,
        profile,
        identity_hash,
        kind,
        status,
        run,
        pool,
        since,
        until,
        limit,
        json,
        jsonl,
        csv,
        team,
    } = args;
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
        pool,
        before: None,
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
    if team {
        return list_team(ctx, &filter, json, jsonl, csv);
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
            t.add_row(cells(r));
        }
        output::print_table(&t);
    }
    Ok(exit::OK)
}

fn list_team(
    mut ctx: Context,
    filter: &Filter,
    json: bool,
    jsonl: bool,
    csv: bool,
) -> craik::Result<i32> {
    let mut rows: Vec<(String, Receipt)> = Vec::new();
    craik::team::query(&mut ctx, filter, |home, r| {
        rows.push((home.to_string(), r));
        Ok(())
    })?;
    if json {
        let rows: Vec<_> = rows.iter().map(|(h, r)| with_home(h, r)).collect();
        output::json(&serde_json::json!({ "receipts": rows }));
    } else if jsonl {
        let mut out = std::io::BufWriter::new(output::Out);
        for (h, r) in &rows {
            serde_json::to_writer(&mut out, &with_home(h, r)).map_err(io_err)?;
            writeln!(out).map_err(io_err)?;
        }
        out.flush().map_err(io_err)?;
    } else if csv {
        let mut w = csv::Writer::from_writer(output::Out);
        let mut header = vec!["home_id"];
        header.extend(CSV_HEADER);
        w.write_record(&header).map_err(io_err)?;
        for (h, r) in &rows {
            let mut row = vec![h.clone()];
            row.extend(csv_row(r));
            w.write_record(&row).map_err(io_err)?;
        }
        w.flush().map_err(io_err)?;
    } else {
        let mut t = output::table(&[
            "HOME", "SEQ", "TIME", "KIND", "STATUS", "VIA", "PROFILE", "OPERATOR", "RUN",
        ]);
        for (h, r) in &rows {
            let mut row = vec![h.chars().take(8).collect::<String>()];
            row.extend(cells(r));
            t.add_row(row);
        }
        output::print_table(&t);
    }
    Ok(exit::OK)
}
