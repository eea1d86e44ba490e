//! Atomic output: everything is written into a private temporary directory
//! beside the target, `_SUCCESS` last, then swapped into place. One run at a
//! time per target: an exclusive lock on a file beside it.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

pub struct Staging {
    pub dir: PathBuf,
    target: PathBuf,
}

/// The directory that holds the target, created when missing, and the
/// target's name.
fn parent_and_name(target: &Path) -> Result<(PathBuf, String)> {
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&parent)
            .map_err(|e| Error::output(&parent, format!("cannot create output parent directory: {e}")))?;
    }
    let name = target.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "out".into());
    Ok((parent, name))
}

/// An exclusive lock on `.NAME.lock` beside the target, held for the whole
/// run. The kernel drops it with the process, so kill -9 leaves no stale lock.
pub struct OutputLock {
    _file: File,
}

impl OutputLock {
    pub fn acquire(target: &Path) -> Result<OutputLock> {
        let (parent, name) = parent_and_name(target)?;
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
        let (parent, name) = parent_and_name(target)?;
        clean_stale(&parent, &name);
        let dir = parent.join(format!(".{name}.tmp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        DirBuilder::new().mode(0o700).create(&dir).map_err(|e| Error::output(&dir, format!("cannot create output directory: {e}")))?;
        crate::signals::set_staging(Some(dir.clone()));
        Ok(Staging { dir, target: target.to_path_buf() })
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

impl Drop for Staging {
    fn drop(&mut self) {
        // On failure the half-written directory goes; after commit it is gone already.
        let _ = std::fs::remove_dir_all(&self.dir);
        crate::signals::set_staging(None);
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

/// Removes temporary directories left by killed runs (their pid is gone).
fn clean_stale(parent: &Path, name: &str) {
    let prefix = format!(".{name}.tmp-");
    let Ok(rd) = std::fs::read_dir(parent) else { return };
    for e in rd.flatten() {
        let fname = e.file_name().to_string_lossy().to_string();
        let Some(rest) = fname.strip_prefix(&prefix) else { continue };
        let pid = rest.split('.').next().and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|p| !Path::new(&format!("/proc/{p}")).exists()) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}
