//! The one reader of durations on the command line (`--wait`, `--since`):
//! humantime's units (`30s`, `15m`, `2h`, `7d`, `2w`, `1h30m`), or plain
//! seconds.

use std::time::Duration;

/// Why a duration could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DurationError {
    #[error("cannot read the duration {text:?}: {why}")]
    Unreadable {
        text: String,
        why: String,
        max: Duration,
    },
    #[error("the duration {text:?} is longer than {max}")]
    TooLong { text: String, max: String },
    #[error("the duration {text:?} is zero")]
    Zero { text: String, max: Duration },
}

impl DurationError {
    pub fn hint(&self) -> String {
        match self {
            DurationError::Unreadable { max, .. } | DurationError::Zero { max, .. } => {
                // Only examples that would be accepted.
                let fits: Vec<&str> = ["30s", "15m", "2h", "1h30m", "7d", "2w"]
                    .into_iter()
                    .filter(|e| humantime::parse_duration(e).is_ok_and(|d| d <= *max))
                    .collect();
                format!("write it as {} (at most {})", fits.join(", "), short(*max))
            }
            DurationError::TooLong { max, .. } => format!("use at most {max}"),
        }
    }
}

/// Reads `text` as a duration of at most `max`.
pub fn parse(text: &str, max: Duration) -> Result<Duration, DurationError> {
    let t = text.trim();
    let d = if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        t.parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|e| DurationError::Unreadable {
                text: text.into(),
                why: e.to_string(),
                max,
            })?
    } else {
        humantime::parse_duration(t).map_err(|e| DurationError::Unreadable {
            text: text.into(),
            why: e.to_string(),
            max,
        })?
    };
    if d > max {
        return Err(DurationError::TooLong {
            text: text.into(),
            max: short(max),
        });
    }
    Ok(d)
}

/// `7d`, `2h`, `90s`: the largest whole unit.
pub fn short(d: Duration) -> String {
    let s = d.as_secs();
    for (unit, n) in [("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60)] {
        if s >= n && s.is_multiple_of(n) {
            return format!("{}{unit}", s / n);
        }
    }
    format!("{s}s")
}

/// Like [`parse`], and refuses zero.
pub fn parse_nonzero(text: &str, max: Duration) -> Result<Duration, DurationError> {
    let d = parse(text, max)?;
    if d.is_zero() {
        return Err(DurationError::Zero {
            text: text.into(),
            max,
        });
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEEK: Duration = Duration::from_secs(7 * 24 * 3600);

    #[test]
    fn units_and_limits() {
        for (text, secs) in [
            ("30", 30),
            ("30s", 30),
            ("5m", 300),
            ("2h", 7200),
            ("1d", 86400),
            ("1h30m", 5400),
            ("1w", 7 * 86400),
        ] {
            assert_eq!(
                parse(text, WEEK).unwrap(),
                Duration::from_secs(secs),
                "{text}"
            );
        }
        assert!(matches!(
            parse("8d", WEEK),
            Err(DurationError::TooLong { .. })
        ));
        assert!(matches!(
            parse("99999999999d", WEEK),
            Err(DurationError::Unreadable { .. } | DurationError::TooLong { .. })
        ));
        for bad in ["", "x", "5x", "-1s", "1.5.2h"] {
            assert!(
                matches!(parse(bad, WEEK), Err(DurationError::Unreadable { .. })),
                "{bad}"
            );
        }
        assert!(matches!(
            parse_nonzero("0s", WEEK),
            Err(DurationError::Zero { .. })
        ));
    }
}
