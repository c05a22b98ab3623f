//! `agent-safe init`: scaffold a project from the bundled catalog.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::exit;
use crate::output::{green, line};

include!(concat!(env!("OUT_DIR"), "/catalog.rs"));

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Directory to scaffold.
    #[arg(default_value = ".")]
    directory: PathBuf,
    /// Print the created and skipped files as JSON.
    #[arg(long)]
    json_output: bool,
}

/// Where `init` puts the JSON Schemas, relative to the project.
const SCHEMA_DIR: &str = ".agent-safe/schemas";

/// The files `init` writes: (relative path, contents). Actions, policies, inventory and the
/// policy tests of the default policies come from the bundled catalog, each with a first line
/// naming its JSON Schema for yaml-language-server editors (VS Code's YAML extension, …); the
/// schemas go to `.agent-safe/schemas/`, so editors validate offline.
pub(crate) fn scaffold_files(signing_key: &str) -> anyhow::Result<Vec<(PathBuf, String)>> {
    use crate::schema::Kind;
    let mut files: Vec<(PathBuf, String)> = CATALOG
        .iter()
        .filter_map(|(rel, text)| {
            let (out, kind, up) = if let Some(name) = rel.strip_prefix("actions/") {
                (Path::new("actions").join(name), Kind::Action, "../")
            } else if let Some(name) = rel.strip_prefix("policies/") {
                (Path::new("policies").join(name), Kind::Policy, "../")
            } else if let Some(name) = rel.strip_prefix("policy-tests/") {
                (Path::new("policy-tests").join(name), Kind::PolicyTest, "../")
            } else if *rel == "inventory.yaml" {
                (PathBuf::from("inventory.yaml"), Kind::Inventory, "")
            } else {
                return None;
            };
            let modeline =
                format!("# yaml-language-server: $schema={up}{SCHEMA_DIR}/{}\n", kind.file_name());
            Some((out, format!("{modeline}{text}")))
        })
        .collect();
    for kind in Kind::ALL {
        files.push((Path::new(SCHEMA_DIR).join(kind.file_name()), kind.text()?));
    }
    files.push((
        PathBuf::from("agent-safe.yaml"),
        format!(
            "# yaml-language-server: $schema={SCHEMA_DIR}/{}\n\
             # agent-safe configuration (found by walking up from the current directory).\n\
             # Paths are relative to this file. Keep this file out of version control:\n\
             # it holds the signing key.\n\
             registry: actions\n\
             policies: policies\n\
             inventory: inventory.yaml\n\
             audit_log: audit.jsonl\n\
             signing_key: \"{signing_key}\"\n",
            Kind::Config.file_name()
        ),
    ));
    files.push((
        PathBuf::from(".gitignore"),
        "agent-safe.yaml\naudit.jsonl\naudit.jsonl.*\napprovals.jsonl\napprovals.jsonl.*\n*.key\n*.log\n".to_owned(),
    ));
    Ok(files)
}

pub(crate) fn run(args: &Args) -> anyhow::Result<u8> {
    let dir = &args.directory;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    let key = agent_safe_core::random::hex(32);
    let (mut created, mut skipped) = (Vec::new(), Vec::new());
    for (rel, text) in scaffold_files(&key)? {
        let path = dir.join(&rel);
        if path.exists() {
            if !args.json_output {
                line(&format!("  skip  {} (already exists)", rel.display()));
            }
            skipped.push(rel);
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create `{}`", parent.display()))?;
        }
        write_new(&path, &text)?;
        created.push(rel);
    }
    if args.json_output {
        crate::output::json(&serde_json::json!({"created": created, "skipped": skipped}))?;
        return Ok(exit::OK);
    }
    if created.is_empty() {
        line("Nothing to create — all files already exist.");
        return Ok(exit::OK);
    }
    line("Created:");
    for rel in &created {
        line(&format!("  {}  {}", green("+"), rel.display()));
    }
    line("\nNext steps:");
    line(&format!("  cd {}", dir.display()));
    line("  agent-safe validate");
    line("  agent-safe check restart-deployment --target dev/test-app --caller my-agent \\");
    line("      --params '{\"namespace\": \"dev\", \"deployment\": \"test-app\"}'");
    line("  agent-safe test policy-tests/");
    Ok(exit::OK)
}

/// Creates `path` with `text`; never overwrites. Private files (the config holding the
/// signing key) are created with mode 0600 on Unix.
fn write_new(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if path.file_name().is_some_and(|n| n == "agent-safe.yaml") {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file =
        options.open(path).with_context(|| format!("cannot create `{}`", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write `{}`", path.display()))?;
    Ok(())
}
