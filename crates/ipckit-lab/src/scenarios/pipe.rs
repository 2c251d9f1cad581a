//! Anonymous pipes, live: a reader sees end of file only when every write end is closed, in
//! every process (so a parent that forgets to close its own copy waits for ever); writing
//! into a pipe nobody can read kills with SIGPIPE unless the signal is ignored, when the write
//! fails with EPIPE; a pipe holds a fixed number of bytes (F_GETPIPE_SZ, raised with
//! F_SETPIPE_SZ), after which a writer waits; and writes of at most PIPE_BUF bytes are never
//! split, however many processes write at once, while larger ones may be.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use ipckit::stream::pipe::{self, PIPE_BUF, PipeReader, PipeWriter};
use ipckit::transport::TimedRead;

use crate::child::{self, Args, Child, Role, T};
use crate::{Lab, Result, Scenario, Verdict, errno_of};

pub(crate) const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "pipe-eof",
        lesson: "a pipe's reader sees end of file (read returns 0) only once every write end is closed, and data written before survives the writer",
        run: pipe_eof,
    },
    Scenario {
        name: "pipe-forgotten-end",
        lesson: "a parent that keeps its own copy of the write end never sees end of file, even after the writer exited; closing it gives EOF at once",
        run: pipe_forgotten_end,
    },
    Scenario {
        name: "pipe-sigpipe",
        lesson: "writing to a pipe with no reader kills the writer with SIGPIPE by default; with SIGPIPE ignored (Rust's default) the write fails with EPIPE",
        run: pipe_sigpipe,
    },
    Scenario {
        name: "pipe-capacity",
        lesson: "a pipe holds F_GETPIPE_SZ bytes (64 KiB by default, F_SETPIPE_SZ raises it): then a non-blocking write gets EAGAIN and a blocking one waits for a reader",
        run: pipe_capacity,
    },
    Scenario {
        name: "pipe-atomic-writes",
        lesson: "writes of at most PIPE_BUF (4096) bytes are never split, however many processes write into one pipe at once; larger ones may be",
        run: pipe_atomic_writes,
    },
];

pub(crate) const ROLES: &[Role] = &[
    ("pipe-writer", writer),
    ("pipe-sigpipe-writer", sigpipe_writer),
    ("pipe-block-writer", block_writer),
    ("pipe-record-writer", record_writer),
];

// ---------------------------------------------------------------------------------------------
// Shared helpers

/// Child side: the pipe or FIFO end the parent placed at descriptor 3 (`Spawn::fd(.., 3)`).
fn inherited_fd3() -> Result<OwnedFd> {
    let fd = crate::child::take_fd(3)?;
    let st = rustix::fs::fstat(&fd)?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::Fifo {
        return Err("descriptor 3 is not a pipe".into());
    }
    Ok(fd)
}

fn show(bytes: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(bytes))
}

fn who(c: &Child) -> String {
    format!("child {}", c.pid())
}

/// Reads `len` bytes, each read bounded by [`T`], narrating each read.
fn read_len(lab: &mut Lab, r: &mut PipeReader, len: usize) -> Result<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while got.len() < len {
        let want = (len - got.len()).min(buf.len());
        match r.read_timeout(&mut buf[..want], T)? {
            None => return Err(format!("no data within {T:?}").into()),
            Some(0) => {
                lab.kernel("read -> 0 bytes (end of file) before all the data came");
                break;
            }
            Some(n) => {
                lab.kernel(format!("read -> {n} bytes {}", show(&buf[..n])));
                got.extend_from_slice(&buf[..n]);
            }
        }
    }
    Ok(got)
}

// ---------------------------------------------------------------------------------------------
// pipe-eof and pipe-forgotten-end

/// Child: writes MSG into the pipe end at descriptor 3, then exits (closing it).
fn writer(args: &Args) -> Result<()> {
    let mut w = PipeWriter::from_fd(inherited_fd3()?)?;
    let msg = args.get("MSG")?;
    w.write_all(msg.as_bytes())?;
    child::say(format!(
        "write {} bytes into fd 3, then exit (which closes it)",
        msg.len()
    ));
    Ok(())
}

const MSG: &str = "hello through the pipe";

