//! `ipckit send URI [MESSAGE]...`.

use std::io::{self, BufRead, Read, Write};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use ipckit::socket::tcp;
use ipckit::socket::unix::{UnixAddr, UnixDatagram, UnixSeqpacket, UnixStream};
use ipckit::stream::fifo;

use crate::endpoint::Endpoint;

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
    if args.endpoint.keeps_boundaries() || args.endpoint.is_kernel_object() {
        send_messages(&args, payload)
    } else {
        send_stream(&args, payload)
    }
}

/// Byte-stream schemes: each MESSAGE is written with a newline after it; standard input is
/// copied as it is (each line already ends in one), so `cat` and `socat` see exactly those
/// bytes.
fn send_stream(args: &SendArgs, payload: Payload) -> Result<()> {
    let mut out: Box<dyn Write> = match &args.endpoint {
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
    let what = args.endpoint.to_string();
    match payload {
        Payload::Args(messages) => {
            for mut m in messages {
                m.push(b'\n');
                out.write_all(&m).map_err(|e| peer_gone(e, &what))?;
            }
        }
        Payload::Stdin => {
            io::copy(&mut io::stdin().lock(), &mut out).map_err(|e| peer_gone(e, &what))?;
        }
    }
    out.flush().map_err(|e| peer_gone(e, &what))?;
    Ok(())
}

fn connect_stream(addr: &UnixAddr, timeout: Option<Duration>) -> ipckit::Result<UnixStream> {
    match timeout {
        Some(t) => UnixStream::connect_timeout(addr, t),
        None => UnixStream::connect(addr),
    }
}

fn peer_gone(e: io::Error, what: &str) -> anyhow::Error {
    if e.kind() == io::ErrorKind::BrokenPipe {
        anyhow::anyhow!(
            "writing to {what}: the reader closed its end (EPIPE); the rest was not delivered"
        )
    } else {
        anyhow::Error::new(e).context(format!("writing to {what}"))
    }
}

/// Message schemes: each MESSAGE is one message; standard input is one message, or one per
/// line with `--lines`.
fn send_messages(args: &SendArgs, payload: Payload) -> Result<()> {
    let messages: Vec<Vec<u8>> = match payload {
        Payload::Args(messages) => messages,
        Payload::Stdin if args.lines => io::stdin()
            .lock()
            .split(b'\n')
            .collect::<io::Result<_>>()
            .context("reading standard input")?,
        Payload::Stdin => {
            let mut all = Vec::new();
            io::stdin()
                .lock()
                .read_to_end(&mut all)
                .context("reading standard input")?;
            vec![all]
        }
    };
    if args.endpoint.is_kernel_object() {
        return crate::objects::send(&args.endpoint, &messages, &args.object, args.timeout);
    }
    match &args.endpoint {
        Endpoint::UnixSeqpacket(p) => {
            if messages.iter().any(|m| m.is_empty()) {
                bail!(
                    "sending on {}: an empty message cannot be sent on a seqpacket socket, the receiver would read it as end of stream",
                    args.endpoint
                );
            }
            let addr = UnixAddr::path(p);
            let sock = match args.timeout {
                Some(t) => UnixSeqpacket::connect_timeout(&addr, t)?,
                None => UnixSeqpacket::connect(&addr)?,
            };
            for m in &messages {
                sock.send(m)?;
            }
        }
        Endpoint::UnixDgram(p) => {
            let sock = UnixDatagram::unbound()?;
            let addr = UnixAddr::path(p);
            for m in &messages {
                match args.timeout {
                    Some(t) if !sock.send_to_timeout(m, &addr, t)? => {
                        bail!(
                            "sending to {}: timed out after {}: the receiver's queue stayed full",
                            args.endpoint,
                            humantime::format_duration(t)
                        )
                    }
                    Some(_) => {}
                    None => {
                        sock.send_to(m, &addr)?;
                    }
                }
            }
        }
        Endpoint::Channel(_) => {
            return crate::channel::send(&args.endpoint, &messages, args.timeout);
        }
        other => bail!("{other} is not a message endpoint"),
    }
    Ok(())
}

/// Send messages (or standard input) to an endpoint.
///
/// On byte-stream endpoints (fifo, unix, abstract, tcp) each MESSAGE is sent with a newline
/// after it and standard input is copied as it is. On message endpoints (unix-dgram,
/// unix-seqpacket, mq, sysv-mq) each MESSAGE is one message, standard input is one
/// message, or one per line with --lines. Shared memory (shm, sysv-shm) gets them as one
/// run of bytes, joined by newlines.
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
    /// Send each line of standard input as one message (message endpoints; a byte stream
    /// carries the lines as they are).
    #[arg(long, conflicts_with = "messages")]
    pub lines: bool,
    /// Give up if the peer is not there within this time (e.g. 5s, 200ms): a FIFO's
    /// reader, a connect, room in a full queue or channel.
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
