//! `spin-aks logs [-f]`: the app's pod logs through the API server.

use std::sync::Mutex;

use serde::Serialize;

use crate::cli::{GlobalArgs, LogsArgs};
use crate::cluster::logs;
use crate::context::target::Cluster;
use crate::output::{Output, OutputMode};

#[derive(Serialize)]
struct LogsReport {
    lines: Vec<LogLine>,
}

#[derive(Serialize)]
struct LogLine {
    pod: String,
    line: String,
}

pub async fn run(global: &GlobalArgs, args: &LogsArgs, out: &Output) -> anyhow::Result<()> {
    let json = out.mode == OutputMode::Json;
    let options = args.settings(json)?;
    let ctx = global.app_context(out)?;
    let cluster = Cluster::connect(&ctx, &args.target.settings(), global.yes).await?;
    let namespace = cluster.conn.namespace.clone();
    let pods = logs::pods_of(&cluster.conn, &namespace, &ctx.name).await?;
    if pods.is_empty() {
        anyhow::bail!("{} has no pods in namespace {namespace}", ctx.name);
    }
    let prefix = pods.len() > 1;
    let collected = Mutex::new(Vec::new());
    let print = |pod: &str, line: &str| {
        if json {
            collected.lock().expect("log lines lock").push(LogLine {
                pod: pod.into(),
                line: line.into(),
            });
        } else {
            let shown = if prefix {
                format!("[{pod}] {line}\n")
            } else {
                format!("{line}\n")
            };
            stream_line(&shown);
        }
    };
    logs::stream(&cluster.conn, &namespace, &pods, &options, &print).await?;
    if json {
        let report = LogsReport {
            lines: collected.into_inner().expect("log lines lock"),
        };
        out.report(&report, "")?;
    }
    Ok(())
}

/// One log line on stdout. A reader that has gone (`logs -f | head`) ends the stream quietly, as
/// it ends kubectl's; any other failure to write ends it with an error.
fn stream_line(line: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(err) = stdout
        .write_all(line.as_bytes())
        .and_then(|()| stdout.flush())
    {
        if err.kind() != std::io::ErrorKind::BrokenPipe {
            crate::output::print_error(&format!("cannot write the logs to standard output: {err}"));
            std::process::exit(1);
        }
        std::process::exit(0);
    }
}
