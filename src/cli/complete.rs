//! Shell completions, dynamic: the shell asks `craik` itself (with
//! `CRAIK_COMPLETE=<shell>` set) for the words that fit, so profile and pool ids
//! complete from the home in use. Completing reads `auth-profiles.json`
//! and `pools.json` for their ids only: no secret, no store unlock, no
//! seal check (a completion is a convenience, never a decision), and a
//! home that does not exist is not created.

use clap::CommandFactory;
use clap_complete::engine::CompletionCandidate;
use clap_complete::env::{CompleteEnv, EnvCompleter};

use craik::home::Home;

/// The variable the registration script sets when it asks for words.
const VAR: &str = "CRAIK_COMPLETE";

/// Answers a completion request and exits, when this is one.
pub fn answer_if_asked() {
    CompleteEnv::with_factory(super::Cli::command)
        .var(VAR)
        .complete();
}

/// The registration script for `shell`, calling `craik` from `PATH`.
pub fn registration(shell: clap_complete::Shell) -> Vec<u8> {
    use clap_complete::env::{Bash, Elvish, Fish, Powershell, Zsh};
    let completer: &dyn EnvCompleter = match shell {
        clap_complete::Shell::Bash => &Bash,
        clap_complete::Shell::Elvish => &Elvish,
        clap_complete::Shell::Fish => &Fish,
        clap_complete::Shell::PowerShell => &Powershell,
        _ => &Zsh,
    };
    let mut script = Vec::new();
    // Writing into memory does not fail.
    let _ = completer.write_registration(VAR, "craik", "craik", "craik", &mut script);
    if shell == clap_complete::Shell::Bash {
        script = bash_colons(&String::from_utf8_lossy(&script)).into_bytes();
    }
    script
}

/// clap's bash words as bash splits them, at every character of
/// `COMP_WORDBREAKS`, `:` included: `openai:w` reaches craik as three
/// words and nothing completes. The words are taken again from the line
/// up to the cursor, split at blanks only (no id holds one), and the
/// answers lose what precedes bash's own current word (`$2`: after the
/// last `:` or `=`), which bash keeps.
const BASH_WORDS: &str = r#"    local words=("${COMP_WORDS[@]}")
    if [[ "${BASH_VERSINFO[0]}" -ge 4 ]]; then
        words[COMP_CWORD]="$2"
    fi
"#;
const BASH_WORDS_AT_BLANKS: &str = r#"    local _craik_line="${COMP_LINE:0:COMP_POINT}"
    local words
    IFS=$' \t\n' read -ra words <<< "$_craik_line"
    if [[ -z "$_craik_line" || "$_craik_line" =~ [[:space:]]$ ]]; then
        words+=("")
    fi
    _CLAP_COMPLETE_INDEX=$(( ${#words[@]} - 1 ))
    local _craik_cur="${words[_CLAP_COMPLETE_INDEX]}"
"#;
const BASH_END: &str = "        compopt -o nospace
    fi
}
";
const BASH_END_TRIMMED: &str = r#"        compopt -o nospace
    fi
    local _craik_kept="${_craik_cur%"$2"}"
    if [[ -n "$_craik_kept" && "$_craik_cur" == "$_craik_kept$2" ]]; then
        COMPREPLY=( "${COMPREPLY[@]#"$_craik_kept"}" )
    fi
}
"#;

fn bash_colons(script: &str) -> String {
    script
        .replacen(BASH_WORDS, BASH_WORDS_AT_BLANKS, 1)
        .replacen(BASH_END, BASH_END_TRIMMED, 1)
}

/// The home, only when it already exists.
fn home() -> Option<Home> {
    let path = Home::default_path().ok()?;
    path.is_dir().then(|| Home::open(path).ok())?
}

fn candidates(ids: impl IntoIterator<Item = String>) -> Vec<CompletionCandidate> {
    let mut ids: Vec<String> = ids.into_iter().collect();
    ids.sort();
    ids.dedup();
    ids.into_iter().map(CompletionCandidate::new).collect()
}

/// The ids of the stored profiles.
pub fn profiles() -> Vec<CompletionCandidate> {
    candidates(profile_ids())
}

/// The ids of the pools.
pub fn pools() -> Vec<CompletionCandidate> {
    candidates(pool_ids())
}

/// Profiles and pools (where either is accepted).
pub fn targets() -> Vec<CompletionCandidate> {
    candidates(profile_ids().into_iter().chain(pool_ids()))
}

fn profile_ids() -> Vec<String> {
    let Some(home) = home() else { return vec![] };
    craik::profile::ProfileStore::new(&home)
        .load_unchecked()
        .map(|f| f.profiles.iter().map(|p| p.id.to_string()).collect())
        .unwrap_or_default()
}

fn pool_ids() -> Vec<String> {
    let Some(home) = home() else { return vec![] };
    craik::pool::PoolStore::new(&home)
        .load()
        .map(|f| f.pools.iter().map(|p| p.id.to_string()).collect())
        .unwrap_or_default()
}
