//! Resolves a component's `files` and `exclude_files` into the sorted list of files it sees:
//! globs matched against a sorted walk of the directories mounts name, nothing outside the app.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use globset::{Glob, GlobMatcher, GlobSet, GlobSetBuilder};
use walkdir::WalkDir;

use super::model::{Component, FileMount, MountedFile};
use crate::bad_input;

/// Directories of ours inside the app that are never part of it.
const IGNORED_DIRS: &[&str] = &[".spin-aks"];

/// The files under the app directory that mounts can reach, walked once, as sorted app-relative
/// paths (forward slashes).
pub struct AppFiles {
    dir: PathBuf,
    files: Vec<String>,
    /// The files reached through a symbolic link (themselves, or a directory above them): only
    /// these need their real path checked, which saves a readlink per path part for the rest.
    linked: BTreeSet<String>,
}

impl AppFiles {
    /// Walks the parts of `dir` that the mounts of `components` name (following links; where
    /// they lead is checked for the files a mount selects). Nothing else is read, so a link or
    /// an unreadable directory no mount names cannot fail the build.
    pub fn walk(dir: &Path, components: &[Component]) -> anyhow::Result<Self> {
        let mut files = Vec::new();
        let mut linked = BTreeSet::new();
        for root in walk_roots(components) {
            walk_root(dir, &root, &mut files, &mut linked)?;
        }
        files.sort();
        files.dedup();
        Ok(AppFiles {
            dir: dir.to_path_buf(),
            files,
            linked,
        })
    }

    /// The files of `component`, keyed and sorted by guest path; warnings for globs matching
    /// nothing. A literal path that does not exist is an error, as it is for Spin.
    pub fn mounted(
        &self,
        manifest: &Path,
        component: &Component,
        warnings: &mut Vec<String>,
    ) -> anyhow::Result<Vec<MountedFile>> {
        let excluded = glob_set(&component.exclude_files, &component.id)?;
        let mut by_guest: BTreeMap<String, PathBuf> = BTreeMap::new();
        for (i, mount) in component.files.iter().enumerate() {
            let field = format!("component.{}.files[{i}]", component.id);
            let matched = self
                .matches(mount, &component.id)
                .map_err(|m| bad_input!("{}: `{field}`: {m}", manifest.display()))?;
            let kept: Vec<_> = matched
                .into_iter()
                .filter(|(rel, _)| !excluded.is_match(rel))
                .collect();
            if kept.is_empty() {
                warnings.push(format!(
                    "component `{}`: files entry {} matches no file",
                    component.id,
                    describe(mount)
                ));
            }
            for (relative, guest_path) in kept {
                let source = self.dir.join(&relative);
                if self.linked.contains(&relative) {
                    ensure_inside(&self.dir, &source, &relative)?;
                }
                if let Some(previous) = by_guest.insert(guest_path.clone(), source.clone()) {
                    if previous != source {
                        return Err(bad_input!(
                            "component `{}`: two files are mounted at {guest_path}: {} and {}",
                            component.id,
                            previous.display(),
                            source.display()
                        ));
                    }
                }
            }
        }
        Ok(by_guest
            .into_iter()
            .map(|(guest_path, source)| MountedFile { guest_path, source })
            .collect())
    }

