//! Low-level helpers the mechanism modules and [`crate::host`] share, below both: what a
//! descriptor is ([`fd`]), a path lookup that cannot hang on a dead filesystem ([`lookup`]),
//! and the readers of the text the kernel writes under /proc
//! ([`procfs`], public as `ipckit::host::procfs`). Nothing here calls into a mechanism or into
//! `host`.

pub(crate) mod fd;
pub(crate) mod lookup;
pub mod procfs;
