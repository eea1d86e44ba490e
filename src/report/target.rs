//! What `--out` may replace (OUTPUTS.md "Nothing but its own output is ever
//! replaced"): an absent path, an empty directory, or a directory whose
//! manifest.json claims-audit wrote and that holds nothing else. Checked
//! before anything is read, and again just before the swap, so a run never
//! deletes a file it did not write.

use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

/// What a target directory holds that the swap would delete.
pub(crate) enum Target {
    Absent,
    /// An empty directory, or a claims-audit output: these names (manifest
    /// listed, plus manifest.json) are all it holds.
    Replaceable(Vec<String>),
}

/// Checks `out` against the run's inputs (as given: files, directories,
/// globs) and what it holds. The error is a usage error (exit 2), one line.
pub fn check_out(out: &Path, inputs: &[String]) -> Result<()> {
    let target = normalize(out);
    for (input, root) in input_roots(inputs) {
        if target == root {
            return Err(refuse(out, format!("is an input of this run ({input})")));
        }
        if root.is_dir() && target.starts_with(&root) {
            return Err(refuse(out, format!("lies inside input directory {input}")));
        }
        if root.starts_with(&target) {
            return Err(refuse(out, format!("holds an input of this run ({input})")));
        }
    }
    inspect(out).map(|_| ())
}

/// The same rule for a command that writes one file (`diff --out`,
/// `generate --out`): never a directory, never one of the command's inputs
/// nor a file inside an input directory (a run's own findings.parquet).
pub fn check_file_out(option: &str, out: &Path, inputs: &[&Path]) -> Result<()> {
    let target = normalize(out);
    let no = |what: String| Error::Config(format!("{option} {}: {what}; nothing was written", out.display()));
    for input in inputs {
        let root = normalize(input);
        if target == root {
            return Err(no(format!("is an input of this command ({})", input.display())));
        }
        if root.is_dir() && target.starts_with(&root) {
            return Err(no(format!("lies inside input directory {}", input.display())));
        }
    }
    if out.is_dir() {
        return Err(no("is a directory; give a file name".into()));
    }
    Ok(())
}

/// What the target is, or why it must not be replaced.
pub(crate) fn inspect(out: &Path) -> Result<Target> {
    let meta = match std::fs::symlink_metadata(out) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Target::Absent),
        Err(e) => return Err(Error::output(out, format!("cannot be inspected: {e}"))),
    };
    if meta.file_type().is_symlink() {
        return Err(refuse(out, "is a symbolic link; give the directory itself".into()));
    }
    if !meta.is_dir() {
        return Err(refuse(out, "is a file, not an output directory".into()));
    }
    let unlisted = |e: std::io::Error| Error::output(out, format!("cannot be listed: {e}"));
    let mut names: Vec<String> = std::fs::read_dir(out)
        .map_err(unlisted)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<std::io::Result<_>>()
        .map_err(unlisted)?;
    names.sort();
    if names.is_empty() {
        return Ok(Target::Replaceable(names));
    }
    let Some(listed) = manifest_outputs(&out.join("manifest.json")) else {
        return Err(refuse(out, format!("is a folder of other files ({}), not a claims-audit output", sample(&names))));
    };
    let foreign: Vec<String> = names.iter().filter(|n| *n != "manifest.json" && !listed.contains(n)).cloned().collect();
    if !foreign.is_empty() {
        return Err(refuse(
            out,
            format!("is a claims-audit output that also holds other files ({}); move them away first", sample(&foreign)),
        ));
    }
    // Listed names are plain files the run wrote; a directory under one of
    // them was put there by someone else.
    if let Some(d) = names.iter().find(|n| out.join(n).symlink_metadata().map(|m| !m.is_file()).unwrap_or(true)) {
        return Err(refuse(out, format!("is a claims-audit output whose {d} is not a plain file; move it away first")));
    }
    Ok(Target::Replaceable(names))
}

/// Removes a directory `inspect` found replaceable: its listed files, then
/// the directory, which fails (and keeps it) if anything else appeared.
pub(crate) fn remove_own(dir: &Path, names: &[String]) -> std::io::Result<()> {
    for n in names {
        match std::fs::remove_file(dir.join(n)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    std::fs::remove_dir(dir)
}

/// The `outputs[].path` of a manifest claims-audit wrote (`tool.name`),
/// or None when the file is missing or another tool's.
fn manifest_outputs(path: &Path) -> Option<Vec<String>> {
    let bytes = std::fs::read(path).ok()?;
    let m: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let tool = &m["tool"];
    if tool["name"].as_str().or_else(|| tool.as_str()) != Some("claims-audit") {
        return None;
    }
    Some(m["outputs"].as_array()?.iter().filter_map(|o| o["path"].as_str().map(str::to_string)).collect())
}

/// A few names for the one-line message.
fn sample(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [a] => a.clone(),
        [a, b] => format!("{a}, {b}"),
        [a, b, rest @ ..] => format!("{a}, {b} and {} more", rest.len()),
    }
}

fn refuse(out: &Path, what: String) -> Error {
    Error::Config(format!(
        "--out {}: {what}; it was left as it is and nothing was read (--out must be absent, empty, or an earlier claims-audit output)",
        out.display()
    ))
}

/// Each input as given, with its absolute path; a glob stands for the
/// files it matches now (listing them reads no data).
fn input_roots(inputs: &[String]) -> Vec<(String, PathBuf)> {
    let mut roots = Vec::new();
    for raw in inputs {
        let p = Path::new(raw);
        if p.exists() || !raw.contains(['*', '?', '[']) {
            roots.push((raw.clone(), normalize(p)));
        } else if let Ok(g) = glob::glob(raw) {
            roots.extend(g.flatten().map(|f| (f.display().to_string(), normalize(&f))));
        }
    }
    roots
}

/// An absolute path with symbolic links resolved as far as the path exists
/// (the rest normalized by its components), so two spellings of one place
/// compare equal.
fn normalize(p: &Path) -> PathBuf {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut existing = abs.as_path();
    let mut rest: Vec<Component> = Vec::new();
    loop {
        if let Ok(c) = existing.canonicalize() {
            let mut out = c;
            for comp in rest.iter().rev() {
                match comp {
                    Component::ParentDir => {
                        out.pop();
                    }
                    Component::CurDir => {}
                    c => out.push(c.as_os_str()),
                }
            }
            return out;
        }
        match (existing.parent(), existing.components().next_back()) {
            (Some(parent), Some(last)) => {
                rest.push(last);
                existing = parent;
            }
            _ => return abs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_resolves_what_exists() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("a");
        std::fs::create_dir(&d).unwrap();
        let real = t.path().canonicalize().unwrap();
        assert_eq!(normalize(&d.join("./x/../y")), real.join("a/y"));
        assert_eq!(normalize(&d.join("..")), real);
    }

    #[test]
    fn message_samples_names() {
        let n: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        assert_eq!(sample(&n), "a, b and 2 more");
        assert_eq!(sample(&n[..1]), "a");
    }
}
