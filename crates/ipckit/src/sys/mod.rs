//! Low-level helpers the mechanism modules and [`crate::host`] share, below both: what a
//! descriptor is ([`fd`]) and the readers of the text the kernel writes under /proc
//! ([`procfs`], public as `ipckit::host::procfs`). Nothing here calls into a mechanism or into
//! `host`.

pub(crate) mod fd;
pub mod procfs;
