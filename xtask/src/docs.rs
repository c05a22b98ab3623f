//! `cargo xtask docs`: the documented command sessions run as written.
//!
//! Every ` ```console ` block of the [`CHECKED`] files runs; the blocks of one file are one
//! session: one `bash` in a fresh directory under `target/docs-run/` holding a copy of the
//! checkout's `catalog/` and `examples/` (so `cd examples/quickstart` works), with `HOME` there, no
//! `AGENT_SAFE_*` or `AWS_*` variables, `NO_COLOR=1`, and the default-feature `agent-safe` on
//! `PATH`. A command is a `$ ` line and the lines that complete it (a trailing `\`, an open
//! quote); what follows up to the next `$ ` line is its expected output (stdout and stderr),
//! compared by snapbox: `[..]` matches the rest of a line, a `...` line any number of lines,
//! and ids, times, hashes, tokens and the session directory are redacted on both sides, so the
//! docs can show real-looking values (`~/` in an output is the session's home directory). A command that exits non-zero must be followed by
//! `$ echo $?`, which documents the status. The output of a background command (`… &`) is not
//! compared; background jobs are stopped when the session ends.
//!
//! A shell block (`sh`, `bash`, `shell`, `console`) preceded by `<!-- not run: REASON -->` is
//! skipped and reported with its reason (the text around it says it is illustrative); any
//! other shell block in a checked file is an error, so nothing is silently unchecked.
//!
//! Not trycmd: it runs one program per line without a shell (no `cd`, `$(…)`, pipes, `&`),
//! which the walkthroughs need; its matcher, snapbox, does the comparing.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};

/// The files whose shell blocks run (or are marked as not run).
pub(crate) const CHECKED: &[&str] = &[
    "README.md",
    "docs/getting-started.md",
    "examples/README.md",
    "examples/server/README.md",
    "docs/approvals.md",
    "docs/delegation.md",
];

/// Fence info strings that hold shell.
const SHELL: &[&str] = &["sh", "bash", "shell", "console", "zsh"];

/// The port of `agent-safe serve` in the docs (its default).
const SIDECAR_PORT: u16 = 8411;

/// How long one file's session may take.
const SESSION_TIMEOUT: Duration = Duration::from_secs(300);

/// One fenced block of a Markdown file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Block {
    /// 1-based line of the opening fence.
    pub(crate) line: usize,
    /// The first word of the info string.
    pub(crate) lang: String,
    /// The lines between the fences.
    pub(crate) body: Vec<String>,
    /// `<!-- not run: REASON -->` right before the fence.
    pub(crate) not_run: Option<String>,
}

/// One documented command and what it prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cmd {
    /// 1-based line of its `$ ` line.
    pub(crate) line: usize,
    /// The command text (continuation lines joined with newlines).
    pub(crate) text: String,
    /// The expected output, one string with a trailing newline per line.
    pub(crate) expected: String,
}

impl Cmd {
    /// The command without a trailing comment.
    fn code(&self) -> &str {
        self.text.split(" #").next().unwrap_or_default().trim()
    }

    fn is_background(&self) -> bool {
        self.code().ends_with('&') && !self.code().ends_with("&&")
    }

    fn is_echo_status(&self) -> bool {
        self.code() == "echo $?"
    }
}

/// The fenced blocks of `text`, in order.
pub(crate) fn blocks(text: &str) -> anyhow::Result<Vec<Block>> {
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    let mut previous = "";
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        match &mut open {
            Some(block) if trimmed.starts_with("```") => {
                out.push(block.clone());
                open = None;
            }
            Some(block) => block.body.push(line.to_owned()),
            None if trimmed.starts_with("```") => {
                let info = trimmed.trim_start_matches('`');
                let lang = info.split([' ', ',']).next().unwrap_or_default().to_owned();
                let not_run = previous
                    .trim()
                    .strip_prefix("<!-- not run:")
                    .and_then(|r| r.strip_suffix("-->"))
                    .map(|r| r.trim().to_owned());
                open = Some(Block { line: i + 1, lang, body: Vec::new(), not_run });
            }
            None => {}
        }
        if !line.trim().is_empty() {
            previous = line;
        }
    }
    if let Some(block) = open {
        bail!("line {}: a code block is never closed", block.line);
    }
    Ok(out)
}

