//! The loop's side of persistence and of the mirror: replay at start, the writes of each wake
//! appended (and flushed, and under `always` synced) before their replies go out, the rewrite
//! when the log has doubled, the mirror kept in step with the keys that changed.

use crate::aof::{Aof, AofOptions, Fsync, Recovered};
use crate::command::{Ctx, ServerInfo, Session, execute};
use crate::shm::Mirror;
use crate::store::{Store, Value};
use ipckit::Result;

use super::{Config, now_ms};

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
    pub fn open(config: &Config, store: &mut Store, info: &ServerInfo) -> Result<Persist> {
        let mut recovered = None;
        let aof = match &config.appendonly {
            Some(path) => {
                // The log's own session: replies are dropped, no password asked.
                let mut session = Session::new(0);
                session.authenticated = true;
                let now = now_ms();
                // Replayed commands need not build commands to log again.
                store.set_propagate(false);
                let opts = AofOptions {
                    fsync: config.fsync,
                    truncate_corrupt: config.aof_truncate_corrupt,
                };
                let (aof, rec) = Aof::open_with(path, &opts, &mut |args: &[Vec<u8>]| {
                    let mut ctx = Ctx {
                        store: &mut *store,
                        session: &mut session,
                        now_ms: now,
                        server: info,
                    };
                    let _ = execute(&mut ctx, args);
                })?;
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
        if let Some(aof) = &mut self.aof
            && (!self.batch.is_empty() || self.failing)
        {
            aof.append(&self.batch);
            self.batch.clear();
            // A failed flush keeps its bytes: tried again at every wake until one works.
            let flushed = aof.flush();
            self.failing = flushed.is_err();
            flushed?;
        }
        self.sync_mirror(store, now);
        Ok(())
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
        let Some(aof) = &mut self.aof else {
            return Ok(());
        };
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
