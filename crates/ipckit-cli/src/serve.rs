//! `ipckit recv` and `ipckit listen`: one poll loop that accepts peers, reads what they send,
//! and prints each message, until a count, the end of a stream, a timeout or a signal.
//!
//! SIGINT, SIGTERM, SIGHUP and every other stop signal (crate::interrupt::stop_signals:
//! SIGUSR1, SIGALRM, the real-time signals, ...) arrive through a signalfd in the same poll
//! set, so an interrupted listener still removes its socket file or FIFO; a signal ignored
//! when the command started (nohup) stays ignored.

use std::io::{self, Read};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use ipckit::notify::signal::{self, SignalFd};
use ipckit::socket::ancillary;
use ipckit::socket::tcp;
use ipckit::socket::unix::{
    BindOptions, SeqpacketListener, UnixAddr, UnixDatagram, UnixListener, UnixSeqpacket, UnixStream,
};
use ipckit::stream::fifo::{self, Fifo};
use ipckit::stream::pipe::PipeReader;
use ipckit::transport::MessageTransport;
use rustix::event::{PollFd, PollFlags};

use crate::endpoint::Endpoint;
use crate::output::{self, Peer};

pub struct ServeArgs {
    pub endpoint: Endpoint,
    /// Stop after this many messages.
    pub count: Option<u64>,
    /// Give up (exit 1) if not done by then.
    pub timeout: Option<Duration>,
    pub json: bool,
    /// `listen`: run until interrupted, print peer events.
    pub listen: bool,
    pub mode: u32,
    pub allow_remote: bool,
    pub quiet: bool,
    /// fifo: read an existing FIFO another user owns, or one wider than `mode`.
    pub trust_existing: bool,
}

/// A byte-stream line longer than this is printed in pieces of this size, each marked
/// `"split": true` in `--json`, with a note on standard error (unless `--quiet`).
const MAX_LINE: usize = 1 << 20;

/// Bytes of a byte stream not printed yet, and whether they continue a line being split.
#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    splitting: bool,
}

enum Server {
    Stream(UnixListener),
    Seqpacket(SeqpacketListener),
    Tcp(TcpListener),
    Dgram(UnixDatagram),
    Fifo {
        path: PathBuf,
        reader: PipeReader,
        _node: Option<Fifo>,
    },
}

enum Conn {
    Stream(UnixStream),
    Seqpacket(UnixSeqpacket),
    Tcp(TcpStream),
}

struct Client {
    conn: Conn,
    peer: Peer,
    pending: Pending,
}

impl Conn {
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Conn::Stream(s) => s.as_fd(),
            Conn::Seqpacket(s) => s.as_fd(),
            Conn::Tcp(s) => s.as_fd(),
        }
    }
}

impl Server {
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Server::Stream(l) => l.as_fd(),
            Server::Seqpacket(l) => l.as_fd(),
            Server::Tcp(l) => l.as_fd(),
            Server::Dgram(d) => d.as_fd(),
            Server::Fifo { reader, .. } => reader.as_fd(),
        }
    }
}

fn open_server(args: &ServeArgs) -> Result<Server> {
    let opts = BindOptions::default().mode(args.mode);
    Ok(match &args.endpoint {
        Endpoint::Unix(p) => Server::Stream(UnixListener::bind(&UnixAddr::path(p), &opts)?),
        Endpoint::Abstract(n) => Server::Stream(UnixListener::bind(
            &UnixAddr::abstract_name(n.as_bytes()),
            &opts,
        )?),
        Endpoint::UnixSeqpacket(p) => {
            Server::Seqpacket(SeqpacketListener::bind(&UnixAddr::path(p), &opts)?)
        }
        Endpoint::UnixDgram(p) => {
            let d = UnixDatagram::bind(&UnixAddr::path(p), &opts)?;
            ancillary::set_pass_credentials(&d, true)?;
            Server::Dgram(d)
        }
        Endpoint::Tcp(a) => {
            let l = tcp::listen(a, args.allow_remote)?;
            l.set_nonblocking(true)
                .context("making TCP listener non-blocking")?;
            Server::Tcp(l)
        }
        other @ (Endpoint::PosixMq(_)
        | Endpoint::SysvMq(_)
        | Endpoint::PosixShm(_)
        | Endpoint::SysvShm(_)) => {
            bail!("{other} is a kernel object, not something to bind or listen on")
        }
        other @ Endpoint::Channel(_) => {
            bail!("{other} is received through the channel (crate::channel), not a socket")
        }
        Endpoint::Fifo(p) => {
            // Create the FIFO when it is missing (and remove it at exit); open it when it
            // exists, if it is this user's and no wider than --mode (or --trust-existing).
            // Non-blocking, so waiting for a writer happens in the poll loop, where a signal
            // or the timeout can end it.
            let opts = fifo::Options::default()
                .mode(args.mode)
                .trust_existing(args.trust_existing);
            let (reader, node) = fifo::try_open_read_or_create(p, &opts)?;
            Server::Fifo {
                path: p.clone(),
                reader,
                _node: node,
            }
        }
    })
}

