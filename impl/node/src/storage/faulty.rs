//! An in-memory [`Disk`] that crashes on demand, for crash-consistency tests in the manner of AWS
//! ShardStore's: every mutating operation is a crash point, and after a crash the disk keeps only what was
//! made durable, with one of the faults a real disk may add to what was not.

use std::collections::BTreeMap;
use std::io;

use super::disk::Disk;

/// What a crash does to the writes that were not yet synced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// They are lost.
    LoseUnsynced,
    /// They are lost, except for the first half of what was written to the file written last: a torn write.
    TornLastWrite,
    /// They all reach the disk, but the unsynced bytes of one 512-byte sector of the file written last read
    /// back as zeros.
    ZeroSector,
}

/// A sync the disk acknowledges without doing it, for showing that the crash tests notice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lie {
    /// [`Disk::sync`] of a file.
    Files,
    /// [`Disk::sync_dir`].
    Directory,
}

/// The size of the sector [`Fault::ZeroSector`] zeroes.
pub const SECTOR: usize = 512;

#[derive(Clone, Debug, Default)]
struct Inode {
    /// What survives a crash.
    durable: Vec<u8>,
    /// What reads return now.
    current: Vec<u8>,
}

/// An in-memory disk. Every mutating operation counts as one step; with [`FaultyDisk::crash_at`] the disk
/// fails that step and every operation after it, as a machine that lost power there.
#[derive(Clone, Debug, Default)]
pub struct FaultyDisk {
    inodes: Vec<Inode>,
    /// The names as they are now.
    names: BTreeMap<String, usize>,
    /// The names as they survive a crash (as of the last directory sync).
    durable_names: BTreeMap<String, usize>,
    /// The inode written last.
    last_written: Option<usize>,
    steps: u64,
    crash_at: Option<u64>,
    crashed: bool,
    lie: Option<Lie>,
}

fn crashed() -> io::Error {
    io::Error::other("the disk crashed")
}

fn not_found(name: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("no file {name}"))
}

impl FaultyDisk {
    /// An empty disk that does not crash.
    pub fn new() -> FaultyDisk {
        FaultyDisk::default()
    }

    /// Makes the disk crash at mutating step `step` (0 is the first): that step and everything after it fail.
    pub fn crash_at(&mut self, step: u64) {
        self.crash_at = Some(step);
    }

    /// Makes the disk acknowledge syncs of the kind `lie` without doing them.
    pub fn lie_about_sync(&mut self, lie: Lie) {
        self.lie = Some(lie);
    }

    /// The number of mutating steps taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Whether the disk has crashed.
    pub fn has_crashed(&self) -> bool {
        self.crashed
    }

    /// The disk as it comes back after power returns: the names last synced, each file's synced content, and
    /// `fault` applied to the writes that were not synced.
    pub fn after_crash(&self, fault: Fault) -> FaultyDisk {
        let mut inodes: Vec<Inode> = self
            .inodes
            .iter()
            .map(|i| Inode {
                durable: i.durable.clone(),
                current: i.durable.clone(),
            })
            .collect();
        if let Some(last) = self.last_written {
            let before = &self.inodes[last];
            let unsynced = before.current.len().saturating_sub(before.durable.len());
            let common = before.durable.len().min(before.current.len());
            let mut content = match fault {
                Fault::LoseUnsynced => before.durable.clone(),
                Fault::TornLastWrite => before.current[..common + unsynced / 2].to_vec(),
                Fault::ZeroSector => before.current.clone(),
            };
            if fault == Fault::ZeroSector && unsynced > 0 {
                // The sector holding the middle of the unsynced bytes, as far as it holds unsynced bytes: a
                // sector the file grew into but whose data never reached the disk. (Synced bytes in it were on
                // the disk before and stay: sector writes are atomic.)
                let middle = common + unsynced / 2;
                let start = (middle - middle % SECTOR).max(common);
                let end = (middle - middle % SECTOR + SECTOR).min(content.len());
                content[start..end].fill(0);
            }
            inodes[last] = Inode {
                durable: content.clone(),
                current: content,
            };
        }
        FaultyDisk {
            inodes,
            names: self.durable_names.clone(),
            durable_names: self.durable_names.clone(),
            last_written: None,
            steps: 0,
            crash_at: None,
            crashed: false,
            lie: None,
        }
    }

