//! The schemas step of `cargo xtask ci`: an independent validator (PyPI `check-jsonschema`,
//! pinned, in `target/lint-venv`) checks the shipped catalog, the quickstart example and a
//! fresh `agent-safe init` project against `schemas/`, so a schema that rejects what the
//! loader reads fails here.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{run_cmd, target_dir};

/// (schema file, files it must accept) for a project laid out as `catalog/` and `init` are.
fn groups(project: &Path) -> anyhow::Result<Vec<(&'static str, Vec<PathBuf>)>> {
    let yaml_in = |dir: &str| crate::yaml_files(&project.join(dir));
    Ok(vec![
        ("action.schema.json", yaml_in("actions")?),
        ("policy.schema.json", yaml_in("policies")?),
        ("inventory.schema.json", vec![project.join("inventory.yaml")]),
        ("policy-test.schema.json", yaml_in("policy-tests")?),
        ("config.schema.json", vec![project.join("agent-safe.yaml")]),
    ])
}

pub(crate) fn schemas(root: &Path) -> anyhow::Result<()> {
    let venv = crate::release::lint_venv(root)?;
    let bin = target_dir(root).join("debug/agent-safe");
    let work = target_dir(root).join("schema-check");
    if work.exists() {
        std::fs::remove_dir_all(&work)?;
    }
    std::fs::create_dir_all(&work)?;
    run_cmd(Command::new(&bin).current_dir(&work).args(["init", "project"]))?;
    let check = |schema: &str, files: &[PathBuf]| {
        run_cmd(
            Command::new(venv.join("bin/check-jsonschema"))
                .arg("--schemafile")
                .arg(root.join("schemas").join(schema))
                .args(files),
        )
    };
    for project in [root.join("catalog"), work.join("project")] {
        for (schema, files) in groups(&project)? {
            check(schema, &files)?;
        }
    }
    check("config.schema.json", &[root.join("examples/quickstart/agent-safe.yaml")])?;
    Ok(())
}
