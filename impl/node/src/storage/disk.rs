//! The file operations storage needs, behind a trait: the real file system ([`FsDisk`]), or an in-memory
//! disk that crashes on demand ([`super::faulty::FaultyDisk`]) for the crash-consistency tests.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// What storage does to files. Paths are relative to the disk's root. A write is durable only once
/// [`Disk::sync`] of its file returned; a creation, rename or removal only once [`Disk::sync_dir`] did.
pub trait Disk {
    /// The names of the files in the root, in no particular order.
    fn list(&mut self) -> io::Result<Vec<String>>;
    /// The whole content of `name`.
    fn read(&mut self, name: &str) -> io::Result<Vec<u8>>;
    /// Appends `bytes` to `name`, creating it if it does not exist.
    fn append(&mut self, name: &str, bytes: &[u8]) -> io::Result<()>;
    /// Makes the content of `name` durable (`fdatasync`).
    fn sync(&mut self, name: &str) -> io::Result<()>;
    /// Cuts `name` to `len` bytes.
    fn truncate(&mut self, name: &str, len: u64) -> io::Result<()>;
    /// Renames `from` to `to`, replacing `to` if it exists.
    fn rename(&mut self, from: &str, to: &str) -> io::Result<()>;
    /// Removes `name`.
    fn remove(&mut self, name: &str) -> io::Result<()>;
    /// Makes the root directory's entries durable (creations, renames, removals).
    fn sync_dir(&mut self) -> io::Result<()>;
}

/// A disk lent: storage opened on `&mut disk` leaves the disk to its owner afterwards (tests that look at a
/// disk after a failed open).
impl<D: Disk + ?Sized> Disk for &mut D {
    fn list(&mut self) -> io::Result<Vec<String>> {
        (**self).list()
    }
    fn read(&mut self, name: &str) -> io::Result<Vec<u8>> {
        (**self).read(name)
    }
    fn append(&mut self, name: &str, bytes: &[u8]) -> io::Result<()> {
        (**self).append(name, bytes)
    }
    fn sync(&mut self, name: &str) -> io::Result<()> {
        (**self).sync(name)
    }
    fn truncate(&mut self, name: &str, len: u64) -> io::Result<()> {
        (**self).truncate(name, len)
    }
    fn rename(&mut self, from: &str, to: &str) -> io::Result<()> {
        (**self).rename(from, to)
    }
    fn remove(&mut self, name: &str) -> io::Result<()> {
        (**self).remove(name)
    }
    fn sync_dir(&mut self) -> io::Result<()> {
        (**self).sync_dir()
    }
}

/// Creates `dir` and its missing parents, syncing the parent of each directory created (a new directory's
/// entry is durable only once its parent is synced). Returns the directories synced, outermost first.
pub fn create_dir_durably(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut missing = Vec::new();
    let mut at = dir;
    while !at.exists() {
        missing.push(at);
        match at.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => at = parent,
            _ => break,
        }
    }
    fs::create_dir_all(dir)?;
    let mut synced = Vec::new();
    for created in missing.into_iter().rev() {
        let parent = match created.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        File::open(parent)?.sync_all()?;
        synced.push(parent.to_path_buf());
    }
    Ok(synced)
}

/// The real file system under a root directory. The file last appended to stays open.
pub struct FsDisk {
    root: PathBuf,
    open: Option<(String, File)>,
}

impl FsDisk {
    /// A disk rooted at `root`, which is created if it does not exist.
    pub fn new(root: impl Into<PathBuf>) -> io::Result<FsDisk> {
        let root = root.into();
        create_dir_durably(&root)?;
        Ok(FsDisk { root, open: None })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn file(&mut self, name: &str) -> io::Result<&mut File> {
        if self.open.as_ref().is_none_or(|(open, _)| open != name) {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.root.join(name))?;
            self.open = Some((name.to_string(), file));
        }
        Ok(&mut self.open.as_mut().expect("opened above").1)
    }

    fn forget(&mut self, name: &str) {
        if self.open.as_ref().is_some_and(|(open, _)| open == name) {
            self.open = None;
        }
    }
}

impl Disk for FsDisk {
    fn list(&mut self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.root)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        Ok(names)
    }

    fn read(&mut self, name: &str) -> io::Result<Vec<u8>> {
        fs::read(self.root.join(name))
    }

    fn append(&mut self, name: &str, bytes: &[u8]) -> io::Result<()> {
        self.file(name)?.write_all(bytes)
    }

    fn sync(&mut self, name: &str) -> io::Result<()> {
        self.file(name)?.sync_data()
    }

    fn truncate(&mut self, name: &str, len: u64) -> io::Result<()> {
        self.forget(name);
        let file = OpenOptions::new().write(true).open(self.root.join(name))?;
        file.set_len(len)?;
        file.sync_all()
    }

    fn rename(&mut self, from: &str, to: &str) -> io::Result<()> {
        self.forget(from);
        self.forget(to);
        fs::rename(self.root.join(from), self.root.join(to))
    }

    fn remove(&mut self, name: &str) -> io::Result<()> {
        self.forget(name);
        fs::remove_file(self.root.join(name))
    }

    fn sync_dir(&mut self) -> io::Result<()> {
        File::open(&self.root)?.sync_all()
    }
}
