//! Unit tests of the command layer: each family's edge cases, replies as Redis words them.

use super::*;

pub(super) struct T {
    pub store: Store,
    pub session: Session,
    pub server: ServerInfo,
    pub now: u64,
}

impl T {
    pub fn new() -> T {
        T {
            store: Store::new(),
            session: Session::new(7),
            server: ServerInfo::default(),
            now: 1_700_000_000_000,
        }
    }

    pub fn run(&mut self, line: &str) -> Outcome {
        let wire = format!("{line}\r\n");
        let args =
            match crate::resp::parse_request(wire.as_bytes(), &crate::resp::Limits::default()) {
                crate::resp::Parse::Request { args, .. } => args,
                other => panic!("{line}: {other:?}"),
            };
        let mut ctx = Ctx {
            store: &mut self.store,
            session: &mut self.session,
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

    /// The reply as RESP3 bytes, as text.
    #[allow(dead_code)]
    pub fn r3(&mut self, line: &str) -> String {
        let mut out = Vec::new();
        self.run(line).reply.encode(Protocol::Resp3, &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

mod strings;