fn pipe_eof(lab: &mut Lab) -> Result<Verdict> {
    let (mut r, w) = pipe::pipe()?;
    lab.say(
        "parent",
        format!(
            "pipe2(O_CLOEXEC) -> read end fd {}, write end fd {}",
            r.as_raw_fd(),
            w.as_raw_fd()
        ),
    );
    let mut c = child::spawn("pipe-writer")
        .arg("MSG", MSG)
        .fd(w.as_fd(), 3)
        .start()?;
    lab.say(
        "parent",
        format!("start child {} with the write end as its fd 3", c.pid()),
    );
    drop(w);
    lab.say(
        "parent",
        "close its own write end: the child's copy is the only one",
    );
    let said = c.line()?;
    lab.say(who(&c), said);
    c.success()?;
    lab.say(who(&c), "exited: no process has a write end open any more");

    lab.say("parent", "read until end of file (each read bounded)");
    let got = read_len(lab, &mut r, MSG.len())?;
    let mut buf = [0u8; 64];
    let last = r.read_timeout(&mut buf, T)?;
    match last {
        Some(0) => lab.kernel("read -> 0 bytes: end of file (every write end is closed)"),
        Some(n) => lab.kernel(format!("read -> {n} more bytes?")),
        None => lab.kernel(format!("no end of file within {T:?}")),
    }
    let ok = got == MSG.as_bytes() && last == Some(0);
    Verdict::check(
        ok,
        format!(
            "the writer exited first, yet its {} bytes were still in the pipe; the next read returned {} (end of file, no write end left)",
            got.len(),
            last.map_or("nothing".to_string(), |n| n.to_string())
        ),
    )
}

fn pipe_forgotten_end(lab: &mut Lab) -> Result<Verdict> {
    let (mut r, w) = pipe::pipe()?;
    let mut c = child::spawn("pipe-writer")
        .arg("MSG", MSG)
        .fd(w.as_fd(), 3)
        .start()?;
    lab.say(
        "parent",
        format!(
            "pipe2, start writer child {}; keep its own write end fd {} open (the bug)",
            c.pid(),
            w.as_raw_fd()
        ),
    );
    let said = c.line()?;
    lab.say(who(&c), said);
    c.success()?;
    lab.say(who(&c), "exited: its write end is closed");

    let got = read_len(lab, &mut r, MSG.len())?;
    let wait = Duration::from_millis(300);
    lab.say(
        "parent",
        "read again for end of file, giving up after 300 ms (a plain read would wait for ever)",
    );
    let t0 = Instant::now();
    let mut buf = [0u8; 64];
    let stuck = r.read_timeout(&mut buf, wait)?;
    let stuck_ms = t0.elapsed().as_millis();
    match stuck {
        None => lab.kernel(format!(
            "no data and no end of file after {stuck_ms} ms: a write end (the parent's own) is still open"
        )),
        Some(n) => lab.kernel(format!("read -> {n} bytes")),
    }

    drop(w);
    lab.say("parent", "close the forgotten write end");
    let t1 = Instant::now();
    let eof = r.read_timeout(&mut buf, T)?;
    let eof_ms = t1.elapsed().as_millis();
    match eof {
        Some(0) => lab.kernel(format!("read -> 0 bytes (end of file) after {eof_ms} ms")),
        Some(n) => lab.kernel(format!("read -> {n} bytes")),
        None => lab.kernel(format!("still no end of file after {T:?}")),
    }
    let ok = got == MSG.as_bytes() && stuck.is_none() && eof == Some(0);
    Verdict::check(
        ok,
        format!(
            "with the parent's own write end open, the read after the writer exited timed out ({stuck_ms} ms, no EOF); once it was closed the read returned 0 in {eof_ms} ms"
        ),
    )
}

// ---------------------------------------------------------------------------------------------
// pipe-sigpipe

/// SIGPIPE's disposition in this process: "SIG_IGN", "SIG_DFL" or "a handler".
fn sigpipe_disposition() -> Result<&'static str> {
    // SAFETY: a zeroed sigaction is a valid value of this plain C struct; sigaction with a null
    // new action only writes the current disposition into `old`, which we own.
    let old = unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(libc::SIGPIPE, std::ptr::null(), &mut old) == -1 {
            return Err(std::io::Error::last_os_error().into());
        }
        old
    };
    Ok(match old.sa_sigaction {
        libc::SIG_IGN => "SIG_IGN",
        libc::SIG_DFL => "SIG_DFL",
        _ => "a handler",
    })
}

