//! Tests for the file vault: format, permission refusal, errors that never quote a file.

use std::path::Path;

use serde_json::json;

use super::*;
use crate::test_support::{SECRET, clock, now, scope, ticket};

fn write(dir: &Path, name: &str, content: &str, mode: u32) {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    #[cfg(not(unix))]
    let _ = mode;
}

/// Requests a `kind` credential; `Ok(payload)` or `Err(message)` with the directory as `DIR`.
#[track_caller]
fn check(vault: &FileVault, kind: &str, expected: Result<serde_json::Value, &str>) {
    let got = now(vault.get_credential(&scope(kind, 300), &ticket("n1"), 300));
    match (got, expected) {
        (Ok(c), Ok(payload)) => assert_eq!(json!(c.payload.expose()), payload, "{kind}"),
        (Err(e), Err(message)) => {
            let text = e.to_string().replace(&vault.dir().display().to_string(), "DIR");
            assert_eq!(text, message, "{kind}");
            assert!(!text.contains(SECRET), "{text}");
        }
        (got, expected) => panic!("{kind}: got {got:?}, expected {expected:?}"),
    }
}

#[test]
fn reads_a_private_json_object_per_type() {
    let dir = tempfile::tempdir().unwrap();
    let v = FileVault::new(dir.path(), clock());
    write(dir.path(), "kubernetes.json", &format!(r#"{{"token": "{SECRET}"}}"#), 0o600);
    write(dir.path(), "aws.json", r#"{"access_key_id": "AKIA", "secret_access_key": "x"}"#, 0o400);
    check(&v, "kubernetes", Ok(json!({"token": SECRET})));
    check(&v, "aws", Ok(json!({"access_key_id": "AKIA", "secret_access_key": "x"})));
    assert_eq!(v.issued_count(), 2);

    // Read on every request: a rotated file is used at once.
    write(dir.path(), "kubernetes.json", r#"{"token": "rotated"}"#, 0o600);
    check(&v, "kubernetes", Ok(json!({"token": "rotated"})));

    check(&v, "gcp", Err("no credential file for type `gcp`: `DIR/gcp.json` does not exist"));
    for bad in ["../kubernetes", "a/b", ".hidden", ""] {
        check(
            &v,
            bad,
            Err(&format!(
                "invalid credential type `{bad}`: a type is 1 to 64 characters from `A-Z`, \
                 `a-z`, `0-9`, `-` and `_`"
            )),
        );
    }
}

#[cfg(unix)]
#[test]
fn files_readable_by_group_or_others_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let v = FileVault::new(dir.path(), clock());
    let body = format!(r#"{{"token": "{SECRET}"}}"#);
    for mode in [0o644, 0o640, 0o604, 0o660, 0o602, 0o620, 0o666, 0o610] {
        write(dir.path(), "k8s.json", &body, mode);
        check(
            &v,
            "k8s",
            Err(&format!(
                "`DIR/k8s.json` is accessible by group or others (mode {mode:04o}); credential \
                 files must be private: run `chmod 600 DIR/k8s.json`"
            )),
        );
    }
    for mode in [0o600, 0o400, 0o700] {
        write(dir.path(), "k8s.json", &body, mode);
        check(&v, "k8s", Ok(json!({"token": SECRET})));
    }
    assert_eq!(v.issued_count(), 3, "refused requests issue nothing");
}

#[test]
fn malformed_files_are_errors_that_do_not_quote_the_content() {
    let dir = tempfile::tempdir().unwrap();
    let v = FileVault::new(dir.path(), clock());
    let cases = [
        (SECRET.to_owned(), "invalid JSON: expected value at line 1 column 1"),
        (
            format!("\"{SECRET}\""),
            "expected a JSON object such as {\"token\": \"…\"}, found a string",
        ),
        (
            format!("[\"{SECRET}\"]"),
            "expected a JSON object such as {\"token\": \"…\"}, found an array",
        ),
        (
            format!("{{\"token\": \"{SECRET}\""),
            "invalid JSON: EOF while parsing an object at line 1 column 33",
        ),
        (format!("{{\"token\": {SECRET}}}"), "invalid JSON: expected value at line 1 column 11"),
    ];
    for (content, detail) in cases {
        write(dir.path(), "k8s.json", &content, 0o600);
        check(&v, "k8s", Err(&format!("`DIR/k8s.json`: {detail}")));
    }
    let big = format!(
        "{{\"token\": \"{}\"}}",
        "x".repeat(usize::try_from(MAX_CREDENTIAL_FILE_BYTES).unwrap())
    );
    write(dir.path(), "k8s.json", &big, 0o600);
    check(&v, "k8s", Err("`DIR/k8s.json`: larger than 1048576 bytes"));
    std::fs::create_dir(dir.path().join("dir.json")).unwrap();
    check(&v, "dir", Err("`DIR/dir.json`: not a regular file"));
}

#[test]
fn debug_shows_the_directory_only() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "k8s.json", &format!(r#"{{"token": "{SECRET}"}}"#), 0o600);
    let v = FileVault::new(dir.path(), clock());
    let c = now(v.get_credential(&scope("k8s", 60), &ticket("n"), 60)).unwrap();
    for text in [format!("{v:?}"), format!("{c:?}")] {
        assert!(!text.contains(SECRET), "{text}");
    }
    now(v.revoke(&c.credential_id)).unwrap();
    assert_eq!(v.issued_count(), 0);
}