/// Counts messages and decides when the command is done.
struct Sink {
    json: bool,
    quiet: bool,
    count: Option<u64>,
    seen: u64,
    out: io::StdoutLock<'static>,
}

impl Sink {
    /// Prints one message; true when the count is reached.
    fn emit(&mut self, msg: &[u8], peer: Peer) -> Result<bool> {
        match output::emit(&mut self.out, msg, peer, self.json) {
            Ok(()) => {}
            // The reader of our output is gone (`| head -1`): nothing more to do.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(true),
            Err(e) => return Err(e).context("writing to standard output"),
        }
        self.seen += 1;
        Ok(self.count.is_some_and(|c| self.seen >= c))
    }

    /// Prints every complete line in `pending` (newline stripped), a line longer than
    /// [`MAX_LINE`] in pieces of that size (said on stderr once per line, and marked in JSON);
    /// true when the count is reached.
    fn emit_lines(&mut self, pending: &mut Pending, peer: Peer, at_eof: bool) -> Result<bool> {
        let mut start = 0;
        let mut done = false;
        while !done {
            let rest = &pending.bytes[start..];
            let newline = rest.iter().position(|&b| b == b'\n');
            let (piece, skip, cut) = match newline {
                Some(i) if i <= MAX_LINE => (i, 1, false),
                _ if rest.len() > MAX_LINE => (MAX_LINE, 0, true),
                None if at_eof && !rest.is_empty() => (rest.len(), 0, false),
                _ => break,
            };
            if cut && !pending.splitting && !self.quiet {
                eprintln!(
                    "ipckit: a line{} is longer than {MAX_LINE} bytes: it is printed split, in pieces of {MAX_LINE} bytes{}",
                    describe(peer),
                    if self.json {
                        " marked \"split\": true"
                    } else {
                        ""
                    }
                );
            }
            let split = cut || pending.splitting;
            pending.splitting = cut;
            done = self.emit(&rest[..piece], Peer { split, ..peer })?;
            start += piece + skip;
        }
        pending.bytes.drain(..start);
        if at_eof {
            // The next writer (a FIFO's, in `listen`) starts a new line.
            pending.splitting = false;
        }
        Ok(done)
    }
}

/// Says on standard error that the endpoint is ready (unless `--quiet`): a sender started
/// after this line finds the receiver.
pub fn announce(args: &ServeArgs, endpoint: &dyn std::fmt::Display) {
    if !args.quiet {
        let verb = if args.listen {
            "listening on"
        } else {
            "receiving on"
        };
        eprintln!("ipckit: {verb} {endpoint}");
    }
}

/// What a stop signal `signo` means after `seen` messages: `listen` ends well (it runs until
/// interrupted), `recv` fails (it was waiting for more).
pub fn stopped_by(args: &ServeArgs, signo: i32, seen: u64) -> Result<()> {
    if args.listen {
        if !args.quiet {
            eprintln!(
                "ipckit: {} received, stopping after {seen} messages",
                signal::name(signo)
            );
        }
        return Ok(());
    }
    bail!(
        "interrupted by {} after {seen} messages",
        signal::name(signo)
    )
}

