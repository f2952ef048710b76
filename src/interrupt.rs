//! Ctrl-C and SIGTERM: every temporary file and directory spin-aks makes is created through here,
//! so an interrupt removes them all and exits 130 (143 for SIGTERM) saying it was interrupted.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// The temporary paths made so far. Created under this lock, and the interrupt takes it for
/// good: no temporary path can appear after the sweep.
static MADE: Mutex<Made> = Mutex::new(Made {
    files: Vec::new(),
    dirs: Vec::new(),
});

struct Made {
    files: Vec<PathBuf>,
    dirs: Vec<PathBuf>,
}

/// Entries kept before the ones already gone (persisted, dropped) are pruned.
const PRUNE_AT: usize = 512;

fn made() -> MutexGuard<'static, Made> {
    MADE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A temporary file in `dir` (named `.tmp…`, only its owner may read it), removed on drop, and
/// on an interrupt.
pub fn temp_file_in(dir: &Path) -> io::Result<tempfile::NamedTempFile> {
    track(|| tempfile::NamedTempFile::new_in(dir))
}

/// [`temp_file_in`] readable by others as the umask allows (0666 less the umask, as `cp` makes a
/// file): what becomes part of an OCI layout or an archive others read.
pub fn shared_temp_file_in(dir: &Path) -> io::Result<tempfile::NamedTempFile> {
    use std::os::unix::fs::PermissionsExt;
    track(|| {
        tempfile::Builder::new()
            .permissions(std::fs::Permissions::from_mode(0o666))
            .tempfile_in(dir)
    })
}

/// Makes a temporary file with `create` while holding the list, so a sweep removes it.
fn track(
    create: impl FnOnce() -> io::Result<tempfile::NamedTempFile>,
) -> io::Result<tempfile::NamedTempFile> {
    let mut made = made();
    let file = create()?;
    if made.files.len() >= PRUNE_AT {
        made.files.retain(|path| path.symlink_metadata().is_ok());
    }
    made.files.push(file.path().to_path_buf());
    Ok(file)
}

/// The name every [`temp_dir`] starts with in `TMPDIR`.
const TEMP_DIR_PREFIX: &str = "spin-aks-work-";
/// The name every [`owned_temp_file_in`] starts with beside the file it becomes.
const OWNED_FILE_PREFIX: &str = ".tmp-spin-aks-";

/// A temporary directory in the system's (`TMPDIR`), removed on drop, and on an interrupt. It
/// is locked while it lives; the ones a killed run left there are removed first.
pub fn temp_dir() -> io::Result<TempDir> {
    let base = std::env::temp_dir();
    sweep_abandoned(&base, TEMP_DIR_PREFIX);
    let mut made = made();
    let dir = tempfile::Builder::new()
        .prefix(TEMP_DIR_PREFIX)
        .tempdir_in(&base)?;
    let lock = std::fs::File::open(dir.path())?;
    // Best effort: where the file system has no locks, no sweep can take this one either.
    let _ = fs4::FileExt::try_lock(&lock);
    made.dirs.retain(|path| path.exists());
    made.dirs.push(dir.path().to_path_buf());
    Ok(TempDir { dir, _lock: lock })
}

/// A directory made by [`temp_dir`]: removed on drop, locked while it lives.
pub struct TempDir {
    dir: tempfile::TempDir,
    _lock: std::fs::File,
}

impl TempDir {
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// A temporary file in `dir` that becomes an output by rename (an archive, the state file, a
/// kubeconfig): named `.tmp-spin-aks-…`, readable by others when `shared` (as [`shared_temp_file_in`]),
/// and locked while it lives, so that the next writer into `dir` removes the one a SIGKILL left
/// (see [`sweep_abandoned`]), which it does first.
pub fn owned_temp_file_in(dir: &Path, shared: bool) -> io::Result<tempfile::NamedTempFile> {
    use std::os::unix::fs::PermissionsExt;
    sweep_abandoned(dir, OWNED_FILE_PREFIX);
    let mode = if shared { 0o666 } else { 0o600 };
    track(|| {
        let file = tempfile::Builder::new()
            .prefix(OWNED_FILE_PREFIX)
            .permissions(std::fs::Permissions::from_mode(mode))
            .tempfile_in(dir)?;
        // Best effort, as for a directory of [`temp_dir`].
        let _ = fs4::FileExt::try_lock(file.as_file());
        Ok(file)
    })
}

/// How long a temporary file or directory that is still empty counts as just made: its maker
/// locks it right after making it, so an unlocked empty one younger than this may be a live
/// run's, between the two calls. Older, it was left by a run killed there.
const JUST_MADE: std::time::Duration = std::time::Duration::from_secs(2);

/// Removes what a killed run left in `dir` under `prefix`: each file or directory named so that
/// no live process holds locked (a lock dies with its process). One still empty and younger than
/// [`JUST_MADE`] is left alone, as its maker may not have locked it yet; the next writer after
/// that removes it. What cannot be removed stays.
fn sweep_abandoned(dir: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(prefix) {
            continue;
        }
        let path = entry.path();
        let Ok(meta) = path.symlink_metadata() else {
            continue;
        };
        let empty = if meta.is_dir() {
            std::fs::read_dir(&path).is_ok_and(|mut d| d.next().is_none())
        } else {
            meta.is_file() && meta.len() == 0
        };
        let young = (meta.modified().ok())
            .and_then(|m| m.elapsed().ok())
            .is_none_or(|age| age < JUST_MADE);
        if (!meta.is_dir() && !meta.is_file()) || (empty && young) {
            continue;
        }
        let Ok(file) = std::fs::File::open(&path) else {
            continue;
        };
        if fs4::FileExt::try_lock(&file).is_ok() {
            let _ = if meta.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
        }
    }
}

