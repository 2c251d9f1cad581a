//! `ipckit send URI [MESSAGE]...`.
//!
//! Standard input is read as it comes, in bounded memory: a byte stream gets each chunk as
//! it arrives, `--lines` sends each line as soon as it is complete (so `tail -f log | ipckit
//! send --lines ...` works), and a line, or the whole of standard input sent as one message,
//! is refused once it passes the most the endpoint takes in one message, without reading on.
//!
//! With `--timeout`, nothing waits on the peer for longer: not the connect or open, and not a
//! write or send that waits for room because the peer stopped reading (then the command fails
//! saying how much went). Waiting for standard input is not bounded: it is the sender's own
//! input, not the peer.

use std::io::{self, BufRead, Read, Write};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use ipckit::Deadline;
use ipckit::socket::tcp;
use ipckit::socket::unix::{UnixAddr, UnixDatagram, UnixSeqpacket, UnixStream};
use ipckit::stream::fifo;
use ipckit::transport::{MessageTransport, TimedWrite};

use crate::endpoint::Endpoint;
use crate::usage_bail;

pub struct SendArgs {
    pub endpoint: Endpoint,
    /// The messages given on the command line; standard input when empty.
    pub messages: Vec<String>,
    pub lines: bool,
    pub timeout: Option<Duration>,
    pub allow_remote: bool,
    pub object: crate::objects::ObjectOpts,
}

/// What to send: the message arguments, or standard input.
enum Payload {
    /// The messages given on the command line (at least one).
    Args(Vec<Vec<u8>>),
    /// Standard input, read as it comes.
    Stdin,
}

/// The most standard input `send` holds as one message where the endpoint sets no smaller
/// limit (shared memory, a channel, whose bulk path takes any size): 64 MiB.
const STDIN_MAX: usize = 64 << 20;

/// The largest message any POSIX queue can be made for (the kernel's `HARD_MSGSIZEMAX`, root
/// included); a queue's own message size is checked by `mq_send`.
const MQ_HARD_MSGSIZE: usize = 16 << 20;

/// Bytes read from standard input at a time for a byte stream.
const CHUNK: usize = 64 << 10;

pub fn run(args: SendArgs) -> Result<()> {
    let payload = if args.messages.is_empty() {
        Payload::Stdin
    } else {
        Payload::Args(
            args.messages
                .iter()
                .map(|m| m.as_bytes().to_vec())
                .collect(),
        )
    };
    check_flags(&args, &payload)?;
    if args.endpoint.keeps_boundaries() || args.endpoint.is_kernel_object() {
        send_messages(&args, payload)
    } else {
        send_stream(&args, payload)
    }
}

/// Usage errors (exit 2): a flag that does not apply to this endpoint, or flags that
/// contradict each other. Flags left at their defaults are not checked.
fn check_flags(args: &SendArgs, payload: &Payload) -> Result<()> {
    let e = &args.endpoint;
    let o = &args.object;
    let shm = matches!(e, Endpoint::PosixShm(_) | Endpoint::SysvShm(_));
    if o.priority != 0 && !matches!(e, Endpoint::PosixMq(_)) {
        usage_bail!("--priority is for POSIX queues (mq:/NAME): {e} has no priorities");
    }
    if o.mtype != 1 && !matches!(e, Endpoint::SysvMq(_)) {
        usage_bail!("--type is for System V queues (sysv-mq:KEY): {e} has no message types");
    }
    if o.offset != 0 && !shm {
        usage_bail!("--offset is for shared memory (shm:/NAME, sysv-shm:KEY), not {e}");
    }
    if o.size.is_some() && !shm {
        usage_bail!("--size is for shared memory (shm:/NAME, sysv-shm:KEY), not {e}");
    }
    if o.size.is_some() && !o.create {
        usage_bail!("--size is the size of what --create makes: add --create, or drop --size");
    }
    if o.create && !e.is_kernel_object() {
        usage_bail!(
            "--create makes a queue or shared memory (mq:, sysv-mq:, shm:, sysv-shm:); {e} is made by its receiver: start `ipckit recv {e}` first"
        );
    }
    if o.mode != ipckit::object::DEFAULT_MODE && !o.create {
        usage_bail!("--mode is the mode of what --create makes: add --create, or drop --mode");
    }
    if args.allow_remote && !matches!(e, Endpoint::Tcp(_)) {
        usage_bail!("--allow-remote is for tcp:HOST:PORT endpoints, not {e}");
    }
    if let (Endpoint::UnixSeqpacket(_), Payload::Args(messages)) = (e, payload)
        && let Some(i) = messages.iter().position(Vec::is_empty)
    {
        usage_bail!(
            "MESSAGE {} is empty: an empty message cannot be sent on a seqpacket socket ({e}), the receiver would read it as end of stream",
            i + 1
        );
    }
    Ok(())
}

