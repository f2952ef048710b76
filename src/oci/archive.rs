//! `oci-archive` files: a layout packed into one deterministic tar (sorted entries, fixed headers)
//! for air-gapped transfer, and unpacked again on the other side.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Component, Path};

use anyhow::Context;
use walkdir::WalkDir;

use super::layout::Layout;

/// The fixed header every entry of our tars gets: mode, owner and a fixed mtime.
pub fn fixed_header(entry_type: tar::EntryType, size: u64, mode: u32, mtime: u64) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(entry_type);
    header.set_size(size);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(mtime);
    header
}

/// Packs the layout at `layout` into `out` (written to a temporary file, then renamed).
pub fn pack(layout: &Layout, out: &Path, mtime: u64) -> anyhow::Result<u64> {
    let (temp, size) = pack_to_temp(layout, out, mtime)?;
    temp.persist(out)
        .with_context(|| format!("cannot write {}", out.display()))?;
    Ok(size)
}

/// [`pack`], leaving `out` as it is when it holds the same bytes already (true then): an
/// unchanged input rewrites nothing.
pub fn pack_if_changed(layout: &Layout, out: &Path, mtime: u64) -> anyhow::Result<(u64, bool)> {
    let (temp, size) = pack_to_temp(layout, out, mtime)?;
    if same_bytes(temp.path(), out).unwrap_or(false) {
        return Ok((size, true));
    }
    temp.persist(out)
        .with_context(|| format!("cannot write {}", out.display()))?;
    Ok((size, false))
}

/// Whether the regular file `b` holds exactly the bytes of `a`.
fn same_bytes(a: &Path, b: &Path) -> std::io::Result<bool> {
    let meta = std::fs::symlink_metadata(b)?;
    if !meta.is_file() || meta.len() != std::fs::metadata(a)?.len() {
        return Ok(false);
    }
    let (mut a, mut b) = (
        BufReader::new(File::open(a)?),
        BufReader::new(File::open(b)?),
    );
    let (mut x, mut y) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    loop {
        let n = a.read(&mut x)?;
        if n == 0 {
            return Ok(true);
        }
        b.read_exact(&mut y[..n])?;
        if x[..n] != y[..n] {
            return Ok(false);
        }
    }
}

/// Packs the layout into a temporary file beside `out`; the file and its size.
fn pack_to_temp(
    layout: &Layout,
    out: &Path,
    mtime: u64,
) -> anyhow::Result<(tempfile::NamedTempFile, u64)> {
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let temp = crate::interrupt::owned_temp_file_in(dir, true)
        .with_context(|| format!("cannot create the archive in {}", dir.display()))?;
    let mut builder = tar::Builder::new(BufWriter::new(temp));
    let mut entries: Vec<_> = WalkDir::new(layout.root())
        .min_depth(1)
        .sort_by_file_name()
        .into_iter()
        .collect::<Result<_, _>>()?;
    entries.retain(|e| {
        let name = e.file_name().to_string_lossy();
        !name.starts_with(".tmp") && name != super::layout::LOCK_FILE
    });
    for entry in entries {
        let relative = entry.path().strip_prefix(layout.root())?;
        let name = relative.to_string_lossy().replace('\\', "/");
        if entry.file_type().is_dir() {
            let mut header = fixed_header(tar::EntryType::Directory, 0, 0o755, mtime);
            builder.append_data(&mut header, format!("{name}/"), std::io::empty())?;
        } else {
            let file = File::open(entry.path())?;
            let size = file.metadata()?.len();
            let mut header = fixed_header(tar::EntryType::Regular, size, 0o644, mtime);
            builder.append_data(&mut header, &name, BufReader::new(file))?;
        }
    }
    let temp = builder
        .into_inner()?
        .into_inner()
        .map_err(|e| e.into_error())?;
    let size = temp.as_file().metadata()?.len();
    Ok((temp, size))
}

/// Unpacks an oci-archive into `dir` and opens it as a layout. Entries that would land outside
/// `dir` (absolute paths, `..`, links) are refused.
pub fn unpack(archive: &Path, dir: &Path) -> anyhow::Result<Layout> {
    let file = File::open(archive)
        .map_err(|e| crate::bad_input!("cannot read the archive {}: {e}", archive.display()))?;
    let mut tar = tar::Archive::new(BufReader::new(file));
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the directory {}", dir.display()))?;
    for entry in tar
        .entries()
        .map_err(|e| crate::bad_input!("{} is not a tar archive: {e}", archive.display()))?
    {
        if crate::interrupt::sweeping() {
            anyhow::bail!("interrupted while unpacking {}", archive.display());
        }
        let mut entry = entry.map_err(|e| {
            crate::bad_input!("{} is not a valid tar archive: {e}", archive.display())
        })?;
        let path = entry
            .path()
            .map_err(|e| crate::bad_input!("{} holds an unreadable path: {e}", archive.display()))?
            .into_owned();
        if path
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(crate::bad_input!(
                "{} holds an unsafe path `{}`",
                archive.display(),
                path.display()
            ));
        }
        let target = dir.join(&path);
        match entry.header().entry_type() {
            tar::EntryType::Directory => create_dirs_below(dir, &target)
                .map_err(|e| unpack_failed(archive, &path, e))?,
            tar::EntryType::Regular => copy_entry(&mut entry, dir, &target)
                .map_err(|e| unpack_failed(archive, &path, e))?,
            other => {
                return Err(crate::bad_input!(
                    "{} holds `{}` of unsupported type {other:?}; an oci-archive holds only files and directories",
                    archive.display(),
                    path.display()
                ))
            }
        }
    }
    Layout::open(dir).map_err(|_| {
        crate::bad_input!(
            "{} is not an oci-archive (no oci-layout and index.json inside)",
            archive.display()
        )
    })
}