pub fn run(args: ServeArgs) -> Result<()> {
    let signals = SignalFd::new(&crate::interrupt::stop_signals())?;
    let mut server = open_server(&args)?;
    // Where it really is: a TCP port 0 becomes the port the kernel chose.
    let where_ = match &server {
        Server::Tcp(l) => l
            .local_addr()
            .map(|a| format!("tcp:{a}"))
            .unwrap_or_else(|_| args.endpoint.to_string()),
        _ => args.endpoint.to_string(),
    };
    announce(&args, &where_);
    let mut sink = Sink {
        json: args.json,
        quiet: args.quiet,
        count: args.count,
        seen: 0,
        out: io::stdout().lock(),
    };
    let mut clients: Vec<Client> = Vec::new();
    let deadline = args
        .timeout
        .map_or(ipckit::Deadline::NEVER, ipckit::Deadline::after);
    let mut fifo_pending = Pending::default();
    let mut dgram_buf = vec![0u8; 256 << 10];
    let mut chunk = vec![0u8; 64 << 10];

    loop {
        // The deadline holds even while a peer keeps sending.
        if deadline.expired() {
            let after = humantime::format_duration(args.timeout.unwrap_or_default());
            match args.count {
                Some(c) => bail!(
                    "timed out after {after} on {where_}: received {} of {c} messages",
                    sink.seen
                ),
                None => bail!(
                    "timed out after {after} on {where_}: received {} messages, the peer did not finish",
                    sink.seen
                ),
            }
        }
        // Poll: the signalfd, the server, then each client.
        let ready: Vec<PollFlags> = {
            let mut fds = vec![
                PollFd::new(&signals, PollFlags::IN),
                PollFd::from_borrowed_fd(server.fd(), PollFlags::IN),
            ];
            fds.extend(
                clients
                    .iter()
                    .map(|c| PollFd::from_borrowed_fd(c.conn.fd(), PollFlags::IN)),
            );
            ipckit::poll::poll_until(&mut fds, deadline)?;
            fds.iter().map(|f| f.revents()).collect()
        };
        if !ready[0].is_empty() {
            let sig = signals
                .try_read()?
                .map(|i| i.signo)
                .unwrap_or(signal::SIGINT);
            return stopped_by(&args, sig, sink.seen);
        }
        // Clients accepted below were not in this poll.
        let polled = clients.len();
        if !ready[1].is_empty() {
            let done = match &mut server {
                Server::Stream(l) => match l.accept_timeout(Duration::ZERO) {
                    Ok(c) => accept(c.map(Conn::Stream), &mut clients, &args),
                    Err(e) => accept_failed(e.into(), &args)?,
                },
                Server::Seqpacket(l) => match l.accept_timeout(Duration::ZERO) {
                    Ok(c) => accept(c.map(Conn::Seqpacket), &mut clients, &args),
                    Err(e) => accept_failed(e.into(), &args)?,
                },
                Server::Tcp(l) => match accept_tcp(l) {
                    Ok(c) => accept(c.map(Conn::Tcp), &mut clients, &args),
                    Err(e) => accept_failed(e, &args)?,
                },
                Server::Dgram(d) => {
                    let got = match ancillary::recv(&*d, &mut dgram_buf, 0) {
                        Ok(got) => got,
                        Err(e) if e.kind() == ipckit::ErrorKind::Truncated => {
                            eprintln!("ipckit: {}", crate::describe(&e.into()));
                            continue;
                        }
                        Err(e) => return Err(e.into()),
                    };
                    let c = got.credentials;
                    let peer = Peer {
                        pid: c.map(|c| c.pid),
                        uid: c.map(|c| c.uid),
                        ..Peer::default()
                    };
                    // A datagram receive with no count stops after one message.
                    sink.emit(&dgram_buf[..got.bytes], peer)?
                        || (!args.listen && args.count.is_none())
                }
                Server::Fifo { path, reader, .. } => {
                    let n = read_some(reader, &mut chunk)
                        .with_context(|| format!("reading FIFO {}", path.display()))?;
                    if n == Some(0) {
                        // Every writer closed: print what is left, then wait for the next writer
                        // (listen) or stop (recv with no count).
                        let done = sink.emit_lines(&mut fifo_pending, Peer::default(), true)?;
                        if done || (!args.listen && args.count.is_none()) {
                            return Ok(());
                        }
                        // The same FIFO, not whatever the path names by now.
                        *reader = fifo::try_reopen_read(reader)?;
                        false
                    } else {
                        fifo_pending
                            .bytes
                            .extend_from_slice(&chunk[..n.unwrap_or(0)]);
                        sink.emit_lines(&mut fifo_pending, Peer::default(), false)?
                    }
                }
            };
            log_refused(&server, &args);
            if done {
                return Ok(());
            }
        }
        // Clients, last first so removal keeps indices valid.
        for i in (0..polled).rev() {
            if ready[2 + i].is_empty() {
                continue;
            }
            let (done, closed) = match read_client(&mut clients[i], &mut sink, &mut chunk) {
                Ok(r) => r,
                // One bad peer does not end a listener: it is dropped.
                Err(e) if args.listen => {
                    eprintln!("ipckit: {}; dropping that peer", crate::describe(&e));
                    (false, true)
                }
                Err(e) => return Err(e),
            };
            if done {
                return Ok(());
            }
            if closed {
                let c = clients.remove(i);
                if args.listen && !args.quiet {
                    eprintln!("ipckit: peer closed{}", describe(c.peer));
                }
                if !args.listen && args.count.is_none() {
                    return Ok(());
                }
            }
        }
    }
}

