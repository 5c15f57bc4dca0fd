//! Terminal helpers: hidden prompts and reading secrets from stdin.

use std::io::{IsTerminal, Read};

use zeroize::Zeroizing;

use crate::Error;

/// Largest secret accepted on standard input.
const MAX_STDIN_SECRET: u64 = 64 * 1024;

/// Reads one secret from standard input (trailing newline trimmed).
pub fn read_secret_stdin() -> crate::Result<Zeroizing<String>> {
    let mut buf = Zeroizing::new(Vec::new());
    std::io::stdin()
        .take(MAX_STDIN_SECRET + 1)
        .read_to_end(&mut buf)
        .map_err(|e| {
            Error::input(
                format!("cannot read standard input: {e}"),
                "pipe the secret in: craik auth add ID --kind=keyring-ref --stdin < file",
            )
        })?;
    if buf.len() as u64 > MAX_STDIN_SECRET {
        return Err(Error::input(
            "the secret on standard input is larger than 64 KiB",
            "pipe just the secret",
        ));
    }
    let s = std::str::from_utf8(&buf).map_err(|_| {
        Error::input(
            "the secret on standard input is not UTF-8 text",
            "pipe just the secret",
        )
    })?;
    let s = s.trim_end_matches(['\r', '\n']);
    if s.is_empty() {
        return Err(Error::input(
            "no secret on standard input",
            "pipe the secret in: printf %s \"$KEY\" | craik auth add ID --kind=keyring-ref --stdin",
        ));
    }
    if s.contains(['\n', '\r', '\0']) {
        return Err(Error::input(
            "the secret on standard input spans several lines",
            "pipe a single-line secret",
        ));
    }
    Ok(Zeroizing::new(s.to_string()))
}

/// Prompts for a secret with hidden input; errors when not on a terminal.
pub fn prompt_secret(prompt: &str) -> crate::Result<Zeroizing<String>> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::input(
            "no secret given and standard input is not a terminal",
            "pass --stdin and pipe the secret in",
        ));
    }
    let s = rpassword::prompt_password(prompt)
        .map(Zeroizing::new)
        .map_err(|e| {
            Error::input(
                format!("cannot read the secret: {e}"),
                "pass --stdin and pipe the secret in",
            )
        })?;
    if s.is_empty() {
        return Err(Error::input("empty secret", "type or paste the secret"));
    }
    Ok(s)
}

/// `s` with every control character (C0, DEL, C1) written as an escape
/// (`\n`, `\u{1b}`), for one field of human output: a value read from a
/// file anyone of the user can write (a session's subject, a receipt's
/// reason) cannot move the cursor, recolour the terminal or forge a line.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    escape_controls(s, false)
}

/// As [`printable`], but keeping line breaks and tabs: for whole lines of
/// human output.
pub fn printable_lines(s: &str) -> std::borrow::Cow<'_, str> {
    escape_controls(s, true)
}

fn escape_controls(s: &str, keep_lines: bool) -> std::borrow::Cow<'_, str> {
    let bad = |c: char| c.is_control() && !(keep_lines && (c == '\n' || c == '\t'));
    if !s.chars().any(bad) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if bad(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Asks a yes/no question on the terminal (default no): `None` when
/// standard input is not a terminal, so nobody can answer.
pub fn confirm(question: &str) -> Option<bool> {
    if !std::io::stdin().is_terminal() {
        return None;
    }
    eprint!("{question} [y/N] ");
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    Some(matches!(line.trim(), "y" | "Y" | "yes"))
}

/// Opens `url` in the user's browser when one can be opened here: the
/// command `$BROWSER` names, else `open` on macOS, else `xdg-open` in a
/// graphical session. True when the command started. The URL is the
/// command's one argument (no shell), and its output is discarded.
pub fn open_browser(url: &str) -> bool {
    let command = match std::env::var_os("BROWSER").filter(|b| !b.is_empty()) {
        Some(b) => std::path::PathBuf::from(b),
        None if cfg!(target_os = "macos") => "open".into(),
        None => {
            let graphical = std::env::var_os("DISPLAY").is_some()
                || std::env::var_os("WAYLAND_DISPLAY").is_some();
            let on_path = std::env::var_os("PATH")
                .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("xdg-open").is_file()));
            if !(graphical && on_path) {
                return false;
            }
            "xdg-open".into()
        }
    };
    std::process::Command::new(command)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .is_ok()
}

/// The candidate closest to a mistyped `word`, when one is close enough
/// to be what was meant: at most one edit (a transposition counts as one)
/// per four characters, and at least one.
pub fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let most = (word.chars().count() / 4).max(1);
    candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), *c))
        .filter(|(d, _)| *d <= most)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_escaped() {
        assert_eq!(printable("alice"), "alice");
        assert_eq!(printable("a\x1b[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(printable("a\nissuer: evil"), "a\\nissuer: evil");
        assert_eq!(printable("\u{9b}x\u{7f}"), "\\u{9b}x\\u{7f}");
        assert_eq!(printable_lines("a\n\tb\x07"), "a\n\tb\\u{7}");
    }

    #[test]
    fn suggestions_only_for_near_misses() {
        let fams = ["openai", "anthropic", "gemini", "local"];
        assert_eq!(did_you_mean("opneai", &fams), Some("openai"));
        assert_eq!(did_you_mean("antropic", &fams), Some("anthropic"));
        assert_eq!(did_you_mean("mistral", &fams), None);
        let ids = ["openai:work", "openai:ci", "anthropic:prod-eu"];
        assert_eq!(did_you_mean("openai:wrok", &ids), Some("openai:work"));
        assert_eq!(
            did_you_mean("anthropic:prod-us", &ids),
            Some("anthropic:prod-eu")
        );
        assert_eq!(did_you_mean("gemini:x", &ids), None);
    }
}
