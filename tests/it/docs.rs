//! docs/cli.md against clap: every command craik has is in the reference,
//! with every flag it takes in its synopsis, and the reference names no
//! command or flag craik does not have. `--help` is the source; the
//! reference is written by hand, so this is what keeps them together.

use std::collections::BTreeMap;

use crate::common::Env;

/// The subcommands and long flags `craik <path> --help` lists.
fn help_of(env: &Env, path: &[String]) -> (Vec<String>, Vec<String>) {
    let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
    args.push("--help");
    let r = env.run(&args);
    r.ok();
    let mut commands = Vec::new();
    let mut flags = Vec::new();
    let mut section = "";
    for line in r.stdout.lines() {
        if !line.starts_with(' ') {
            section = line.trim_end_matches(':');
            continue;
        }
        let t = line.trim_start();
        // A command starts two spaces in and an option with '-'; other
        // lines continue a description.
        let entry = match section {
            "Commands" => !line.starts_with("   "),
            _ => t.starts_with('-'),
        };
        if !entry {
            continue;
        }
        match section {
            "Commands" => {
                if let Some(name) = t.split_whitespace().next()
                    && name != "help"
                {
                    commands.push(name.to_string());
                }
            }
            "Options" => {
                for w in t.split([' ', ',', '=', '[', '<']) {
                    if let Some(f) = w.strip_prefix("--")
                        && !f.is_empty()
                        && !matches!(f, "help" | "version")
                    {
                        flags.push(format!("--{f}"));
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    (commands, flags)
}

/// Every command path (`auth pool create`) with the flags it takes.
fn commands(env: &Env) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    let mut todo: Vec<Vec<String>> = vec![vec![]];
    while let Some(path) = todo.pop() {
        let (subs, flags) = help_of(env, &path);
        if !path.is_empty() {
            out.insert(path.join(" "), flags);
        }
        for s in subs {
            let mut p = path.clone();
            p.push(s);
            todo.push(p);
        }
    }
    out
}

/// The synopsis lines of `craik <command>` in the reference: a heading or
/// table cell that starts with it.
fn synopses<'a>(doc: &'a str, command: &str) -> Vec<&'a str> {
    let start = format!("`craik {command}");
    doc.lines()
        .filter(|l| {
            l.match_indices(&start).any(|(i, _)| {
                let rest = &l[i + start.len()..];
                rest.starts_with(' ') || rest.starts_with('`')
            })
        })
        .collect()
}

#[test]
fn the_cli_reference_matches_clap() {
    let env = Env::new();
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/cli.md"))
        .expect("docs/cli.md");
    let cmds = commands(&env);
    // The walk reached the nested groups.
    for c in [
        "auth add",
        "auth pool create",
        "receipts verify",
        "exec",
        "proxy",
    ] {
        assert!(
            cmds.contains_key(c),
            "help walk missed {c}: {:?}",
            cmds.keys()
        );
    }
    let mut problems = Vec::new();
    for (cmd, flags) in &cmds {
        let lines = synopses(&doc, cmd);
        let is_group = cmds.keys().any(|k| k.starts_with(&format!("{cmd} ")));
        if lines.is_empty() {
            if !is_group {
                problems.push(format!("`craik {cmd}` is not in docs/cli.md"));
            }
            continue;
        }
        for f in flags {
            if !lines.iter().any(|l| {
                l.match_indices(f.as_str()).any(|(i, _)| {
                    !l[i + f.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '-')
                })
            }) {
                problems.push(format!("`craik {cmd}`: {f} is missing from its synopsis"));
            }
        }
    }
    // And the reverse: every `craik <words>` synopsis names a command.
    for line in doc.lines() {
        for (i, _) in line.match_indices("`craik ") {
            let words: Vec<&str> = line[i + 7..]
                .split(['`', ' '])
                .take_while(|w| {
                    w.chars().all(|c| c.is_ascii_lowercase() || c == '-') && !w.is_empty()
                })
                .collect();
            if words.is_empty() {
                continue;
            }
            let known = (1..=words.len())
                .rev()
                .any(|n| cmds.contains_key(&words[..n].join(" ")));
            if !known {
                problems.push(format!(
                    "docs/cli.md names `craik {}`, which craik lacks",
                    words.join(" ")
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "docs/cli.md and clap differ:\n{}",
        problems.join("\n")
    );
}

/// Every option of every command says what it does in `--help`.
#[test]
fn every_option_has_help_text() {
    let mut bare = Vec::new();
    let mut stack: Vec<Vec<String>> = vec![vec![]];
    while let Some(path) = stack.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let out = std::process::Command::new(crate::common::craik_bin())
            .args(&args)
            .output()
            .expect("run craik --help");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut in_commands = false;
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let line = *line;
            if line.starts_with("Commands:") {
                in_commands = true;
                continue;
            }
            if line.ends_with(':') && !line.starts_with(' ') {
                in_commands = false;
            }
            let t = line.trim_start();
            if in_commands {
                if let Some(name) = t.split_whitespace().next()
                    && name != "help"
                    && line.starts_with("  ")
                    && !line.starts_with("   ")
                {
                    let mut p = path.clone();
                    p.push(name.to_string());
                    stack.push(p);
                }
                continue;
            }
            // An option line whose description is missing: the flag (and
            // its value) and nothing after it.
            if t.starts_with('-') {
                let rest: Vec<&str> = t.splitn(2, "  ").collect();
                // Long help puts the description on the next line.
                let below = lines
                    .get(i + 1)
                    .is_some_and(|n| n.starts_with("          ") && !n.trim().is_empty());
                if (rest.len() == 1 || rest[1].trim().is_empty()) && !below {
                    bare.push(format!("craik {}: {t}", path.join(" ")));
                }
            }
        }
    }
    assert!(
        bare.is_empty(),
        "options without help text:\n{}",
        bare.join("\n")
    );
}

/// The GitHub Actions example runs craik commands that exist, with flags
/// craik takes (each is parsed by clap, up to `--help`).
#[test]
fn the_workflow_example_uses_real_commands() {
    let env = Env::new();
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/examples/github-actions-workflow.yml"
    ))
    .expect("the workflow example");
    // Join continued lines, then take each `c ...` (the step's craik).
    let joined = text.replace("\\\n", " ");
    let mut seen = 0;
    for line in joined.lines().map(str::trim) {
        let Some(rest) = line.strip_prefix("c ") else {
            continue;
        };
        let rest = rest
            .split(" -- ")
            .next()
            .unwrap()
            .split(" >")
            .next()
            .unwrap();
        let mut args: Vec<&str> = rest.split_whitespace().collect();
        args.push("--help");
        let r = env.run(&args);
        assert_eq!(r.code, 0, "craik {rest}: {}", r.stderr);
        seen += 1;
    }
    assert!(seen >= 5, "found {seen} craik commands in the example");
}
