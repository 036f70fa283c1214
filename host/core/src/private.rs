//! Files only their owner may read: a store holds an estate's whole inventory and plugin
//! state such as a tenant's secret seed, and compiled code is run as the host. So what
//! infragraph creates (the store, exports, reports, recordings, the compiled-code cache)
//! is created owner-only, 0600 files in 0700 directories, whatever the umask; and code is
//! not loaded from where another user could have put it.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Owner read and write.
pub const FILE_MODE: u32 = 0o600;
/// Owner read, write and search.
pub const DIR_MODE: u32 = 0o700;

/// Creates `dir` and its missing parents owner-only; existing directories are left as
/// they are (a user's home is theirs to set).
pub fn create_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir)
}

/// Opens `path` for writing, truncated, owner-only: created 0600, and an existing file
/// narrowed to 0600 before anything is written into it.
pub fn create_file(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(path)?;
    file.set_permissions(fs::Permissions::from_mode(FILE_MODE))?;
    Ok(file)
}

/// Writes `bytes` to `path` as [`create_file`] opens it.
pub fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut file = create_file(path)?;
    file.write_all(bytes)
}

/// Creates `path` empty and owner-only when it does not exist (for a file another
/// library opens next, such as SQLite's, which would create it 0644 and its journals
/// with the same mode).
pub fn touch_file(path: &Path) -> io::Result<()> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// This process's effective user id: what names a per-user directory where no home
/// directory gives one.
pub fn user_id() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Why another user could have written `path` (a file or directory), if one could: it
/// is writable by its group or by everyone, or it belongs to another user.
pub fn writable_by_others(path: &Path) -> io::Result<Option<String>> {
    let meta = fs::symlink_metadata(path)?;
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        let who = if mode & 0o002 != 0 {
            "every user"
        } else {
            "its group"
        };
        return Ok(Some(format!(
            "{} is writable by {who} (mode {mode:04o}); `chmod go-w {}` makes it yours alone",
            path.display(),
            path.display()
        )));
    }
    let me = user_id();
    if meta.uid() != me {
        return Ok(Some(format!(
            "{} belongs to user {}, not to this user ({me})",
            path.display(),
            meta.uid()
        )));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_and_directories_are_the_owners_alone_whatever_was_there() {
        let root = std::env::temp_dir().join(format!("infragraph-private-{}", std::process::id()));
        let dir = root.join("a/b");
        create_dir(&dir).unwrap();
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        let file = dir.join("f");
        fs::write(&file, b"old").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o666)).unwrap();
        write_file(&file, b"new").unwrap();
        assert_eq!(fs::metadata(&file).unwrap().mode() & 0o777, 0o600);
        assert_eq!(fs::read(&file).unwrap(), b"new");
        assert_eq!(writable_by_others(&file).unwrap(), None);
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        let why = writable_by_others(&dir).unwrap().expect("refused");
        assert!(why.contains("every user") && why.contains("0777"), "{why}");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o770)).unwrap();
        let why = writable_by_others(&dir).unwrap().expect("refused");
        assert!(why.contains("its group"), "{why}");
        let fresh = dir.join("g");
        touch_file(&fresh).unwrap();
        assert_eq!(fs::metadata(&fresh).unwrap().mode() & 0o777, 0o600);
        fs::remove_dir_all(&root).unwrap();
    }
}
