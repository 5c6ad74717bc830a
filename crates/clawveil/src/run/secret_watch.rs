//! Polls the `${file:..}` secrets for changes, so that a rotation reloads them without a
//! SIGHUP: in Kubernetes nobody sends one, the kubelet swaps the Secret volume's `..data`
//! symlink. A changed (device, inode, mtime, length) of the file a path resolves to, or
//! the file appearing or disappearing, counts as a change; contents are never read here.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, watch};

/// A version of a file, without reading it; `None` when it cannot be stat'ed.
type Stamp = Option<(u64, u64, SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    // metadata() follows symlinks: the target is what changes in a symlink swap.
    std::fs::metadata(path).ok().map(|m| {
        (
            m.dev(),
            m.ino(),
            m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            m.len(),
        )
    })
}

/// Every `interval`, compares the files with what was seen last and sends the paths that
/// changed (one message per tick in which any did). Ends when `shutdown` changes or the
/// receiver is gone; with no paths it sends nothing and the receiver only closes.
pub(crate) fn spawn(
    paths: Vec<PathBuf>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> mpsc::Receiver<Vec<PathBuf>> {
    let (tx, rx) = mpsc::channel(1);
    if paths.is_empty() {
        return rx;
    }
    let mut seen: Vec<Stamp> = paths.iter().map(|p| stamp(p)).collect();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            if paths.iter().zip(&seen).all(|(p, s)| stamp(p) == *s) {
                continue;
            }
            // A writer that is not atomic (truncate, then write) gets a moment to finish,
            // as the certificate watcher gives one.
            tokio::time::sleep(Duration::from_millis(200)).await;
            let now: Vec<Stamp> = paths.iter().map(|p| stamp(p)).collect();
            let changed: Vec<PathBuf> = paths
                .iter()
                .zip(seen.iter().zip(&now))
                .filter(|(_, (before, after))| before != after)
                .map(|(p, _)| p.clone())
                .collect();
            seen = now;
            if !changed.is_empty() && tx.send(changed).await.is_err() {
                return;
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symlink_swap_changes_the_stamp_of_the_path() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        for (d, v) in [("..a", "one"), ("..b", "two")] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
            std::fs::write(dir.path().join(d).join("token"), v).unwrap();
        }
        symlink("..a", dir.path().join("..data")).unwrap();
        let path = dir.path().join("token");
        symlink("..data/token", &path).unwrap();
        let before = stamp(&path);
        assert!(before.is_some());
        symlink("..b", dir.path().join("..data_tmp")).unwrap();
        std::fs::rename(dir.path().join("..data_tmp"), dir.path().join("..data")).unwrap();
        assert_ne!(stamp(&path), before);
        std::fs::remove_file(dir.path().join("..data")).unwrap();
        assert_eq!(stamp(&path), None);
    }
}
