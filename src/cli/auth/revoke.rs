//! `craik auth revoke`.

use super::*;

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("whom").required(true).multiple(true).args(["groups", "subjects"])))]
pub struct Args {
    #[arg(add = clap_complete::engine::ArgValueCandidates::new(crate::cli::complete::profiles))]
    pub id: String,
    /// Revoke this group's grant (repeatable).
    #[arg(long = "group", value_name = "G")]
    pub groups: Vec<String>,
    /// Revoke this subject's grant (repeatable).
    #[arg(long = "subject", value_name = "S")]
    pub subjects: Vec<String>,
    /// An extra policy file in force (repeatable), as for auth check.
    #[arg(long = "policy", value_name = "FILE")]
    pub policies: Vec<std::path::PathBuf>,
    /// Revoke a grant made for the whole team (needs a policy's admin, and
    /// a home joined to the team store).
    #[arg(long)]
    pub team: bool,
    /// Print the grants as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(mut ctx: Context, args: Args) -> craik::Result<i32> {
    let Args {
        id,
        groups,
        subjects,
        policies,
        team,
        json,
    } = args;
    grants(
        &mut ctx,
        GrantCmd {
            id: &id,
            groups: &groups,
            subjects: &subjects,
            change: craik::approval::GrantChange::Revoke,
            policies: &policies,
            team,
            json,
        },
    )
}
