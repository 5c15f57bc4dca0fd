//! Handing a credential out of craik into a file, for a process craik
//! does not start (`craik agent env`: a container's env file). The same
//! pipeline as every call: authorized, approved, `call.started` durable
//! (capability `export`) before the material is read, `call.finished`
//! after the file is written (or not).

use serde_json::{Map, Value};

use super::CallSpec;
use crate::audit::Status;
use crate::context::Context;
use crate::pool::Outcome;
use crate::profile::Profile;

/// Authorizes `spec`, then calls `write` with the profile and its
/// material; `write` returns the details its `call.finished` records.
pub fn export(
    ctx: &mut Context,
    spec: &CallSpec,
    details: Map<String, Value>,
    write: impl FnOnce(&Profile, &str) -> crate::Result<Map<String, Value>>,
) -> crate::Result<Profile> {
    let call = spec
        .resolve(ctx, &[])?
        .authorize(ctx, || {})?
        .start(ctx, details)?;
    let profile = call.profile().clone();
    let Some(material) = call.material() else {
        let e = crate::Error::input(
            format!(
                "profile {} has no credential to export (it delegates to the provider's CLI)",
                profile.id
            ),
            "name a profile that holds a key",
        );
        return Err(call.abandon(ctx, e));
    };
    match write(&profile, material) {
        Ok(done) => {
            call.finish(ctx, Status::Ok, Some(Outcome::Ok), None, done)?;
            Ok(profile)
        }
        Err(e) => Err(call.abandon(ctx, e)),
    }
}
