//! `ipckit limits --json`: one [`LimitJson`] per resource, in one array.

use ipckit::host::limits::Limit;
use serde::{Deserialize, Serialize};

/// One row: numbers exactly as the kernel has them, null when unknown.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct LimitJson {
    pub resource: String,
    pub description: String,
    pub used: Option<u64>,
    pub limit: Option<u64>,
    /// "count", "bytes" or "pages".
    pub unit: String,
    pub use_percent: Option<f64>,
    /// The limit is the kernel's value for "no limit" (RLIM_INFINITY, SHMMAX's default, 0
    /// for the pipe page limits).
    pub unlimited: bool,
}

impl From<&Limit> for LimitJson {
    fn from(r: &Limit) -> LimitJson {
        LimitJson {
            resource: r.resource.to_string(),
            description: r.description.to_string(),
            used: r.used,
            limit: r.limit,
            unit: r.unit.as_str().to_string(),
            use_percent: r.use_percent(),
            unlimited: r.unlimited,
        }
    }
}
