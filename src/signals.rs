//! SIGTERM and SIGINT: a run stops within a second, removes its staging
//! directory, leaves the previous output whole and exits 143 or 130. The
//! handler only records the signal; the run checks it at stage boundaries
//! and in its loops, and a watchdog thread finishes the job (removes the
//! staging directory, exits) if the run has not stopped in time.
//!
//! SIGBUS: a mapped input file (plain CSV is read through `mmap`) was cut
//! short while the run read it. The faulting thread cannot go on; it parks,
//! and the watchdog removes the run's directories and exits as for an
//! input error, with one line.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Duration;

use crate::error::{Error, Result};

static SIGNAL: AtomicI32 = AtomicI32::new(0);
static BUS_ERROR: AtomicBool = AtomicBool::new(false);
/// Private directories of the run (staging, spill) the watchdog removes.
static TEMPS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

extern "C" fn on_signal(sig: libc::c_int) {
    // Async-signal-safe: one atomic store.
    SIGNAL.store(sig, Ordering::SeqCst);
}

extern "C" fn on_bus_error(_: libc::c_int) {
    // Async-signal-safe: an atomic store, then `pause` for ever (returning
    // would fault again). The watchdog ends the process.
    BUS_ERROR.store(true, Ordering::SeqCst);
    loop {
        // SAFETY: pause is async-signal-safe.
        unsafe { libc::pause() };
    }
}

/// Installs the handlers and the watchdog. Call once, from the `run` command.
pub fn install() {
    for (sig, handler) in [
        (libc::SIGTERM, on_signal as *const () as usize),
        (libc::SIGINT, on_signal as *const () as usize),
        (libc::SIGBUS, on_bus_error as *const () as usize),
    ] {
        // SAFETY: a zeroed sigaction with a handler that only stores an
        // atomic (and, for SIGBUS, parks the thread).
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = handler;
            libc::sigemptyset(&mut sa.sa_mask);
            sa.sa_flags = libc::SA_RESTART;
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
    std::thread::spawn(watchdog);
}

fn watchdog() {
    while SIGNAL.load(Ordering::SeqCst) == 0 && !BUS_ERROR.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(20));
    }
    if BUS_ERROR.load(Ordering::SeqCst) {
        remove_temps();
        eprintln!("claims-audit: an input file was cut short while it was read (bus error); the previous output is untouched");
        // SAFETY: ends the process at once; a thread is parked in the handler.
        unsafe { libc::_exit(crate::error::INPUT_EXIT) };
    }
    // The run stops at its next check and exits by itself; this is the backstop.
    std::thread::sleep(Duration::from_millis(700));
    let sig = SIGNAL.load(Ordering::SeqCst);
    remove_temps();
    eprintln!("claims-audit: stopped by signal {sig}; the previous output is untouched");
    // SAFETY: ends the process at once, as the signal's default action would.
    unsafe { libc::_exit(128 + sig) };
}

fn remove_temps() {
    if let Ok(g) = TEMPS.lock() {
        for dir in g.iter() {
            for _ in 0..3 {
                if std::fs::remove_dir_all(dir).is_ok() || !dir.exists() {
                    break;
                }
            }
        }
    }
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
