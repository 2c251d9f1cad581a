//! The scenarios, one module per family. Each module has `SCENARIOS` (in the order
//! `ipckit lab` lists them) and `ROLES` (the child processes its scenarios start).

use crate::Scenario;
use crate::child::Role;

mod fifo;
mod mq;
mod pipe;
mod shm;
mod signal;
mod socket;
mod sync;
mod sysv;

pub(crate) const ALL: &[&[Scenario]] = &[
    pipe::SCENARIOS,
    fifo::SCENARIOS,
    shm::SCENARIOS,
    sync::SCENARIOS,
    sysv::SCENARIOS,
    mq::SCENARIOS,
    socket::SCENARIOS,
    signal::SCENARIOS,
];

pub(crate) const ROLES: &[&[Role]] = &[
    pipe::ROLES,
    fifo::ROLES,
    shm::ROLES,
    sync::ROLES,
    sysv::ROLES,
    mq::ROLES,
    socket::ROLES,
    signal::ROLES,
];

#[cfg(test)]
mod tests {
    #[test]
    fn role_names_are_unique_across_all_scenario_modules() {
        let mut names: Vec<&str> = super::ROLES
            .iter()
            .flat_map(|m| m.iter().map(|(name, _)| *name))
            .collect();
        assert!(!names.is_empty());
        names.sort_unstable();
        let repeated: Vec<&str> = names
            .windows(2)
            .filter(|w| w[0] == w[1])
            .map(|w| w[0])
            .collect();
        assert!(repeated.is_empty(), "roles named twice: {repeated:?}");
    }
}