    /// (app-relative path, guest path) for every file a mount entry selects.
    fn matches(&self, mount: &FileMount, component: &str) -> Result<Vec<(String, String)>, String> {
        match mount {
            FileMount::Pattern(written) => {
                let pattern = normalize(written);
                let selected = match self.as_file_or_dir(&pattern) {
                    Some(files) => files,
                    // spin v3.6.3 crates/loader/src/local.rs:370-376: a path without glob
                    // characters must exist.
                    None if !looks_like_glob(&pattern) => {
                        return Err(self.not_a_file_or_dir(&pattern, &format!("`{written}`")).unwrap_or_else(|| {
                            format!("`{written}` does not exist and is not a glob pattern; create it or fix the path")
                        }))
                    }
                    None => {
                        let glob = matcher(&pattern, component).map_err(|e| e.to_string())?;
                        self.files
                            .iter()
                            .filter(|f| glob.is_match(f.as_str()))
                            .cloned()
                            .collect()
                    }
                };
                Ok(selected
                    .into_iter()
                    .map(|f| (f.clone(), format!("/{f}")))
                    .collect())
            }
            FileMount::Placement {
                source,
                destination,
            } => {
                let source = normalize(&slash_path(source));
                // local.rs:389: the source must exist (a file or a directory, never a glob).
                let selected = self.as_file_or_dir(&source).ok_or_else(|| {
                    let shown = display_path(&source);
                    self.not_a_file_or_dir(&source, &format!("source `{shown}`"))
                        .unwrap_or_else(|| {
                            format!("source `{shown}` does not exist in the app directory")
                        })
                })?;
                let destination = guest_dir(destination)?;
                let single_file = selected.len() == 1 && selected[0] == source;
                if single_file && !is_file_name(&destination) {
                    return Err(format!("destination `{destination}` names a directory, but source `{source}` is a file; give the file's guest path, e.g. `{}/{}`", destination.trim_end_matches('/'), source.rsplit('/').next().unwrap_or(&source)));
                }
                let base = destination.trim_end_matches('/');
                Ok(selected
                    .into_iter()
                    .map(|f| {
                        let guest = if f == source {
                            base.to_string()
                        } else {
                            let under = f.strip_prefix(&format!("{source}/")).unwrap_or(&f);
                            let under = under.trim_start_matches('/');
                            format!("{base}/{under}")
                        };
                        (f, guest)
                    })
                    .collect())
            }
        }
    }

    /// Why the app-relative `path` (shown as `shown`) that is neither a file nor a directory
    /// cannot be mounted when something else is there (a device, a FIFO, a socket, perhaps
    /// through a link): `None` when nothing is.
    fn not_a_file_or_dir(&self, path: &str, shown: &str) -> Option<String> {
        let meta = std::fs::metadata(self.dir.join(path)).ok()?;
        if meta.is_file() || meta.is_dir() {
            return None;
        }
        let link = std::fs::read_link(self.dir.join(path))
            .map(|target| format!(" (a link to {})", target.display()))
            .unwrap_or_default();
        Some(format!(
            "{shown}{link} is {}, not a file or directory; mount only files and directories",
            crate::file_kind::describe(meta.file_type())
        ))
    }

    /// A literal file, or every file under a literal directory; `None` when `path` is neither.
    fn as_file_or_dir(&self, path: &str) -> Option<Vec<String>> {
        if path.is_empty() {
            return Some(self.files.clone());
        }
        if self
            .files
            .binary_search_by(|f| f.as_str().cmp(path))
            .is_ok()
        {
            return Some(vec![path.to_string()]);
        }
        let prefix = format!("{path}/");
        let under: Vec<String> = self
            .files
            .iter()
            .filter(|f| f.starts_with(&prefix))
            .cloned()
            .collect();
        (!under.is_empty() || self.dir.join(path).is_dir()).then_some(under)
    }
}

/// The app-relative directories (or files) to walk: each mount's literal path, or a glob's
/// literal leading directories; `""` is the whole app. Nested roots are left to their parent.
fn walk_roots(components: &[Component]) -> Vec<String> {
    let mut roots: Vec<String> = components
        .iter()
        .flat_map(|c| &c.files)
        .map(|mount| match mount {
            FileMount::Pattern(pattern) => {
                let pattern = normalize(pattern);
                let literal: Vec<&str> = pattern
                    .split('/')
                    .take_while(|part| !part.contains(['*', '?', '[', ']', '{']))
                    .collect();
                literal.join("/")
            }
            FileMount::Placement { source, .. } => normalize(&slash_path(source)),
        })
        .collect();
    roots.sort();
    roots.dedup();
    let covered = |root: &str, by: &str| by.is_empty() || root.starts_with(&format!("{by}/"));
    let kept: Vec<String> = roots
        .iter()
        .filter(|root| {
            !roots
                .iter()
                .any(|other| other != *root && covered(root, other))
        })
        .cloned()
        .collect();
    kept
}