/// Child: sets SIGPIPE to SIGPIPE=default|ignore, then on "write" writes one byte to the pipe
/// end at descriptor 3, whose read end is closed everywhere.
fn sigpipe_writer(args: &Args) -> Result<()> {
    let mut w = PipeWriter::from_fd(inherited_fd3()?)?;
    let at_start = sigpipe_disposition()?;
    let (handler, name) = match args.get("SIGPIPE")?.as_str() {
        "default" => (libc::SIG_DFL, "SIG_DFL"),
        _ => (libc::SIG_IGN, "SIG_IGN"),
    };
    // SAFETY: installs SIG_DFL or SIG_IGN (no handler code) for SIGPIPE in this child process,
    // which has no other thread that relies on the disposition. This is what ipckit itself
    // never does: it leaves SIGPIPE as the program set it.
    if unsafe { libc::signal(libc::SIGPIPE, handler) } == libc::SIG_ERR {
        return Err(std::io::Error::last_os_error().into());
    }
    child::say(format!(
        "SIGPIPE was {at_start} at start (the Rust runtime sets it), now {name}"
    ));
    if child::hear().as_deref() != Some("write") {
        return Ok(()); // the parent is gone
    }
    match w.write(b"x") {
        Ok(n) => child::say(format!("write -> {n} bytes")),
        Err(e) => child::say(format!("write -> {}", errno_of(&e))),
    }
    Ok(())
}

fn pipe_sigpipe(lab: &mut Lab) -> Result<Verdict> {
    let mut killed_by = None;
    let mut ignored_said = String::new();
    let mut ignored_ok = false;
    for disposition in ["default", "ignore"] {
        let (r, w) = pipe::pipe()?;
        let mut c = child::spawn("pipe-sigpipe-writer")
            .arg("SIGPIPE", disposition)
            .fd(w.as_fd(), 3)
            .start()?;
        drop(w);
        drop(r);
        lab.say(
            "parent",
            format!(
                "pipe2, child {} gets the write end; parent closes both ends: no reader is left",
                c.pid()
            ),
        );
        let said = c.line()?;
        lab.say(who(&c), said);
        c.tell("write")?;
        lab.say("parent", format!("tell child {} to write 1 byte", c.pid()));
        let st = c.wait()?;
        // Whatever it said before it exited (nothing, if the signal killed it first).
        let said = c.line_within(T).ok().flatten();
        if let Some(said) = &said {
            lab.say(who(&c), said);
        }
        match st.signal() {
            Some(sig) => lab.kernel(format!(
                "child {} killed by signal {sig} ({})",
                c.pid(),
                ipckit::notify::signal::name(sig)
            )),
            None => lab.kernel(format!("child {} exited: {st}", c.pid())),
        }
        if disposition == "default" {
            killed_by = st.signal();
        } else {
            ignored_said = said.unwrap_or_default();
            ignored_ok = st.success() && ignored_said.contains("EPIPE");
        }
    }
    let ok = killed_by == Some(libc::SIGPIPE) && ignored_ok;
    Verdict::check(
        ok,
        format!(
            "with SIGPIPE at SIG_DFL the writer was {}; with SIGPIPE ignored: '{}'",
            killed_by.map_or("not killed".to_string(), |s| format!(
                "killed by {}",
                ipckit::notify::signal::name(s)
            )),
            ignored_said
        ),
    )
}

// ---------------------------------------------------------------------------------------------
// pipe-capacity

