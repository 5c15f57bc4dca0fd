//! A canary secret goes through every command; it must never come out.
