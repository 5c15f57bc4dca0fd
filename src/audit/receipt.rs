//! The receipt record.

use serde::{Deserialize, Serialize};

/// One receipt as stored. `operator_groups` is a JSON array and `details` a
/// JSON object, each kept as the exact text that was hashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub seq: i64,
    pub id: String,
    pub created_at: String,
    pub kind: String,
    pub run_id: Option<String>,
    pub capability: Option<String>,
    pub status: String,
    pub reason: Option<String>,
    pub policy_condition: Option<String>,
    pub auth_profile_id: Option<String>,
    pub auth_kind: Option<String>,
    pub auth_identity_hash: Option<String>,
    pub provider_family: Option<String>,
    pub pool_id: Option<String>,
    pub operator_subject: Option<String>,
    pub operator_issuer: Option<String>,
    pub operator_email: Option<String>,
    pub operator_groups: Option<String>,
    pub operator_identity_hash: Option<String>,
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

/// The JSON form of a receipt (`schemas/receipt.schema.json`).
#[derive(Debug, Serialize, Deserialize)]
pub struct ReceiptJson {
    pub seq: i64,
    pub id: String,
    pub created_at: String,
    pub kind: String,
    pub run_id: Option<String>,
    pub capability: Option<String>,
    pub status: String,
    pub reason: Option<String>,
    pub policy_condition: Option<String>,
    pub auth_profile_id: Option<String>,
    pub auth_kind: Option<String>,
    pub auth_identity_hash: Option<String>,
    pub provider_family: Option<String>,
    pub pool_id: Option<String>,
    pub operator_subject: Option<String>,
    pub operator_issuer: Option<String>,
    pub operator_email: Option<String>,
    pub operator_groups: Option<Vec<String>>,
    pub operator_identity_hash: Option<String>,
    pub details: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

impl Receipt {
    pub fn to_json(&self) -> ReceiptJson {
        ReceiptJson {
            seq: self.seq,
            id: self.id.clone(),
            created_at: self.created_at.clone(),
            kind: self.kind.clone(),
            run_id: self.run_id.clone(),
            capability: self.capability.clone(),
            status: self.status.clone(),
            reason: self.reason.clone(),
            policy_condition: self.policy_condition.clone(),
            auth_profile_id: self.auth_profile_id.clone(),
            auth_kind: self.auth_kind.clone(),
            auth_identity_hash: self.auth_identity_hash.clone(),
            provider_family: self.provider_family.clone(),
            pool_id: self.pool_id.clone(),
            operator_subject: self.operator_subject.clone(),
            operator_issuer: self.operator_issuer.clone(),
            operator_email: self.operator_email.clone(),
            operator_groups: self
                .operator_groups
                .as_deref()
                .and_then(|g| serde_json::from_str(g).ok()),
            operator_identity_hash: self.operator_identity_hash.clone(),
            details: serde_json::from_str(&self.details).unwrap_or(serde_json::Value::Null),
            prev_hash: self.prev_hash.clone(),
            hash: self.hash.clone(),
        }
    }
}

/// The operator a receipt names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Operator {
    pub subject: String,
    pub issuer: String,
    pub email: Option<String>,
    pub groups: Vec<String>,
    pub identity_hash: String,
    /// Set when the operator is a workload (a CI job, a pod): where its
    /// token came from and every claim it carried, for policies'
    /// `bound_claims`. Receipts name the source and the claims a policy
    /// bound, never the token.
    pub workload: Option<Workload>,
}

/// A workload operator's token, verified.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Workload {
    /// `github`, `kubernetes` or `file:PATH`.
    pub source: String,
    pub claims: serde_json::Map<String, serde_json::Value>,
}

