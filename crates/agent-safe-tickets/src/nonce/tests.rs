//! Tests of the nonce stores: single use, persistence, corruption, compaction and races between
//! threads and between processes.

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Command, Stdio};

use super::*;
use crate::test_support::{T0, clock};

const EXP: OffsetDateTime = T0;

fn n(i: usize) -> String {
    format!("{i:032x}")
}

#[test]
fn memory_store_single_use() {
    contract::single_use(&MemoryNonceStore::new(clock()), EXP);
}

#[test]
fn file_store_single_use() {
    let dir = tempfile::tempdir().unwrap();
    contract::single_use(&FileNonceStore::open(dir.path().join("nonces"), clock()).unwrap(), EXP);
    let buffered = FileNonceStore::open(dir.path().join("buffered"), clock()).unwrap();
    contract::single_use(&buffered.with_fsync(false), EXP);
    let a = FileNonceStore::open(dir.path().join("shared"), clock()).unwrap();
    let b = FileNonceStore::open(dir.path().join("shared"), clock()).unwrap();
    contract::shared(&a, &b, EXP);
}

#[test]
fn memory_store_forgets_only_after_the_grace_period() {
    let clock = clock();
    let store = MemoryNonceStore::new(clock.clone());
    for i in 0..1100 {
        assert!(store.check_and_set(&n(i), EXP).unwrap());
    }
    assert!(store.check_and_set("live", EXP + Duration::hours(1)).unwrap());
    // Exactly at exp + grace nothing is forgotten yet.
    clock.set(EXP + NONCE_GRACE);
    assert!(!store.check_and_set(&n(0), EXP).unwrap());
    assert_eq!(store.len(), 1101);
    // Purging is amortised: it happens when the store has doubled since the last purge.
    clock.set(EXP + NONCE_GRACE + Duration::seconds(1));
    for i in 0..1000 {
        assert!(store.check_and_set(&format!("live{i}"), EXP + Duration::hours(1)).unwrap());
    }
    assert_eq!(store.len(), 1001, "expired nonces purged, live ones kept");
    assert!(!store.check_and_set("live", EXP).unwrap());
    assert!(!store.check_and_set("live0", EXP).unwrap());
}

#[test]
fn file_store_persists_and_is_shared_between_instances() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nonces");
    let a = FileNonceStore::open(&path, clock()).unwrap();
    // Without an fsync per nonce (buffered mode) a record is still in the file at once for
    // every other process and instance.
    let b = FileNonceStore::open(&path, clock()).unwrap().with_fsync(false);
    assert!(a.check_and_set("one", EXP).unwrap());
    assert!(!b.check_and_set("one", EXP).unwrap(), "b reads what a appended");
    assert!(b.check_and_set("two", EXP).unwrap());
    assert!(!a.check_and_set("two", EXP).unwrap());
    drop((a, b));
    let restarted = FileNonceStore::open(&path, clock()).unwrap();
    assert!(restarted.contains("one").unwrap());
    assert!(restarted.contains("two").unwrap());
    assert_eq!(restarted.len().unwrap(), 2);
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(is_header(lines[0]), "{text}");
    assert_eq!(
        lines[1..],
        [format!("one {}", EXP.unix_timestamp()), format!("two {}", EXP.unix_timestamp())]
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
}

#[track_caller]
fn check_corrupt(content: impl AsRef<[u8]>, expected: &str) {
    let content = content.as_ref();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nonces");
    std::fs::write(&path, content).unwrap();
    let err = FileNonceStore::open(&path, clock()).unwrap_err().to_string();
    assert_eq!(
        err,
        format!("{}:{expected}", path.display()),
        "{}",
        String::from_utf8_lossy(content)
    );
}

