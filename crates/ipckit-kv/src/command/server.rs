//! The connection and server commands: PING, ECHO, HELLO, AUTH, CLIENT, INFO, CONFIG,
//! COMMAND, QUIT, RESET, SHUTDOWN, TIME, LASTSAVE.

use super::{Ctx, ERR_SYNTAX, Outcome, Spec, err, error_line, families, find, is, parse_i64};
use crate::resp::{Protocol, Reply};
use crate::store::glob;

/// The Redis version this server answers as (its replies are checked against it).
pub const REDIS_VERSION: &str = "7.0.15";

const CONN: &[&str] = &["noscript", "loading", "stale", "fast"];
const NOAUTH_CONN: &[&str] = &[
    "noscript",
    "loading",
    "stale",
    "fast",
    "no_auth",
    "allow_busy",
];
const ADMIN: &[&str] = &["admin", "noscript", "loading", "stale"];

/// This family's entries in the command table.
pub(super) const SPECS: &[Spec] = &[
    Spec {
        name: "ping",
        arity: -1,
        flags: &["fast"],
        keys: (0, 0, 0),
        run: ping,
    },
    Spec {
        name: "echo",
        arity: 2,
        flags: &["fast"],
        keys: (0, 0, 0),
        run: echo,
    },
    Spec {
        name: "hello",
        arity: -1,
        flags: NOAUTH_CONN,
        keys: (0, 0, 0),
        run: hello,
    },
    Spec {
        name: "auth",
        arity: -2,
        flags: NOAUTH_CONN,
        keys: (0, 0, 0),
        run: auth,
    },
    Spec {
        name: "quit",
        arity: -1,
        flags: NOAUTH_CONN,
        keys: (0, 0, 0),
        run: quit,
    },
    Spec {
        name: "reset",
        arity: 1,
        flags: NOAUTH_CONN,
        keys: (0, 0, 0),
        run: reset,
    },
    Spec {
        name: "client",
        arity: -2,
        flags: &[],
        keys: (0, 0, 0),
        run: client,
    },
    Spec {
        name: "info",
        arity: -1,
        flags: &["loading", "stale"],
        keys: (0, 0, 0),
        run: info,
    },
    Spec {
        name: "config",
        arity: -2,
        flags: &[],
        keys: (0, 0, 0),
        run: config,
    },
    Spec {
        name: "command",
        arity: -1,
        flags: &["loading", "stale"],
        keys: (0, 0, 0),
        run: command,
    },
    Spec {
        name: "shutdown",
        arity: -1,
        flags: &[
            "admin",
            "noscript",
            "loading",
            "stale",
            "no_multi",
            "allow_busy",
        ],
        keys: (0, 0, 0),
        run: shutdown,
    },
    Spec {
        name: "time",
        arity: 1,
        flags: &["loading", "stale", "fast"],
        keys: (0, 0, 0),
        run: time,
    },
    Spec {
        name: "lastsave",
        arity: 1,
        flags: &["loading", "stale", "fast"],
        keys: (0, 0, 0),
        run: lastsave,
    },
];

/// A subcommand: its name (lower case), arity (counting the parent), flags.
pub(super) struct Sub {
    name: &'static str,
    arity: i32,
    flags: &'static [&'static str],
}