/// Unpacking goes into a fresh directory of ours: only a full disk is our problem; anything else
/// (an entry cut short, a file where a directory must go) is the archive's.
fn unpack_failed(archive: &Path, entry: &Path, err: std::io::Error) -> anyhow::Error {
    use std::io::ErrorKind::{FileTooLarge, QuotaExceeded, StorageFull};
    if matches!(err.kind(), StorageFull | QuotaExceeded | FileTooLarge) {
        return anyhow::Error::new(err).context(format!("cannot unpack {}", archive.display()));
    }
    crate::bad_input!(
        "cannot unpack `{}` from {}: {err}",
        entry.display(),
        archive.display()
    )
}

fn copy_entry(entry: &mut impl Read, root: &Path, target: &Path) -> std::io::Result<()> {
    if let Some(parent) = target.parent() {
        create_dirs_below(root, parent)?;
    }
    let mut out = BufWriter::new(File::create(target)?);
    std::io::copy(entry, &mut out)?;
    out.flush()?;
    Ok(())
}

/// Creates `path` and its missing parents below `root`, never `root` itself: once an interrupt
/// has removed the unpack directory, it cannot come back.
fn create_dirs_below(root: &Path, path: &Path) -> std::io::Result<()> {
    if crate::interrupt::sweeping() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::Interrupted,
            "interrupted",
        ));
    }
    let below = path.strip_prefix(root).unwrap_or(path);
    let mut current = root.to_path_buf();
    for part in below.components() {
        current.push(part);
        match std::fs::create_dir(&current) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// `export`'s default archive name, `<app>-<tag>.oci.tar`, the app's name made a safe file name: `A-Za-z0-9._-` kept, any other
/// character (`/`, `\`, a space…) becomes `-`, and no leading `.` or `-`, so the archive never
/// lands outside the app directory, hidden, or looking like an option; `app` when nothing is left.
/// At most 100 characters: file names have a length limit (255 bytes on most file systems).
pub fn default_file_name(app_name: &str, tag: &str) -> String {
    format!("{}-{tag}.oci.tar", file_stem(app_name))
}

fn file_stem(name: &str) -> String {
    let safe: String = name
        .chars()
        .take(100)
        .map(|c| match c {
            'A'..='Z' | 'a'..='z' | '0'..='9' | '.' | '_' | '-' => c,
            _ => '-',
        })
        .collect();
    match safe.trim_start_matches(['.', '-']) {
        "" => "app".to_string(),
        stem => stem.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_twice_gives_identical_bytes_and_unpacks_to_the_same_layout() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(&dir.path().join("layout")).unwrap();
        let (digest, _) = layout.write_blob(b"some blob").unwrap();
        // The lock a build holds is not part of the image.
        std::fs::write(layout.root().join(super::super::layout::LOCK_FILE), "1").unwrap();
        std::fs::write(
            dir.path().join("layout/index.json"),
            br#"{"schemaVersion":2,"manifests":[]}"#,
        )
        .unwrap();
        let first = dir.path().join("a.tar");
        let second = dir.path().join("b.tar");
        pack(&layout, &first, 0).unwrap();
        pack(&layout, &second, 0).unwrap();
        assert_eq!(
            std::fs::read(&first).unwrap(),
            std::fs::read(&second).unwrap()
        );
        let unpacked = unpack(&first, &dir.path().join("out")).unwrap();
        assert_eq!(
            std::fs::read(unpacked.blob_path(&digest)).unwrap(),
            b"some blob"
        );
        assert!(!dir
            .path()
            .join("out")
            .join(super::super::layout::LOCK_FILE)
            .exists());
    }
    #[test]
    fn app_names_become_file_names_inside_the_app_directory() {
        for (name, stem) in [
            ("hello-world", "hello-world"),
            ("Hello_World.v2", "Hello_World.v2"),
            ("../x", "x"),
            ("../../etc/passwd", "etc-passwd"),
            ("/tmp/abs", "tmp-abs"),
            ("a\\b c", "a-b-c"),
            ("..", "app"),
            ("-rf", "rf"),
            ("caf\u{e9}", "caf-"),
            ("n".repeat(300).as_str(), "n".repeat(100).as_str()),
        ] {
            assert_eq!(super::file_stem(name), stem, "{name}");
        }
    }
}
