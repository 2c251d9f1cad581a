//! Which Linux IPC mechanism for which constraints: `ipckit advise` as a library. Given what
//! two processes need ([`Constraints`]: related or not, one way or two, whole messages, large
//! payloads, latency, descriptors to pass, several readers or writers, priorities, surviving a
//! restart, an event loop, another machine), [`advise`] ranks the mechanisms of [`RULES`] and
//! gives each candidate the calls to use, why it fits, its trade-off, the failure mode to guard
//! against, who cleans up and the `ipckit lab` scenario that shows the risk; constraints that no
//! mechanism meets together are named as conflicts.
//!
//! How it ranks: each [`Rule`] has one [`Fit`] per [`Need`] (best, good, ok, poor or no, with
//! why). A candidate's score is the sum of the weights of the fits of the constraints given
//! ([`Level::weight`]; `--latency-critical` counts twice); a `no` rules it out; ties go to the
//! simpler rule, the earlier in the table.
//!
//! How a figure is read: each rule names the `ipckit bench` rows that measure it
//! ([`Rule::rows`], as [`ipckit_bench::Row`]s, the one to show first first). From a bench
//! [`Report`](ipckit_bench::Report) (read with
//! [`Report::from_json`](ipckit_bench::Report::from_json), which refuses another report
//! version), [`measured_for`] takes the first of those rows that was measured and verified
//! (skipped, failed and unverified rows are passed over), at the smallest message size with
//! both a round trip and a throughput figure, or with `--large-payloads` each figure at the
//! largest size it was measured at. The result is a [`Measured`]: the row, the median round
//! trip and the one-way rate, each with its message size. The figures are this host's, one
//! run; the ranking is the rules'.
//!
//! ```
//! use ipckit_advise::{Constraints, advise};
//!
//! let c = Constraints { related: Some(true), two_way: Some(false), ..Default::default() };
//! let advice = advise(&c);
//! assert_eq!(advice.candidates[0].rule.mechanism, "anonymous pipe");
//! ```
//!
//! The crate reads reports through `ipckit-bench` without its `engine` feature: the report
//! types and the row registry only, so advice builds without the bench's drivers or iceoryx2.
//!
//! Layout: `need.rs` (the constraints), `rule.rs` (what a rule is), `rules.rs` (the table),
//! `rank.rs` (the ranking), `figures.rs` (the measured-figures reader).

mod figures;
mod need;
mod rank;
mod rule;
mod rules;

pub use figures::{Measured, measured, measured_for};
pub use need::{Constraints, Need};
pub use rank::{Advice, Candidate, advise};
pub use rule::{Fit, Level, Rule};
pub use rules::RULES;
