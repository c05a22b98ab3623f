//! File-system helpers the stores share: files only their owner can read, and directory
//! entries made durable.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// Opens `path` with `options`; a file it creates gets mode 0600 on Unix (elsewhere the
/// platform's default).
pub fn open_private(path: &Path, options: &mut OpenOptions) -> io::Result<File> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(path)
}

/// Creates `path` (never overwriting: `AlreadyExists` when it is there) with `mode` on Unix,
/// writes `bytes` and syncs them: key files and other files written once.
pub fn write_new(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    use io::Write as _;
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Makes the entries of directory `dir` durable (after creating or renaming a file in it).
/// A no-op where directories cannot be opened (non-Unix).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// [`sync_dir`] of the directory holding `path` (`.` for a bare file name).
pub fn sync_parent_dir(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => sync_dir(p),
        _ => sync_dir(Path::new(".")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_files_and_directory_sync() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        let mut options = OpenOptions::new();
        open_private(&path, options.write(true).create_new(true)).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let again = open_private(&path, OpenOptions::new().write(true).create_new(true));
        assert_eq!(again.unwrap_err().kind(), io::ErrorKind::AlreadyExists);
        sync_dir(dir.path()).unwrap();
        sync_parent_dir(&path).unwrap();
        #[cfg(unix)]
        assert_eq!(
            sync_dir(&dir.path().join("missing")).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }
}
