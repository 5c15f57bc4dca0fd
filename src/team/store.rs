//! The PostgreSQL side of the team store: connecting (TLS by rustls,
//! required off loopback), the schema (`migrations/postgres/`), homes and
//! their chains, appending receipts, reading them back.

use std::time::Duration;

use postgres::config::{Host, SslMode};
use postgres::{Client, Config};

use super::TeamError;
use crate::audit::Receipt;

/// The schema `craik team init` applies (idempotent).
pub const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/postgres/0001_team.sql")),
    (
        2,
        include_str!("../../migrations/postgres/0002_members.sql"),
    ),
];

/// The columns of a receipt, in [`Receipt`]'s order.
const COLUMNS: &str = "seq, id, created_at, kind, run_id, capability, status, reason, policy_condition, auth_profile_id, auth_kind, auth_identity_hash, provider_family, pool_id, operator_subject, operator_issuer, operator_email, operator_groups, operator_identity_hash, details, prev_hash, hash";

pub struct Db {
    client: Client,
}

/// [`TeamRow::vouched`] in SQL, over `craik_receipts r`, `craik_homes h`
/// and `craik_members m` (joined on the shipping login).
const VOUCHED: &str = "r.shipped_by = h.registered_by AND m.login IS NOT NULL \
    AND r.operator_issuer = m.issuer AND r.operator_subject = m.subject";

/// A login's entry in `craik_members`: the person it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Member {
    pub login: String,
    pub issuer: String,
    pub subject: String,
    /// The groups other machines count for this person.
    pub groups: Vec<String>,
    pub added_at: String,
    pub added_by: String,
}

/// A receipt of some chain, with what the server says of it: the home's
/// label, the login that registered the home, the login that shipped the
/// row, and the member that login is (if the administrator named one).
#[derive(Debug, Clone)]
pub struct TeamRow {
    pub home_id: String,
    pub label: String,
    pub registered_by: String,
    pub shipped_by: String,
    /// When the server took it (RFC 3339, UTC): the server's word, unlike
    /// the receipt's `created_at`.
    pub shipped_at: String,
    /// `shipped_by`'s entry in `craik_members`.
    pub member: Option<Person>,
    pub receipt: Receipt,
}

/// Who the administrator says a login is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub issuer: String,
    pub subject: String,
    pub groups: Vec<String>,
}

impl TeamRow {
    /// Whether the server vouches for the operator the receipt names: the
    /// login that registered the home shipped it, and that login is the
    /// member (issuer and subject) the receipt names.
    pub fn vouched(&self) -> bool {
        self.shipped_by == self.registered_by
            && self.member.as_ref().is_some_and(|m| {
                self.receipt.operator_issuer.as_deref() == Some(m.issuer.as_str())
                    && self.receipt.operator_subject.as_deref() == Some(m.subject.as_str())
            })
    }

    /// The person the server vouches for, if it does.
    pub fn person(&self) -> Option<&Person> {
        self.member.as_ref().filter(|_| self.vouched())
    }
}

fn db_err(e: postgres::Error) -> TeamError {
    // The server's own message (a trigger's, a permission's) when there is
    // one: it says what was refused.
    let why = match e.as_db_error() {
        Some(d) => d.message().to_string(),
        None => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(c) = src {
                s.push_str(": ");
                s.push_str(&c.to_string());
                src = c.source();
            }
            s
        }
    };
    TeamError::Db(why)
}