/// The commands of a console block.
pub(crate) fn commands(block: &Block) -> anyhow::Result<Vec<Cmd>> {
    let mut out: Vec<Cmd> = Vec::new();
    let mut lines = block.body.iter().enumerate().peekable();
    while let Some((i, line)) = lines.next() {
        let line_no = block.line + 1 + i;
        let Some(first) = line.strip_prefix("$ ") else {
            match out.last_mut() {
                Some(cmd) => {
                    cmd.expected.push_str(line);
                    cmd.expected.push('\n');
                    continue;
                }
                None => bail!(
                    "line {line_no}: a console block starts with a `$ ` command, found `{line}`"
                ),
            }
        };
        let mut text = first.to_owned();
        while incomplete(&text) {
            let Some((_, next)) = lines.next() else {
                bail!("line {line_no}: the command is never completed (an open quote or `\\`)");
            };
            text.push('\n');
            text.push_str(next);
        }
        out.push(Cmd { line: line_no, text, expected: String::new() });
    }
    Ok(out)
}

/// Whether a command needs another line: a trailing `\`, `|`, `&&` or `||`, or an unclosed
/// quote.
fn incomplete(text: &str) -> bool {
    let end = text.trim_end();
    if end.ends_with('\\') || end.ends_with('|') || end.ends_with("&&") {
        return true;
    }
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut comment = false;
    let mut previous = ' ';
    for c in text.chars() {
        if comment {
            if c == '\n' {
                comment = false;
            }
        } else if escaped {
            escaped = false;
        } else {
            match (quote, c) {
                (Some('\''), '\'') => quote = None,
                (Some('\''), _) => {}
                (_, '\\') => escaped = true,
                (Some('"'), '"') => quote = None,
                (Some(_), _) => {}
                (None, '\'' | '"') => quote = Some(c),
                (None, '#') if previous.is_whitespace() => comment = true,
                (None, _) => {}
            }
        }
        previous = c;
    }
    quote.is_some()
}

/// A file's result: commands run, blocks not run (line, reason), and failures.
#[derive(Debug, Default)]
struct Report {
    ran: usize,
    not_run: Vec<(usize, String)>,
    failures: Vec<String>,
}

/// Runs every checked file's session; fails listing every mismatch.
pub(crate) fn docs(root: &Path) -> anyhow::Result<()> {
    for tool in ["bash", "curl", "python3", "setsid"] {
        if which(tool).is_none() {
            bail!("`{tool}` is not on PATH: the documented sessions use it; install it");
        }
    }
    crate::run_cmd(crate::cargo_cmd().args(["build", "-p", "agent-safe-cli"]))?;
    let bin_dir = crate::target_dir(root).join("debug");
    let work = crate::target_dir(root).join("docs-run");
    let mut failed = Vec::new();
    for file in CHECKED {
        let report = run_file(root, file, &bin_dir, &work)?;
        eprintln!(
            "{file}: {} command(s) as documented{}",
            report.ran - report.failures.len().min(report.ran),
            if report.not_run.is_empty() {
                String::new()
            } else {
                format!("; {} block(s) not run", report.not_run.len())
            }
        );
        for (line, reason) in &report.not_run {
            eprintln!("  not run {file}:{line}: {reason}");
        }
        for failure in &report.failures {
            failed.push(format!("{file}:{failure}"));
        }
    }
    if !failed.is_empty() {
        bail!("{} documented command(s) differ:\n\n{}", failed.len(), failed.join("\n\n"));
    }
    Ok(())
}

