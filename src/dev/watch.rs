//! Which files `dev` watches and what a change to each means, as `spin watch` decides it, and the
//! file watcher that gathers changes into debounced batches.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use globset::{Glob, GlobSet, GlobSetBuilder};
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

/// The app directory watched for changes (inotify on Linux).
pub struct Watcher {
    _inner: notify::RecommendedWatcher,
    events: mpsc::UnboundedReceiver<(Instant, PathBuf)>,
    debounce: Duration,
}

impl Watcher {
    /// Watches `watched`'s directory: its files, and every subdirectory but the ignored ones.
    pub fn start(watched: &Watched, debounce: Duration) -> anyhow::Result<Watcher> {
        let (sender, events) = mpsc::unbounded_channel();
        let mut inner =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let Ok(event) = event else { return };
                // Only changes: reads and opens start no round (spin filters.rs:29-42).
                if !matches!(
                    event.kind,
                    EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_)
                ) {
                    return;
                }
                let now = Instant::now();
                for path in event.paths {
                    let _ = sender.send((now, path));
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
    /// none came for the debounce. `None` once the watcher has stopped.
    pub async fn next(&mut self, watched: &Watched) -> Option<Batch> {
        let relevant = |path: &Path| watched.relative(path).filter(|r| watched.matters(r));
        let (first, path) = loop {
            let (at, path) = self.events.recv().await?;
            if let Some(relative) = relevant(&path) {
                break (at, relative);
            }
        };
        let mut paths = vec![path];
        while let Ok(Some((_, path))) =
            tokio::time::timeout(self.debounce, self.events.recv()).await
        {
            paths.extend(relevant(&path));
        }
        paths.sort();
        paths.dedup();
        Some(Batch { first, paths })
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
    fn without_a_build_the_wasm_itself_is_watched_even_under_target() {
        let w = watched(&format!(
            "{APP}[component.api]\nsource = \"target/api.wasm\"\n"
        ));
        assert_eq!(w.meaning("target/api.wasm").components, ["api"]);
        assert!(!w.matters("target/other.wasm"));
    }
}
