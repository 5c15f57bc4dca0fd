//! Credential pools, `credential_pool.json`: several profiles of one family
//! behind one id, picked by a strategy, with per-member health and backoff.
//! Every change is a read-modify-write under the home's lock, so concurrent
//! craik processes lose no health update.

use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::home::Home;
use crate::profile::{Family, ProfileError, ProfileId, ProfileStore};

/// Errors of pools.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// Every member is backing off, or was already tried for this call.
    #[error("pool {0}: every member is backing off or was tried")]
    Exhausted(ProfileId),
}

impl PoolError {
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            PoolError::Exhausted(_) => {
                "see each member's health with craik auth pool status; a member backs off for at most 5 minutes".into()
            }
        })
    }
}

pub const POOLS_FILE: &str = "credential_pool.json";
/// Longest backoff after repeated failures.
pub const MAX_BACKOFF_SECS: i64 = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    RoundRobin,
    Failover,
    Weighted,
}

impl Strategy {
    pub const ALL: [Strategy; 3] = [Strategy::RoundRobin, Strategy::Failover, Strategy::Weighted];

    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::RoundRobin => "round_robin",
            Strategy::Failover => "failover",
            Strategy::Weighted => "weighted",
        }
    }
}

impl std::str::FromStr for Strategy {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "round_robin" => Ok(Strategy::RoundRobin),
            "failover" => Ok(Strategy::Failover),
            "weighted" => Ok(Strategy::Weighted),
            _ => Err(Error::input(
                format!("unknown strategy {s:?}"),
                "use round_robin, failover or weighted",
            )),
        }
    }
}

/// What happened on a call through a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    /// 401/403.
    Rejected,
    /// 429.
    RateLimited,
    /// 5xx or a connection error.
    Failed,
}

impl Outcome {
    /// Classifies an HTTP status (`None`: no response at all).
    pub fn from_status(status: Option<u16>) -> Outcome {
        match status {
            None => Outcome::Failed,
            Some(401 | 403) => Outcome::Rejected,
            Some(429) => Outcome::RateLimited,
            Some(s) if s >= 500 => Outcome::Failed,
            Some(_) => Outcome::Ok,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Rejected => "rejected",
            Outcome::RateLimited => "rate_limited",
            Outcome::Failed => "failed",
        }
    }