/// Writes blocks of `block.len()` bytes into a non-blocking pipe until the kernel refuses;
/// returns the bytes taken and the refusal's errno name.
fn fill(w: &PipeWriter, block: &[u8]) -> Result<(usize, String)> {
    let mut total = 0usize;
    // Bounded, though the pipe always fills: no pipe holds more than pipe-max-size.
    while total < 1 << 30 {
        match (&*w).write(block) {
            Ok(n) => total += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                return Ok((total, errno_of(&e)));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err("the pipe never filled".into())
}

/// Child: one blocking write of BYTES bytes to the pipe end at descriptor 3.
fn block_writer(args: &Args) -> Result<()> {
    let mut w = PipeWriter::from_fd(inherited_fd3()?)?;
    let n: usize = args.parse("BYTES")?;
    child::say(format!("write {n} bytes to fd 3 (blocking)"));
    let done = w.write(&vec![b'z'; n])?;
    child::say(format!("write -> {done} bytes"));
    Ok(())
}

fn pipe_capacity(lab: &mut Lab) -> Result<Verdict> {
    let (mut r, w) = pipe::pipe()?;
    let cap = w.capacity()?;
    lab.kernel(format!("F_GETPIPE_SZ -> {cap} bytes"));
    w.set_nonblocking(true)?;
    lab.say(
        "parent",
        "O_NONBLOCK on the write end; write 4096-byte blocks, nobody reading",
    );
    let block = [b'x'; PIPE_BUF];
    let (first, refusal) = fill(&w, &block)?;
    lab.kernel(format!(
        "{} writes took {first} bytes, the next -> {refusal}",
        first / PIPE_BUF
    ));

    let max: usize = std::fs::read_to_string("/proc/sys/fs/pipe-max-size")?
        .trim()
        .parse()?;
    let want = (cap * 4).min(max);
    lab.say(
        "parent",
        format!("F_SETPIPE_SZ {want} (pipe-max-size is {max})"),
    );
    let raised = w.set_capacity(want)?;
    lab.kernel(format!(
        "F_SETPIPE_SZ -> {raised} bytes; the {first} already in stay"
    ));
    let (more, refusal2) = fill(&w, &block)?;
    let held = r.available()?;
    lab.kernel(format!(
        "{more} more bytes taken, the next -> {refusal2}; FIONREAD -> {held} bytes in the pipe"
    ));

    // A blocking writer now: the pipe is full and nobody reads.
    w.set_nonblocking(false)?;
    let mut c = child::spawn("pipe-block-writer")
        .arg("BYTES", PIPE_BUF)
        .fd(w.as_fd(), 3)
        .start()?;
    drop(w);
    lab.say(
        "parent",
        format!("clear O_NONBLOCK; child {} gets the write end", c.pid()),
    );
    let said = c.line()?;
    lab.say(who(&c), said);
    let blocked = child::wait_sleeping_in(c.pid(), &[libc::SYS_write], Some(3))?;
    if blocked {
        lab.kernel(format!(
            "child {} sleeps in write(3): with nobody reading it would wait for ever",
            c.pid()
        ));
    } else {
        lab.kernel(format!("child {} never blocked in write", c.pid()));
    }
    let mut page = vec![0u8; PIPE_BUF];
    let n = r
        .read_timeout(&mut page, T)?
        .ok_or("the full pipe gave nothing to read")?;
    lab.say("parent", format!("read {n} bytes: one page free again"));
    let said = c.line()?;
    lab.say(who(&c), &said);
    c.success()?;
    let unblocked = said == format!("write -> {PIPE_BUF} bytes");

    let ok = first == cap
        && raised > cap
        && first + more == raised
        && held == raised
        && blocked
        && unblocked;
    Verdict::check(
        ok,
        format!(
            "the pipe took exactly {first} bytes (F_GETPIPE_SZ {cap}) before EAGAIN, {} after F_SETPIPE_SZ {raised}; a blocking writer {} until a read made room",
            first + more,
            if blocked {
                "slept in write()"
            } else {
                "did not block"
            }
        ),
    )
}

// ---------------------------------------------------------------------------------------------
// pipe-atomic-writes

const WRITERS: usize = 4;

/// Child: on "go", writes COUNT records of SIZE bytes, each all the byte 'A'+ID and each in
/// one write() call, to the pipe end at descriptor 3.
fn record_writer(args: &Args) -> Result<()> {
    let mut w = PipeWriter::from_fd(inherited_fd3()?)?;
    let id: u8 = args.parse("ID")?;
    let size: usize = args.parse("SIZE")?;
    let count: usize = args.parse("COUNT")?;
    let record = vec![b'A' + id; size];
    child::say("ready");
    if child::hear().as_deref() != Some("go") {
        return Ok(());
    }
    for _ in 0..count {
        // One call per record: a blocking pipe write returns only when all of it is in (a
        // signal could cut it short; none is sent here), so write_all loops only then.
        w.write_all(&record)?;
    }
    Ok(())
}

/// What one round of concurrent writers gave.
struct Round {
    all_blocked: bool,
    intact: bool,
    records: usize,
    changes: usize,
    split: usize,
    first_split: Option<usize>,
}

fn write_round(lab: &mut Lab, size: usize, count: usize) -> Result<Round> {
    let (mut r, w) = pipe::pipe()?;
    let mut kids = Vec::new();
    for id in 0..WRITERS {
        kids.push(
            child::spawn("pipe-record-writer")
                .arg("ID", id)
                .arg("SIZE", size)
                .arg("COUNT", count)
                .fd(w.as_fd(), 3)
                .start()?,
        );
    }
    drop(w);
    for k in &mut kids {
        k.line()?;
    }
    for k in &mut kids {
        k.tell("go")?;
    }
    lab.say(
        "parent",
        format!(
            "{WRITERS} children each write {count} records of {size} bytes (all 'A', all 'B', ...), one write() each; parent not reading yet"
        ),
    );
    // Every writer must block (the pipe holds far less than one writer's share): once all
    // sleep in write() together, their writes are truly concurrent.
    let mut all_blocked = true;
    for k in &kids {
        all_blocked &= child::wait_sleeping_in(k.pid(), &[libc::SYS_write], Some(3))?;
    }
    if all_blocked {
        lab.kernel(format!(
            "all {WRITERS} writers sleep in write(3) at the same time: the pipe is full"
        ));
    } else {
        lab.kernel("not every writer blocked in write()");
    }

    let expected = WRITERS * size * count;
    let mut stream = Vec::with_capacity(expected);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match r.read_timeout(&mut buf, T)? {
            None => return Err(format!("the writers wrote nothing for {T:?}").into()),
            Some(0) => break,
            Some(n) => stream.extend_from_slice(&buf[..n]),
        }
    }
    for k in &mut kids {
        k.success()?;
    }
    lab.say(
        "parent",
        format!("read {} bytes until end of file", stream.len()),
    );

    // Each run of one writer's bytes continues that writer's own sequence of records: a run
    // that starts or ends inside one of its records means that record came in pieces.
    let runs = runs(&stream);
    let mut offset = [0usize; 256];
    let mut split = std::collections::HashSet::new();
    let mut first_split = None;
    let mut pos = 0;
    for &(writer, len) in &runs {
        let start = offset[usize::from(writer)];
        let end = start + len;
        if start % size != 0 {
            split.insert((writer, start / size));
            first_split.get_or_insert(pos);
        }
        if end % size != 0 {
            split.insert((writer, end / size));
            first_split.get_or_insert(pos + len);
        }
        offset[usize::from(writer)] = end;
        pos += len;
    }
    let intact = stream.len() == expected
        && (0..WRITERS as u8).all(|id| offset[usize::from(b'A' + id)] == size * count);
    Ok(Round {
        all_blocked,
        intact,
        records: WRITERS * count,
        changes: runs.len().saturating_sub(1),
        split: split.len(),
        first_split,
    })
}

/// The stream as runs of one byte value, (value, length), compared a block at a time so it
/// stays quick in an unoptimised build.
fn runs(stream: &[u8]) -> Vec<(u8, usize)> {
    const STEP: usize = 4096;
    let mut out = Vec::new();
    let mut same = [0u8; STEP];
    let mut i = 0;
    while i < stream.len() {
        let v = stream[i];
        same.fill(v);
        let mut j = i;
        while j < stream.len() {
            let end = (j + STEP).min(stream.len());
            if stream[j..end] == same[..end - j] {
                j = end;
            } else {
                j += stream[j..end]
                    .iter()
                    .position(|&b| b != v)
                    .unwrap_or(end - j);
                break;
            }
        }
        out.push((v, j - i));
        i = j;
    }
    out
}

fn pipe_atomic_writes(lab: &mut Lab) -> Result<Verdict> {
    let small = write_round(lab, PIPE_BUF, 256)?;
    if small.split == 0 {
        lab.say(
            "parent",
            format!(
                "{} records: the writer changed {} times, always at a record boundary: none split",
                small.records, small.changes
            ),
        );
    } else {
        lab.say(
            "parent",
            format!(
                "{} records: {} arrived in pieces (first cut at byte {})",
                small.records,
                small.split,
                small.first_split.unwrap_or(0)
            ),
        );
    }

    let big_size = 100_000;
    let big = write_round(lab, big_size, 8)?;
    let observed = if big.split > 0 {
        format!(
            "{} arrived in pieces, another writer's bytes between them (first cut at byte {}): writes over PIPE_BUF were split",
            big.split,
            big.first_split.unwrap_or(0)
        )
    } else {
        "none split this time (nothing promises either way)".to_string()
    };
    lab.say(
        "parent",
        format!(
            "{} records, {} writer changes: {observed}",
            big.records, big.changes
        ),
    );

    let ok = small.all_blocked && small.intact && small.split == 0 && big.intact;
    let small_line = if !small.all_blocked {
        "the writers never all blocked in write() together".to_string()
    } else if !small.intact {
        "bytes were lost or added".to_string()
    } else if small.split > 0 {
        format!(
            "{} records of {PIPE_BUF} bytes arrived in pieces",
            small.split
        )
    } else {
        format!(
            "{WRITERS} writers blocked in write() at once; all {} records of {PIPE_BUF} bytes arrived whole ({} writer changes, all at record boundaries)",
            small.records, small.changes
        )
    };
    let big_line = if !big.intact {
        "bytes lost or added".to_string()
    } else if big.split > 0 {
        format!("{} of {} split (observed)", big.split, big.records)
    } else {
        "no split observed".to_string()
    };
    Verdict::check(
        ok,
        format!("{small_line}; records of {big_size} bytes: {big_line}"),
    )
}