const CLIENT_SUBS: &[Sub] = &[
    Sub {
        name: "setname",
        arity: 3,
        flags: CONN,
    },
    Sub {
        name: "getname",
        arity: 2,
        flags: CONN,
    },
    Sub {
        name: "id",
        arity: 2,
        flags: CONN,
    },
    Sub {
        name: "setinfo",
        arity: 4,
        flags: CONN,
    },
    Sub {
        name: "info",
        arity: 2,
        flags: CONN,
    },
    Sub {
        name: "list",
        arity: -2,
        flags: ADMIN,
    },
    Sub {
        name: "no-evict",
        arity: 3,
        flags: ADMIN,
    },
    Sub {
        name: "no-touch",
        arity: 3,
        flags: CONN,
    },
];
const CONFIG_SUBS: &[Sub] = &[
    Sub {
        name: "get",
        arity: -3,
        flags: ADMIN,
    },
    Sub {
        name: "set",
        arity: -4,
        flags: ADMIN,
    },
    Sub {
        name: "resetstat",
        arity: 2,
        flags: ADMIN,
    },
    Sub {
        name: "rewrite",
        arity: 2,
        flags: ADMIN,
    },
];
const COMMAND_SUBS: &[Sub] = &[
    Sub {
        name: "count",
        arity: 2,
        flags: &["loading", "stale"],
    },
    Sub {
        name: "docs",
        arity: -2,
        flags: &["loading", "stale"],
    },
    Sub {
        name: "info",
        arity: -2,
        flags: &["loading", "stale"],
    },
    Sub {
        name: "list",
        arity: -2,
        flags: &["loading", "stale"],
    },
];

/// The subcommands of a container command (CLIENT, CONFIG, COMMAND).
pub(super) fn subcommands(name: &str) -> Option<&'static [Sub]> {
    match name {
        "client" => Some(CLIENT_SUBS),
        "config" => Some(CONFIG_SUBS),
        "command" => Some(COMMAND_SUBS),
        _ => None,
    }
}

/// Redis's checks of a subcommand before it runs: known, and its own arity.
pub(super) fn check_subcommand(parent: &str, subs: &[Sub], args: &[Vec<u8>]) -> Result<(), Reply> {
    let Some(sub) = args.get(1) else {
        return Ok(()); // COMMAND alone
    };
    let Some(s) = subs.iter().find(|s| is(sub, s.name)) else {
        let mut line = b"ERR unknown subcommand '".to_vec();
        line.extend_from_slice(&sub[..sub.len().min(128)]);
        line.extend_from_slice(b"'. Try ");
        line.extend_from_slice(parent.to_ascii_uppercase().as_bytes());
        line.extend_from_slice(b" HELP.");
        return Err(error_line(line));
    };
    if super::arity_ok(s.arity, args.len()) {
        Ok(())
    } else {
        Err(super::arity_error(&format!("{parent}|{}", s.name)))
    }
}

fn ping(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    let _ = ctx;
    match args.len() {
        1 => Outcome::reply(Reply::status("PONG")),
        2 => Outcome::reply(Reply::Bulk(args[1].clone())),
        _ => Outcome::reply(super::arity_error("ping")),
    }
}

fn echo(_ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    Outcome::reply(Reply::Bulk(args[1].clone()))
}

fn quit(_ctx: &mut Ctx<'_>, _args: &[Vec<u8>]) -> Outcome {
    Outcome {
        reply: Reply::OK,
        after: super::After::Close,
        propagate: Vec::new(),
    }
}

/// RESET: the connection back to its first state (out of MULTI, WATCHes dropped, RESP2, no
/// name, and not authenticated when a password is set).
fn reset(ctx: &mut Ctx<'_>, _args: &[Vec<u8>]) -> Outcome {
    super::end_session(ctx.store, ctx.session);
    ctx.session.proto = Protocol::Resp2;
    ctx.session.name = None;
    ctx.session.authenticated = false;
    Outcome::reply(Reply::status("RESET"))
}

/// Equal in time that does not depend on where they differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() != b.len()) as u8;
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// Checks a user and password as Redis's default user: with no password set any password
/// of `default` passes; with one, only `default` and that password.
fn check_user(ctx: &Ctx<'_>, user: &[u8], pass: &[u8]) -> bool {
    if user != b"default" {
        return false;
    }
    match &ctx.server.requirepass {
        None => true,
        Some(p) => same_secret(p, pass),
    }
}

fn auth(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    let (user, pass): (&[u8], &[u8]) = match args.len() {
        2 => {
            if ctx.server.requirepass.is_none() {
                return err(
                    "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
                );
            }
            (b"default", &args[1])
        }
        3 => (&args[1], &args[2]),
        _ => return err(ERR_SYNTAX),
    };
    if check_user(ctx, user, pass) {
        ctx.session.authenticated = true;
        Outcome::reply(Reply::OK)
    } else {
        err(WRONGPASS)
    }
}

