//! The ranking: [`advise`] scores every rule of [`RULES`] against the constraints given, names
//! the constraints that cannot all hold, and returns the [`Advice`].

use crate::need::{Constraints, Need};
use crate::rule::{Fit, Level, Rule, ok};
use crate::rules::RULES;

/// What a mechanism that can cross machines loses when `--remote` is not asked for: enough to
/// rank it below every local one that meets the same constraints.
const NETWORK_ON_ONE_HOST: i32 = 3;

/// A mechanism ranked for a set of constraints.
#[derive(Clone, Debug)]
pub struct Candidate {
    /// The rule.
    pub rule: &'static Rule,
    /// The sum of the fits' weights ([`Level::weight`]; a `No` counts nothing).
    pub score: i32,
    /// The fit for each constraint given, in flag order.
    pub reasons: Vec<Fit>,
}

impl Candidate {
    /// It meets every constraint given (no `No` fit).
    pub fn fits_all(&self) -> bool {
        self.cannot().next().is_none()
    }

    /// The fits that speak for it (best, good, ok).
    pub fn speaks_for(&self) -> impl Iterator<Item = &Fit> {
        self.reasons.iter().filter(|f| f.level <= Level::Ok)
    }

    /// The fits that work against it.
    pub fn against(&self) -> impl Iterator<Item = &Fit> {
        self.reasons.iter().filter(|f| f.level == Level::Poor)
    }

    /// The constraints it cannot meet.
    pub fn cannot(&self) -> impl Iterator<Item = &Fit> {
        self.reasons.iter().filter(|f| f.level == Level::No)
    }

    /// Why it fits, in one line: each constraint given and its reason, or what the mechanism
    /// is for when none was given.
    pub fn why(&self) -> String {
        let parts: Vec<String> = self
            .speaks_for()
            .map(|f| format!("{}: {}", f.need.flag(), f.why))
            .collect();
        if parts.is_empty() {
            self.rule.summary.to_string()
        } else {
            parts.join("; ")
        }
    }

    /// The lab scenarios that show its risks here: the rule's own first, then those of the
    /// constraints given.
    pub fn labs(&self) -> Vec<&'static str> {
        let mut labs = vec![self.rule.lab];
        for lab in self.reasons.iter().filter_map(|f| f.lab) {
            if !labs.contains(&lab) {
                labs.push(lab);
            }
        }
        labs
    }
}

/// The ranked recommendation for a set of constraints.
#[derive(Clone, Debug)]
pub struct Advice {
    /// Best first. Only mechanisms that meet every constraint given, unless none does: then
    /// the ones that miss the fewest (never one that misses a [`Need::hard`] one).
    pub candidates: Vec<Candidate>,
    /// Constraints that cannot all hold, each with why.
    pub conflicts: Vec<String>,
    /// What a constraint did to the field (`--remote` rules out every local mechanism).
    pub notes: Vec<String>,
}

