//! FIFOs (named pipes), live: opening one blocks until the other side arrives (a writer waits
//! for a reader, a reader for a writer), so a lone writer hangs unless its open is timed; with
//! O_NONBLOCK a writer's open fails at once with ENXIO while a reader's always succeeds; and
//! the FIFO is a file that outlives every process that used it, while the data in it does not.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ipckit::stream::fifo::{self, Fifo};
use ipckit::transport::TimedRead;

use crate::child::{self, Args, Child, Role, T};
use crate::{Lab, Result, Scenario, Verdict, errno_of};

pub(crate) const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "fifo-open-blocks",
        lesson: "opening a FIFO blocks until the other side opens it too: a writer alone waits for ever unless its open is timed",
        run: fifo_open_blocks,
    },
    Scenario {
        name: "fifo-nonblock-enxio",
        lesson: "with O_NONBLOCK, opening a FIFO for writing with no reader fails at once with ENXIO, while opening it for reading succeeds at once",
        run: fifo_nonblock_enxio,
    },
    Scenario {
        name: "fifo-persists",
        lesson: "a FIFO is a file that stays after every process closed it, but its data does not: what nobody read is gone once the last end closes",
        run: fifo_persists,
    },
];

pub(crate) const ROLES: &[Role] = &[
    ("fifo-reader", reader),
    ("fifo-nb-reader", nb_reader),
    ("fifo-writer", writer),
    ("fifo-peek", peek),
];

/// The system calls an open can be: rustix uses open(2) on x86_64 (and most others), openat(2)
/// where the architecture has no open(2).
#[cfg(target_arch = "x86_64")]
const OPEN_CALLS: &[libc::c_long] = &[libc::SYS_open, libc::SYS_openat];
#[cfg(not(target_arch = "x86_64"))]
const OPEN_CALLS: &[libc::c_long] = &[libc::SYS_openat];

/// A private directory under the system temp dir, removed with everything in it on drop.
struct TempDir(PathBuf);

