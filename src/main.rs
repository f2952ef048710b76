use spin_aks::cli::{Cli, Command};
use spin_aks::{error, interrupt};

fn main() {
    let cli = Cli::parse_invocation();
    init_tracing(cli.global.verbose);
    // Ctrl-C is how a user stops `port-forward` and `logs --follow`: it ends them quietly, as it
    // ends kubectl's; they make no temporary files to sweep.
    let streams = matches!(cli.command, Command::PortForward(_) | Command::Logs(_));
    if !streams {
        if let Err(e) = interrupt::install() {
            spin_aks::output::eprint_line(&format!("warning: cannot catch Ctrl-C ({e}); an interrupted run may leave temporary files behind"));
        }
    }
    let verbose = cli.global.verbose > 0;
    // `verify` is a few small requests answered within milliseconds: one thread does them, and
    // starting worker threads would cost more than they give.
    let runtime = match cli.command {
        Command::Verify(_) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        _ => tokio::runtime::Runtime::new(),
    };
    let runtime = runtime.expect("cannot start the async runtime");
    let run = async {
        // A bad --state-file is refused before any work that would then have to be thrown away.
        if let Some(path) = &cli.global.state_file {
            spin_aks::state::StateFile::new(Some(path))?;
        }
        spin_aks::commands::run(cli).await
    };
    let result = runtime.block_on(run);
    interrupt::settle();
    if let Err(err) = result {
        spin_aks::output::print_error(&error::render(&err, verbose));
        std::process::exit(error::exit_code(&err));
    }
}

/// Our own warnings only by default (the libraries' errors reach the user through ours, said
/// once and with what to do); `-v` adds our debug lines, `-vv` everyone's, `SPIN_AKS_LOG` decides.
fn init_tracing(verbosity: u8) {
    let default = match verbosity {
        0 => "spin_aks=warn",
        1 => "spin_aks=debug",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("SPIN_AKS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .init();
}
