//! Writing platform state: private files are 0600 from their first byte, and updates
//! are atomic so a crash never leaves a half-written file (but for caches, written
//! with [`replace_unsynced`], whose readers refuse what a crash damaged).

use crate::PlatformError;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Mode of files holding private keys or sealing roots.
pub const PRIVATE_MODE: u32 = 0o600;
/// Mode of public files.
pub const PUBLIC_MODE: u32 = 0o644;

/// Creates `path` with `mode`; fails if it exists.
pub fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), PlatformError> {
    create_with(path, bytes, mode, Contents::Synced)
}

/// Whether a file's contents are synced before it is put in place.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Contents {
    Synced,
    Unsynced,
}

fn create_with(path: &Path, bytes: &[u8], mode: u32, sync: Contents) -> Result<(), PlatformError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                PlatformError::AlreadyExists(path.display().to_string())
            } else {
                PlatformError::io("cannot create", path)(e)
            }
        })?;
    file.write_all(bytes)
        .map_err(PlatformError::io("cannot write", path))?;
    if sync == Contents::Unsynced {
        return Ok(());
    }
    file.sync_all()
        .map_err(PlatformError::io("cannot sync", path))
}

/// Replaces `path` atomically (write a temporary file, sync, rename).
pub fn replace(path: &Path, bytes: &[u8], mode: u32) -> Result<(), PlatformError> {
    let dir = rename_into_place(path, bytes, mode, Contents::Synced)?;
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Replaces `path` atomically and durably: like [`replace`], then syncs the directory
/// and fails if that fails, so the new contents survive a crash once this returns.
pub fn replace_durable(path: &Path, bytes: &[u8], mode: u32) -> Result<(), PlatformError> {
    let dir = rename_into_place(path, bytes, mode, Contents::Synced)?;
    sync_dir(dir)
}

/// Replaces `path` atomically but syncs nothing: for a cache, whose files a crash may
/// leave empty or cut short (the reader must refuse those) and whose loss costs only
/// what it saved. The rename still means a reader sees the old file or the new one
/// whole while the system runs.
pub fn replace_unsynced(path: &Path, bytes: &[u8], mode: u32) -> Result<(), PlatformError> {
    rename_into_place(path, bytes, mode, Contents::Unsynced).map(|_| ())
}

/// Syncs a directory, so entries created or renamed in it are durable.
pub fn sync_dir(dir: &Path) -> Result<(), PlatformError> {
    fs::File::open(dir)
        .map_err(PlatformError::io("cannot open directory", dir))?
        .sync_all()
        .map_err(PlatformError::io("cannot sync directory", dir))
}

/// Writes a temporary file beside `path` (synced if `sync` says so) and renames it over
/// `path`; returns the directory.
fn rename_into_place<'p>(
    path: &'p Path,
    bytes: &[u8],
    mode: u32,
    sync: Contents,
) -> Result<&'p Path, PlatformError> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("state");
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    create_with(&tmp, bytes, mode, sync)?;
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(PlatformError::io("cannot replace", path)(e));
    }
    Ok(dir)
}

/// Reads a file, naming it on failure.
pub fn read(path: &Path) -> Result<Vec<u8>, PlatformError> {
    fs::read(path).map_err(PlatformError::io("cannot read", path))
}

/// Creates a directory (and parents) that is private to the user.
pub fn create_private_dir(path: &Path) -> Result<(), PlatformError> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(PlatformError::io("cannot create directory", path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn private_files_are_0600_and_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("key");
        write_new(&p, b"k", PRIVATE_MODE).unwrap();
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(matches!(
            write_new(&p, b"x", PRIVATE_MODE),
            Err(PlatformError::AlreadyExists(_))
        ));
        assert_eq!(fs::read(&p).unwrap(), b"k");
        replace(&p, b"new", PRIVATE_MODE).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"new");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // A cache's replacement: the same mode, the same atomic rename, no temporary
        // file left beside it.
        replace_unsynced(&p, b"cached", PRIVATE_MODE).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"cached");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["key"]);
    }
}