/// What a receipt records. The log stores [`ReceiptKind::as_str`]; reading
/// keeps whatever text is stored (a newer craik may know more kinds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReceiptKind {
    ProfileAdded,
    ProfileRemoved,
    SecretMigrated,
    CredentialRefreshed,
    /// An `oidc-exchange` profile's token exchange (RFC 8693).
    CredentialExchanged,
    Login,
    Refresh,
    Logout,
    Grant,
    GrantRevoked,
    /// `auth-profiles.json` accepted as it is after a change made outside
    /// craik (`craik auth reseal`).
    ProfilesResealed,
    Denial,
    ApprovalRequested,
    Approval,
    /// An allowed authorization that is not itself a call (`auth check`,
    /// a proxy session's start).
    Authorization,
    CallStarted,
    CallFinished,
    /// `craik agent run` started an agent (before its proxy's calls).
    AgentStarted,
    /// The agent of an `agent.started` ended.
    AgentFinished,
    /// `craik unlock`: the file store's key kept in the kernel keyring.
    StoreUnlocked,
    /// `craik lock`: that key dropped before its time.
    StoreLocked,
    /// `craik team join`: this home ships to a team store from now on.
    TeamJoined,
    /// `craik receipts archive`: a range copied to an archive file.
    ReceiptsArchived,
    /// `craik receipts prune`: an archived range deleted from the log.
    ReceiptsPruned,
}

impl ReceiptKind {
    pub const ALL: [ReceiptKind; 24] = [
        ReceiptKind::ProfileAdded,
        ReceiptKind::ProfileRemoved,
        ReceiptKind::SecretMigrated,
        ReceiptKind::CredentialRefreshed,
        ReceiptKind::CredentialExchanged,
        ReceiptKind::Login,
        ReceiptKind::Refresh,
        ReceiptKind::Logout,
        ReceiptKind::Grant,
        ReceiptKind::GrantRevoked,
        ReceiptKind::ProfilesResealed,
        ReceiptKind::Denial,
        ReceiptKind::ApprovalRequested,
        ReceiptKind::Approval,
        ReceiptKind::Authorization,
        ReceiptKind::CallStarted,
        ReceiptKind::CallFinished,
        ReceiptKind::AgentStarted,
        ReceiptKind::AgentFinished,
        ReceiptKind::StoreUnlocked,
        ReceiptKind::StoreLocked,
        ReceiptKind::TeamJoined,
        ReceiptKind::ReceiptsArchived,
        ReceiptKind::ReceiptsPruned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReceiptKind::ProfileAdded => "profile_added",
            ReceiptKind::ProfileRemoved => "profile_removed",
            ReceiptKind::SecretMigrated => "secret_migrated",
            ReceiptKind::CredentialRefreshed => "credential_refreshed",
            ReceiptKind::CredentialExchanged => "credential_exchanged",
            ReceiptKind::Login => "login",
            ReceiptKind::Refresh => "refresh",
            ReceiptKind::Logout => "logout",
            ReceiptKind::Grant => "grant",
            ReceiptKind::GrantRevoked => "grant_revoked",
            ReceiptKind::ProfilesResealed => "profiles_resealed",
            ReceiptKind::Denial => "denial",
            ReceiptKind::ApprovalRequested => "approval_requested",
            ReceiptKind::Approval => "approval",
            ReceiptKind::Authorization => "authorization",
            ReceiptKind::CallStarted => "call.started",
            ReceiptKind::CallFinished => "call.finished",
            ReceiptKind::AgentStarted => "agent.started",
            ReceiptKind::AgentFinished => "agent.finished",
            ReceiptKind::StoreUnlocked => "store_unlocked",
            ReceiptKind::StoreLocked => "store_locked",
            ReceiptKind::TeamJoined => "team_joined",
            ReceiptKind::ReceiptsArchived => "receipts_archived",
            ReceiptKind::ReceiptsPruned => "receipts_pruned",
        }
    }
}

impl std::fmt::Display for ReceiptKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How what a receipt records ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Status {
    Ok,
    Failed,
    Denied,
    Allowed,
    /// The call ran and failed (a child's non-zero exit, an HTTP error).
    Error,
    /// The credential could not be read after `call.started`.
    CredentialUnavailable,
    /// Ended after `call.started` with nothing called.
    NotCalled,
    SpawnFailed,
    UpstreamError,
    /// The response was cut short (the client left, the upstream broke).
    Incomplete,
    Rejected,
    RateLimited,
    Expired,
    Unreachable,
}

