//! The event loop: listeners (Unix sockets, loopback TCP, sockets inherited from systemd),
//! clients and their buffers, one epoll set, one thread.
//!
//! # Why one loop, on epoll through rustix
//! Every command runs on one thread, as in Redis: the keyspace needs no lock, a command sees
//! the effects of every command before it, and MULTI/EXEC is atomic for free. On these two-core
//! machines the other core belongs to the clients (redis-benchmark, the application): a second
//! command thread would fight them for it and add a lock to every key access. The loop takes
//! readiness from `epoll(7)` through rustix (already the workspace's syscall layer): a few
//! thousand descriptors, level-triggered, and nothing of async (no runtime, no new
//! dependency). mio would wrap the same calls.
//!
//! # One wake of the loop
//! 1. `epoll_wait` (its timeout is the next tick: active expiry ten times a second, the
//!    log's once-a-second work and its rewrite).
//! 2. Each readable client: one `read(2)` of up to 16 KiB (more only when that filled the
//!    buffer), then every complete request in the buffer runs, in order (pipelining), its
//!    reply appended to the client's output buffer.
//! 3. The writes of the whole wake go to the append-only log at once (one write, and under
//!    `--fsync always` one fsync, for every client of the wake: group commit), then the
//!    shared-memory mirror follows the keys that changed.
//! 4. Only then are the replies written: one `send(2)` per client, at once, never waiting
//!    for EPOLLOUT; EPOLLOUT is asked for only when a write was cut short. So a `-P 1` request
//!    costs one read and one write, and a `-P 16` batch the same.
//! 5. After a wake that had work, the loop polls for 30 µs ([`Config::busy_poll`]), yielding
//!    the CPU between polls, before it sleeps in `epoll_wait`: a client that sends its next
//!    request within that time is served without the sleep and wake-up, which cost more
//!    than the request itself at `-P 1`.
//!
//! # Limits
//! A client may hold at most [`Config::query_buffer_limit`] bytes of unparsed requests
//! (Redis's `client-query-buffer-limit`, 1 GiB) and [`Config::output_buffer_limit`] bytes of
//! unwritten replies beyond its largest single reply (64 MiB): a client that sends and never
//! reads is disconnected, it does not grow the server. Past [`Config::maxclients`] a new
//! client gets `-ERR max number of clients reached` and is closed. A protocol error gets its
//! error reply, then the connection closes, as Redis does.

mod conn;
mod listen;
mod persist;
pub mod systemd;

use std::collections::HashSet;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ipckit::notify::eventfd::{EventFd, Mode};
use ipckit::notify::signal::SignalFd;
use ipckit::{Error, ErrorKind, Result};
use rustix::event::epoll::{self, CreateFlags, Event, EventData, EventFlags};
use rustix::io::Errno;

use crate::aof::Fsync;
use crate::command::{After, Ctx, ServerInfo, Session, execute};
use crate::resp::{Limits, Parsed, Reply, parse_request_resume};
use crate::shm::MirrorOptions;
use crate::store::Store;

use conn::{Conn, ReadOutcome, WriteOutcome};
pub use listen::Endpoint;
use listen::Listener;
use persist::Persist;
pub use systemd::{Inherited, Notifier};

