//! `ipckit kv serve` and `ipckit kv get`: the Redis-compatible key-value server, and a GET
//! through its shared-memory mirror (or its socket).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use ipckit_kv::aof::Fsync;
use ipckit_kv::client::Client;
use ipckit_kv::resp::{Limits, Reply};
use ipckit_kv::server::{self, Config, Endpoint, Server};
use ipckit_kv::shm::{Lookup, MirrorOptions, ShmReader};

use crate::usage_bail;

/// A Redis-compatible key-value server: redis-cli, redis-py and redis-benchmark work unchanged.
///
/// `ipckit kv serve unix:/run/kv.sock` and then `redis-cli -s /run/kv.sock`.
#[derive(clap::Args, Debug)]
pub struct KvArgs {
    #[command(subcommand)]
    command: KvCommand,
}

#[derive(clap::Subcommand, Debug)]
enum KvCommand {
    Serve(Box<ServeArgs>),
    Get(GetArgs),
}

/// Serve the key-value store on Unix sockets and loopback TCP, until SIGINT, SIGTERM or SHUTDOWN.
///
/// Speaks RESP2 and RESP3 (HELLO 3), inline commands and pipelining. One event loop thread
/// serves every client. Prints `ipckit: kv listening on ENDPOINT` on standard error for each
/// endpoint once it accepts connections (a tcp: port 0 shows the port chosen). Stops cleanly
/// on SIGINT, SIGTERM or SHUTDOWN: the log is flushed, the socket files and the shared memory
/// removed.
///
/// Socket activation: when LISTEN_FDS and LISTEN_PID (this process) are set, the inherited
/// listening sockets are served too (then no endpoint need be given); READY=1 and STOPPING=1
/// go to NOTIFY_SOCKET when it is set. Connect with `redis-cli -s PATH`.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Where to listen: unix:PATH (unix:@NAME for an abstract name) or tcp:127.0.0.1:PORT.
    /// Any number of them.
    #[arg(value_name = "ENDPOINT")]
    endpoints: Vec<String>,
    /// Mode of the Unix socket files, in octal: who may connect.
    #[arg(long, default_value = "600", value_parser = crate::args::parse_mode)]
    mode: u32,
    /// Allow tcp: addresses that are not loopback (there is no TLS: AUTH's password and all
    /// data cross the network in clear text).
    #[arg(long)]
    allow_remote: bool,
    /// Clients must AUTH with this password before any other command.
    #[arg(long, value_name = "PASSWORD")]
    requirepass: Option<String>,
    /// Serve only Unix-socket peers of this uid (SO_PEERCRED); repeat for more. Others are
    /// closed at once and logged once per uid. Cannot be combined with tcp: endpoints.
    #[arg(long = "allow-uid", value_name = "UID")]
    allow_uids: Vec<u32>,
    /// The most clients at once; one more gets "-ERR max number of clients reached".
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    maxclients: usize,
    /// Memory limit for keys and values (100mb, 2gb, bytes); writes past it get an OOM
    /// error. 0: none.
    #[arg(long, default_value = "0", value_parser = parse_bytes, value_name = "BYTES")]
    maxmemory: u64,
    /// The longest bulk string a request may carry.
    #[arg(long, default_value = "512mb", value_parser = parse_bytes, value_name = "BYTES")]
    proto_max_bulk_len: u64,
    /// The most unparsed request bytes one client may hold; past it the client is closed.
    #[arg(long, default_value = "1gb", value_parser = parse_bytes, value_name = "BYTES")]
    client_query_buffer_limit: u64,
    /// The most unread reply bytes one client may hold (beyond its largest single reply);
    /// a client that sends and never reads is closed past it.
    #[arg(long, default_value = "64mb", value_parser = parse_bytes, value_name = "BYTES")]
    client_output_buffer_limit: u64,
    /// Keep an append-only log of the writes at PATH, replayed at start (a torn tail is
    /// cut).
    #[arg(long, visible_alias = "aof", value_name = "PATH")]
    appendonly: Option<PathBuf>,
    /// When the log reaches the disk: always (before each reply: an acknowledged write
    /// survives a crash), everysec (at most about a second lost; the default), no (when the
    /// kernel pleases).
    #[arg(long, value_parser = ["always", "everysec", "no"], value_name = "WHEN")]
    fsync: Option<String>,
    /// At start, cut the log at a corrupt command in its middle (what is cut is saved next
    /// to it) instead of refusing to start. The commands after that point are lost.
    #[arg(long)]
    aof_truncate_corrupt: bool,
    /// Compact the log in the background once it is this large and has doubled since the
    /// last compaction.
    #[arg(long, default_value = "64mb", value_parser = parse_bytes, value_name = "BYTES")]
    aof_rewrite_min_size: u64,
    /// On SHUTDOWN (and SIGINT/SIGTERM), compact the log before exiting, so the next start
    /// reads a snapshot instead of the whole history (SHUTDOWN NOSAVE skips it).
    #[arg(long)]
    snapshot: bool,
    /// Mirror string keys into POSIX shared memory /NAME, where local readers GET without a
    /// system call (`ipckit kv get --shm /NAME KEY`).
    #[arg(long, value_name = "/NAME")]
    shm: Option<String>,
    /// How many keys the mirror holds.
    #[arg(long, value_name = "N")]
    shm_capacity: Option<usize>,
    /// The largest value mirrored; larger ones are "not mirrored" (ask the socket).
    #[arg(long, value_parser = parse_bytes, value_name = "BYTES")]
    shm_max_value: Option<u64>,
    /// The longest key mirrored; longer ones are not in the mirror (ask the socket).
    #[arg(long, value_parser = parse_bytes, value_name = "BYTES")]
    shm_max_key: Option<u64>,
    /// Mode of the shared memory, in octal (readers need read permission).
    #[arg(long, value_parser = crate::args::parse_mode, value_name = "MODE")]
    shm_mode: Option<u32>,
    /// After a burst of work, keep polling for this many microseconds (yielding the CPU to
    /// anyone who wants it) before sleeping: a client that sends again meanwhile is served
    /// without waking the server. 0 turns it off; an idle server never polls.
    #[arg(long, default_value_t = 30, value_name = "MICROS")]
    busy_poll: u64,
    /// Print nothing but errors.
    #[arg(long, short)]
    quiet: bool,
}

