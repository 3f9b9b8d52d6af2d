//! [`RealFs`]: the operating system's file system, one `std::fs` call per operation.

use std::fs::{File as StdFile, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::{File, Fs, OpenMode};

/// The real file system. Zero-sized; every operation is the `std::fs` call it names.
#[derive(Clone, Copy, Debug, Default)]
pub struct RealFs;

/// An open real file.
#[derive(Debug)]
struct RealFile(StdFile);

pub(crate) fn open_std(path: &Path, mode: OpenMode) -> io::Result<StdFile> {
    let mut o = OpenOptions::new();
    match mode {
        OpenMode::Read => o.read(true),
        OpenMode::CreateNew => o.read(true).append(true).create_new(true),
        OpenMode::CreateTruncate => o.read(true).write(true).create(true).truncate(true),
        OpenMode::Append => o.read(true).append(true),
    };
    let f = o.open(path)?;
    if mode == OpenMode::CreateTruncate {
        // `truncate` and `append` cannot be combined in one open; reopen for appending so
        // every writable handle writes at the end.
        drop(f);
        return OpenOptions::new().read(true).append(true).open(path);
    }
    Ok(f)
}

impl File for RealFile {
    fn append(&self, buf: &[u8]) -> io::Result<()> {
        (&self.0).write_all(buf)
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.0.read_at(buf, offset)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn sync_all(&self) -> io::Result<()> {
        self.0.sync_all()
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
}

impl Fs for RealFs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn File>> {
        Ok(Box::new(RealFile(open_std(path, mode)?)))
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    fn read_dir(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        std::fs::read_dir(dir)?
            .map(|e| e.map(|e| e.path()))
            .collect()
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::remove_dir_all(dir)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        StdFile::open(dir)?.sync_all()
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        path.try_exists()
    }

    fn is_dir(&self, path: &Path) -> io::Result<bool> {
        match std::fs::metadata(path) {
            Ok(m) => Ok(m.is_dir()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    fn file_len(&self, path: &Path) -> io::Result<u64> {
        Ok(std::fs::metadata(path)?.len())
    }
}
