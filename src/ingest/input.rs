//! What to read: inputs (files, directories, globs) expanded into files,
//! each with its format.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    #[serde(rename = "csv.gz")]
    CsvGz,
    Parquet,
    /// A table handed over in memory (Python, Spark).
    Arrow,
}

#[derive(Debug, Clone)]
pub struct InputFile {
    pub path: PathBuf,
    pub format: Format,
    pub bytes: u64,
    /// Modification time when the run found the file.
    pub mtime: Option<std::time::SystemTime>,
}

impl InputFile {
    /// Fails when the file's size or modification time is no longer what it
    /// was when the run found it: an extract still being written (or
    /// replaced) must not be audited half-read.
    pub fn check_unchanged(&self) -> Result<()> {
        let meta = std::fs::metadata(&self.path).map_err(|e| Error::input(&self.path, format!("cannot stat after reading: {e}")))?;
        let (bytes, mtime) = (meta.len(), meta.modified().ok());
        if bytes != self.bytes || mtime != self.mtime {
            return Err(Error::input(
                &self.path,
                format!(
                    "changed while it was read ({} bytes then {bytes} bytes{}); re-run once the extract is complete",
                    self.bytes,
                    if mtime != self.mtime { ", modification time changed" } else { "" }
                ),
            ));
        }
        Ok(())
    }
}

/// Expands files, directories (searched recursively, see `walk_dir`) and
/// globs into a de-duplicated list: inputs in the order given, each
/// directory's and glob's files in path order, so the file order (and with
/// it which copy of a twice-delivered row is kept) is the same every run.
pub fn expand_inputs(inputs: &[String]) -> Result<Vec<InputFile>> {
    let mut paths: Vec<PathBuf> = Vec::new();
    for raw in inputs {
        let p = Path::new(raw);
        if p.is_dir() {
            let mut found = Vec::new();
            let mut visited = std::collections::HashSet::new();
            walk_dir(p, &mut found, &mut visited)?;
            if found.is_empty() {
                return Err(Error::input(p, "directory holds no .csv, .csv.gz or .parquet file (searched recursively)"));
            }
            found.sort();
            paths.extend(found);
        } else if p.exists() {
            paths.push(p.to_path_buf());
        } else if raw.contains(['*', '?', '[']) {
            let g = glob::glob(raw).map_err(|e| Error::Config(format!("{raw}: invalid glob: {e}")))?;
            let mut found: Vec<PathBuf> = g.filter_map(|r| r.ok()).filter(|f| f.is_file()).collect();
            if found.is_empty() {
                return Err(Error::input(p, "glob matches no file"));
            }
            found.sort();
            paths.extend(found);
        } else {
            return Err(Error::input(p, "no such file or directory"));
        }
    }
    let mut seen = std::collections::HashSet::new();
    paths.retain(|p| seen.insert(p.clone()));
    paths
        .into_iter()
        .map(|path| {
            let format = format_of(&path).ok_or_else(|| Error::input(&path, "unknown format: expected .csv, .csv.gz or .parquet"))?;
            let meta = std::fs::metadata(&path).map_err(|e| Error::input(&path, format!("cannot open: {e}")))?;
            Ok(InputFile { path, format, bytes: meta.len(), mtime: meta.modified().ok() })
        })
        .collect()
}

/// Collects the extract files under `dir`, as a lakehouse lays a table out
/// (INPUT.md "Files"): partition folders are entered; names starting with
/// `_` or `.` (`_SUCCESS`, `_temporary/`, `.part-0.crc`) are skipped, files
/// and folders alike; so is any file that is not `.csv`, `.csv.gz` or
/// `.parquet` (a README beside the extract). `visited` holds the folders
/// entered (canonical), so a symbolic link back up the tree ends the walk.
fn walk_dir(dir: &Path, found: &mut Vec<PathBuf>, visited: &mut std::collections::HashSet<PathBuf>) -> Result<()> {
    let canonical = std::fs::canonicalize(dir).map_err(|e| Error::input(dir, format!("cannot list directory: {e}")))?;
    if !visited.insert(canonical) {
        return Ok(());
    }
    let rd = std::fs::read_dir(dir).map_err(|e| Error::input(dir, format!("cannot list directory: {e}")))?;
    for entry in rd {
        let path = entry.map_err(|e| Error::input(dir, format!("cannot list directory: {e}")))?.path();
        let Some(name) = path.file_name().map(|n| n.to_string_lossy()) else { continue };
        if name.starts_with(['_', '.']) {
            continue;
        }
        if path.is_dir() {
            walk_dir(&path, found, visited)?;
        } else if path.is_file() && extract_format(&name).is_some() {
            found.push(path);
        }
    }
    Ok(())
}

/// The format of a file found in a directory: only the three extract
/// extensions (a named file or a glob match may also be `.tsv`, `.txt`, `.pq`).
fn extract_format(name: &str) -> Option<Format> {
    let name = name.to_ascii_lowercase();
    if name.ends_with(".csv.gz") {
        Some(Format::CsvGz)
    } else if name.ends_with(".csv") {
        Some(Format::Csv)
    } else if name.ends_with(".parquet") {
        Some(Format::Parquet)
    } else {
        None
    }
}

fn format_of(p: &Path) -> Option<Format> {
    let name = p.file_name()?.to_string_lossy().to_ascii_lowercase();
    if name.ends_with(".csv.gz") || name.ends_with(".tsv.gz") || name.ends_with(".txt.gz") {
        Some(Format::CsvGz)
    } else if name.ends_with(".csv") || name.ends_with(".tsv") || name.ends_with(".txt") {
        Some(Format::Csv)
    } else if name.ends_with(".parquet") || name.ends_with(".pq") {
        Some(Format::Parquet)
    } else {
        None
    }
}
