//! What a path on disk is, in words, for the messages that refuse a path that is not the regular
//! file (or directory) they need: "a directory", "a character device", "a FIFO (named pipe)".

use std::fs::FileType;

/// `file_type` as an article and a noun: "a regular file", "a directory", "a symbolic link",
/// "a character device", "a block device", "a FIFO (named pipe)", "a socket".
pub fn describe(file_type: FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    match file_type {
        t if t.is_file() => "a regular file",
        t if t.is_dir() => "a directory",
        t if t.is_symlink() => "a symbolic link",
        t if t.is_char_device() => "a character device",
        t if t.is_block_device() => "a block device",
        t if t.is_fifo() => "a FIFO (named pipe)",
        t if t.is_socket() => "a socket",
        _ => "an unknown kind of file",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let kind = |path: &std::path::Path| describe(std::fs::metadata(path).unwrap().file_type());
        assert_eq!(kind(dir.path()), "a directory");
        assert_eq!(
            kind(std::path::Path::new("/dev/null")),
            "a character device"
        );
        std::fs::write(dir.path().join("f"), "x").unwrap();
        assert_eq!(kind(&dir.path().join("f")), "a regular file");
    }
}
