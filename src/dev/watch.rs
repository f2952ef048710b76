//! Which files `dev` watches and what a change to each means, as `spin watch` decides it, and the
//! file watcher that gathers changes into debounced batches.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use globset::{Glob, GlobSet, GlobSetBuilder};
use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{EventKind, RecursiveMode, Watcher as _};
use tokio::sync::mpsc;

use crate::app::slash_path;
use crate::app::{App, FileMount, Source};

/// What an app's files mean to `dev`: per component, the files that need its build command run
/// and the files that only change its image.
pub struct Watched {
    dir: PathBuf,
    manifest: String,
    components: Vec<WatchedComponent>,
}

struct WatchedComponent {
    id: String,
    /// `build.watch`, each glob under the build's `workdir` (spin src/commands/watch/filters.rs:145-184).
    build: Option<GlobSet>,
    /// The mounted files (spin filters.rs:82-114: a placement's source and all under it).
    files: GlobSet,
    /// The wasm, when no build command makes it (spin watches it as an artifact, filters.rs:75-81).
    source: Option<String>,
}

/// What one changed file means.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Meaning {
    pub manifest: bool,
    /// Components whose build command must run.
    pub rebuild: Vec<String>,
    /// Components whose image input changed.
    pub components: Vec<String>,
}

impl Watched {
    pub fn new(app: &App) -> anyhow::Result<Watched> {
        let dir = std::fs::canonicalize(&app.dir).unwrap_or_else(|_| app.dir.clone());
        let manifest = app
            .manifest_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "spin.toml".into());
        let components = app
            .components
            .iter()
            .map(|c| {
                let build = match &c.build {
                    Some(b) if !b.watch.is_empty() => {
                        let workdir = b.workdir.as_deref().map(slash_path);
                        let globs = b.watch.iter().map(|w| match &workdir {
                            Some(dir) if !w.starts_with('/') => {
                                format!("{}/{w}", dir.trim_end_matches('/'))
                            }
                            _ => w.clone(),
                        });
                        Some(glob_set(globs)?)
                    }
                    _ => None,
                };
                let files = glob_set(c.files.iter().flat_map(|f| match f {
                    FileMount::Pattern(p) => [p.clone(), format!("{}/**", p.trim_end_matches('/'))],
                    FileMount::Placement { source, .. } => {
                        let s = slash_path(source);
                        [s.clone(), format!("{}/**", s.trim_end_matches('/'))]
                    }
                }))?;
                let source = match (&c.source, &c.build) {
                    (Source::Local(wasm), None) => Some(slash_path(wasm)),
                    _ => None,
                };
                Ok(WatchedComponent {
                    id: c.id.clone(),
                    build,
                    files,
                    source,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Watched {
            dir,
            manifest,
            components,
        })
    }

    /// `path` relative to the app directory, with `/`, unless it lies outside.
    pub fn relative(&self, path: &Path) -> Option<String> {
        path.strip_prefix(&self.dir).ok().map(slash_path)
    }

    /// What a change to `relative` means. The image layout (`.spin-aks`), `target/` and `.git`
    /// are ignored, and Vim's swap files as by Spin (filters.rs:228-235), except a component's
    /// wasm named exactly.
    pub fn meaning(&self, relative: &str) -> Meaning {
        let mut meaning = Meaning {
            manifest: relative == self.manifest,
            ..Meaning::default()
        };
        let ignored = is_ignored(relative);
        for c in &self.components {
            if c.source.as_deref() == Some(relative) {
                meaning.components.push(c.id.clone());
                continue;
            }
            if ignored {
                continue;
            }
            if c.build.as_ref().is_some_and(|b| b.is_match(relative)) {
                meaning.rebuild.push(c.id.clone());
                meaning.components.push(c.id.clone());
            } else if c.files.is_match(relative) {
                meaning.components.push(c.id.clone());
            }
        }
        meaning
    }

    /// Whether a change to `relative` starts a round.
    pub fn matters(&self, relative: &str) -> bool {
        let m = self.meaning(relative);
        m.manifest || !m.components.is_empty()
    }
}

fn is_ignored(relative: &str) -> bool {
    let mut parts = relative.split('/');
    let first = parts.clone().next().unwrap_or_default();
    first == ".spin-aks"
        || parts.any(|p| p == "target" || p == ".git")
        || relative.ends_with(".swp")
}

fn glob_set(globs: impl IntoIterator<Item = String>) -> anyhow::Result<GlobSet> {
    let mut set = GlobSetBuilder::new();
    for glob in globs {
        let glob = glob.trim_start_matches("./").to_string();
        // `*` does not cross `/`, as in Spin's globs.
        let glob = globset::GlobBuilder::new(&glob)
            .literal_separator(true)
            .build()
            .or_else(|_| Glob::new(&globset::escape(&glob)))?;
        set.add(glob);
    }
    Ok(set.build()?)
}

/// Changes gathered until the files were quiet for the debounce.
pub struct Batch {
    /// When the watcher reported the first change: the round's clock starts here.
    pub first: Instant,
    /// The changed files, relative to the app directory, sorted, once each.
    pub paths: Vec<String>,
}

/// How long the files must be quiet after a change before a round starts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Debounce {
    /// The default: 100 ms of quiet (`spin watch`'s), or 10 ms once every changed file was
    /// closed after writing, renamed into place or removed, since a finished save needs no more.
    Saves,
    /// `--debounce`: this long without a change, however the files were written.
    Quiet(Duration),
}

impl Debounce {
    /// The quiet time while a changed file may still be being written.
    pub fn writing(self) -> Duration {
        match self {
            Debounce::Saves => Duration::from_millis(100),
            Debounce::Quiet(quiet) => quiet,
        }
    }