/// Redis's rule for client names and library attributes: printable, no spaces.
fn valid_name(name: &[u8]) -> bool {
    name.iter().all(|&c| (b'!'..=b'~').contains(&c))
}

fn hello(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    let mut proto = None;
    let mut j = 1;
    if let Some(v) = args.get(1) {
        match parse_i64(v) {
            None => return err("ERR Protocol version is not an integer or out of range"),
            Some(2) => proto = Some(Protocol::Resp2),
            Some(3) => proto = Some(Protocol::Resp3),
            Some(_) => return err("NOPROTO unsupported protocol version"),
        }
        j = 2;
    }
    let mut creds = None;
    let mut name = None;
    while j < args.len() {
        let more = args.len() - 1 - j;
        if is(&args[j], "auth") && more >= 2 {
            creds = Some((&args[j + 1], &args[j + 2]));
            j += 3;
        } else if is(&args[j], "setname") && more >= 1 {
            if !valid_name(&args[j + 1]) {
                return err(
                    "ERR Client names cannot contain spaces, newlines or special characters.",
                );
            }
            name = Some(&args[j + 1]);
            j += 2;
        } else {
            let mut line = b"ERR Syntax error in HELLO option '".to_vec();
            line.extend_from_slice(&args[j][..args[j].len().min(128)]);
            line.push(b'\'');
            return Outcome::reply(error_line(line));
        }
    }
    if let Some((user, pass)) = creds {
        if !check_user(ctx, user, pass) {
            return err(WRONGPASS);
        }
        ctx.session.authenticated = true;
    }
    if ctx.server.requirepass.is_some() && !ctx.session.authenticated {
        return err(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
        );
    }
    if let Some(n) = name {
        ctx.session.name = (!n.is_empty()).then(|| n.clone());
    }
    if let Some(p) = proto {
        ctx.session.proto = p;
    }
    let s = |v: &str| Reply::Bulk(v.as_bytes().to_vec());
    let n = match ctx.session.proto {
        Protocol::Resp2 => 2,
        Protocol::Resp3 => 3,
    };
    Outcome::reply(Reply::Map(vec![
        (s("server"), s("redis")),
        (s("version"), s(REDIS_VERSION)),
        (s("proto"), Reply::Int(n)),
        (s("id"), Reply::Int(ctx.session.id as i64)),
        (s("mode"), s("standalone")),
        (s("role"), s("master")),
        (s("modules"), Reply::Array(Vec::new())),
    ]))
}

/// CLIENT INFO's line for this client (the figures it does not know are 0).
fn client_line(ctx: &Ctx<'_>, cmd: &str) -> Vec<u8> {
    let sess = &*ctx.session;
    let text =
        |v: &Option<Vec<u8>>| String::from_utf8_lossy(v.as_deref().unwrap_or(b"")).into_owned();
    let multi = sess.multi.as_ref().map_or(-1, |q| q.len() as i64);
    let resp = match sess.proto {
        Protocol::Resp2 => 2,
        Protocol::Resp3 => 3,
    };
    format!(
        "id={} addr=? laddr=? fd=-1 name={} age=0 idle=0 flags={} db=0 sub=0 psub=0 ssub=0 multi={} qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={} user=default redir=-1 resp={} lib-name={} lib-ver={}\n",
        sess.id,
        text(&sess.name),
        if sess.multi.is_some() { "x" } else { "N" },
        multi,
        cmd,
        resp,
        text(&sess.lib_name),
        text(&sess.lib_ver),
    )
    .into_bytes()
}

