//! What a rule is: a mechanism, what to know before using it, and one [`Fit`] per [`Need`].

use ipckit_bench::Row;

use crate::need::Need;

/// How well a mechanism meets a need.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// What it is made for.
    Best,
    /// Meets it well.
    Good,
    /// Meets it, with work or a cost.
    Ok,
    /// Works against it.
    Poor,
    /// Cannot.
    No,
}

impl Level {
    /// Points towards the ranking; `None` for [`Level::No`], which rules the mechanism out.
    pub fn weight(self) -> Option<i32> {
        match self {
            Level::Best => Some(3),
            Level::Good => Some(2),
            Level::Ok => Some(1),
            Level::Poor => Some(-1),
            Level::No => None,
        }
    }

    /// `best`, `good`, `ok`, `poor`, `no`.
    pub fn name(self) -> &'static str {
        match self {
            Level::Best => "best",
            Level::Good => "good",
            Level::Ok => "ok",
            Level::Poor => "poor",
            Level::No => "no",
        }
    }
}

/// A mechanism against one need: how well, why, and the lab scenario that shows the risk
/// there, if one does.
#[derive(Clone, Copy, Debug)]
pub struct Fit {
    /// The need.
    pub need: Need,
    /// How well.
    pub level: Level,
    /// Why, in one line.
    pub why: &'static str,
    /// `ipckit lab NAME` for this need, when it has its own.
    pub lab: Option<&'static str>,
}

impl Fit {
    pub(crate) const fn lab(self, lab: &'static str) -> Fit {
        Fit {
            need: self.need,
            level: self.level,
            why: self.why,
            lab: Some(lab),
        }
    }
}

const fn fit(need: Need, level: Level, why: &'static str) -> Fit {
    Fit {
        need,
        level,
        why,
        lab: None,
    }
}
pub(crate) const fn best(need: Need, why: &'static str) -> Fit {
    fit(need, Level::Best, why)
}
pub(crate) const fn good(need: Need, why: &'static str) -> Fit {
    fit(need, Level::Good, why)
}
pub(crate) const fn ok(need: Need, why: &'static str) -> Fit {
    fit(need, Level::Ok, why)
}
pub(crate) const fn poor(need: Need, why: &'static str) -> Fit {
    fit(need, Level::Poor, why)
}
pub(crate) const fn no(need: Need, why: &'static str) -> Fit {
    fit(need, Level::No, why)
}

/// A mechanism and what to know before using it.
#[derive(Debug)]
pub struct Rule {
    /// Its name.
    pub mechanism: &'static str,
    /// The `ipckit bench` rows that measure it, the one to show first.
    pub rows: &'static [Row],
    /// The calls to use.
    pub calls: &'static str,
    /// What it is for, in one line.
    pub summary: &'static str,
    /// What it costs.
    pub tradeoff: &'static str,
    /// The failure mode to guard against.
    pub failure_mode: &'static str,
    /// Who removes what, and when.
    pub cleanup: &'static str,
    /// `ipckit lab NAME`: the scenario that shows the risk.
    pub lab: &'static str,
    /// It carries no data (a wake-up only): a candidate only for [`Constraints::notify_only`](crate::Constraints::notify_only).
    pub notify_only: bool,
    /// One fit per [`Need`].
    pub fits: &'static [Fit],
    /// Constraint sets for which it must be the first choice (checked by the tests).
    pub wins: &'static [&'static [Need]],
}

impl Rule {
    /// Its fit for `need`.
    pub fn fit(&self, need: Need) -> Option<&Fit> {
        self.fits.iter().find(|f| f.need == need)
    }

    /// How well it meets `need` (`Ok` when no fit names it).
    pub fn level(&self, need: Need) -> Level {
        self.fit(need).map_or(Level::Ok, |f| f.level)
    }
}