fn loopback(host: &Host) -> bool {
    match host {
        Host::Unix(_) => true,
        Host::Tcp(h) => {
            h == "localhost"
                || h.parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
    }
}

fn tls(
    ca_file: Option<&std::path::Path>,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, TeamError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let bad = |why: String| TeamError::Config(format!("CA file {}: {why}", path.display()));
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| bad(e.to_string()))?
            .collect::<Result<_, _>>()
            .map_err(|e| bad(e.to_string()))?;
        if certs.is_empty() {
            return Err(bad("no certificate in it".into()));
        }
        for c in certs {
            roots.add(c).map_err(|e| bad(e.to_string()))?;
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TeamError::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

impl Db {
    /// Connects to `url` (`postgres://user@host:port/db`) as its user,
    /// with `password`. Off loopback TLS is required, whatever `sslmode`
    /// the URL says: a password never crosses a network in clear.
    pub fn connect(
        url: &str,
        password: Option<&str>,
        ca_file: Option<&std::path::Path>,
    ) -> Result<Db, TeamError> {
        let mut config: Config = url
            .parse()
            .map_err(|e: postgres::Error| TeamError::Url(e.to_string()))?;
        if config.get_password().is_some() {
            return Err(TeamError::Url(
                "the URL holds a password; craik takes it from the secret store (--password-stdin) or a .pgpass file, never from a URL".into(),
            ));
        }
        if let Some(p) = password {
            config.password(p);
        }
        // `hostaddr` is where the connection really goes: it must be
        // loopback too for TLS to be optional.
        let remote_addr = config.get_hostaddrs().iter().any(|a| !a.is_loopback());
        if remote_addr || config.get_hosts().iter().any(|h| !loopback(h)) {
            config.ssl_mode(SslMode::Require);
        }
        config.connect_timeout(Duration::from_secs(5));
        // A stalled server or a black-holed connection must not hold the
        // shipping lock (and every craik of this home) for ever.
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(10));
        config.tcp_user_timeout(Duration::from_secs(15));
        config.options("-c statement_timeout=30000");
        config.application_name("craik");
        let client = config.connect(tls(ca_file)?).map_err(|e| match db_err(e) {
            TeamError::Db(why) => TeamError::Unreachable(why),
            other => other,
        })?;
        Ok(Db { client })
    }

    /// Applies the schema (needs DDL rights: `craik team init`).
    pub fn migrate(&mut self) -> Result<i64, TeamError> {
        let mut last = 0;
        for (version, sql) in MIGRATIONS {
            let mut tx = self.client.transaction().map_err(db_err)?;
            tx.batch_execute(sql).map_err(db_err)?;
            tx.commit().map_err(db_err)?;
            last = *version;
        }
        Ok(last)
    }

    /// The schema version the server holds (0: none).
    pub fn schema_version(&mut self) -> Result<i64, TeamError> {
        let exists: bool = self
            .client
            .query_one("SELECT to_regclass('craik_meta') IS NOT NULL", &[])
            .map_err(db_err)?
            .get(0);
        if !exists {
            return Ok(0);
        }
        let v: Option<String> = self
            .client
            .query_opt(
                "SELECT value FROM craik_meta WHERE key = 'schema_version'",
                &[],
            )
            .map_err(db_err)?
            .map(|r| r.get(0));
        Ok(v.and_then(|v| v.parse().ok()).unwrap_or(0))
    }

    /// The team's audit-key check ([`crate::audit::identity::AuditKey::team_check`]),
    /// if `team init --audit-key` named a shared key.
    pub fn audit_key_check(&mut self) -> Result<Option<String>, TeamError> {
        Ok(self
            .client
            .query_opt(
                "SELECT value FROM craik_meta WHERE key = 'audit_key_check'",
                &[],
            )
            .map_err(db_err)?
            .map(|r| r.get(0)))
    }

    /// Records the shared audit key's check (the administrator's).
    pub fn set_audit_key_check(&mut self, check: &str) -> Result<(), TeamError> {
        self.client
            .execute(
                "INSERT INTO craik_meta (key, value) VALUES ('audit_key_check', $1) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                &[&check],
            )
            .map_err(db_err)?;
        Ok(())
    }

    /// Registers `home_id` as this login's (idempotent); refused when
    /// another login registered it.
    pub fn register(&mut self, home_id: &str, label: &str) -> Result<(), TeamError> {
        self.client
            .execute(
                "INSERT INTO craik_homes (home_id, label) VALUES ($1, $2) ON CONFLICT (home_id) DO NOTHING",
                &[&home_id, &label],
            )
            .map_err(db_err)?;
        let row = self
            .client
            .query_one(
                "SELECT registered_by::text = current_user::text FROM craik_homes WHERE home_id = $1",
                &[&home_id],
            )
            .map_err(db_err)?;
        if !row.get::<_, bool>(0) {
            return Err(TeamError::Db(format!(
                "home {home_id} is registered by another login"
            )));
        }
        Ok(())
    }

    /// The head of a home's chain: (seq, hash); (0, genesis) when empty.
    pub fn head(&mut self, home_id: &str) -> Result<(i64, String), TeamError> {
        let row = self
            .client
            .query_opt(
                "SELECT seq, hash FROM craik_chain_heads WHERE home_id = $1",
                &[&home_id],
            )
            .map_err(db_err)?
            .ok_or_else(|| TeamError::NotRegistered(home_id.to_string()))?;
        Ok((
            row.try_get(0).map_err(db_err)?,
            row.try_get(1).map_err(db_err)?,
        ))
    }

    /// Appends `receipts` (contiguous, following the head) in one
    /// transaction: all of them or none. Rows go 500 to a statement (one
    /// round trip each; the trigger still checks every row).
    pub fn append(&mut self, home_id: &str, receipts: &[Receipt]) -> Result<(), TeamError> {
        use postgres::types::ToSql;
        let mut tx = self.client.transaction().map_err(db_err)?;
        for chunk in receipts.chunks(500) {
            let mut sql = format!("INSERT INTO craik_receipts (home_id, {COLUMNS}) VALUES ");
            let mut params: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(chunk.len() * 23);
            for (i, r) in chunk.iter().enumerate() {
                if i > 0 {
                    sql.push(',');
                }
                let base = params.len();
                sql.push('(');
                for k in 1..=23 {
                    if k > 1 {
                        sql.push(',');
                    }
                    sql.push_str(&format!("${}", base + k));
                }
                sql.push(')');
                params.extend_from_slice(&[
                    &home_id as &(dyn ToSql + Sync),
                    &r.seq,
                    &r.id,
                    &r.created_at,
                    &r.kind,
                    &r.run_id,
                    &r.capability,
                    &r.status,
                    &r.reason,
                    &r.policy_condition,
                    &r.auth_profile_id,
                    &r.auth_kind,
                    &r.auth_identity_hash,
                    &r.provider_family,
                    &r.pool_id,
                    &r.operator_subject,
                    &r.operator_issuer,
                    &r.operator_email,
                    &r.operator_groups,
                    &r.operator_identity_hash,
                    &r.details,
                    &r.prev_hash,
                    &r.hash,
                ]);
            }
            tx.execute(sql.as_str(), &params).map_err(db_err)?;
        }
        tx.commit().map_err(db_err)
    }

    /// Names `login` as the person (issuer, subject) with the groups other
    /// machines count for them: the administrator's `craik team member
    /// add` (only the tables' owner may write).
    pub fn add_member(
        &mut self,
        login: &str,
        issuer: &str,
        subject: &str,
        groups: &[String],
    ) -> Result<(), TeamError> {
        let exists = self
            .client
            .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&login])
            .map_err(db_err)?
            .is_some();
        if !exists {
            return Err(TeamError::Db(format!(
                "no login named {login} on this server"
            )));
        }
        self.client
            .execute(
                "INSERT INTO craik_members (login, issuer, subject, groups) VALUES ($1, $2, $3, $4) ON CONFLICT (login) DO UPDATE SET issuer = EXCLUDED.issuer, subject = EXCLUDED.subject, groups = EXCLUDED.groups, added_at = now(), added_by = session_user",
                &[&login, &issuer, &subject, &groups],
            )
            .map_err(db_err)?;
        Ok(())
    }

    /// Removes `login` from the members; whether it was one.
    pub fn remove_member(&mut self, login: &str) -> Result<bool, TeamError> {
        Ok(self
            .client
            .execute("DELETE FROM craik_members WHERE login = $1", &[&login])
            .map_err(db_err)?
            > 0)
    }

    pub fn members(&mut self) -> Result<Vec<Member>, TeamError> {
        self.client
            .query(
                "SELECT login::text, issuer, subject, groups, added_at::text, added_by::text FROM craik_members ORDER BY login",
                &[],
            )
            .map_err(db_err)?
            .iter()
            .map(|r| {
                Ok(Member {
                    login: r.try_get(0)?,
                    issuer: r.try_get(1)?,
                    subject: r.try_get(2)?,
                    groups: r.try_get(3)?,
                    added_at: r.try_get(4)?,
                    added_by: r.try_get(5)?,
                })
            })
            .collect::<Result<_, postgres::Error>>()
            .map_err(db_err)
    }

    /// The newest `limit` receipts of `kind` (status ok) of every chain,
    /// for a profile and a run when given, with what the server says of
    /// each ([`TeamRow`]), newest shipped first.
    pub fn recent(
        &mut self,
        kind: &str,
        profile: Option<&str>,
        run: Option<&str>,
        limit: i64,
    ) -> Result<Vec<TeamRow>, TeamError> {
        self.rows(
            "r.kind = $1 AND ($2::text IS NULL OR r.auth_profile_id = $2) AND ($3::text IS NULL OR r.run_id = $3) \
             ORDER BY r.shipped_at DESC, home_id, r.seq DESC LIMIT $4",
            &[&kind, &profile, &run, &limit],
        )
    }

    /// Every approval of `profile` (in `run` when given) that another home
    /// than `home` shipped, that the server vouches for, and that names
    /// `home` and one of `requests` (this home's own request ids): what
    /// another writer piles up cannot crowd out the one that answers.
    pub fn approvals_for(
        &mut self,
        profile: &str,
        run: Option<&str>,
        home: &str,
        requests: &[String],
    ) -> Result<Vec<TeamRow>, TeamError> {
        self.rows(
            &format!(
                "r.kind = 'approval' AND r.auth_profile_id = $1 AND ($2::text IS NULL OR r.run_id = $2) \
                 AND home_id <> $3 AND strpos(r.details, $3) > 0 \
                 AND EXISTS (SELECT 1 FROM unnest($4::text[]) q WHERE strpos(r.details, q) > 0) AND {VOUCHED} \
                 ORDER BY r.shipped_at DESC, home_id, r.seq DESC"
            ),
            &[&profile, &run, &home, &requests],
        )
    }

    /// Every team grant and revocation (`details.team`) the server vouches
    /// for, in the order the server took them: no limit, so none is
    /// crowded out, and no writer's clock decides which came last.
    pub fn team_grants(&mut self) -> Result<Vec<TeamRow>, TeamError> {
        self.rows(
            &format!(
                "r.kind IN ('grant', 'grant_revoked') AND strpos(r.details, '\"team\":true') > 0 AND {VOUCHED} \
                 ORDER BY r.shipped_at, home_id, r.seq"
            ),
            &[],
        )
    }

    fn rows(
        &mut self,
        cond: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Vec<TeamRow>, TeamError> {
        let sql = format!(
            "SELECT home_id, h.label, h.registered_by::text, r.shipped_by::text, \
             to_char(r.shipped_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), \
             m.issuer, m.subject, m.groups, {COLUMNS} \
             FROM craik_receipts r JOIN craik_homes h USING (home_id) \
             LEFT JOIN craik_members m ON m.login = r.shipped_by \
             WHERE r.status = 'ok' AND {cond}"
        );
        self.client
            .query(sql.as_str(), params)
            .map_err(db_err)?
            .iter()
            .map(|r| {
                let issuer: Option<String> = r.try_get(5)?;
                let subject: Option<String> = r.try_get(6)?;
                let groups: Option<Vec<String>> = r.try_get(7)?;
                Ok(TeamRow {
                    home_id: r.try_get(0)?,
                    label: r.try_get(1)?,
                    registered_by: r.try_get(2)?,
                    shipped_by: r.try_get(3)?,
                    shipped_at: r.try_get(4)?,
                    member: issuer.zip(subject).map(|(issuer, subject)| Person {
                        issuer,
                        subject,
                        groups: groups.unwrap_or_default(),
                    }),
                    receipt: receipt_at(r, 8)?,
                })
            })
            .collect::<Result<_, postgres::Error>>()
            .map_err(db_err)
    }

    /// `receipts stats --team`: counts over every chain, the same as a
    /// home's `receipts stats`, and per home.
    pub fn stats(&mut self) -> Result<crate::audit::store::query::Stats, TeamError> {
        let mut s = crate::audit::store::query::Stats {
            total: self
                .client
                .query_one("SELECT count(*) FROM craik_receipts", &[])
                .map_err(db_err)?
                .try_get(0)
                .map_err(db_err)?,
            ..Default::default()
        };
        for (sql, map) in [
            (
                "SELECT kind, count(*) FROM craik_receipts GROUP BY 1",
                &mut s.by_kind,
            ),
            (
                "SELECT status, count(*) FROM craik_receipts GROUP BY 1",
                &mut s.by_status,
            ),
            (
                "SELECT auth_profile_id, count(*) FROM craik_receipts GROUP BY 1",
                &mut s.by_profile,
            ),
            (
                "SELECT coalesce(operator_email, operator_subject), count(*) FROM craik_receipts GROUP BY 1",
                &mut s.by_operator,
            ),
            (
                "SELECT h.label || ' (' || h.home_id || ')', count(r.seq) FROM craik_homes h LEFT JOIN craik_receipts r USING (home_id) GROUP BY 1",
                &mut s.by_home,
            ),
        ] {
            for r in self.client.query(sql, &[]).map_err(db_err)? {
                let k: Option<String> = r.try_get(0).map_err(db_err)?;
                if let Some(k) = k {
                    map.insert(k, r.try_get(1).map_err(db_err)?);
                }
            }
        }
        Ok(s)
    }

    /// Every registered home: (id, label, head seq).
    pub fn chains(&mut self) -> Result<Vec<(String, String, i64)>, TeamError> {
        self.client
            .query(
                "SELECT h.home_id, h.label, coalesce(c.seq, 0) FROM craik_homes h LEFT JOIN craik_chain_heads c USING (home_id) ORDER BY h.registered_at, h.home_id",
                &[],
            )
            .map_err(db_err)?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect::<Result<_, postgres::Error>>()
            .map_err(db_err)
    }

    /// Starts a read-only snapshot: every read until [`Db::end`] sees the
    /// store as it was at the first one (verify, the team checkpoint).
    pub fn snapshot(&mut self) -> Result<(), TeamError> {
        self.client
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .map_err(db_err)
    }

    pub fn end(&mut self) -> Result<(), TeamError> {
        self.client.batch_execute("COMMIT").map_err(db_err)
    }

    /// Receipts of a home's chain that another login than the one that
    /// registered the home shipped (the server records both).
    pub fn foreign_rows(&mut self, home_id: &str) -> Result<Option<i64>, TeamError> {
        let r = self
            .client
            .query_one(
                "SELECT min(r.seq) FROM craik_receipts r JOIN craik_homes h USING (home_id) WHERE r.home_id = $1 AND r.shipped_by <> h.registered_by",
                &[&home_id],
            )
            .map_err(db_err)?;
        r.try_get(0).map_err(db_err)
    }

    /// Every receipt of every chain matching `filter` (all but its
    /// profile pattern and `before`, which the caller applies), newest
    /// first or oldest first, streamed to `f` with the chain's home id,
    /// in batches; `f` returns whether to go on.
    pub fn query(
        &mut self,
        filter: &crate::audit::store::query::Filter,
        mut f: impl FnMut(String, Receipt) -> Result<bool, TeamError>,
    ) -> Result<(), TeamError> {
        use postgres::types::ToSql;
        let mut conds: Vec<String> = Vec::new();
        let mut params: Vec<Box<dyn ToSql + Sync>> = Vec::new();
        let mut eq = |conds: &mut Vec<String>, col: &str, v: &Option<String>| {
            if let Some(v) = v {
                params.push(Box::new(v.clone()));
                conds.push(format!("{col} = ${}", params.len()));
            }
        };
        eq(&mut conds, "operator_identity_hash", &filter.operator_hash);
        eq(&mut conds, "auth_identity_hash", &filter.identity_hash);
        eq(&mut conds, "kind", &filter.kind);
        eq(&mut conds, "status", &filter.status);
        eq(&mut conds, "run_id", &filter.run);
        eq(&mut conds, "pool_id", &filter.pool);
        if let Some(p) = filter.profile.as_ref().filter(|p| !p.contains(['*', '?'])) {
            eq(&mut conds, "auth_profile_id", &Some(p.clone()));
        }
        if let Some(op) = &filter.operator {
            params.push(Box::new(op.clone()));
            let n = params.len();
            conds.push(format!(
                "(operator_subject = ${n} OR operator_email = ${n})"
            ));
        }
        // created_at is RFC 3339 in UTC with milliseconds: its text sorts
        // as its time.
        for (t, cmp) in [(&filter.since, ">="), (&filter.until, "<=")] {
            if let Some(t) = t {
                params.push(Box::new(
                    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                ));
                conds.push(format!("created_at {cmp} ${}", params.len()));
            }
        }
        let order = if filter.ascending { "ASC" } else { "DESC" };
        let sql = format!(
            "SELECT home_id, {COLUMNS} FROM craik_receipts {} ORDER BY created_at {order}, home_id, seq {order}",
            if conds.is_empty() {
                String::new()
            } else {
                format!("WHERE {}", conds.join(" AND "))
            }
        );
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|b| b.as_ref()).collect();
        let mut tx = self.client.transaction().map_err(db_err)?;
        let portal = tx.bind(sql.as_str(), &refs).map_err(db_err)?;
        loop {
            let rows = tx.query_portal(&portal, 2_000).map_err(db_err)?;
            if rows.is_empty() {
                break;
            }
            for r in &rows {
                let home: String = r.try_get(0).map_err(db_err)?;
                if !f(home, receipt_at(r, 1).map_err(db_err)?)? {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Up to `limit` receipts of a home's chain after `seq` and up to
    /// `upto`, oldest first; a row that does not read as a receipt (a NULL
    /// or a changed type) is `Err(its seq)`.
    pub fn receipts_after(
        &mut self,
        home_id: &str,
        seq: i64,
        upto: i64,
        limit: i64,
    ) -> Result<Vec<Result<Receipt, i64>>, TeamError> {
        Ok(self
            .client
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM craik_receipts WHERE home_id = $1 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT $4"
                ),
                &[&home_id, &seq, &upto, &limit],
            )
            .map_err(db_err)?
            .iter()
            .map(|r| receipt_at(r, 0).map_err(|_| r.try_get::<_, i64>(0).unwrap_or(seq + 1)))
            .collect())
    }
}

/// The receipt in `r`'s columns from `at` on ([`COLUMNS`]' order).
fn receipt_at(r: &postgres::Row, at: usize) -> Result<Receipt, postgres::Error> {
    Ok(Receipt {
        seq: r.try_get(at)?,
        id: r.try_get(at + 1)?,
        created_at: r.try_get(at + 2)?,
        kind: r.try_get(at + 3)?,
        run_id: r.try_get(at + 4)?,
        capability: r.try_get(at + 5)?,
        status: r.try_get(at + 6)?,
        reason: r.try_get(at + 7)?,
        policy_condition: r.try_get(at + 8)?,
        auth_profile_id: r.try_get(at + 9)?,
        auth_kind: r.try_get(at + 10)?,
        auth_identity_hash: r.try_get(at + 11)?,
        provider_family: r.try_get(at + 12)?,
        pool_id: r.try_get(at + 13)?,
        operator_subject: r.try_get(at + 14)?,
        operator_issuer: r.try_get(at + 15)?,
        operator_email: r.try_get(at + 16)?,
        operator_groups: r.try_get(at + 17)?,
        operator_identity_hash: r.try_get(at + 18)?,
        details: r.try_get(at + 19)?,
        prev_hash: r.try_get(at + 20)?,
        hash: r.try_get(at + 21)?,
    })
}
