//! `agent-safe completions SHELL` (clap_complete) and the hidden `agent-safe man-pages DIR`
//! that `cargo xtask man` runs (clap_mangen): both generated from the one clap definition, so
//! they cannot drift from the commands.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::CommandFactory as _;

use crate::{Cli, exit};

#[derive(Debug, clap::Args)]
pub(crate) struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ManArgs {
    /// Directory to write `agent-safe.1` and a page per subcommand into (created if missing).
    dir: PathBuf,
}

/// Prints the completion script for a shell.
pub(crate) fn completions(args: &CompletionsArgs) -> anyhow::Result<u8> {
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "agent-safe", &mut out);
    let mut stdout = std::io::stdout().lock();
    // A closed stdout (`| head`) is not an error of ours.
    let _ = stdout.write_all(&out).and_then(|()| stdout.flush());
    Ok(exit::OK)
}

/// Writes the man pages: `agent-safe.1`, and `agent-safe-<sub>[-<subsub>].1` for every
/// subcommand.
pub(crate) fn man_pages(args: &ManArgs) -> anyhow::Result<u8> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create `{}`", args.dir.display()))?;
    let mut command = Cli::command();
    command.build();
    let written = write_pages(&command, &args.dir)?;
    crate::output::line(&format!("{written} man page(s) in {}", args.dir.display()));
    Ok(exit::OK)
}

/// `command`'s page and its subcommands' (after `Command::build`, a subcommand's display name
/// is its full name, `agent-safe-audit-verify`).
fn write_pages(command: &clap::Command, dir: &std::path::Path) -> anyhow::Result<usize> {
    let name = command.get_display_name().unwrap_or_else(|| command.get_name());
    let mut page = Vec::new();
    clap_mangen::Man::new(command.clone()).render(&mut page)?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, page).with_context(|| format!("cannot write `{}`", path.display()))?;
    let mut written = 1;
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        written += write_pages(sub, dir)?;
    }
    Ok(written)
}
