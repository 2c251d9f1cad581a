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