    /// Flips the bits of the byte at `offset` of `name`, durably: damage a crash did not cause.
    pub fn corrupt(&mut self, name: &str, offset: usize) {
        let inode = &mut self.inodes[self.names[name]];
        inode.current[offset] ^= 0xff;
        inode.durable = inode.current.clone();
    }

    /// Flips bit `bit` of the byte at `offset` of `name`, durably: one bit of damage.
    pub fn flip(&mut self, name: &str, offset: usize, bit: u8) {
        let inode = &mut self.inodes[self.names[name]];
        inode.current[offset] ^= 1 << bit;
        inode.durable = inode.current.clone();
    }

    /// Removes `name` durably, as a lost file.
    pub fn lose(&mut self, name: &str) {
        self.names.remove(name);
        self.durable_names.remove(name);
    }

    /// Writes `bytes` as the durable content of `name`, creating it: a file put there from outside.
    pub fn put(&mut self, name: &str, bytes: &[u8]) {
        self.inodes.push(Inode {
            durable: bytes.to_vec(),
            current: bytes.to_vec(),
        });
        self.names.insert(name.to_string(), self.inodes.len() - 1);
        self.durable_names
            .insert(name.to_string(), self.inodes.len() - 1);
    }

    /// Counts a mutating step; fails it if the disk crashes there (or crashed before).
    fn step(&mut self) -> io::Result<()> {
        if self.crashed {
            return Err(crashed());
        }
        if self.crash_at == Some(self.steps) {
            self.crashed = true;
            return Err(crashed());
        }
        self.steps += 1;
        Ok(())
    }

    fn inode(&self, name: &str) -> io::Result<usize> {
        self.names.get(name).copied().ok_or_else(|| not_found(name))
    }
}

impl Disk for FaultyDisk {
    fn list(&mut self) -> io::Result<Vec<String>> {
        if self.crashed {
            return Err(crashed());
        }
        Ok(self.names.keys().cloned().collect())
    }

    fn read(&mut self, name: &str) -> io::Result<Vec<u8>> {
        if self.crashed {
            return Err(crashed());
        }
        Ok(self.inodes[self.inode(name)?].current.clone())
    }

    fn append(&mut self, name: &str, bytes: &[u8]) -> io::Result<()> {
        self.step()?;
        let inode = match self.names.get(name) {
            Some(&i) => i,
            None => {
                self.inodes.push(Inode::default());
                let i = self.inodes.len() - 1;
                self.names.insert(name.to_string(), i);
                i
            }
        };
        self.inodes[inode].current.extend_from_slice(bytes);
        self.last_written = Some(inode);
        Ok(())
    }

    fn sync(&mut self, name: &str) -> io::Result<()> {
        self.step()?;
        let i = self.inode(name)?;
        if self.lie == Some(Lie::Files) {
            return Ok(());
        }
        let inode = &mut self.inodes[i];
        inode.durable = inode.current.clone();
        Ok(())
    }

    fn truncate(&mut self, name: &str, len: u64) -> io::Result<()> {
        self.step()?;
        let i = self.inode(name)?;
        let inode = &mut self.inodes[i];
        inode.current.truncate(len as usize);
        inode.durable = inode.current.clone();
        Ok(())
    }

    fn rename(&mut self, from: &str, to: &str) -> io::Result<()> {
        self.step()?;
        let inode = self.names.remove(from).ok_or_else(|| not_found(from))?;
        self.names.insert(to.to_string(), inode);
        Ok(())
    }

    fn remove(&mut self, name: &str) -> io::Result<()> {
        self.step()?;
        self.names.remove(name).ok_or_else(|| not_found(name))?;
        Ok(())
    }

    fn sync_dir(&mut self) -> io::Result<()> {
        self.step()?;
        if self.lie == Some(Lie::Directory) {
            return Ok(());
        }
        self.durable_names = self.names.clone();
        Ok(())
    }
}
