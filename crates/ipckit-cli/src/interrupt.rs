//! Ctrl-C, SIGTERM and SIGHUP for the long-running commands (bench, lab): the first one asks
//! the work to stop at the next clean point, so every object in use is removed; a second one
//! ends the process at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Catches the stop signals from here on.
pub struct Interrupt {
    flag: Arc<AtomicBool>,
    caught: Arc<Mutex<Option<i32>>>,
}

impl Interrupt {
    /// Blocks SIGINT, SIGTERM and SIGHUP in this thread (call it before any other thread
    /// starts, so every thread inherits the mask; child processes get a clean mask from std)
    /// and reads them on a signalfd thread, which sets `flag`. A signal already ignored
    /// (nohup, a background job) stays ignored.
    pub fn catch(flag: Arc<AtomicBool>) -> anyhow::Result<Interrupt> {
        let signals: Vec<i32> = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP]
            .into_iter()
            .filter(|&s| !ignored(s))
            .collect();
        let caught = Arc::new(Mutex::new(None));
        if !signals.is_empty() {
            let sfd = ipckit::notify::signal::SignalFd::new(&signals)?;
            let raised = flag.clone();
            let caught_by = caught.clone();
            std::thread::spawn(move || {
                while let Ok(info) = sfd.read() {
                    if raised.swap(true, Ordering::SeqCst) {
                        eprintln!(
                            "ipckit: {} again: stopping at once",
                            ipckit::notify::signal::name(info.signo)
                        );
                        std::process::exit(1);
                    }
                    if let Ok(mut c) = caught_by.lock() {
                        *c = Some(info.signo);
                    }
                }
            });
        }
        Ok(Interrupt { flag, caught })
    }

    /// The signal that asked to stop, if one did.
    pub fn caught(&self) -> Option<i32> {
        if !self.flag.load(Ordering::SeqCst) {
            return None;
        }
        Some(
            self.caught
                .lock()
                .ok()
                .and_then(|c| *c)
                .unwrap_or(libc::SIGINT),
        )
    }
}

/// Whether `sig` is set to be ignored (by nohup, or a shell for a background job).
fn ignored(sig: i32) -> bool {
    // SAFETY: a null new action only reads the current one into `old`.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(sig, std::ptr::null(), &mut old) == 0 && old.sa_sigaction == libc::SIG_IGN
    }
}
