//! The state one craik invocation works with: the home, the secret store,
//! and (opened on demand) the audit log and its key.

use crate::audit::{AuditKey, AuditLog, NewReceipt, Notice, Receipt};
use crate::home::Home;
use crate::secret::Secrets;

pub struct Context {
    pub home: Home,
    pub secrets: Secrets,
    audit: Option<(AuditLog, AuditKey)>,
    /// Where notices for the user go (the CLI prints them on stderr).
    notice: fn(&Notice),
}

impl Context {
    pub fn open(home: Home) -> Context {
        Context {
            secrets: Secrets::new(&home),
            home,
            audit: None,
            notice: |_| {},
        }
    }

    pub fn open_default() -> crate::Result<Context> {
        Ok(Context::open(Home::open_default()?))
    }

    /// Sends notices for the user (an audit log's schema upgrade, a long
    /// catch-up of its query index) to `f`.
    pub fn set_notice(&mut self, f: fn(&Notice)) {
        self.notice = f;
    }

    /// Opens the audit log (creating and migrating it as needed), telling
    /// the user before slow, one-off work.
    pub fn open_audit_log(&self) -> crate::Result<AuditLog> {
        Ok(AuditLog::open_noting(&self.home, self.notice)?)
    }

    /// The audit log for a command that only reads it: read-only when it
    /// cannot be written ([`AuditLog::open_for_reading`]).
    pub fn read_audit_log(&self) -> crate::Result<AuditLog> {
        Ok(AuditLog::open_for_reading(&self.home, self.notice)?)
    }

    /// The audit key alone, without opening the log (`receipts hash`).
    pub fn load_audit_key(&self) -> crate::Result<AuditKey> {
        Ok(AuditKey::load(&self.secrets)?)
    }

    /// The audit log and key, opened on first use. Fails closed: an error
    /// here means no receipt can be written, so the action must not happen.
    pub fn audit(&mut self) -> crate::Result<&mut (AuditLog, AuditKey)> {
        if self.audit.is_none() {
            let log = self.open_audit_log()?;
            let key = AuditKey::load(&self.secrets)?;
            self.audit = Some((log, key));
        }
        Ok(self.audit.as_mut().expect("just opened"))
    }

    pub fn audit_key(&mut self) -> crate::Result<&AuditKey> {
        Ok(&self.audit()?.1)
    }

    /// Appends a receipt durably, then makes the automatic checkpoint when
    /// one is due ([`crate::audit::checkpoint::auto`]). The receipt is
    /// durable either way: a checkpoint that cannot be made now (the
    /// signing key unavailable) is tried again on the next receipt.
    pub fn record(&mut self, r: NewReceipt) -> crate::Result<Receipt> {
        Ok(self.record_all(vec![r])?.remove(0))
    }

    /// Appends receipts in one transaction: durable together (adjacent in
    /// the chain), or none is.
    pub fn record_all(&mut self, rs: Vec<NewReceipt>) -> crate::Result<Vec<Receipt>> {
        let receipts = self.audit()?.0.append_batch(rs)?;
        if let (Some((log, _)), Some(last)) = (&self.audit, receipts.last()) {
            let _ = crate::audit::checkpoint::auto(&self.home, &self.secrets, log, last.seq);
        }
        Ok(receipts)
    }
}
