//! Looking a path up without asking a filesystem that may block: one component at a time
//! through `O_PATH` descriptors, each placed on its mount by a mount table
//! ([`mountinfo`]) before it is opened and by its descriptor's own `mnt_id` after.
//! What `ipckit ls`, `gc` and a socket take-over use for the paths in `/proc/net/unix`,
//! which any user in any mount namespace chooses.

use std::collections::HashMap;

use super::procfs::{Mount, fdinfo_mnt_id, may_block, may_look_up, mountinfo, read_lossy};

/// Whose view a path is looked up in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum View {
    /// This process's: from its root, through its mounts.
    Ours,
    /// Task TID's, from its root (`/proc/TID/root`) through the mounts of its mount namespace.
    Root(u32),
    /// Task TID's, for a relative path: from its working directory, placed under its root.
    Cwd(u32),
}

/// What a lookup that cannot hang found.
#[derive(Debug)]
pub(crate) enum Looked {
    /// The file, not followed if it is a symbolic link.
    File(rustix::fs::Stat),
    /// Nothing there (or a component is not a directory, or not searchable, or a loop).
    Absent,
    /// Not looked up, and why: a component is on a filesystem that may block, or the view
    /// could not be placed.
    Skipped(String),
}

/// The mount tables a scan looks paths up with: this process's, and those of the tasks
/// whose views are used (read once each, when first needed).
#[derive(Debug, Default)]
pub(crate) struct Mounts {
    ours: Vec<Mount>,
    tasks: HashMap<u32, Option<Vec<Mount>>>,
    /// Filesystem types by mount id, from every table read (ids are unique system-wide).
    by_id: HashMap<u64, String>,
}

impl Mounts {
    /// This process's `/proc/self/mountinfo`.
    pub(crate) fn read() -> Mounts {
        Mounts::from_text(&std::fs::read("/proc/self/mountinfo").unwrap_or_default())
    }

    /// From the text of this process's mountinfo (tests give a crafted one).
    pub(crate) fn from_text(text: &[u8]) -> Mounts {
        let mut m = Mounts {
            ours: mountinfo(text),
            ..Mounts::default()
        };
        for x in &m.ours {
            m.by_id.insert(x.id, x.fstype.clone());
        }
        m
    }

    /// This process's mounts.
    pub(crate) fn ours(&self) -> &[Mount] {
        &self.ours
    }

    /// Gives task `tid`'s mount table instead of reading it (tests).
    #[cfg(test)]
    pub(crate) fn set_task(&mut self, tid: u32, text: &[u8]) {
        let table = mountinfo(text);
        for x in &table {
            self.by_id.insert(x.id, x.fstype.clone());
        }
        self.tasks.insert(tid, Some(table));
    }

    fn load_task(&mut self, tid: u32) {
        if self.tasks.contains_key(&tid) {
            return;
        }
        let table = std::fs::read(format!("/proc/{tid}/mountinfo"))
            .ok()
            .map(|t| mountinfo(&t));
        for x in table.iter().flatten() {
            self.by_id.entry(x.id).or_insert_with(|| x.fstype.clone());
        }
        self.tasks.insert(tid, table);
    }

    /// `lstat(2)` of `path` in `view`, one component at a time through `O_PATH` descriptors,
    /// so that nothing on a filesystem that may block is ever asked: before a component is
    /// opened, the path so far (symbolic links already replaced by their targets, so it is
    /// the real one) is placed on its mount by the view's mount table, and a component on a
    /// [`may_block`] filesystem, or on one the table does not know, is not opened (opening
    /// even a mount point of a hung NFS server can wait on it). After it is opened, the
    /// descriptor's own mount (`mnt_id` of its fdinfo, which asks no filesystem) is checked
    /// too, so a mount made meanwhile cannot slip in. Symbolic links are read through the
    /// descriptor and followed inside the view's root (`..` stops there too), as
    /// `RESOLVE_IN_ROOT` would; openat2(2) is not used because it resolves a whole path at
    /// once and could not stop before a blocking component.
    pub(crate) fn lstat(&mut self, view: View, path: &std::path::Path) -> Looked {
        use std::os::unix::ffi::OsStrExt;
        let (anchor, path) = match view {
            View::Ours if path.is_absolute() => ("/".to_string(), path.to_path_buf()),
            View::Root(tid) if path.is_absolute() => (format!("/proc/{tid}/root"), path.into()),
            View::Cwd(tid) if path.is_relative() => match task_cwd(tid) {
                Ok(cwd) => (format!("/proc/{tid}/root"), cwd.join(path)),
                Err(why) => return Looked::Skipped(why),
            },
            _ => return Looked::Skipped("a path of the wrong kind for its view".into()),
        };
        let table = match view {
            View::Ours => &self.ours,
            View::Root(tid) | View::Cwd(tid) => {
                self.load_task(tid);
                match self.tasks.get(&tid) {
                    Some(Some(t)) => t,
                    _ => {
                        return Looked::Skipped(format!(
                            "the mount table of task {tid} could not be read, so its filesystem is not known"
                        ));
                    }
                }
            }
        };
        look(
            table,
            &self.by_id,
            anchor.as_ref(),
            path.as_os_str().as_bytes(),
        )
    }
}

