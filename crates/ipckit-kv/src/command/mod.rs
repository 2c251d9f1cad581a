//! The commands: one table ([`execute`] dispatches on the name), each command's arity, flags
//! and reply as Redis gives them, so clients that check replies byte for byte see Redis.
//!
//! [`execute`] does what Redis's `processCommand` does before a command runs, in its order:
//! unknown command or subcommand, wrong arity, `NOAUTH` (with `--requirepass`), a command not
//! allowed in a transaction, `OOM` (with `--maxmemory`, for commands flagged `denyoom`), and
//! inside MULTI the queueing (`+QUEUED`). A refusal inside MULTI makes EXEC fail with
//! EXECABORT, as Redis does.
//!
//! Dispatch allocates nothing: the name is lower-cased into a stack buffer and looked up in a
//! table built once.
//!
//! Writes fill [`Outcome::propagate`] with commands that replay to the same state (relative
//! times made absolute, SPOP as SREM...) unless [`Store::set_propagate`] turned that off.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;

pub(crate) use crate::resp::fmt_i64;
use crate::resp::{Protocol, Reply};
use crate::store::Store;

mod hashes;
mod keys;
mod lists;
mod server;
mod sets;
mod strings;
mod tx;
mod zsets;

pub use tx::end_session;

/// One command's entry in the table: what COMMAND reports and what `execute` checks first.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// Lower case, as COMMAND lists it.
    pub name: &'static str,
    /// Redis's arity: N exactly N arguments (the name included), -N at least N.
    pub arity: i32,
    /// COMMAND's flags: "write", "readonly", "denyoom", "fast", "admin", "noscript", ...
    pub flags: &'static [&'static str],
    /// The first key's position, the last one's (-1: the last argument), the step.
    pub keys: (i32, i32, i32),
    /// Runs it (arity already checked).
    pub run: fn(&mut Ctx<'_>, &[Vec<u8>]) -> Outcome,
}

/// The families, each with its ACL category (COMMAND shows it) and its table.
fn families() -> [(&'static str, &'static [Spec]); 8] {
    [
        ("@string", strings::SPECS),
        ("@keyspace", keys::SPECS),
        ("@list", lists::SPECS),
        ("@hash", hashes::SPECS),
        ("@set", sets::SPECS),
        ("@sortedset", zsets::SPECS),
        ("@connection", server::SPECS),
        ("@transaction", tx::SPECS),
    ]
}

/// Every family's commands: the one table `execute` and COMMAND read (each family file
/// keeps its own `SPECS`).
pub fn specs() -> impl Iterator<Item = &'static Spec> {
    families().into_iter().flat_map(|(_, s)| s.iter())
}

/// Looks a command up by name, any case (`None`: unknown).
pub fn lookup(name: &[u8]) -> Option<&'static Spec> {
    find(name).map(|e| e.spec)
}

// Flag bits, computed once from the flag names.
const F_WRITE: u32 = 1;
const F_DENYOOM: u32 = 1 << 1;
const F_NOAUTH: u32 = 1 << 2;
const F_NOMULTI: u32 = 1 << 3;
/// Runs at once inside MULTI (EXEC, DISCARD, MULTI, WATCH, QUIT, RESET).
const F_TXCTL: u32 = 1 << 4;
/// OOM does not refuse it inside MULTI (EXEC, DISCARD, QUIT, RESET).
const F_OOMOK: u32 = 1 << 5;
/// Has subcommands (CLIENT, CONFIG, COMMAND).
const F_CONTAINER: u32 = 1 << 6;

struct Entry {
    spec: &'static Spec,
    bits: u32,
    category: &'static str,
}

/// FNV-1a: the table's keys are fixed, short command names.
#[derive(Default)]
struct Fnv(u64);
impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h ^= b as u64;
            h = h.wrapping_mul(0x100_0000_01b3);
        }
        self.0 = h;
    }
}

type Table = HashMap<&'static [u8], Entry, BuildHasherDefault<Fnv>>;

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = Table::default();
        for (category, family) in families() {
            for spec in family {
                let mut bits = 0;
                for f in spec.flags {
                    bits |= match *f {
                        "write" => F_WRITE,
                        "denyoom" => F_DENYOOM,
                        "no_auth" => F_NOAUTH,
                        "no_multi" => F_NOMULTI,
                        _ => 0,
                    };
                }
                bits |= match spec.name {
                    "exec" | "discard" | "quit" | "reset" => F_TXCTL | F_OOMOK,
                    "multi" | "watch" => F_TXCTL,
                    _ => 0,
                };
                if server::subcommands(spec.name).is_some() {
                    bits |= F_CONTAINER;
                }
                t.insert(
                    spec.name.as_bytes(),
                    Entry {
                        spec,
                        bits,
                        category,
                    },
                );
            }
        }
        t
    })
}

