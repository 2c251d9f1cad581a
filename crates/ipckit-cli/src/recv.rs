//! `ipckit recv URI`: receive messages on an endpoint (binding or creating it) and print
//! them; the flags it shares with `ipckit listen`, and the dispatch to the code for each kind
//! of endpoint (kernel objects, ipckit's channel, sockets and FIFOs).

use std::time::Duration;

use anyhow::Result;

use crate::args::{Common, parse_mode};
use crate::endpoint::Endpoint;
use crate::usage_bail;
use crate::{channel, objects, serve};

/// Receive messages on an endpoint (binding or creating it) and print them.
///
/// Byte streams are split into messages at newlines. Without --count, recv stops when the
/// first peer closes its stream (or after one datagram, or one message of a queue or
/// shared memory). The socket file or FIFO it made is removed on exit.
///
/// channel:/NAME is created by recv (/dev/shm/NAME, mode 600), which owns it: start recv
/// first, then `ipckit send channel:/NAME`. Without --count it prints messages until
/// every sender that joined has closed (it waits for the first one); with --count N it
/// keeps waiting for new senders until N messages. The channel is removed on exit.
///
/// A byte-stream line longer than 1 MiB is printed in pieces of 1 MiB, each marked
/// "split": true with --json, and said on standard error (unless --quiet).
///
/// SIGINT, SIGTERM, SIGHUP and every other signal that would end the process (SIGQUIT,
/// SIGUSR1, SIGUSR2, SIGALRM, SIGVTALRM, SIGPROF, SIGIO, SIGPWR, SIGXCPU, SIGXFSZ, the
/// real-time signals) stop recv cleanly: what it made is removed and it exits 1, saying
/// "interrupted by SIGNAL" (`listen` exits 0). A signal ignored when it started (nohup)
/// stays ignored. Only SIGKILL leaves the socket file, FIFO or channel behind.
#[derive(clap::Args, Debug)]
pub struct RecvArgs {
    /// fifo:PATH, unix:PATH, unix-dgram:PATH, unix-seqpacket:PATH, abstract:NAME,
    /// tcp:HOST:PORT, mq:/NAME, sysv-mq:KEY, shm:/NAME, sysv-shm:KEY, channel:/NAME
    pub uri: Endpoint,
    /// Stop after N messages.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// Fail (exit 1) if not done within this time (e.g. 5s, 200ms).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub timeout: Option<Duration>,
    #[command(flatten)]
    pub serve: ServeFlags,
}

/// Kernel-object flags of recv and listen.
#[derive(clap::Args, Debug)]
pub struct RecvObjectFlags {
    /// sysv-mq: which messages: 0 any, N > 0 only type N, N < 0 the lowest type up to |N|.
    #[arg(long = "type", default_value_t = 0, allow_negative_numbers = true)]
    pub mtype: i64,
    /// sysv-mq: any type but --type N (MSG_EXCEPT).
    #[arg(long, requires = "mtype")]
    pub except: bool,
    /// shm, sysv-shm: where to read, in bytes from the start.
    #[arg(long, default_value_t = 0)]
    pub offset: usize,
    /// shm, sysv-shm: how many bytes (default: up to the first NUL byte, or the end).
    #[arg(long)]
    pub len: Option<usize>,
    /// fifo: read an existing FIFO even if another user owns it or its mode is wider than
    /// --mode (refused otherwise: whoever can write it can feed this command).
    #[arg(long)]
    pub trust_existing: bool,
}

/// Flags shared by recv and listen.
#[derive(clap::Args, Debug)]
pub struct ServeFlags {
    /// One JSON object per message: data, base64, bytes, peer_pid, peer_uid.
    #[arg(long)]
    pub json: bool,
    /// Mode of the socket file or FIFO created, in octal.
    #[arg(long, default_value = "600", value_parser = parse_mode)]
    pub mode: u32,
    /// No status lines on standard error.
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub object: RecvObjectFlags,
    #[command(flatten)]
    pub common: Common,
}

pub fn run(args: RecvArgs) -> Result<()> {
    serve(args.serve, args.uri, args.count, args.timeout, false)
}

/// Usage errors (exit 2), before anything is opened or made: a flag that does not apply to
/// this endpoint, or a --type the queue cannot filter by. Flags left at their defaults are
/// not checked.
fn check_flags(flags: &ServeFlags, endpoint: &Endpoint, count: Option<u64>) -> Result<()> {
    let e = endpoint;
    let o = &flags.object;
    let shm = matches!(e, Endpoint::PosixShm(_) | Endpoint::SysvShm(_));
    if (o.mtype != 0 || o.except) && !matches!(e, Endpoint::SysvMq(_)) {
        usage_bail!(
            "--type and --except are for System V queues (sysv-mq:KEY): {e} has no message types"
        );
    }
    if matches!(e, Endpoint::SysvMq(_)) {
        ipckit::mq::sysv::TypeFilter::from_msgtyp(o.mtype, o.except).map_err(|err| {
            let except = if o.except { " --except" } else { "" };
            crate::args::usage(format!("--type {}{except}: {err}", o.mtype))
        })?;
    }
    if (o.offset != 0 || o.len.is_some()) && !shm {
        usage_bail!("--offset and --len are for shared memory (shm:/NAME, sysv-shm:KEY), not {e}");
    }
    if shm && count.is_some_and(|c| c > 1) {
        usage_bail!("--count: shared memory holds one run of bytes, read once, not messages");
    }
    if flags.mode != ipckit::object::DEFAULT_MODE && e.is_kernel_object() {
        usage_bail!(
            "--mode is the mode of what recv makes (a socket file, a FIFO, a channel); {e} is opened, not made: give the mode to `ipckit send {e} --create --mode`"
        );
    }
    if flags.common.allow_remote && !matches!(e, Endpoint::Tcp(_)) {
        usage_bail!("--allow-remote is for tcp:HOST:PORT endpoints, not {e}");
    }
    Ok(())
}

/// Receives on `endpoint` (`listen`: accepting peer after peer, until interrupted) with the
/// code for its kind.
pub fn serve(
    flags: ServeFlags,
    endpoint: Endpoint,
    count: Option<u64>,
    timeout: Option<Duration>,
    listen: bool,
) -> Result<()> {
    check_flags(&flags, &endpoint, count)?;
    if endpoint.is_kernel_object() {
        let opts = objects::ObjectOpts {
            mtype: flags.object.mtype,
            except: flags.object.except,
            offset: flags.object.offset,
            len: flags.object.len,
            ..Default::default()
        };
        return objects::recv(&endpoint, count, timeout, flags.json, listen, &opts);
    }
    let args = serve::ServeArgs {
        endpoint,
        count,
        timeout,
        json: flags.json,
        listen,
        mode: flags.mode,
        allow_remote: flags.common.allow_remote,
        quiet: flags.quiet,
        trust_existing: flags.object.trust_existing,
    };
    match args.endpoint {
        Endpoint::Channel(_) => channel::recv(&args),
        _ => serve::run(args),
    }
}
