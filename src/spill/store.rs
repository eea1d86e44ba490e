//! Where readers put kept rows. Rows stay in memory until they pass the
//! budget; from then on every kept row goes to one of P partition files by
//! hash(person), so a person's rows all land in one partition, and the run
//! audits one group of partitions at a time.

use std::fs::{File, OpenOptions};
use std::hash::{Hash, Hasher};
use std::io::{BufWriter, Write};
use std::ops::Range;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rayon::prelude::*;

use super::codec::{self, Rows};
use crate::error::{Error, Result};
use crate::model::{Date, Dispense, Line, UncodedDrugDay};
use crate::scratch::PrivateDir;

/// What a kept row costs in memory once loaded: the struct, its heap parts,
/// and what grouping adds per row (a reference and a sort key).
fn line_bytes(l: &Line) -> u64 {
    let heap = l.raw.as_ref().map_or(0, |r| r.len());
    (std::mem::size_of::<Line>() + heap + 48) as u64
}

fn dispense_bytes(d: &Dispense) -> u64 {
    (std::mem::size_of::<Dispense>() + d.raw.as_ref().map_or(0, |r| r.len()) + 48) as u64
}

const UNCODED_BYTES: u64 = std::mem::size_of::<UncodedDrugDay>() as u64;

/// Rows handed over by readers (lines in pieces, as read).
#[derive(Debug, Default)]
pub struct Batch {
    pub chunks: Vec<Vec<Line>>,
    pub dispenses: Vec<Dispense>,
    pub uncoded: Vec<UncodedDrugDay>,
}

impl Batch {
    fn bytes(&self) -> u64 {
        self.chunks.iter().flatten().map(line_bytes).sum::<u64>()
            + self.dispenses.iter().map(dispense_bytes).sum::<u64>()
            + self.uncoded.len() as u64 * UNCODED_BYTES
    }

    fn max_date(&self) -> Option<Date> {
        self.chunks.iter().flatten().map(|l| l.service_date).chain(self.dispenses.iter().map(|d| d.date)).max()
    }

    fn is_empty(&self) -> bool {
        self.chunks.iter().all(Vec::is_empty) && self.dispenses.is_empty() && self.uncoded.is_empty()
    }
}

/// The partition of a person: the high bits of a stable hash of the id.
fn partition_of(person: &str, parts: usize) -> usize {
    let mut h = rustc_hash::FxHasher::default();
    person.as_bytes().hash(&mut h);
    ((u128::from(h.finish()) * parts as u128) >> 64) as usize
}

/// The kept rows of a run, as readers hand them over.
pub struct KeptStore {
    /// Memory kept rows may use before they spill; `None`: never.
    budget: Option<u64>,
    target: PathBuf,
    /// Input bytes in all, and read so far (to size the partitions).
    total_input: u64,
    read: AtomicU64,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    mem: Batch,
    mem_bytes: u64,
    max_date: Option<Date>,
    spill: Option<Spill>,
    failed: Option<String>,
}

struct Spill {
    dir: PrivateDir,
    files: Vec<BufWriter<File>>,
    /// Per partition: what its rows cost once loaded, and its lines.
    bytes: Vec<u64>,
    lines: Vec<u64>,
    rows: u64,
    written: u64,
    t_encode: f64,
    t_drop: f64,
    t_write: f64,
}

