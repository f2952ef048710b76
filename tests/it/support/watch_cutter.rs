//! A TCP relay in front of the rig's API server that breaks long-lived streams (watches) as a load
//! balancer would: it cuts quiet connections, drops the first ones, or forgets the open ones.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Mutex;

pub struct WatchCutter {
    pub port: u16,
    shared: Shared,
}

/// What the relays of one cutter share: counts of connections cut, of calls to
/// [`WatchCutter::forget`] (a connection made before the last one is forgotten), and of bytes
/// dropped on forgotten connections.
#[derive(Clone, Default)]
struct Shared {
    cut: Arc<AtomicUsize>,
    forgets: Arc<AtomicUsize>,
    dropped: Arc<AtomicUsize>,
}

impl WatchCutter {
    pub fn start(upstream: u16, age: Duration, quiet: Duration) -> WatchCutter {
        WatchCutter::dropping_first(upstream, 0, age, quiet)
    }

    /// Like [`WatchCutter::start`], closing the first `drop` connections before relaying a byte.
    pub fn dropping_first(
        upstream: u16,
        drop: usize,
        age: Duration,
        quiet: Duration,
    ) -> WatchCutter {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Shared::default();
        let relays = shared.clone();
        std::thread::spawn(move || {
            for (n, client) in listener.incoming().flatten().enumerate() {
                if n < drop {
                    relays.cut.fetch_add(1, Ordering::SeqCst);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                relay(client, server, age, quiet, relays.clone());
            }
        });
        WatchCutter { port, shared }
    }

    /// A relay that cuts nothing (until [`WatchCutter::forget`]).
    pub fn passing(upstream: u16) -> WatchCutter {
        WatchCutter::start(upstream, Duration::MAX, Duration::MAX)
    }

    /// How many connections were cut.
    pub fn cuts(&self) -> usize {
        self.shared.cut.load(Ordering::SeqCst)
    }

    /// Every connection open now goes silent for good: what either side sends on it is dropped,
    /// and it is never closed. Connections made afterwards pass.
    pub fn forget(&self) {
        self.shared.forgets.fetch_add(1, Ordering::SeqCst);
    }

    /// How many bytes forgotten connections carried (and dropped).
    pub fn dropped(&self) -> usize {
        self.shared.dropped.load(Ordering::SeqCst)
    }
}

fn relay(client: TcpStream, server: TcpStream, age: Duration, quiet: Duration, shared: Shared) {
    let born = Instant::now();
    let generation = shared.forgets.load(Ordering::SeqCst);
    let last_sent = Arc::new(Mutex::new(Instant::now()));
    let pipe = |mut from: TcpStream, mut to: TcpStream, note: Option<Arc<Mutex<Instant>>>| {
        let shared = shared.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 16 * 1024];
            while let Ok(n) = from.read(&mut buffer) {
                if n > 0 && shared.forgets.load(Ordering::SeqCst) > generation {
                    shared.dropped.fetch_add(n, Ordering::SeqCst);
                    continue;
                }
                if n == 0 || to.write_all(&buffer[..n]).is_err() {
                    break;
                }
                if let Some(note) = &note {
                    *note.lock().unwrap() = Instant::now();
                }
            }
            let _ = to.shutdown(Shutdown::Write);
        });
    };
    pipe(
        client.try_clone().unwrap(),
        server.try_clone().unwrap(),
        Some(last_sent.clone()),
    );
    pipe(
        server.try_clone().unwrap(),
        client.try_clone().unwrap(),
        None,
    );
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_millis(100));
        let idle = last_sent.lock().unwrap().elapsed();
        if born.elapsed() >= age && idle >= quiet {
            if client.peer_addr().is_ok() {
                shared.cut.fetch_add(1, Ordering::SeqCst);
            }
            let _ = client.shutdown(Shutdown::Both);
            let _ = server.shutdown(Shutdown::Both);
            break;
        }
    });
}