/// Adds the files under `dir/root` (following links) to `files`, and those reached through a
/// link to `linked`.
fn walk_root(
    dir: &Path,
    root: &str,
    files: &mut Vec<String>,
    linked: &mut BTreeSet<String>,
) -> anyhow::Result<()> {
    let start = dir.join(root);
    // A link above the root itself (e.g. `static` → elsewhere, root `static/css`).
    let root_linked = std::fs::canonicalize(&start).is_ok_and(|real| real != start);
    let mut link_depth: Option<usize> = root_linked.then_some(0);
    let ignored = |path: &Path| {
        let first = path
            .strip_prefix(dir)
            .ok()
            .and_then(|p| p.components().next());
        first.is_some_and(|part| IGNORED_DIRS.iter().any(|d| part.as_os_str() == *d))
    };
    let walker = WalkDir::new(&start)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter();
    for entry in walker.filter_entry(|e| !ignored(e.path())) {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e)
                if e.io_error()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound) =>
            {
                continue
            }
            Err(e) => {
                return Err(bad_input!(
                    "cannot read the app directory {}: {e}",
                    dir.display()
                ))
            }
        };
        if !root_linked && link_depth.is_some_and(|d| entry.depth() <= d) {
            link_depth = None;
        }
        if entry.path_is_symlink() && link_depth.is_none() {
            link_depth = Some(entry.depth());
        }
        if entry.file_type().is_file() {
            let relative = slash_path(entry.path().strip_prefix(dir)?);
            if link_depth.is_some() {
                linked.insert(relative.clone());
            }
            files.push(relative);
        }
    }
    Ok(())
}

/// Spin's test for a glob (`glob::Pattern::escape` changes it): `*`, `?`, `[` or `]`.
fn looks_like_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '[', ']'])
}

/// A `files` destination as an absolute guest path with `.` and `..` resolved; one that climbs
/// above `/` is refused (Spin would write it outside the component's files).
pub fn guest_dir(destination: &str) -> Result<String, String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in destination.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop().ok_or_else(|| {
                    format!("destination `{destination}` climbs above the guest's `/`; give a path inside it")
                })?;
            }
            name => parts.push(name),
        }
    }
    let trailing = destination.ends_with('/')
        || destination.ends_with("/.")
        || destination.ends_with("/..")
        || parts.is_empty();
    let mut path = format!("/{}", parts.join("/"));
    if trailing && path != "/" {
        path.push('/');
    }
    Ok(path)
}

/// A guest path (from [`guest_dir`]) a single file can be copied to: not `/`, not ending in `/`
/// (spin v3.6.3 crates/loader/src/local.rs:503-519 refuses those for a file).
fn is_file_name(guest: &str) -> bool {
    !guest.ends_with('/')
}

fn display_path(path: &str) -> &str {
    if path.is_empty() {
        "."
    } else {
        path
    }
}

fn ensure_inside(dir: &Path, path: &Path, relative: &str) -> anyhow::Result<()> {
    let real = std::fs::canonicalize(path)
        .map_err(|e| bad_input!("cannot read {}: {e}", path.display()))?;
    if real.starts_with(dir) {
        Ok(())
    } else {
        Err(bad_input!(
            "{} is a symbolic link to {}, outside the app directory {}; copy the file into the app instead",
            relative,
            real.display(),
            dir.display()
        ))
    }
}

fn matcher(pattern: &str, component: &str) -> anyhow::Result<GlobMatcher> {
    Ok(glob(pattern, component)?.compile_matcher())
}

fn glob(pattern: &str, component: &str) -> anyhow::Result<Glob> {
    globset::GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map_err(|e| bad_input!("component `{component}`: invalid glob `{pattern}`: {e}"))
}

fn glob_set(patterns: &[String], component: &str) -> anyhow::Result<GlobSet> {
    let mut set = GlobSetBuilder::new();
    for pattern in patterns {
        set.add(glob(&normalize(pattern), component)?);
    }
    Ok(set.build()?)
}

