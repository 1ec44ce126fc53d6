//! The emulated host's scripts, carried inside the binary and unpacked into the cache.
//!
//! They are unpacked into `<cache>/scripts-<hash>/`, `<hash>` covering every file's path and
//! contents, so that two versions of the tool never mix their files and a second run unpacks
//! nothing. A directory is made under a temporary name and renamed into place, so concurrent
//! runs never see half of it.

use crate::Error;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// One file of the emulated host.
#[derive(Debug)]
pub struct Script {
    /// Its path under the unpacked directory.
    pub path: &'static str,
    /// Its contents.
    pub contents: &'static [u8],
    /// Whether it is run directly (mode 0755, else 0644).
    pub executable: bool,
}

macro_rules! script {
    ($path:literal, $exec:literal) => {
        Script {
            path: $path,
            contents: include_bytes!(concat!("../vm/", $path)),
            executable: $exec,
        }
    };
}

/// Every file of the emulated host (`vm/` of this crate).
pub const SCRIPTS: &[Script] = &[
    script!("runner.sh", true),
    script!("provision.sh", true),
    script!("lib.sh", false),
    script!("devices.sh", false),
    script!("init", true),
    script!("kernel/build.sh", true),
    script!("kernel/full.config", false),
];

/// The runner script (the cargo target runner proper), relative to the unpacked directory.
pub const RUNNER: &str = "runner.sh";
/// The provisioning script, relative to the unpacked directory.
pub const PROVISION: &str = "provision.sh";
/// The default device table, relative to the unpacked directory.
pub const DEFAULT_DEVICES: &str = "devices.sh";

/// FNV-1a, 64 bits: stable across Rust versions and platforms (the cache outlives the tool).
pub fn fnv1a(chunks: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for chunk in chunks {
        for &b in *chunk {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // A separator, so that ("ab", "c") and ("a", "bc") differ.
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The hash that names the unpacked directory: every file's path, mode and contents.
pub fn hash() -> String {
    let mut chunks: Vec<&[u8]> = Vec::new();
    for s in SCRIPTS {
        chunks.push(s.path.as_bytes());
        chunks.push(if s.executable { b"x" } else { b"-" });
        chunks.push(s.contents);
    }
    format!("{:016x}", fnv1a(&chunks))
}

/// Unpacks the scripts into `<cache>/scripts-<hash>/` unless they are there already, and
/// returns that directory.
pub fn unpack(cache: &Path) -> Result<PathBuf, Error> {
    let dir = cache.join(format!("scripts-{}", hash()));
    if dir.join(".done").is_file() {
        return Ok(dir);
    }
    fs::create_dir_all(cache).map_err(|e| Error::io(format!("creating {}", cache.display()), e))?;
    let tmp = cache.join(format!(
        "tmp-scripts.{}.{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    ));
    let result = write_all(&tmp).and_then(|()| match fs::rename(&tmp, &dir) {
        Ok(()) => Ok(()),
        // Another run unpacked the same files first: theirs are as good as ours.
        Err(_) if dir.join(".done").is_file() => Ok(()),
        Err(e) => Err(Error::io(
            format!("renaming {} to {}", tmp.display(), dir.display()),
            e,
        )),
    });
    if tmp.exists() {
        let _ = fs::remove_dir_all(&tmp);
    }
    result.map(|()| dir)
}

fn write_all(tmp: &Path) -> Result<(), Error> {
    for s in SCRIPTS {
        let path = tmp.join(s.path);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| Error::io(format!("creating {}", parent.display()), e))?;
        }
        let mode = if s.executable { 0o755 } else { 0o644 };
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&path)
            .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
        f.write_all(s.contents)
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
        // The umask may have taken bits off.
        fs::set_permissions(&path, fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io(format!("chmod {}", path.display()), e))?;
    }
    fs::write(tmp.join(".done"), b"")
        .map_err(|e| Error::io(format!("writing {}/.done", tmp.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpacks_every_file_once_with_its_mode() {
        let cache = std::env::temp_dir().join(format!("uvfio-vm-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&cache);
        let dir = unpack(&cache).unwrap();
        assert_eq!(dir, cache.join(format!("scripts-{}", hash())));
        for s in SCRIPTS {
            let path = dir.join(s.path);
            assert_eq!(fs::read(&path).unwrap(), s.contents, "{}", s.path);
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, if s.executable { 0o755 } else { 0o644 }, "{}", s.path);
        }
        // A second unpack finds the directory done and leaves no temporary one behind.
        assert_eq!(unpack(&cache).unwrap(), dir);
        let entries: Vec<_> = fs::read_dir(&cache).unwrap().collect();
        assert_eq!(entries.len(), 1);
        fs::remove_dir_all(&cache).unwrap();
    }

    #[test]
    fn hash_separates_chunks() {
        assert_ne!(fnv1a(&[b"ab", b"c"]), fnv1a(&[b"a", b"bc"]));
        assert_ne!(fnv1a(&[b""]), fnv1a(&[]));
    }
}
