//! Where the workspace's readers get a file: the disk, or what a command is about to write
//! over it (a `WritePlan` implements [`Files`]), so `new` reads the proto it just rendered.

use std::io;
use std::path::Path;

/// The files of a workspace, by path relative to its root.
pub trait Files {
    /// The bytes of a regular file; `NotFound` when there is none.
    fn read(&self, rel: &Path) -> io::Result<Vec<u8>>;

    /// Whether a regular file is there.
    fn exists(&self, rel: &Path) -> bool;

    /// The text of a regular file, when there is one that reads.
    fn read_text(&self, rel: &Path) -> Option<String> {
        String::from_utf8(self.read(rel).ok()?).ok()
    }
}

/// The workspace as it is on disk.
pub struct Disk<'a>(pub &'a Path);

impl Files for Disk<'_> {
    fn read(&self, rel: &Path) -> io::Result<Vec<u8>> {
        let path = self.0.join(rel);
        if !path.is_file() {
            return Err(io::Error::new(io::ErrorKind::NotFound, "not a file"));
        }
        fs_err::read(path)
    }

    fn exists(&self, rel: &Path) -> bool {
        self.0.join(rel).is_file()
    }
}
