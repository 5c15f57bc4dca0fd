//! `craik receipts show`, `stats` and `export`.

use super::{COLUMNS, fixture, show_json};
use crate::common::assert_schema;

#[test]
fn receipts_show_stats_export() {
    let fx = fixture();
    let env = &fx.env;

    // show: by seq and by id, the same receipt, schema-valid.
    let by_seq = show_json(env, "4");
    assert_schema("receipt.schema.json", &by_seq);
    assert_eq!(by_seq["seq"], 4);
    assert_eq!(by_seq["kind"], "call.started");
    assert_eq!(by_seq["run_id"], "run-7");
    assert_eq!(by_seq["operator_email"], "alice@example.com");
    assert_eq!(
        by_seq["operator_groups"],
        serde_json::json!(["eng", "admins"])
    );
    assert_eq!(by_seq["details"]["model"], "gpt-test");
    let id = by_seq["id"].as_str().unwrap();
    assert_eq!(show_json(env, id), by_seq);
    let added = show_json(env, "8");
    assert_schema("receipt.schema.json", &added);
    assert_eq!(added["kind"], "profile_added");
    assert_eq!(added["auth_profile_id"], "openai:a");
    assert_eq!(added["auth_kind"], "keyring-ref");
    assert_eq!(added["provider_family"], "openai");
    assert_eq!(added["prev_hash"], show_json(env, "7")["hash"]);
    let r = env.run(&["receipts", "show", "4"]);
    r.ok();
    for s in ["call.started", "run-7", "alice@example.com", id] {
        assert!(r.stdout.contains(s), "show lacks {s}:\n{}", r.stdout);
    }
    env.run(&["receipts", "show", "999"])
        .code(1)
        .error_with_hint("no receipt 999");
    env.run(&["receipts", "show", "rcpt_000000000000000000000000"])
        .code(1)
        .error_with_hint("no receipt");

    // stats.
    let r = env.run(&["receipts", "stats", "--json"]);
    r.ok();
    let s = r.json();
    assert_eq!(s["total"], 11);
    assert_eq!(s["by_kind"]["profile_added"], 3);
    assert_eq!(s["by_kind"]["profile_removed"], 1);
    assert_eq!(s["by_kind"]["denial"], 2);
    assert_eq!(s["by_status"]["ok"], 8);
    assert_eq!(s["by_status"]["denied"], 2);
    assert_eq!(s["by_status"]["error"], 1);
    assert_eq!(s["by_profile"]["openai:ci"], 2);
    assert_eq!(s["by_profile"]["openai:c"], 2);
    assert_eq!(s["by_operator"]["alice@example.com"], 4);
    assert_eq!(s["by_operator"]["bob@example.com"], 2);
    let r = env.run(&["receipts", "stats"]);
    r.ok();
    assert!(r.stdout.contains("receipts: 11"), "{}", r.stdout);

    // export jsonl: every receipt, oldest first, each as `show --json`.
    let r = env.run(&["receipts", "export", "--format", "jsonl"]);
    r.ok();
    let lines: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(
        lines
            .iter()
            .map(|v| v["seq"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        (1..=11).collect::<Vec<_>>()
    );
    for v in &lines {
        assert_schema("receipt.schema.json", v);
    }
    assert_eq!(lines[3], by_seq);
    let r = env.run(&["receipts", "export", "--format", "jsonl", "--since", "24h"]);
    r.ok();
    let seqs: Vec<i64> = r
        .stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, (4..=11).collect::<Vec<_>>());

    // export csv.
    let r = env.run(&["receipts", "export", "--format", "csv", "--since", "3d"]);
    r.ok();
    let mut rd = csv::Reader::from_reader(r.stdout.as_bytes());
    assert_eq!(rd.headers().unwrap().iter().collect::<Vec<_>>(), COLUMNS);
    let seqs: Vec<i64> = rd
        .records()
        .map(|x| x.unwrap()[0].parse().unwrap())
        .collect();
    assert_eq!(seqs, (3..=11).collect::<Vec<_>>());
    let r = env.run(&["receipts", "export", "--format", "csv"]);
    r.ok();
    let mut rd = csv::Reader::from_reader(r.stdout.as_bytes());
    let rows: Vec<csv::StringRecord> = rd.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 11);
    assert_eq!(&rows[7][9], "openai:a");
    assert_eq!(&rows[7][21], added["hash"].as_str().unwrap());
    env.run(&["receipts", "export", "--format", "xml"]).code(2);
}
