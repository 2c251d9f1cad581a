//! The zsets commands. (Helper K4 fills this in.)

use super::Spec;

/// This family's entries in the command table.
pub(super) const SPECS: &[Spec] = &[];
