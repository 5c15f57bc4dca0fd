//! `craik policy ...`

use std::path::PathBuf;

use clap::Subcommand;

use craik::exit;
use craik::policy::Policy;
use craik::profile::ProfileId;

use super::output::{self, errln, outln};

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate envelopes and print them normalized.
    Check {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Every condition's outcome for the current operator; writes nothing.
    Explain {
        /// The profile id to explain.
        #[arg(long, value_name = "ID")]
        profile: String,
        /// An extra policy file in force (repeatable).
        #[arg(long = "policy", value_name = "FILE")]
        policies: Vec<PathBuf>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: PolicyCommand) -> craik::Result<i32> {
    match cmd {
        PolicyCommand::Check { files, json } => {
            let mut out = Vec::new();
            for f in &files {
                let p = Policy::load(f)?;
                let warnings = p.warnings();
                if !json {
                    for w in &warnings {
                        errln!("warning: {}: {w}", f.display());
                    }
                }
                out.push(
                    serde_json::json!({"file": f, "envelope": p.envelope, "warnings": warnings}),
                );
            }
            if json {
                output::json(&serde_json::json!({ "valid": true, "policies": out }));
            } else {
                for o in out {
                    outln!("{}: valid", o["file"].as_str().unwrap_or_default());
                    outln!(
                        "{}",
                        serde_json::to_string_pretty(&o["envelope"]).unwrap_or_default()
                    );
                }
            }
            Ok(exit::OK)
        }
        PolicyCommand::Explain {
            profile,
            policies,
            json,
        } => {
            let mut ctx = super::context()?;
            let id: ProfileId = profile.parse()?;
            let (eval, op) = craik::approval::explain(&mut ctx, &id, &policies)?;
            if json {
                output::json(&serde_json::json!({
                    "profile": id.to_string(),
                    "operator": op.as_ref().map(|o| &o.subject),
                    "allowed": eval.allowed,
                    "conditions": eval.conditions,
                    "approval": eval.approval,
                }));
            } else {
                outln!(
                    "{id} for {}: {}",
                    op.as_ref()
                        .map(|o| o.subject.as_str())
                        .unwrap_or("no operator"),
                    if eval.allowed { "allowed" } else { "DENIED" }
                );
                if eval.conditions.is_empty() {
                    outln!(
                        "no policy in force and no grants on {id}: every operator may use it (add --policy FILE, or put one in CRAIK_HOME/policy.json)"
                    );
                }
                let mut t = output::table(&["CONDITION", "OUTCOME", "REQUIRED", "SEEN", "SOURCE"]);
                for c in &eval.conditions {
                    t.add_row(vec![
                        c.field.clone(),
                        if c.ok {
                            "ok".into()
                        } else {
                            "FAIL".to_string()
                        },
                        c.required.clone(),
                        c.seen.clone(),
                        c.source.clone(),
                    ]);
                }
                if !eval.conditions.is_empty() {
                    output::print_table(&t);
                }
                outln!("approval: {}", eval.approval.mode.as_str());
            }
            Ok(exit::OK)
        }
    }
}
