//! One segment: `<base offset, 20 digits>.log` with its `.index` and `.timeindex`. Batches are
//! written as they came (a 16-byte stamped prefix and the rest, in one `writev`) and read back
//! as `Bytes` from one positioned read, sliced per batch without copying.

use super::batch::{BatchHeader, KafkaBatch, HEADER_BYTES};
use super::index::{IndexFile, OffsetEntry, TimeEntry};
use bytes::Bytes;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, IoSlice, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// A segment file's name: the base offset in 20 digits and the extension.
pub fn file_name(dir: &Path, base_offset: u64, extension: &str) -> PathBuf {
    dir.join(format!("{base_offset:020}.{extension}"))
}

/// What a scan of a segment's batches found.
#[derive(Debug, Default)]
pub struct Scan {
    /// Where the last good batch ends.
    pub end_position: u64,
    /// The offset after the last good batch.
    pub next_offset: u64,
    /// The first bad batch: its position and what is wrong with it.
    pub problem: Option<(u64, String)>,
    /// The (epoch, base offset) of each good batch scanned.
    pub epochs: Vec<(i32, u64)>,
}

#[derive(Debug)]
pub struct Segment {
    pub base_offset: u64,
    log_path: PathBuf,
    /// Appends go through this handle's cursor, always at `size`.
    writer: File,
    /// Reads are positioned reads on this handle.
    reader: File,
    size: u64,
    next_offset: u64,
    /// How much of the `.log` was fsynced.
    flushed_size: u64,
    index: IndexFile<OffsetEntry>,
    time_index: IndexFile<TimeEntry>,
    bytes_since_index: u64,
    /// The largest batch max timestamp, and the base offset of the batch that first had it.
    max_timestamp: i64,
    offset_of_max_timestamp: u64,
    /// The first batch's max timestamp, which `segment.ms` counts from (Kafka's
    /// `rollingBasedTimestamp`).
    first_timestamp: Option<i64>,
    /// Both index files were found whole when the segment was opened.
    indexes_whole: bool,
}

fn open_files(path: &Path, create: bool) -> std::io::Result<(File, File)> {
    let writer = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(create)
        .open(path)?;
    let reader = File::open(path)?;
    Ok((writer, reader))
}

impl Segment {
    /// A new, empty segment starting at `base_offset`.
    pub fn create(dir: &Path, base_offset: u64) -> std::io::Result<Segment> {
        let log_path = file_name(dir, base_offset, "log");
        let (writer, reader) = open_files(&log_path, true)?;
        Ok(Segment {
            base_offset,
            log_path,
            writer,
            reader,
            size: 0,
            next_offset: base_offset,
            flushed_size: 0,
            index: IndexFile::empty(file_name(dir, base_offset, "index")),
            time_index: IndexFile::empty(file_name(dir, base_offset, "timeindex")),
            bytes_since_index: 0,
            max_timestamp: -1,
            offset_of_max_timestamp: base_offset,
            first_timestamp: None,
            indexes_whole: true,
        })
    }

    /// An existing segment, not yet checked: the caller then runs [`Segment::load_flushed`] or
    /// [`Segment::recover`].
    pub fn open(dir: &Path, base_offset: u64) -> std::io::Result<Segment> {
        let log_path = file_name(dir, base_offset, "log");
        let (mut writer, reader) = open_files(&log_path, false)?;
        let size = writer.seek(SeekFrom::End(0))?;
        let (index, index_whole) = IndexFile::load(file_name(dir, base_offset, "index"))?;
        let (time_index, time_index_whole) =
            IndexFile::load(file_name(dir, base_offset, "timeindex"))?;
        Ok(Segment {
            base_offset,
            log_path,
            writer,
            reader,
            size,
            next_offset: base_offset,
            flushed_size: size,
            index,
            time_index,
            bytes_since_index: 0,
            max_timestamp: -1,
            offset_of_max_timestamp: base_offset,
            first_timestamp: None,
            indexes_whole: size == 0 || (index_whole && time_index_whole),
        })
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn flushed_size(&self) -> u64 {
        self.flushed_size
    }

    pub fn next_offset(&self) -> u64 {
        self.next_offset
    }

    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp
    }

