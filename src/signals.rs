//! SIGTERM and SIGINT: a run stops within a second, removes its staging
//! directory, leaves the previous output whole and exits 143 or 130. The
//! handler only records the signal; the run checks it at stage boundaries
//! and in its loops, and a watchdog thread finishes the job (removes the
//! staging directory, exits) if the run has not stopped in time.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use crate::error::{Error, Result};

static SIGNAL: AtomicI32 = AtomicI32::new(0);
/// Private directories of the run (staging, spill) the watchdog removes.
static TEMPS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

extern "C" fn on_signal(sig: libc::c_int) {
    // Async-signal-safe: one atomic store.
    SIGNAL.store(sig, Ordering::SeqCst);
}

/// Installs the handlers and the watchdog. Call once, from the `run` command.
pub fn install() {
    for sig in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: a zeroed sigaction with a handler that only stores an atomic.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            sa.sa_flags = libc::SA_RESTART;
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
    std::thread::spawn(watchdog);
}

fn watchdog() {
    while SIGNAL.load(Ordering::SeqCst) == 0 {
        std::thread::sleep(Duration::from_millis(20));
    }
    // The run stops at its next check and exits by itself; this is the backstop.
    std::thread::sleep(Duration::from_millis(700));
    let sig = SIGNAL.load(Ordering::SeqCst);
    if let Ok(g) = TEMPS.lock() {
        for dir in g.iter() {
            for _ in 0..3 {
                if std::fs::remove_dir_all(dir).is_ok() || !dir.exists() {
                    break;
                }
            }
        }
    }
    eprintln!("claims-audit: stopped by signal {sig}; the previous output is untouched");
    // SAFETY: ends the process at once, as the signal's default action would.
    unsafe { libc::_exit(128 + sig) };
}

/// The signal that asked the run to stop, if any.
pub fn interrupted() -> Option<i32> {
    match SIGNAL.load(Ordering::Relaxed) {
        0 => None,
        s => Some(s),
    }
}

/// `Err(Interrupted)` once a stop was asked for.
pub fn check() -> Result<()> {
    match interrupted() {
        Some(s) => Err(Error::Interrupted(s)),
        None => Ok(()),
    }
}

/// A private directory the watchdog removes if it has to end the run.
pub fn register_temp(dir: &Path) {
    if let Ok(mut g) = TEMPS.lock() {
        g.push(dir.to_path_buf());
    }
}

/// The directory is gone (or committed): nothing for the watchdog to remove.
pub fn unregister_temp(dir: &Path) {
    if let Ok(mut g) = TEMPS.lock() {
        g.retain(|d| d != dir);
    }
}
