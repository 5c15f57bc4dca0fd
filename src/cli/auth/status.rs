//! `craik auth status`.

use super::*;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: Context, args: Args) -> craik::Result<i32> {
    let Args { json } = args;
    let rows = manage::status(&ctx)?;
    let (sources, _) = craik::credential::onboard::anthropic_sources(&ctx)?;
    // The Anthropic sources matter only where Anthropic is used.
    let show_sources =
        rows.iter().any(|r| r.provider_family == "anthropic") || sources.iter().any(|s| s.active);
    if json {
        output::json(&serde_json::json!({ "profiles": rows, "anthropic_sources": sources }));
    } else if rows.is_empty() {
        outln!("no profiles; add one with: craik auth add <family>:<name> --kind=...");
    } else {
        let mut t = output::table(&["ID", "FAMILY", "KIND", "BACKEND", "LAST TEST", "HEALTH"]);
        for r in rows {
            // A failed `auth test` (a 401) outweighs "secret present".
            let failed_test = r.last_status.as_deref().filter(|s| *s != "ok");
            t.add_row(vec![
                r.id,
                r.provider_family,
                r.kind,
                r.backend,
                match (&r.last_status, &r.last_validated_at) {
                    (Some(s), Some(t)) => format!("{s} at {t}"),
                    _ => "never".into(),
                },
                match failed_test {
                    Some(s) => {
                        format!("FAIL: the last auth test ended {s}; {}", r.health.message)
                    }
                    None => format!(
                        "{}{}",
                        if r.health.ok { "ok: " } else { "FAIL: " },
                        r.health.message
                    ),
                },
            ]);
        }
        output::print_table(&t);
    }
    if !json && show_sources {
        match sources.iter().find(|s| s.active) {
            Some(a) => outln!("anthropic source (--provider anthropic): {}", a.source),
            None => outln!("anthropic source (--provider anthropic): none resolves"),
        }
        for s in sources.iter().filter(|s| !s.active) {
            outln!(
                "  passed over {}: {}",
                s.source,
                s.passed_over.as_deref().unwrap_or("")
            );
        }
    }
    Ok(exit::OK)
}