/// Byte-stream schemes: each MESSAGE is written with a newline after it; standard input is
/// copied as it comes (each line already ends in one), so `cat` and `socat` see exactly
/// those bytes.
fn send_stream(args: &SendArgs, payload: Payload) -> Result<()> {
    let out: Box<dyn TimedWrite> = match &args.endpoint {
        Endpoint::Fifo(p) => Box::new(match args.timeout {
            Some(t) => fifo::open_write_timeout(p, t)?,
            None => fifo::open_write(p)?,
        }),
        Endpoint::Unix(p) => Box::new(connect_stream(&UnixAddr::path(p), args.timeout)?),
        Endpoint::Abstract(n) => Box::new(connect_stream(
            &UnixAddr::abstract_name(n.as_bytes()),
            args.timeout,
        )?),
        Endpoint::Tcp(a) => Box::new(match args.timeout {
            Some(t) => tcp::connect_timeout(a, args.allow_remote, t)?,
            None => tcp::connect(a, args.allow_remote)?,
        }),
        other => bail!("{other} is not a byte-stream endpoint"),
    };
    let mut w = StreamWriter {
        out,
        sent: 0,
        timeout: args.timeout,
        what: args.endpoint.to_string(),
    };
    match payload {
        Payload::Args(messages) => {
            for mut m in messages {
                m.push(b'\n');
                w.put(&m)?;
            }
        }
        Payload::Stdin => {
            let mut stdin = io::stdin().lock();
            let mut buf = vec![0u8; CHUNK];
            loop {
                let n = match stdin.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e).context("reading standard input"),
                };
                w.put(&buf[..n])?;
            }
        }
    }
    Ok(())
}

fn connect_stream(addr: &UnixAddr, timeout: Option<Duration>) -> ipckit::Result<UnixStream> {
    match timeout {
        Some(t) => UnixStream::connect_timeout(addr, t),
        None => UnixStream::connect(addr),
    }
}

/// Writes to a byte-stream peer, counting what went: with a timeout, each wait for room is
/// bounded by it (a reader that stops reading ends the send within the timeout).
struct StreamWriter {
    out: Box<dyn TimedWrite>,
    sent: u64,
    timeout: Option<Duration>,
    what: String,
}

impl StreamWriter {
    fn put(&mut self, mut data: &[u8]) -> Result<()> {
        while !data.is_empty() {
            let n = match self.timeout {
                Some(t) => match self.out.write_deadline(data, Deadline::after(t)) {
                    Ok(Some(n)) => n,
                    Ok(None) => bail!(
                        "sending to {}: timed out after {}: the reader is not reading ({} bytes sent, the rest was not)",
                        self.what,
                        humantime::format_duration(t),
                        self.sent
                    ),
                    Err(e) => return Err(self.failed(e.errno(), anyhow!(e))),
                },
                None => match self.out.write(data) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        let errno = e.raw_os_error().map(ipckit::Errno::from_raw_os_error);
                        return Err(self.failed(errno, anyhow!(e)));
                    }
                },
            };
            self.sent += n as u64;
            data = &data[n..];
        }
        Ok(())
    }

    /// A write that failed: a reader that went away is said plainly, with what went before.
    fn failed(&self, errno: Option<ipckit::Errno>, e: anyhow::Error) -> anyhow::Error {
        let (what, sent) = (&self.what, self.sent);
        match errno {
            Some(ipckit::Errno::PIPE) => anyhow!(
                "writing to {what}: the reader closed its end (EPIPE) after {sent} bytes; the rest was not delivered"
            ),
            Some(ipckit::Errno::CONNRESET) => anyhow!(
                "writing to {what}: the reader closed the connection (ECONNRESET) after {sent} bytes; the rest was not delivered"
            ),
            _ => e.context(format!("writing to {what} ({sent} bytes sent)")),
        }
    }
}