    pub fn first_timestamp(&self) -> Option<i64> {
        self.first_timestamp
    }

    /// Appends `batch`, whose stamped first 16 bytes are `prefix`, at the segment's end.
    pub fn append(
        &mut self,
        prefix: &[u8; 16],
        batch: &KafkaBatch,
        base_offset: u64,
        index_interval_bytes: u64,
    ) -> std::io::Result<()> {
        let position = self.size;
        let mut slices = [IoSlice::new(prefix), IoSlice::new(&batch.bytes()[16..])];
        if let Err(e) = write_all_vectored(&self.writer, &mut slices) {
            // Leave no partial batch behind: the log stays as it was.
            self.writer.set_len(position)?;
            self.writer.seek(SeekFrom::Start(position))?;
            return Err(e);
        }
        let header = batch.header();
        self.size += batch.len() as u64;
        self.note_batch(position, base_offset, &header, index_interval_bytes);
        Ok(())
    }

    /// Updates offsets, timestamps and the indexes for a batch at `position`.
    fn note_batch(
        &mut self,
        position: u64,
        base_offset: u64,
        header: &BatchHeader,
        index_interval_bytes: u64,
    ) {
        if header.max_timestamp > self.max_timestamp {
            self.max_timestamp = header.max_timestamp;
            self.offset_of_max_timestamp = base_offset;
        }
        self.first_timestamp.get_or_insert(header.max_timestamp);
        if self.bytes_since_index >= index_interval_bytes {
            self.index.push(OffsetEntry {
                relative_offset: (base_offset - self.base_offset) as u32,
                position: position as u32,
            });
            self.push_time_entry();
            self.bytes_since_index = 0;
        }
        self.bytes_since_index += header.total_bytes;
        self.next_offset = base_offset + header.record_count();
    }

    fn push_time_entry(&mut self) {
        if self.time_index.last().map_or(-1, |e| e.timestamp) < self.max_timestamp {
            self.time_index.push(TimeEntry {
                timestamp: self.max_timestamp,
                relative_offset: (self.offset_of_max_timestamp - self.base_offset) as u32,
            });
        }
    }

    /// The header of the batch at `position`, or `None` at the end of the segment.
    pub fn read_header(&self, position: u64) -> std::io::Result<Option<BatchHeader>> {
        if position >= self.size {
            return Ok(None);
        }
        let mut buf = [0u8; HEADER_BYTES];
        self.reader.read_exact_at(&mut buf, position)?;
        BatchHeader::parse(&buf)
            .map(Some)
            .map_err(|e| corrupt(&self.log_path, position, &e.to_string()))
    }

    /// The position of the first batch whose last offset is at or past `offset` (the batch
    /// holding it), found from the index's nearest entry below, or `None` past the end.
    pub fn position_of(&self, offset: u64) -> std::io::Result<Option<(u64, BatchHeader)>> {
        let relative = offset.saturating_sub(self.base_offset);
        let entries = self.index.entries();
        let nearest = entries.partition_point(|e| u64::from(e.relative_offset) <= relative);
        let mut position = match nearest.checked_sub(1) {
            Some(i) => u64::from(entries[i].position),
            None => 0,
        };
        while let Some(header) = self.read_header(position)? {
            if header.base_offset as u64 + header.record_count() > offset {
                return Ok(Some((position, header)));
            }
            position += header.total_bytes;
        }
        Ok(None)
    }

    /// Where the batches wholly below `offset` end: the position of the batch holding it, or
    /// the segment's end.
    pub fn end_of_batches_below(&self, offset: u64) -> std::io::Result<u64> {
        if offset >= self.next_offset {
            return Ok(self.size);
        }
        Ok(self
            .position_of(offset)?
            .map_or(self.size, |(position, _)| position))
    }

