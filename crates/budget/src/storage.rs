//! Incremental measurement of the bytes under a directory, for storage quotas: each sample
//! walks at most a bounded number of directory entries, so that a large tree is measured
//! over several samples instead of stalling the sampler.

use std::path::{Path, PathBuf};

/// A directory walk in progress.
#[derive(Debug)]
pub(crate) struct DirScan {
    root: PathBuf,
    pending: Vec<PathBuf>,
    bytes: u64,
    /// The first error met below the root (an unreadable or vanished subdirectory).
    pub(crate) error: Option<String>,
}

/// What one step of a scan found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// More to walk.
    Continue,
    /// The walk is complete: the bytes in regular files under the root.
    Done(u64),
    /// The root itself could not be read.
    Failed(String),
}

impl DirScan {
    pub(crate) fn new(root: &Path) -> DirScan {
        DirScan {
            root: root.to_path_buf(),
            pending: vec![root.to_path_buf()],
            bytes: 0,
            error: None,
        }
    }

    /// Walks at least one directory and then stops once `max_entries` entries were seen.
    /// Symbolic links are not followed.
    pub(crate) fn step(&mut self, max_entries: usize) -> Step {
        let mut seen = 0;
        while let Some(dir) = self.pending.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if dir == self.root => {
                    return Step::Failed(format!("scanning {}: {e}", dir.display()));
                }
                Err(e) => {
                    self.error
                        .get_or_insert_with(|| format!("scanning {}: {e}", dir.display()));
                    continue;
                }
            };
            for entry in entries.flatten() {
                seen += 1;
                // `DirEntry::metadata` does not follow symbolic links.
                let Ok(meta) = entry.metadata() else { continue };
                if meta.is_dir() {
                    self.pending.push(entry.path());
                } else if meta.is_file() {
                    self.bytes += meta.len();
                }
            }
            if seen >= max_entries {
                break;
            }
        }
        if self.pending.is_empty() {
            Step::Done(self.bytes)
        } else {
            Step::Continue
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_a_tree_in_bounded_steps() {
        let dir = tempfile::tempdir().unwrap();
        let mut want = 0;
        for d in 0..5 {
            let sub = dir.path().join(format!("d{d}"));
            std::fs::create_dir(&sub).unwrap();
            for f in 0..20 {
                std::fs::write(sub.join(format!("f{f}")), vec![0u8; d * 10 + f]).unwrap();
                want += (d * 10 + f) as u64;
            }
        }
        #[cfg(unix)]
        std::os::unix::fs::symlink("/", dir.path().join("root-link")).unwrap();
        let mut scan = DirScan::new(dir.path());
        let mut steps = 0;
        let total = loop {
            steps += 1;
            match scan.step(10) {
                Step::Continue => {}
                Step::Done(b) => break b,
                Step::Failed(e) => panic!("{e}"),
            }
        };
        assert_eq!(total, want);
        assert!(steps >= 5, "{steps} steps");
        assert!(scan.error.is_none());
        let mut one_go = DirScan::new(dir.path());
        assert_eq!(one_go.step(usize::MAX), Step::Done(want));
    }

    #[test]
    fn a_missing_root_fails() {
        let mut scan = DirScan::new(Path::new("/nonexistent/perfkit/storage"));
        assert!(matches!(scan.step(10), Step::Failed(_)));
    }
}
