//! `craik receipts list`: filters, profile patterns and output formats.

use chrono::Utc;

use super::{COLUMNS, fixture, list, rfc3339, show_json};
use crate::common::assert_schema;

#[test]
fn receipts_list_filters() {
    let fx = fixture();
    let env = &fx.env;
    let desc = |r: std::ops::RangeInclusive<i64>| r.rev().collect::<Vec<_>>();
    assert_eq!(list(env, &[]), desc(1..=11));
    assert_eq!(
        list(env, &["--operator", "alice@example.com"]),
        [5, 4, 3, 1]
    );
    assert_eq!(list(env, &["--operator", "alice-sub"]), [5, 4, 3, 1]);
    assert_eq!(list(env, &["--operator", "bob@example.com"]), [6, 2]);
    assert_eq!(list(env, &["--operator", "nobody@example.com"]), [0; 0]);
    assert_eq!(
        list(env, &["--operator-hash", &fx.alice_hash]),
        [5, 4, 3, 1]
    );
    assert_eq!(
        list(env, &["--profile", "openai:*"]),
        [11, 10, 9, 8, 7, 5, 4, 3]
    );
    assert_eq!(list(env, &["--profile", "openai:ci"]), [5, 4]);
    assert_eq!(list(env, &["--profile", "anthropic:*"]), [6, 2]);
    // Patterns as in policies: `*` stops at ':', `**` does not.
    assert_eq!(list(env, &["--profile", "open*"]), Vec::<i64>::new());
    assert_eq!(
        list(env, &["--profile", "open**"]),
        [11, 10, 9, 8, 7, 5, 4, 3]
    );
    assert_eq!(list(env, &["--profile", "*:ci"]), [5, 4]);
    assert_eq!(list(env, &["--profile", "openai:c?"]), [5, 4]);
    for bad in ["openai:[ab]*", "openai:wo[r]k", "", "a b"] {
        env.run(&["receipts", "list", "--profile", bad])
            .code(1)
            .error_with_hint("profile patterns are as in policies");
    }
    assert_eq!(list(env, &["--kind", "profile_added"]), [10, 9, 8]);
    assert_eq!(list(env, &["--kind", "denial"]), [7, 3]);
    assert_eq!(list(env, &["--status", "denied"]), [7, 3]);
    assert_eq!(list(env, &["--status", "error"]), [5]);
    assert_eq!(list(env, &["--run", "run-7"]), [5, 4]);
    assert_eq!(list(env, &["--since", "24h"]), desc(4..=11));
    assert_eq!(list(env, &["--since", "7d"]), desc(2..=11));
    let four_days_ago = rfc3339(Utc::now() - chrono::Duration::days(4));
    assert_eq!(list(env, &["--until", &four_days_ago]), [2, 1]);
    assert_eq!(list(env, &["--since", "6d", "--until", "1d"]), [3, 2]);
    assert_eq!(list(env, &["--limit", "2"]), [11, 10]);
    assert_eq!(
        list(env, &["--profile", "openai:*", "--status", "denied"]),
        [7, 3]
    );
    assert_eq!(
        list(
            env,
            &[
                "--operator",
                "alice@example.com",
                "--since",
                "24h",
                "--limit",
                "1"
            ]
        ),
        [5]
    );

    // The identity hash of the profiles' key finds their receipts.
    let k1 = show_json(env, "8")["auth_identity_hash"].clone();
    assert_eq!(
        list(env, &["--identity-hash", k1.as_str().unwrap()]),
        [9, 8]
    );

    // --jsonl: one schema-valid receipt per line, same order.
    let r = env.run(&["receipts", "list", "--jsonl", "--profile", "openai:*"]);
    r.ok();
    let seqs: Vec<i64> = r
        .stdout
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
            assert_schema("receipt.schema.json", &v);
            v["seq"].as_i64().unwrap()
        })
        .collect();
    assert_eq!(seqs, [11, 10, 9, 8, 7, 5, 4, 3]);

    // --csv: a header naming every field, then one row per receipt.
    let r = env.run(&["receipts", "list", "--csv", "--run", "run-7"]);
    r.ok();
    let mut rd = csv::Reader::from_reader(r.stdout.as_bytes());
    let header: Vec<String> = rd.headers().unwrap().iter().map(str::to_string).collect();
    assert_eq!(header, COLUMNS);
    let rows: Vec<csv::StringRecord> = rd.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(&rows[0][0], "5");
    assert_eq!(&rows[0][3], "call.finished");
    assert_eq!(&rows[0][16], "alice@example.com");

    // The table.
    let r = env.run(&["receipts", "list", "--kind", "denial"]);
    r.ok();
    assert!(
        r.stdout.contains("SEQ") && r.stdout.contains("openai:prod"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("call.started"), "{}", r.stdout);

    // Bad input is refused with a hint.
    env.run(&["receipts", "list", "--since", "yesterday"])
        .code(1)
        .error_with_hint("yesterday");
    let usage = env.run(&["receipts", "list", "--json", "--csv"]);
    usage.code(2);

    // A kind no receipt has (mistyped) is told apart from one that matched
    // nothing under the other filters.
    let r = env.run(&["receipts", "list", "--kind", "call-started", "--json"]);
    r.ok();
    assert_eq!(r.json()["receipts"], serde_json::json!([]));
    assert!(
        r.stderr
            .contains("no receipt in this log has kind \"call-started\"")
            && r.stderr.contains("call.started"),
        "{}",
        r.stderr
    );
    let r = env.run(&[
        "receipts",
        "list",
        "--kind",
        "denial",
        "--run",
        "no-such-run",
    ]);
    r.ok();
    assert_eq!(r.stderr, "", "a known kind that matched nothing");
    // Filters that could match nothing are refused, not answered empty.
    for (flag, value) in [
        ("--identity-hash", "0123abcd"),
        ("--operator-hash", "hmac-sha256:00"),
    ] {
        env.run(&["receipts", "list", flag, value])
            .code(1)
            .error_with_hint("is not an identity hash");
    }
    env.run(&["receipts", "list", "--since", "1h", "--until", "2d"])
        .code(1)
        .error_with_hint("is after --until");
}
