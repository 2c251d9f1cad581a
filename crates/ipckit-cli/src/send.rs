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
