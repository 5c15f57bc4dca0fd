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
