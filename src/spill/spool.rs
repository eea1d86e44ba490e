//! Result rows of a spilled run (episodes, timeline lines), kept on disk as
//! one sorted run per group of partitions and read back merged in output
//! order, a batch at a time: the rows a run writes never need to be in
//! memory together. A run that did not spill keeps them in memory.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::Arc;

use super::codec::{Damaged, Reader};
use crate::error::{Error, Result};
use crate::scratch::PrivateDir;

/// A row that can be spooled: its encoding and its output order.
pub trait Record: Sized {
    fn put(&self, b: &mut Vec<u8>);
    fn get(r: &mut Reader) -> std::result::Result<Self, Damaged>;
    /// The output order. Rows that compare equal keep their order within a
    /// run; equal rows never come from two runs (a person is in one group).
    fn order(&self, o: &Self) -> Ordering;
    /// The row's person id, read from the start of its encoding (`put`
    /// writes it first, as text), so a pass for a few persons skips the rest.
    fn person<'a>(r: &mut Reader<'a>) -> std::result::Result<&'a str, Damaged> {
        r.str()
    }
    fn person_id(&self) -> &str;
}

/// Rows in memory, or sorted runs on disk.
pub struct Spool<T> {
    mem: Vec<T>,
    runs: Vec<PathBuf>,
    len: usize,
    disk: Option<(Arc<PrivateDir>, &'static str)>,
}

impl<T> Default for Spool<T> {
    fn default() -> Self {
        Spool { mem: Vec::new(), runs: Vec::new(), len: 0, disk: None }
    }
}

impl<T: Record> Spool<T> {
    /// Rows held in memory, already in output order.
    pub fn in_memory(rows: Vec<T>) -> Spool<T> {
        Spool { len: rows.len(), mem: rows, runs: Vec::new(), disk: None }
    }

    /// A count of rows that live elsewhere (the Spark job's executors wrote
    /// them): reports read its `len`, and find no rows in it.
    pub fn counted(len: usize) -> Spool<T> {
        Spool { len, ..Spool::default() }
    }

    /// An empty spool writing runs named `NAME-K.bin` into `dir`.
    pub fn on_disk(dir: Arc<PrivateDir>, name: &'static str) -> Spool<T> {
        Spool { disk: Some((dir, name)), ..Spool::default() }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The rows, when they are all in memory (runs that never spilled).
    pub fn in_memory_rows(&self) -> Option<&[T]> {
        self.runs.is_empty().then_some(&self.mem[..])
    }

    /// Adds one group's rows: sorted (stably) and written as a run.
    pub fn push_run(&mut self, mut rows: Vec<T>) -> Result<()> {
        let Some((dir, name)) = &self.disk else {
            self.len += rows.len();
            self.mem.append(&mut rows);
            return Ok(());
        };
        if rows.is_empty() {
            return Ok(());
        }
        rows.sort_by(T::order);
        let path = dir.path.join(format!("{name}-{:04}.bin", self.runs.len()));
        let failed = |e: std::io::Error| Error::output(&path, format!("spill write failed: {e}"));
        let f = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).map_err(failed)?;
        let mut w = BufWriter::with_capacity(256 << 10, f);
        let mut b = Vec::new();
        for r in &rows {
            b.clear();
            r.put(&mut b);
            w.write_all(&(b.len() as u32).to_le_bytes()).and_then(|_| w.write_all(&b)).map_err(failed)?;
        }
        w.flush().map_err(failed)?;
        self.len += rows.len();
        self.runs.push(path);
        Ok(())
    }

