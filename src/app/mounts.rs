//! Resolves a component's `files` and `exclude_files` into the sorted list of files it sees:
//! globs matched against a sorted walk of the app directory, nothing outside it, links checked.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use globset::{Glob, GlobMatcher, GlobSet, GlobSetBuilder};
use walkdir::WalkDir;

use super::model::{Component, FileMount, MountedFile};
use crate::bad_input;

/// Directories of ours inside the app that are never part of it.
const IGNORED_DIRS: &[&str] = &[".spin-aks"];

/// The files of one app directory, walked once, as sorted app-relative paths (forward slashes).
pub struct AppFiles {
    dir: PathBuf,
    files: Vec<String>,
    /// The files reached through a symbolic link (themselves, or a directory above them): only
    /// these need their real path checked, which saves a readlink per path part for the rest.
    linked: BTreeSet<String>,
}

impl AppFiles {
    /// Walks `dir` (following links; where they lead is checked for the files a mount selects).
    pub fn walk(dir: &Path) -> anyhow::Result<Self> {
        let mut files = Vec::new();
        let mut linked = BTreeSet::new();
        let mut link_depth: Option<usize> = None;
        let walker = WalkDir::new(dir)
            .follow_links(true)
            .sort_by_file_name()
            .into_iter();
        for entry in walker
            .filter_entry(|e| e.depth() != 1 || !IGNORED_DIRS.iter().any(|d| e.file_name() == *d))
        {
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
            if link_depth.is_some_and(|d| entry.depth() <= d) {
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
        Ok(AppFiles {
            dir: dir.to_path_buf(),
            files,
            linked,
        })
    }

    /// The files of `component`, keyed and sorted by guest path; warnings for mounts matching nothing.
    pub fn mounted(
        &self,
        component: &Component,
        warnings: &mut Vec<String>,
    ) -> anyhow::Result<Vec<MountedFile>> {
        let excluded = glob_set(&component.exclude_files, &component.id)?;
        let mut by_guest: BTreeMap<String, PathBuf> = BTreeMap::new();
        for mount in &component.files {
            let matched = self.matches(mount, &component.id)?;
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
    fn matches(&self, mount: &FileMount, component: &str) -> anyhow::Result<Vec<(String, String)>> {
        match mount {
            FileMount::Pattern(pattern) => {
                let pattern = normalize(pattern);
                let selected = match self.as_file_or_dir(&pattern) {
                    Some(files) => files,
                    None => {
                        let glob = matcher(&pattern, component)?;
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
                let destination = destination.trim_end_matches('/');
                let selected = self.as_file_or_dir(&source).unwrap_or_default();
                Ok(selected
                    .into_iter()
                    .map(|f| {
                        let guest = if f == source {
                            destination.to_string()
                        } else {
                            format!(
                                "{destination}/{}",
                                f.strip_prefix(&format!("{source}/"))
                                    .unwrap_or(&f)
                                    .trim_start_matches('/')
                            )
                        };
                        let guest = if guest.is_empty() {
                            "/".to_string()
                        } else {
                            guest
                        };
                        (f, guest)
                    })
                    .collect())
            }
        }
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

fn normalize(path: &str) -> String {
    let trimmed = path.trim_start_matches("./").trim_end_matches('/');
    if trimmed == "." {
        String::new()
    } else {
        trimmed.to_string()
    }
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

/// A relative path with forward slashes on every platform.
pub fn slash_path(path: &Path) -> String {
    path.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
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
        let mounted = AppFiles::walk(&dir)
            .unwrap()
            .mounted(&component, &mut warnings)
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
        let files = AppFiles::walk(&dir).unwrap();
        assert_eq!(
            files.linked.iter().collect::<Vec<_>>(),
            ["static/linked/secret.txt"]
        );
        let component = Component {
            id: "c".into(),
            files: vec![FileMount::Pattern("static/**/*".into())],
            ..Component::default()
        };
        let err = files.mounted(&component, &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
    }
}