fn client(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    let sub = args[1].to_ascii_lowercase();
    match sub.as_slice() {
        b"setname" => {
            if !valid_name(&args[2]) {
                return err(
                    "ERR Client names cannot contain spaces, newlines or special characters.",
                );
            }
            ctx.session.name = (!args[2].is_empty()).then(|| args[2].clone());
            Outcome::reply(Reply::OK)
        }
        b"getname" => Outcome::reply(ctx.session.name.clone().map_or(Reply::Nil, Reply::Bulk)),
        b"id" => Outcome::reply(Reply::Int(ctx.session.id as i64)),
        b"setinfo" => {
            let slot = if is(&args[2], "lib-name") {
                &mut ctx.session.lib_name
            } else if is(&args[2], "lib-ver") {
                &mut ctx.session.lib_ver
            } else {
                let mut line = b"ERR Unrecognized option '".to_vec();
                line.extend_from_slice(&args[2][..args[2].len().min(128)]);
                line.push(b'\'');
                return Outcome::reply(error_line(line));
            };
            if !valid_name(&args[3]) {
                let mut line = b"ERR ".to_vec();
                line.extend_from_slice(&args[2][..args[2].len().min(128)]);
                line.extend_from_slice(b" cannot contain spaces, newlines or special characters.");
                return Outcome::reply(error_line(line));
            }
            *slot = (!args[3].is_empty()).then(|| args[3].clone());
            Outcome::reply(Reply::OK)
        }
        b"info" => Outcome::reply(Reply::Verbatim(client_line(ctx, "client|info"))),
        // Only this client: the command layer does not see the others.
        b"list" => Outcome::reply(Reply::Verbatim(client_line(ctx, "client|list"))),
        b"no-evict" | b"no-touch" => {
            if is(&args[2], "on") || is(&args[2], "off") {
                Outcome::reply(Reply::OK)
            } else {
                err(ERR_SYNTAX)
            }
        }
        _ => unreachable!("subcommands checked by execute"),
    }
}

fn os_line() -> &'static str {
    static OS: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    OS.get_or_init(|| {
        let read = |p: &str| {
            std::fs::read_to_string(p)
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        };
        format!(
            "{} {} {}",
            read("/proc/sys/kernel/ostype"),
            read("/proc/sys/kernel/osrelease"),
            std::env::consts::ARCH
        )
    })
}

fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if bytes < 1024 {
        format!("{bytes}B")
    } else if bytes < 1 << 20 {
        format!("{:.2}K", b / 1024.0)
    } else if bytes < 1 << 30 {
        format!("{:.2}M", b / (1u64 << 20) as f64)
    } else {
        format!("{:.2}G", b / (1u64 << 30) as f64)
    }
}

/// INFO's sections, in Redis's order.
const SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "keyspace",
];