/// Set once an interrupt starts sweeping: writers into a temporary directory stop adding to it.
static SWEEPING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether an interrupt is sweeping the temporary paths (a writer should stop, not add entries).
pub fn sweeping() -> bool {
    SWEEPING.load(std::sync::atomic::Ordering::SeqCst)
}

/// Returns at once unless an interrupt is sweeping; then never, so the interrupt's exit (and its
/// code) wins over a command that fails or ends because its files were just removed.
pub fn settle() {
    drop(made());
}

/// Who takes the next interrupt instead of the sweep and exit (see [`take_next`]).
static TAKER: Mutex<Option<tokio::sync::oneshot::Sender<&'static str>>> = Mutex::new(None);

/// Hands the next SIGINT or SIGTERM to the caller (which stops on its own, e.g. `dev` leaving
/// the app deployed) instead of sweeping and exiting; the one after that sweeps and exits as
/// always. The receiver yields the signal's name.
pub fn take_next() -> tokio::sync::oneshot::Receiver<&'static str> {
    let (sender, receiver) = tokio::sync::oneshot::channel();
    *TAKER.lock().unwrap_or_else(|p| p.into_inner()) = Some(sender);
    receiver
}

/// Handles SIGINT and SIGTERM from now on: a thread waits for either, removes what
/// [`temp_file_in`] and [`temp_dir`] made, says so on stderr and exits 130 (SIGINT) or 143.
pub fn install() -> io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    // Registered before returning, so no signal from here on takes the default (dying) path.
    let (mut interrupt, mut terminate) = runtime.block_on(async {
        Ok::<_, io::Error>((
            signal(SignalKind::interrupt())?,
            signal(SignalKind::terminate())?,
        ))
    })?;
    std::thread::Builder::new()
        .name("interrupt".into())
        .spawn(move || {
            let (name, code) = loop {
                let (name, code) = runtime.block_on(async {
                    tokio::select! {
                        _ = interrupt.recv() => ("Ctrl-C (SIGINT)", 130),
                        _ = terminate.recv() => ("SIGTERM", 143),
                    }
                });
                // A command that asked for the first signal gets it and ends itself; the next
                // one sweeps and exits as always.
                let taker = TAKER.lock().unwrap_or_else(|p| p.into_inner()).take();
                if taker.is_none_or(|taker| taker.send(name).is_err()) {
                    break (name, code);
                }
            };
            // Held until the process exits: no thread can make a temporary path after the sweep.
            SWEEPING.store(true, std::sync::atomic::Ordering::SeqCst);
            let made = made();
            let removed = sweep(&made);
            crate::output::print_error(&format!("interrupted by {name}; removed {removed} temporary file(s), nothing half-written is left"));
            std::process::exit(code);
        })?;
    Ok(())
}

/// Removes every temporary path still there; returns how many it removed.
fn sweep(made: &Made) -> usize {
    let files = made
        .files
        .iter()
        .filter(|path| std::fs::remove_file(path).is_ok())
        .count();
    let dirs = made.dirs.iter().filter(|dir| remove_tree(dir)).count();
    files + dirs
}

/// Removes `dir` and everything in it, retrying while another thread still adds entries or
/// removes some itself (a failing command dropping its own temporary directory meanwhile makes
/// `remove_dir_all` stop at an entry already gone, the directory still there).
fn remove_tree(dir: &Path) -> bool {
    if dir.symlink_metadata().is_err() {
        return false;
    }
    for _ in 0..50 {
        let _ = std::fs::remove_dir_all(dir);
        if dir.symlink_metadata().is_err() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_writer_removes_what_a_killed_one_left_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let left = dir.path().join(".tmp-spin-aks-killed");
        std::fs::write(&left, b"half an archive").unwrap();
        let other = dir.path().join(".tmp-someone-else");
        std::fs::write(&other, b"theirs").unwrap();
        // Empty: one killed between making and locking it (old), or a live maker's (just made).
        let killed_empty = dir.path().join(".tmp-spin-aks-empty-old");
        let made = std::fs::File::create(&killed_empty).unwrap();
        let past = std::time::SystemTime::now() - JUST_MADE - std::time::Duration::from_secs(1);
        made.set_modified(past).unwrap();
        let just_made = dir.path().join(".tmp-spin-aks-empty-new");
        std::fs::File::create(&just_made).unwrap();
        let live = owned_temp_file_in(dir.path(), false).unwrap();
        assert!(
            !killed_empty.exists(),
            "an empty one older than JUST_MADE is removed"
        );
        assert!(
            just_made.exists(),
            "a just-made empty one is left to its maker"
        );
        std::fs::write(live.path(), b"being written").unwrap();
        assert!(!left.exists(), "the killed writer's file is removed");
        let next = owned_temp_file_in(dir.path(), true).unwrap();
        assert!(live.path().exists(), "a live writer's file is locked: kept");
        assert!(other.exists(), "another program's file is kept");
        drop((live, next));
    }

    #[test]
    fn the_sweep_removes_live_temporaries_and_skips_persisted_ones() {
        let home = tempfile::tempdir().unwrap();
        let live = temp_file_in(home.path()).unwrap();
        let persisted = temp_file_in(home.path()).unwrap();
        persisted.persist(home.path().join("final")).unwrap();
        let files: Vec<PathBuf> = made()
            .files
            .iter()
            .filter(|path| path.starts_with(home.path()))
            .cloned()
            .collect();
        assert_eq!(files.len(), 2);
        let dirs = vec![];
        assert_eq!(sweep(&Made { files, dirs }), 1);
        assert!(!live.path().exists());
        assert!(home.path().join("final").is_file());
    }
}
