//! A full disk under SQLite (a tmpfs of its own).

use crate::common::faults::*;
use crate::{check_outage, serial, sleep_ms, Outage};
use std::time::Duration;

/// A tmpfs of its own, unmounted when dropped.
struct Tmpfs(std::path::PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Writes `path` until the file system is full (ENOSPC), in smaller and smaller pieces.
fn fill(path: &std::path::Path) -> u64 {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let mut written = 0u64;
    for size in [1 << 20, 64 << 10, 4 << 10, 512, 1] {
        let chunk = vec![0x5au8; size];
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.raw_os_error() == Some(28) => break,
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
    }
    let _ = f.flush();
    written
}

#[test]
fn sqlite_on_a_full_disk_skips_slots_and_resumes_when_space_returns_without_corruption() {
    let _serial = serial();
    let root = unsafe_geteuid() == 0;
    if !root {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI=true: the full-disk test mounts a tmpfs and needs root"
        );
        eprintln!("skipped: the full-disk test mounts a tmpfs and needs root (or CI=true)");
        return;
    }
    let Some(fx) = Fixture::new() else { return };
    let mnt = fx.dir.path().join("tmpfs");
    std::fs::create_dir_all(&mnt).unwrap();
    let out = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16m", "lavabeacon-faults"])
        .arg(&mnt)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mount -t tmpfs failed (as root): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _mounted = Tmpfs(mnt.clone());
    let db = mnt.join("db.sqlite");
    let url = format!("sqlite:{}", db.display());
    let beacon = fx.start("serve", &["--database", &url], &[]);
    let watch = Watch::start(&url, 1);
    watch.wait_count(3, Duration::from_secs(30)).unwrap();

    let filler = mnt.join("filler");
    let full_at = now_ms();
    let bytes = fill(&filler);
    sleep_ms(5000);
    std::fs::remove_file(&filler).unwrap();
    let freed = now_ms();
    let (first, took) = recovered(&watch, full_at + PERIOD_MS, freed, "disk-full");
    watch.wait_more(3);
    beacon.kill();
    let seen = watch.stop();

    let integrity = block_on(async {
        use sqlx::Connection;
        let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&db);
        let mut c = sqlx::SqliteConnection::connect_with(&options)
            .await
            .unwrap();
        let rows: Vec<(String,)> = sqlx::query_as("PRAGMA integrity_check")
            .fetch_all(&mut c)
            .await
            .unwrap();
        rows.into_iter().map(|r| r.0).collect::<Vec<_>>().join("; ")
    });
    assert_eq!(
        integrity, "ok",
        "PRAGMA integrity_check after the full disk"
    );
    let outage = Outage {
        name: "disk-full",
        from_ms: full_at + PERIOD_MS,
        to_ms: freed,
        what: format!("the disk was full for 5 s ({bytes} bytes of filler)"),
        during: "while full",
        after: "after space returned",
    };
    check_outage(
        &fx,
        &url,
        &seen,
        &outage,
        (first, took),
        ", integrity_check ok",
    );
}

fn unsafe_geteuid() -> u32 {
    extern "C" {
        fn geteuid() -> u32;
    }
    // SAFETY: geteuid has no preconditions.
    unsafe { geteuid() }
}