fn info_section(ctx: &Ctx<'_>, name: &str, out: &mut String) {
    use std::fmt::Write;
    let srv = ctx.server;
    let now = ctx.now_ms;
    let pid = if srv.pid == 0 {
        std::process::id()
    } else {
        srv.pid
    };
    let uptime = now.saturating_sub(srv.started_ms) / 1000;
    let _ = match name {
        "server" => write!(
            out,
            "# Server\r\nredis_version:{REDIS_VERSION}\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\nredis_build_id:0\r\nredis_mode:standalone\r\nos:{}\r\narch_bits:64\r\nmultiplexing_api:epoll\r\nprocess_id:{pid}\r\nprocess_supervised:no\r\nrun_id:{:040x}\r\ntcp_port:{}\r\nserver_time_usec:{}\r\nuptime_in_seconds:{uptime}\r\nuptime_in_days:{}\r\nhz:10\r\nconfigured_hz:10\r\nexecutable:\r\nconfig_file:\r\nipckit_version:{}\r\n",
            os_line(),
            (pid as u128) << 64 | srv.started_ms as u128,
            srv.tcp_port,
            now * 1000,
            uptime / 86400,
            env!("CARGO_PKG_VERSION"),
        ),
        "clients" => write!(
            out,
            "# Clients\r\nconnected_clients:{}\r\ncluster_connections:0\r\nmaxclients:{}\r\nblocked_clients:0\r\ntracking_clients:0\r\nclients_in_timeout_table:0\r\n",
            srv.connected_clients, srv.maxclients
        ),
        "memory" => {
            let used = ctx.store.used_memory();
            write!(
                out,
                "# Memory\r\nused_memory:{used}\r\nused_memory_human:{}\r\nused_memory_peak:{used}\r\nused_memory_peak_human:{}\r\nmaxmemory:{}\r\nmaxmemory_human:{}\r\nmaxmemory_policy:noeviction\r\nmem_fragmentation_ratio:1.00\r\nmem_allocator:libc\r\n",
                human(used),
                human(used),
                srv.maxmemory,
                human(srv.maxmemory)
            )
        }
        "persistence" => write!(
            out,
            "# Persistence\r\nloading:0\r\nasync_loading:0\r\nrdb_changes_since_last_save:0\r\nrdb_bgsave_in_progress:0\r\nrdb_last_save_time:{}\r\nrdb_last_bgsave_status:ok\r\naof_enabled:{}\r\naof_rewrite_in_progress:0\r\naof_rewrite_scheduled:0\r\naof_last_write_status:ok\r\n",
            srv.started_ms / 1000,
            srv.appendonly as u8
        ),
        "stats" => write!(
            out,
            "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\ninstantaneous_ops_per_sec:0\r\nrejected_connections:0\r\nexpired_keys:0\r\nevicted_keys:0\r\nkeyspace_hits:0\r\nkeyspace_misses:0\r\n",
            srv.total_connections, srv.total_commands
        ),
        "replication" => write!(
            out,
            "# Replication\r\nrole:master\r\nconnected_slaves:0\r\n"
        ),
        "cpu" => write!(out, "# CPU\r\n"),
        _ => {
            out.push_str("# Keyspace\r\n");
            if !ctx.store.is_empty() {
                let _ = write!(
                    out,
                    "db0:keys={},expires={},avg_ttl=0\r\n",
                    ctx.store.len(),
                    ctx.store.volatile_len()
                );
            }
            Ok(())
        }
    };
}

fn info(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    let mut want: Vec<&str> = Vec::new();
    if args.len() == 1 {
        want.extend(SECTIONS);
    }
    for a in &args[1..] {
        if is(a, "all") || is(a, "default") || is(a, "everything") {
            want.extend(SECTIONS);
        } else if let Some(s) = SECTIONS.iter().find(|s| is(a, s)) {
            want.push(s);
        }
    }
    let mut out = String::new();
    for s in SECTIONS {
        if want.contains(s) {
            if !out.is_empty() {
                out.push_str("\r\n");
            }
            info_section(ctx, s, &mut out);
        }
    }
    Outcome::reply(Reply::Verbatim(out.into_bytes()))
}

/// CONFIG GET's parameters and their values now.
fn config_params(ctx: &Ctx<'_>) -> Vec<(&'static str, String)> {
    let s = ctx.server;
    vec![
        ("save", String::new()),
        ("appendonly", if s.appendonly { "yes" } else { "no" }.into()),
        (
            "appendfsync",
            if s.appendfsync.is_empty() {
                "everysec"
            } else {
                s.appendfsync
            }
            .into(),
        ),
        ("maxmemory", s.maxmemory.to_string()),
        ("maxmemory-policy", "noeviction".into()),
        ("maxclients", s.maxclients.to_string()),
        ("databases", "1".into()),
        ("port", s.tcp_port.to_string()),
        (
            "unixsocket",
            s.unix_sockets.first().cloned().unwrap_or_default(),
        ),
        (
            "requirepass",
            String::from_utf8_lossy(s.requirepass.as_deref().unwrap_or(b"")).into_owned(),
        ),
        ("timeout", "0".into()),
        ("tcp-keepalive", "300".into()),
        ("hz", "10".into()),
        (
            "proto-max-bulk-len",
            match s.proto_max_bulk_len {
                0 => 512u64 << 20,
                n => n,
            }
            .to_string(),
        ),
        (
            "client-output-buffer-limit",
            "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60".into(),
        ),
    ]
}

