//! The real binary on a pseudo-terminal, for its prompts: stdin, stdout and stderr are the pty's
//! terminal side; a test waits for text, types keys, and reads the screen's transcript.

use std::ffi::CStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::FromRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const ENTER: &str = "\r";
pub const DOWN: &str = "\x1b[B";

const PATIENCE: Duration = Duration::from_secs(60);

pub struct Terminal {
    keyboard: File,
    child: Child,
    screen: Arc<Mutex<Vec<u8>>>,
    reader: std::thread::JoinHandle<()>,
}

impl Terminal {
    /// Starts `cmd` as the session leader of a new 100×30 terminal.
    pub fn spawn(mut cmd: Command) -> Terminal {
        let (master, terminal) = open_pty();
        cmd.stdin(Stdio::from(terminal.try_clone().unwrap()))
            .stdout(Stdio::from(terminal.try_clone().unwrap()))
            .stderr(Stdio::from(terminal));
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap();
        drop(cmd); // our copies of the terminal side: the screen ends when the child's do
        let screen = Arc::new(Mutex::new(Vec::new()));
        let mut output = master.try_clone().unwrap();
        let sink = screen.clone();
        let reader = std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            // EIO once every process holding the terminal side has exited.
            while let Ok(n @ 1..) = output.read(&mut buffer) {
                sink.lock().unwrap().extend_from_slice(&buffer[..n]);
            }
        });
        Terminal {
            keyboard: master,
            child,
            screen,
            reader,
        }
    }

    /// What the terminal has shown so far, without colours and cursor movements.
    pub fn screen(&self) -> String {
        plain_text(&self.screen.lock().unwrap())
    }

    /// Waits until the screen shows `text`, then pauses briefly so the prompt is reading keys.
    pub fn wait_for(&self, text: &str) {
        let deadline = Instant::now() + PATIENCE;
        while !self.screen().contains(text) {
            assert!(
                Instant::now() < deadline,
                "no `{text}` on the terminal:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    pub fn type_keys(&mut self, keys: &str) {
        self.keyboard.write_all(keys.as_bytes()).unwrap();
    }

    /// The exit code and everything the terminal showed.
    pub fn finish(mut self) -> (i32, String) {
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                self.child.kill().unwrap();
                panic!("still running:\n{}", self.screen());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let screen = self.screen.clone();
        self.reader.join().unwrap();
        let text = plain_text(&screen.lock().unwrap());
        (status.code().unwrap_or(-1), text)
    }
}

/// A new pty: (the master side we type into and read from, the terminal side for the child).
fn open_pty() -> (File, File) {
    // SAFETY: plain libc calls on descriptors we own; each result is checked.
    unsafe {
        let master = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        assert!(master >= 0, "posix_openpt: {}", io::Error::last_os_error());
        assert_eq!(libc::grantpt(master), 0);
        assert_eq!(libc::unlockpt(master), 0);
        let mut name = [0 as libc::c_char; 128];
        assert_eq!(libc::ptsname_r(master, name.as_mut_ptr(), name.len()), 0);
        let path = CStr::from_ptr(name.as_ptr());
        let terminal = libc::open(
            path.as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        );
        assert!(
            terminal >= 0,
            "open {path:?}: {}",
            io::Error::last_os_error()
        );
        let size = libc::winsize {
            ws_row: 30,
            ws_col: 100,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        assert_eq!(libc::ioctl(master, libc::TIOCSWINSZ, &size), 0);
        (File::from_raw_fd(master), File::from_raw_fd(terminal))
    }
}

/// `bytes` as text with ANSI escape sequences (CSI `ESC [ … final`, and two-byte ones) removed.
fn plain_text(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut plain = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            plain.push(c);
            continue;
        }
        if chars.next_if_eq(&'[').is_some() {
            while chars.next().is_some_and(|c| !('@'..='~').contains(&c)) {}
        } else {
            chars.next();
        }
    }
    plain
}
