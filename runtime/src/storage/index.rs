//! A segment's sparse indexes, Kafka's `.index` (8-byte entries: relative offset u32, byte
//! position u32) and `.timeindex` (12-byte entries: timestamp i64, relative offset u32), all
//! big-endian. Entries live in memory; the file gets the new ones when the segment is flushed,
//! rolled or closed. An index is only a hint: recovery rebuilds it from the `.log` whenever it
//! is missing or disagrees with it.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

/// An entry of one of the two index files.
pub trait Entry: Copy + std::fmt::Debug + PartialEq {
    const BYTES: usize;
    fn encode(&self, out: &mut Vec<u8>);
    fn decode(buf: &[u8]) -> Self;
}

/// `.index`: the batch at `relative_offset` (from the segment's base offset) starts at byte
/// `position` of the `.log`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OffsetEntry {
    pub relative_offset: u32,
    pub position: u32,
}

impl Entry for OffsetEntry {
    const BYTES: usize = 8;
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.relative_offset.to_be_bytes());
        out.extend_from_slice(&self.position.to_be_bytes());
    }
    fn decode(buf: &[u8]) -> Self {
        OffsetEntry {
            relative_offset: u32::from_be_bytes(buf[0..4].try_into().expect("4 bytes")),
            position: u32::from_be_bytes(buf[4..8].try_into().expect("4 bytes")),
        }
    }
}

/// `.timeindex`: every batch from `relative_offset` on has a max timestamp of at least
/// `timestamp`'s predecessors; the segment's largest timestamp so far was `timestamp`, first
/// reached in the batch at `relative_offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeEntry {
    pub timestamp: i64,
    pub relative_offset: u32,
}

impl Entry for TimeEntry {
    const BYTES: usize = 12;
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.relative_offset.to_be_bytes());
    }
    fn decode(buf: &[u8]) -> Self {
        TimeEntry {
            timestamp: i64::from_be_bytes(buf[0..8].try_into().expect("8 bytes")),
            relative_offset: u32::from_be_bytes(buf[8..12].try_into().expect("4 bytes")),
        }
    }
}

/// One index file and its entries.
#[derive(Debug)]
pub struct IndexFile<E> {
    path: PathBuf,
    entries: Vec<E>,
    /// How many entries the file holds.
    written: usize,
}

impl<E: Entry> IndexFile<E> {
    /// A new, empty index (the file is created at the first write).
    pub fn empty(path: PathBuf) -> IndexFile<E> {
        IndexFile {
            path,
            entries: Vec::new(),
            written: 0,
        }
    }

    /// The entries the file holds, and whether it was whole; a missing file, or one that is
    /// not a whole number of entries, gives an empty index and `false`.
    pub fn load(path: PathBuf) -> std::io::Result<(IndexFile<E>, bool)> {
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Ok((IndexFile::empty(path), false))
            }
            Err(e) => return Err(e),
        };
        if bytes.len() % E::BYTES != 0 {
            return Ok((IndexFile::empty(path), false));
        }
        let entries: Vec<E> = bytes.chunks_exact(E::BYTES).map(E::decode).collect();
        let written = entries.len();
        Ok((
            IndexFile {
                path,
                entries,
                written,
            },
            true,
        ))
    }

    pub fn entries(&self) -> &[E] {
        &self.entries
    }

    pub fn last(&self) -> Option<&E> {
        self.entries.last()
    }

    pub fn push(&mut self, entry: E) {
        self.entries.push(entry);
    }

    /// Keeps the first `keep` entries, in memory and in the file.
    pub fn truncate(&mut self, keep: usize) -> std::io::Result<()> {
        self.entries.truncate(keep);
        if self.written > keep {
            let file = OpenOptions::new().write(true).open(&self.path)?;
            file.set_len((keep * E::BYTES) as u64)?;
            self.written = keep;
        }
        Ok(())
    }

    /// Replaces every entry (after a rebuild) and rewrites the file.
    pub fn replace(&mut self, entries: Vec<E>) -> std::io::Result<()> {
        self.entries = entries;
        self.written = 0;
        File::create(&self.path)?;
        self.write_pending()
    }

    /// Appends to the file the entries it does not hold yet.
    pub fn write_pending(&mut self) -> std::io::Result<()> {
        if self.written == self.entries.len() && self.path.exists() {
            return Ok(());
        }
        let mut buf = Vec::with_capacity((self.entries.len() - self.written) * E::BYTES);
        for entry in &self.entries[self.written..] {
            entry.encode(&mut buf);
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        file.write_all(&buf)?;
        self.written = self.entries.len();
        Ok(())
    }

    /// Writes the pending entries and fsyncs the file.
    pub fn sync(&mut self) -> std::io::Result<()> {
        self.write_pending()?;
        File::open(&self.path)?.sync_all()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_reach_the_file_when_written_and_truncate_in_both() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000000.index");
        let mut index = IndexFile::<OffsetEntry>::empty(path.clone());
        for i in 0..3 {
            index.push(OffsetEntry {
                relative_offset: i * 10,
                position: i * 4096,
            });
        }
        assert!(!path.exists());
        index.sync().unwrap();
        assert_eq!(fs::read(&path).unwrap().len(), 24);
        index.truncate(1).unwrap();
        assert_eq!(fs::read(&path).unwrap().len(), 8);
        let (loaded, whole) = IndexFile::<OffsetEntry>::load(path.clone()).unwrap();
        assert!(whole);
        assert_eq!(loaded.entries(), index.entries());
        fs::write(&path, [0u8; 9]).unwrap();
        assert!(!IndexFile::<OffsetEntry>::load(path).unwrap().1);
    }
}
