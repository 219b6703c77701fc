//! Kafka's text checkpoint files: a version line (`0`), a count, then one entry per line. Each
//! write goes to `<name>.tmp`, is fsynced, renamed over the old file, and the folder fsynced,
//! so a crash leaves either the old file or the new one.

use super::StorageError;
use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::Path;

const VERSION: &str = "0";

/// Reads a checkpoint's entry lines, each split on spaces into exactly `fields` fields; `None`
/// when the file does not exist.
pub fn read(path: &Path, fields: usize) -> Result<Option<Vec<Vec<String>>>, StorageError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StorageError::io(path, e)),
    };
    let malformed = |line: usize, why: &str| StorageError::Checkpoint {
        path: path.to_path_buf(),
        line,
        why: why.to_string(),
    };
    let mut lines = text.lines();
    if lines.next() != Some(VERSION) {
        return Err(malformed(1, "the first line is not the version 0"));
    }
    let count: usize = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| malformed(2, "the second line is not an entry count"))?;
    let entries: Vec<Vec<String>> = lines
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect();
    if entries.len() != count {
        return Err(malformed(
            2,
            &format!(
                "the count says {count} entries but {} follow",
                entries.len()
            ),
        ));
    }
    if let Some(bad) = entries.iter().position(|e| e.len() != fields) {
        return Err(malformed(
            bad + 3,
            &format!("an entry needs {fields} fields"),
        ));
    }
    Ok(Some(entries))
}

/// Parses one field of an entry read by [`read`].
pub fn field<T: std::str::FromStr>(
    path: &Path,
    line: usize,
    text: &str,
) -> Result<T, StorageError> {
    text.parse().map_err(|_| StorageError::Checkpoint {
        path: path.to_path_buf(),
        line: line + 3,
        why: format!("{text:?} is not a number"),
    })
}

/// Replaces the checkpoint at `path` with `entries` (each already formatted as a line).
pub fn write(path: &Path, entries: &[String]) -> Result<(), StorageError> {
    let mut text = format!("{VERSION}\n{}\n", entries.len());
    for entry in entries {
        text.push_str(entry);
        text.push('\n');
    }
    write_atomic(path, text.as_bytes()).map_err(|e| StorageError::io(path, e))
}

/// Replaces the file at `path` with `bytes` so that a crash leaves the old file or the new one:
/// `<path>.tmp` written and fsynced, renamed over `path`, the folder fsynced.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temp = path.with_extension("tmp");
    let mut file = File::create(&temp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&temp, path)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Fsyncs a folder, so that files created, renamed or deleted in it stay so after a crash.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_malformed_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("leader-epoch-checkpoint");
        assert_eq!(read(&path, 2).unwrap(), None);
        write(&path, &["1 0".to_string(), "3 17".to_string()]).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "0\n2\n1 0\n3 17\n");
        let entries = read(&path, 2).unwrap().unwrap();
        assert_eq!(entries[1], vec!["3".to_string(), "17".to_string()]);
        assert!(!path.with_extension("tmp").exists());

        fs::write(&path, "0\n3\n1 0\n").unwrap();
        let error = read(&path, 2).unwrap_err().to_string();
        assert!(error.contains("leader-epoch-checkpoint"), "{error}");
        assert!(
            error.contains("count says 3 entries but 1 follow"),
            "{error}"
        );
        fs::write(&path, "0\n1\nx 0\n").unwrap();
        let entries = read(&path, 2).unwrap().unwrap();
        let error = field::<u64>(&path, 0, &entries[0][0])
            .unwrap_err()
            .to_string();
        assert!(error.contains("line 3"), "{error}");
    }
}
