//! The image spool: a directory an external capture program fills (the lava-lamp rig's own
//! capture script). Each new image is read, hashed, overwritten and deleted; nothing of it stays
//! on disk. Writers must write under a name starting with `.` and rename when done, so that a
//! half-written image is never read (see `scripts/capture-spool.sh`).

use super::frame::contribution;
use super::{Contribution, EntropySource, SourceError};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Largest image read; a bigger file is destroyed unread.
pub const MAX_IMAGE: u64 = 64 << 20;

/// The spool source.
pub struct SpoolSource {
    dir: PathBuf,
    bits_per_image: f64,
    max_images: usize,
    last: Option<[u8; 32]>,
    /// Images found at start (left over from a crash) and destroyed unused.
    pub destroyed_at_start: usize,
}

impl SpoolSource {
    /// Watches `dir`; credits `bits_per_image` per image, takes at most `max_images` per pulse.
    /// Images already there are destroyed unused: nobody can say how old they are or whether
    /// they were read before a crash.
    pub fn new(dir: &Path, bits_per_image: f64, max_images: usize) -> std::io::Result<SpoolSource> {
        std::fs::create_dir_all(dir)?;
        let mut s = SpoolSource {
            dir: dir.to_path_buf(),
            bits_per_image,
            max_images: max_images.max(1),
            last: None,
            destroyed_at_start: 0,
        };
        for p in s.ready()? {
            destroy(&p, None)?;
            s.destroyed_at_start += 1;
        }
        Ok(s)
    }

    /// Complete images waiting, oldest name first.
    fn ready(&self) -> std::io::Result<Vec<PathBuf>> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .map(|e| e.path())
            .collect();
        v.sort();
        Ok(v)
    }
}

/// Reads the file into `into` (if given), then overwrites it with zeros, syncs and deletes it.
fn destroy(path: &Path, into: Option<&mut blake3::Hasher>) -> std::io::Result<u64> {
    let len = std::fs::metadata(path)?.len();
    if let Some(h) = into {
        if len <= MAX_IMAGE {
            let mut buf = Zeroizing::new(Vec::with_capacity(len as usize));
            std::fs::File::open(path)?.read_to_end(&mut buf)?;
            h.update(&buf);
        }
    }
    let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
    let zeros = vec![0u8; 1 << 16];
    let mut left = len;
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        f.write_all(&zeros[..n])?;
        left -= n as u64;
    }
    f.sync_all()?;
    drop(f);
    std::fs::remove_file(path)?;
    Ok(len)
}

impl EntropySource for SpoolSource {
    fn name(&self) -> &str {
        "spool"
    }
    fn collect(&mut self) -> Result<Contribution, SourceError> {
        let io =
            |e: std::io::Error| SourceError::Unavailable(format!("{}: {e}", self.dir.display()));
        let images = self.ready().map_err(io)?;
        if images.is_empty() {
            return Err(SourceError::Unavailable(format!(
                "no new image in {}",
                self.dir.display()
            )));
        }
        let mut hasher = blake3::Hasher::new();
        let mut used = 0usize;
        let mut problem = None;
        for p in images.iter().take(self.max_images) {
            let mut one = blake3::Hasher::new();
            let len = destroy(p, Some(&mut one)).map_err(io)?;
            let digest: [u8; 32] = one.finalize().into();
            if len == 0 || len > MAX_IMAGE {
                problem = Some(format!("image of {len} bytes ignored"));
                continue;
            }
            if self.last == Some(digest) {
                problem = Some("the same image twice in a row (stuck capture?)".to_string());
                continue;
            }
            self.last = Some(digest);
            hasher.update(&digest);
            used += 1;
        }
        if used == 0 {
            return Err(SourceError::Unhealthy(
                problem.unwrap_or_else(|| "no usable image".into()),
            ));
        }
        Ok(contribution(hasher, used as f64 * self.bits_per_image))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngCore;

    fn image(dir: &Path, name: &str, seed: u8) -> PathBuf {
        let mut bytes = vec![seed; 4096];
        rand::thread_rng().fill_bytes(&mut bytes[16..]);
        let tmp = dir.join(format!(".{name}"));
        std::fs::write(&tmp, &bytes).unwrap();
        let p = dir.join(name);
        std::fs::rename(&tmp, &p).unwrap();
        p
    }

    #[test]
    fn images_are_hashed_and_none_is_left_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SpoolSource::new(dir.path(), 32.0, 10).unwrap();
        for i in 0..3 {
            image(dir.path(), &format!("frame-{i}.jpg"), i);
        }
        std::fs::write(dir.path().join(".still-writing.jpg"), b"partial").unwrap();
        let c = s.collect().unwrap();
        assert_eq!(c.credited_bits, 96);
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            left,
            vec![std::ffi::OsString::from(".still-writing.jpg")],
            "only the unfinished file stays"
        );
        assert!(
            matches!(s.collect(), Err(SourceError::Unavailable(_))),
            "nothing new"
        );
    }

    #[test]
    fn leftovers_from_a_crash_are_destroyed_at_start() {
        let dir = tempfile::tempdir().unwrap();
        image(dir.path(), "old-1.jpg", 1);
        image(dir.path(), "old-2.jpg", 2);
        let s = SpoolSource::new(dir.path(), 32.0, 10).unwrap();
        assert_eq!(s.destroyed_at_start, 2);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_stuck_capture_is_unhealthy() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SpoolSource::new(dir.path(), 32.0, 10).unwrap();
        std::fs::write(dir.path().join("a.jpg"), [7u8; 100]).unwrap();
        s.collect().unwrap();
        std::fs::write(dir.path().join("b.jpg"), [7u8; 100]).unwrap();
        assert!(matches!(s.collect(), Err(SourceError::Unhealthy(m)) if m.contains("same image")));
    }
}
