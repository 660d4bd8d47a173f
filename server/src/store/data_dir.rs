//! The server's data directory: the lock that keeps a second server process off it, and the
//! files of each bot's WhatsApp device store (private to the server's user: 0700 / 0600).
//!
//! Two processes on one data directory would run two WhatsApp clients for one device — the
//! 440 loop of the seed backends — so the second one refuses to start.

use std::{
    fs::{File, OpenOptions},
    path::{Path, PathBuf},
};

/// The directory, held for the life of the process (the lock goes with the last handle).
pub struct DataDir {
    path: PathBuf,
    /// Held open: the OS lock lives as long as this file handle.
    _lock: Option<File>,
    /// A temporary directory (for `--db :memory:`), removed when the server stops.
    _temp: Option<tempfile::TempDir>,
}

#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error(
        "another botlink-server is already running on the data directory {0} \
         (its lock file {0}/botlink.lock is held). Stop it first, or give this one \
         another --data-dir and --db."
    )]
    Locked(String),
    #[error("the data directory {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DataDirError + '_ {
    move |source| DataDirError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl DataDir {
    /// Opens (creating it if needed) and locks `path`.
    pub fn open_locked(path: &Path) -> Result<DataDir, DataDirError> {
        create_private_dir(path)?;
        let lock_path = path.join("botlink.lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(DataDirError::Locked(path.display().to_string()));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(&lock_path)(e)),
        }
        Ok(DataDir {
            path: path.to_owned(),
            _lock: Some(lock),
            _temp: None,
        })
    }

    /// A fresh temporary directory, unlocked: tests run many servers side by side.
    pub fn temporary() -> Result<DataDir, DataDirError> {
        let temp = tempfile::Builder::new()
            .prefix("botlink-data.")
            .tempdir()
            .map_err(io(Path::new("(temporary)")))?;
        Ok(DataDir {
            path: temp.path().to_owned(),
            _lock: None,
            _temp: Some(temp),
        })
    }

    /// The data directory for `--db` and `--data-dir`: the given directory, else the directory
    /// of the database file; `:memory:` with no `--data-dir` gets a temporary one.
    pub fn for_server(db: &str, data_dir: Option<&Path>) -> Result<DataDir, DataDirError> {
        match data_dir {
            Some(dir) => DataDir::open_locked(dir),
            None if db == ":memory:" => DataDir::temporary(),
            None => {
                let parent = Path::new(db)
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                DataDir::open_locked(parent)
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the bots' device stores live (created on first use, 0700).
    pub fn devices(&self) -> Result<PathBuf, DataDirError> {
        let dir = self.path.join("devices");
        create_private_dir(&dir)?;
        Ok(dir)
    }
}

/// Creates `path` (and its parents) if missing; a directory we create is 0700.
fn create_private_dir(path: &Path) -> Result<(), DataDirError> {
    if path.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path).map_err(io(path))
}

/// Creates an empty file that only the server's user may read or write (0600), if it does not
/// exist yet. SQLite gives its `-wal` and `-shm` files the mode of the database file, so a
/// device store created this way keeps all three private.
pub fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut options = OpenOptions::new();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_directory_is_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDir::open_locked(dir.path()).unwrap();
        let Err(second) = DataDir::open_locked(dir.path()) else {
            panic!("a second lock on one data directory must fail");
        };
        assert!(
            second.to_string().contains("another botlink-server"),
            "{second}"
        );
        drop(first);
        DataDir::open_locked(dir.path()).expect("free again once the first lets go");
    }

    #[cfg(unix)]
    #[test]
    fn device_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = DataDir::temporary().unwrap();
        let devices = dir.devices().unwrap();
        let file = devices.join("bot.sqlite");
        create_private_file(&file).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(&devices), 0o700);
    }

    #[test]
    fn the_data_directory_defaults_to_the_database_files_directory() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("botlink.db");
        let data = DataDir::for_server(db.to_str().unwrap(), None).unwrap();
        assert_eq!(data.path(), dir.path());
        let memory = DataDir::for_server(":memory:", None).unwrap();
        assert!(memory.path().is_dir());
        // A temporary directory takes no lock: two in-memory servers run side by side.
        assert!(DataDir::for_server(":memory:", None).is_ok());
    }
}
