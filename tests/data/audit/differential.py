"""Differential test of the Rust verifier against Python's `verify_log`.

Applies the same single-byte changes as `crates/agent-safe-audit/examples/verify_mutations.rs`
to LOG, runs Python's verifier on each, and compares with the Rust output (RUST_JSONL):
every change Python verifies without crashing must give exactly Python's error messages;
where Python crashes (UnicodeDecodeError, AttributeError on a non-object line, ...) the Rust
verifier must report at least one error.

    python3 -m venv /tmp/pyas && /tmp/pyas/bin/pip install agent-safe
    cargo run --release -p agent-safe-audit --example verify_mutations -- LOG > /tmp/rust.jsonl
    /tmp/pyas/bin/python tests/data/audit/differential.py LOG /tmp/rust.jsonl
"""
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

from agent_safe.audit.logger import verify_log


def mutations(log: bytes):
    for pos in range(len(log)):
        yield "delete", pos, 0, log[:pos] + log[pos + 1:]
        for b in range(256):
            if b != log[pos]:
                yield "replace", pos, b, log[:pos] + bytes([b]) + log[pos + 1:]
            yield "insert", pos, b, log[:pos] + bytes([b]) + log[pos:]


def main() -> int:
    log = Path(sys.argv[1]).read_bytes()
    rust = open(sys.argv[2], encoding="utf-8")
    tmp = Path(tempfile.mkdtemp(dir="/dev/shm" if Path("/dev/shm").is_dir() else None)) / "m.jsonl"
    stats = Counter()
    mismatches = []
    for op, pos, b, mutated in mutations(log):
        r = json.loads(next(rust))
        assert (r["op"], r["pos"], r["byte"]) == (op, pos, b), (r, op, pos, b)
        tmp.write_bytes(mutated)
        try:
            ok, errors = verify_log(tmp)
        except Exception as e:  # Python's verifier crashes on some inputs
            stats["python crashed"] += 1
            stats["python crashed, rust reported an error" if r["errors"] else "python crashed, rust reported nothing"] += 1
            if not r["errors"]:
                mismatches.append((op, pos, b, type(e).__name__, r))
            continue
        stats["python valid" if ok else "python invalid"] += 1
        if errors == r["errors"]:
            stats["same messages"] += 1
        else:
            stats["different messages"] += 1
            mismatches.append((op, pos, b, errors, r["errors"]))
    print(json.dumps(stats, indent=1, sort_keys=True))
    for m in mismatches[:20]:
        print(m)
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
