//! The commands: one table ([`execute`] dispatches on the name), each command's arity, flags
//! and reply as Redis gives them, so clients that check replies byte for byte see Redis.

use crate::resp::{Protocol, Reply};
use crate::store::Store;

mod hashes;
mod lists;
mod sets;
mod zsets;

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

/// Every family's commands: the one table `execute` and COMMAND read (each family file
/// keeps its own `SPECS`).
pub fn specs() -> impl Iterator<Item = &'static Spec> {
    lists::SPECS
        .iter()
        .chain(hashes::SPECS)
        .chain(sets::SPECS)
        .chain(zsets::SPECS)
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
    /// WATCHed keys and what the store said of each when watched (helper K2 decides the form).
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
    /// write the snapshot first.
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
    pub fn reply(reply: Reply) -> Outcome {
        Outcome {
            reply,
            after: After::Continue,
            propagate: Vec::new(),
        }
    }
}

/// Runs one command (`args[0]` is its name, any case).
pub fn execute(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    let Some(name) = args.first() else {
        return Outcome::reply(Reply::error("ERR empty command"));
    };
    match name.to_ascii_uppercase().as_slice() {
        b"PING" if args.len() == 1 => Outcome::reply(Reply::status("PONG")),
        b"PING" if args.len() == 2 => Outcome::reply(Reply::Bulk(args[1].clone())),
        b"QUIT" => Outcome {
            reply: Reply::OK,
            after: After::Close,
            propagate: Vec::new(),
        },
        _ => {
            let _ = &ctx.store;
            Outcome::reply(unknown_command(args))
        }
    }
}

/// `-ERR unknown command 'x', with args beginning with: 'a' 'b' `, as Redis words it.
pub fn unknown_command(args: &[Vec<u8>]) -> Reply {
    let mut line = format!(
        "ERR unknown command '{}', with args beginning with: ",
        String::from_utf8_lossy(&args[0])
    );
    for a in &args[1..] {
        line.push_str(&format!("'{}' ", String::from_utf8_lossy(a)));
    }
    Reply::Error(line.into())
}
