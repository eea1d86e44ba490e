//! Atomic output: everything is written into a private temporary directory
//! beside the target, `_SUCCESS` last, then swapped into place. One run at a
//! time per target: an exclusive lock on a file beside it, removed when the
//! run ends. The swap replaces only what `target::inspect` allows, and
//! deletes the previous output file by file, never a whole tree.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::target::{Target, inspect, remove_own};
use crate::error::{Error, Result};
use crate::scratch::{PrivateDir, beside};

pub struct Staging {
    pub dir: PathBuf,
    target: PathBuf,
    /// Removes the directory on failure; after commit it is gone already.
    /// None once the directory is no longer the run's to remove.
    private: Option<PrivateDir>,
}

/// An exclusive lock on `.NAME.lock` beside the target, held for the whole
/// run. The kernel drops it with the process, so kill -9 leaves no stale
/// lock; the file itself is removed when the run ends (nightly runs into
/// dated directories would otherwise leave one per night).
pub struct OutputLock {
    file: File,
    path: PathBuf,
}

impl OutputLock {
    pub fn acquire(target: &Path) -> Result<OutputLock> {
        let (parent, name) = beside(target)?;
        let path = parent.join(format!(".{name}.lock"));
        // A run that ends removes the file while it holds the lock, so a
        // lock taken on a file that is no longer at the path is taken again.
        for _ in 0..8 {
            let lock = OutputLock::try_once(target, &path)?;
            if lock.still_at_path() {
                return Ok(lock);
            }
        }
        Err(Error::Busy(format!("{}: other runs keep replacing its lock file; try again later", target.display())))
    }

    fn try_once(target: &Path, path: &Path) -> Result<OutputLock> {
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|e| Error::output(path, format!("cannot create lock file: {e}")))?;
        // SAFETY: flock on a descriptor this function owns.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                let holder = std::fs::read_to_string(path).ok().and_then(|s| s.trim().parse::<u32>().ok());
                let who = holder.map_or("another run".to_string(), |p| format!("another run (pid {p})"));
                return Err(Error::Busy(format!("{}: {who} is writing this output directory; try again when it ends", target.display())));
            }
            return Err(Error::output(path, format!("cannot lock: {err}")));
        }
        let _ = f.set_len(0).and_then(|_| writeln!(f, "{}", std::process::id()));
        Ok(OutputLock { file: f, path: path.to_path_buf() })
    }

    /// Whether the locked file is still the one at the path.
    fn still_at_path(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        match (self.file.metadata(), std::fs::metadata(&self.path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
}

impl Drop for OutputLock {
    fn drop(&mut self) {
        // Still locked here: a run that opened the file meanwhile finds it
        // gone from the path once it gets the lock, and takes it again.
        if self.still_at_path() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Staging {
    pub fn new(target: &Path) -> Result<Staging> {
        let private = PrivateDir::create(target, "tmp")?;
        Ok(Staging { dir: private.path.clone(), target: target.to_path_buf(), private: Some(private) })
    }

    /// Creates a file readable by the owner only.
    pub fn create(&self, name: &str) -> Result<File> {
        let p = self.dir.join(name);
        OpenOptions::new().write(true).create_new(true).mode(0o600).open(&p).map_err(|e| Error::output(&p, format!("cannot create: {e}")))
    }

    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let p = self.dir.join(name);
        let mut f = self.create(name)?;
        f.write_all(bytes).and_then(|_| f.sync_all()).map_err(|e| Error::output(&p, format!("write failed: {e}")))
    }

    /// Writes `_SUCCESS` and moves the directory into place. An existing
    /// target, checked again now (something may have been put there while
    /// the run read), is swapped out atomically and then removed file by file.
    pub fn commit(mut self) -> Result<()> {
        self.write("_SUCCESS", b"")?;
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        let names = match inspect(&self.target)? {
            Target::Absent => {
                return std::fs::rename(&self.dir, &self.target)
                    .map_err(|e| Error::output(&self.target, format!("cannot move output into place: {e}")));
            }
            Target::Replaceable(names) => names,
        };
        let old = if exchange(&self.dir, &self.target).is_ok() {
            self.dir.clone()
        } else {
            // No atomic exchange on this filesystem: move the old run aside first.
            let aside = self.dir.with_extension("old");
            std::fs::rename(&self.target, &aside)
                .map_err(|e| Error::output(&self.target, format!("cannot replace previous output: {e}")))?;
            if let Err(e) = std::fs::rename(&self.dir, &self.target) {
                let _ = std::fs::rename(&aside, &self.target);
                return Err(Error::output(&self.target, format!("cannot move output into place: {e}")));
            }
            aside
        };
        // From here the staging path may hold the previous output: it is
        // removed only as far as `remove_own` allows, never as a tree.
        if let Some(p) = self.private.take() {
            p.disarm();
        }
        if let Err(e) = remove_own(&old, &names) {
            // Something appeared in it after the check: keep it where a
            // person sees it (the next run's clean-up removes `.NAME.tmp-*`).
            let kept = self.target.with_file_name(format!("{}.previous-{}", beside(&self.target)?.1, std::process::id()));
            let at = if std::fs::rename(&old, &kept).is_ok() { kept } else { old };
            eprintln!("claims-audit: warning: the previous output could not be removed ({e}); it is kept in {}", at.display());
        }
        Ok(())
    }
}

fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let ca = CString::new(a.as_os_str().as_bytes())?;
    let cb = CString::new(b.as_os_str().as_bytes())?;
    // SAFETY: both are valid NUL-terminated paths; renameat2 does not keep them.
    let rc = unsafe { libc::renameat2(libc::AT_FDCWD, ca.as_ptr(), libc::AT_FDCWD, cb.as_ptr(), libc::RENAME_EXCHANGE) };
    if rc == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}