/// Task `tid`'s working directory as a path under its root (`/proc/TID/cwd` and
/// `/proc/TID/root` both read as this process sees them).
fn task_cwd(tid: u32) -> Result<std::path::PathBuf, String> {
    use std::os::unix::ffi::OsStrExt;
    let cwd = std::fs::read_link(format!("/proc/{tid}/cwd"));
    let root = std::fs::read_link(format!("/proc/{tid}/root"));
    let (Ok(cwd), Ok(root)) = (cwd, root) else {
        return Err(format!(
            "the working directory of task {tid} could not be read"
        ));
    };
    if cwd.as_os_str().as_bytes().ends_with(b" (deleted)") {
        return Err(format!("the working directory of task {tid} was deleted"));
    }
    match cwd.strip_prefix(&root) {
        Ok(rest) if root.is_absolute() => Ok(std::path::Path::new("/").join(rest)),
        _ => Err(format!(
            "the working directory of task {tid} is not under its root as this process sees it"
        )),
    }
}

/// The lookup of [`Mounts::lstat`]: `path` (absolute) under the directory `anchor` opens to,
/// with `table` the mounts as seen from that root.
fn look(
    table: &[Mount],
    by_id: &HashMap<u64, String>,
    anchor: &std::path::Path,
    path: &[u8],
) -> Looked {
    use rustix::fs::{FileType, Mode, OFlags};
    use std::collections::VecDeque;
    use std::os::unix::ffi::OsStrExt;
    if let Err(why) = may_look_up(table, b"/") {
        return Looked::Skipped(format!("its root is {why}"));
    }
    // "/" or a task's root, a link /proc follows without asking the filesystem there.
    let root = match rustix::fs::open(
        anchor,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(e) => {
            return Looked::Skipped(format!(
                "{} could not be opened ({})",
                anchor.display(),
                crate::error::errno_name(e)
            ));
        }
    };
    if let Err(why) = fd_mount(&root, by_id) {
        return Looked::Skipped(format!("its root is {why}"));
    }
    let parts = |p: &[u8]| -> Vec<Vec<u8>> {
        p.split(|&b| b == b'/')
            .filter(|c| !c.is_empty() && *c != b".")
            .map(<[u8]>::to_vec)
            .collect()
    };
    let mut queue: VecDeque<Vec<u8>> = parts(path).into();
    // The directories walked, each with the length of the real path to it.
    let mut stack: Vec<(rustix::fd::OwnedFd, usize)> = vec![(root, 0)];
    let mut real: Vec<u8> = Vec::new();
    let mut links = 0;
    while let Some(c) = queue.pop_front() {
        if c == b".." {
            if stack.len() > 1 {
                stack.pop();
            }
            real.truncate(stack.last().map_or(0, |s| s.1));
            continue;
        }
        let mut next = real.clone();
        next.push(b'/');
        next.extend_from_slice(&c);
        if let Err(why) = may_look_up(table, &next) {
            return Looked::Skipped(why);
        }
        let Some((dir, _)) = stack.last() else {
            return Looked::Absent;
        };
        let Ok(fd) = rustix::fs::openat(
            dir,
            std::ffi::OsStr::from_bytes(&c),
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) else {
            return Looked::Absent;
        };
        if let Err(why) = fd_mount(&fd, by_id) {
            return Looked::Skipped(why);
        }
        // Safe now: the filesystem is one that answers.
        let Ok(st) = rustix::fs::fstat(&fd) else {
            return Looked::Absent;
        };
        match FileType::from_raw_mode(st.st_mode) {
            // The last component is not followed, as lstat(2).
            _ if queue.is_empty() => return Looked::File(st),
            FileType::Symlink => {
                links += 1;
                // The kernel's own limit (ELOOP).
                if links > 40 {
                    return Looked::Absent;
                }
                let Ok(target) = rustix::fs::readlinkat(&fd, "", Vec::new()) else {
                    return Looked::Absent;
                };
                let target = target.into_bytes();
                if target.first() == Some(&b'/') {
                    stack.truncate(1);
                    real.clear();
                }
                for p in parts(&target).into_iter().rev() {
                    queue.push_front(p);
                }
            }
            FileType::Directory => {
                stack.push((fd, next.len()));
                real = next;
            }
            _ => return Looked::Absent,
        }
    }
    // The path named a directory ("/", or one ending in ".."): already checked.
    match stack.last().map(|(fd, _)| rustix::fs::fstat(fd)) {
        Some(Ok(st)) => Looked::File(st),
        _ => Looked::Absent,
    }
}

/// The mount `fd` is on, from `/proc/self/fdinfo/FD` (no filesystem is asked): `Err` when it
/// may block, or is one no table read lists.
fn fd_mount(fd: &rustix::fd::OwnedFd, by_id: &HashMap<u64, String>) -> Result<(), String> {
    use std::os::fd::AsRawFd;
    let info = read_lossy(format!("/proc/self/fdinfo/{}", fd.as_raw_fd()));
    let Some(id) = info.as_deref().and_then(fdinfo_mnt_id) else {
        return Err("on a mount that could not be told (no mnt_id in fdinfo)".into());
    };
    match by_id.get(&id) {
        None => Err(format!(
            "on a mount (id {id}) that no mount table read lists (mounted meanwhile?), so its filesystem is not known"
        )),
        Some(t) if may_block(t) => Err(format!(
            "on a {} filesystem, which ipckit does not stat (it could hang)",
            crate::name::escape_str(t)
        )),
        Some(_) => Ok(()),
    }
}
