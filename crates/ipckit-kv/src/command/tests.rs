//! Unit tests of the command layer: each family's edge cases, replies as Redis words them.

use super::*;

pub(super) struct T {
    pub store: Store,
    pub session: Session,
    /// A second client, for WATCH.
    pub other: Session,
    pub server: ServerInfo,
    pub now: u64,
}

impl T {
    pub fn new() -> T {
        T {
            store: Store::new(),
            session: Session::new(7),
            other: Session::new(8),
            server: ServerInfo::default(),
            now: 1_700_000_000_000,
        }
    }

    pub fn run(&mut self, line: &str) -> Outcome {
        self.run_as(false, line)
    }

    /// Runs `line` as the second client.
    pub fn run_other(&mut self, line: &str) -> Outcome {
        self.run_as(true, line)
    }

    fn run_as(&mut self, other: bool, line: &str) -> Outcome {
        let wire = format!("{line}\r\n");
        let args =
            match crate::resp::parse_request(wire.as_bytes(), &crate::resp::Limits::default()) {
                crate::resp::Parse::Request { args, .. } => args,
                other => panic!("{line}: {other:?}"),
            };
        let mut ctx = Ctx {
            store: &mut self.store,
            session: if other {
                &mut self.other
            } else {
                &mut self.session
            },
            now_ms: self.now,
            server: &self.server,
        };
        execute(&mut ctx, &args)
    }

    /// The reply as RESP2 bytes, as text.
    pub fn r2(&mut self, line: &str) -> String {
        let mut out = Vec::new();
        self.run(line).reply.encode(Protocol::Resp2, &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// What `line` propagates, each command's arguments joined by spaces.
    pub fn prop(&mut self, line: &str) -> Vec<String> {
        self.run(line)
            .propagate
            .iter()
            .map(|c| {
                c.iter()
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }

    /// Moves the clock on.
    pub fn advance(&mut self, ms: u64) {
        self.now += ms;
    }

    /// Runs `line` when its reply is not the point.
    pub fn quiet(&mut self, line: &str) {
        self.run(line);
    }

    /// The reply as RESP3 bytes, as text.
    pub fn r3(&mut self, line: &str) -> String {
        let mut out = Vec::new();
        let was = std::mem::replace(&mut self.session.proto, Protocol::Resp3);
        let reply = self.run(line).reply;
        if self.session.proto == Protocol::Resp3 {
            self.session.proto = was;
        }
        reply.encode(Protocol::Resp3, &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

mod keys;
mod server;
mod strings;
mod tx;
mod types;