#[test]
fn corrupt_files_fail_closed_naming_the_line() {
    check_corrupt("one 1\n", "1: expected the header `agent-safe-nonces v1 <generation>`");
    check_corrupt(
        "agent-safe-nonces v1 \n",
        "1: expected the header `agent-safe-nonces v1 <generation>`",
    );
    check_corrupt(
        "agent-safe-nonces v1 ab\nok 1\nbroken\n",
        "3: expected `<nonce> <expiry unix seconds>`, found `broken`",
    );
    check_corrupt(
        "agent-safe-nonces v1 ab\nok 1\nok 1.5\n",
        "3: expected `<nonce> <expiry unix seconds>`; `1.5` is not an integer",
    );
    check_corrupt(
        "agent-safe-nonces v1 ab\nb@d 1\n",
        "2: invalid nonce `b@d`: expected 1 to 128 characters from `A-Z`, `a-z`, `0-9`, `-` and `_`",
    );
    check_corrupt(b"agent-safe-nonces v1 ab\nok 1\n\xff 1\n", "3: not UTF-8 text");

    // Corruption appended later is found by an open store too, and every call keeps failing.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nonces");
    let store = FileNonceStore::open(&path, clock()).unwrap();
    assert!(store.check_and_set("one", EXP).unwrap());
    std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"x\n").unwrap();
    for _ in 0..2 {
        let err = store.check_and_set("two", EXP).unwrap_err().to_string();
        assert_eq!(
            err,
            format!("{}:3: expected `<nonce> <expiry unix seconds>`, found `x`", path.display())
        );
    }
    assert!(matches!(store.contains("one"), Err(NonceStoreError::Corrupt { line: 3, .. })));
}

#[test]
fn a_torn_final_line_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nonces");
    let store = FileNonceStore::open(&path, clock()).unwrap();
    assert!(store.check_and_set("one", EXP).unwrap());
    // A crash in the middle of an append: no newline, the append never reported success.
    std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"two 17").unwrap();
    let other = FileNonceStore::open(&path, clock()).unwrap();
    assert!(!other.contains("two").unwrap());
    assert!(other.check_and_set("two", EXP).unwrap());
    assert!(!store.check_and_set("two", EXP).unwrap());
    assert!(!store.check_and_set("one", EXP).unwrap());
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");

    // A torn header (crash while creating the file) starts the file afresh.
    let path = dir.path().join("fresh");
    std::fs::write(&path, "agent-safe-non").unwrap();
    let store = FileNonceStore::open(&path, clock()).unwrap();
    assert!(store.is_empty().unwrap());
    assert!(store.check_and_set("one", EXP).unwrap());
}

#[test]
fn compaction_keeps_unexpired_nonces() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nonces");
    let clock = clock();
    let store = FileNonceStore::open(&path, clock.clone()).unwrap();
    let other = FileNonceStore::open(&path, clock.clone()).unwrap();
    for i in 0..10 {
        assert!(store.check_and_set(&n(i), EXP).unwrap());
    }
    for i in 10..15 {
        assert!(store.check_and_set(&n(i), EXP + Duration::hours(1)).unwrap());
    }
    assert_eq!(other.len().unwrap(), 15);
    // Within the grace period nothing is dropped.
    clock.set(EXP + NONCE_GRACE);
    assert_eq!(store.compact().unwrap(), CompactionStats { kept: 15, removed: 0 });
    clock.set(EXP + NONCE_GRACE + Duration::seconds(1));
    assert_eq!(store.compact().unwrap(), CompactionStats { kept: 5, removed: 10 });
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 6, "{text}");
    // The other instance notices the new generation and re-reads the file.
    assert_eq!(other.len().unwrap(), 5);
    for i in 10..15 {
        assert!(!other.check_and_set(&n(i), EXP).unwrap(), "live nonce {i} kept");
        assert!(store.contains(&n(i)).unwrap());
    }
    assert!(other.check_and_set("after", EXP + Duration::hours(1)).unwrap());
    assert!(!store.check_and_set("after", EXP).unwrap());
    // No temporary file is left behind.
    let names: Vec<_> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn compaction_runs_automatically() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nonces");
    let clock = clock();
    let store = FileNonceStore::open(&path, clock.clone()).unwrap().with_compaction_threshold(8);
    for i in 0..6 {
        assert!(store.check_and_set(&n(i), EXP).unwrap());
    }
    clock.set(EXP + Duration::hours(1));
    let late = EXP + Duration::hours(2);
    // Below the threshold nothing happens; reaching it with half expired compacts.
    assert!(store.check_and_set("live1", late).unwrap());
    assert_eq!(store.len().unwrap(), 7);
    assert!(store.check_and_set("live2", late).unwrap());
    assert_eq!(store.len().unwrap(), 2);
    assert!(!store.check_and_set("live1", late).unwrap());
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 3);
}

