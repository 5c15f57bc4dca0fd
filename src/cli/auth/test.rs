//! `craik auth test`.

use super::*;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A profile or pool id.
    #[arg(add = clap_complete::engine::ArgValueCandidates::new(crate::cli::complete::targets))]
    pub id: String,
    /// The run id (default: a fresh run_<hex>).
    #[arg(long, value_name = "R")]
    pub run: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(mut ctx: Context, args: Args) -> craik::Result<i32> {
    let Args { id, run, json } = args;
    let id: ProfileId = id.parse()?;
    let spec = craik::broker::CallSpec {
        target: craik::broker::Target::guess(&ctx, &id)?,
        run: run.unwrap_or_else(craik::approval::new_run_id),
        policy_files: vec![],
        capability: craik::broker::Capability::Test,
        wait: None,
    };
    let r = craik::broker::test_call::test(&mut ctx, &spec)?;
    if json {
        output::json(&r);
    } else {
        outln!(
            "{}: {} (HTTP {}, {} ms, run {})",
            r.profile,
            r.status,
            r.http_status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "-".into()),
            r.latency_ms,
            r.run
        );
    }
    Ok(r.exit_code())
}