/// The most an endpoint takes in one message, and why (for the error that refuses more).
struct Limit {
    bytes: usize,
    why: &'static str,
}

impl Limit {
    /// A Unix datagram or seqpacket socket's: its send buffer, less the kernel's overhead.
    fn socket(sock: &impl MessageTransport) -> Limit {
        Limit {
            bytes: sock.max_msg_len().unwrap_or(STDIN_MAX),
            why: "its send buffer, SO_SNDBUF",
        }
    }

    /// A queue's, shared memory's or a channel's.
    fn of(endpoint: &Endpoint) -> Limit {
        match endpoint {
            Endpoint::PosixMq(_) => Limit {
                bytes: MQ_HARD_MSGSIZE,
                why: "the largest POSIX queue message there is; the queue's own size may be less",
            },
            Endpoint::SysvMq(_) => Limit {
                bytes: ipckit::mq::sysv::msgmax(),
                why: "/proc/sys/kernel/msgmax",
            },
            _ => Limit {
                bytes: STDIN_MAX,
                why: "the most `ipckit send` reads as one message",
            },
        }
    }
}

/// The messages to send, one at a time: the MESSAGE arguments, each line of standard input
/// as soon as it is complete (`--lines`), or standard input whole, each within the endpoint's
/// [`Limit`].
enum Source {
    Args(std::vec::IntoIter<Vec<u8>>),
    Lines(Lines),
    /// Standard input as one message (the flag: strip one final newline, for `--lines` into
    /// shared memory, which joins lines with newlines).
    Whole(Option<(Limit, bool)>, String),
}

fn source(args: &SendArgs, payload: Payload, limit: Limit) -> Source {
    let endpoint = args.endpoint.to_string();
    let shm = matches!(args.endpoint, Endpoint::PosixShm(_) | Endpoint::SysvShm(_));
    match payload {
        Payload::Args(messages) => Source::Args(messages.into_iter()),
        // Shared memory takes one write of everything: never streamed.
        Payload::Stdin if args.lines && !shm => Source::Lines(Lines {
            stdin: io::stdin().lock(),
            limit,
            endpoint,
            line: 0,
            done: false,
        }),
        Payload::Stdin => Source::Whole(Some((limit, args.lines)), endpoint),
    }
}

impl Iterator for Source {
    type Item = Result<Vec<u8>>;

    fn next(&mut self) -> Option<Result<Vec<u8>>> {
        match self {
            Source::Args(it) => it.next().map(Ok),
            Source::Lines(lines) => lines.next(),
            Source::Whole(once, endpoint) => {
                let (limit, strip) = once.take()?;
                Some(read_whole(limit, strip, endpoint))
            }
        }
    }
}

/// Standard input as one message: at most `limit.bytes`, refused (after reading one byte
/// more, never all of it) when longer.
fn read_whole(limit: Limit, strip_newline: bool, endpoint: &str) -> Result<Vec<u8>> {
    let mut all = Vec::new();
    io::stdin()
        .lock()
        .take(limit.bytes as u64 + 1)
        .read_to_end(&mut all)
        .context("reading standard input")?;
    if all.len() > limit.bytes {
        bail!(
            "sending to {endpoint}: standard input is longer than {} bytes, the most it takes in one message ({}): send it line by line with --lines, or over a byte stream (unix:, fifo:)",
            limit.bytes,
            limit.why
        );
    }
    if strip_newline && all.last() == Some(&b'\n') {
        all.pop();
    }
    Ok(all)
}

/// The lines of standard input, each as soon as its newline (or the end of input) comes,
/// newline stripped; one longer than the limit ends the send with an error that names it.
struct Lines {
    stdin: io::StdinLock<'static>,
    limit: Limit,
    endpoint: String,
    line: u64,
    done: bool,
}