    /// The quiet time once every changed file is complete.
    pub fn settled(self) -> Duration {
        match self {
            Debounce::Saves => Duration::from_millis(10),
            Debounce::Quiet(quiet) => quiet,
        }
    }
}

/// What one file event says.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Change {
    /// The file changed and may still be being written (created, or data written).
    Writing,
    /// The file changed and is complete: renamed into place, removed, its metadata changed.
    Done,
    /// A file open for writing was closed: it is complete; no change by itself.
    Closed,
}

impl Change {
    /// What an event means to `dev`; `None` for reads and opens, which start no round (spin
    /// filters.rs:29-42).
    fn of(kind: &EventKind) -> Option<Change> {
        match kind {
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => Some(Change::Closed),
            EventKind::Create(_) | EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Any) => {
                Some(Change::Writing)
            }
            EventKind::Modify(_) | EventKind::Remove(_) => Some(Change::Done),
            _ => None,
        }
    }
}

/// The app directory watched for changes (inotify on Linux).
pub struct Watcher {
    _inner: notify::RecommendedWatcher,
    events: mpsc::UnboundedReceiver<(Instant, PathBuf, Change)>,
    debounce: Debounce,
}

impl Watcher {
    /// Watches `watched`'s directory: its files, and every subdirectory but the ignored ones.
    pub fn start(watched: &Watched, debounce: Debounce) -> anyhow::Result<Watcher> {
        let (sender, events) = mpsc::unbounded_channel();
        let mut inner =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let Ok(event) = event else { return };
                let Some(change) = Change::of(&event.kind) else {
                    return;
                };
                let now = Instant::now();
                for path in event.paths {
                    let _ = sender.send((now, path, change));
                }
            })?;
        let cannot = |e: notify::Error| {
            anyhow::anyhow!("cannot watch {} for changes: {e}", watched.dir.display())
        };
        inner
            .watch(&watched.dir, RecursiveMode::NonRecursive)
            .map_err(cannot)?;
        for entry in std::fs::read_dir(&watched.dir)?.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type().is_ok_and(|t| t.is_dir()) && !is_ignored(&name) {
                inner
                    .watch(&entry.path(), RecursiveMode::Recursive)
                    .map_err(cannot)?;
            }
        }
        Ok(Watcher {
            _inner: inner,
            events,
            debounce,
        })
    }

    /// The next batch of changes that matter to `watched`: from the first one, gathered until
    /// none came for the debounce (the shorter one once every changed file is complete). `None`
    /// once the watcher has stopped.
    pub async fn next(&mut self, watched: &Watched) -> Option<Batch> {
        let relevant = |path: &Path| watched.relative(path).filter(|r| watched.matters(r));
        let (first, path, change) = loop {
            let (at, path, change) = self.events.recv().await?;
            if change == Change::Closed {
                continue;
            }
            if let Some(relative) = relevant(&path) {
                break (at, relative, change);
            }
        };
        let mut gathered = Gathered::default();
        gathered.add(path, change);
        loop {
            let quiet = if gathered.writing.is_empty() {
                self.debounce.settled()
            } else {
                self.debounce.writing()
            };
            match tokio::time::timeout(quiet, self.events.recv()).await {
                Ok(Some((_, path, change))) => {
                    if let Some(relative) = relevant(&path) {
                        gathered.add(relative, change);
                    }
                }
                _ => break,
            }
        }
        Some(Batch {
            first,
            paths: gathered.changed.into_iter().collect(),
        })
    }
}

/// The changes of one batch: every changed file once, sorted, and those still being written.
#[derive(Default)]
struct Gathered {
    changed: std::collections::BTreeSet<String>,
    writing: std::collections::BTreeSet<String>,
}

