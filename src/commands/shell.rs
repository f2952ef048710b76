//! `spin-aks completions <shell>` and the hidden `spin-aks man`: shell completion scripts and the
//! man page, both generated from the clap definitions in `cli`, written to stdout.

use std::path::Path;

use anyhow::Context;

use clap::CommandFactory;

use crate::cli::Cli;

/// Writes the completion script for `shell`.
pub fn completions(shell: clap_complete::Shell) -> anyhow::Result<()> {
    let mut command = Cli::command();
    let name = command.get_name().to_string();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, name, &mut script);
    crate::output::print_stdout(&String::from_utf8_lossy(&script), "the completion script")
}

/// Prints the man page (section 1, roff) of `spin-aks`, or writes it and one page per command
/// into `dir`.
pub fn man_pages(dir: Option<&Path>) -> anyhow::Result<()> {
    match dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            clap_mangen::generate_to(Cli::command(), dir)
                .with_context(|| format!("cannot write man pages into {}", dir.display()))?;
        }
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(Cli::command()).render(&mut page)?;
            crate::output::print_stdout(&String::from_utf8_lossy(&page), "the man page")?;
        }
    }
    Ok(())
}
