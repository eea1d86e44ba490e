//! Private working directories beside an output target: the staging
//! directory a run writes into, and the spill partitions of kept rows. Both
//! are `.NAME.KIND-PID`, mode 0700, removed when dropped, removed by the
//! signal watchdog, and removed by the next run when their process is gone.

use std::fs::DirBuilder;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The directory that holds the target, created when missing, and the
/// target's name.
pub fn beside(target: &Path) -> Result<(PathBuf, String)> {
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

/// A `.NAME.KIND-PID` directory beside `target`, owner-only, removed on drop.
pub struct PrivateDir {
    pub path: PathBuf,
}

impl PrivateDir {
    pub fn create(target: &Path, kind: &str) -> Result<PrivateDir> {
        let (parent, name) = beside(target)?;
        clean_stale(&parent, &name);
        let path = parent.join(format!(".{name}.{kind}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        DirBuilder::new().mode(0o700).create(&path).map_err(|e| Error::output(&path, format!("cannot create directory: {e}")))?;
        crate::signals::register_temp(&path);
        Ok(PrivateDir { path })
    }
}

impl PrivateDir {
    /// The directory is no longer the run's own (it was swapped with a
    /// previous output): neither this value nor the watchdog removes it.
    pub fn disarm(self) {
        crate::signals::unregister_temp(&self.path);
        std::mem::forget(self);
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
        crate::signals::unregister_temp(&self.path);
    }
}

/// The kinds of private directory a run makes.
const KINDS: [&str; 2] = ["tmp", "spill"];

/// Removes private directories left by killed runs (their pid is gone).
pub fn clean_stale(parent: &Path, name: &str) {
    let Ok(rd) = std::fs::read_dir(parent) else { return };
    for e in rd.flatten() {
        let fname = e.file_name().to_string_lossy().to_string();
        let Some(rest) = KINDS.iter().find_map(|k| fname.strip_prefix(&format!(".{name}.{k}-"))) else { continue };
        let pid = rest.split('.').next().and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|p| !Path::new(&format!("/proc/{p}")).exists()) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}