    /// Calls `f` with consecutive batches of at most `n` rows, in output order.
    pub fn batches(&self, n: usize, mut f: impl FnMut(&[T]) -> Result<()>) -> Result<()> {
        let n = n.max(1);
        if self.runs.is_empty() {
            return self.mem.chunks(n).try_for_each(f);
        }
        let mut runs = self.runs.iter().map(|p| RunReader::open(p)).collect::<Result<Vec<_>>>()?;
        let mut heap = BinaryHeap::new();
        for (k, r) in runs.iter_mut().enumerate() {
            if let Some(row) = r.next()? {
                heap.push(Head { row, run: k });
            }
        }
        let mut batch = Vec::with_capacity(n.min(self.len));
        while let Some(Head { row, run }) = heap.pop() {
            batch.push(row);
            if let Some(next) = runs[run].next()? {
                heap.push(Head { row: next, run });
            }
            if batch.len() == n {
                f(&batch)?;
                batch.clear();
            }
        }
        if !batch.is_empty() {
            f(&batch)?;
        }
        Ok(())
    }

    /// Every row in no set order (one run after another, no merge): for
    /// counts and histograms.
    pub fn for_each_unordered(&self, mut f: impl FnMut(&T)) -> Result<()> {
        self.mem.iter().for_each(&mut f);
        for p in &self.runs {
            let mut r = RunReader::<T>::open(p)?;
            while let Some(row) = r.next()? {
                f(&row);
            }
        }
        Ok(())
    }

    /// The rows of `persons`, in output order. On disk, every other row is
    /// skipped after reading its person id.
    pub fn rows_of(&self, persons: &crate::util::FastSet<&str>) -> Result<Vec<T>>
    where
        T: Clone,
    {
        let mut out: Vec<T> = self.mem.iter().filter(|x| persons.contains(x.person_id())).cloned().collect();
        for p in &self.runs {
            let mut r = RunReader::<T>::open(p)?;
            while let Some(row) = r.next_if(|rd| T::person(rd).map(|id| persons.contains(id)))? {
                out.extend(row);
            }
        }
        // Stable: a person's rows are in one run, in order.
        out.sort_by(T::order);
        Ok(out)
    }
}

/// The smallest head first (BinaryHeap is a max-heap), then the lower run.
struct Head<T> {
    row: T,
    run: usize,
}

impl<T: Record> Ord for Head<T> {
    fn cmp(&self, o: &Self) -> Ordering {
        o.row.order(&self.row).then(o.run.cmp(&self.run))
    }
}

impl<T: Record> PartialOrd for Head<T> {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

impl<T: Record> PartialEq for Head<T> {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}

impl<T: Record> Eq for Head<T> {}

struct RunReader<T> {
    path: PathBuf,
    r: BufReader<File>,
    buf: Vec<u8>,
    _row: std::marker::PhantomData<T>,
}

impl<T: Record> RunReader<T> {
    fn open(path: &PathBuf) -> Result<RunReader<T>> {
        let f = File::open(path).map_err(|e| Error::output(path, format!("cannot read spill file: {e}")))?;
        Ok(RunReader { path: path.clone(), r: BufReader::with_capacity(64 << 10, f), buf: Vec::new(), _row: std::marker::PhantomData })
    }

    fn next(&mut self) -> Result<Option<T>> {
        Ok(self.next_if(|_| Ok(true))?.flatten())
    }

