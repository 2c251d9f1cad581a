//! `ipckit`: every Linux IPC mechanism, measured side by side, listed, cleaned up, explained.

mod advise;
mod bench;
mod channel;
mod endpoint;
mod gc;
mod interrupt;
mod lab;
mod limits;
mod ls;
mod objects;
mod output;
mod sem;
mod send;
mod serve;

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use endpoint::Endpoint;

#[derive(Parser)]
#[command(
    name = "ipckit",
    version,
    about = "Linux IPC: every mechanism measured side by side, sent over, listened on; every object listed, and the orphans cleaned up"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Flags shared by the endpoint commands.
#[derive(clap::Args)]
struct Common {
    /// Allow tcp: addresses that are not loopback.
    #[arg(long)]
    allow_remote: bool,
}

/// Kernel-object flags of send.
#[derive(clap::Args)]
struct SendObjectFlags {
    /// mq: the message's priority (0-32767; higher is received first).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..32768))]
    priority: u32,
    /// sysv-mq: the message's type (a positive number).
    #[arg(long = "type", default_value_t = 1, value_parser = clap::value_parser!(i64).range(1..))]
    mtype: i64,
    /// shm, sysv-shm: where to write, in bytes from the start.
    #[arg(long, default_value_t = 0)]
    offset: usize,
    /// Create the queue or shared memory if it is missing, and keep it (remove it with
    /// `ipckit rm URI`).
    #[arg(long)]
    create: bool,
    /// shm, sysv-shm with --create: the size (default: 4096, or enough for offset + message).
    #[arg(long)]
    size: Option<usize>,
    /// Mode of an object --create makes, in octal.
    #[arg(long, default_value = "600", value_parser = parse_mode)]
    mode: u32,
}

/// Kernel-object flags of recv and listen.
#[derive(clap::Args)]
struct RecvObjectFlags {
    /// sysv-mq: which messages: 0 any, N > 0 only type N, N < 0 the lowest type up to |N|.
    #[arg(long = "type", default_value_t = 0, allow_negative_numbers = true)]
    mtype: i64,
    /// sysv-mq: any type but --type N (MSG_EXCEPT).
    #[arg(long, requires = "mtype")]
    except: bool,
    /// shm, sysv-shm: where to read, in bytes from the start.
    #[arg(long, default_value_t = 0)]
    offset: usize,
    /// shm, sysv-shm: how many bytes (default: up to the first NUL byte, or the end).
    #[arg(long)]
    len: Option<usize>,
}

/// Flags shared by recv and listen.
#[derive(clap::Args)]
struct ServeFlags {
    /// One JSON object per message: data, base64, bytes, peer_pid, peer_uid.
    #[arg(long)]
    json: bool,
    /// Mode of the socket file or FIFO created, in octal.
    #[arg(long, default_value = "600", value_parser = parse_mode)]
    mode: u32,
    /// No status lines on standard error.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    object: RecvObjectFlags,
    #[command(flatten)]
    common: Common,
}