impl Status {
    pub const ALL: [Status; 14] = [
        Status::Ok,
        Status::Failed,
        Status::Denied,
        Status::Allowed,
        Status::Error,
        Status::CredentialUnavailable,
        Status::NotCalled,
        Status::SpawnFailed,
        Status::UpstreamError,
        Status::Incomplete,
        Status::Rejected,
        Status::RateLimited,
        Status::Expired,
        Status::Unreachable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Failed => "failed",
            Status::Denied => "denied",
            Status::Allowed => "allowed",
            Status::Error => "error",
            Status::CredentialUnavailable => "credential_unavailable",
            Status::NotCalled => "not_called",
            Status::SpawnFailed => "spawn_failed",
            Status::UpstreamError => "upstream_error",
            Status::Incomplete => "incomplete",
            Status::Rejected => "rejected",
            Status::RateLimited => "rate_limited",
            Status::Expired => "expired",
            Status::Unreachable => "unreachable",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Status {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A receipt to append: the log fills in seq, id, time and the chain.
#[derive(Debug, Clone)]
pub struct NewReceipt {
    pub kind: ReceiptKind,
    pub status: Status,
    pub run_id: Option<String>,
    pub capability: Option<String>,
    pub reason: Option<String>,
    pub policy_condition: Option<String>,
    pub auth_profile_id: Option<String>,
    pub auth_kind: Option<String>,
    pub auth_identity_hash: Option<String>,
    pub provider_family: Option<String>,
    pub pool_id: Option<String>,
    pub operator: Option<Operator>,
    pub details: serde_json::Map<String, serde_json::Value>,
}

impl NewReceipt {
    pub fn new(kind: ReceiptKind, status: Status) -> NewReceipt {
        NewReceipt {
            kind,
            status,
            run_id: None,
            capability: None,
            reason: None,
            policy_condition: None,
            auth_profile_id: None,
            auth_kind: None,
            auth_identity_hash: None,
            provider_family: None,
            pool_id: None,
            operator: None,
            details: serde_json::Map::new(),
        }
    }

    pub fn profile(mut self, id: &str, kind: &str, family: &str) -> Self {
        self.auth_profile_id = Some(id.to_string());
        self.auth_kind = Some(kind.to_string());
        self.provider_family = Some(family.to_string());
        self
    }

    pub fn identity(mut self, hash: Option<String>) -> Self {
        self.auth_identity_hash = hash;
        self
    }

    pub fn operator(mut self, op: Option<Operator>) -> Self {
        if let Some(w) = op.as_ref().and_then(|o| o.workload.as_ref()) {
            self.details
                .insert("workload".into(), serde_json::json!({ "source": w.source }));
        }
        self.operator = op;
        self
    }

    pub fn run(mut self, run: &str) -> Self {
        self.run_id = Some(run.to_string());
        self
    }

    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    pub fn detail(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.details.insert(key.to_string(), value.into());
        self
    }
}

/// The columns of a CSV export (`receipts export --format csv`, the
/// audit page's export), one per field.
pub const CSV_HEADER: [&str; 22] = [
    "seq",
    "id",
    "created_at",
    "kind",
    "run_id",
    "capability",
    "status",
    "reason",
    "policy_condition",
    "auth_profile_id",
    "auth_kind",
    "auth_identity_hash",
    "provider_family",
    "pool_id",
    "operator_subject",
    "operator_issuer",
    "operator_email",
    "operator_groups",
    "operator_identity_hash",
    "details",
    "prev_hash",
    "hash",
];

/// A receipt as a CSV row, in [`CSV_HEADER`]'s order.
pub fn csv_row(r: &Receipt) -> [String; 22] {
    let o = |v: &Option<String>| v.clone().unwrap_or_default();
    [
        r.seq.to_string(),
        r.id.clone(),
        r.created_at.clone(),
        r.kind.clone(),
        o(&r.run_id),
        o(&r.capability),
        r.status.clone(),
        o(&r.reason),
        o(&r.policy_condition),
        o(&r.auth_profile_id),
        o(&r.auth_kind),
        o(&r.auth_identity_hash),
        o(&r.provider_family),
        o(&r.pool_id),
        o(&r.operator_subject),
        o(&r.operator_issuer),
        o(&r.operator_email),
        o(&r.operator_groups),
        o(&r.operator_identity_hash),
        r.details.clone(),
        r.prev_hash.clone(),
        r.hash.clone(),
    ]
}
