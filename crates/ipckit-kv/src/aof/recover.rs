//! Reading a log back: replay every whole command, and tell a torn tail (cut off) from
//! corruption in the middle (an error, unless the caller asked to cut there too).

use std::ffi::OsString;
use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::Path;

use ipckit::{Error, ErrorKind};
use rustix::fs::{Mode, OFlags};

use super::format::{Parsed, command_after, parse};
use super::{AofOptions, OPENING, Recovered, io_error, os_error, sync_dir};

/// The first read; each later one reads at least as much as is buffered (so a command larger
/// than one read is parsed a logarithmic number of times, not once per read).
const READ: usize = 1 << 20;
/// How far past bad bytes a whole command is looked for.
pub(crate) const WINDOW: usize = 64 << 20;

/// Where the log stops being whole.
#[derive(Debug)]
pub(crate) struct Bad {
    /// Offset of the command that is not whole.
    command_at: u64,
    /// Offset of the first wrong byte (the end of the file for a command it ends inside).
    byte_at: u64,
    why: &'static str,
    /// Offset of a whole command after it, if one was found.
    next: Option<u64>,
}

/// What a scan of the log found.
#[derive(Debug)]
pub(crate) struct Scan {
    pub(crate) commands: u64,
    /// The end of the last whole command.
    pub(crate) good: u64,
    /// Bytes after it.
    pub(crate) tail: u64,
    /// Set when the bytes after `good` are corruption, not a torn tail.
    pub(crate) corrupt: Option<Bad>,
}

/// The bytes read so far, from file offset `base`.
struct Reader<'f> {
    file: &'f File,
    buf: Vec<u8>,
    base: u64,
    start: usize,
    eof: bool,
}

impl Reader<'_> {
    fn offset(&self) -> u64 {
        self.base + self.start as u64
    }

    fn rest(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Reads more after what is buffered (dropping what was consumed).
    fn fill(&mut self) -> std::io::Result<()> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.base += self.start as u64;
            self.start = 0;
        }
        let want = READ.max(self.buf.len());
        let have = self.buf.len();
        self.buf.resize(have + want, 0);
        let mut got = 0;
        while got < want {
            match self
                .file
                .read_at(&mut self.buf[have + got..], self.base + (have + got) as u64)
            {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.buf.truncate(have + got);
                    return Err(e);
                }
            }
        }
        self.buf.truncate(have + got);
        Ok(())
    }
}

/// Replays every whole command of `file` through `apply` and finds where it stops being whole.
fn scan_file(file: &File, apply: &mut dyn FnMut(&[Vec<u8>])) -> std::io::Result<Scan> {
    let mut r = Reader {
        file,
        buf: Vec::new(),
        base: 0,
        start: 0,
        eof: false,
    };
    let mut commands = 0;
    // A MULTI whose EXEC has not come yet: its offset and the commands before it. A log that
    // ends inside a transaction ends at that MULTI (what follows it is a torn tail: the
    // transaction was one write), as Redis's loadAppendOnlyFile has it.
    let mut multi: Option<(u64, u64)> = None;
    loop {
        match parse(r.rest()) {
            Parsed::Command { args, len } => {
                let name = args.first().map_or(&[][..], |a| a.as_slice());
                if name.eq_ignore_ascii_case(b"MULTI") {
                    if let Some((at, before)) = multi {
                        // A MULTI inside a transaction: the first one never got its EXEC,
                        // and the log goes on after it. Nothing from it on is applied.
                        let byte_at = r.offset();
                        let tail = file.metadata()?.len().saturating_sub(at);
                        return Ok(Scan {
                            commands: before,
                            good: at,
                            tail,
                            corrupt: Some(Bad {
                                command_at: at,
                                byte_at,
                                why: "a MULTI without its EXEC, and another MULTI after it",
                                next: Some(byte_at),
                            }),
                        });
                    }
                    multi = Some((r.offset(), commands));
                } else if name.eq_ignore_ascii_case(b"EXEC")
                    || name.eq_ignore_ascii_case(b"DISCARD")
                {
                    multi = None;
                }
                apply(&args);
                commands += 1;
                r.start += len;
            }
            Parsed::Incomplete if !r.eof => r.fill()?,
            Parsed::Incomplete => {
                let mut good = r.offset();
                let mut tail = r.rest().len() as u64;
                let window = &r.rest()[..r.rest().len().min(WINDOW)];
                let corrupt = command_after(window).map(|p| Bad {
                    command_at: good,
                    byte_at: good + tail,
                    why: "a command the file ends inside",
                    next: Some(good + p as u64),
                });
                if let Some((at, before)) = multi {
                    tail += good - at;
                    good = at;
                    commands = before;
                }
                return Ok(Scan {
                    commands,
                    good,
                    tail,
                    corrupt,
                });
            }
            Parsed::Invalid { at, why } => {
                while !r.eof && r.rest().len() < WINDOW {
                    r.fill()?;
                }
                let mut good = r.offset();
                let beyond = r.rest().len() > WINDOW || !r.eof;
                let window = &r.rest()[..r.rest().len().min(WINDOW)];
                let next = command_after(window).map(|p| good + p as u64);
                let corrupt = (next.is_some() || beyond).then_some(Bad {
                    command_at: good,
                    byte_at: good + at as u64,
                    why,
                    next,
                });
                if let Some((at, before)) = multi {
                    good = at;
                    commands = before;
                }
                let tail = file.metadata()?.len().saturating_sub(good);
                return Ok(Scan {
                    commands,
                    good,
                    tail,
                    corrupt,
                });
            }
        }
    }
}

