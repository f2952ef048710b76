//! The tests' seeded fault front as a program, for benches/push-faults.sh: a proxy on a free
//! loopback port in front of a registry; prints `127.0.0.1:<port>` and runs until killed.
//! Usage: fault-front <upstream port> <seed> <cut> <503> [<429> [<slow>]]  (odds per request)

#[allow(dead_code)]
#[path = "fault_proxy.rs"]
mod fault_proxy;

use std::io::Write;

use fault_proxy::{FaultMix, FaultProxy};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize| -> f64 {
        args.get(i)
            .map(|a| a.parse().expect("a number"))
            .unwrap_or(0.0)
    };
    let upstream: u16 = args
        .first()
        .and_then(|a| a.parse().ok())
        .expect("usage: fault-front <upstream port> <seed> <cut> <503> [<429> [<slow>]]");
    let mix = FaultMix {
        cut: number(2),
        unavailable: number(3),
        throttled: number(4),
        slow: number(5),
    };
    let proxy = FaultProxy::start(upstream, fault_proxy::seeded(number(1) as u64, mix));
    println!("{}", proxy.host());
    std::io::stdout().flush().expect("stdout");
    loop {
        std::thread::park();
    }
}