impl Spill {
    fn create(target: &Path, parts: usize, budget: u64) -> Result<Spill> {
        let dir = PrivateDir::create(target, "spill")?;
        // Small buffers: they coalesce small appends, while a piece's
        // encoded rows (usually larger) go straight to the file, uncopied.
        let cap = ((budget / 16) as usize / parts).clamp(4 << 10, 8 << 10);
        let files = (0..parts)
            .map(|p| {
                // Thousands of files take longer than the signal watchdog
                // waits: stop creating them once a stop is asked for, or the
                // watchdog's removal would leave the ones created after it.
                crate::signals::check()?;
                let path = part_path(&dir.path, p);
                OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .map(|f| BufWriter::with_capacity(cap, f))
                    .map_err(|e| Error::output(&path, format!("cannot create spill file: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Spill {
            dir,
            files,
            bytes: vec![0; parts],
            lines: vec![0; parts],
            rows: 0,
            written: 0,
            t_encode: 0.0,
            t_drop: 0.0,
            t_write: 0.0,
        })
    }

    /// Encodes the batch's pieces in parallel into per-partition buffers,
    /// then appends them piece by piece (a partition's rows keep read order).
    /// A window of pieces at a time is encoded, dropped and written, so the
    /// first spill (every row kept so far) never holds its rows and their
    /// encoding together.
    fn put(&mut self, mut b: Batch) -> Result<()> {
        let parts = self.files.len();
        let rows = (b.chunks.iter().map(Vec::len).sum::<usize>() + b.dispenses.len() + b.uncoded.len()) as u64;
        // This runs under the store's lock. On a pool thread (the Parquet
        // reader's row groups) a parallel encode could, while it waits, steal
        // another row group's task, which would then wait for this same lock:
        // there, encode on this thread alone.
        let on_pool = rayon::current_thread_index().is_some();
        // Encoded bytes per row so far, to size each piece's buffers.
        let per_row = self.written.checked_div(self.rows).unwrap_or(0) as usize;
        let mut chunks = std::mem::take(&mut b.chunks).into_iter().peekable();
        while chunks.peek().is_some() {
            let mut window = Vec::new();
            let mut lines = 0;
            while lines < WINDOW_LINES
                && let Some(c) = chunks.next()
            {
                lines += c.len();
                window.push(c);
            }
            let t0 = std::time::Instant::now();
            let encoded: Vec<Encoded> = if on_pool {
                window.iter().map(|c| encode(c, &[], &[], parts, per_row)).collect()
            } else {
                window.par_iter().map(|c| encode(c, &[], &[], parts, per_row)).collect()
            };
            self.t_encode += t0.elapsed().as_secs_f64();
            let t1 = std::time::Instant::now();
            drop(window);
            self.t_drop += t1.elapsed().as_secs_f64();
            self.write(encoded)?;
        }
        if !b.dispenses.is_empty() || !b.uncoded.is_empty() {
            let t0 = std::time::Instant::now();
            let encoded = encode(&[], &b.dispenses, &b.uncoded, parts, 0);
            self.t_encode += t0.elapsed().as_secs_f64();
            drop(b);
            self.write(vec![encoded])?;
        }
        self.rows += rows;
        Ok(())
    }

    /// Appends encoded pieces to their partitions, in order.
    fn write(&mut self, encoded: Vec<Encoded>) -> Result<()> {
        let t2 = std::time::Instant::now();
        for e in encoded {
            for (p, buf) in e.bufs.iter().enumerate() {
                if buf.is_empty() {
                    continue;
                }
                self.bytes[p] += e.bytes[p];
                self.lines[p] += e.lines[p];
                self.written += buf.len() as u64;
                self.files[p]
                    .write_all(buf)
                    .map_err(|e| Error::output(part_path(&self.dir.path, p), format!("spill write failed: {e}")))?;
            }
        }
        self.t_write += t2.elapsed().as_secs_f64();
        Ok(())
    }
}

/// Kept lines encoded, dropped and written together when spilling: a few
/// MiB of rows, enough pieces to encode on both cores.
const WINDOW_LINES: usize = 16 * 1024;

/// One piece's rows encoded per partition, with what they cost loaded and
/// how many are lines.
struct Encoded {
    bufs: Vec<Vec<u8>>,
    bytes: Vec<u64>,
    lines: Vec<u64>,
}

/// `per_row`: encoded bytes per row so far (0: none yet), to size the
/// buffers once with some room, instead of growing each by doubling.
fn encode(lines: &[Line], dispenses: &[Dispense], uncoded: &[UncodedDrugDay], parts: usize, per_row: usize) -> Encoded {
    let cap = (lines.len() * per_row / parts.max(1)) * 5 / 4;
    let mut e = Encoded { bufs: (0..parts).map(|_| Vec::with_capacity(cap)).collect(), bytes: vec![0; parts], lines: vec![0; parts] };
    for l in lines {
        let p = partition_of(&l.person_id, parts);
        codec::put_line(&mut e.bufs[p], l);
        e.bytes[p] += line_bytes(l);
        e.lines[p] += 1;
    }
    for d in dispenses {
        let p = partition_of(&d.person_id, parts);
        codec::put_dispense(&mut e.bufs[p], d);
        e.bytes[p] += dispense_bytes(d);
    }
    for u in uncoded {
        let p = partition_of(&u.person_id, parts);
        codec::put_uncoded(&mut e.bufs[p], u);
        e.bytes[p] += UNCODED_BYTES;
    }
    e
}

fn part_path(dir: &Path, p: usize) -> PathBuf {
    dir.join(format!("part-{p:04}.bin"))
}

impl KeptStore {
    /// A store for a run writing `target`; `budget` in bytes (`None`: keep
    /// everything in memory).
    pub fn new(budget: Option<u64>, target: &Path, total_input: u64) -> KeptStore {
        KeptStore { budget, target: target.to_path_buf(), total_input, read: AtomicU64::new(0), inner: Mutex::new(Inner::default()) }
    }

    /// Readers report input bytes read, as for progress.
    pub fn progressed(&self, n: u64) {
        self.read.fetch_add(n, Ordering::Relaxed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a batch of kept rows. Past the budget, they are written out.
    pub fn put(&self, b: Batch) -> Result<()> {
        if b.is_empty() {
            return Ok(());
        }
        let bytes = b.bytes();
        let max = b.max_date();
        let mut g = self.lock();
        if let Some(e) = &g.failed {
            return Err(Error::Internal(e.clone()));
        }
        g.max_date = g.max_date.max(max);
        let r = self.put_locked(&mut g, b, bytes);
        if let Err(e) = &r {
            g.failed = Some(e.to_string());
        }
        r
    }

    fn put_locked(&self, g: &mut Inner, b: Batch, bytes: u64) -> Result<()> {
        if let Some(s) = g.spill.as_mut() {
            return s.put(b);
        }
        g.mem_bytes += bytes;
        g.mem.chunks.extend(b.chunks.into_iter().filter(|c| !c.is_empty()));
        g.mem.dispenses.extend(b.dispenses);
        g.mem.uncoded.extend(b.uncoded);
        let Some(budget) = self.budget else { return Ok(()) };
        if g.mem_bytes <= budget {
            return Ok(());
        }
        let parts = self.partitions(g.mem_bytes, budget);
        tracing::info!(partitions = parts, kept_bytes = g.mem_bytes, budget, "kept rows pass the memory limit: spilling");
        let mut spill = Spill::create(&self.target, parts, budget)?;
        spill.put(std::mem::take(&mut g.mem))?;
        g.mem_bytes = 0;
        g.spill = Some(spill);
        Ok(())
    }

    /// Enough partitions that each holds about a quarter of the budget when
    /// the whole input is read, as extrapolated from what is read so far
    /// (groups of half the budget then pack two or more).
    fn partitions(&self, kept: u64, budget: u64) -> usize {
        // A reader that reports no progress: size for what is kept so far.
        let read = self.read.load(Ordering::Relaxed);
        let expected = if read == 0 { kept as f64 } else { kept as f64 * (self.total_input.max(read) as f64 / read as f64) };
        let want = (4.0 * expected / budget.max(1) as f64).ceil() as usize;
        want.clamp(MIN_PARTS, MAX_PARTS).next_power_of_two()
    }

    /// All rows are in: the rows in memory, or the partitions on disk.
    pub fn finish(self) -> Result<Kept> {
        let inner = self.inner.into_inner().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = inner.failed {
            return Err(Error::Internal(e));
        }
        let max_date = inner.max_date;
        let Some(mut spill) = inner.spill else {
            return Ok(Kept { max_date, rows: Held::Memory(inner.mem) });
        };
        for (p, f) in spill.files.iter_mut().enumerate() {
            f.flush().map_err(|e| Error::output(part_path(&spill.dir.path, p), format!("spill write failed: {e}")))?;
        }
        // Half the budget per group: evaluating a group adds its sort keys,
        // patients and results to the rows, so that peaks no higher than reading.
        let budget = self.budget.unwrap_or(u64::MAX) / 2;
        tracing::info!(rows = spill.rows, bytes = spill.written, partitions = spill.files.len(), "spilled");
        tracing::debug!(encode = spill.t_encode, drop = spill.t_drop, write = spill.t_write, "spill seconds");
        Ok(Kept {
            max_date,
            rows: Held::Spilled(Spilled {
                groups: groups(&spill.bytes, budget),
                lines: spill.lines,
                partitions: spill.files.len(),
                rows: spill.rows,
                written: spill.written,
                dir: Arc::new(spill.dir),
            }),
        })
    }
}

/// At least 64: extrapolation can be far off (a gzip input reports progress in
/// uncompressed bytes against a compressed size), and extra partitions only
/// cost a file each, since groups pack them back to half the limit.
const MIN_PARTS: usize = 64;
const MAX_PARTS: usize = 4096;

/// Consecutive partitions whose loaded rows fit `budget` together (each
/// group at least one partition).
fn groups(bytes: &[u64], budget: u64) -> Vec<Range<usize>> {
    let mut out: Vec<Range<usize>> = Vec::new();
    let mut sum = 0u64;
    for (p, &b) in bytes.iter().enumerate() {
        match out.last_mut() {
            Some(r) if sum + b <= budget => {
                r.end = p + 1;
                sum += b;
            }
            _ => {
                out.push(p..p + 1);
                sum = b;
            }
        }
    }
    out
}

/// A run's kept rows once reading is done.
pub struct Kept {
    /// The latest date of a kept line or dispense.
    pub max_date: Option<Date>,
    pub rows: Held,
}

pub enum Held {
    Memory(Batch),
    Spilled(Spilled),
}

/// Partitions on disk, read back a group at a time.
pub struct Spilled {
    dir: Arc<PrivateDir>,
    groups: Vec<Range<usize>>,
    /// Lines per partition: each partition's list is allocated once, not
    /// grown by doubling (a copy of every line read back).
    lines: Vec<u64>,
    pub partitions: usize,
    pub rows: u64,
    /// Bytes written to the partition files.
    pub written: u64,
}

impl Spilled {
    /// The spill directory, for result runs; removed when its last user goes.
    pub fn dir(&self) -> Arc<PrivateDir> {
        Arc::clone(&self.dir)
    }

    /// How many groups of partitions the rows are audited in.
    pub fn groups(&self) -> usize {
        self.groups.len()
    }

    /// The rows of group `k`, read back (its partitions decoded in parallel).
    pub fn load(&self, k: usize) -> Result<Batch> {
        let parts: Vec<usize> = self.groups.get(k).cloned().unwrap_or_default().collect();
        let rows = parts
            .par_iter()
            .map(|&p| {
                let path = part_path(&self.dir.path, p);
                let buf = std::fs::read(&path).map_err(|e| Error::output(&path, format!("cannot read spill file: {e}")))?;
                let lines = self.lines.get(p).map_or(0, |&n| n as usize);
                let mut rows = Rows { lines: Vec::with_capacity(lines), ..Rows::default() };
                codec::read_rows(&buf, &mut rows)
                    .map_err(|d| Error::Internal(format!("{}: spill file damaged at byte {}", path.display(), d.0)))?;
                // A partition is read once: its file goes now, not at the end.
                let _ = std::fs::remove_file(&path);
                Ok(rows)
            })
            .collect::<Result<Vec<Rows>>>()?;
        let mut batch = Batch::default();
        for mut r in rows {
            batch.chunks.push(r.lines);
            batch.dispenses.append(&mut r.dispenses);
            batch.uncoded.append(&mut r.uncoded);
        }
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_fill_to_the_budget_and_never_split_a_partition() {
        assert_eq!(groups(&[3, 3, 3, 9, 1, 1], 6), [0..2, 2..3, 3..4, 4..6]);
        assert_eq!(groups(&[0, 0], 6).len(), 1, "empty partitions share a group");
        assert_eq!(groups(&[0, 0], 6)[0], 0..2);
        assert!(groups(&[], 6).is_empty());
    }

    fn line(person: &str, n: u64) -> Line {
        let mut l = crate::spill::codec::tests::line(person);
        l.source_line = n;
        l
    }

    #[test]
    fn rows_past_the_budget_spill_by_person_and_come_back_whole() {
        let t = tempfile::tempdir().unwrap();
        let target = t.path().join("out");
        let store = KeptStore::new(Some(4096), &target, 1000);
        let people = ["P1", "P2", "P3", "P4", "P5"];
        for k in 0..40u64 {
            let chunk = people.iter().map(|p| line(p, k)).collect();
            store.progressed(10);
            store.put(Batch { chunks: vec![chunk], ..Batch::default() }).unwrap();
        }
        let spill_dir = t.path().join(format!(".out.spill-{}", std::process::id()));
        let mode = |p: &Path| std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions()) & 0o777;
        assert_eq!(mode(&spill_dir), 0o700);
        assert_eq!(mode(&spill_dir.join("part-0000.bin")), 0o600);
        let kept = store.finish().unwrap();
        let Held::Spilled(s) = kept.rows else { panic!("4 KiB must spill 200 lines") };
        assert_eq!(s.rows, 200);
        assert!(s.groups() > 1);
        let mut seen: Vec<(String, u64)> = Vec::new();
        let mut owner: std::collections::HashMap<String, usize> = Default::default();
        for g in 0..s.groups() {
            for l in s.load(g).unwrap().chunks.into_iter().flatten() {
                assert_eq!(*owner.entry(l.person_id.to_string()).or_insert(g), g, "a person spans groups");
                seen.push((l.person_id.to_string(), l.source_line));
            }
        }
        seen.sort();
        let mut want: Vec<(String, u64)> = (0..40).flat_map(|k| people.iter().map(move |p| (p.to_string(), k))).collect();
        want.sort();
        assert_eq!(seen, want);
        drop(s);
        assert!(!spill_dir.exists(), "the spill directory goes with the run");
    }

    #[test]
    fn rows_under_the_budget_stay_in_memory() {
        let t = tempfile::tempdir().unwrap();
        let store = KeptStore::new(Some(1 << 30), &t.path().join("out"), 1000);
        store.put(Batch { chunks: vec![vec![line("P1", 1)]], ..Batch::default() }).unwrap();
        let kept = store.finish().unwrap();
        assert!(matches!(kept.rows, Held::Memory(ref b) if b.chunks.concat().len() == 1));
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 0, "nothing written beside the output");
    }

    #[test]
    fn a_person_always_lands_in_one_partition_of_range() {
        for parts in [16, 64, 4096] {
            for id in ["P1", "P2", "", "a much longer member identifier 0000123"] {
                let p = partition_of(id, parts);
                assert!(p < parts);
                assert_eq!(p, partition_of(id, parts));
            }
        }
    }
}
