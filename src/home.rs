//! `CRAIK_HOME`: where craik keeps its state.
//!
//! The directory is created 0700. Every file is written atomically (a
//! temporary file in the same directory, fsync, rename, fsync of the
//! directory) with mode 0600, and read-modify-write cycles hold an exclusive
//! cross-process lock. A home or a file that is a symlink, is writable by
//! group or others, or belongs to another user is refused.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Errors about the home directory and its files.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HomeError {
    #[error("cannot find a home directory for craik")]
    NoHome,
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is a symlink; craik refuses to follow symlinks in its home")]
    Symlink { path: PathBuf },
    #[error("{path} is writable by group or others (mode {mode:04o})")]
    Writable { path: PathBuf, mode: u32, dir: bool },
    #[error("{path} is owned by uid {owner}, not by you (uid {me})")]
    NotOwned { path: PathBuf, owner: u32, me: u32 },
    #[error("{path} is not a {expected}")]
    WrongType {
        path: PathBuf,
        expected: &'static str,
    },
    /// `path` exists and is not a regular file: a write that replaces a
    /// file whole would replace it (a device, a pipe, a link).
    #[error("{path} exists and is not a regular file; craik will not replace it")]
    NotRegular { path: PathBuf },
}

impl HomeError {
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            HomeError::NoHome => "set CRAIK_HOME to a directory craik may own".into(),
            HomeError::Io { source, .. } => match source.kind() {
                io::ErrorKind::StorageFull => "free some space on that disk".into(),
                io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
                    "check that you may write there (permissions, a read-only mount)".into()
                }
                _ => "check that the path exists and is accessible".into(),
            },
            HomeError::Symlink { path } => format!(
                "replace the symlink with a real {} (or point CRAIK_HOME at the real directory)",
                if path.extension().is_some() {
                    "file"
                } else {
                    "directory"
                }
            ),
            HomeError::Writable { path, dir, .. } => format!(
                "run: chmod {} {}",
                if *dir { "700" } else { "600" },
                path.display()
            ),
            HomeError::NotOwned { path, .. } => format!(
                "use a CRAIK_HOME that you own, or chown {} to yourself",
                path.display()
            ),
            HomeError::WrongType { .. } => "remove it or point CRAIK_HOME elsewhere".into(),
            HomeError::NotRegular { .. } => "name a new file, or an existing regular one".into(),
        })
    }
}

type Result<T> = std::result::Result<T, HomeError>;

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> HomeError + '_ {
    move |source| HomeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The current user's uid.
pub fn current_uid() -> u32 {
    rustix::process::getuid().as_raw()
}

/// Checks that `path` is not a symlink, has the expected type, is owned by
/// the current user and is not writable by group or others.
/// Returns `Ok(false)` when it does not exist.
pub fn check_owner_only(path: &Path, dir: bool) -> Result<bool> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io_err(path)(e)),
    };
    if meta.file_type().is_symlink() {
        return Err(HomeError::Symlink {
            path: path.to_path_buf(),
        });
    }
    if dir && !meta.is_dir() {
        return Err(HomeError::WrongType {
            path: path.to_path_buf(),
            expected: "directory",
        });
    }
    if !dir && !meta.is_file() {
        return Err(HomeError::WrongType {
            path: path.to_path_buf(),
            expected: "regular file",
        });
    }
    let me = current_uid();
    if meta.uid() != me {
        return Err(HomeError::NotOwned {
            path: path.to_path_buf(),
            owner: meta.uid(),
            me,
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(HomeError::Writable {
            path: path.to_path_buf(),
            mode,
            dir,
        });
    }
    Ok(true)
}

/// The craik home directory.
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// The path craik would use: `CRAIK_HOME`, else `~/.craik`.
    pub fn default_path() -> Result<PathBuf> {
        if let Some(p) = std::env::var_os("CRAIK_HOME").filter(|p| !p.is_empty()) {
            return Ok(PathBuf::from(p));
        }
        std::env::home_dir()
            .filter(|h| !h.as_os_str().is_empty())
            .map(|h| h.join(".craik"))
            .ok_or(HomeError::NoHome)
    }

    /// Opens (creating it 0700 if needed) the home at the default path.
    pub fn open_default() -> Result<Home> {
        Home::open(Home::default_path()?)
    }

    /// Opens the home at `root`, creating it 0700 if it does not exist.
    pub fn open(root: impl Into<PathBuf>) -> Result<Home> {
        let root = root.into();
        if !check_owner_only(&root, true)? {
            if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
                fs::create_dir_all(parent).map_err(io_err(parent))?;
            }
            match fs::DirBuilder::new().mode(0o700).create(&root) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io_err(&root)(e)),
            }
            // The umask may have removed bits but never adds any; make sure.
            fs::set_permissions(&root, fs::Permissions::from_mode(0o700)).map_err(io_err(&root))?;
            check_owner_only(&root, true)?;
        }
        Ok(Home { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Reads a file of the home, checking it first. `None` if absent.
    pub fn read(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let path = self.path(name);
        if !check_owner_only(&path, false)? {
            return Ok(None);
        }
        match fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// Checks a file of the home without reading it; true when it exists.
    pub fn check_file(&self, name: &str) -> Result<bool> {
        check_owner_only(&self.path(name), false)
    }

    /// Writes `data` to `name` atomically with mode 0600.
    pub fn write_atomic(&self, name: &str, data: &[u8]) -> Result<()> {
        let path = self.path(name);
        // Refuse to replace a symlink or someone else's file.
        check_owner_only(&path, false)?;
        write_atomic_path(&path, data)
    }

    /// Removes a file of the home; true if it existed.
    pub fn remove(&self, name: &str) -> Result<bool> {
        let path = self.path(name);
        match fs::remove_file(&path) {
            Ok(()) => {
                sync_dir(&self.root)?;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// Takes an exclusive cross-process lock named `name` (a `.lock` file in
    /// the home). Held until the guard is dropped.
    pub fn lock(&self, name: &str) -> Result<FileLock> {
        let path = self.path(&format!(".{name}.lock"));
        check_owner_only(&path, false)?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&path)
            .map_err(io_err(&path))?;
        file.lock().map_err(io_err(&path))?;
        Ok(FileLock { _file: file })
    }
}

/// An exclusive lock on a file; released on drop (or process exit).
#[derive(Debug)]
pub struct FileLock {
    _file: File,
}

/// The directory `path` is in (`.` for a bare file name).
pub fn dir_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Writes `data` to `path` atomically (temporary file in the same
/// directory, 0600, fsync, rename, fsync of the directory).
pub fn write_atomic_path(path: &Path, data: &[u8]) -> Result<()> {
    // A rename would put a regular file in place of a device (as root,
    // `--out /dev/null`), a pipe or a symlink.
    if path.symlink_metadata().is_ok_and(|m| !m.is_file()) {
        return Err(HomeError::NotRegular {
            path: path.to_path_buf(),
        });
    }
    let dir = dir_of(path);
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(io_err(dir))?;
    // Named by the file it was to become, not the temporary name.
    tmp.as_file_mut().write_all(data).map_err(io_err(path))?;
    tmp.as_file().sync_all().map_err(io_err(path))?;
    tmp.persist(path).map_err(|e| io_err(path)(e.error))?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}
