//! The `--dockerfile` renderer: a `FROM scratch` Dockerfile copying spin.toml and every wasm source
//! and file mount to the path spin.toml references (docs/formats.md), plus a `.dockerignore`.

use std::path::Path;

use super::{GeneratedFile, Root};
use crate::app::{App, DependencySource, FileMount, Source};

const DOCKERFILE: &str = include_str!("../../../templates/docker/Dockerfile");
const DOCKERIGNORE: &str = include_str!("../../../templates/docker/dockerignore");

/// The Dockerfile and .dockerignore for `app`, and warnings for what an image cannot carry.
pub fn render(app: &App, image: &str) -> (Vec<GeneratedFile>, Vec<String>) {
    let mut sources: Vec<String> = Vec::new();
    let mut warnings = Vec::new();
    let manifest = relative(&app.dir, &app.manifest_path);
    let mut copies = vec![copy(&manifest, "/spin.toml")];
    let mut add = |source: String, copies: &mut Vec<String>| {
        if !sources.contains(&source) {
            copies.push(copy(&source, &format!("/{source}")));
            sources.push(source);
        }
    };
    for component in &app.components {
        match &component.source {
            Source::Local(path) => add(relative(&app.dir, path), &mut copies),
            Source::Remote { url, .. } => warnings.push(format!(
                "component `{}` has a remote source ({}); the image does not contain it and Spin downloads it at start",
                component.id,
                crate::redact::redact_url(url)
            )),
        }
        for dependency in &component.dependencies {
            let owner = format!(
                "component `{}`, dependency `{}`",
                component.id, dependency.name
            );
            match &dependency.source {
                DependencySource::Local(path) if inside(path) => {
                    add(relative(&app.dir, path), &mut copies)
                }
                DependencySource::Local(path) => warnings.push(format!(
                    "{owner}: {} is outside the app directory, so outside the Docker build context; copy it into the app or let `spin-aks build --format image` prepare the image",
                    path.display()
                )),
                DependencySource::Remote { url, .. } => warnings.push(format!(
                    "{owner} is remote ({}); the image does not contain it and Spin downloads it at start",
                    crate::redact::redact_url(url)
                )),
                // The named component's source is copied with that component.
                DependencySource::Component(_) => {}
            }
        }
        for mount in &component.files {
            let source = match mount {
                FileMount::Pattern(pattern) => glob_root(pattern),
                FileMount::Placement { source, .. } => relative(&app.dir, source),
            };
            add(source, &mut copies);
        }
    }
    let mut includes = vec![format!("!{manifest}")];
    includes.extend(sources.iter().map(|s| format!("!{s}")));
    // Excluded files stay out of the build context, so out of the image.
    for component in &app.components {
        includes.extend(component.exclude_files.iter().cloned());
    }
    let reshaped: Vec<&str> = app
        .components
        .iter()
        .filter(|c| {
            !c.exclude_files.is_empty()
                || c.files
                    .iter()
                    .any(|f| matches!(f, FileMount::Pattern(p) if p.contains(['*', '?', '['])))
        })
        .map(|c| c.id.as_str())
        .collect();
    if !reshaped.is_empty() {
        warnings.push(format!(
            "Dockerfile: the shim's plain-image mode rejects `exclude_files` and mounts only directories, and components {} use them; drop `exclude_files` and use directory mounts in spin.toml, or let `spin-aks build --format image` prepare the image",
            reshaped.join(", ")
        ));
    }
    let files = vec![
        GeneratedFile::text(
            Root::App,
            "Dockerfile",
            DOCKERFILE
                .replace("__IMAGE__", image)
                .replace("__COPIES__", &copies.join("\n")),
        ),
        GeneratedFile::text(
            Root::App,
            ".dockerignore",
            DOCKERIGNORE.replace("__INCLUDES__", &includes.join("\n")),
        ),
    ];
    (files, warnings)
}

/// Whether a relative path stays inside the app directory (Spin lets dependency paths leave it).
fn inside(path: &Path) -> bool {
    let mut depth = 0i32;
    path.components().all(|part| {
        depth += match part {
            std::path::Component::Normal(_) => 1,
            std::path::Component::ParentDir => -1,
            std::path::Component::CurDir => 0,
            _ => return false,
        };
        depth >= 0
    })
}

/// One COPY line; the JSON form when a path has spaces.
fn copy(source: &str, dest: &str) -> String {
    if source.contains(char::is_whitespace) {
        format!("COPY {}", serde_json::json!([source, dest]))
    } else {
        format!("COPY {source} {dest}")
    }
}

/// `path` relative to the app directory, with forward slashes.
fn relative(dir: &Path, path: &Path) -> String {
    let path = path.strip_prefix(dir).unwrap_or(path);
    path.components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// The directory a glob pattern starts from (the pattern itself when it has no wildcard): copying
/// it keeps every matching file at its relative path, which is where spin.toml looks.
fn glob_root(pattern: &str) -> String {
    let parts: Vec<&str> = pattern
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    let literal: Vec<&str> = parts
        .iter()
        .take_while(|p| !p.contains(['*', '?', '[', '{']))
        .copied()
        .collect();
    if literal.is_empty() {
        ".".to_string()
    } else {
        literal.join("/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::{Component, Dependency, Inherit};

    #[test]
    fn dependencies_inside_the_app_are_copied_and_the_others_explained() {
        let dependency = |name: &str, source: DependencySource| Dependency {
            name: name.into(),
            source,
            export: None,
            inherit: Inherit::Nothing,
        };
        let app = App {
            dir: "/app".into(),
            manifest_path: "/app/spin.toml".into(),
            manifest: Default::default(),
            name: "deps".into(),
            version: None,
            description: None,
            authors: vec![],
            trigger_settings: Default::default(),
            variables: Default::default(),
            triggers: vec![],
            components: vec![Component {
                id: "api".into(),
                source: Source::Local("api.wasm".into()),
                dependencies: vec![
                    dependency("a:b/in", DependencySource::Local("deps/in.wasm".into())),
                    dependency("a:b/out", DependencySource::Local("../out.wasm".into())),
                    dependency(
                        "a:b/web",
                        DependencySource::Remote {
                            url: "https://example.com/w.wasm".into(),
                            digest: crate::oci::Digest::of(b"w"),
                        },
                    ),
                ],
                ..Default::default()
            }],
        };
        let (files, warnings) = render(&app, "img");
        assert!(files[0].content.contains("COPY deps/in.wasm /deps/in.wasm"));
        assert!(!files[0].content.contains("out.wasm"));
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("dependency `a:b/out`") && warnings[0].contains("outside"));
        assert!(warnings[1].contains("dependency `a:b/web` is remote"));
    }
}
