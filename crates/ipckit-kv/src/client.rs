//! A small blocking RESP client over a Unix socket or TCP: what the tests and the bench use.
//!
//! (Helper K1 fills this in.)
