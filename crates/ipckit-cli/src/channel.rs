//! `send`, `recv` and `listen` for `channel:/NAME`: ipckit's own shared-memory channel
//! (`ipckit::channel`), named.
//!
//! A channel has one receiver, and the receiver owns the name. `recv` (or `listen`) creates
//! it with `channel::create` (POSIX shared memory `/dev/shm/NAME`, `O_EXCL`, mode 0600 or
//! `--mode`) and removes it whenever it ends: a count reached, a timeout, an error, or a
//! stop signal (SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGALRM, ...: crate::interrupt::stop_signals). `send` joins it with `channel::try_open` and never creates or
//! removes it, so a send with no receiver running fails at once with a clear line instead
//! of waiting; with `--timeout` it waits that long for the receiver
//! (`channel::open_timeout`). The channel is made for several senders at once, so any
//! number of `ipckit send` can run together.
//! A message larger than a slot (4080 bytes) takes the channel's bulk path (a memfd passed
//! over its socket) without the command doing anything different.
//!
//! The receiver is connection-oriented, like a seqpacket socket: without `--count` it prints
//! messages until every sender that joined has closed its end (after the first one came);
//! with `--count N` it stops after N messages, waiting for new senders meanwhile; `listen`
//! takes every message from every sender until interrupted. Messages still in the channel
//! when the receiver stops are lost with it, as on a socket.
//!
//! A named channel has no descriptor to poll, so the receiver waits in slices of
//! [`channel::SLICE`] (the channel itself wakes that often to check its senders) and looks
//! at a signalfd between them: a stop signal ends the wait within one slice, and the name is
//! removed on the way out. Only SIGKILL leaves it behind: `ipckit ls` then lists the
//! `/dev/shm` object as an orphan, and `ipckit rm channel:/NAME` (`channel::remove`, which
//! checks that the receiver is gone) or `ipckit gc` removes it.

use std::io;
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use ipckit::channel::{self, Options};
use ipckit::notify::signal::SignalFd;
use ipckit::{Errno, ErrorKind};

use crate::endpoint::Endpoint;
use crate::output::{self, Peer};
use crate::serve::ServeArgs;

/// The longest single wait of the receiver between looks at its stop signals.
const TICK: Duration = channel::SLICE;

/// `recv` / `listen` on `channel:/NAME`: creates the channel, prints each message, removes it.
pub fn recv(args: &ServeArgs) -> Result<()> {
    let endpoint = &args.endpoint;
    let Endpoint::Channel(name) = endpoint else {
        bail!("{endpoint} is not a channel");
    };
    // Before the channel exists, so no signal can end the process with the name still there.
    let signals = SignalFd::new(&crate::interrupt::stop_signals())?;
    // The default ring (256 slots of 4080 bytes); a named channel takes any number of senders,
    // those --mode lets open it.
    let mut rx = channel::create(name, &Options::default().mode(args.mode)).map_err(|e| {
        if e.errno() == Some(Errno::EXIST) {
            anyhow!(
                "creating {endpoint}: /dev/shm{name} already exists (EEXIST): another `ipckit recv {endpoint}` owns it, or a receiver that was killed left it behind; `ipckit ls --name {name}` says which, `ipckit rm {endpoint}` removes a leftover"
            )
        } else {
            anyhow!(e)
        }
    })?;
    // Printed only now: a sender started after this line finds the receiver.
    crate::serve::announce(args, &endpoint);
    let deadline = args
        .timeout
        .map_or(ipckit::Deadline::NEVER, ipckit::Deadline::after);
    let mut out = io::stdout().lock();
    let mut seen = 0u64;
    loop {
        if let Some(info) = signals.try_read()? {
            return crate::serve::stopped_by(args, info.signo, seen);
        }
        // The deadline holds even while senders keep sending.
        if deadline.expired() {
            let after = humantime::format_duration(args.timeout.unwrap_or_default());
            match args.count {
                Some(c) => {
                    bail!("timed out after {after} on {endpoint}: received {seen} of {c} messages")
                }
                None => bail!(
                    "timed out after {after} on {endpoint}: received {seen} messages, the senders did not finish"
                ),
            }
        }
        let slice = deadline.remaining().map_or(TICK, |left| left.min(TICK));
        let msg = match rx.borrow_timeout(slice) {
            Ok(Some(msg)) => msg,
            Ok(None) => continue,
            // Every sender that joined is gone and everything it sent was read. Without a
            // count that is the end; with one (or listening), the next sender may come.
            Err(e) if e.kind() == ErrorKind::Disconnected => {
                if !args.listen && args.count.is_none() {
                    return Ok(());
                }
                continue;
            }
            Err(e) => return Err(anyhow!(e).context(format!("receiving on {endpoint}"))),
        };
        match output::emit(&mut out, &msg, Peer::default(), args.json) {
            Ok(()) => {}
            // The reader of our output is gone (`| head -1`): nothing more to do.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
            Err(e) => return Err(anyhow!(e).context("writing to standard output")),
        }
        drop(msg);
        seen += 1;
        if !args.listen && args.count.is_some_and(|c| seen >= c) {
            return Ok(());
        }
    }
}

/// `send` on `channel:/NAME`: joins the receiver's channel and sends each message as it comes
/// from `messages` (each wait for room bounded by `timeout`).
pub fn send(
    endpoint: &Endpoint,
    messages: &mut dyn Iterator<Item = Result<Vec<u8>>>,
    timeout: Option<Duration>,
) -> Result<()> {
    let Endpoint::Channel(name) = endpoint else {
        bail!("{endpoint} is not a channel");
    };
    let opened = match timeout {
        Some(t) => channel::open_timeout(name, t),
        None => channel::try_open(name),
    };
    let mut tx = opened.map_err(|e| {
        let start = format!("sending to {endpoint}: no receiver: start `ipckit recv {endpoint}` first");
        if e.errno() == Some(Errno::NOENT) {
            anyhow!("{start}")
        } else if e.kind() == ErrorKind::TimedOut {
            anyhow!(
                "{start} (none came within {})",
                humantime::format_duration(timeout.unwrap_or_default())
            )
        } else if e.kind() == ErrorKind::Disconnected {
            anyhow!(
                "{start} (/dev/shm{name} was left behind by a receiver that was killed: `ipckit rm {endpoint}` removes it)"
            )
        } else {
            anyhow!(e).context(format!("sending to {endpoint}"))
        }
    })?;
    for (i, m) in messages.enumerate() {
        let m = m?;
        let sent = match timeout {
            Some(t) => tx.send_timeout(&m, t),
            None => tx.send(&m).map(|()| true),
        };
        match sent {
            Ok(true) => {}
            Ok(false) => bail!(
                "sending to {endpoint}: timed out after {}: the channel stayed full, the receiver is not reading ({i} messages sent, the rest were not)",
                humantime::format_duration(timeout.unwrap_or_default())
            ),
            Err(e) if e.kind() == ErrorKind::Disconnected => {
                bail!("sending to {endpoint}: the receiver is gone ({i} messages sent)")
            }
            Err(e) => {
                return Err(
                    anyhow!(e).context(format!("sending to {endpoint} ({i} messages sent)"))
                );
            }
        }
    }
    Ok(())
}