fn config(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    let sub = args[1].to_ascii_lowercase();
    match sub.as_slice() {
        b"get" => {
            let params = config_params(ctx);
            let mut pairs = Vec::new();
            for (name, value) in &params {
                // A name without glob characters comes back as the client spelled it.
                let Some(p) = args[2..]
                    .iter()
                    .find(|p| glob::matches(p, name.as_bytes(), true))
                else {
                    continue;
                };
                let literal = !p.iter().any(|c| b"*?[\\".contains(c));
                let shown = if literal {
                    p.clone()
                } else {
                    name.as_bytes().to_vec()
                };
                pairs.push((Reply::Bulk(shown), Reply::Bulk(value.clone().into_bytes())));
            }
            Outcome::reply(Reply::Map(pairs))
        }
        b"set" => {
            if !args.len().is_multiple_of(2) {
                return Outcome::reply(super::arity_error("config|set"));
            }
            let params = config_params(ctx);
            for pair in args[2..].chunks_exact(2) {
                let Some((name, value)) = params.iter().find(|(n, _)| is(&pair[0], n)) else {
                    let mut line =
                        b"ERR Unknown option or number of arguments for CONFIG SET - '".to_vec();
                    line.extend_from_slice(&pair[0][..pair[0].len().min(128)]);
                    line.push(b'\'');
                    return Outcome::reply(error_line(line));
                };
                if value.as_bytes() != pair[1].as_slice() {
                    return Outcome::reply(Reply::Error(
                        format!(
                            "ERR CONFIG SET failed (possibly related to argument '{name}') - ipckit kv takes its settings on the command line: restart it with the new value"
                        )
                        .into(),
                    ));
                }
            }
            Outcome::reply(Reply::OK)
        }
        b"resetstat" => Outcome::reply(Reply::OK),
        b"rewrite" => err("ERR The server is running without a config file"),
        _ => unreachable!("subcommands checked by execute"),
    }
}

/// The ACL categories in Redis's order (COMMAND lists them so).
const CATEGORIES: &[&str] = &[
    "@keyspace",
    "@read",
    "@write",
    "@set",
    "@sortedset",
    "@list",
    "@hash",
    "@string",
    "@admin",
    "@fast",
    "@slow",
    "@dangerous",
    "@connection",
    "@transaction",
];

fn status_set(items: impl IntoIterator<Item = &'static str>) -> Reply {
    Reply::Set(items.into_iter().map(Reply::status).collect())
}

fn bulk(s: &str) -> Reply {
    Reply::Bulk(s.as_bytes().to_vec())
}

fn categories(family: &'static str, flags: &[&str], name: &str) -> Reply {
    let has = |f: &str| flags.contains(&f);
    let dangerous = has("admin") || matches!(name, "keys" | "flushdb" | "flushall");
    let family = if family == "@connection"
        && (has("admin") || name == "info" || name == "config" || name == "command")
    {
        ""
    } else {
        family
    };
    status_set(CATEGORIES.iter().copied().filter(|c| match *c {
        "@read" => has("readonly"),
        "@write" => has("write"),
        "@admin" => has("admin"),
        "@fast" => has("fast"),
        "@slow" => !has("fast"),
        "@dangerous" => dangerous,
        c => c == family,
    }))
}

fn key_specs(spec: &Spec) -> Reply {
    let (first, last, step) = spec.keys;
    if first <= 0 {
        return Reply::Array(Vec::new());
    }
    let access = if spec.flags.contains(&"write") {
        ["RW", "update"]
    } else {
        ["RO", "access"]
    };
    let lastkey = if last < 0 { last } else { last - first };
    Reply::Array(vec![Reply::Map(vec![
        (bulk("flags"), status_set(access)),
        (
            bulk("begin_search"),
            Reply::Map(vec![
                (bulk("type"), bulk("index")),
                (
                    bulk("spec"),
                    Reply::Map(vec![(bulk("index"), Reply::Int(first as i64))]),
                ),
            ]),
        ),
        (
            bulk("find_keys"),
            Reply::Map(vec![
                (bulk("type"), bulk("range")),
                (
                    bulk("spec"),
                    Reply::Map(vec![
                        (bulk("lastkey"), Reply::Int(lastkey as i64)),
                        (bulk("keystep"), Reply::Int(step as i64)),
                        (bulk("limit"), Reply::Int(0)),
                    ]),
                ),
            ]),
        ),
    ])])
}

