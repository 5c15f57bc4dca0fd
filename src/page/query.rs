//! The page's filters: the query string of every view, read into the
//! same [`Filter`] as `craik receipts list` (so a profile pattern means
//! what it means in policies), and written back into links.

use crate::audit::{Filter, parse_time};

/// Rows on a page of the timeline unless `limit` says otherwise.
pub const PAGE_ROWS: usize = 100;
/// The most rows one page shows.
pub const MAX_ROWS: usize = 1000;

/// What the query string asked for (empty values are no filter).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    pub operator: Option<String>,
    pub profile: Option<String>,
    pub pool: Option<String>,
    pub kind: Option<String>,
    pub status: Option<String>,
    pub run: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    /// Rows before this seq (the next page of the timeline).
    pub before: Option<i64>,
    pub limit: Option<usize>,
}

impl Params {
    pub fn parse(query: &str) -> Params {
        let mut p = Params::default();
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            let v = v.trim().to_string();
            if v.is_empty() {
                continue;
            }
            match k.as_ref() {
                "operator" => p.operator = Some(v),
                "profile" => p.profile = Some(v),
                "pool" => p.pool = Some(v),
                "kind" => p.kind = Some(v),
                "status" => p.status = Some(v),
                "run" => p.run = Some(v),
                "since" => p.since = Some(v),
                "until" => p.until = Some(v),
                "before" => p.before = v.parse().ok(),
                "limit" => p.limit = v.parse().ok(),
                _ => {}
            }
        }
        p
    }

    /// The filter, or why it cannot be one (a bad pattern or time).
    pub fn filter(&self) -> Result<Filter, String> {
        let time = |flag: &str, v: &Option<String>| {
            v.as_deref()
                .map(parse_time)
                .transpose()
                .map_err(|e| format!("{flag}: {e}"))
        };
        let f = Filter {
            operator: self.operator.clone(),
            profile: self.profile.clone(),
            pool: self.pool.clone(),
            kind: self.kind.clone(),
            status: self.status.clone(),
            run: self.run.clone(),
            since: time("since", &self.since)?,
            until: time("until", &self.until)?,
            before: self.before,
            limit: Some(self.limit.unwrap_or(PAGE_ROWS).clamp(1, MAX_ROWS)),
            ..Filter::default()
        };
        f.check().map_err(|e| e.to_string())?;
        if let (Some(s), Some(u)) = (f.since, f.until)
            && s > u
        {
            return Err("since is after until: no receipt can match".into());
        }
        Ok(f)
    }

    /// The pairs of this filter, for a query string.
    fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        for (k, v) in [
            ("operator", &self.operator),
            ("profile", &self.profile),
            ("pool", &self.pool),
            ("kind", &self.kind),
            ("status", &self.status),
            ("run", &self.run),
            ("since", &self.since),
            ("until", &self.until),
        ] {
            if let Some(v) = v {
                out.push((k, v.clone()));
            }
        }
        if let Some(b) = self.before {
            out.push(("before", b.to_string()));
        }
        if let Some(l) = self.limit {
            out.push(("limit", l.to_string()));
        }
        out
    }

    /// A link to `path` with this filter, changed by `change`.
    pub fn href(&self, path: &str, change: impl FnOnce(&mut Params)) -> String {
        let mut p = self.clone();
        change(&mut p);
        let q = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(p.pairs())
            .finish();
        if q.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{q}")
        }
    }

    /// Whether any filter is set (paging aside).
    pub fn any(&self) -> bool {
        Params {
            before: None,
            limit: None,
            ..self.clone()
        } != Params::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_bad_values() {
        let p = Params::parse("profile=openai%3A*&kind=denial&before=10&token=x&run=");
        assert_eq!(p.profile.as_deref(), Some("openai:*"));
        assert_eq!(p.run, None);
        assert_eq!(Params::parse(&p.href("", |_| {})[1..]), p);
        assert!(p.filter().is_ok());
        assert!(Params::parse("profile=a[b").filter().is_err());
        assert!(Params::parse("since=yesterday").filter().is_err());
        assert!(Params::parse("since=1h&until=2h").filter().is_err());
        assert_eq!(
            Params::parse("limit=999999").filter().unwrap().limit,
            Some(MAX_ROWS)
        );
    }
}
