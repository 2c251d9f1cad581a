//! The rules table as it stands: every rule wins the constraint sets it claims, says how it
//! fits every need once, and names only lab scenarios the lab has and rows the bench measures.

use ipckit_advise::Need::*;
use ipckit_advise::{Constraints, Need, RULES, advise};
use ipckit_bench::Row;

fn first(needs: &[Need]) -> &'static str {
    let advice = advise(&Constraints::from_needs(needs));
    advice.candidates[0].rule.mechanism
}

#[test]
fn every_rule_wins_its_own_constraints() {
    for rule in RULES {
        assert!(
            !rule.wins.is_empty(),
            "{} has no winning case",
            rule.mechanism
        );
        for needs in rule.wins {
            let advice = advise(&Constraints::from_needs(needs));
            let top = &advice.candidates[0];
            assert_eq!(
                top.rule.mechanism,
                rule.mechanism,
                "for {:?}: ranked {:?}",
                needs,
                advice
                    .candidates
                    .iter()
                    .map(|c| (c.rule.mechanism, c.score))
                    .collect::<Vec<_>>()
            );
            assert!(
                top.fits_all(),
                "{}: wins {needs:?} but cannot do it all",
                rule.mechanism
            );
            assert!(
                advice.conflicts.is_empty(),
                "{needs:?}: {:?}",
                advice.conflicts
            );
        }
    }
}

#[test]
fn every_rule_says_how_it_fits_every_need_once() {
    for rule in RULES {
        for need in Need::ALL {
            let n = rule.fits.iter().filter(|f| f.need == need).count();
            assert_eq!(n, 1, "{}: {} fits for {:?}", rule.mechanism, n, need);
        }
        for f in rule.fits {
            assert!(
                !f.why.is_empty(),
                "{}: {:?} has no reason",
                rule.mechanism,
                f.need
            );
        }
        for text in [
            rule.calls,
            rule.summary,
            rule.tradeoff,
            rule.failure_mode,
            rule.cleanup,
        ] {
            assert!(!text.is_empty(), "{}: an empty field", rule.mechanism);
            assert!(!text.contains("  "), "{}: {text:?}", rule.mechanism);
        }
    }
}

#[test]
fn every_lab_and_bench_row_named_exists() {
    let scenarios: Vec<&str> = ipckit_lab::scenarios().iter().map(|s| s.name).collect();
    for rule in RULES {
        let labs = std::iter::once(rule.lab).chain(rule.fits.iter().filter_map(|f| f.lab));
        for lab in labs {
            assert!(
                scenarios.contains(&lab),
                "{}: no lab scenario {lab}",
                rule.mechanism
            );
        }
        // A rule is measured by mechanism rows users can select: no reference, no test row.
        assert!(!rule.rows.is_empty(), "{}", rule.mechanism);
        for row in rule.rows {
            assert!(
                Row::ALL.contains(row) && !Row::TEST.contains(row),
                "{}: {row} is not a row `ipckit bench` measures",
                rule.mechanism
            );
            assert!(
                !row.as_str().starts_with("ref-"),
                "{}: {row}",
                rule.mechanism
            );
        }
    }
}

#[test]
fn the_five_combinations() {
    assert_eq!(first(&[Related, OneWay]), "anonymous pipe");
    assert_eq!(first(&[Unrelated, OneWay]), "FIFO (named pipe)");
    assert_eq!(first(&[TwoWay, FdPassing]), "Unix stream socket");
    assert_eq!(first(&[Boundaries, Priorities]), "POSIX message queue");
    let shm = first(&[LargePayloads, LatencyCritical]);
    assert!(shm.starts_with("shared memory"), "{shm}");
    assert!(shm.contains("futex") && shm.contains("semaphore"), "{shm}");
}