#[derive(Subcommand)]
enum Command {
    /// Measure every IPC mechanism on this machine, side by side (the main job).
    ///
    /// Each row runs between two real processes pinned to two CPUs, after a warm-up, with
    /// every message checked on arrival. Prints a table and writes ipckit-report/report.json
    /// and ipckit-report/index.html. Exits 1 if any row failed its check.
    Bench(bench::BenchArgs),
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
    Send {
        /// fifo:PATH, unix:PATH, unix-dgram:PATH, unix-seqpacket:PATH, abstract:NAME,
        /// tcp:HOST:PORT, mq:/NAME, sysv-mq:KEY, shm:/NAME, sysv-shm:KEY, channel:/NAME
        uri: Endpoint,
        /// The messages, in order; standard input when there are none.
        #[arg(value_name = "MESSAGE")]
        messages: Vec<String>,
        /// Send each line of standard input as one message (message endpoints; a byte stream
        /// carries the lines as they are).
        #[arg(long, conflicts_with = "messages")]
        lines: bool,
        /// Give up if the peer is not there within this time (e.g. 5s, 200ms): a FIFO's
        /// reader, a connect, room in a full queue or channel.
        #[arg(long, value_parser = humantime::parse_duration)]
        timeout: Option<Duration>,
        #[command(flatten)]
        object: SendObjectFlags,
        #[command(flatten)]
        common: Common,
    },
    /// Receive messages on an endpoint (binding or creating it) and print them.
    ///
    /// Byte streams are split into messages at newlines. Without --count, recv stops when the
    /// first peer closes its stream (or after one datagram, or one message of a queue or
    /// shared memory). The socket file or FIFO it made is removed on exit.
    ///
    /// channel:/NAME is created by recv (/dev/shm/NAME, mode 600), which owns it: start recv
    /// first, then `ipckit send channel:/NAME`. Without --count it prints messages until
    /// every sender that joined has closed (it waits for the first one); with --count N it
    /// keeps waiting for new senders until N messages. The channel is removed on exit,
    /// SIGINT and SIGTERM included.
    Recv {
        /// fifo:PATH, unix:PATH, unix-dgram:PATH, unix-seqpacket:PATH, abstract:NAME,
        /// tcp:HOST:PORT, mq:/NAME, sysv-mq:KEY, shm:/NAME, sysv-shm:KEY, channel:/NAME
        uri: Endpoint,
        /// Stop after N messages.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        count: Option<u64>,
        /// Fail (exit 1) if not done within this time (e.g. 5s, 200ms).
        #[arg(long, value_parser = humantime::parse_duration)]
        timeout: Option<Duration>,
        #[command(flatten)]
        serve: ServeFlags,
    },
    /// Semaphores: sem:/NAME (POSIX) and sysv-sem:KEY[#INDEX] (System V).
    Sem {
        #[command(subcommand)]
        action: SemCommand,
    },
    /// List every IPC object on the host, and whether it is live, an orphan or stale.
    ///
    /// System V queues, segments and semaphore sets; POSIX shared memory, semaphores and
    /// queues; Unix sockets with a name, and stale socket files; FIFOs held open; with
    /// --pipes, anonymous pipes. STATE and REASON say who uses each one, or why nobody can.
    Ls(ls::LsArgs),
    /// Remove IPC objects by URI (or System V ones by --id), refusing one in use unless
    /// --force, and saying who uses it.
    Rm(gc::RmArgs),
    /// Remove orphans and stale socket files (nothing live), reporting each one.
    ///
    /// Carries on past an object it may not remove, and exits 1 if any removal failed.
    Gc(gc::GcArgs),
    /// Run the classic IPC failure modes live, between real processes, and watch the kernel.
    ///
    /// Without names, lists the scenarios. Each prints a narrated transcript and a verdict
    /// computed from what happened; exits 1 if any did not show its lesson.
    Lab(lab::LabArgs),
    /// Kernel IPC limits and their current use (like `lsipc -g`, plus POSIX queues, pipes,
    /// /dev/shm and open files).
    Limits {
        /// As a JSON array: resource, description, used, limit, unit, use_percent, unlimited.
        #[arg(long)]
        json: bool,
    },
    /// Accept peers on an endpoint and print what they send, until interrupted.
    Listen {
        uri: Endpoint,
        #[command(flatten)]
        serve: ServeFlags,
    },
    /// Which IPC mechanism for your constraints: a ranked recommendation.
    ///
    /// Each candidate comes with the calls to use, why it fits, the trade-off, the failure mode
    /// to guard against, who cleans up, the lab scenario that shows the risk, and its round
    /// trip and throughput on this host when a bench report is at hand (`ipckit bench`).
    /// Constraints that cannot all hold are named first.
    Advise(advise::AdviseArgs),
}

impl ServeFlags {
    fn run(
        self,
        endpoint: Endpoint,
        count: Option<u64>,
        timeout: Option<Duration>,
        listen: bool,
    ) -> anyhow::Result<()> {
        if endpoint.is_kernel_object() {
            let opts = objects::ObjectOpts {
                mtype: self.object.mtype,
                except: self.object.except,
                offset: self.object.offset,
                len: self.object.len,
                ..Default::default()
            };
            return objects::recv(&endpoint, count, timeout, self.json, listen, &opts);
        }
        let args = serve::ServeArgs {
            endpoint,
            count,
            timeout,
            json: self.json,
            listen,
            mode: self.mode,
            allow_remote: self.common.allow_remote,
            quiet: self.quiet,
        };
        match args.endpoint {
            Endpoint::Channel(_) => channel::recv(&args),
            _ => serve::run(args),
        }
    }
}

