//! How a profile becomes credential material: the sources (environment,
//! keyring reference, secret reference, marker), OAuth refresh and minting,
//! adding/removing/migrating profiles, and onboarding (`auth setup`,
//! `auth login`).

pub mod manage;
pub mod oauth;
pub mod onboard;
pub mod source;