/// Read one key: through the shared-memory mirror (no system call) or over the socket.
///
/// Prints the value and a newline on standard output. Exit status: 0 found; 1 the key does
/// not exist (says "absent" on standard error), or an error; 2 a usage error; 3 (with --shm)
/// the mirror cannot say: the value is too large for it, is not a string, or the table was
/// full, so ask the server over its socket (`ipckit kv get unix:PATH KEY` or
/// `redis-cli -s PATH GET KEY`).
#[derive(clap::Args, Debug)]
pub struct GetArgs {
    /// Read through the server's mirror /NAME (as `ipckit kv serve --shm /NAME`).
    #[arg(long, value_name = "/NAME")]
    shm: Option<String>,
    /// The key, after the server's endpoint (unix:PATH, tcp:127.0.0.1:PORT) when not
    /// reading with --shm.
    #[arg(value_name = "[ENDPOINT] KEY", num_args = 1..=2, required = true)]
    args: Vec<String>,
}

/// `100`, `64kb`, `512mb`, `1gb` (Redis's units: k/m/g are powers of 1000, kb/mb/gb of 1024).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let lower = s.to_ascii_lowercase();
    let digits = lower.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &lower[digits.len()..];
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("'{s}' is not a size (100, 64kb, 512mb, 1gb)"))?;
    let mul: u64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1 << 10,
        "m" => 1_000_000,
        "mb" => 1 << 20,
        "g" => 1_000_000_000,
        "gb" => 1 << 30,
        _ => {
            return Err(format!(
                "'{s}': unknown unit '{unit}' (use k, kb, m, mb, g, gb)"
            ));
        }
    };
    n.checked_mul(mul)
        .ok_or_else(|| format!("'{s}' is too large"))
}

pub fn run(args: KvArgs) -> Result<()> {
    match args.command {
        KvCommand::Serve(a) => serve(*a),
        KvCommand::Get(a) => get(a),
    }
}