    /// The next record, decoded when `wanted` (which reads its start) says
    /// so: `Some(None)` for a record skipped, `None` at the end.
    fn next_if(&mut self, wanted: impl Fn(&mut Reader) -> std::result::Result<bool, Damaged>) -> Result<Option<Option<T>>> {
        let damaged = |at: &str| Error::Internal(format!("{}: spill file damaged ({at})", self.path.display()));
        let mut len = [0u8; 4];
        // No byte at all: the end. Part of a length: a cut file.
        match self.r.read(&mut len[..1]) {
            Ok(0) => return Ok(None),
            Ok(_) => self.r.read_exact(&mut len[1..]).map_err(|_| damaged("cut length"))?,
            Err(e) => return Err(Error::output(&self.path, format!("cannot read spill file: {e}"))),
        }
        self.buf.resize(u32::from_le_bytes(len) as usize, 0);
        self.r.read_exact(&mut self.buf).map_err(|_| damaged("cut record"))?;
        if !wanted(&mut Reader::new(&self.buf)).map_err(|d| damaged(&format!("byte {}", d.0)))? {
            return Ok(Some(None));
        }
        let mut rd = Reader::new(&self.buf);
        let row = T::get(&mut rd).map_err(|d| damaged(&format!("byte {}", d.0)))?;
        if !rd.done() {
            return Err(damaged("record longer than its row"));
        }
        Ok(Some(Some(row)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (key, payload): ordered by key only.
    #[derive(Debug, PartialEq, Clone)]
    struct Row(u64, u64);

    impl Record for Row {
        fn put(&self, b: &mut Vec<u8>) {
            super::super::codec::varint(b, self.0);
            super::super::codec::varint(b, self.1);
        }
        fn get(r: &mut Reader) -> std::result::Result<Self, Damaged> {
            Ok(Row(r.varint()?, r.varint()?))
        }
        fn order(&self, o: &Self) -> Ordering {
            self.0.cmp(&o.0)
        }
        fn person_id(&self) -> &str {
            ""
        }
    }

    fn collect(s: &Spool<Row>, n: usize) -> Vec<Row> {
        let mut out = Vec::new();
        s.batches(n, |b| {
            assert!(b.len() <= n);
            out.extend_from_slice(b);
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn runs_merge_in_order_keeping_equal_rows_in_run_order() {
        let t = tempfile::tempdir().unwrap();
        let dir = Arc::new(PrivateDir::create(&t.path().join("out"), "spill").unwrap());
        let mut s = Spool::on_disk(Arc::clone(&dir), "rows");
        // Keys unique across runs; equal keys within a run keep their order.
        s.push_run(vec![Row(5, 0), Row(1, 0), Row(5, 1), Row(9, 0)]).unwrap();
        s.push_run(vec![]).unwrap();
        s.push_run(vec![Row(2, 0), Row(8, 0), Row(3, 0)]).unwrap();
        assert_eq!(s.len(), 7);
        assert!(s.in_memory_rows().is_none());
        let want = [Row(1, 0), Row(2, 0), Row(3, 0), Row(5, 0), Row(5, 1), Row(8, 0), Row(9, 0)];
        for n in [1, 2, 3, 100] {
            assert_eq!(collect(&s, n), want);
        }
        let mut any_order = Vec::new();
        s.for_each_unordered(|r| any_order.push(r.clone())).unwrap();
        any_order.sort_by(Row::order);
        assert_eq!(any_order, want);
        let mode = |p: &std::path::Path| std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions()) & 0o777;
        assert_eq!(mode(&dir.path), 0o700);
        assert_eq!(mode(&dir.path.join("rows-0000.bin")), 0o600);
        let path = dir.path.clone();
        drop((s, dir));
        assert!(!path.exists(), "the directory goes with its last user");
    }

    #[test]
    fn in_memory_rows_are_batched_as_given() {
        let s = Spool::in_memory(vec![Row(1, 0), Row(2, 0), Row(3, 0)]);
        assert_eq!(collect(&s, 2), [Row(1, 0), Row(2, 0), Row(3, 0)]);
        assert_eq!(s.in_memory_rows().map(<[Row]>::len), Some(3));
    }

    #[test]
    fn a_damaged_run_is_an_error() {
        let t = tempfile::tempdir().unwrap();
        let dir = Arc::new(PrivateDir::create(&t.path().join("out"), "spill").unwrap());
        let mut s = Spool::on_disk(Arc::clone(&dir), "rows");
        s.push_run(vec![Row(1, 1), Row(2, 2)]).unwrap();
        let run = dir.path.join("rows-0000.bin");
        let mut bytes = std::fs::read(&run).unwrap();
        bytes.truncate(bytes.len() - 1);
        std::fs::write(&run, bytes).unwrap();
        assert!(s.batches(10, |_| Ok(())).is_err());
    }
}