#[derive(Subcommand)]
enum SemCommand {
    /// Create a semaphore (and keep it until `ipckit sem rm`).
    Create {
        uri: sem::SemUri,
        /// Initial value.
        #[arg(long, default_value_t = 0)]
        value: u32,
        /// System V: how many semaphores in the set.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=32000))]
        nsems: u64,
        /// Mode, in octal.
        #[arg(long, default_value = "600", value_parser = parse_mode)]
        mode: u32,
    },
    /// Add one (sem_post; semop +1).
    Post { uri: sem::SemUri },
    /// Take one, waiting while the value is 0 (sem_wait; semop -1).
    Wait {
        uri: sem::SemUri,
        /// Give up (exit 1) after this long (e.g. 5s, 200ms).
        #[arg(long, value_parser = humantime::parse_duration)]
        timeout: Option<Duration>,
    },
    /// Print the value.
    Value {
        uri: sem::SemUri,
        /// As JSON: {"uri": ..., "value": N}.
        #[arg(long)]
        json: bool,
    },
    /// Remove it (sem_unlink; IPC_RMID of the whole set).
    Rm { uri: sem::SemUri },
}

impl SemCommand {
    fn run(self) -> anyhow::Result<()> {
        use sem::SemAction;
        let (uri, action) = match self {
            SemCommand::Create {
                uri,
                value,
                nsems,
                mode,
            } => (
                uri,
                SemAction::Create {
                    value,
                    nsems: nsems as usize,
                    mode,
                },
            ),
            SemCommand::Post { uri } => (uri, SemAction::Post),
            SemCommand::Wait { uri, timeout } => (uri, SemAction::Wait { timeout }),
            SemCommand::Value { uri, json } => (uri, SemAction::Value { json }),
            SemCommand::Rm { uri } => (uri, SemAction::Rm),
        };
        sem::run(&uri, action)
    }
}

fn parse_mode(s: &str) -> Result<u32, String> {
    let m = u32::from_str_radix(s.trim_start_matches("0o"), 8)
        .map_err(|_| format!("'{s}' is not an octal mode"))?;
    if m > 0o7777 {
        return Err(format!("'{s}' is not a file mode (at most 7777)"));
    }
    Ok(m)
}

fn main() -> ExitCode {
    // Even a bug must end as one line and exit 1, never a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        // Never a panic inside the panic hook: stderr may be gone (a hang-up).
        let _ = writeln!(
            std::io::stderr(),
            "ipckit: internal error{at}: {}",
            what.replace('\n', " ")
        );
    }));
    // The bench starts this program again as its peer process.
    if ipckit_bench::is_peer() {
        ipckit_bench::peer_main();
    }
    // A lab scenario starts this program again for its other processes.
    if ipckit_lab::is_child() {
        ipckit_lab::child_main();
    }
    let cli = Cli::parse();
    // Unwinding (not exiting in the hook) so destructors still remove socket files and FIFOs.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(cli)))
        .unwrap_or_else(|_| Err(anyhow::anyhow!("stopped by the internal error above")));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "ipckit: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Bench(args) => bench::run(args),
        Command::Send {
            uri,
            messages,
            lines,
            timeout,
            object,
            common,
        } => send::run(send::SendArgs {
            endpoint: uri,
            messages,
            lines,
            timeout,
            allow_remote: common.allow_remote,
            object: objects::ObjectOpts {
                priority: object.priority,
                mtype: object.mtype,
                offset: object.offset,
                create: object.create,
                size: object.size,
                mode: object.mode,
                ..Default::default()
            },
        }),
        Command::Sem { action } => action.run(),
        Command::Ls(args) => ls::run(args),
        Command::Rm(args) => gc::rm(args),
        Command::Gc(args) => gc::gc(args),
        Command::Limits { json } => limits::run(json),
        Command::Lab(args) => lab::run(args),
        Command::Recv {
            uri,
            count,
            timeout,
            serve,
        } => serve.run(uri, count, timeout, false),
        Command::Listen { uri, serve } => serve.run(uri, None, None, true),
        Command::Advise(args) => advise::run(args),
    }
}
