"""Verifies the Rust-minted tokens in rust-minted.json with the Python agent-safe implementation.

    python3 -m venv /tmp/pyas && /tmp/pyas/bin/pip install agent-safe
    /tmp/pyas/bin/python tests/data/tickets/verify_with_python.py

Exits 0 when every expectation holds; prints one line per check.
"""

import hashlib
import json
import pathlib
import sys

from agent_safe.identity.manager import IdentityManager
from agent_safe.tickets.validator import TicketValidator

data = json.loads((pathlib.Path(__file__).parent / "rust-minted.json").read_text())
key, issuer = data["signing_key"], data["issuer"]
ok = True


def expect(name, got, want):
    global ok
    passed = got == want
    ok &= passed
    print(f"{'PASS' if passed else 'FAIL'}  {name}: {got!r}" + ("" if passed else f" (want {want!r})"))


ids = IdentityManager(key, issuer=issuer)
deployer = ids.validate_token(data["identity_tokens"]["deployer"])
expect("identity agent_id", deployer.agent_id, "deploy-bot")
expect("identity agent_name", deployer.agent_name, "Déploiement ✓")
expect("identity roles/groups", (deployer.roles, deployer.groups), (["deployer"], ["platform"]))
expect("identity expires_at", deployer.expires_at.isoformat(), "2036-11-25T10:00:00+00:00")

worker = ids.validate_token(data["delegation_tokens"]["worker-1 from orchestrator"])
expect("delegation agent_id/depth", (worker.agent_id, worker.delegation_depth), ("worker-1", 1))
expect("delegation chain", [(l.agent_id, l.roles, l.delegated_at.isoformat()) for l in worker.delegation_chain],
       [("orchestrator", ["deployer", "reader"], "2026-11-26T10:00:00.123456+00:00")])
expect("delegation delegated_roles", worker.delegated_roles, ["deployer"])

validator = TicketValidator(key, issuer=issuer)
no_aud = data["execution_tickets"]["no-aud"]
result = validator.validate(no_aud["token"], expected_action="scale-deployment", expected_target="dev/test-app")
expect("ticket without aud", (result.valid, result.reason), (True, "Ticket is valid"))
expect("ticket params", result.ticket.params, data["ticket_params"])
expect("ticket nonce", result.ticket.nonce, no_aud["nonce"])
replay = validator.validate(no_aud["token"])
expect("ticket replay", replay.reason, "Ticket has already been used (replay detected)")

# PyJWT without a configured audience rejects any token that carries `aud`: documented.
with_aud = validator.validate(data["execution_tickets"]["aud-agent-safe-runner"]["token"])
expect("ticket with aud (expected to fail in Python)", (with_aud.valid, with_aud.reason),
       (False, "Invalid ticket: Invalid audience"))

digest = hashlib.sha256(json.dumps(data["ticket_params"], sort_keys=True).encode()).hexdigest()
expect("params digest (json.dumps sort_keys + sha256)", digest, data["ticket_params_digest"])

sys.exit(0 if ok else 1)