/// How the server runs: where it listens, who may connect, its limits, its persistence.
#[derive(Debug)]
pub struct Config {
    /// Where to listen (`unix:PATH`, `tcp:127.0.0.1:PORT`); any number.
    pub listen: Vec<Endpoint>,
    /// Listening sockets inherited from systemd ([`systemd::listen_fds`]), served too.
    pub inherited: Vec<Inherited>,
    /// The Unix socket files' mode (0600: this user and root only).
    pub mode: u32,
    /// Let `tcp:` listen on an address that is not loopback. There is no TLS and AUTH's
    /// password crosses the network in clear text, so this is an explicit choice.
    pub allow_remote: bool,
    /// `--requirepass`: clients must AUTH with it first.
    pub requirepass: Option<Vec<u8>>,
    /// `--allow-uid`: when not empty, only Unix peers with one of these uids (SO_PEERCRED)
    /// are served; others are closed at once, each uid logged once.
    pub allow_uids: Vec<u32>,
    /// The most clients at once (Redis: 10000).
    pub maxclients: usize,
    /// `--maxmemory` in bytes (0: none): writes past it get an OOM error.
    pub maxmemory: u64,
    /// The protocol's limits (bulk length, inline length, arguments).
    pub limits: Limits,
    /// The most unparsed request bytes one client may hold (1 GiB).
    pub query_buffer_limit: usize,
    /// The most unwritten reply bytes one client may hold beyond its largest reply (64 MiB).
    pub output_buffer_limit: usize,
    /// `--appendonly PATH`: the append-only log, replayed at start.
    pub appendonly: Option<PathBuf>,
    /// `--fsync`.
    pub fsync: Fsync,
    /// The log is rewritten (compacted) once it is at least this large and has doubled
    /// since the last rewrite (Redis: 64 MiB, 100 %).
    pub aof_rewrite_min_size: u64,
    /// `--aof-truncate-corrupt`: a corrupt command in the middle of the log is cut off (and
    /// saved aside) instead of refusing to start.
    pub aof_truncate_corrupt: bool,
    /// `--snapshot`: SHUTDOWN compacts the log before exiting (as SHUTDOWN SAVE does).
    pub snapshot: bool,
    /// `--shm /NAME`: the shared-memory mirror, and how to make it.
    pub shm: Option<(String, MirrorOptions)>,
    /// Stop cleanly on SIGINT and SIGTERM (a signalfd in the loop). They are blocked in the
    /// thread that calls [`Server::bind`]; threads started after it inherit that.
    pub signals: bool,
    /// Report `READY=1` and `STOPPING=1` to `NOTIFY_SOCKET` when it is set.
    pub notify: bool,
    /// Log on standard error (refused peers, clients dropped at a limit, persistence errors).
    pub log: bool,
    /// After a wake that had work, how long the loop keeps polling (epoll_wait without
    /// waiting, yielding the CPU between polls) before it sleeps: clients that send again
    /// within it are served without the cost of the loop's sleep and wake-up (at `-P 1` that
    /// cost is most of a request's). The yield gives the CPU to any other thread that wants
    /// it, so a busy machine's clients are not slowed down. An idle server never spins.
    /// Default 30 µs; zero turns it off.
    pub busy_poll: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: Vec::new(),
            inherited: Vec::new(),
            mode: 0o600,
            allow_remote: false,
            requirepass: None,
            allow_uids: Vec::new(),
            maxclients: 10_000,
            maxmemory: 0,
            limits: Limits::default(),
            query_buffer_limit: 1 << 30,
            output_buffer_limit: 64 << 20,
            appendonly: None,
            fsync: Fsync::EverySec,
            aof_rewrite_min_size: 64 << 20,
            aof_truncate_corrupt: false,
            snapshot: false,
            shm: None,
            signals: false,
            notify: false,
            log: true,
            busy_poll: Duration::from_micros(30),
        }
    }
}

/// Why [`Server::run`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// SIGINT or SIGTERM (its number).
    Signal(i32),
    /// The SHUTDOWN command.
    Shutdown,
    /// [`Stopper::stop`].
    Stopper,
}

/// Stops a running server from another thread.
#[derive(Debug)]
pub struct Stopper(EventFd);

impl Stopper {
    /// Asks the loop to stop (it finishes the wake it is in, flushes the log, and returns).
    pub fn stop(&self) -> Result<()> {
        self.0.add(1)
    }
}

/// The largest `proto-max-bulk-len` (4 GiB): the append-only log's parser refuses a longer
/// argument on replay (its `MAX_ARG_LEN`), so a longer one could be acknowledged and then
/// make the log unreadable.
pub const MAX_PROTO_BULK_LEN: u64 = 1 << 32;

