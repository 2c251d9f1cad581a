//! `--fsync everysec`: a thread that `fdatasync`s the log at most once a second, when the
//! event loop has written to it since the last one, so the loop never waits for the disk.

use std::fs::File;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The shortest time between two syncs.
pub(crate) const PERIOD: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct Shared {
    /// The file to sync: the log, replaced after a rewrite.
    file: Mutex<Arc<File>>,
    /// Written to since the last sync started.
    dirty: AtomicBool,
    /// Asked to stop (after a last sync if dirty).
    stop: Mutex<bool>,
    wake: Condvar,
    /// The errno of the last sync, 0 when it succeeded.
    errno: AtomicI32,
    /// Syncs done (for INFO and the tests).
    syncs: Arc<AtomicU64>,
}

/// The background syncer. Dropping it stops the thread after a last sync of what was
/// written.
#[derive(Debug)]
pub(crate) struct Syncer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Syncer {
    pub(crate) fn start(file: Arc<File>, syncs: Arc<AtomicU64>) -> std::io::Result<Syncer> {
        let shared = Arc::new(Shared {
            file: Mutex::new(file),
            dirty: AtomicBool::new(false),
            stop: Mutex::new(false),
            wake: Condvar::new(),
            errno: AtomicI32::new(0),
            syncs,
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("kv-aof-fsync".into())
            .spawn(move || run(&s))?;
        Ok(Syncer {
            shared,
            thread: Some(thread),
        })
    }

    /// Called after each write: the thread syncs it within [`PERIOD`] of its last sync. Costs
    /// one atomic swap, and a lock and a wake-up only for the first write after a sync.
    pub(crate) fn written(&self) {
        if !self.shared.dirty.swap(true, Ordering::AcqRel) {
            let _held = self.shared.stop.lock().unwrap_or_else(|e| e.into_inner());
            self.shared.wake.notify_one();
        }
    }

    /// The errno of the last background sync, if it failed.
    pub(crate) fn failed(&self) -> Option<i32> {
        match self.shared.errno.load(Ordering::Acquire) {
            0 => None,
            e => Some(e),
        }
    }

    /// Syncs `file` from now on (the log after a rewrite swapped it in).
    pub(crate) fn replace_file(&self, file: Arc<File>) {
        *self.shared.file.lock().unwrap_or_else(|e| e.into_inner()) = file;
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        *self.shared.stop.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(s: &Shared) {
    let mut last: Option<Instant> = None;
    loop {
        {
            let mut stop = s.stop.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                let dirty = s.dirty.load(Ordering::Acquire);
                if *stop {
                    if !dirty {
                        return;
                    }
                    break;
                }
                if dirty {
                    // At most once a PERIOD.
                    let due = last.map(|l| l + PERIOD);
                    match due.map(|d| d.saturating_duration_since(Instant::now())) {
                        Some(left) if !left.is_zero() => {
                            stop = s
                                .wake
                                .wait_timeout(stop, left)
                                .unwrap_or_else(|e| e.into_inner())
                                .0;
                            continue;
                        }
                        _ => break,
                    }
                }
                stop = s.wake.wait(stop).unwrap_or_else(|e| e.into_inner());
            }
        }
        // What was written before this store is covered by the sync that follows; a write
        // after it sets `dirty` again.
        s.dirty.store(false, Ordering::SeqCst);
        let file = s.file.lock().unwrap_or_else(|e| e.into_inner()).clone();
        last = Some(Instant::now());
        let errno = match file.sync_data() {
            Ok(()) => 0,
            Err(e) => {
                // Tried again a PERIOD later, as Redis does: a later success clears it.
                s.dirty.store(true, Ordering::SeqCst);
                e.raw_os_error().unwrap_or(libc::EIO)
            }
        };
        s.errno.store(errno, Ordering::Release);
        s.syncs.fetch_add(1, Ordering::Release);
    }
}