impl TempDir {
    /// A new directory under a fresh name, made 0700 by the mkdir itself (no moment where
    /// another user could add a name to it); one already there is an error, never reused.
    fn new() -> Result<TempDir> {
        let path = std::env::temp_dir().join(ipckit::name::unique("lab-fifo"));
        std::fs::DirBuilder::new().mode(0o700).create(&path)?;
        let dir = TempDir(path);
        // Exactly 0700 whatever the umask took away (it can only have narrowed it).
        std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o700))?;
        Ok(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A new FIFO in a new private temp dir. Whichever is dropped first, nothing is left: the
/// `Fifo` unlinks the FIFO if it is still there, and the dir goes with all it holds.
fn make_fifo(lab: &mut Lab) -> Result<(TempDir, Fifo)> {
    let dir = TempDir::new()?;
    let node = Fifo::create(dir.0.join("fifo"), &fifo::Options::default())?;
    lab.say("parent", format!("mkfifo {} (0600)", node.path().display()));
    Ok((dir, node))
}

fn who(c: &Child) -> String {
    format!("child {}", c.pid())
}

fn path_arg(p: &Path) -> String {
    p.display().to_string()
}

// ---------------------------------------------------------------------------------------------
// fifo-open-blocks

/// Child: a plain (blocking) open of PATH for reading, then reads until end of file.
fn reader(args: &Args) -> Result<()> {
    let path = args.get("PATH")?;
    child::say("open(O_RDONLY), blocking: no timeout");
    let mut r = fifo::open_read(&path)?;
    child::say(format!("open -> fd {}: a writer arrived", r.as_raw_fd()));
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        match r.read_timeout(&mut buf, T)? {
            None => return Err("no data and no end of file".into()),
            Some(0) => break,
            Some(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    child::say(format!(
        "read {:?}, then 0 (end of file)",
        String::from_utf8_lossy(&got)
    ));
    Ok(())
}

fn fifo_open_blocks(lab: &mut Lab) -> Result<Verdict> {
    let (_dir, node) = make_fifo(lab)?;
    let wait = Duration::from_millis(300);
    lab.say(
        "parent",
        "open it for writing, giving up after 300 ms (a plain open would wait for ever)",
    );
    let t0 = Instant::now();
    let first = fifo::open_write_timeout(node.path(), wait);
    let first_ms = t0.elapsed().as_millis();
    let timed_out = match &first {
        Err(e) if e.is_timeout() => {
            lab.kernel(format!(
                "no reader came in {first_ms} ms (each O_NONBLOCK try -> ENXIO): timed out"
            ));
            true
        }
        Err(e) => return Err(e.to_string().into()),
        Ok(_) => {
            lab.kernel("open -> ok: some other process is reading this FIFO");
            false
        }
    };
    drop(first);

    let mut c = child::spawn("fifo-reader")
        .arg("PATH", path_arg(node.path()))
        .start()?;
    let said = c.line()?;
    lab.say(who(&c), said);
    let reader_blocked = child::wait_sleeping_in(c.pid(), OPEN_CALLS, None)?;
    if reader_blocked {
        lab.kernel(format!(
            "child {} sleeps in open(): a reader's open waits for a writer too",
            c.pid()
        ));
    } else {
        lab.kernel(format!("child {} never blocked in open", c.pid()));
    }

    lab.say("parent", "open it for writing again, giving up after 10 s");
    let t1 = Instant::now();
    let mut w = fifo::open_write_timeout(node.path(), T)?;
    lab.kernel(format!(
        "open -> fd {} after {} ms: a reader is there",
        w.as_raw_fd(),
        t1.elapsed().as_millis()
    ));
    let said = c.line()?;
    lab.say(who(&c), said);
    let msg = "through the FIFO";
    w.write_all(msg.as_bytes())?;
    drop(w);
    lab.say("parent", format!("write {} bytes, close", msg.len()));
    let said = c.line()?;
    lab.say(who(&c), &said);
    c.success()?;
    let delivered = said.contains(msg);

    Verdict::check(
        timed_out && reader_blocked && delivered,
        format!(
            "alone, the writer's open {} after {first_ms} ms; the child reader's open {} until the writer's open, which then completed and delivered {} bytes",
            if timed_out {
                "timed out"
            } else {
                "did not wait"
            },
            if reader_blocked {
                "blocked"
            } else {
                "did not block"
            },
            if delivered { msg.len() } else { 0 }
        ),
    )
}

// ---------------------------------------------------------------------------------------------
// fifo-nonblock-enxio

/// Child: opens PATH for reading with O_NONBLOCK, then on "read" reads what came.
fn nb_reader(args: &Args) -> Result<()> {
    let path = args.get("PATH")?;
    let t0 = Instant::now();
    let mut r = fifo::try_open_read(&path)?;
    child::say(format!(
        "open(O_RDONLY|O_NONBLOCK) -> fd {} in {} us: no writer needed",
        r.as_raw_fd(),
        t0.elapsed().as_micros()
    ));
    if child::hear().as_deref() != Some("read") {
        return Ok(());
    }
    let mut buf = [0u8; 64];
    let n = r.read_timeout(&mut buf, T)?.ok_or("nothing to read")?;
    child::say(format!("read {:?}", String::from_utf8_lossy(&buf[..n])));
    Ok(())
}

fn fifo_nonblock_enxio(lab: &mut Lab) -> Result<Verdict> {
    let (_dir, node) = make_fifo(lab)?;
    lab.say("parent", "open(O_WRONLY|O_NONBLOCK), no reader anywhere");
    let first_errno = match fifo::try_open_write(node.path()) {
        Err(e) => {
            let name = errno_of(&e);
            lab.kernel(format!("open -> {name}"));
            if let Some(hint) = e.hint_text() {
                lab.say("ipckit", hint);
            }
            name
        }
        Ok(_) => {
            lab.kernel("open -> ok: some other process is reading this FIFO");
            "no error".to_string()
        }
    };

    let mut c = child::spawn("fifo-nb-reader")
        .arg("PATH", path_arg(node.path()))
        .start()?;
    let said = c.line()?;
    lab.say(who(&c), &said);
    let reader_opened = said.starts_with("open(O_RDONLY|O_NONBLOCK) -> fd");

    lab.say("parent", "open(O_WRONLY|O_NONBLOCK) again");
    let second = fifo::try_open_write(node.path());
    let second_ok = second.is_ok();
    match second {
        Ok(mut w) => {
            lab.kernel(format!(
                "open -> fd {}: the child is a reader",
                w.as_raw_fd()
            ));
            w.write_all(b"ping")?;
            lab.say("parent", "write \"ping\", close");
        }
        Err(e) => lab.kernel(format!("open -> {}", errno_of(&e))),
    }
    c.tell("read")?;
    let said = c.line()?;
    lab.say(who(&c), &said);
    c.success()?;
    let delivered = said == "read \"ping\"";

    Verdict::check(
        first_errno == "ENXIO" && reader_opened && second_ok && delivered,
        format!(
            "non-blocking open for writing with no reader -> {first_errno}; for reading -> {}; for writing with that reader there -> {}",
            if reader_opened {
                "ok at once"
            } else {
                "failed"
            },
            if second_ok && delivered {
                "ok, and \"ping\" arrived"
            } else {
                "failed"
            }
        ),
    )
}

// ---------------------------------------------------------------------------------------------
// fifo-persists

/// Child: opens PATH for writing (timed), writes MSG, closes and exits.
fn writer(args: &Args) -> Result<()> {
    let path = args.get("PATH")?;
    let msg = args.get("MSG")?;
    let mut w = fifo::open_write_timeout(&path, T)?;
    w.write_all(msg.as_bytes())?;
    child::say(format!(
        "open for writing, write {} bytes, close, exit",
        msg.len()
    ));
    Ok(())
}

/// Child: opens PATH for reading (O_NONBLOCK) and says how many bytes wait in it and what a
/// read gives: "BYTES READ".
fn peek(args: &Args) -> Result<()> {
    let path = args.get("PATH")?;
    let mut r = fifo::try_open_read(&path)?;
    let waiting = r.available()?;
    let mut buf = [0u8; 64];
    let read = std::io::Read::read(&mut r, &mut buf)?;
    child::say(format!("{waiting} {read}"));
    Ok(())
}

/// `ls -l`'s first column for `mode`.
fn ls_mode(ft: std::fs::FileType, mode: u32) -> String {
    let kind = if ft.is_fifo() {
        'p'
    } else if ft.is_dir() {
        'd'
    } else if ft.is_file() {
        '-'
    } else {
        '?'
    };
    let bits: String = (0..9)
        .map(|i| {
            if mode & (0o400 >> i) != 0 {
                ['r', 'w', 'x'][i % 3]
            } else {
                '-'
            }
        })
        .collect();
    format!("{kind}{bits}")
}

fn fifo_persists(lab: &mut Lab) -> Result<Verdict> {
    let (_dir, node) = make_fifo(lab)?;
    let path = node.path().to_path_buf();
    let r = fifo::try_open_read(&path)?;
    lab.say(
        "parent",
        "open it for reading (O_NONBLOCK), so the writer's open need not wait",
    );
    let msg = "nobody will read this";
    let mut c = child::spawn("fifo-writer")
        .arg("PATH", path_arg(&path))
        .arg("MSG", msg)
        .start()?;
    let said = c.line()?;
    lab.say(who(&c), said);
    c.success()?;
    lab.say(who(&c), "exited");
    let pending = r.available()?;
    lab.kernel(format!("FIONREAD -> {pending} bytes waiting in the FIFO"));
    drop(r);
    lab.say(
        "parent",
        "close its read end unread: no process has the FIFO open now",
    );

    let meta = std::fs::symlink_metadata(&path)?;
    let shown = ls_mode(meta.file_type(), meta.permissions().mode());
    let still_fifo = meta.file_type().is_fifo();
    lab.kernel(format!(
        "lstat -> {shown} size {} (ls -l: type p, a FIFO): still there",
        meta.len()
    ));

    let mut c = child::spawn("fifo-peek")
        .arg("PATH", path_arg(&path))
        .start()?;
    let said = c.line()?;
    c.success()?;
    let mut it = said.split_whitespace().map(str::parse::<usize>);
    let (Some(Ok(left)), Some(Ok(read))) = (it.next(), it.next()) else {
        return Err(format!("fifo-peek said {said:?}").into());
    };
    lab.say(
        who(&c),
        format!("open it for reading: FIONREAD -> {left} bytes; read -> {read} (no writer)"),
    );

    drop(node);
    lab.say(
        "parent",
        "drop its Fifo handle: the creator unlinks the FIFO",
    );
    let gone = match std::fs::symlink_metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            lab.kernel(format!("lstat -> {}: removed", errno_of(&e)));
            true
        }
        Err(e) => return Err(e.into()),
        Ok(_) => {
            lab.kernel("lstat -> still there");
            false
        }
    };

    Verdict::check(
        pending == msg.len() && still_fifo && left == 0 && read == 0 && gone,
        format!(
            "after every process closed it the FIFO was still there ({shown}); the {pending} bytes written and not read were gone ({left} waiting on reopen); the creator removed it"
        ),
    )
}
