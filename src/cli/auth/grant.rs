//! `craik auth grant`.

use super::*;

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("whom").required(true).multiple(true).args(["groups", "subjects", "to_everyone"])))]
pub struct Args {
    #[arg(add = clap_complete::engine::ArgValueCandidates::new(crate::cli::complete::profiles))]
    pub id: String,
    /// Grant to everyone in this group (repeatable).
    #[arg(long = "to-group", value_name = "G")]
    pub groups: Vec<String>,
    /// Grant to this operator subject (repeatable).
    #[arg(long = "to-subject", value_name = "S")]
    pub subjects: Vec<String>,
    /// Open the profile again to everyone policy allows (drops every
    /// grant; a receipt records it).
    #[arg(long, conflicts_with_all = ["groups", "subjects"])]
    pub to_everyone: bool,
    /// An extra policy file in force (repeatable), as for auth check.
    #[arg(long = "policy", value_name = "FILE")]
    pub policies: Vec<std::path::PathBuf>,
    /// Grant for the whole team: every member's machine applies it (needs
    /// a policy's admin, and a home joined to the team store).
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
        to_everyone,
        policies,
        team,
        json,
    } = args;
    let change = if to_everyone {
        craik::approval::GrantChange::Open
    } else {
        craik::approval::GrantChange::Grant
    };
    grants(
        &mut ctx,
        GrantCmd {
            id: &id,
            groups: &groups,
            subjects: &subjects,
            change,
            policies: &policies,
            team,
            json,
        },
    )
}
