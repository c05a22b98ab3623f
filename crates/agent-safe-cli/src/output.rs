//! Terminal output: colours (off for pipes, `NO_COLOR` and `--no-color`), JSON printing.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

use agent_safe::DecisionResult;

static COLOR: AtomicBool = AtomicBool::new(false);

/// Decides once whether stdout gets ANSI colours.
pub(crate) fn init_color(disabled_by_flag: bool) {
    let no_color_env = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let on = !disabled_by_flag && !no_color_env && std::io::stdout().is_terminal();
    COLOR.store(on, Ordering::Relaxed);
}

fn paint(code: &str, text: &str) -> String {
    if COLOR.load(Ordering::Relaxed) {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

/// Green text.
pub(crate) fn green(text: &str) -> String {
    paint("32", text)
}

/// Red text.
pub(crate) fn red(text: &str) -> String {
    paint("31", text)
}

/// Yellow text.
pub(crate) fn yellow(text: &str) -> String {
    paint("33", text)
}

/// Bold text.
pub(crate) fn bold(text: &str) -> String {
    paint("1", text)
}

/// A decision result label, coloured.
pub(crate) fn result_label(r: DecisionResult) -> String {
    match r {
        DecisionResult::Allow => green("ALLOW"),
        DecisionResult::Deny => red("DENY"),
        DecisionResult::RequireApproval => yellow("REQUIRE_APPROVAL"),
    }
}

/// Prints a line to stdout. A closed stdout (its reader went away) is ignored: it must not stop
/// a command halfway (`serve` would skip its shutdown flush).
pub(crate) fn line(text: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

/// Prints an error to stderr as `error: …` (a closed stderr is ignored, as for [`line`]).
pub(crate) fn error(text: &str) {
    note(&format!("error: {text}"));
}

/// Prints a line to stderr (a closed stderr is ignored, as for [`line`]).
pub(crate) fn note(text: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

/// Prints a value as 2-space indented JSON.
pub(crate) fn json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    line(&serde_json::to_string_pretty(value)?);
    Ok(())
}
