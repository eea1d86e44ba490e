//! Atomic output: everything is written into a private temporary directory
//! beside the target, `_SUCCESS` last, then swapped into place. One run at a
//! time per target: an exclusive lock on a file beside it.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::scratch::{PrivateDir, beside};

pub struct Staging {
    pub dir: PathBuf,
    target: PathBuf,
    /// Removes the directory on failure; after commit it is gone already.
    _private: PrivateDir,
}

/// An exclusive lock on `.NAME.lock` beside the target, held for the whole
/// run. The kernel drops it with the process, so kill -9 leaves no stale lock.
pub struct OutputLock {
    _file: File,
}

impl OutputLock {
    pub fn acquire(target: &Path) -> Result<OutputLock> {
        let (parent, name) = beside(target)?;
        let path = parent.join(format!(".{name}.lock"));
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|e| Error::output(&path, format!("cannot create lock file: {e}")))?;
        // SAFETY: flock on a descriptor this function owns.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                let holder = std::fs::read_to_string(&path).ok().and_then(|s| s.trim().parse::<u32>().ok());
                let who = holder.map_or("another run".to_string(), |p| format!("another run (pid {p})"));
                return Err(Error::Busy(format!("{}: {who} is writing this output directory; try again when it ends", target.display())));
            }
            return Err(Error::output(&path, format!("cannot lock: {err}")));
        }
        let _ = f.set_len(0).and_then(|_| writeln!(f, "{}", std::process::id()));
        Ok(OutputLock { _file: f })
    }
}

impl Staging {
    pub fn new(target: &Path) -> Result<Staging> {
        let private = PrivateDir::create(target, "tmp")?;
        Ok(Staging { dir: private.path.clone(), target: target.to_path_buf(), _private: private })
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
    /// target is swapped out atomically and then removed.
    pub fn commit(self) -> Result<()> {
        self.write("_SUCCESS", b"")?;
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        if self.target.exists() {
            if exchange(&self.dir, &self.target).is_ok() {
                let _ = std::fs::remove_dir_all(&self.dir);
                return Ok(());
            }
            // No atomic exchange on this filesystem: move the old run aside first.
            let aside = self.dir.with_extension("old");
            std::fs::rename(&self.target, &aside)
                .map_err(|e| Error::output(&self.target, format!("cannot replace previous output: {e}")))?;
            std::fs::rename(&self.dir, &self.target)
                .map_err(|e| Error::output(&self.target, format!("cannot move output into place: {e}")))?;
            let _ = std::fs::remove_dir_all(&aside);
            return Ok(());
        }
        std::fs::rename(&self.dir, &self.target).map_err(|e| Error::output(&self.target, format!("cannot move output into place: {e}")))
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
