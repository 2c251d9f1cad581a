//! The loop's side of persistence and of the mirror: replay at start, the writes of each wake
//! appended (and flushed, and under `always` synced) before their replies go out, the rewrite
//! when the log has doubled, the mirror kept in step with the keys that changed.

use crate::aof::{Aof, AofOptions, Fsync, Recovered};
use crate::command::{Ctx, ServerInfo, Session, end_session, execute, expired_del};
use crate::resp::Reply;
use crate::shm::Mirror;
use crate::store::{Store, Value};
use ipckit::Result;

use super::{Config, now_ms};

/// The log's replay into the store: Redis's loading. Nothing expires while it runs (times
/// stay absolute, so a key whose time passed keeps it for the commands after), its replies are
/// dropped, and at the end what has expired is purged.
///
/// It runs with no `--maxmemory` and no `--requirepass` (the server's settings are for
/// clients: a write the log holds was acknowledged, and must come back whatever the limit is
/// now). A replayed command that replies with an error is counted: the log and the state
/// disagree there.
pub(crate) struct Replay<'a> {
    store: &'a mut Store,
    session: Session,
    info: ServerInfo,
    now: u64,
    commands: u64,
    errors: u64,
    /// The first refused command: its number in the log, its name, the error.
    first_error: Option<(u64, String, String)>,
}

/// Error replies in `reply` (EXEC's array holds one per queued command).
fn errors_in(reply: &Reply) -> u64 {
    match reply {
        Reply::Error(_) => 1,
        Reply::Array(v) => v.iter().map(errors_in).sum(),
        _ => 0,
    }
}

fn first_error_in(reply: &Reply) -> Option<String> {
    match reply {
        Reply::Error(e) => Some(e.to_string()),
        Reply::Array(v) => v.iter().find_map(first_error_in),
        _ => None,
    }
}

impl<'a> Replay<'a> {
    /// Puts `store` in loading mode; `now`: the clock the replay runs on.
    pub(crate) fn new(store: &'a mut Store, now: u64) -> Replay<'a> {
        // The log's own session: no password asked.
        let mut session = Session::new(0);
        session.authenticated = true;
        // Replayed commands need not build commands to log again.
        store.set_propagate(false);
        store.set_loading(true);
        Replay {
            store,
            session,
            info: ServerInfo::default(),
            now,
            commands: 0,
            errors: 0,
            first_error: None,
        }
    }

    /// Runs one command of the log.
    pub(crate) fn apply(&mut self, args: &[Vec<u8>]) {
        let mut ctx = Ctx {
            store: &mut *self.store,
            session: &mut self.session,
            now_ms: self.now,
            server: &self.info,
        };
        let out = execute(&mut ctx, args);
        self.commands += 1;
        let n = errors_in(&out.reply);
        if n > 0 {
            self.errors += n;
            if self.first_error.is_none() {
                let name = args
                    .first()
                    .map(|a| String::from_utf8_lossy(a).into_owned());
                self.first_error = Some((
                    self.commands,
                    name.unwrap_or_default(),
                    first_error_in(&out.reply).unwrap_or_default(),
                ));
            }
        }
    }

    /// Ends loading: the keys whose time has passed go. Returns how many replayed commands
    /// replied with an error, and a line saying which was the first.
    pub(crate) fn finish(mut self) -> (u64, Option<String>) {
        end_session(self.store, &mut self.session);
        self.store.set_loading(false);
        self.store.purge_expired(self.now);
        let _ = self.store.take_expired();
        let line = self.first_error.map(|(at, name, e)| {
            format!(
                "{} of the commands replayed from the log were refused (the first: command \
                 {at}, {name}: {e}): the log and the keyspace disagree there",
                self.errors
            )
        });
        (self.errors, line)
    }
}

/// The log and the mirror, each if configured.
pub(crate) struct Persist {
    aof: Option<Aof>,
    fsync: Fsync,
    recovered: Option<Recovered>,
    /// The writes of this wake, to append at its end.
    batch: Vec<Vec<Vec<u8>>>,
    min_rewrite: u64,
    snapshot: bool,
    mirror: Option<Mirror>,
    /// The last flush failed.
    failing: bool,
}

impl Persist {
    /// Replays the log into `store` (see [`Replay`]: not under `_info`'s maxmemory or
    /// password), then opens the log and the mirror.
    pub fn open(config: &Config, store: &mut Store, _info: &ServerInfo) -> Result<Persist> {
        let mut recovered = None;
        let aof = match &config.appendonly {
            Some(path) => {
                let opts = AofOptions {
                    fsync: config.fsync,
                    truncate_corrupt: config.aof_truncate_corrupt,
                };
                let mut replay = Replay::new(store, now_ms());
                let opened = Aof::open_with(path, &opts, &mut |args: &[Vec<u8>]| {
                    replay.apply(args);
                });
                let (errors, line) = replay.finish();
                let (aof, mut rec) = opened?;
                rec.replay_errors = errors;
                if let Some(line) = line
                    && config.log
                {
                    eprintln!("ipckit kv: warning: {}: {line}", path.display());
                }
                recovered = Some(rec);
                Some(aof)
            }
            None => None,
        };
        let mut mirror = match &config.shm {
            Some((name, opts)) => Some(Mirror::create(name, opts)?),
            None => None,
        };
        // Commands build their log records only when there is a log, and the store records
        // the keys that changed only for the mirror: both cost an allocation per write.
        store.set_propagate(aof.is_some());
        store.track_changes(mirror.is_some());
        // What the log rebuilt goes into the mirror whole (complete if every key fitted); the
        // change record starts empty.
        let _ = store.take_changed();
        if let Some(m) = &mut mirror {
            m.sync_all(store, now_ms());
        }
        Ok(Persist {
            failing: false,
            aof,
            fsync: config.fsync,
            recovered,
            batch: Vec::new(),
            min_rewrite: config.aof_rewrite_min_size,
            snapshot: config.snapshot,
            mirror,
        })
    }

