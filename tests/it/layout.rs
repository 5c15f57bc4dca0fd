//! The library's module graph: no file depends, through a chain of
//! `use`s and paths, on a file that depends back on it, and the audit log
//! sits below everything that decides (it depends only on the home, the
//! secret store and profile patterns). A module's own submodules are its
//! business (a `mod.rs` declares and re-exports them), so an edge from a
//! module to one of its descendants is not counted. `cli/` and `main.rs`
//! are the binary, above everything.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type ModPath = Vec<String>;

/// Every library file as its module path (`src/audit/store/log.rs` is
/// `audit::store::log`, `src/audit/mod.rs` is `audit`), with its source.
fn library_files(src: &Path) -> BTreeMap<ModPath, (bool, String)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("read src") {
            let p = e.expect("dir entry").path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if p.extension().and_then(|x| x.to_str()) != Some("rs") {
                continue;
            }
            let rel = p.strip_prefix(src).expect("under src");
            let mut parts: ModPath = rel
                .iter()
                .map(|c| c.to_string_lossy().trim_end_matches(".rs").to_string())
                .collect();
            if parts.first().map(String::as_str) == Some("cli") || parts == ["main"] {
                continue;
            }
            let is_mod = matches!(parts.last().map(String::as_str), Some("mod" | "lib"));
            if is_mod {
                parts.pop();
            }
            let text = std::fs::read_to_string(&p).expect("read source");
            out.insert(parts, (is_mod, text));
        }
    }
    out
}

