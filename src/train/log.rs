//! The run's log: one [`LogRecord`] per line in `log.jsonl`, appended and flushed line by line,
//! so it can be followed while training and plotted afterwards (`lifted plot`).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::TrainError;
use crate::runlog::LogRecord;

/// An open `log.jsonl`.
pub struct RunLog {
    path: PathBuf,
    file: File,
}

impl RunLog {
    /// Opens (appending) `run/log.jsonl`.
    ///
    /// # Errors
    /// [`TrainError::Io`] when `log.jsonl` cannot be opened or created.
    pub fn open(run: &Path) -> Result<RunLog, TrainError> {
        let path = run.join("log.jsonl");
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|source| TrainError::Io {
                path: path.clone(),
                source,
            })?;
        Ok(RunLog { path, file })
    }

    /// Appends one record.
    ///
    /// # Errors
    /// [`TrainError::Io`] when the line cannot be written.
    pub fn write(&mut self, record: &LogRecord) -> Result<(), TrainError> {
        let mut line = serde_json::to_vec(record).expect("a log record serialises");
        line.push(b'\n');
        self.file.write_all(&line).map_err(|source| TrainError::Io {
            path: self.path.clone(),
            source,
        })
    }

    /// Flushes the log to disk (done at every checkpoint).
    ///
    /// # Errors
    /// [`TrainError::Io`] when the file cannot be synced.
    pub fn sync(&self) -> Result<(), TrainError> {
        self.file.sync_data().map_err(|source| TrainError::Io {
            path: self.path.clone(),
            source,
        })
    }
}

/// Drops the records logged after `global_step` steps were done (when a run resumes from an earlier
/// checkpoint than the last step it logged).
///
/// # Errors
/// [`TrainError::Io`] when the shortened log cannot be written; a log that is missing or cannot be
/// read is left alone, without an error.
pub fn truncate_after(run: &Path, global_step: u64) -> Result<(), TrainError> {
    let path = run.join("log.jsonl");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(());
    };
    let kept: String = text
        .lines()
        .filter(|line| {
            serde_json::from_str::<LogRecord>(line)
                .map_or(true, |record| record.global_step() <= global_step)
        })
        .map(|line| format!("{line}\n"))
        .collect();
    crate::fsutil::write_atomic(&path, kept.as_bytes())
        .map_err(|source| TrainError::Io { path, source })
}