    pub fn recovered(&self) -> Option<&Recovered> {
        self.recovered.as_ref()
    }

    /// A command's writes, to append at the end of the wake.
    #[inline]
    pub fn record(&mut self, propagate: Vec<Vec<Vec<u8>>>) {
        if self.aof.is_some() && !propagate.is_empty() {
            self.batch.extend(propagate);
        }
    }

    /// Under `--fsync always`, a failed flush must stop the server.
    pub fn must_stop_on_error(&self) -> bool {
        self.aof.is_some() && self.fsync == Fsync::Always
    }

    /// The end of a wake: append and flush the writes, then bring the mirror up to date (log
    /// first: a reader of the mirror never sees a write the log has not taken; when the flush
    /// fails, the mirror follows at the next wake whose flush works).
    pub fn after_batch(&mut self, store: &mut Store, now: u64) -> Result<()> {
        // Expiries not logged yet happened before this wake's writes (those of its commands
        // are in their own propagation already).
        if self.aof.is_some() && store.has_expired() {
            let dels: Vec<_> = store.take_expired().into_iter().map(expired_del).collect();
            self.batch.splice(0..0, dels);
        }
        if let Some(aof) = &mut self.aof
            && (!self.batch.is_empty() || self.failing || aof.needs_flush())
        {
            aof.append(&self.batch);
            self.batch.clear();
            // A failed flush keeps its bytes: tried again at every wake until one works.
            let flushed = aof.flush();
            self.failing = flushed.is_err();
            flushed?;
        }
        self.sync_mirror(store, now);
        // Keys the mirror's lookups expired go to the log before the next wake's writes.
        self.log_expired(store);
        Ok(())
    }

    /// Keys expiry removed (a lookup of the mirror's, active expiry) go to the log as DELs.
    fn log_expired(&mut self, store: &mut Store) {
        if self.aof.is_some() && store.has_expired() {
            self.batch
                .extend(store.take_expired().into_iter().map(expired_del));
        }
    }

    fn sync_mirror(&mut self, store: &mut Store, now: u64) {
        let Some(m) = &mut self.mirror else {
            return;
        };
        let changed = store.take_changed();
        if !changed.is_empty() {
            m.follow(store, &changed, now);
        }
        // A lookup in `follow` may have expired a key: that change is applied already.
        let _ = store.take_changed();
    }

    /// Ten times a second: keys expired by active expiry leave the mirror; the log's
    /// rewrite is finished or started.
    pub fn tick(&mut self, store: &mut Store, now: u64) -> Result<()> {
        self.sync_mirror(store, now);
        self.log_expired(store);
        let Some(aof) = &mut self.aof else {
            return Ok(());
        };
        if !self.batch.is_empty() {
            aof.append(&self.batch);
            self.batch.clear();
            aof.flush()?;
        }
        aof.poll_rewrite()?;
        let len = aof.len();
        if !aof.rewriting() && len >= self.min_rewrite && len >= aof.base_len().saturating_mul(2) {
            aof.start_rewrite(snapshot(store, now))?;
        }
        Ok(())
    }