/// An app-relative path or glob with `.` and `..` resolved and no trailing `/`; `""` is the app
/// directory (the manifest check refuses paths climbing above it).
fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            name => parts.push(name),
        }
    }
    parts.join("/")
}

fn describe(mount: &FileMount) -> String {
    match mount {
        FileMount::Pattern(p) => format!("`{p}`"),
        FileMount::Placement {
            source,
            destination,
        } => format!(
            "{{ source = `{}`, destination = `{destination}` }}",
            source.display()
        ),
    }
}

/// A path with forward slashes on every platform (an absolute one keeps its one leading `/`).
pub fn slash_path(path: &Path) -> String {
    let parts = path
        .components()
        .filter(|c| !matches!(c, std::path::Component::RootDir))
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/");
    // The root is a separator of its own: `/dev/zero`, not `//dev/zero`.
    if path.has_root() {
        format!("/{parts}")
    } else {
        parts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for path in [
            "static/a.txt",
            "static/sub/b.txt",
            "static/sub/c.bak",
            "docs/readme.md",
            "top.txt",
        ] {
            let full = dir.path().join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, path).unwrap();
        }
        dir
    }

    fn guest_paths(
        dir: &Path,
        files: Vec<FileMount>,
        exclude: &[&str],
    ) -> (Vec<String>, Vec<String>) {
        let dir = std::fs::canonicalize(dir).unwrap();
        let component = Component {
            id: "c".into(),
            files,
            exclude_files: exclude.iter().map(|s| s.to_string()).collect(),
            ..Component::default()
        };
        let mut warnings = Vec::new();
        let mounted = AppFiles::walk(&dir, std::slice::from_ref(&component))
            .unwrap()
            .mounted(Path::new("spin.toml"), &component, &mut warnings)
            .unwrap();
        (
            mounted.into_iter().map(|m| m.guest_path).collect(),
            warnings,
        )
    }

    #[test]
    fn single_star_does_not_cross_directories_but_double_star_does() {
        let dir = app_dir();
        let (one, _) = guest_paths(dir.path(), vec![FileMount::Pattern("static/*".into())], &[]);
        assert_eq!(one, ["/static/a.txt"]);
        let (all, _) = guest_paths(
            dir.path(),
            vec![FileMount::Pattern("static/**/*".into())],
            &[],
        );
        assert_eq!(
            all,
            ["/static/a.txt", "/static/sub/b.txt", "/static/sub/c.bak"]
        );
    }

    #[test]
    fn a_directory_pattern_mounts_everything_under_it() {
        let dir = app_dir();
        let (paths, _) = guest_paths(dir.path(), vec![FileMount::Pattern("./docs/".into())], &[]);
        assert_eq!(paths, ["/docs/readme.md"]);
    }

    #[test]
    fn placements_map_directories_and_single_files_to_the_destination() {
        let dir = app_dir();
        let mounts = vec![
            FileMount::Placement {
                source: "static/sub".into(),
                destination: "/data".into(),
            },
            FileMount::Placement {
                source: "top.txt".into(),
                destination: "/etc/top.txt".into(),
            },
        ];
        let (paths, _) = guest_paths(dir.path(), mounts, &["**/*.bak"]);
        assert_eq!(paths, ["/data/b.txt", "/etc/top.txt"]);
    }

    #[test]
    fn placement_at_root_keeps_relative_paths() {
        let dir = app_dir();
        let (paths, _) = guest_paths(
            dir.path(),
            vec![FileMount::Placement {
                source: "static".into(),
                destination: "/".into(),
            }],
            &[],
        );
        assert_eq!(paths, ["/a.txt", "/sub/b.txt", "/sub/c.bak"]);
    }

    #[test]
    fn exclusions_apply_to_app_relative_paths_and_empty_matches_warn() {
        let dir = app_dir();
        let (paths, warnings) = guest_paths(
            dir.path(),
            vec![FileMount::Pattern("**/*.bak".into())],
            &["static/**"],
        );
        assert!(paths.is_empty());
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("matches no file"));
    }

    #[test]
    fn the_tools_own_output_directory_is_never_mounted() {
        let dir = app_dir();
        std::fs::create_dir_all(dir.path().join(".spin-aks/oci")).unwrap();
        std::fs::write(dir.path().join(".spin-aks/oci/index.json"), "{}").unwrap();
        let (paths, _) = guest_paths(
            dir.path(),
            vec![FileMount::Pattern("**/*.json".into())],
            &[],
        );
        assert!(paths.is_empty());
    }

    #[test]
    fn files_under_a_linked_directory_outside_the_app_are_refused_and_others_are_not_resolved() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.txt"), "s").unwrap();
        let app = app_dir();
        std::os::unix::fs::symlink(outside.path(), app.path().join("static/linked")).unwrap();
        let dir = std::fs::canonicalize(app.path()).unwrap();
        let component = Component {
            id: "c".into(),
            files: vec![FileMount::Pattern("static/**/*".into())],
            ..Component::default()
        };
        let files = AppFiles::walk(&dir, std::slice::from_ref(&component)).unwrap();
        assert_eq!(
            files.linked.iter().collect::<Vec<_>>(),
            ["static/linked/secret.txt"]
        );
        let err = files
            .mounted(Path::new("spin.toml"), &component, &mut Vec::new())
            .unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
    }

    #[test]
    fn only_the_paths_mounts_name_are_walked() {
        let app = app_dir();
        std::os::unix::fs::symlink(".", app.path().join("loop")).unwrap();
        let dir = std::fs::canonicalize(app.path()).unwrap();
        let component = |pattern: &str| Component {
            id: "c".into(),
            files: vec![FileMount::Pattern(pattern.into())],
            ..Component::default()
        };
        let narrow = AppFiles::walk(&dir, &[component("static/*")]).unwrap();
        assert!(
            narrow.files.iter().all(|f| f.starts_with("static/")),
            "{:?}",
            narrow.files
        );
        assert!(AppFiles::walk(&dir, &[component("**/*")]).is_err());
    }

    fn mount_error(files: Vec<FileMount>) -> String {
        let dir = app_dir();
        let dir = std::fs::canonicalize(dir.path()).unwrap();
        let component = Component {
            id: "c".into(),
            files,
            ..Component::default()
        };
        AppFiles::walk(&dir, std::slice::from_ref(&component))
            .unwrap()
            .mounted(Path::new("spin.toml"), &component, &mut Vec::new())
            .unwrap_err()
            .to_string()
    }

    // spin v3.6.3 crates/loader/src/local.rs:370-376, 389-391 and 503-519.
    #[test]
    fn missing_literals_and_files_placed_at_directories_are_errors() {
        let placement = |source: &str, destination: &str| FileMount::Placement {
            source: source.into(),
            destination: destination.into(),
        };
        for (mount, expected) in [
            (
                FileMount::Pattern("nothing.txt".into()),
                "`nothing.txt` does not exist",
            ),
            (placement("absent", "/x"), "`absent` does not exist"),
            (placement("top.txt", "/"), "names a directory"),
            (placement("top.txt", "/etc/"), "names a directory"),
            (placement("top.txt", "/etc/."), "names a directory"),
        ] {
            let err = mount_error(vec![mount]);
            assert!(
                err.contains("`component.c.files[0]`") && err.contains(expected),
                "{err}"
            );
        }
    }

    #[test]
    fn destinations_resolve_dots_and_relative_paths_under_the_root() {
        let dir = app_dir();
        let (paths, _) = guest_paths(
            dir.path(),
            vec![
                FileMount::Placement {
                    source: "top.txt".into(),
                    destination: "etc/../conf/top.txt".into(),
                },
                FileMount::Pattern("static/sub/../a.txt".into()),
            ],
            &[],
        );
        assert_eq!(paths, ["/conf/top.txt", "/static/a.txt"]);
        for (written, guest) in [
            ("/", "/"),
            ("a/b/", "/a/b/"),
            ("/a/./b/..", "/a/"),
            ("//x", "/x"),
        ] {
            assert_eq!(guest_dir(written).as_deref(), Ok(guest), "{written}");
        }
        assert!(guest_dir("/..").is_err());
    }
}