fn names(rules: &[&Rule]) -> String {
    rules
        .iter()
        .map(|r| r.mechanism)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Ranks the mechanisms of [`RULES`] for `c`: by the sum of their fits' weights, ties to the
/// simpler (earlier) rule.
pub fn advise(c: &Constraints) -> Advice {
    let needs = c.needs();
    let field: Vec<&'static Rule> = RULES
        .iter()
        .filter(|r| !r.notify_only || c.notify_only)
        .collect();

    let mut notes = Vec::new();
    for hard in needs.iter().filter(|n| n.hard()) {
        let out: Vec<&Rule> = field
            .iter()
            .copied()
            .filter(|r| r.level(*hard) == Level::No)
            .collect();
        let left: Vec<&Rule> = field
            .iter()
            .copied()
            .filter(|r| r.level(*hard) != Level::No)
            .collect();
        if !out.is_empty() {
            notes.push(format!(
                "{} rules out every mechanism {}: {}; {} is what is left",
                hard.flag(),
                if *hard == Need::Remote {
                    "that is local to one host"
                } else {
                    "that cannot meet it"
                },
                names(&out),
                if left.is_empty() {
                    "nothing".to_string()
                } else {
                    names(&left)
                }
            ));
        }
    }

    let mut conflicts = Vec::new();
    for (i, a) in needs.iter().enumerate() {
        for b in &needs[i + 1..] {
            let both = field
                .iter()
                .any(|r| r.level(*a) != Level::No && r.level(*b) != Level::No);
            if both {
                continue;
            }
            // Explain from the narrower side: what it leaves, and why that cannot do the other.
            let for_a: Vec<&Rule> = field
                .iter()
                .copied()
                .filter(|r| r.level(*a) != Level::No)
                .collect();
            let for_b: Vec<&Rule> = field
                .iter()
                .copied()
                .filter(|r| r.level(*b) != Level::No)
                .collect();
            let (narrow, left, other) = if for_a.len() <= for_b.len() {
                (a, for_a, b)
            } else {
                (b, for_b, a)
            };
            let mut whys: Vec<&str> = Vec::new();
            for r in &left {
                if let Some(f) = r.fit(*other).filter(|f| !whys.contains(&f.why)) {
                    whys.push(f.why);
                }
            }
            conflicts.push(if left.is_empty() {
                format!(
                    "{} and {} cannot both hold: no mechanism meets {}",
                    a.flag(),
                    b.flag(),
                    narrow.flag()
                )
            } else {
                format!(
                    "{} and {} cannot both hold: {} leaves only {}, which cannot do {}: {}",
                    a.flag(),
                    b.flag(),
                    narrow.flag(),
                    names(&left),
                    other.flag(),
                    whys.join("; ")
                )
            });
        }
    }

    let mut all: Vec<(usize, Candidate)> = field
        .iter()
        .enumerate()
        .filter(|(_, r)| !needs.iter().any(|n| n.hard() && r.level(*n) == Level::No))
        .map(|(i, r)| {
            let reasons: Vec<Fit> = needs
                .iter()
                .map(|n| {
                    r.fit(*n)
                        .copied()
                        .unwrap_or_else(|| ok(*n, "no rule says otherwise"))
                })
                .collect();
            // --latency-critical "matters more than anything else": its fit counts twice.
            let score: i32 = reasons
                .iter()
                .filter_map(|f| {
                    let w = f.level.weight()?;
                    Some(if f.need == Need::LatencyCritical {
                        2 * w
                    } else {
                        w
                    })
                })
                .sum();
            // On one host a network mechanism (one that can reach another machine: TCP) only
            // adds the network stack to what a Unix socket does: it ranks below every local
            // mechanism unless --remote asks for it.
            let score = if r.level(Need::Remote) != Level::No && !c.remote {
                score - NETWORK_ON_ONE_HOST
            } else {
                score
            };
            (
                i,
                Candidate {
                    rule: r,
                    score,
                    reasons,
                },
            )
        })
        .collect();
    let fewest = all
        .iter()
        .map(|(_, c)| c.cannot().count())
        .min()
        .unwrap_or(0);
    all.retain(|(_, c)| c.cannot().count() == fewest);
    all.sort_by(|(i, x), (j, y)| y.score.cmp(&x.score).then(i.cmp(j)));
    if fewest > 0 && conflicts.is_empty() {
        conflicts.push(format!(
            "{} cannot all hold at once: no one mechanism meets them all; the closest miss {} each",
            needs.iter().map(|n| n.flag()).collect::<Vec<_>>().join(" "),
            fewest
        ));
    }
    Advice {
        candidates: all.into_iter().map(|(_, c)| c).collect(),
        conflicts,
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Need::*;

    fn first(needs: &[Need]) -> &'static str {
        let advice = advise(&Constraints::from_needs(needs));
        advice.candidates[0].rule.mechanism
    }

    #[test]
    fn the_channel_beside_raw_shared_memory() {
        const CHANNEL: &str = "ipckit channel";
        // A tie goes to the general one (any program can map shared memory); the channel
        // comes next, meeting everything too.
        for needs in [&[LargePayloads, LatencyCritical][..], &[LatencyCritical]] {
            let advice = advise(&Constraints::from_needs(needs));
            let top: Vec<_> = advice.candidates[..2].iter().collect();
            assert!(
                top[0].rule.mechanism.starts_with("shared memory"),
                "{needs:?}"
            );
            assert_eq!(top[1].rule.mechanism, CHANNEL, "{needs:?}");
            assert_eq!(top[0].score, top[1].score, "{needs:?}");
            assert!(top[1].fits_all());
        }
        // Whole messages tip it to the channel; several readers rule it out.
        assert_eq!(
            first(&[LargePayloads, LatencyCritical, Boundaries]),
            CHANNEL
        );
        let advice = advise(&Constraints::from_needs(&[ManyReaders, LargePayloads]));
        assert!(
            advice
                .candidates
                .iter()
                .all(|c| c.rule.mechanism != CHANNEL)
        );
    }

    #[test]
    fn remote_leaves_only_tcp_and_says_so() {
        let advice = advise(&Constraints::from_needs(&[Remote, OneWay, Boundaries]));
        assert_eq!(advice.candidates.len(), 1);
        assert_eq!(advice.candidates[0].rule.mechanism, "TCP");
        assert!(advice.conflicts.is_empty(), "{:?}", advice.conflicts);
        assert_eq!(advice.notes.len(), 1);
        let note = &advice.notes[0];
        assert!(
            note.starts_with("--remote rules out every mechanism that is local"),
            "{note}"
        );
        assert!(
            note.contains("anonymous pipe") && note.contains("shared memory"),
            "{note}"
        );
        assert!(note.ends_with("TCP is what is left"), "{note}");
    }

    #[test]
    fn remote_and_fd_passing_conflict() {
        let advice = advise(&Constraints::from_needs(&[Remote, FdPassing, TwoWay]));
        assert_eq!(advice.conflicts.len(), 1, "{:?}", advice.conflicts);
        let c = &advice.conflicts[0];
        assert!(
            c.starts_with("--fd-passing and --remote cannot both hold"),
            "{c}"
        );
        assert!(
            c.contains("leaves only TCP") && c.contains("Unix socket"),
            "{c}"
        );
        // Still an answer: TCP, with what it cannot do named.
        let top = &advice.candidates[0];
        assert_eq!(top.rule.mechanism, "TCP");
        assert!(!top.fits_all());
        assert_eq!(top.cannot().next().unwrap().need, FdPassing);
        assert!(advice.candidates.iter().all(|c| c.rule.mechanism == "TCP"));
    }

    #[test]
    fn fd_passing_needs_a_unix_socket() {
        let advice = advise(&Constraints::from_needs(&[FdPassing, Priorities]));
        assert!(advice.conflicts.is_empty());
        for c in &advice.candidates {
            assert!(
                c.rule.mechanism.starts_with("Unix "),
                "{}",
                c.rule.mechanism
            );
        }
        let advice = advise(&Constraints::from_needs(&[Related, Remote]));
        assert_eq!(advice.conflicts.len(), 1, "{:?}", advice.conflicts);
        assert!(advice.conflicts[0].starts_with("--related and --remote"));
    }

    #[test]
    fn a_wake_up_with_descriptors_is_a_unix_socket() {
        let advice = advise(&Constraints::from_needs(&[NotifyOnly, FdPassing]));
        assert!(advice.conflicts.is_empty(), "{:?}", advice.conflicts);
        assert!(advice.candidates[0].fits_all());
        assert!(advice.candidates[0].rule.mechanism.starts_with("Unix "));
    }

    #[test]
    fn notification_mechanisms_only_when_asked_for() {
        for needs in [&[][..], &[Related, EventLoop], &[LatencyCritical]] {
            let advice = advise(&Constraints::from_needs(needs));
            assert!(
                advice.candidates.iter().all(|c| !c.rule.notify_only),
                "{needs:?}"
            );
        }
    }

    #[test]
    fn reasons_and_labs_follow_the_constraints() {
        let advice = advise(&Constraints::from_needs(&[Related, OneWay, ManyWriters]));
        let pipe = &advice.candidates[0];
        assert_eq!(pipe.rule.mechanism, "anonymous pipe");
        assert_eq!(pipe.reasons.len(), 3);
        assert!(pipe.why().starts_with("--related: pipe2() before fork()"));
        assert_eq!(
            pipe.labs(),
            ["pipe-forgotten-end", "pipe-eof", "pipe-atomic-writes"]
        );
        let none = advise(&Constraints::default());
        assert_eq!(none.candidates[0].why(), RULES[0].summary);
        assert!(none.conflicts.is_empty() && none.notes.is_empty());
    }

    #[test]
    fn constraints_round_trip_through_needs() {
        let c = Constraints {
            related: Some(false),
            two_way: Some(true),
            fd_passing: true,
            remote: true,
            ..Default::default()
        };
        assert_eq!(c.needs(), [Unrelated, TwoWay, FdPassing, Remote]);
        assert_eq!(Constraints::from_needs(&c.needs()), c);
    }

    #[test]
    fn only_tcp_pays_for_the_network_on_one_host() {
        let network: Vec<&str> = RULES
            .iter()
            .filter(|r| r.level(Remote) != Level::No)
            .map(|r| r.mechanism)
            .collect();
        assert_eq!(network, ["TCP"]);
        // Two-way between unrelated processes: TCP meets it all, yet every local mechanism
        // that does too ranks above it.
        let advice = advise(&Constraints::from_needs(&[Unrelated, TwoWay]));
        assert_eq!(advice.candidates.last().unwrap().rule.mechanism, "TCP");
    }
}