/// Tokens: clients are `generation << 32 | slot`; the rest count down from the top.
const TOKEN_SIGNAL: u64 = u64::MAX;
const TOKEN_STOP: u64 = u64::MAX - 1;
const TOKEN_LISTENER0: u64 = u64::MAX - 2;
const GEN_MASK: u32 = 0x7fff_ffff;
/// Accepts per listener per wake: a flood of connects cannot starve the clients.
const ACCEPTS_PER_WAKE: usize = 256;
/// The argument vectors kept for the next request after one with more.
const ARGS_KEPT: usize = 1024;
const TICK: Duration = Duration::from_millis(100);
const MAXCLIENTS_REPLY: &[u8] = b"-ERR max number of clients reached\r\n";

/// How a client's requests ran.
#[derive(Debug, PartialEq, Eq)]
enum Ran {
    Ok,
    /// Its unparsed requests passed the query buffer limit.
    OverQuery,
    /// Its unread replies passed the output buffer limit.
    OverOutput,
}

struct Slot {
    generation: u32,
    conn: Option<Conn>,
}

/// A bound server, ready to [`run`](Server::run).
pub struct Server {
    epoll: OwnedFd,
    listeners: Vec<Listener>,
    names: Vec<String>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    store: Store,
    info: ServerInfo,
    limits: Limits,
    query_limit: usize,
    output_limit: usize,
    allow_uids: Vec<u32>,
    refused_logged: HashSet<u32>,
    persist: Persist,
    signals: Option<SignalFd>,
    stop: EventFd,
    notifier: Option<Notifier>,
    log: bool,
    busy_poll: Duration,
    next_id: u64,
    /// The arguments of the request being run, their vectors reused from request to request.
    args: Vec<Vec<u8>>,
    /// Clients with replies to write at the end of this wake: (slot, generation).
    to_write: Vec<(u32, u32)>,
    /// Set by SHUTDOWN: whether to snapshot.
    shutdown: Option<bool>,
    accept_error_logged: bool,
    persist_error_logged: bool,
    /// A listener was taken out of the epoll set after an accept error (EMFILE).
    paused: bool,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn os(op: &'static str, e: Errno) -> Error {
    Error::os(op, e)
}

impl Server {
    /// Binds every listener, replays the append-only log and creates the mirror (nothing is
    /// served until [`run`](Server::run)). Socket files are removed when the server is
    /// dropped.
    pub fn bind(mut config: Config) -> Result<Server> {
        let signals = if config.signals {
            Some(SignalFd::new(&[libc::SIGINT, libc::SIGTERM])?)
        } else {
            None
        };
        raise_nofile_limit();
        if config.listen.is_empty() && config.inherited.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "starting the kv server",
                "nothing to listen on",
            )
            .hint("give unix:PATH or tcp:127.0.0.1:PORT, or start it by socket activation"));
        }
        let mut listeners = Vec::new();
        for ep in &config.listen {
            listeners.push(Listener::bind(ep, config.mode, config.allow_remote)?);
        }
        for inh in config.inherited.drain(..) {
            listeners.push(Listener::Inherited(inh));
        }
        if !config.allow_uids.is_empty() && listeners.iter().any(|l| !l.is_unix()) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "starting the kv server",
                "--allow-uid checks Unix peers' credentials, and TCP peers have none",
            )
            .hint("serve only unix: endpoints with --allow-uid, or use --requirepass for TCP"));
        }
        let epoll = epoll::create(CreateFlags::CLOEXEC).map_err(|e| os("creating epoll set", e))?;
        let stop = EventFd::new(0, Mode::Counter)?;
        let add = |fd: std::os::fd::BorrowedFd<'_>, token: u64| {
            epoll::add(&epoll, fd, EventData::new_u64(token), EventFlags::IN)
                .map_err(|e| os("adding to the epoll set", e))
        };
        for (i, l) in listeners.iter().enumerate() {
            add(l.fd(), TOKEN_LISTENER0 - i as u64)?;
        }
        add(stop.as_fd(), TOKEN_STOP)?;
        if let Some(s) = &signals {
            add(s.as_fd(), TOKEN_SIGNAL)?;
        }
        let names: Vec<String> = listeners.iter().map(Listener::name).collect();
        let info = ServerInfo {
            requirepass: config.requirepass.clone(),
            maxmemory: config.maxmemory,
            maxclients: config.maxclients,
            started_ms: now_ms(),
            pid: std::process::id(),
            tcp_port: names
                .iter()
                .find_map(|n| n.strip_prefix("tcp:"))
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| p.parse().ok())
                .unwrap_or(0),
            unix_sockets: names
                .iter()
                .filter_map(|n| n.strip_prefix("unix:"))
                .map(str::to_string)
                .collect(),
            appendonly: config.appendonly.is_some(),
            proto_max_bulk_len: config.limits.max_bulk as u64,
            appendfsync: config.fsync.as_str(),
            ..ServerInfo::default()
        };
        let mut store = Store::new();
        let persist = Persist::open(&config, &mut store, &info)?;
        let notifier = if config.notify {
            Notifier::from_env()?
        } else {
            None
        };
        Ok(Server {
            epoll,
            listeners,
            names,
            slots: Vec::new(),
            free: Vec::new(),
            store,
            info,
            limits: config.limits,
            query_limit: config.query_buffer_limit,
            output_limit: config.output_buffer_limit,
            allow_uids: config.allow_uids,
            refused_logged: HashSet::new(),
            persist,
            signals,
            stop,
            notifier,
            log: config.log,
            busy_poll: config.busy_poll,
            next_id: 1,
            args: Vec::new(),
            to_write: Vec::new(),
            shutdown: None,
            accept_error_logged: false,
            persist_error_logged: false,
            paused: false,
        })
    }

    /// Where it listens: `unix:PATH`, `tcp:127.0.0.1:PORT` (the port chosen for port 0).
    pub fn local_names(&self) -> &[String] {
        &self.names
    }

    /// What recovery replayed from the log (commands, torn bytes cut), if there is a log.
    pub fn recovered(&self) -> Option<&crate::aof::Recovered> {
        self.persist.recovered()
    }

    /// A handle that stops [`run`](Server::run) from another thread.
    pub fn stopper(&self) -> Result<Stopper> {
        Ok(Stopper(self.stop.try_clone()?))
    }

    fn logln(&self, msg: std::fmt::Arguments<'_>) {
        if self.log {
            eprintln!("ipckit kv: {msg}");
        }
    }

    /// Serves until SIGINT/SIGTERM (with [`Config::signals`]), SHUTDOWN or the [`Stopper`];
    /// then flushes the log (and with SHUTDOWN SAVE or `--snapshot`, compacts it) and returns.
    /// The socket files go when the server is dropped.
    pub fn run(mut self) -> Result<Stopped> {
        if let Some(n) = &self.notifier
            && let Err(e) = n.notify(&format!("READY=1\nMAINPID={}", std::process::id()))
        {
            self.logln(format_args!("telling systemd we are ready: {e}"));
        }
        let mut events: Vec<Event> = Vec::with_capacity(1024);
        let mut next_tick = Instant::now() + TICK;
        let mut busy = false;
        let spin = self.busy_poll;
        let stopped = loop {
            let now = Instant::now();
            let wait = next_tick.saturating_duration_since(now);
            let ts = rustix::time::Timespec {
                tv_sec: wait.as_secs() as i64,
                tv_nsec: wait.subsec_nanos() as i64,
            };
            events.clear();
            // Busy: look again for a few microseconds before sleeping (Config::busy_poll).
            if busy && !spin.is_zero() {
                let until = now + spin;
                const ZERO: rustix::time::Timespec = rustix::time::Timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                };
                loop {
                    match epoll::wait(
                        &self.epoll,
                        rustix::buffer::spare_capacity(&mut events),
                        Some(&ZERO),
                    ) {
                        Ok(_) | Err(Errno::INTR) => {}
                        Err(e) => return Err(os("waiting for events (epoll_wait)", e)),
                    }
                    if !events.is_empty() || Instant::now() >= until {
                        break;
                    }
                    // Another thread that wants this CPU (a client on a busy machine) gets it.
                    rustix::thread::sched_yield();
                }
            }
            if events.is_empty() {
                match epoll::wait(
                    &self.epoll,
                    rustix::buffer::spare_capacity(&mut events),
                    Some(&ts),
                ) {
                    Ok(_) | Err(Errno::INTR) => {}
                    Err(e) => return Err(os("waiting for events (epoll_wait)", e)),
                }
            }
            busy = !events.is_empty();
            let mut stop = None;
            let now_ms = now_ms();
            for ev in &events {
                let token = ev.data.u64();
                let flags = ev.flags;
                match token {
                    TOKEN_SIGNAL => {
                        if let Some(s) = &self.signals
                            && let Ok(Some(info)) = s.try_read()
                        {
                            stop = Some(Stopped::Signal(info.signo));
                        }
                    }
                    TOKEN_STOP => {
                        let _ = self.stop.try_read();
                        stop = Some(Stopped::Stopper);
                    }
                    t if t > TOKEN_LISTENER0 - self.listeners.len() as u64 => {
                        self.accept((TOKEN_LISTENER0 - t) as usize);
                    }
                    t => self.on_client(t, flags, now_ms),
                }
            }
            self.after_wake()?;
            if self.shutdown.is_some() {
                break Stopped::Shutdown;
            }
            if let Some(s) = stop {
                break s;
            }
            if Instant::now() >= next_tick {
                next_tick = Instant::now() + TICK;
                self.tick();
            }
        };
        self.stopping(stopped)?;
        Ok(stopped)
    }

    /// The end: replies flushed where they can be, the log flushed (and compacted when
    /// asked), systemd told.
    fn stopping(&mut self, why: Stopped) -> Result<()> {
        if let Some(n) = &self.notifier {
            let _ = n.notify("STOPPING=1");
        }
        // SHUTDOWN NOSAVE skips the snapshot; SHUTDOWN, SIGTERM and SIGINT take it (with
        // --snapshot), as Redis saves on both.
        let save = self.shutdown.unwrap_or(true);
        self.logln(format_args!(
            "stopping ({})",
            match why {
                Stopped::Signal(s) => ipckit::notify::signal::name(s),
                Stopped::Shutdown => "SHUTDOWN".into(),
                Stopped::Stopper => "asked to".into(),
            }
        ));
        self.persist.finish(&self.store, save, now_ms())
    }

    fn accept(&mut self, index: usize) {
        for _ in 0..ACCEPTS_PER_WAKE {
            let accepted = match self.listeners[index].accept() {
                Ok(Some(a)) => a,
                Ok(None) => break,
                Err(e) => {
                    // EMFILE and its kind: say so once, keep serving those connected, and
                    // stop listening until the next tick (the waiting connection would make
                    // the level-triggered listener ready again at once: a busy loop).
                    if !self.accept_error_logged {
                        self.accept_error_logged = true;
                        self.logln(format_args!(
                            "{e} (said once; accepting again in {} ms)",
                            TICK.as_millis()
                        ));
                    }
                    let token = TOKEN_LISTENER0 - index as u64;
                    let l = self.listeners[index].fd();
                    if epoll::modify(
                        &self.epoll,
                        l,
                        EventData::new_u64(token),
                        EventFlags::empty(),
                    )
                    .is_ok()
                    {
                        self.paused = true;
                    }
                    break;
                }
            };
            self.accept_error_logged = false;
            if accepted.unix && !self.allow_uids.is_empty() {
                let uid = ipckit::socket::ancillary::peer_cred(&accepted.fd).map(|c| c.uid);
                let allowed = matches!(&uid, Ok(u) if self.allow_uids.contains(u));
                if !allowed {
                    let uid = uid.map_or(u32::MAX, |u| u);
                    if self.refused_logged.insert(uid) {
                        self.logln(format_args!(
                            "refused a client of uid {} on {} (not in --allow-uid); later ones of this uid are not logged",
                            if uid == u32::MAX { "?".to_string() } else { uid.to_string() },
                            self.names[index]
                        ));
                    }
                    continue;
                }
            }
            self.info.total_connections += 1;
            if self.info.connected_clients >= self.info.maxclients {
                let _ = rustix::net::send(
                    &accepted.fd,
                    MAXCLIENTS_REPLY,
                    rustix::net::SendFlags::NOSIGNAL,
                );
                continue;
            }
            let mut session = Session::new(self.next_id);
            self.next_id += 1;
            session.authenticated = self.info.requirepass.is_none();
            let conn = Conn::new(accepted.fd, session);
            let slot = match self.free.pop() {
                Some(s) => s,
                None => {
                    self.slots.push(Slot {
                        generation: 0,
                        conn: None,
                    });
                    (self.slots.len() - 1) as u32
                }
            };
            let s = &mut self.slots[slot as usize];
            s.generation = (s.generation + 1) & GEN_MASK;
            let token = (s.generation as u64) << 32 | slot as u64;
            if let Err(e) = epoll::add(
                &self.epoll,
                &conn.fd,
                EventData::new_u64(token),
                EventFlags::IN,
            ) {
                self.logln(format_args!("adding a client to the epoll set: {e}"));
                self.free.push(slot);
                continue;
            }
            s.conn = Some(conn);
            self.info.connected_clients += 1;
        }
    }

    fn close(&mut self, slot: u32) {
        if let Some(s) = self.slots.get_mut(slot as usize)
            && let Some(mut conn) = s.conn.take()
        {
            crate::command::end_session(&mut self.store, &mut conn.session);
            self.free.push(slot);
            self.info.connected_clients -= 1;
        }
    }

    fn on_client(&mut self, token: u64, flags: EventFlags, now_ms: u64) {
        let slot = token as u32;
        let generation = (token >> 32) as u32;
        let Some(s) = self.slots.get_mut(slot as usize) else {
            return;
        };
        if s.generation != generation {
            return;
        }
        let Some(conn) = s.conn.as_mut() else {
            return;
        };
        if flags.contains(EventFlags::OUT) && conn.want_out {
            match conn.flush() {
                WriteOutcome::Done => {
                    conn.want_out = false;
                    if conn.closing {
                        self.close(slot);
                        return;
                    }
                    let _ = epoll::modify(
                        &self.epoll,
                        &conn.fd,
                        EventData::new_u64(token),
                        EventFlags::IN,
                    );
                }
                WriteOutcome::Blocked => {}
                WriteOutcome::Broken => {
                    self.close(slot);
                    return;
                }
            }
        }
        if !flags.intersects(EventFlags::IN | EventFlags::HUP | EventFlags::ERR) {
            return;
        }
        if conn.closing {
            // Nothing more is read from it (it waits for EPOLLOUT only); a hang-up with
            // replies still pending ends it.
            if flags.intersects(EventFlags::HUP | EventFlags::ERR) {
                self.close(slot);
            }
            return;
        }
        let got = conn.fill();
        if got == ReadOutcome::Broken {
            self.close(slot);
            return;
        }
        let ran = self.run_requests(slot, now_ms);
        if ran != Ran::Ok {
            let id = self.slots[slot as usize]
                .conn
                .as_ref()
                .map_or(0, |c| c.session.id);
            if ran == Ran::OverQuery {
                self.logln(format_args!(
                    "closing client {id}: its query buffer passed {} bytes (--client-query-buffer-limit)",
                    self.query_limit
                ));
            } else {
                self.logln(format_args!(
                    "closing client {id}: its unread replies passed {} bytes (--client-output-buffer-limit)",
                    self.output_limit
                ));
            }
            // Dropped at once, its replies with it, as Redis drops a client past a hard limit.
            self.close(slot);
            return;
        }
        let Some(conn) = self.slots[slot as usize].conn.as_mut() else {
            return;
        };
        if got == ReadOutcome::Eof {
            conn.closing = true;
        }
        if conn.closing && conn.want_out {
            // Not read any more: EPOLLIN would fire for ever on what it still sends.
            let token = (generation as u64) << 32 | slot as u64;
            if epoll::modify(
                &self.epoll,
                &conn.fd,
                EventData::new_u64(token),
                EventFlags::OUT,
            )
            .is_err()
            {
                self.close(slot);
                return;
            }
        }
        if (conn.pending() > 0 || conn.closing) && !conn.queued && !conn.want_out {
            conn.queued = true;
            self.to_write.push((slot, generation));
        }
    }

    /// Runs every complete request in the client's buffer, until it is empty, the client
    /// closes (QUIT, a protocol error, SHUTDOWN) or passes a limit.
    fn run_requests(&mut self, slot: u32, now_ms: u64) -> Ran {
        let Server {
            slots,
            store,
            info,
            limits,
            persist,
            shutdown,
            output_limit,
            query_limit,
            args,
            ..
        } = self;
        let Some(conn) = slots[slot as usize].conn.as_mut() else {
            return Ran::Ok;
        };
        while !conn.closing {
            // A request arriving in pieces resumes where the last read left it (each byte
            // parsed once, not once per read: a trickled `*1048576` would be quadratic).
            match parse_request_resume(&conn.rbuf[conn.rpos..], limits, args, &mut conn.progress) {
                Parsed::Request { argc, used } => {
                    conn.rpos += used;
                    if argc == 0 {
                        continue;
                    }
                    let outcome = {
                        let mut ctx = Ctx {
                            store,
                            session: &mut conn.session,
                            now_ms,
                            server: info,
                        };
                        execute(&mut ctx, &args[..argc])
                    };
                    // A large argument's room is not kept for the next request.
                    for a in &mut args[..argc] {
                        if a.capacity() > 64 << 10 {
                            *a = Vec::new();
                        }
                    }
                    // Nor a request of many arguments its vectors.
                    if args.len() > ARGS_KEPT {
                        args.truncate(ARGS_KEPT);
                        args.shrink_to_fit();
                    }
                    info.total_commands += 1;
                    persist.record(outcome.propagate);
                    match outcome.after {
                        After::Continue => {}
                        After::Close => conn.closing = true,
                        After::Shutdown { save } => {
                            // Redis sends no reply to a SHUTDOWN that works: the client sees
                            // the connection close (redis-py counts that as success).
                            *shutdown = Some(save);
                            conn.closing = true;
                            break;
                        }
                    }
                    let before = conn.wbuf.len();
                    outcome.reply.encode(conn.session.proto, &mut conn.wbuf);
                    conn.largest_reply = conn.largest_reply.max(conn.wbuf.len() - before);
                    if conn.over_output_limit(*output_limit) {
                        return Ran::OverOutput;
                    }
                }
                Parsed::Incomplete => break,
                Parsed::Invalid(line) => {
                    Reply::error(line).encode(conn.session.proto, &mut conn.wbuf);
                    conn.closing = true;
                    break;
                }
            }
        }
        if conn.unparsed() > *query_limit {
            return Ran::OverQuery;
        }
        conn.compact();
        Ran::Ok
    }

    /// After every event of a wake: the log and the mirror follow the writes, then the
    /// replies go out.
    fn after_wake(&mut self) -> Result<()> {
        let now = now_ms();
        if let Err(e) = self.persist.after_batch(&mut self.store, now) {
            if self.persist.must_stop_on_error() {
                // Under --fsync always a write that is not durable must not be acknowledged:
                // stop before any of this wake's replies go out.
                return Err(Error::new(
                    ErrorKind::Os,
                    "serving under --fsync always",
                    format!("{e}"),
                )
                .hint("the log could not be written: the server stopped without acknowledging those writes"));
            }
            // Write commands are refused until a flush works again (Redis's MISCONF); reads
            // go on.
            let text = match e.errno() {
                Some(errno) => {
                    let t = std::io::Error::from_raw_os_error(errno.raw_os_error()).to_string();
                    match t.find(" (os error") {
                        Some(i) => t[..i].to_string(),
                        None => t,
                    }
                }
                None => e.to_string(),
            };
            self.info.writes_refused =
                Some(format!("MISCONF Errors writing to the AOF file: {text}"));
            if !self.persist_error_logged {
                self.persist_error_logged = true;
                self.logln(format_args!(
                    "{e} (said once; write commands get MISCONF until the log can be written)"
                ));
            }
        } else {
            if self.persist_error_logged {
                self.logln(format_args!("the append-only log is written again"));
            }
            self.persist_error_logged = false;
            self.info.writes_refused = None;
        }
        let list = std::mem::take(&mut self.to_write);
        for &(slot, generation) in &list {
            let s = &mut self.slots[slot as usize];
            if s.generation != generation {
                continue;
            }
            let Some(conn) = s.conn.as_mut() else {
                continue;
            };
            conn.queued = false;
            match conn.flush() {
                WriteOutcome::Done => {
                    if conn.closing {
                        self.close(slot);
                    }
                }
                WriteOutcome::Blocked => {
                    conn.want_out = true;
                    let token = (generation as u64) << 32 | slot as u64;
                    // A closing client is not read any more: EPOLLIN would fire for ever on
                    // its end of stream.
                    let interest = if conn.closing {
                        EventFlags::OUT
                    } else {
                        EventFlags::IN | EventFlags::OUT
                    };
                    if epoll::modify(&self.epoll, &conn.fd, EventData::new_u64(token), interest)
                        .is_err()
                    {
                        self.close(slot);
                    }
                }
                WriteOutcome::Broken => self.close(slot),
            }
        }
        let mut list = list;
        list.clear();
        self.to_write = list;
        Ok(())
    }

    /// Ten times a second: active expiry, the log's timed work (everysec, rewrite).
    fn tick(&mut self) {
        if std::mem::take(&mut self.paused) {
            for (i, l) in self.listeners.iter().enumerate() {
                let token = TOKEN_LISTENER0 - i as u64;
                let _ = epoll::modify(
                    &self.epoll,
                    l.fd(),
                    EventData::new_u64(token),
                    EventFlags::IN,
                );
            }
        }
        let now = now_ms();
        let start = Instant::now();
        // Redis's active expiry: sample 20 keys with a time to live; go on while more than a
        // quarter of a sample had expired, for at most 25 ms.
        loop {
            let removed = self.store.active_expire(now, 20);
            if removed <= 5 || start.elapsed() > Duration::from_millis(25) {
                break;
            }
        }
        if let Err(e) = self.persist.tick(&mut self.store, now) {
            self.logln(format_args!("{e}"));
        }
    }
}

/// Raises the soft limit on open descriptors to the hard one (1,000 clients need more than
/// the usual 1024 soft limit leaves once the server's own are counted).
fn raise_nofile_limit() {
    let lim = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    if lim.current < lim.maximum {
        let _ = rustix::process::setrlimit(
            rustix::process::Resource::Nofile,
            rustix::process::Rlimit {
                current: lim.maximum,
                maximum: lim.maximum,
            },
        );
    }
}