fn find(name: &[u8]) -> Option<&'static Entry> {
    let mut buf = [0u8; 24];
    let lower = buf.get_mut(..name.len())?;
    lower.copy_from_slice(name);
    lower.make_ascii_lowercase();
    table().get(&*lower)
}

/// What a command needs besides its arguments: the keyspace, the calling client's session,
/// what the server knows of itself, and the time.
pub struct Ctx<'a> {
    pub store: &'a mut Store,
    pub session: &'a mut Session,
    /// Now, in Unix milliseconds.
    pub now_ms: u64,
    /// The server's settings and figures (INFO, CONFIG GET, AUTH, --maxmemory).
    pub server: &'a ServerInfo,
}

impl<'a> Ctx<'a> {
    /// A context with default server settings (tests, the doc examples).
    pub fn new(store: &'a mut Store, session: &'a mut Session, now_ms: u64) -> Ctx<'a> {
        static DEFAULT: std::sync::OnceLock<ServerInfo> = std::sync::OnceLock::new();
        Ctx {
            store,
            session,
            now_ms,
            server: DEFAULT.get_or_init(ServerInfo::default),
        }
    }

    /// What a write propagates: `make()` when the store propagates, else nothing (and
    /// nothing built).
    #[inline]
    pub(crate) fn prop(&self, make: impl FnOnce() -> Vec<Vec<Vec<u8>>>) -> Vec<Vec<Vec<u8>>> {
        if self.store.propagates() {
            make()
        } else {
            Vec::new()
        }
    }

    /// The command itself as its propagation (a deterministic write).
    #[inline]
    pub(crate) fn prop_args(&self, args: &[Vec<u8>]) -> Vec<Vec<Vec<u8>>> {
        self.prop(|| vec![args.to_vec()])
    }
}

/// The server-wide settings and figures commands read.
#[derive(Debug, Clone, Default)]
pub struct ServerInfo {
    /// `--requirepass`: AUTH must give it before any other command.
    pub requirepass: Option<Vec<u8>>,
    /// `--maxmemory` in bytes (0: no limit): writes past it get an OOM error.
    pub maxmemory: u64,
    /// `--maxclients`.
    pub maxclients: usize,
    /// Clients connected now.
    pub connected_clients: usize,
    /// When the server started, Unix milliseconds.
    pub started_ms: u64,
    /// The process id, the TCP port (0 if none), the Unix socket paths (INFO server).
    pub pid: u32,
    pub tcp_port: u16,
    pub unix_sockets: Vec<String>,
    /// `appendonly` (yes/no) and `appendfsync` for CONFIG GET and INFO persistence.
    pub appendonly: bool,
    pub appendfsync: &'static str,
    /// Commands processed so far, connections received so far (INFO stats).
    pub total_commands: u64,
    pub total_connections: u64,
    /// `proto-max-bulk-len` for CONFIG GET (0: the default, 512 MiB).
    pub proto_max_bulk_len: u64,
    /// While the append-only log cannot be written: the error write commands get instead of
    /// running (`MISCONF Errors writing to the AOF file: ...`, as Redis replies).
    pub writes_refused: Option<String>,
}

/// One client's state across commands.
#[derive(Debug, Clone)]
pub struct Session {
    /// CLIENT ID: unique for the server's life.
    pub id: u64,
    /// RESP2 until `HELLO 3`.
    pub proto: Protocol,
    /// CLIENT SETNAME.
    pub name: Option<Vec<u8>>,
    /// CLIENT SETINFO lib-name / lib-ver.
    pub lib_name: Option<Vec<u8>>,
    pub lib_ver: Option<Vec<u8>>,
    /// AUTH passed (or no password is set).
    pub authenticated: bool,
    /// Inside MULTI: the queued commands, and whether one was refused while queueing (EXEC
    /// then fails with EXECABORT).
    pub multi: Option<Vec<Vec<Vec<u8>>>>,
    pub multi_failed: bool,
    /// WATCHed keys, each with the token [`Store::watch`] gave (each registered once in the
    /// store: [`end_session`] releases them when the client goes).
    pub watched: Vec<(Vec<u8>, u64)>,
}

impl Session {
    /// A new client's session.
    pub fn new(id: u64) -> Session {
        Session {
            id,
            proto: Protocol::Resp2,
            name: None,
            lib_name: None,
            lib_ver: None,
            authenticated: false,
            multi: None,
            multi_failed: false,
            watched: Vec::new(),
        }
    }
}

