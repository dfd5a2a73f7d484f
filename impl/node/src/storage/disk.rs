//! The file operations storage needs, behind a trait: the real file system ([`FsDisk`]), or an in-memory
//! disk that crashes on demand ([`super::faulty::FaultyDisk`]) for the crash-consistency tests.

use std::collections::BTreeMap;
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
/// disk after a failed open; a process that picks its disk at run time, as `&mut dyn Disk`).
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

/// For tests of real processes: the real file system, with every write that was not synced kept inside
/// the process (a write-back cache that reaches the file only at [`Disk::sync`]). A process killed with
/// SIGKILL then loses exactly the file contents a power cut would lose, where on [`FsDisk`] the page cache
/// keeps them and a missing sync goes unseen. Creations, renames and removals still reach the file system
/// at once: a lost directory sync is not simulated (the in-memory [`super::faulty::FaultyDisk`] tests
/// that).
pub struct WriteBackDisk {
    fs: FsDisk,
    /// Bytes appended to each file and not yet synced.
    unsynced: BTreeMap<String, Vec<u8>>,
    /// Whether [`Disk::sync`] does nothing (to show that a test of this disk notices).
    lie: bool,
}

impl WriteBackDisk {
    /// A write-back disk over [`FsDisk::new`]`(root)`; with `lie`, syncs do nothing and nothing written ever
    /// reaches the files.
    pub fn new(root: impl Into<PathBuf>, lie: bool) -> io::Result<WriteBackDisk> {
        Ok(WriteBackDisk {
            fs: FsDisk::new(root)?,
            unsynced: BTreeMap::new(),
            lie,
        })
    }

    fn on_disk(&self, name: &str) -> bool {
        self.fs.root.join(name).is_file()
    }
}

impl Disk for WriteBackDisk {
    fn list(&mut self) -> io::Result<Vec<String>> {
        let mut names = self.fs.list()?;
        for name in self.unsynced.keys() {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        Ok(names)
    }

    fn read(&mut self, name: &str) -> io::Result<Vec<u8>> {
        let mut bytes = match self.unsynced.contains_key(name) && !self.on_disk(name) {
            true => Vec::new(),
            false => self.fs.read(name)?,
        };
        bytes.extend_from_slice(self.unsynced.get(name).map_or(&[][..], Vec::as_slice));
        Ok(bytes)
    }

    fn append(&mut self, name: &str, bytes: &[u8]) -> io::Result<()> {
        self.unsynced
            .entry(name.to_string())
            .or_default()
            .extend_from_slice(bytes);
        Ok(())
    }

    fn sync(&mut self, name: &str) -> io::Result<()> {
        if self.lie {
            return Ok(());
        }
        if let Some(bytes) = self.unsynced.remove(name) {
            self.fs.append(name, &bytes)?;
        }
        self.fs.sync(name)
    }

    fn truncate(&mut self, name: &str, len: u64) -> io::Result<()> {
        let on_disk = if self.on_disk(name) {
            fs::metadata(self.fs.root.join(name))?.len()
        } else {
            0
        };
        if len <= on_disk {
            self.unsynced.remove(name);
            self.fs.truncate(name, len)
        } else {
            if let Some(bytes) = self.unsynced.get_mut(name) {
                bytes.truncate((len - on_disk) as usize);
            }
            Ok(())
        }
    }

    fn rename(&mut self, from: &str, to: &str) -> io::Result<()> {
        let pending = self.unsynced.remove(from);
        if self.on_disk(from) {
            self.fs.rename(from, to)?;
        } else if pending.is_some() {
            // The file exists only here: it replaces `to`.
            if self.on_disk(to) {
                self.fs.remove(to)?;
            }
        } else {
            return self.fs.rename(from, to);
        }
        self.unsynced.remove(to);
        if let Some(bytes) = pending {
            self.unsynced.insert(to.to_string(), bytes);
        }
        Ok(())
    }

    fn remove(&mut self, name: &str) -> io::Result<()> {
        let was_unsynced = self.unsynced.remove(name).is_some();
        if self.on_disk(name) || !was_unsynced {
            self.fs.remove(name)?;
        }
        Ok(())
    }

    fn sync_dir(&mut self) -> io::Result<()> {
        self.fs.sync_dir()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsynced_writes_reach_the_file_only_at_sync() {
        for lie in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let mut disk = WriteBackDisk::new(dir.path(), lie).unwrap();
            disk.append("a", b"one").unwrap();
            assert_eq!(disk.read("a").unwrap(), b"one");
            assert_eq!(disk.list().unwrap(), vec!["a".to_string()]);
            assert!(!dir.path().join("a").exists());
            disk.sync("a").unwrap();
            disk.append("a", b"two").unwrap();
            assert_eq!(disk.read("a").unwrap(), b"onetwo");
            disk.rename("a", "b").unwrap();
            assert_eq!(disk.read("b").unwrap(), b"onetwo");
            // What a killed process leaves: only what was synced, and nothing if syncs lie.
            let on_disk = std::fs::read(dir.path().join("b")).unwrap_or_default();
            assert_eq!(on_disk, if lie { &b""[..] } else { &b"one"[..] });
            disk.truncate("b", 2).unwrap();
            assert_eq!(disk.read("b").unwrap(), b"on");
            disk.remove("b").unwrap();
            assert!(disk.list().unwrap().is_empty());
        }
    }
}
