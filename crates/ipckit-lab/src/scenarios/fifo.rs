//! (scenarios to come)

use crate::Scenario;
use crate::child::Role;

pub(crate) const SCENARIOS: &[Scenario] = &[];
pub(crate) const ROLES: &[Role] = &[];