impl Lines {
    fn next(&mut self) -> Option<Result<Vec<u8>>> {
        if self.done {
            return None;
        }
        self.line += 1;
        let mut line = Vec::new();
        loop {
            let buf = match self.stdin.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.done = true;
                    return Some(Err(anyhow!(e).context("reading standard input")));
                }
            };
            if buf.is_empty() {
                // End of input: a last line without its newline is still a line.
                self.done = true;
                return (!line.is_empty()).then_some(Ok(line));
            }
            let (take, newline) = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (i, true),
                None => (buf.len(), false),
            };
            if line.len() + take > self.limit.bytes {
                self.done = true;
                return Some(Err(anyhow!(
                    "sending to {}: line {} of standard input is longer than {} bytes, the most it takes in one message ({}); {} lines sent before it",
                    self.endpoint,
                    self.line,
                    self.limit.bytes,
                    self.limit.why,
                    self.line - 1
                )));
            }
            line.extend_from_slice(&buf[..take]);
            self.stdin.consume(take + usize::from(newline));
            if newline {
                return Some(Ok(line));
            }
        }
    }
}

/// Message schemes: each MESSAGE is one message; standard input is one message, or one per
/// line with `--lines`, each sent as soon as it is read.
fn send_messages(args: &SendArgs, payload: Payload) -> Result<()> {
    let e = &args.endpoint;
    match e {
        Endpoint::UnixSeqpacket(p) => {
            // Connected before standard input is read: no receiver, no waiting on input.
            let addr = UnixAddr::path(p);
            let sock = match args.timeout {
                Some(t) => UnixSeqpacket::connect_timeout(&addr, t)?,
                None => UnixSeqpacket::connect(&addr)?,
            };
            for (sent, m) in source(args, payload, Limit::socket(&sock)).enumerate() {
                let m = m?;
                if m.is_empty() {
                    let which = if args.lines {
                        format!("line {} of standard input", sent + 1)
                    } else {
                        "standard input".to_string()
                    };
                    bail!(
                        "sending on {e}: {which} is empty: an empty message cannot be sent on a seqpacket socket, the receiver would read it as end of stream ({sent} messages sent before it)"
                    );
                }
                let sent_in_time = counted(
                    match args.timeout {
                        Some(t) => sock.send_timeout(&m, t),
                        None => sock.send(&m).map(|_| true),
                    },
                    e,
                    sent,
                )?;
                if !sent_in_time {
                    bail!(
                        "sending on {e}: timed out after {}: the receiver is not reading ({sent} messages sent, the rest were not)",
                        humantime::format_duration(args.timeout.unwrap_or_default())
                    );
                }
            }
        }
        Endpoint::UnixDgram(p) => {
            let sock = UnixDatagram::unbound()?;
            let addr = UnixAddr::path(p);
            for (sent, m) in source(args, payload, Limit::socket(&sock)).enumerate() {
                let m = m?;
                let sent_in_time = counted(
                    match args.timeout {
                        Some(t) => sock.send_to_timeout(&m, &addr, t),
                        None => sock.send_to(&m, &addr).map(|_| true),
                    },
                    e,
                    sent,
                )?;
                if !sent_in_time {
                    bail!(
                        "sending to {e}: timed out after {}: the receiver's queue stayed full ({sent} messages sent, the rest were not)",
                        humantime::format_duration(args.timeout.unwrap_or_default())
                    );
                }
            }
        }
        Endpoint::Channel(_) => {
            let mut messages = source(args, payload, Limit::of(e));
            crate::channel::send(e, &mut messages, args.timeout)?;
        }
        _ if e.is_kernel_object() => {
            let mut messages = source(args, payload, Limit::of(e));
            crate::objects::send(e, &mut messages, &args.object, args.timeout)?;
        }
        other => bail!("{other} is not a message endpoint"),
    }
    Ok(())
}

/// A send's result; a failure after some messages went says how many.
fn counted<T>(r: ipckit::Result<T>, endpoint: &Endpoint, sent: usize) -> Result<T> {
    match r {
        Err(err) if sent > 0 => {
            Err(anyhow!(err).context(format!("sending to {endpoint} ({sent} messages sent)")))
        }
        r => Ok(r?),
    }
}