#[test]
fn threads_racing_on_one_nonce_exactly_one_wins() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nonces");
    let file: Arc<dyn NonceStore> = Arc::new(FileNonceStore::open(&path, clock()).unwrap());
    let second_file: Arc<dyn NonceStore> = Arc::new(FileNonceStore::open(&path, clock()).unwrap());
    let memory: Arc<dyn NonceStore> = Arc::new(MemoryNonceStore::new(clock()));
    contract::racing(&[memory], 20, EXP);
    contract::racing(&[file, second_file], 20, EXP);
}

const RACE_FILE: &str = "AGENT_SAFE_TEST_NONCE_RACE_FILE";
const RACE_NONCE: &str = "AGENT_SAFE_TEST_NONCE_RACE_NONCE";

/// The child side of `processes_racing_on_one_nonce_exactly_one_wins`: opens the store, says it
/// is ready, waits for `go` on stdin, then tries the nonce and prints whether it won.
#[test]
#[ignore = "helper process, run by processes_racing_on_one_nonce_exactly_one_wins"]
fn nonce_race_child() {
    let path = std::env::var(RACE_FILE).expect("run by the race test, which sets the file");
    let nonce = std::env::var(RACE_NONCE).expect("run by the race test, which sets the nonce");
    let store = FileNonceStore::open(path, clock()).unwrap();
    println!("NONCE-RACE ready");
    std::io::stdout().flush().unwrap();
    let mut go = String::new();
    std::io::stdin().read_line(&mut go).unwrap();
    assert_eq!(go.trim(), "go");
    let won = store.check_and_set(&nonce, EXP).unwrap();
    println!("NONCE-RACE {}", if won { "won" } else { "lost" });
}

struct Child {
    process: std::process::Child,
    stdout: BufReader<std::process::ChildStdout>,
}

impl Child {
    fn spawn(path: &Path, nonce: &str) -> Self {
        let mut process = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "nonce::tests::nonce_race_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(RACE_FILE, path)
            .env(RACE_NONCE, nonce)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(process.stdout.take().unwrap());
        Self { process, stdout }
    }

    /// Reads stdout up to the next `NONCE-RACE <word>` line.
    fn next_marker(&mut self) -> String {
        let mut line = String::new();
        loop {
            line.clear();
            assert_ne!(self.stdout.read_line(&mut line).unwrap(), 0, "child exited early");
            // libtest may print `test … ... ` on the same line before the marker.
            if let Some((_, word)) = line.trim().split_once("NONCE-RACE ") {
                return word.to_owned();
            }
        }
    }
}

#[test]
fn processes_racing_on_one_nonce_exactly_one_wins() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nonces");
    for round in 0..100 {
        let nonce = n(round);
        let mut children = [Child::spawn(&path, &nonce), Child::spawn(&path, &nonce)];
        // Both are ready before either is told to go, so they contend for the lock.
        for child in &mut children {
            assert_eq!(child.next_marker(), "ready");
        }
        for child in &mut children {
            child.process.stdin.take().unwrap().write_all(b"go\n").unwrap();
        }
        let results: Vec<String> = children.iter_mut().map(Child::next_marker).collect();
        for child in &mut children {
            assert!(child.process.wait().unwrap().success());
        }
        let wins = results.iter().filter(|r| *r == "won").count();
        assert_eq!(wins, 1, "round {round}: {results:?}");
    }
    let store = FileNonceStore::open(&path, clock()).unwrap();
    assert_eq!(store.len().unwrap(), 100);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 101, "each nonce recorded once");
}
