//! Profile patterns: `*` matches any characters except `:`, `**` any
//! characters, `?` exactly one character; everything else is literal.
//! Matching ignores ASCII case, so `**:*prod*` catches `openai:PROD-eu`
//! (new profile ids are lower-case; ids stored before may not be).
//! Patterns are compiled once into one `RegexSet`.

use regex::RegexSet;

/// Why a pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PatternError {
    #[error("empty pattern")]
    Empty,
    #[error("pattern {0:?} has three or more '*' in a row")]
    Stars(String),
    #[error(
        "pattern {pattern:?} contains {ch:?}; patterns use letters, digits, '.', '_', '-', ':', '*' and '?'"
    )]
    Char { pattern: String, ch: char },
    #[error("pattern {0:?} is too long")]
    TooLong(String),
    #[error("{0} patterns are too many to compile together")]
    TooMany(usize),
}

const MAX_PATTERN: usize = 200;

/// The family alias profile ids are normalized from (`local:x` is stored
/// as `chat_completions:x`); a pattern naming it means the same profiles.
const ALIAS: (&str, &str) = ("local:", "chat_completions:");

/// `p` with a leading `local:` written as the family it stands for.
pub fn normalize_alias(p: &str) -> std::borrow::Cow<'_, str> {
    // Case is ignored here as in matching: `Local:*` is `local:*`.
    match p.get(..ALIAS.0.len()) {
        Some(head) if head.eq_ignore_ascii_case(ALIAS.0) => {
            std::borrow::Cow::Owned(format!("{}{}", ALIAS.1, &p[ALIAS.0.len()..]))
        }
        _ => std::borrow::Cow::Borrowed(p),
    }
}

fn to_regex(p: &str) -> Result<String, PatternError> {
    if p.is_empty() {
        return Err(PatternError::Empty);
    }
    let p = &*normalize_alias(p);
    if p.len() > MAX_PATTERN {
        return Err(PatternError::TooLong(p.to_string()));
    }
    if p.contains("***") {
        return Err(PatternError::Stars(p.to_string()));
    }
    let mut out = String::from("^");
    let mut chars = p.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                out.push_str(".*");
            }
            '*' => out.push_str("[^:]*"),
            '?' => out.push('.'),
            c if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':') => {
                if c == '.' || c == '-' {
                    out.push('\\');
                }
                out.push(c);
            }
            ch => {
                return Err(PatternError::Char {
                    pattern: p.to_string(),
                    ch,
                });
            }
        }
    }
    out.push('$');
    Ok(out)
}

/// A compiled list of patterns: "does any match?"
#[derive(Debug, Clone)]
pub struct PatternSet {
    patterns: Vec<String>,
    set: RegexSet,
}

impl PatternSet {
    pub fn new(patterns: &[String]) -> Result<PatternSet, PatternError> {
        let regexes = patterns
            .iter()
            .map(|p| to_regex(p))
            .collect::<Result<Vec<_>, _>>()?;
        let set = regex::RegexSetBuilder::new(&regexes)
            .case_insensitive(true)
            .size_limit(512 * 1024 * 1024)
            .dfa_size_limit(64 * 1024 * 1024)
            .build()
            .map_err(|_| PatternError::TooMany(patterns.len()))?;
        Ok(PatternSet {
            patterns: patterns.to_vec(),
            set,
        })
    }

    pub fn is_match(&self, id: &str) -> bool {
        self.set.is_match(id)
    }

    /// The first pattern that matches, for explanations.
    pub fn first_match(&self, id: &str) -> Option<&str> {
        self.set
            .matches(id)
            .iter()
            .next()
            .map(|i| self.patterns[i].as_str())
    }

    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }
}

/// One pattern, compiled (`receipts list --profile`).
pub fn compile(pattern: &str) -> Result<regex::Regex, PatternError> {
    regex::RegexBuilder::new(&to_regex(pattern)?)
        .size_limit(16 * 1024 * 1024)
        .build()
        .map_err(|_| PatternError::TooLong(pattern.to_string()))
}

/// One pattern against one id (tests, docs).
pub fn matches(pattern: &str, id: &str) -> Result<bool, PatternError> {
    Ok(PatternSet::new(&[pattern.to_string()])?.is_match(id))
}

/// Whether `pattern` can match some profile id of one of `families`
/// (`openai`, ...): a pattern whose family part names no family, or with no
/// `:` and no `**`, matches nothing, which in a policy is almost always a
/// typo.
pub fn can_match_a_family(pattern: &str, families: &[&str]) -> bool {
    let Some((family, _)) = pattern.split_once(':') else {
        return pattern.contains("**");
    };
    if family.contains("**") {
        return true;
    }
    match PatternSet::new(&[family.to_string()]) {
        Ok(set) => families.iter().any(|f| set.is_match(f)),
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_alias_means_chat_completions() {
        // Profile ids are stored as chat_completions:<name>; a pattern
        // written with the alias must match them (a deny list naming
        // local:* would otherwise fail open).
        let set = PatternSet::new(&["local:*".to_string()]).unwrap();
        assert!(set.is_match("chat_completions:llama"));
        assert!(!set.is_match("openai:llama"));
        assert_eq!(normalize_alias("local:x"), "chat_completions:x");
        assert_eq!(normalize_alias("openai:x"), "openai:x");
    }

    /// The table in docs/policy.md.
    pub const CASES: &[(&str, &str, bool)] = &[
        ("anthropic:prod-*", "anthropic:prod-eu", true),
        ("anthropic:prod-*", "anthropic:prod-", true),
        ("anthropic:prod-*", "anthropic:staging", false),
        ("anthropic:*", "anthropic:work", true),
        ("*:work", "openai:work", true),
        ("*:work", "openai:work2", false),
        ("*", "openai:work", false),
        ("**", "openai:work", true),
        ("openai:**", "openai:a.b-c", true),
        ("*:*", "gemini:x", true),
        ("openai:ci-?", "openai:ci-1", true),
        ("openai:ci-?", "openai:ci-12", false),
        ("openai:ci-?", "openai:ci-", false),
        ("OpenAI:*", "openai:x", true),
        ("Local:*", "chat_completions:x", true),
        ("**:*prod*", "openai:PROD-eu", true),
        ("openai:x.y", "openai:xzy", false),
        ("openai:x.y", "openai:x.y", true),
        ("open*", "openai:x", false),
        ("open**", "openai:x", true),
        ("?????:x", "local:x", true),
    ];

    #[test]
    fn table() {
        for (p, id, want) in CASES {
            assert_eq!(matches(p, id).unwrap(), *want, "{p} vs {id}");
        }
    }

    #[test]
    fn bad_patterns() {
        assert_eq!(matches("", "x"), Err(PatternError::Empty));
        assert!(matches("a***", "x").is_err());
        assert!(matches("openai:[abc]", "x").is_err());
        assert!(matches("openai:(x|y)", "x").is_err());
        assert!(matches("a b", "x").is_err());
    }

    #[test]
    fn patterns_that_can_match_no_family() {
        let fams = ["openai", "anthropic", "gemini", "chat_completions", "local"];
        for (p, ok) in [
            ("openai:*", true),
            ("*:prod", true),
            ("**", true),
            ("**prod**", true),
            ("open?i:x", true),
            ("OPENAI:x", true),
            ("opneai:*", false),
            ("prod", false),
            ("*prod*", false),
            ("chat_completion:*", false),
        ] {
            assert_eq!(can_match_a_family(p, &fams), ok, "{p}");
        }
    }
}