    /// At the end: the last writes flushed; with `--snapshot`, unless `save` is false
    /// (SHUTDOWN NOSAVE), the log compacted too.
    pub fn finish(&mut self, store: &Store, save: bool, now: u64) -> Result<()> {
        let Some(aof) = &mut self.aof else {
            return Ok(());
        };
        if !self.batch.is_empty() {
            aof.append(&self.batch);
            self.batch.clear();
        }
        aof.flush()?;
        if save && self.snapshot {
            aof.snapshot(&snapshot(store, now))?;
        }
        Ok(())
    }
}

/// Commands that rebuild the keyspace as it is now: what a rewrite writes.
pub(crate) fn snapshot(store: &Store, now: u64) -> Vec<Vec<Vec<u8>>> {
    let mut out = Vec::with_capacity(store.len());
    for (k, v, exp) in store.entries(now) {
        let mut cmd: Vec<Vec<u8>> = match v {
            Value::Str(s) => vec![b"SET".to_vec(), k.clone(), s.clone()],
            Value::List(l) => {
                let mut c = vec![b"RPUSH".to_vec(), k.clone()];
                c.extend(l.iter().cloned());
                c
            }
            Value::Hash(h) => {
                let mut c = vec![b"HSET".to_vec(), k.clone()];
                for (f, v) in h {
                    c.push(f.clone());
                    c.push(v.clone());
                }
                c
            }
            Value::Set(s) => {
                let mut c = vec![b"SADD".to_vec(), k.clone()];
                c.extend(s.iter().cloned());
                c
            }
            Value::ZSet(z) => {
                let mut c = vec![b"ZADD".to_vec(), k.clone()];
                for (m, score) in z.iter() {
                    // Rust prints the shortest form that reads back the same, `inf` for
                    // infinity: what ZADD takes.
                    c.push(score.to_string().into_bytes());
                    c.push(m.to_vec());
                }
                c
            }
        };
        if let Some(t) = exp {
            if matches!(v, Value::Str(_)) {
                cmd.push(b"PXAT".to_vec());
                cmd.push(t.to_string().into_bytes());
                out.push(cmd);
            } else {
                out.push(cmd);
                out.push(vec![
                    b"PEXPIREAT".to_vec(),
                    k.clone(),
                    t.to_string().into_bytes(),
                ]);
            }
        } else {
            out.push(cmd);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(line: &str) -> Vec<Vec<u8>> {
        line.split(' ').map(|a| a.as_bytes().to_vec()).collect()
    }

    /// Runs `lines` as a client would at `now`, returning what they propagate.
    fn run(store: &mut Store, now: u64, lines: &[&str]) -> Vec<Vec<Vec<u8>>> {
        let info = ServerInfo::default();
        let mut session = Session::new(1);
        let mut out = Vec::new();
        for l in lines {
            let mut ctx = Ctx {
                store: &mut *store,
                session: &mut session,
                now_ms: now,
                server: &info,
            };
            out.extend(execute(&mut ctx, &cmd(l)).propagate);
        }
        out
    }

    fn replay(log: &[Vec<Vec<u8>>], now: u64) -> Store {
        let mut store = Store::new();
        let mut r = Replay::new(&mut store, now);
        for c in log {
            r.apply(c);
        }
        assert_eq!(r.finish(), (0, None), "no replayed command refused");
        store
    }

    fn value(store: &Store, key: &str, now: u64) -> Option<(Vec<u8>, Option<u64>)> {
        store.peek(key.as_bytes(), now).map(|(v, e)| match v {
            Value::Str(s) => (s.clone(), e),
            other => panic!("{other:?}"),
        })
    }

    #[test]
    fn replay_after_a_keys_time_never_brings_it_back_without_one() {
        // Written at 1000, each key to expire at 2000, then written again.
        let mut live = Store::new();
        let log = run(
            &mut live,
            1_000,
            &[
                "INCR k",
                "PEXPIREAT k 2000",
                "INCRBY k 1",
                "SET s 1 PXAT 2000",
                "APPEND s x",
                "SET g 1",
                "GETEX g PXAT 2000",
                "INCR g",
            ],
        );
        // Replayed before the time: every key there with its time to live.
        let before = replay(&log, 1_500);
        assert_eq!(
            value(&before, "k", 1_500),
            Some((b"2".to_vec(), Some(2_000)))
        );
        assert_eq!(
            value(&before, "s", 1_500),
            Some((b"1x".to_vec(), Some(2_000)))
        );
        assert_eq!(
            value(&before, "g", 1_500),
            Some((b"2".to_vec(), Some(2_000)))
        );
        // Replayed after it (a restart later): gone, not brought back immortal.
        let after = replay(&log, 5_000);
        for k in ["k", "s", "g"] {
            assert_eq!(value(&after, k, 5_000), None, "{k} came back");
        }
        assert_eq!(after.len(), 0);
        assert!(!after.loading());
    }

    #[test]
    fn an_expiry_goes_to_the_log_as_a_del() {
        let mut live = Store::new();
        let mut log = run(
            &mut live,
            1_000,
            &["SET k 1 PXAT 2000", "SET a 1 PXAT 2000"],
        );
        // After its time, k expires when looked up and is made again, without a time.
        log.extend(run(&mut live, 3_000, &["INCR k"]));
        assert_eq!(log[2], cmd("DEL k"));
        // a goes by active expiry.
        assert_eq!(live.active_expire(3_000, 20), 1);
        assert_eq!(live.take_expired(), vec![b"a".to_vec()]);
        let back = replay(&log, 4_000);
        assert_eq!(value(&back, "k", 4_000), Some((b"1".to_vec(), None)));
    }

    #[test]
    fn active_expiry_is_logged_by_the_tick() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("appendonly.aof");
        let config = Config {
            appendonly: Some(path.clone()),
            fsync: Fsync::Always,
            ..Config::default()
        };
        let mut store = Store::new();
        let info = ServerInfo::default();
        let mut persist = Persist::open(&config, &mut store, &info).unwrap();
        let log = run(&mut store, 1_000, &["SET a 1 PXAT 2000", "SET b 1"]);
        persist.record(log);
        persist.after_batch(&mut store, 1_000).unwrap();
        assert_eq!(store.active_expire(3_000, 20), 1);
        persist.tick(&mut store, 3_000).unwrap();
        let mut seen = Vec::new();
        crate::aof::replay(&path, &mut |c| seen.push(c.to_vec())).unwrap();
        assert_eq!(seen.last(), Some(&cmd("DEL a")), "{seen:?}");
        drop(persist);
        // A later write of a without a time survives a replay before the old time.
        let mut seen2 = seen.clone();
        seen2.push(cmd("APPEND a x"));
        let back = replay(&seen2, 1_500);
        assert_eq!(value(&back, "a", 1_500), Some((b"x".to_vec(), None)));
    }

    #[test]
    fn writes_after_a_transaction_torn_off_are_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("appendonly.aof");
        let mut bytes = Vec::new();
        for c in ["SET a 1", "MULTI", "SET b 2", "INCR a"] {
            crate::aof::encode(&cmd(c), &mut bytes);
        }
        std::fs::write(&path, &bytes).unwrap();
        let config = Config {
            appendonly: Some(path.clone()),
            fsync: Fsync::Always,
            ..Config::default()
        };
        let info = ServerInfo::default();
        for round in 0..2 {
            let mut store = Store::new();
            let mut persist = Persist::open(&config, &mut store, &info).unwrap();
            assert_eq!(value(&store, "a", 0), Some((b"1".to_vec(), None)));
            assert_eq!(value(&store, "b", 0), None);
            if round == 1 {
                assert_eq!(value(&store, "c", 0), Some((b"3".to_vec(), None)));
                break;
            }
            let log = run(&mut store, 1_000, &["SET c 3"]);
            persist.record(log);
            persist.after_batch(&mut store, 1_000).unwrap();
        }
    }

    #[test]
    fn replay_ignores_maxmemory_and_requirepass_and_counts_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("appendonly.aof");
        let mut bytes = Vec::new();
        let mut log = vec!["SET a 1".to_string()];
        for i in 0..50 {
            log.push(format!("RPUSH l{i} x y z"));
        }
        log.extend(["MULTI", "SET b 2", "SET c 3", "EXEC", "SET d 4"].map(String::from));
        for c in &log {
            crate::aof::encode(&cmd(c), &mut bytes);
        }
        std::fs::write(&path, &bytes).unwrap();
        let config = Config {
            appendonly: Some(path.clone()),
            fsync: Fsync::Always,
            ..Config::default()
        };
        let info = ServerInfo {
            maxmemory: 64,
            requirepass: Some(b"secret".to_vec()),
            ..ServerInfo::default()
        };
        let mut store = Store::new();
        let persist = Persist::open(&config, &mut store, &info).unwrap();
        assert_eq!(store.len(), 54, "every acknowledged write is back");
        assert_eq!(value(&store, "d", 0), Some((b"4".to_vec(), None)));
        assert_eq!(persist.recovered().unwrap().replay_errors, 0);
        drop(persist);

        // A command the log holds that is refused is counted, not dropped silently.
        let mut store = Store::new();
        let mut r = Replay::new(&mut store, 0);
        r.apply(&cmd("SET k v"));
        r.apply(&cmd("INCR k"));
        r.apply(&cmd("MULTI"));
        r.apply(&cmd("LPUSH k x"));
        r.apply(&cmd("EXEC"));
        let (errors, line) = r.finish();
        assert_eq!(errors, 2);
        let line = line.unwrap();
        assert!(line.contains("command 2, INCR"), "{line}");
    }
}
