//! `craik receipts show`.

use super::*;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A receipt id (rcpt_...) or seq.
    pub id: String,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: Context, args: Args) -> craik::Result<i32> {
    let Args { id, json } = args;
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