/// What the server does after sending the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// Read the next request.
    Continue,
    /// QUIT: close this connection once the reply is written.
    Close,
    /// SHUTDOWN: write the reply... (Redis closes at once), stop serving, and with `save`
    /// write the snapshot first. `save` is true unless NOSAVE was given: the server
    /// snapshots when it has persistence configured.
    Shutdown { save: bool },
}

/// A command's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub reply: Reply,
    pub after: After,
    /// The writes to append to the log, as commands that replay to the same state (a
    /// relative expiry already made absolute, SPOP as the SREM it did). Empty for a read or
    /// a write that changed nothing.
    pub propagate: Vec<Vec<Vec<u8>>>,
}

impl Outcome {
    /// A reply, nothing else.
    #[inline]
    pub fn reply(reply: Reply) -> Outcome {
        Outcome {
            reply,
            after: After::Continue,
            propagate: Vec::new(),
        }
    }

    /// A reply, and what to log.
    #[inline]
    pub(crate) fn write(reply: Reply, propagate: Vec<Vec<Vec<u8>>>) -> Outcome {
        Outcome {
            reply,
            after: After::Continue,
            propagate,
        }
    }
}

#[inline]
fn arity_ok(arity: i32, n: usize) -> bool {
    if arity >= 0 {
        n == arity as usize
    } else {
        n >= arity.unsigned_abs() as usize
    }
}

/// Refuses a command before it runs: inside MULTI that dooms the transaction (EXECABORT).
fn reject(ctx: &mut Ctx<'_>, reply: Reply) -> Outcome {
    if ctx.session.multi.is_some() {
        ctx.session.multi_failed = true;
    }
    Outcome::reply(reply)
}

/// `OOM ...` as Redis words it.
pub const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";
/// `NOAUTH ...` as Redis words it.
pub const NOAUTH: &str = "NOAUTH Authentication required.";

/// Runs one command (`args[0]` is its name, any case).
///
/// Keys that expired while it ran (or before, when nothing has logged them yet) come first
/// in its `propagate`, each as a `DEL`: the log must see an expiry where it happened.
pub fn execute(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    let mut out = execute_command(ctx, args);
    if ctx.store.has_expired() {
        let dels = ctx.store.take_expired().into_iter().map(expired_del);
        out.propagate.splice(0..0, dels);
    }
    out
}

/// `DEL key`: how an expiry is logged.
pub(crate) fn expired_del(key: Vec<u8>) -> Vec<Vec<u8>> {
    vec![b"DEL".to_vec(), key]
}

fn execute_command(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    let Some(name) = args.first() else {
        return Outcome::reply(Reply::error("ERR empty command"));
    };
    let Some(entry) = find(name) else {
        return reject(ctx, unknown_command(args));
    };
    let spec = entry.spec;
    if !arity_ok(spec.arity, args.len()) {
        return reject(ctx, arity_error(spec.name));
    }
    if entry.bits & F_CONTAINER != 0
        && let Some(subs) = server::subcommands(spec.name)
        && let Err(e) = server::check_subcommand(spec.name, subs, args)
    {
        return reject(ctx, e);
    }
    if ctx.server.requirepass.is_some() && !ctx.session.authenticated && entry.bits & F_NOAUTH == 0
    {
        return reject(ctx, Reply::error(NOAUTH));
    }
    let in_multi = ctx.session.multi.is_some();
    if in_multi && entry.bits & F_NOMULTI != 0 {
        return reject(
            ctx,
            Reply::error("ERR Command not allowed inside a transaction"),
        );
    }
    if let Some(e) = &ctx.server.writes_refused
        && (entry.bits & F_WRITE != 0 || (spec.name == "exec" && queue_writes(ctx.session)))
    {
        let e = Reply::error(e.clone());
        return reject(ctx, e);
    }
    if ctx.server.maxmemory > 0
        && ctx.store.used_memory() > ctx.server.maxmemory
        && (entry.bits & F_DENYOOM != 0 || (in_multi && entry.bits & F_OOMOK == 0))
    {
        return reject(ctx, Reply::error(OOM));
    }
    if in_multi && entry.bits & F_TXCTL == 0 {
        if let Some(q) = ctx.session.multi.as_mut() {
            q.push(args.to_vec());
        }
        return Outcome::reply(Reply::status("QUEUED"));
    }
    (spec.run)(ctx, args)
}

/// Whether the MULTI queue holds a write command (EXEC is then a write, as in Redis).
fn queue_writes(session: &Session) -> bool {
    session.multi.as_ref().is_some_and(|q| {
        q.iter()
            .any(|c| find(&c[0]).is_some_and(|e| e.bits & F_WRITE != 0))
    })
}

/// Whether the command named `name` is flagged `denyoom` (EXEC checks its queue).
pub(crate) fn is_denyoom(name: &[u8]) -> bool {
    find(name).is_some_and(|e| e.bits & F_DENYOOM != 0)
}

