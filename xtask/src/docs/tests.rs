//! `cargo xtask docs`: parsing console sessions, running one, and the redactions.

use super::*;

const DOC: &str = r#"# Title

```console
$ agent-safe init demo   # scaffolds
Created:
...
$ curl -s localhost:8411/v1/check -H "$AUTH" -d '{"action": "x",
  "target": "dev/app"}'
{"result":"deny"[..]}
$ agent-safe serve \
    --listen 127.0.0.1:0 &
$ echo $?   # the status
0
```

<!-- not run: needs a cluster -->
```sh
kubectl get pods
```

```sh
agent-safe validate
```

```yaml
a: b
```
"#;

#[test]
fn blocks_and_markers() {
    let blocks = blocks(DOC).unwrap();
    let langs: Vec<(&str, usize, Option<&str>)> =
        blocks.iter().map(|b| (b.lang.as_str(), b.line, b.not_run.as_deref())).collect();
    assert_eq!(
        langs,
        [
            ("console", 3, None),
            ("sh", 17, Some("needs a cluster")),
            ("sh", 21, None),
            ("yaml", 25, None)
        ]
    );
    assert!(super::blocks("```sh\nnever closed\n").is_err());
}

#[test]
fn commands_span_quotes_and_backslashes() {
    let blocks = blocks(DOC).unwrap();
    let cmds = commands(&blocks[0]).unwrap();
    let summary: Vec<(usize, &str, &str)> =
        cmds.iter().map(|c| (c.line, c.text.as_str(), c.expected.as_str())).collect();
    assert_eq!(
        summary,
        [
            (4, "agent-safe init demo   # scaffolds", "Created:\n...\n"),
            (
                7,
                "curl -s localhost:8411/v1/check -H \"$AUTH\" -d '{\"action\": \"x\",\n  \"target\": \"dev/app\"}'",
                "{\"result\":\"deny\"[..]}\n"
            ),
            (10, "agent-safe serve \\\n    --listen 127.0.0.1:0 &", ""),
            (12, "echo $?   # the status", "0\n"),
        ]
    );
    assert!(!cmds[0].is_background() && cmds[2].is_background() && cmds[3].is_echo_status());
    let stray =
        Block { line: 1, lang: "console".into(), body: vec!["output".into()], not_run: None };
    assert!(commands(&stray).is_err());
    let open =
        Block { line: 1, lang: "console".into(), body: vec!["$ echo 'x".into()], not_run: None };
    assert!(commands(&open).is_err());
}

#[test]
fn quotes_in_comments_and_escapes_do_not_open_a_command() {
    assert!(!incomplete("agent-safe check x   # don't worry"));
    assert!(!incomplete(r#"echo "a \" b""#));
    assert!(!incomplete("echo it\\'s"));
    assert!(!incomplete("curl a && b &"));
    assert!(incomplete("echo 'open"));
    assert!(incomplete("echo \"open"));
    assert!(incomplete("agent-safe check x \\"));
    assert!(incomplete("curl -s localhost:8411 |"));
    assert!(incomplete("make &&"));
}

#[test]
fn redactions_apply_to_both_sides() {
    let r = redactions(Path::new("/tmp/docs-home")).unwrap();
    assert_eq!(
        r.redact("evt-0123456789ab at 2026-12-07T08:00:00Z in /tmp/docs-home/a took 12 ms"),
        "[EVENT_ID] at [TIME] in [HOME]/a took [DURATION]"
    );
    assert_eq!(r.redact("33 actions, 2 steps"), "33 actions, 2 steps");
}

#[test]
fn the_session_keeps_the_status_for_echo() {
    let cmds = vec![
        Cmd { line: 1, text: "false".into(), expected: String::new() },
        Cmd { line: 2, text: "echo $?".into(), expected: "1\n".into() },
    ];
    let script = session_script(&cmds, Path::new("/h"), Path::new("/o"));
    let dir = tempfile_dir();
    let script = script.replace("/h", &dir).replace("'/o/", &format!("'{dir}/"));
    let out = Command::new("bash").arg("-c").arg(&script).output().unwrap();
    assert!(out.status.success());
    assert_eq!(std::fs::read_to_string(format!("{dir}/0.rc")).unwrap(), "1\n");
    assert_eq!(std::fs::read_to_string(format!("{dir}/1.out")).unwrap(), "1\n");
}

fn tempfile_dir() -> String {
    let dir = std::env::temp_dir().join(format!("xtask-docs-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.display().to_string()
}

/// A whole session through `run_file`: what matches passes; a changed output, an undocumented
/// failure and an unmarked `sh` block are each reported with their line.
#[test]
fn sessions_fail_when_the_docs_and_the_commands_disagree() {
    let root = std::path::PathBuf::from(tempfile_dir()).join("root");
    std::fs::create_dir_all(&root).unwrap();
    let doc = "# Doc\n\n```console\n$ echo hello   # greets\nhello\n$ printf 'a\\nb\\nc\\n'\na\n...\n\
               $ cd sub 2>/dev/null || mkdir sub && cd sub && pwd\n~/sub\n\
               $ false\n$ echo $?\n1\n$ echo changed\noriginal\n$ false\n$ echo after\nafter\n```\n\n\
               ```sh\nunmarked\n```\n";
    std::fs::write(root.join("doc.md"), doc).unwrap();
    let report = run_file(&root, "doc.md", Path::new("/nonexistent"), &root.join("work")).unwrap();
    assert_eq!(report.ran, 8);
    let failures: Vec<String> =
        report.failures.iter().map(|f| f.lines().next().unwrap_or_default().to_owned()).collect();
    assert_eq!(
        failures,
        [
            "21: a `sh` block is neither run nor marked: make it a `console` session (`$ ` \
             commands and their output) or put `<!-- not run: REASON -->` before it",
            "14: `$ echo changed`",
            "17: `$ echo after`",
        ],
        "{:#?}",
        report.failures
    );
    assert!(report.failures[1].contains("original") && report.failures[1].contains("changed"));
    assert!(report.failures[2].contains("the command before exited 1"));
}