/// Copies the files of `from` into `to` (symlinks as the files they point at).
fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from).with_context(|| format!("`{}`", from.display()))? {
        let entry = entry?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        if source.is_dir() {
            copy_dir(&source, &target)?;
        } else {
            std::fs::copy(&source, &target)
                .with_context(|| format!("cannot copy `{}`", source.display()))?;
        }
    }
    Ok(())
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(tool))
        .find(|path| path.is_file())
}

fn run_file(root: &Path, file: &str, bin_dir: &Path, work: &Path) -> anyhow::Result<Report> {
    let path = root.join(file);
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read `{file}`"))?;
    let mut report = Report::default();
    let mut cmds = Vec::new();
    for block in blocks(&text).with_context(|| format!("`{file}`"))? {
        if !SHELL.contains(&block.lang.as_str()) {
            continue;
        }
        if let Some(reason) = &block.not_run {
            report.not_run.push((block.line, reason.clone()));
            continue;
        }
        if block.lang != "console" {
            report.failures.push(format!(
                "{}: a `{}` block is neither run nor marked: make it a `console` session \
                 (`$ ` commands and their output) or put `<!-- not run: REASON -->` before it",
                block.line, block.lang
            ));
            continue;
        }
        cmds.extend(commands(&block).with_context(|| format!("`{file}`"))?);
    }
    if cmds.is_empty() {
        return Ok(report);
    }
    let slug: String =
        file.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    let dir = work.join(slug);
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .with_context(|| format!("cannot clean `{}`", dir.display()))?;
    }
    let home = dir.join("home");
    let outputs = dir.join("out");
    std::fs::create_dir_all(&home)?;
    std::fs::create_dir_all(&outputs)?;
    // As in a checkout: `cd examples/quickstart` finds its config and `../../catalog`.
    for part in ["catalog", "examples"] {
        if root.join(part).is_dir() {
            copy_dir(&root.join(part), &home.join(part))?;
        }
    }
    if cmds.iter().any(|c| c.text.contains("agent-safe serve")) {
        port_is_free()?;
    }
    let script = session_script(&cmds, &home, &outputs);
    std::fs::write(dir.join("session.sh"), &script)?;
    run_session(&dir.join("session.sh"), &home, bin_dir, root)?;

    let redactions = redactions(&home)?;
    let assert =
        snapbox::Assert::new().action(snapbox::assert::Action::Verify).normalize_paths(false);
    let mut previous_status = 0;
    for (i, cmd) in cmds.iter().enumerate() {
        report.ran += 1;
        let output = std::fs::read_to_string(outputs.join(format!("{i}.out"))).unwrap_or_default();
        let status: i32 = std::fs::read_to_string(outputs.join(format!("{i}.rc")))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(-1);
        let mut problems = String::new();
        if previous_status != 0 && !cmd.is_echo_status() {
            let _ = writeln!(
                problems,
                "the command before exited {previous_status}; document that with `$ echo $?`"
            );
        }
        previous_status = if cmd.is_echo_status() { 0 } else { status };
        if status == -1 {
            problems.push_str("the session ended before this command finished\n");
        }
        if !cmd.is_background() {
            // Output without a final newline (curl) ends its line, as the next prompt would.
            let mut actual = redactions.redact(&output);
            if !actual.is_empty() && !actual.ends_with('\n') {
                actual.push('\n');
            }
            // `~/` in the docs is the session's home directory.
            let expected =
                redactions.redact(&cmd.expected.replace("~/", &format!("{}/", home.display())));
            if let Err(diff) = assert.try_eq(
                Some(&"documented"),
                snapbox::Data::text(actual),
                snapbox::Data::text(expected),
            ) {
                let _ = write!(problems, "{diff}");
            }
        }
        if !problems.is_empty() {
            report.failures.push(format!("{}: `$ {}`\n{problems}", cmd.line, cmd.text));
        }
    }
    if previous_status != 0 {
        let line = cmds.last().map_or(0, |c| c.line);
        report
            .failures
            .push(format!("{line}: exited {previous_status}; document that with `$ echo $?`"));
    }
    Ok(report)
}