/// `-ERR unknown command 'x', with args beginning with: 'a' 'b' `, as Redis words it: the
/// name cut at 128 bytes, then arguments while the list is shorter than 128 bytes, each cut
/// to what is left; CR and LF become spaces.
pub fn unknown_command(args: &[Vec<u8>]) -> Reply {
    let mut line = b"ERR unknown command '".to_vec();
    line.extend_from_slice(&args[0][..args[0].len().min(128)]);
    line.extend_from_slice(b"', with args beginning with: ");
    let mut list = Vec::new();
    for a in &args[1..] {
        if list.len() >= 128 {
            break;
        }
        let room = 128 - list.len();
        list.push(b'\'');
        list.extend_from_slice(&a[..a.len().min(room)]);
        list.extend_from_slice(b"' ");
    }
    line.extend_from_slice(&list);
    error_line(line)
}

/// An error reply from bytes: CR and LF as spaces (one line), invalid UTF-8 replaced.
pub(crate) fn error_line(mut line: Vec<u8>) -> Reply {
    for b in &mut line {
        if *b == b'\r' || *b == b'\n' {
            *b = b' ';
        }
    }
    Reply::Error(String::from_utf8_lossy(&line).into_owned().into())
}

/// `ERR wrong number of arguments for 'get' command`.
pub(crate) fn arity_error(name: &str) -> Reply {
    Reply::Error(format!("ERR wrong number of arguments for '{name}' command").into())
}

// Replies used across the families, worded as Redis words them.
pub(crate) const ERR_SYNTAX: &str = "ERR syntax error";
pub(crate) const ERR_NOT_INT: &str = "ERR value is not an integer or out of range";
pub(crate) const ERR_NOT_FLOAT: &str = "ERR value is not a valid float";
pub(crate) const ERR_OVERFLOW: &str = "ERR increment or decrement would overflow";
pub(crate) const ERR_POSITIVE: &str = "ERR value is out of range, must be positive";

#[inline]
pub(crate) fn err(line: &'static str) -> Outcome {
    Outcome::reply(Reply::error(line))
}

#[inline]
pub(crate) fn wrongtype() -> Outcome {
    err(crate::store::WRONGTYPE)
}

/// A decimal integer exactly as Redis's `string2ll` takes one: an optional `-`, no `+`, no
/// leading zeros, no spaces, at most 20 bytes, in range.
pub(crate) fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() >= 21 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (neg, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    if neg {
        if v > i64::MAX as u64 + 1 {
            return None;
        }
        Some((v as i64).wrapping_neg())
    } else {
        i64::try_from(v).ok()
    }
}

/// A double as Redis's `getDoubleFromObject` takes one (`strtod`: `inf`, `-inf`, `1e3`,
/// `.5`; no NaN, no leading space, no overflow to infinity or underflow to zero).
pub(crate) fn parse_f64(s: &[u8]) -> Option<f64> {
    let t = std::str::from_utf8(s).ok()?;
    if t.is_empty() || t.starts_with(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    let v: f64 = match t.parse() {
        Ok(v) => v,
        Err(_) => parse_hex_f64(t)?,
    };
    if v.is_nan() {
        return None;
    }
    let lower = t.to_ascii_lowercase();
    if v.is_infinite() && !lower.contains("inf") {
        return None; // ERANGE overflow
    }
    if v == 0.0 {
        let mantissa = lower.split('e').next().unwrap_or("");
        if mantissa.bytes().any(|b| (b'1'..=b'9').contains(&b)) {
            return None; // ERANGE underflow
        }
    }
    Some(v)
}

/// A C99 hexadecimal float, as `strtod` reads one: `[+-]0x` hex digits, an optional `.` and
/// more, an optional `p` binary exponent (`0x10`, `0x1.8p1`).
fn parse_hex_f64(t: &str) -> Option<f64> {
    let (neg, rest) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let rest = rest
        .strip_prefix("0x")
        .or_else(|| rest.strip_prefix("0X"))?;
    let (mantissa, exp) = match rest.find(['p', 'P']) {
        Some(i) => (&rest[..i], rest[i + 1..].parse::<i32>().ok()?),
        None => (rest, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut v = 0f64;
    for c in int.chars() {
        v = v * 16.0 + c.to_digit(16)? as f64;
    }
    let mut scale = 1.0 / 16.0;
    for c in frac.chars() {
        v += c.to_digit(16)? as f64 * scale;
        scale /= 16.0;
    }
    let v = v * 2f64.powi(exp);
    Some(if neg { -v } else { v })
}

/// Whether `arg` is `word` in any case.
#[inline]
pub(crate) fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

#[cfg(test)]
mod tests;
