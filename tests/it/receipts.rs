//! The audit log as the CLI shows it (more in the receipts tests below).
