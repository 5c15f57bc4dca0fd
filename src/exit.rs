//! Exit codes: part of craik's interface (see docs/cli.md).

/// Success.
pub const OK: i32 = 0;
/// Any error not covered below (bad input, corrupt files, I/O).
pub const ERROR: i32 = 1;
/// Usage error: the command line could not be parsed.
pub const USAGE: i32 = 2;
/// Denied by policy or by a grant.
pub const DENIED: i32 = 3;
/// Approval required.
pub const APPROVAL_REQUIRED: i32 = 4;
/// The audit log is unavailable: the action was refused (fail closed).
pub const AUDIT_UNAVAILABLE: i32 = 5;
/// Operator login required or expired.
pub const LOGIN_REQUIRED: i32 = 6;
/// Credential unavailable or rejected.
pub const CREDENTIAL_UNAVAILABLE: i32 = 7;