fn serve(a: ServeArgs) -> Result<()> {
    // First, while this process has one thread: the sockets systemd passed, if any.
    let inherited = server::systemd::listen_fds().context("socket activation")?;
    let mut listen = Vec::new();
    for e in &a.endpoints {
        match e.parse::<Endpoint>() {
            Ok(ep) => listen.push(ep),
            Err(msg) => usage_bail!("{msg}"),
        }
    }
    if listen.is_empty() && inherited.is_empty() {
        usage_bail!(
            "nothing to listen on: give unix:PATH or tcp:127.0.0.1:PORT (or start it by socket activation)"
        );
    }
    if a.appendonly.is_none() && (a.fsync.is_some() || a.snapshot || a.aof_truncate_corrupt) {
        usage_bail!("--fsync, --snapshot and --aof-truncate-corrupt need --appendonly PATH");
    }
    if a.shm.is_none()
        && (a.shm_capacity.is_some()
            || a.shm_max_value.is_some()
            || a.shm_max_key.is_some()
            || a.shm_mode.is_some())
    {
        usage_bail!(
            "--shm-capacity, --shm-max-value, --shm-max-key and --shm-mode need --shm /NAME"
        );
    }
    if !a.allow_uids.is_empty() && listen.iter().any(|e| matches!(e, Endpoint::Tcp(_))) {
        usage_bail!(
            "--allow-uid checks Unix peers' credentials, and TCP peers have none: use it with unix: endpoints only"
        );
    }
    if a.proto_max_bulk_len > ipckit_kv::server::MAX_PROTO_BULK_LEN {
        usage_bail!(
            "--proto-max-bulk-len {} is over {} (4gb), the longest argument the append-only log can replay",
            a.proto_max_bulk_len,
            ipckit_kv::server::MAX_PROTO_BULK_LEN
        );
    }
    if a.maxclients == 0 {
        usage_bail!("--maxclients must be at least 1");
    }
    let fsync = match a.fsync.as_deref() {
        Some("always") => Fsync::Always,
        Some("no") => Fsync::No,
        _ => Fsync::EverySec,
    };
    let shm = match a.shm {
        Some(name) => {
            if let Err(e) = ipckit::name::check_posix_name(&name) {
                usage_bail!("--shm {name}: {e}");
            }
            let d = MirrorOptions::default();
            let max_value = a.shm_max_value.map_or(d.max_value, |v| v as usize);
            let capacity = a.shm_capacity.unwrap_or(d.capacity);
            if capacity == 0 {
                usage_bail!("--shm-capacity must be at least 1");
            }
            Some((
                name,
                MirrorOptions {
                    capacity,
                    max_value,
                    max_key: a.shm_max_key.map_or(d.max_key, |v| v as usize),
                    mode: a.shm_mode.unwrap_or(d.mode),
                },
            ))
        }
        None => None,
    };
    let as_usize = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
    let config = Config {
        listen,
        inherited,
        mode: a.mode,
        allow_remote: a.allow_remote,
        requirepass: a.requirepass.map(String::into_bytes),
        allow_uids: a.allow_uids,
        maxclients: a.maxclients,
        maxmemory: a.maxmemory,
        limits: Limits {
            max_bulk: as_usize(a.proto_max_bulk_len),
            ..Limits::default()
        },
        query_buffer_limit: as_usize(a.client_query_buffer_limit),
        output_buffer_limit: as_usize(a.client_output_buffer_limit),
        appendonly: a.appendonly,
        fsync,
        aof_rewrite_min_size: a.aof_rewrite_min_size,
        aof_truncate_corrupt: a.aof_truncate_corrupt,
        snapshot: a.snapshot,
        shm,
        signals: true,
        notify: true,
        log: !a.quiet,
        busy_poll: std::time::Duration::from_micros(a.busy_poll),
    };
    let server = Server::bind(config)?;
    if !a.quiet {
        if let Some(r) = server.recovered() {
            eprintln!(
                "ipckit: kv replayed {} commands from the log{}",
                r.commands,
                match (&r.saved, r.truncated) {
                    (Some(saved), n) => format!(
                        " (cut {n} bytes at a corrupt command, saved as {})",
                        ipckit::name::escape_str(&saved.display().to_string())
                    ),
                    (None, 0) => String::new(),
                    (None, n) => format!(" (cut a torn tail of {n} bytes)"),
                }
            );
        }
        for name in server.local_names() {
            eprintln!("ipckit: kv listening on {}", ipckit::name::escape_str(name));
        }
    }
    server.run()?;
    Ok(())
}

fn get(a: GetArgs) -> Result<()> {
    let (endpoint, key) = match (&a.shm, a.args.as_slice()) {
        (Some(_), [key]) => (None, key.clone()),
        (Some(_), _) => usage_bail!("with --shm, give only the KEY"),
        (None, [endpoint, key]) => (Some(endpoint.clone()), key.clone()),
        (None, _) => usage_bail!("give the server's ENDPOINT and the KEY, or --shm /NAME KEY"),
    };
    let value = if let Some(name) = &a.shm {
        if let Err(e) = ipckit::name::check_posix_name(name) {
            usage_bail!("--shm {name}: {e}");
        }
        let reader = ShmReader::open(name)?;
        match reader.get(key.as_bytes())? {
            Lookup::Found(v) => v,
            Lookup::Absent => absent(&key),
            Lookup::NotMirrored => {
                eprintln!(
                    "ipckit: {}: not mirrored in {name} (too large, not a string, or the table is full): ask the server over its socket (ipckit kv get unix:PATH KEY, or redis-cli -s PATH GET KEY)",
                    ipckit::name::escape_str(&key)
                );
                std::process::exit(3);
            }
        }
    } else {
        let endpoint = endpoint.as_deref().unwrap_or_default();
        if !endpoint.starts_with("unix:") && !endpoint.starts_with("tcp:") {
            usage_bail!("'{endpoint}' is not an endpoint: use unix:PATH or tcp:127.0.0.1:PORT");
        }
        let mut c = Client::connect(endpoint)?;
        match c.command(&[b"GET", key.as_bytes()])? {
            Reply::Bulk(v) => v,
            Reply::Nil => absent(&key),
            Reply::Error(e) => anyhow::bail!("GET {}: {e}", ipckit::name::escape_str(&key)),
            other => anyhow::bail!("GET: unexpected reply {other:?}"),
        }
    };
    let mut out = std::io::stdout().lock();
    out.write_all(&value)
        .and_then(|_| out.write_all(b"\n"))
        .and_then(|_| out.flush())
        .context("writing to standard output")?;
    Ok(())
}

fn absent(key: &str) -> ! {
    eprintln!("ipckit: {}: absent", ipckit::name::escape_str(key));
    std::process::exit(1);
}
