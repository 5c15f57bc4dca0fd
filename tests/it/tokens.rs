//! ID-token validation against a corpus of crafted tokens.