impl Gathered {
    fn add(&mut self, path: String, change: Change) {
        match change {
            Change::Writing => {
                self.writing.insert(path.clone());
                self.changed.insert(path);
            }
            Change::Done => {
                self.writing.remove(&path);
                self.changed.insert(path);
            }
            Change::Closed => {
                self.writing.remove(&path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watched(toml: &str) -> Watched {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("spin.toml"), toml).unwrap();
        let app = crate::app::load(dir.path()).unwrap();
        Watched::new(&app).unwrap()
    }

    const APP: &str = "spin_manifest_version = 2\n[application]\nname = \"w\"\n[[trigger.http]]\nroute = \"/...\"\ncomponent = \"api\"\n";

    #[test]
    fn build_globs_rebuild_files_redeploy_and_target_git_layout_are_ignored() {
        let w = watched(&format!("{APP}[component.api]\nsource = \"target/api.wasm\"\nfiles = [\"static/**/*\", {{ source = \"assets\", destination = \"/a\" }}]\n[component.api.build]\ncommand = \"make\"\nworkdir = \"code\"\nwatch = [\"src/*.wat\"]\n"));
        assert_eq!(w.meaning("code/src/api.wat").rebuild, ["api"]);
        assert!(w.meaning("code/src/deep/api.wat").components.is_empty());
        let file = w.meaning("static/css/site.css");
        assert_eq!(
            (file.rebuild.len(), file.components),
            (0, vec!["api".into()])
        );
        assert_eq!(w.meaning("assets/logo.svg").components, ["api"]);
        for ignored in [
            "target/api.wasm",
            ".git/index",
            ".spin-aks/oci/index.json",
            "static/x.swp",
            "code/target/src/a.wat",
        ] {
            assert!(!w.matters(ignored), "{ignored}");
        }
        assert!(w.meaning("spin.toml").manifest);
    }

    #[test]
    fn a_batch_waits_the_long_quiet_only_while_a_changed_file_may_be_written() {
        use notify::event::{CreateKind, DataChange, MetadataKind, RemoveKind, RenameMode};
        let (w, d, c) = (Change::Writing, Change::Done, Change::Closed);
        let kinds = [
            (EventKind::Create(CreateKind::File), Some(w)),
            (
                EventKind::Modify(ModifyKind::Data(DataChange::Any)),
                Some(w),
            ),
            (EventKind::Modify(ModifyKind::Name(RenameMode::To)), Some(d)),
            (
                EventKind::Modify(ModifyKind::Metadata(MetadataKind::Any)),
                Some(d),
            ),
            (EventKind::Remove(RemoveKind::File), Some(d)),
            (
                EventKind::Access(AccessKind::Close(AccessMode::Write)),
                Some(c),
            ),
            (EventKind::Access(AccessKind::Close(AccessMode::Read)), None),
            (EventKind::Access(AccessKind::Open(AccessMode::Any)), None),
        ];
        for (kind, want) in kinds {
            assert_eq!(Change::of(&kind), want, "{kind:?}");
        }
        /// The events of a batch, the files still being written after them, the changed files.
        type Case<'a> = (&'a [(&'a str, Change)], &'a [&'a str], &'a [&'a str]);
        let cases: [Case; 5] = [
            // `echo >> a`: written, then closed.
            (&[("a", w), ("a", c)], &[], &["a"]),
            // An editor mid-save: written, not closed yet.
            (&[("a", w)], &["a"], &["a"]),
            // Two files, one closed: the other holds the long wait.
            (&[("a", w), ("b", w), ("a", c)], &["b"], &["a", "b"]),
            // Written to a temporary name, renamed into place (vim, sed -i).
            (&[("a", d)], &[], &["a"]),
            // Closed again after a rename: still complete, listed once.
            (&[("a", d), ("a", w), ("a", c), ("a", c)], &[], &["a"]),
        ];
        for (events, writing, changed) in cases {
            let mut gathered = Gathered::default();
            for (path, change) in events {
                gathered.add(path.to_string(), *change);
            }
            let got =
                |set: &std::collections::BTreeSet<String>| set.iter().cloned().collect::<Vec<_>>();
            assert_eq!(got(&gathered.writing), writing, "{events:?}");
            assert_eq!(got(&gathered.changed), changed, "{events:?}");
        }
        assert_eq!(
            Debounce::Saves.settled(),
            std::time::Duration::from_millis(10)
        );
        let quiet = Debounce::Quiet(std::time::Duration::from_millis(300));
        assert_eq!(
            (quiet.writing(), quiet.settled()),
            (
                std::time::Duration::from_millis(300),
                std::time::Duration::from_millis(300)
            )
        );
    }

    #[test]
    fn without_a_build_the_wasm_itself_is_watched_even_under_target() {
        let w = watched(&format!(
            "{APP}[component.api]\nsource = \"target/api.wasm\"\n"
        ));
        assert_eq!(w.meaning("target/api.wasm").components, ["api"]);
        assert!(!w.matters("target/other.wasm"));
    }
}