    /// `len` bytes from `position` (fewer at the end), in one positioned read straight into
    /// the buffer's unfilled space (no zeroing first, no shared file cursor).
    pub fn read(&self, position: u64, len: u64) -> std::io::Result<Bytes> {
        let len = len.min(self.size.saturating_sub(position)) as usize;
        if len == 0 {
            return Ok(Bytes::new());
        }
        let mut buf = Vec::with_capacity(len);
        while buf.len() < len {
            let at = position + buf.len() as u64;
            match rustix::io::pread(&self.reader, rustix::buffer::spare_capacity(&mut buf), at) {
                Ok(0) => {
                    return Err(std::io::Error::new(
                        ErrorKind::UnexpectedEof,
                        format!("{} ends early", self.log_path.display()),
                    ))
                }
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        buf.truncate(len);
        Ok(Bytes::from(buf))
    }

    /// The first batch with a max timestamp at or past `timestamp`: its position and header.
    pub fn position_of_timestamp(
        &self,
        timestamp: i64,
    ) -> std::io::Result<Option<(u64, BatchHeader)>> {
        let entries = self.time_index.entries();
        let nearest = entries.partition_point(|e| e.timestamp <= timestamp);
        let start_offset = match nearest.checked_sub(1) {
            Some(i) => self.base_offset + u64::from(entries[i].relative_offset),
            None => self.base_offset,
        };
        let Some((mut position, _)) = self.position_of(start_offset)? else {
            return Ok(None);
        };
        while let Some(header) = self.read_header(position)? {
            if header.max_timestamp >= timestamp {
                return Ok(Some((position, header)));
            }
            position += header.total_bytes;
        }
        Ok(None)
    }

    /// Removes every batch whose last offset is at or past `offset`, and their index entries;
    /// makes the new length durable (a truncation that a crash undid would bring back
    /// batches a follower dropped to match its leader).
    pub fn truncate_to(&mut self, offset: u64) -> std::io::Result<()> {
        let Some((position, _)) = self.position_of(offset)? else {
            return Ok(());
        };
        self.writer.set_len(position)?;
        self.writer.seek(SeekFrom::Start(position))?;
        self.writer.sync_all()?;
        self.size = position;
        self.flushed_size = self.flushed_size.min(position);
        let keep = self
            .index
            .entries()
            .partition_point(|e| u64::from(e.position) < position);
        self.index.truncate(keep)?;
        // Re-derive offsets and timestamps from what is left: the tail after the last index
        // entry is at most one index interval.
        let rescan = self.rescan_tail()?;
        if let Some((at, why)) = rescan.problem {
            return Err(corrupt(&self.log_path, at, &why));
        }
        Ok(())
    }

    /// Recomputes the segment's end, next offset and max timestamp from its index and the
    /// batches after the index's last entry; drops time-index entries past the end.
    fn rescan_tail(&mut self) -> std::io::Result<Scan> {
        let (position, offset) = match self.index.last() {
            Some(e) => (
                u64::from(e.position),
                self.base_offset + u64::from(e.relative_offset),
            ),
            None => (0, self.base_offset),
        };
        let keep = self
            .time_index
            .entries()
            .partition_point(|e| self.base_offset + u64::from(e.relative_offset) < offset);
        self.time_index.truncate(keep)?;
        match self.time_index.last() {
            Some(e) => {
                self.max_timestamp = e.timestamp;
                self.offset_of_max_timestamp = self.base_offset + u64::from(e.relative_offset);
            }
            None => {
                self.max_timestamp = -1;
                self.offset_of_max_timestamp = self.base_offset;
            }
        }
        self.first_timestamp = None;
        if position > 0 {
            self.first_timestamp = self.read_header(0)?.map(|h| h.max_timestamp);
        }
        self.next_offset = offset;
        // The tail's batches are already in the indexes (or below the interval): note them
        // without indexing again.
        let scan = self.scan(position, offset, false)?;
        self.walk_for_stats(position, scan.end_position)?;
        self.next_offset = scan.next_offset;
        Ok(scan)
    }

    /// Notes timestamps of the batches between two positions (no index entries).
    fn walk_for_stats(&mut self, mut position: u64, end: u64) -> std::io::Result<()> {
        self.bytes_since_index = 0;
        while position < end {
            let Some(header) = self.read_header(position)? else {
                break;
            };
            if header.max_timestamp > self.max_timestamp {
                self.max_timestamp = header.max_timestamp;
                self.offset_of_max_timestamp = header.base_offset as u64;
            }
            self.first_timestamp.get_or_insert(header.max_timestamp);
            self.bytes_since_index += header.total_bytes;
            position += header.total_bytes;
        }
        Ok(())
    }

    /// Walks the batches from `position`, expecting the first at `expected_offset` and each
    /// next one right after; with `verify_crc`, reads each whole batch and checks its CRC-32C.
    /// Stops at the end of the file or at the first bad batch.
    pub fn scan(
        &self,
        mut position: u64,
        mut expected_offset: u64,
        verify_crc: bool,
    ) -> std::io::Result<Scan> {
        let mut scan = Scan {
            end_position: position,
            next_offset: expected_offset,
            ..Scan::default()
        };
        let mut buf = Vec::new();
        while position < self.size {
            let remaining = self.size - position;
            if remaining < HEADER_BYTES as u64 {
                scan.problem = Some((position, format!("a torn batch header ({remaining} bytes)")));
                break;
            }
            let mut head = [0u8; HEADER_BYTES];
            self.reader.read_exact_at(&mut head, position)?;
            let header = match BatchHeader::parse(&head) {
                Ok(header) => header,
                Err(e) => {
                    scan.problem = Some((position, e.to_string()));
                    break;
                }
            };
            if header.base_offset as u64 != expected_offset {
                scan.problem = Some((
                    position,
                    format!(
                        "a batch at offset {} where offset {expected_offset} was expected",
                        header.base_offset
                    ),
                ));
                break;
            }
            if header.total_bytes > remaining {
                scan.problem = Some((
                    position,
                    format!(
                        "a torn batch ({} of its {} bytes)",
                        remaining, header.total_bytes
                    ),
                ));
                break;
            }
            if verify_crc {
                buf.resize(header.total_bytes as usize, 0);
                self.reader.read_exact_at(&mut buf, position)?;
                if let Err(e) = header.verify_crc(&buf) {
                    scan.problem = Some((position, e.to_string()));
                    break;
                }
            }
            scan.epochs
                .push((header.partition_leader_epoch, header.base_offset as u64));
            position += header.total_bytes;
            expected_offset += header.record_count();
            scan.end_position = position;
            scan.next_offset = expected_offset;
        }
        Ok(scan)
    }

    /// Recovers a segment that may hold unflushed data: checks every batch from the start
    /// (CRC included), rebuilds both indexes, and returns the scan; the caller decides whether
    /// a problem may be truncated ([`Segment::truncate_at`]).
    pub fn recover(&mut self, index_interval_bytes: u64) -> std::io::Result<Scan> {
        let scan = self.scan(0, self.base_offset, true)?;
        self.rebuild_indexes(scan.end_position, index_interval_bytes)?;
        Ok(scan)
    }

    /// Rebuilds both indexes and the segment's statistics from its batches up to `end`.
    fn rebuild_indexes(&mut self, end: u64, index_interval_bytes: u64) -> std::io::Result<()> {
        self.index.replace(Vec::new())?;
        self.time_index.replace(Vec::new())?;
        self.bytes_since_index = 0;
        self.max_timestamp = -1;
        self.offset_of_max_timestamp = self.base_offset;
        self.first_timestamp = None;
        self.next_offset = self.base_offset;
        let mut position = 0;
        while position < end {
            let header = self
                .read_header(position)?
                .expect("scanned batches lie before the end");
            self.note_batch(
                position,
                header.base_offset as u64,
                &header,
                index_interval_bytes,
            );
            position += header.total_bytes;
        }
        self.index.write_pending()?;
        self.time_index.write_pending()
    }

    /// Cuts the segment at `position` (recovery of a torn or corrupt tail).
    pub fn truncate_at(&mut self, position: u64) -> std::io::Result<()> {
        self.writer.set_len(position)?;
        self.writer.seek(SeekFrom::Start(position))?;
        self.writer.sync_all()?;
        self.size = position;
        self.flushed_size = position;
        Ok(())
    }

    /// Opens a segment that lies wholly below the recovery point (flushed): trusts its index
    /// if it agrees with the `.log` (else rebuilds it from the batch headers) and checks the
    /// batch headers after the index's last entry reach exactly the file's end. A problem is
    /// returned, not repaired: flushed data is never cut.
    pub fn load_flushed(
        &mut self,
        index_interval_bytes: u64,
    ) -> std::io::Result<Option<(u64, String)>> {
        if !self.index_agrees()? {
            tracing::warn!(
                "{}: index missing or inconsistent; rebuilding it",
                self.index.path().display()
            );
            let scan = self.scan(0, self.base_offset, false)?;
            if scan.problem.is_some() {
                return Ok(scan.problem);
            }
            self.rebuild_indexes(scan.end_position, index_interval_bytes)?;
            return Ok(None);
        }
        Ok(self.rescan_tail()?.problem)
    }

    /// Whether the offset index is sorted, points inside the file, and its last entry names
    /// the batch found there.
    fn index_agrees(&self) -> std::io::Result<bool> {
        if !self.indexes_whole {
            return Ok(false);
        }
        let entries = self.index.entries();
        let sorted = entries
            .windows(2)
            .all(|w| w[0].relative_offset < w[1].relative_offset && w[0].position < w[1].position);
        if !sorted {
            return Ok(false);
        }
        let Some(last) = entries.last() else {
            return Ok(true);
        };
        if u64::from(last.position) >= self.size {
            return Ok(false);
        }
        Ok(match self.read_header(u64::from(last.position)) {
            Ok(Some(h)) => {
                h.base_offset as u64 == self.base_offset + u64::from(last.relative_offset)
            }
            _ => false,
        })
    }

    /// Kafka's last time-index entry when a segment stops being the active one, then writes
    /// the indexes' pending entries.
    pub fn write_indexes(&mut self, closing: bool) -> std::io::Result<()> {
        if closing {
            self.push_time_entry();
        }
        self.index.write_pending()?;
        self.time_index.write_pending()
    }

    /// Fsyncs the `.log` and both indexes.
    pub fn flush(&mut self) -> std::io::Result<()> {
        if self.flushed_size == self.size && self.index.path().exists() {
            return Ok(());
        }
        self.writer.sync_data()?;
        self.index.sync()?;
        self.time_index.sync()?;
        self.flushed_size = self.size;
        Ok(())
    }

    /// Deletes the segment's files (what is open of them stays readable until dropped).
    pub fn delete(&self) -> std::io::Result<()> {
        for path in [
            self.log_path.clone(),
            self.index.path().to_path_buf(),
            self.time_index.path().to_path_buf(),
        ] {
            match fs::remove_file(&path) {
                Err(e) if e.kind() != ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }
}

fn corrupt(path: &Path, position: u64, why: &str) -> std::io::Error {
    std::io::Error::new(
        ErrorKind::InvalidData,
        format!("{}, byte {position}: {why}", path.display()),
    )
}

/// `write_all` for two slices in as few `writev` calls as the kernel allows.
fn write_all_vectored(mut file: &File, mut slices: &mut [IoSlice<'_>]) -> std::io::Result<()> {
    while !slices.is_empty() {
        match file.write_vectored(slices) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