/// Send messages (or standard input) to an endpoint.
///
/// On byte-stream endpoints (fifo, unix, abstract, tcp) each MESSAGE is sent with a newline
/// after it and standard input is copied as it comes. On message endpoints (unix-dgram,
/// unix-seqpacket, mq, sysv-mq, channel) each MESSAGE is one message, standard input is one
/// message, or one per line with --lines, each line sent as soon as it is read. Shared
/// memory (shm, sysv-shm) gets them as one run of bytes, joined by newlines.
///
/// A message from standard input, or one line of it, longer than the endpoint takes in one
/// message is an error (exit 1) that names it, and nothing more is read.
///
/// channel:/NAME is a message endpoint whose receiver owns it: `ipckit recv channel:/NAME`
/// must be running (send fails at once, exit 1, when it is not). A message larger than
/// the channel's slot (4080 bytes) goes by its bulk path on its own.
#[derive(clap::Args, Debug)]
pub struct CliArgs {
    /// fifo:PATH, unix:PATH, unix-dgram:PATH, unix-seqpacket:PATH, abstract:NAME,
    /// tcp:HOST:PORT, mq:/NAME, sysv-mq:KEY, shm:/NAME, sysv-shm:KEY, channel:/NAME
    pub uri: Endpoint,
    /// The messages, in order; standard input when there are none.
    #[arg(value_name = "MESSAGE")]
    pub messages: Vec<String>,
    /// Send each line of standard input as one message, as soon as it is read (message
    /// endpoints; a byte stream carries the lines as they are). A line longer than the
    /// endpoint's largest message is an error naming its number.
    #[arg(long, conflicts_with = "messages")]
    pub lines: bool,
    /// Bound every wait on the peer (e.g. 5s, 200ms): a FIFO's reader to open it, a connect,
    /// and each wait for room while sending (a socket or FIFO whose reader stopped reading, a
    /// full queue or channel). A wait longer than this ends the send with exit 1, saying how
    /// many bytes or messages went. Waiting for standard input is not bounded.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub timeout: Option<Duration>,
    #[command(flatten)]
    pub object: SendObjectFlags,
    #[command(flatten)]
    pub common: crate::args::Common,
}

/// Kernel-object flags of send.
#[derive(clap::Args, Debug)]
pub struct SendObjectFlags {
    /// mq: the message's priority (0-32767; higher is received first).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..32768))]
    pub priority: u32,
    /// sysv-mq: the message's type (a positive number).
    #[arg(long = "type", default_value_t = 1, value_parser = clap::value_parser!(i64).range(1..))]
    pub mtype: i64,
    /// shm, sysv-shm: where to write, in bytes from the start.
    #[arg(long, default_value_t = 0)]
    pub offset: usize,
    /// Create the queue or shared memory if it is missing, and keep it (remove it with
    /// `ipckit rm URI`).
    #[arg(long)]
    pub create: bool,
    /// shm, sysv-shm with --create: the size (default: 4096, or enough for offset + message).
    #[arg(long)]
    pub size: Option<usize>,
    /// Mode of an object --create makes, in octal (an existing one may have no more).
    #[arg(long, default_value = "600", value_parser = crate::args::parse_mode)]
    pub mode: u32,
    /// With --create: use an existing queue or shared memory even if another user owns it or
    /// its mode is wider than --mode (refused otherwise: whoever made it can read what is sent).
    #[arg(long, requires = "create")]
    pub trust_existing: bool,
}

impl From<CliArgs> for SendArgs {
    fn from(a: CliArgs) -> SendArgs {
        SendArgs {
            endpoint: a.uri,
            messages: a.messages,
            lines: a.lines,
            timeout: a.timeout,
            allow_remote: a.common.allow_remote,
            object: crate::objects::ObjectOpts {
                priority: a.object.priority,
                mtype: a.object.mtype,
                offset: a.object.offset,
                create: a.object.create,
                size: a.object.size,
                mode: a.object.mode,
                trust_existing: a.object.trust_existing,
                ..Default::default()
            },
        }
    }
}
