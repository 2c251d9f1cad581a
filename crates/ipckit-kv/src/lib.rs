//! `ipckit kv`: a Redis-compatible key-value server over Unix sockets (and loopback TCP), with
//! a shared-memory read path local readers use without a system call per GET.
//!
//! It speaks RESP2 and RESP3 (`HELLO 2|3`), inline commands and pipelining, so redis-cli,
//! redis-py and redis-benchmark work unmodified, and it can be measured against redis-server
//! itself (`ipckit bench kv`). When a user outgrows one host, the same clients point at Redis.
//!
//! | part | module |
//! |---|---|
//! | the wire protocol: requests in, replies out, with limits | [`resp`] |
//! | the keyspace: values, expiry, memory accounting, change tracking | [`store`] |
//! | the commands: one table, one `execute` | [`command`] |
//! | the event loop: listeners, clients, buffers and their limits | [`server`] |
//! | persistence: the append-only log, its rewrite, the snapshot | [`aof`] |
//! | the shared-memory mirror and its readers | [`shm`] |
//! | a small blocking client (tests, the bench) | [`client`] |
//!
//! # Threading model
//! One event loop thread runs every command, as Redis does (epoll through rustix: the loop
//! needs readiness on a few hundred descriptors and nothing of async, so it takes no runtime
//! and no new dependency). On these two-core machines the other core runs the clients (or
//! redis-benchmark): a second command thread would compete with them for the same two CPUs,
//! and would put a lock on every key access. Dragonfly and KeyDB gain with threads on many
//! cores; with two, one loop that never blocks on a client is the faster design. The log's
//! rewrite and its `everysec` fsync run on threads of their own; under `--fsync always` the
//! fsync is on the loop, once per wake for every client of that wake (group commit), as it
//! must be before any of their replies go. After a wake with work the loop polls for 30 µs
//! (yielding the CPU) before it sleeps, which is what `-P 1` gains from: see [`server`].
//!
//! # Example
//! ```
//! use ipckit_kv::command::{execute, Ctx, Session};
//! use ipckit_kv::resp::{Protocol, Reply};
//! use ipckit_kv::store::Store;
//!
//! let mut store = Store::new();
//! let mut session = Session::new(1);
//! let mut run = |args: &[&str]| {
//!     let args: Vec<Vec<u8>> = args.iter().map(|a| a.as_bytes().to_vec()).collect();
//!     let mut ctx = Ctx::new(&mut store, &mut session, 1_700_000_000_000);
//!     execute(&mut ctx, &args).reply
//! };
//! assert_eq!(run(&["PING"]), Reply::status("PONG"));
//! let mut wire = Vec::new();
//! run(&["PING"]).encode(Protocol::Resp2, &mut wire);
//! assert_eq!(wire, b"+PONG\r\n");
//! ```

pub mod aof;
pub mod client;
pub mod command;
pub mod resp;
pub mod server;
pub mod shm;
pub mod store;
