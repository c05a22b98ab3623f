"""Verifies the Rust-minted delegation tokens in rust-minted.json with the Python agent-safe
implementation, and delegates further from them in Python.

    python3 -m venv /tmp/pyas && /tmp/pyas/bin/pip install agent-safe
    /tmp/pyas/bin/python tests/data/delegation/verify_with_python.py

Exits 0 when every expectation holds; prints one line per check.
"""

import base64
import json
import pathlib
import sys

import jwt
from agent_safe.identity.manager import DelegationError, IdentityManager

data = json.loads((pathlib.Path(__file__).parent / "rust-minted.json").read_text())
key, issuer = data["signing_key"], data["issuer"]
ok = True


def expect(name, got, want):
    global ok
    passed = got == want
    ok &= passed
    print(f"{'PASS' if passed else 'FAIL'}  {name}: {got!r}" + ("" if passed else f" (want {want!r})"))


ids = IdentityManager(key, issuer=issuer)
root = ids.validate_token(data["identity_tokens"]["orchestrator"])
expect("root agent_id/name", (root.agent_id, root.agent_name), ("orchestrator", "Orchestrator ✓"))
expect("root depth", root.delegation_depth, 0)

worker = ids.validate_token(data["delegation_tokens"]["worker-1 from orchestrator"])
expect("worker agent_id/name/depth", (worker.agent_id, worker.agent_name, worker.delegation_depth),
       ("worker-1", "worker", 1))
expect("worker roles/groups/delegated_roles", (worker.roles, worker.groups, worker.delegated_roles),
       (["deployer"], ["platform"], ["deployer"]))
expect("worker chain", [(l.agent_id, l.agent_name, l.roles, l.groups, l.delegated_at.isoformat())
                        for l in worker.delegation_chain],
       [("orchestrator", "Orchestrator ✓", ["deployer", "reader"], ["platform"],
         "2026-11-26T10:00:00.123456+00:00")])
expect("worker expires with its parent", worker.expires_at, root.expires_at)

sub = ids.validate_token(data["delegation_tokens"]["sub-1 from worker-1"])
expect("sub depth/chain", (sub.delegation_depth, [l.agent_id for l in sub.delegation_chain]),
       (2, ["orchestrator", "worker-1"]))
expect("sub chain times", [l.delegated_at.isoformat() for l in sub.delegation_chain],
       ["2026-11-26T10:00:00.123456+00:00", "2026-11-26T10:00:01.123456+00:00"])

# Python ignores the extra claims (max_delegation_depth, delegation_scope): it can delegate
# further from a Rust token with its own rules (per-call max_depth, roles subset).
child = ids.validate_token(ids.create_delegation_token(
    data["delegation_tokens"]["sub-1 from worker-1"], "py-child", child_roles=["deployer"]))
expect("python child of a rust token", (child.delegation_depth, [l.agent_id for l in child.delegation_chain]),
       (3, ["orchestrator", "worker-1", "sub-1"]))
# ... and, not knowing them, does not carry them on (see docs/delegation.md, mixed deployments).
py_token = ids.create_delegation_token(data["delegation_tokens"]["sub-1 from worker-1"], "py-child")
claims = jwt.decode(py_token, key, algorithms=["HS256"], issuer=issuer)
expect("python child drops the rust-only claims",
       sorted(k for k in ("max_delegation_depth", "delegation_scope") if k in claims), [])
try:
    ids.create_delegation_token(data["delegation_tokens"]["worker-1 from orchestrator"], "x",
                                child_roles=["reader"])
    expect("python narrowing on a rust token", "no error", "DelegationError")
except DelegationError as e:
    expect("python narrowing on a rust token", str(e), "Cannot delegate roles not held by parent: ['reader']")

# A chain edited without re-signing is rejected by Python too.
head, payload, sig = data["delegation_tokens"]["worker-1 from orchestrator"].split(".")
claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
claims["delegation_chain"][0]["agent_id"] = "ceo-bot"
edited = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
try:
    ids.validate_token(".".join([head, edited, sig]))
    expect("forged chain", "accepted", "rejected")
except Exception as e:  # IdentityError
    expect("forged chain", str(e), "Invalid token: Signature verification failed")

sys.exit(0 if ok else 1)