    /// The receipt status of a call that ended so.
    pub fn status(self) -> crate::audit::Status {
        use crate::audit::Status;
        match self {
            Outcome::Ok => Status::Ok,
            Outcome::Rejected => Status::Rejected,
            Outcome::RateLimited => Status::RateLimited,
            Outcome::Failed => Status::Failed,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Health {
    pub consecutive_failures: u32,
    pub backoff_until: Option<DateTime<Utc>>,
    pub last_outcome: Option<Outcome>,
    pub last_used_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    pub profile: ProfileId,
    pub weight: u32,
    #[serde(default)]
    pub health: Health,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pool {
    pub id: ProfileId,
    pub provider_family: Family,
    pub strategy: Strategy,
    pub members: Vec<Member>,
    /// Round-robin position.
    #[serde(default)]
    pub cursor: u64,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolFile {
    pub version: u32,
    pub pools: Vec<Pool>,
}

impl Default for PoolFile {
    fn default() -> Self {
        PoolFile {
            version: 1,
            pools: Vec::new(),
        }
    }
}

impl Member {
    pub fn healthy(&self, now: DateTime<Utc>) -> bool {
        self.health.backoff_until.is_none_or(|t| t <= now)
    }
}

impl Pool {
    /// Picks a healthy member by the strategy (and advances round robin).
    /// `exclude` skips members already tried for this request.
    pub fn pick(&mut self, exclude: &[ProfileId]) -> Option<ProfileId> {
        let now = Utc::now();
        let healthy: Vec<usize> = (0..self.members.len())
            .filter(|&i| {
                self.members[i].healthy(now) && !exclude.contains(&self.members[i].profile)
            })
            .collect();
        if healthy.is_empty() {
            return None;
        }
        let i = match self.strategy {
            Strategy::Failover => healthy[0],
            Strategy::RoundRobin => {
                let n = self.members.len() as u64;
                let start = self.cursor % n;
                let pick = (0..n)
                    .map(|k| ((start + k) % n) as usize)
                    .find(|i| healthy.contains(i))
                    .expect("a healthy member");
                self.cursor = pick as u64 + 1;
                pick
            }
            Strategy::Weighted => {
                let total: u64 = healthy
                    .iter()
                    .map(|&i| self.members[i].weight.max(1) as u64)
                    .sum();
                let mut r = rand::thread_rng().gen_range(0..total);
                let mut chosen = healthy[0];
                for &i in &healthy {
                    let w = self.members[i].weight.max(1) as u64;
                    if r < w {
                        chosen = i;
                        break;
                    }
                    r -= w;
                }
                chosen
            }
        };
        self.members[i].health.last_used_at = Some(now);
        Some(self.members[i].profile.clone())
    }

    /// Records an outcome: success resets; a failure backs off
    /// min(300 s, 2^failures).
    pub fn record(&mut self, member: &ProfileId, outcome: Outcome) {
        let now = Utc::now();
        if let Some(m) = self.members.iter_mut().find(|m| &m.profile == member) {
            m.health.last_outcome = Some(outcome);
            if outcome == Outcome::Ok {
                m.health.consecutive_failures = 0;
                m.health.backoff_until = None;
            } else {
                m.health.consecutive_failures = m.health.consecutive_failures.saturating_add(1);
                let secs = 1i64
                    .checked_shl(m.health.consecutive_failures.min(20))
                    .unwrap_or(MAX_BACKOFF_SECS)
                    .min(MAX_BACKOFF_SECS);
                m.health.backoff_until = Some(now + Duration::seconds(secs));
            }
        }
    }
}

fn corrupt(home: &Home, detail: String) -> Error {
    ProfileError::Corrupt {
        path: home.path(POOLS_FILE),
        detail,
    }
    .into()
}

/// Reads and writes `credential_pool.json`.
pub struct PoolStore<'h> {
    home: &'h Home,
}

impl<'h> PoolStore<'h> {
    pub fn new(home: &'h Home) -> Self {
        PoolStore { home }
    }

    pub fn load(&self) -> crate::Result<PoolFile> {
        let Some(bytes) = self.home.read(POOLS_FILE)? else {
            return Ok(PoolFile::default());
        };
        let f: PoolFile = serde_json::from_slice(&bytes).map_err(|e| {
            corrupt(
                self.home,
                format!("line {} column {}: {e}", e.line(), e.column()),
            )
        })?;
        if f.version != 1 {
            return Err(corrupt(
                self.home,
                format!("unsupported version {}", f.version),
            ));
        }
        Ok(f)
    }

    pub fn update<T>(&self, f: impl FnOnce(&mut PoolFile) -> crate::Result<T>) -> crate::Result<T> {
        let _lock = self.home.lock(POOLS_FILE)?;
        let before = self.load()?;
        let mut file = before.clone();
        let out = f(&mut file)?;
        if file != before {
            let mut bytes = serde_json::to_vec_pretty(&file).expect("pools serialize");
            bytes.push(b'\n');
            self.home.write_atomic(POOLS_FILE, &bytes)?;
        }
        Ok(out)
    }

    pub fn get(&self, id: &ProfileId) -> crate::Result<Option<Pool>> {
        Ok(self.load()?.pools.into_iter().find(|p| &p.id == id))
    }

    /// Picks a member of `pool` (under the lock, so round robin advances
    /// exactly once per pick across processes).
    pub fn pick(&self, pool: &ProfileId, exclude: &[ProfileId]) -> crate::Result<ProfileId> {
        self.update(|f| {
            let p = f
                .pools
                .iter_mut()
                .find(|p| &p.id == pool)
                .ok_or_else(|| ProfileError::NotFound(format!("pool {pool}")))?;
            p.pick(exclude)
                .ok_or_else(|| PoolError::Exhausted(pool.clone()).into())
        })
    }

    pub fn record(
        &self,
        pool: &ProfileId,
        member: &ProfileId,
        outcome: Outcome,
    ) -> crate::Result<()> {
        self.update(|f| {
            if let Some(p) = f.pools.iter_mut().find(|p| &p.id == pool) {
                p.record(member, outcome);
            }
            Ok(())
        })
    }
}

/// Parses `ID[=WEIGHT]`.
pub fn parse_member(s: &str) -> crate::Result<(ProfileId, u32)> {
    let (id, w) = match s.split_once('=') {
        Some((id, w)) => (
            id,
            w.parse::<u32>()
                .ok()
                .filter(|w| (1..=1000).contains(w))
                .ok_or_else(|| {
                    Error::input(format!("bad weight in {s:?}"), "weights are 1 to 1000")
                })?,
        ),
        None => (s, 1),
    };
    Ok((id.parse()?, w))
}

/// `craik auth pool create`.
pub fn create(
    home: &Home,
    id: &ProfileId,
    strategy: Strategy,
    members: &[(ProfileId, u32)],
    force: bool,
) -> crate::Result<Pool> {
    if members.is_empty() {
        return Err(Error::input(
            "a pool needs members",
            "pass --member ID[=WEIGHT] once per member",
        ));
    }
    let profiles = ProfileStore::new(home).load()?;
    for (m, _) in members {
        let p = profiles
            .get(m)
            .ok_or_else(|| ProfileError::NotFound(m.to_string()))?;
        if p.provider_family != id.family() {
            return Err(Error::input(
                format!(
                    "member {m} is of family {}, the pool {id} of {}",
                    p.provider_family,
                    id.family()
                ),
                "members of a pool must share its family",
            ));
        }
    }
    let mut seen = std::collections::HashSet::new();
    if !members.iter().all(|(m, _)| seen.insert(m)) {
        return Err(Error::input(
            "a member is listed twice",
            "list each profile once",
        ));
    }
    let pool = Pool {
        id: id.clone(),
        provider_family: id.family(),
        strategy,
        members: members
            .iter()
            .map(|(p, w)| Member {
                profile: p.clone(),
                weight: *w,
                health: Health::default(),
            })
            .collect(),
        cursor: 0,
        created_at: Utc::now(),
    };
    PoolStore::new(home).update(|f| {
        if let Some(i) = f.pools.iter().position(|p| &p.id == id) {
            if !force {
                return Err(Error::input(
                    format!("pool {id} already exists"),
                    format!("remove it first: craik auth pool remove {id}"),
                ));
            }
            f.pools.remove(i);
        }
        f.pools.push(pool.clone());
        Ok(())
    })?;
    Ok(pool)
}

/// Takes `profiles` out of every pool (a profile removed); a pool left with
/// no member goes too. Returns the pools changed.
pub fn drop_members(home: &Home, profiles: &[ProfileId]) -> crate::Result<Vec<ProfileId>> {
    if profiles.is_empty() {
        return Ok(Vec::new());
    }
    PoolStore::new(home).update(|f| {
        let mut changed = Vec::new();
        for p in &mut f.pools {
            let before = p.members.len();
            p.members.retain(|m| !profiles.contains(&m.profile));
            if p.members.len() != before {
                changed.push(p.id.clone());
                p.cursor = 0;
            }
        }
        f.pools.retain(|p| !p.members.is_empty());
        Ok(changed)
    })
}

pub fn remove(home: &Home, id: &ProfileId) -> crate::Result<Pool> {
    PoolStore::new(home).update(|f| {
        let i = f
            .pools
            .iter()
            .position(|p| &p.id == id)
            .ok_or_else(|| ProfileError::NotFound(format!("pool {id}")))?;
        Ok(f.pools.remove(i))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(strategy: Strategy) -> Pool {
        Pool {
            id: "openai:team".parse().unwrap(),
            provider_family: Family::OpenAi,
            strategy,
            members: ["openai:a", "openai:b", "openai:c"]
                .iter()
                .map(|m| Member {
                    profile: m.parse().unwrap(),
                    weight: 1,
                    health: Health::default(),
                })
                .collect(),
            cursor: 0,
            created_at: Utc::now(),
        }
    }

    #[test]
    fn round_robin_and_failover_and_backoff() {
        let mut p = pool(Strategy::RoundRobin);
        let picks: Vec<String> = (0..4).map(|_| p.pick(&[]).unwrap().to_string()).collect();
        assert_eq!(picks, ["openai:a", "openai:b", "openai:c", "openai:a"]);
        let mut f = pool(Strategy::Failover);
        let a: ProfileId = "openai:a".parse().unwrap();
        assert_eq!(f.pick(&[]).unwrap(), a);
        f.record(&a, Outcome::Rejected);
        assert_eq!(f.pick(&[]).unwrap().to_string(), "openai:b");
        let h = &f.members[0].health;
        assert_eq!(h.consecutive_failures, 1);
        let wait = (h.backoff_until.unwrap() - Utc::now()).num_milliseconds();
        assert!((1000..=2100).contains(&wait), "{wait}");
        for _ in 0..20 {
            f.record(&a, Outcome::Failed);
        }
        let wait = (f.members[0].health.backoff_until.unwrap() - Utc::now()).num_seconds();
        assert!((298..=300).contains(&wait), "capped at 300 s: {wait}");
        f.record(&a, Outcome::Ok);
        assert_eq!(f.members[0].health.consecutive_failures, 0);
        assert_eq!(f.pick(&[]).unwrap(), a);
        assert_eq!(
            f.pick(std::slice::from_ref(&a)).unwrap().to_string(),
            "openai:b"
        );
        assert_eq!(Outcome::from_status(Some(429)), Outcome::RateLimited);
        assert_eq!(Outcome::from_status(Some(503)), Outcome::Failed);
        assert_eq!(Outcome::from_status(None), Outcome::Failed);
        assert_eq!(Outcome::from_status(Some(403)), Outcome::Rejected);
    }

    fn id(s: &str) -> ProfileId {
        s.parse().unwrap()
    }

    /// One row: a pool of openai:a, openai:b, openai:c, some of them
    /// backing off (or past their backoff), picked from repeatedly with
    /// the same exclude list. "-" is no pick.
    struct PickRow {
        name: &'static str,
        strategy: Strategy,
        cursor: u64,
        backing_off: &'static [usize],
        backoff_over: &'static [usize],
        exclude: &'static [&'static str],
        picks: &'static [&'static str],
    }

    #[test]
    fn strategy_picks() {
        use Strategy::*;
        let r = |name, strategy, cursor, backing_off, backoff_over, exclude, picks| PickRow {
            name,
            strategy,
            cursor,
            backing_off,
            backoff_over,
            exclude,
            picks,
        };
        #[rustfmt::skip]
        let rows = [
            r("round robin advances", RoundRobin, 0, &[][..], &[][..], &[][..], &["openai:a", "openai:b", "openai:c", "openai:a", "openai:b"][..]),
            r("round robin resumes at its cursor", RoundRobin, 7, &[], &[], &[], &["openai:b", "openai:c", "openai:a"]),
            r("round robin skips a member backing off", RoundRobin, 0, &[1], &[], &[], &["openai:a", "openai:c", "openai:a", "openai:c"]),
            r("round robin with one healthy member", RoundRobin, 0, &[0, 2], &[], &[], &["openai:b", "openai:b", "openai:b"]),
            r("round robin takes back a member whose backoff is over", RoundRobin, 0, &[], &[1], &[], &["openai:a", "openai:b", "openai:c"]),
            r("round robin respects the exclude list", RoundRobin, 0, &[], &[], &["openai:b"], &["openai:a", "openai:c", "openai:a"]),
            r("round robin: excluded and backing off", RoundRobin, 1, &[2], &[], &["openai:a"], &["openai:b", "openai:b"]),
            r("round robin: every member backing off", RoundRobin, 0, &[0, 1, 2], &[], &[], &["-", "-"]),
            r("round robin: every member excluded", RoundRobin, 0, &[], &[], &["openai:a", "openai:b", "openai:c"], &["-"]),
            r("failover keeps the first healthy", Failover, 0, &[], &[], &[], &["openai:a", "openai:a", "openai:a"]),
            r("failover ignores the cursor", Failover, 2, &[], &[], &[], &["openai:a", "openai:a"]),
            r("failover passes over a member backing off", Failover, 0, &[0], &[], &[], &["openai:b", "openai:b"]),
            r("failover to the last member", Failover, 0, &[0, 1], &[], &[], &["openai:c", "openai:c"]),
            r("failover back to the first once its backoff is over", Failover, 0, &[], &[0], &[], &["openai:a"]),
            r("failover respects the exclude list", Failover, 0, &[], &[], &["openai:a"], &["openai:b", "openai:b"]),
            r("failover: excluded and backing off", Failover, 0, &[1], &[], &["openai:a"], &["openai:c"]),
            r("failover: every member backing off", Failover, 0, &[0, 1, 2], &[], &[], &["-"]),
            r("weighted with one healthy member", Weighted, 0, &[0, 2], &[], &[], &["openai:b", "openai:b", "openai:b", "openai:b"]),
            r("weighted with one member not excluded", Weighted, 0, &[], &[], &["openai:a", "openai:b"], &["openai:c", "openai:c", "openai:c"]),
            r("weighted: every member backing off", Weighted, 0, &[0, 1, 2], &[], &[], &["-"]),
        ];
        let mut errors = Vec::new();
        for row in &rows {
            let mut p = pool(row.strategy);
            p.cursor = row.cursor;
            for &i in row.backing_off {
                p.members[i].health.backoff_until = Some(Utc::now() + Duration::seconds(60));
            }
            for &i in row.backoff_over {
                p.members[i].health.consecutive_failures = 3;
                p.members[i].health.backoff_until = Some(Utc::now() - Duration::seconds(1));
            }
            let exclude: Vec<ProfileId> = row.exclude.iter().map(|s| id(s)).collect();
            let got: Vec<String> = row
                .picks
                .iter()
                .map(|_| p.pick(&exclude).map_or("-".into(), |m| m.to_string()))
                .collect();
            if got != row.picks {
                errors.push(format!(
                    "{}: picked {got:?}, want {:?}",
                    row.name, row.picks
                ));
            }
        }
        assert!(errors.is_empty(), "{}", errors.join("\n"));
    }

    #[test]
    fn a_pick_marks_only_the_member_picked() {
        for strategy in Strategy::ALL {
            let mut p = pool(strategy);
            p.members[0].health.backoff_until = Some(Utc::now() + Duration::seconds(60));
            let before = Utc::now();
            let picked = p.pick(&[id("openai:c")]).unwrap();
            assert_eq!(picked, id("openai:b"), "{strategy:?}");
            let used: Vec<bool> = p
                .members
                .iter()
                .map(|m| m.health.last_used_at.is_some_and(|t| t >= before))
                .collect();
            assert_eq!(used, [false, true, false], "{strategy:?}");
            // A pick that finds nobody changes nothing.
            let snapshot = p.clone();
            assert_eq!(p.pick(&[id("openai:b"), id("openai:c")]), None);
            assert_eq!(p, snapshot, "{strategy:?}");
        }
    }

    #[test]
    fn weighted_picks_by_weight() {
        let mut p = pool(Strategy::Weighted);
        let count = |p: &mut Pool, n: usize, exclude: &[ProfileId]| {
            let mut c = [0usize; 3];
            for _ in 0..n {
                let m = p.pick(exclude).unwrap();
                c[p.members.iter().position(|x| x.profile == m).unwrap()] += 1;
            }
            c
        };
        // Equal weights: everyone is picked (missing one in 600 picks has
        // a chance of about 3 * (2/3)^600).
        let c = count(&mut p, 600, &[]);
        assert!(c.iter().all(|&n| n > 0), "{c:?}");
        // Weights 1000, 1, 1: nearly always a.
        p.members[0].weight = 1000;
        let c = count(&mut p, 300, &[]);
        assert!(c[0] >= 250, "{c:?}");
        // An excluded heavy member is never picked; the rest share.
        let c = count(&mut p, 300, &[id("openai:a")]);
        assert_eq!(c[0], 0, "{c:?}");
        assert!(c[1] > 0 && c[2] > 0, "{c:?}");
        // Weight 0 counts as 1: no panic, nobody starved.
        for m in &mut p.members {
            m.weight = 0;
        }
        let c = count(&mut p, 600, &[]);
        assert!(c.iter().all(|&n| n > 0), "{c:?}");
    }

    #[test]
    fn outcomes_back_off_and_reset() {
        use Outcome::*;
        // (outcomes recorded on openai:a, then its failures, backoff in
        // seconds, and last outcome)
        type Row = (&'static [Outcome], u32, Option<i64>, Option<Outcome>);
        #[rustfmt::skip]
        let rows: &[Row] = &[
            (&[], 0, None, None),
            (&[Ok], 0, None, Some(Ok)),
            (&[Rejected], 1, Some(2), Some(Rejected)),
            (&[RateLimited], 1, Some(2), Some(RateLimited)),
            (&[Failed, Failed], 2, Some(4), Some(Failed)),
            (&[Failed, Rejected, RateLimited], 3, Some(8), Some(RateLimited)),
            (&[Failed; 8], 8, Some(256), Some(Failed)),
            (&[Failed; 9], 9, Some(MAX_BACKOFF_SECS), Some(Failed)),
            (&[Failed; 40], 40, Some(MAX_BACKOFF_SECS), Some(Failed)),
            (&[Failed, Failed, Failed, Ok], 0, None, Some(Ok)),
            (&[Failed, Ok, Failed], 1, Some(2), Some(Failed)),
        ];
        for (outcomes, failures, backoff, last) in rows {
            let mut p = pool(Strategy::Failover);
            let a = id("openai:a");
            let now = Utc::now();
            for o in *outcomes {
                p.record(&a, *o);
            }
            let h = &p.members[0].health;
            assert_eq!(h.consecutive_failures, *failures, "{outcomes:?}");
            assert_eq!(h.last_outcome, *last, "{outcomes:?}");
            match (backoff, h.backoff_until) {
                (None, None) => {}
                (Some(secs), Some(t)) => {
                    let ms = (t - now).num_milliseconds();
                    assert!(
                        (secs * 1000..=secs * 1000 + 2000).contains(&ms),
                        "{outcomes:?}: backs off {ms} ms, want {secs} s"
                    );
                }
                other => panic!("{outcomes:?}: backoff {other:?}"),
            }
            // The other members are untouched.
            assert!(p.members[1..].iter().all(|m| m.health == Health::default()));
            // A member backing off is not picked; one that is not, is.
            let next = p.pick(&[]).unwrap();
            assert_eq!(next == a, backoff.is_none(), "{outcomes:?}: picked {next}");
        }
        // An outcome for a profile not in the pool changes nothing.
        let mut p = pool(Strategy::RoundRobin);
        let before = p.clone();
        p.record(&id("openai:z"), Outcome::Failed);
        assert_eq!(p, before);
    }

    #[test]
    fn statuses_classify() {
        use Outcome::*;
        let rows: &[(Option<u16>, Outcome)] = &[
            (None, Failed),
            (Some(200), Ok),
            (Some(204), Ok),
            (Some(302), Ok),
            (Some(400), Ok),
            (Some(401), Rejected),
            (Some(403), Rejected),
            (Some(404), Ok),
            (Some(429), RateLimited),
            (Some(499), Ok),
            (Some(500), Failed),
            (Some(502), Failed),
            (Some(503), Failed),
            (Some(599), Failed),
        ];
        for (status, want) in rows {
            assert_eq!(Outcome::from_status(*status), *want, "{status:?}");
        }
        for (o, name, status) in [
            (Ok, "ok", crate::audit::Status::Ok),
            (Rejected, "rejected", crate::audit::Status::Rejected),
            (
                RateLimited,
                "rate_limited",
                crate::audit::Status::RateLimited,
            ),
            (Failed, "failed", crate::audit::Status::Failed),
        ] {
            assert_eq!(o.as_str(), name);
            assert_eq!(serde_json::to_value(o).unwrap(), name);
            assert_eq!(o.status(), status);
        }
    }

    #[test]
    fn members_and_strategies_parse() {
        let rows: &[(&str, Option<(&str, u32)>)] = &[
            ("openai:a", Some(("openai:a", 1))),
            ("openai:a=1", Some(("openai:a", 1))),
            ("openai:a=1000", Some(("openai:a", 1000))),
            ("local:llama=7", Some(("chat_completions:llama", 7))),
            ("openai:a=0", None),
            ("openai:a=1001", None),
            ("openai:a=", None),
            ("openai:a=-1", None),
            ("openai:a=x", None),
            ("openai:a=1=2", None),
            ("openai", None),
            ("nofamily:a=2", None),
        ];
        for (s, want) in rows {
            let got = parse_member(s).ok();
            let got = got.as_ref().map(|(id, w)| (id.to_string(), *w));
            assert_eq!(got, want.map(|(id, w)| (id.to_string(), w)), "{s}");
        }
        for s in Strategy::ALL {
            assert_eq!(s.as_str().parse::<Strategy>().unwrap(), s);
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for bad in ["", "round-robin", "RoundRobin", "random"] {
            assert!(bad.parse::<Strategy>().is_err(), "{bad}");
        }
    }
}