/// The session as one bash script: each command's output and status to `out/<i>.out|rc`, the
/// status kept for a following `echo $?`, background jobs stopped at the end.
fn session_script(cmds: &[Cmd], home: &Path, outputs: &Path) -> String {
    let mut script = format!("cd '{}' || exit 99\n", home.display());
    for (i, cmd) in cmds.iter().enumerate() {
        let out = outputs.join(format!("{i}"));
        let _ = write!(
            script,
            "{{ {}\n}} > '{out}.out' 2>&1 < /dev/null\n__status=$?\necho $__status > '{out}.rc'\n\
             (exit $__status)\n",
            cmd.text,
            out = out.display()
        );
    }
    script.push_str("jobs -p | xargs -r kill 2>/dev/null\nwait\n");
    script
}

fn run_session(script: &Path, home: &Path, bin_dir: &Path, root: &Path) -> anyhow::Result<()> {
    let mut cmd = Command::new("setsid");
    cmd.arg("bash").arg("--noprofile").arg("--norc").arg(script);
    for (name, _) in std::env::vars_os() {
        let name_text = name.to_string_lossy();
        if name_text.starts_with("AGENT_SAFE_")
            || name_text.starts_with("AWS_")
            || name_text == "KUBECONFIG"
            || name_text.starts_with("CARGO")
            || name_text.starts_with("RUST")
        {
            cmd.env_remove(&name);
        }
    }
    cmd.env("PATH", crate::path_with(bin_dir)?)
        .env("HOME", home)
        .env("NO_COLOR", "1")
        .env("AGENT_SAFE_REPO", root)
        .current_dir(home)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().context("cannot start bash")?;
    let pid = child.id();
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || done.send(child.wait()));
    let finished = finished.recv_timeout(SESSION_TIMEOUT);
    // setsid made bash a process-group leader, and its background jobs stay in the group (no
    // job control): stop whatever is left, also when bash died early.
    let _ = Command::new("kill").arg("--").arg(format!("-{pid}")).stderr(Stdio::null()).status();
    match finished {
        Ok(status) => {
            status.context("waiting for bash")?;
            Ok(())
        }
        Err(_) => bail!("`{}` took longer than {SESSION_TIMEOUT:?}", script.display()),
    }
}

/// The documented sidecar port must be free, or the sessions would talk to another server.
fn port_is_free() -> anyhow::Result<()> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], SIDECAR_PORT));
    if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
        bail!(
            "something already listens on 127.0.0.1:{SIDECAR_PORT}, the port the documented \
             sessions start `agent-safe serve` on; stop it and run again"
        );
    }
    Ok(())
}

/// What varies from run to run, replaced by a placeholder in the output and in the docs.
fn redactions(home: &Path) -> anyhow::Result<snapbox::Redactions> {
    let mut r = snapbox::Redactions::new();
    r.insert("[HOME]", home.display().to_string())?;
    let patterns: &[(&'static str, &str)] = &[
        ("[TOKEN]", r"(?<redacted>eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)"),
        ("[TIME]", r"(?<redacted>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?)"),
        ("[EVENT_ID]", r"(?<redacted>evt-[0-9a-f]{12})"),
        ("[REQUEST_ID]", r"(?<redacted>apr-[0-9a-f]{12})"),
        ("[CREDENTIAL_ID]", r"(?<redacted>cred-[0-9a-f]{12})"),
        ("[HASH]", r"(?<redacted>\b[0-9a-f]{64}\b)"),
        ("[NONCE]", r"(?<redacted>\b[0-9a-f]{32}\b)"),
        ("[DURATION]", r"(?<redacted>\b\d+(\.\d+)? ?(ms|µs|s)\b)"),
    ];
    for (placeholder, pattern) in patterns {
        r.insert(placeholder, regex::Regex::new(pattern)?)?;
    }
    Ok(r)
}

#[cfg(test)]
mod tests;