/// One COMMAND entry in Redis 7's form: name, arity, flags, first key, last key, step, ACL
/// categories, tips, key specs, subcommands.
fn command_entry(spec: &Spec, family: &'static str) -> Reply {
    let subs = subcommands(spec.name).unwrap_or(&[]);
    let sub_entries = subs
        .iter()
        .map(|s| {
            Reply::Array(vec![
                Reply::Bulk(format!("{}|{}", spec.name, s.name).into_bytes()),
                Reply::Int(s.arity as i64),
                status_set(s.flags.iter().copied()),
                Reply::Int(0),
                Reply::Int(0),
                Reply::Int(0),
                categories(family, s.flags, spec.name),
                Reply::Set(Vec::new()),
                Reply::Array(Vec::new()),
                Reply::Array(Vec::new()),
            ])
        })
        .collect();
    Reply::Array(vec![
        bulk(spec.name),
        Reply::Int(spec.arity as i64),
        status_set(spec.flags.iter().copied()),
        Reply::Int(spec.keys.0 as i64),
        Reply::Int(spec.keys.1 as i64),
        Reply::Int(spec.keys.2 as i64),
        categories(family, spec.flags, spec.name),
        Reply::Set(Vec::new()),
        key_specs(spec),
        Reply::Array(sub_entries),
    ])
}

fn command(_ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    let all = || {
        families()
            .into_iter()
            .flat_map(|(family, specs)| specs.iter().map(move |s| (family, s)))
    };
    if args.len() == 1 {
        return Outcome::reply(Reply::Array(
            all().map(|(f, s)| command_entry(s, f)).collect(),
        ));
    }
    let sub = args[1].to_ascii_lowercase();
    match sub.as_slice() {
        b"count" => Outcome::reply(Reply::Int(all().count() as i64)),
        b"list" => Outcome::reply(Reply::Array(all().map(|(_, s)| bulk(s.name)).collect())),
        b"info" => {
            if args.len() == 2 {
                return Outcome::reply(Reply::Array(
                    all().map(|(f, s)| command_entry(s, f)).collect(),
                ));
            }
            Outcome::reply(Reply::Array(
                args[2..]
                    .iter()
                    .map(|n| match find(n) {
                        Some(e) => command_entry(e.spec, e.category),
                        None => Reply::Nil,
                    })
                    .collect(),
            ))
        }
        // No documentation: redis-cli 7 accepts the empty map and shows no hints.
        b"docs" => Outcome::reply(Reply::Map(Vec::new())),
        _ => unreachable!("subcommands checked by execute"),
    }
}

fn shutdown(_ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    let mut save = true;
    for a in &args[1..] {
        if is(a, "nosave") {
            save = false;
        } else if is(a, "save") {
            save = true;
        } else if is(a, "now") || is(a, "force") {
        } else if is(a, "abort") {
            return err("ERR No shutdown in progress.");
        } else {
            return err(ERR_SYNTAX);
        }
    }
    Outcome {
        reply: Reply::OK,
        after: super::After::Shutdown { save },
        propagate: Vec::new(),
    }
}

fn time(ctx: &mut Ctx<'_>, _args: &[Vec<u8>]) -> Outcome {
    let us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(ctx.now_ms * 1000, |d| d.as_micros() as u64);
    Outcome::reply(Reply::Array(vec![
        Reply::Bulk((us / 1_000_000).to_string().into_bytes()),
        Reply::Bulk((us % 1_000_000).to_string().into_bytes()),
    ]))
}

fn lastsave(ctx: &mut Ctx<'_>, _args: &[Vec<u8>]) -> Outcome {
    Outcome::reply(Reply::Int((ctx.server.started_ms / 1000) as i64))
}