fn corrupt_error(path: &Path, bad: &Bad, cut: u64) -> Error {
    let after = match bad.next {
        Some(n) => format!("and a whole command follows at offset {n}"),
        None => format!("and more than {} MiB follow it", WINDOW >> 20),
    };
    Error::new(
        ErrorKind::InvalidInput,
        OPENING,
        format!(
            "the command at offset {} is corrupt (byte {}: {}), {after}: the log is damaged in \
             the middle, not torn at its end",
            bad.command_at, bad.byte_at, bad.why
        ),
    )
    .object(path.display())
    .hint(format!(
        "nothing was changed or dropped (discard what was replayed); restore the log from a \
         backup or mend it by hand, or start with --aof-truncate-corrupt \
         (AofOptions::truncate_corrupt) to cut it at offset {}: the commands after that are \
         then lost (the cut part is saved next to the log)",
        cut
    ))
}

/// [`scan_file`] for [`super::replay`]: corruption is an error, a torn tail is reported.
pub(crate) fn scan(
    file: &File,
    path: &Path,
    apply: &mut dyn FnMut(&[Vec<u8>]),
) -> ipckit::Result<Scan> {
    let s = scan_file(file, apply).map_err(|e| io_error(OPENING, path, e))?;
    match &s.corrupt {
        Some(bad) => Err(corrupt_error(path, bad, s.good)),
        None => Ok(s),
    }
}

/// Recovery at [`super::Aof::open`]: replays, then cuts a torn tail off (`ftruncate`, `fsync`),
/// or reports corruption, or (asked to) saves what follows a corrupt point and cuts it off.
pub(crate) fn recover(
    file: &File,
    dir: &OwnedFd,
    name: &OsString,
    path: &Path,
    opts: &AofOptions,
    apply: &mut dyn FnMut(&[Vec<u8>]),
) -> ipckit::Result<Recovered> {
    let s = scan_file(file, apply).map_err(|e| io_error(OPENING, path, e))?;
    let mut found = Recovered {
        commands: s.commands,
        truncated: 0,
        saved: None,
        replay_errors: 0,
    };
    if s.tail == 0 {
        return Ok(found);
    }
    if let Some(bad) = &s.corrupt {
        if !opts.truncate_corrupt {
            return Err(corrupt_error(path, bad, s.good));
        }
        found.saved = Some(save_tail(file, dir, name, path, s.good)?);
    }
    const CUTTING: &str = "cutting the torn tail off the append-only log";
    rustix::fs::ftruncate(file, s.good).map_err(|e| os_error(CUTTING, path, e))?;
    file.sync_all().map_err(|e| io_error(CUTTING, path, e))?;
    found.truncated = s.tail;
    Ok(found)
}

/// Copies the bytes of `file` from `from` on into a new file `NAME.corrupt-FROM-UNIQUE` next
/// to it, synced, and returns its path.
fn save_tail(
    file: &File,
    dir: &OwnedFd,
    name: &OsString,
    path: &Path,
    from: u64,
) -> ipckit::Result<std::path::PathBuf> {
    const SAVING: &str = "saving the corrupt part of the append-only log";
    let mut saved = name.as_bytes().to_vec();
    saved.extend_from_slice(format!(".corrupt-{from}-{}", ipckit::name::unique("aof")).as_bytes());
    let saved = OsString::from(std::ffi::OsStr::from_bytes(&saved));
    let fd = rustix::fs::openat(
        dir,
        &saved,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
    .map_err(|e| os_error(SAVING, path, e))?;
    let out = File::from(fd);
    let mut at = from;
    let mut chunk = vec![0u8; READ];
    loop {
        let n = match file.read_at(&mut chunk, at) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_error(SAVING, path, e)),
        };
        out.write_all_at(&chunk[..n], at - from)
            .map_err(|e| io_error(SAVING, path, e))?;
        at += n as u64;
    }
    out.sync_all().map_err(|e| io_error(SAVING, path, e))?;
    sync_dir(dir).map_err(|e| os_error(SAVING, path, e))?;
    Ok(path.with_file_name(saved))
}
