//! Push progress on stderr: on a terminal a total bar in bytes with uploaded, skipped and mounted
//! counts and one bar per blob; elsewhere (a CI log) the total as one plain line every few seconds.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use indicatif::{HumanBytes, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::oci::Digest;
use crate::output;

/// Progress of one push. Hidden bars cost next to nothing, so callers never branch on visibility.
pub struct PushProgress {
    multi: MultiProgress,
    total: ProgressBar,
    counts: Arc<[AtomicUsize; 3]>,
    lines: Option<Lines>,
}

/// The plain-line printer: a thread that wakes every interval until its channel closes.
struct Lines {
    stop: mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Lines {
    fn start(total: ProgressBar, every: Duration) -> Lines {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                crate::output::eprint_line(&plain_line(&total));
            }
        });
        Lines { stop, thread }
    }

    fn stop(self) {
        drop(self.stop);
        let _ = self.thread.join();
    }
}

/// `pushing: 12.0 MiB of 40.0 MiB (30%), 3 uploaded, 1 skipped, 0 mounted`.
fn plain_line(total: &ProgressBar) -> String {
    let (done, all) = (total.position(), total.length().unwrap_or(0));
    let percent = (done * 100).checked_div(all).unwrap_or(100);
    let counts = total.message();
    let counts = if counts.is_empty() {
        String::new()
    } else {
        format!(", {counts}")
    };
    format!(
        "pushing: {} of {} ({percent}%){counts}",
        HumanBytes(done),
        HumanBytes(all)
    )
}

const UPLOADED: usize = 0;
const SKIPPED: usize = 1;
const MOUNTED: usize = 2;

impl PushProgress {
    /// `total_bytes` covers every blob: skipped and mounted ones count as done at once.
    pub fn new(shown: output::ProgressMode, total_bytes: u64) -> Self {
        let target = if shown == output::ProgressMode::Bars {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let multi = MultiProgress::with_draw_target(target);
        let total = multi.add(ProgressBar::new(total_bytes));
        total.set_style(
            ProgressStyle::with_template(
                "{prefix:>8} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}",
            )
            .expect("valid progress template")
            .progress_chars("=> "),
        );
        total.set_prefix("pushing");
        let lines = match shown {
            output::ProgressMode::Lines(every) => Some(Lines::start(total.clone(), every)),
            _ => None,
        };
        PushProgress {
            multi,
            total,
            counts: Arc::new(Default::default()),
            lines,
        }
    }

    /// A bar for one blob's upload.
    pub fn blob(&self, digest: &Digest, size: u64) -> BlobProgress {
        let bar = self.multi.insert_from_back(0, ProgressBar::new(size));
        bar.set_style(
            ProgressStyle::with_template("{prefix:>8} [{bar:30}] {bytes}/{total_bytes}")
                .expect("valid progress template")
                .progress_chars("=> "),
        );
        bar.set_prefix(digest.hex()[..8].to_string());
        BlobProgress {
            bar,
            total: self.total.clone(),
            sent: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn skipped(&self, size: u64) {
        self.count(SKIPPED, size);
    }

    pub fn mounted(&self, size: u64) {
        self.count(MOUNTED, size);
    }

    pub fn uploaded(&self) {
        self.count(UPLOADED, 0);
    }

    fn count(&self, which: usize, done_bytes: u64) {
        self.counts[which].fetch_add(1, Ordering::Relaxed);
        self.total.inc(done_bytes);
        let [uploaded, skipped, mounted] = &*self.counts;
        self.total.set_message(format!(
            "{} uploaded, {} skipped, {} mounted",
            uploaded.load(Ordering::Relaxed),
            skipped.load(Ordering::Relaxed),
            mounted.load(Ordering::Relaxed)
        ));
    }

    pub fn finish(&mut self) {
        self.total.finish_and_clear();
        if let Some(lines) = self.lines.take() {
            lines.stop();
        }
    }
}

impl Drop for PushProgress {
    /// A failed push stops the plain lines too.
    fn drop(&mut self) {
        if let Some(lines) = self.lines.take() {
            lines.stop();
        }
    }
}

/// One blob's bar; its bytes also advance the total. Cloned into the upload stream.
#[derive(Clone)]
pub struct BlobProgress {
    bar: ProgressBar,
    total: ProgressBar,
    sent: Arc<AtomicU64>,
}

impl BlobProgress {
    pub fn add(&self, bytes: u64) {
        self.sent.fetch_add(bytes, Ordering::Relaxed);
        self.bar.inc(bytes);
        self.total.inc(bytes);
    }

    /// Takes back what a failed try sent beyond `offset`, where the upload goes on from.
    pub fn rewind(&self, offset: u64) {
        let sent = self.sent.swap(offset, Ordering::Relaxed);
        let lost = sent.saturating_sub(offset);
        self.total
            .set_position(self.total.position().saturating_sub(lost));
        self.bar.set_position(offset);
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_line_gives_bytes_percent_and_counts() {
        let progress = PushProgress::new(output::ProgressMode::Off, 4 * 1024 * 1024);
        progress.total.inc(1024 * 1024);
        progress.uploaded();
        progress.skipped(0);
        assert_eq!(
            plain_line(&progress.total),
            "pushing: 1.00 MiB of 4.00 MiB (25%), 1 uploaded, 1 skipped, 0 mounted"
        );
        let empty = PushProgress::new(output::ProgressMode::Off, 0);
        assert_eq!(plain_line(&empty.total), "pushing: 0 B of 0 B (100%)");
    }
}
