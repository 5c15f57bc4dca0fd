//! `craik auth check`.

use super::*;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(add = clap_complete::engine::ArgValueCandidates::new(crate::cli::complete::profiles))]
    pub id: String,
    /// The run id (default: a fresh run_<hex>, printed).
    #[arg(long, value_name = "R")]
    pub run: Option<String>,
    /// An extra policy envelope (repeatable).
    #[arg(long = "policy", value_name = "FILE")]
    pub policies: Vec<std::path::PathBuf>,
    #[command(flatten)]
    pub wait: WaitArg,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(mut ctx: Context, args: Args) -> craik::Result<i32> {
    let Args {
        id,
        run,
        policies,
        wait,
        json,
    } = args;
    let id: ProfileId = id.parse()?;
    let run = run.unwrap_or_else(craik::approval::new_run_id);
    let spec = craik::broker::CallSpec {
        target: craik::broker::Target::Profile(id),
        run: run.clone(),
        policy_files: policies,
        capability: craik::broker::Capability::Check,
        wait: wait.duration()?,
    };
    if !json {
        errln!("run: {run}");
    }
    let spinner = (spec.wait.is_some() && std::io::stderr().is_terminal()).then(|| {
        let pb = indicatif::ProgressBar::new_spinner();
        pb.set_message(format!("waiting for approval of run {run}"));
        pb
    });
    let result = spec.resolve(&ctx, &[]).and_then(|r| {
        r.authorize(&mut ctx, || {
            if let Some(pb) = &spinner {
                pb.tick();
            }
        })
    });
    if let Some(pb) = &spinner {
        pb.finish_and_clear();
    }
    let a = match result {
        Ok(a) => a,
        Err(e) => {
            if json {
                let mut out = serde_json::json!({
                    "allowed": false, "run": run, "exit_code": e.exit_code(),
                    "error": e.to_string(),
                });
                if let Some(o) = out.as_object_mut() {
                    o.extend(e.json_fields());
                }
                output::json(&out);
            }
            return Err(e);
        }
    };
    let profile = a.profile().id.to_string();
    let operator = a.operator().map(|o| o.subject.clone());
    let approval = a.approval().map(str::to_string);
    let conditions = a.evaluation().conditions.clone();
    a.record(&mut ctx)?;
    if json {
        output::json(&serde_json::json!({
            "allowed": true, "run": run, "profile": profile,
            "operator": operator, "approval": approval,
            "conditions": conditions,
        }));
    } else {
        outln!(
            "allowed: {} for {} (run {})",
            profile,
            operator.as_deref().unwrap_or("no operator"),
            run
        );
    }
    Ok(exit::OK)
}