fn accept_tcp(l: &TcpListener) -> Result<Option<TcpStream>> {
    match l.accept() {
        Ok((s, _)) => {
            s.set_nonblocking(false)
                .context("accepting TCP connection")?;
            s.set_nodelay(true).context("setting TCP_NODELAY")?;
            Ok(Some(s))
        }
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::ConnectionAborted
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e).context("accepting TCP connection"),
    }
}

/// An accept that failed (out of descriptors, say) ends `recv`, but a listener says so and
/// carries on after a pause, so a persistent failure does not spin.
fn accept_failed(e: anyhow::Error, args: &ServeArgs) -> Result<bool> {
    if !args.listen {
        return Err(e);
    }
    eprintln!("ipckit: {}; still listening", crate::describe(&e));
    std::thread::sleep(Duration::from_millis(100));
    Ok(false)
}

fn accept(conn: Option<Conn>, clients: &mut Vec<Client>, args: &ServeArgs) -> bool {
    let Some(conn) = conn else { return false };
    let peer = match &conn {
        Conn::Stream(s) => s.peer_cred().ok(),
        Conn::Seqpacket(s) => s.peer_cred().ok(),
        Conn::Tcp(_) => None,
    }
    .map(|c| Peer {
        pid: Some(c.pid),
        uid: Some(c.uid),
        ..Peer::default()
    })
    .unwrap_or_default();
    if args.listen && !args.quiet {
        eprintln!("ipckit: peer connected{}", describe(peer));
    }
    clients.push(Client {
        conn,
        peer,
        pending: Pending::default(),
    });
    false
}

/// Says which peers an abstract listener refused because `--mode` does not let them in (the
/// library closes them: the kernel checks no mode on an abstract name).
/// One line per batch of refused peers (a flood of them is one line per accept round, not
/// one per peer).
fn log_refused(server: &Server, args: &ServeArgs) {
    let Server::Stream(l) = server else { return };
    let refused = l.take_refused();
    let (Some(last), false) = (refused.last(), args.quiet) else {
        return;
    };
    let what = match refused.len() {
        1 => "a peer".to_string(),
        n => format!("{n} peers, the last"),
    };
    eprintln!(
        "ipckit: refused {what} (pid {}, uid {}): --mode {:04o} of {} does not let it connect",
        last.pid, last.uid, args.mode, args.endpoint
    );
}

fn describe(peer: Peer) -> String {
    match (peer.pid, peer.uid) {
        (Some(p), Some(u)) => format!(" (pid {p}, uid {u})"),
        _ => String::new(),
    }
}

/// One read from a readable client: (count reached, peer closed).
fn read_client(c: &mut Client, sink: &mut Sink, chunk: &mut [u8]) -> Result<(bool, bool)> {
    let n = match &mut c.conn {
        Conn::Seqpacket(s) => {
            let mut msg = Vec::new();
            return match s.try_recv_msg(&mut msg) {
                Ok(Some(_)) => Ok((sink.emit(&msg, c.peer)?, false)),
                Ok(None) => Ok((false, false)),
                Err(e) if e.kind() == ipckit::ErrorKind::Disconnected => Ok((false, true)),
                Err(e) => Err(e.into()),
            };
        }
        Conn::Stream(s) => read_some(s, chunk),
        Conn::Tcp(s) => read_some(s, chunk),
    };
    let n = match n {
        Ok(Some(n)) => n,
        Ok(None) => return Ok((false, false)),
        // A peer that reset the connection has closed it.
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => 0,
        Err(e) => return Err(e).context("reading from peer"),
    };
    c.pending.bytes.extend_from_slice(&chunk[..n]);
    let done = sink.emit_lines(&mut c.pending, c.peer, n == 0)?;
    Ok((done, n == 0))
}

/// One read; `Ok(None)` when a non-blocking descriptor has nothing yet.
fn read_some(r: &mut impl Read, buf: &mut [u8]) -> io::Result<Option<usize>> {
    loop {
        match r.read(buf) {
            Ok(n) => return Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) => return Err(e),
        }
    }
}