/// Drops line comments and everything from the first `#[cfg(test)]` on
/// (tests may reach anywhere).
fn code_of(text: &str) -> String {
    let cut = text.find("#[cfg(test)]").unwrap_or(text.len());
    text[..cut]
        .lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn skip_ws(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && s[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

fn ident(s: &[u8], i: usize) -> Option<(String, usize)> {
    let i = skip_ws(s, i);
    let mut j = i;
    while j < s.len() && (s[j].is_ascii_alphanumeric() || s[j] == b'_' || s[j] == b'*') {
        j += 1;
    }
    (j > i).then(|| (String::from_utf8_lossy(&s[i..j]).into_owned(), j))
}

/// Parses a path or use tree at `i` (just after `crate::` and the like),
/// pushing every full path it names onto `out`.
fn use_tree(s: &[u8], mut i: usize, mut prefix: ModPath, out: &mut Vec<ModPath>) -> usize {
    loop {
        i = skip_ws(s, i);
        if s.get(i) == Some(&b'{') {
            return group(s, i + 1, prefix, out);
        }
        let Some((seg, j)) = ident(s, i) else {
            return i;
        };
        prefix.push(seg);
        i = skip_ws(s, j);
        if !s[i..].starts_with(b"::") {
            out.push(prefix);
            return i;
        }
        i += 2;
    }
}

/// The inside of `{ a, b::c, }`, from just after the brace.
fn group(s: &[u8], mut i: usize, prefix: ModPath, out: &mut Vec<ModPath>) -> usize {
    loop {
        i = skip_ws(s, i);
        if s.get(i) == Some(&b'}') {
            out.push(prefix);
            return i + 1;
        }
        i = use_tree(s, i, prefix.clone(), out);
        i = skip_ws(s, i);
        match s.get(i) {
            Some(b',') => i += 1,
            Some(b'}') => {
                out.push(prefix);
                return i + 1;
            }
            _ => return i,
        }
    }
}

/// For each file, the files its code names (not its own descendants).
fn edges(files: &BTreeMap<ModPath, (bool, String)>) -> BTreeMap<ModPath, BTreeSet<ModPath>> {
    let mut g = BTreeMap::new();
    for (m, (is_mod, text)) in files {
        let code = code_of(text);
        let s = code.as_bytes();
        let mut deps = BTreeSet::new();
        for kw in ["crate::", "super::", "self::"] {
            let mut from = 0;
            while let Some(k) = code[from..].find(kw) {
                let at = from + k;
                from = at + kw.len();
                if at > 0 && (s[at - 1].is_ascii_alphanumeric() || s[at - 1] == b'_') {
                    continue;
                }
                // The module a path starts from.
                let base: ModPath = match kw {
                    "crate::" => vec![],
                    // In a mod.rs, super is the parent; in a file module
                    // too (its parent is the directory's module).
                    "super::" => m[..m.len().saturating_sub(1)].to_vec(),
                    _ => m.clone(),
                };
                let _ = is_mod;
                let mut paths = Vec::new();
                use_tree(s, from, base, &mut paths);
                for p in paths {
                    let target = (1..=p.len())
                        .rev()
                        .map(|n| p[..n].to_vec())
                        .find(|q| files.contains_key(q));
                    if let Some(t) = target
                        && &t != m
                        && !t.starts_with(m)
                    {
                        deps.insert(t);
                    }
                }
            }
        }
        g.insert(m.clone(), deps);
    }
    g
}

/// The groups of files that reach each other (Tarjan), of two or more.
fn cycles(g: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> Vec<Vec<String>> {
    struct T<'a> {
        g: &'a BTreeMap<ModPath, BTreeSet<ModPath>>,
        index: BTreeMap<&'a ModPath, usize>,
        low: BTreeMap<&'a ModPath, usize>,
        stack: Vec<&'a ModPath>,
        on: BTreeSet<&'a ModPath>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a ModPath) {
        let n = t.index.len();
        t.index.insert(v, n);
        t.low.insert(v, n);
        t.stack.push(v);
        t.on.insert(v);
        for w in t.g.get(v).into_iter().flatten() {
            let Some((w, _)) = t.g.get_key_value(w) else {
                continue;
            };
            if !t.index.contains_key(w) {
                visit(t, w);
                let lw = t.low[w];
                let lv = t.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if t.on.contains(w) {
                let iw = t.index[w];
                let lv = t.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(w);
                comp.push(if w.is_empty() {
                    "crate".to_string()
                } else {
                    w.join("::")
                });
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in g.keys() {
        if !t.index.contains_key(v) {
            visit(&mut t, v);
        }
    }
    t.out
}

fn graph_of(files: &[(&str, &str)]) -> BTreeMap<ModPath, BTreeSet<ModPath>> {
    let files = files
        .iter()
        .map(|(p, text)| {
            let mut m: ModPath = p.split("::").map(str::to_string).collect();
            let is_mod = m.last().map(String::as_str) == Some("mod");
            if is_mod {
                m.pop();
            }
            (m, (is_mod, text.to_string()))
        })
        .collect();
    edges(&files)
}

#[test]
fn the_checker_sees_a_cycle_and_ignores_a_facade() {
    // a::x and b name each other through a use tree: a cycle.
    let g = graph_of(&[
        ("a::mod", "pub mod x;\npub use x::Thing;"),
        (
            "a::x",
            "use crate::{b::{self, Other}, home};\nuse super::y;",
        ),
        ("a::y", "// use crate::b; (a comment)\nfn f() {}"),
        ("b", "fn f() -> crate::a::x::Thing {}"),
        ("home", "#[cfg(test)]\nmod t { use crate::a::x; }"),
    ]);
    assert_eq!(cycles(&g), vec![vec!["a::x".to_string(), "b".to_string()]]);
    // The facade's edge to its own child is not counted; comments and
    // tests are not code.
    assert!(g[&vec!["a".to_string()]].is_empty());
    assert!(g[&vec!["a".to_string(), "y".to_string()]].is_empty());
    assert!(g[&vec!["home".to_string()]].is_empty());
    assert!(g[&vec!["a".to_string(), "x".to_string()]].contains(&vec!["home".to_string()]));
}

#[test]
fn the_library_has_no_module_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = library_files(&src);
    let g = edges(&files);
    // The checker reads the real code: a few edges that must be there.
    let m = |s: &str| -> ModPath { s.split("::").map(str::to_string).collect() };
    for (from, to) in [
        ("broker::pipeline", "approval"),
        ("broker::pipeline", "credential"),
        ("audit::store::log", "audit::store::schema"),
        ("credential::oauth", "credential::source"),
    ] {
        assert!(
            g.get(&m(from)).is_some_and(|d| d.contains(&m(to))),
            "the layout checker no longer sees {from} -> {to}; fix the checker or this list"
        );
    }
    let found = cycles(&g);
    assert!(
        found.is_empty(),
        "module cycles (each group reaches itself through `use`s): {found:?}"
    );
}

#[test]
fn the_audit_log_depends_only_on_what_is_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = library_files(&src);
    let g = edges(&files);
    let allowed = [
        "audit", "home", "secret", "pattern", "duration", "exit", "error",
    ];
    let mut bad = BTreeSet::new();
    for (m, deps) in &g {
        if m.first().map(String::as_str) != Some("audit") {
            continue;
        }
        for d in deps {
            let top = d.first().map(String::as_str).unwrap_or("crate");
            if !allowed.contains(&top) {
                bad.insert(format!("{} -> {}", m.join("::"), d.join("::")));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "audit/ must depend only on {allowed:?}; it names: {bad:?}"
    );
}

#[test]
fn the_top_level_modules_are_layered() {
    // As files, but each top-level module taken whole: a layer may use
    // those below it, never one above. `error` is left out: it gathers
    // every module's error type into `craik::Error`, which they return.
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = library_files(&src);
    let mut top: BTreeMap<ModPath, BTreeSet<ModPath>> = BTreeMap::new();
    for (m, deps) in edges(&files) {
        let Some(from) = m.first() else { continue };
        if from == "error" {
            continue;
        }
        let entry = top.entry(vec![from.clone()]).or_default();
        for d in deps {
            if let Some(to) = d.first()
                && to != from
                && to != "error"
            {
                entry.insert(vec![to.clone()]);
            }
        }
    }
    assert!(
        top.get(&vec!["broker".to_string()])
            .is_some_and(|d| d.contains(&vec!["credential".to_string()])),
        "the layout checker no longer sees broker -> credential"
    );
    let found = cycles(&top);
    assert!(
        found.is_empty(),
        "top-level modules that use each other: {found:?}"
    );
}

#[test]
fn only_the_pipeline_fetches_credential_material() {
    // DESIGN's first principle, held by the code's shape: material comes
    // from credential::material, which only the pipeline's started state
    // calls, once its receipt is durable; the sources beneath it are
    // called from credential/mod.rs alone.
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = library_files(&src);
    let callers = |needle: &str| -> Vec<String> {
        files
            .iter()
            .filter(|(_, (_, text))| code_of(text).contains(needle))
            .map(|(m, _)| m.join("::"))
            .collect()
    };
    assert_eq!(callers("credential::material("), ["broker::pipeline"]);
    assert_eq!(callers("source::resolve("), ["credential"]);
    assert_eq!(callers("access_token(ctx"), ["credential"]);
}
