//! A TCP relay in front of the rig's API server that cuts long-lived response streams (watches):
//! a connection whose client has sent nothing for `quiet` after `age` of life is closed, as a
//! load balancer or an API server restart would; it can also drop the first connections outright.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Mutex;

pub struct WatchCutter {
    pub port: u16,
    cut: Arc<AtomicUsize>,
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
        let cut = Arc::new(AtomicUsize::new(0));
        let counter = cut.clone();
        std::thread::spawn(move || {
            for (n, client) in listener.incoming().flatten().enumerate() {
                if n < drop {
                    counter.fetch_add(1, Ordering::SeqCst);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                relay(client, server, age, quiet, counter.clone());
            }
        });
        WatchCutter { port, cut }
    }

    /// How many connections were cut.
    pub fn cuts(&self) -> usize {
        self.cut.load(Ordering::SeqCst)
    }
}

fn relay(
    client: TcpStream,
    server: TcpStream,
    age: Duration,
    quiet: Duration,
    cut: Arc<AtomicUsize>,
) {
    let born = Instant::now();
    let last_sent = Arc::new(Mutex::new(Instant::now()));
    let pipe = |mut from: TcpStream, mut to: TcpStream, note: Option<Arc<Mutex<Instant>>>| {
        std::thread::spawn(move || {
            let mut buffer = [0u8; 16 * 1024];
            while let Ok(n) = from.read(&mut buffer) {
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
                cut.fetch_add(1, Ordering::SeqCst);
            }
            let _ = client.shutdown(Shutdown::Both);
            let _ = server.shutdown(Shutdown::Both);
            break;
        }
    });
}
