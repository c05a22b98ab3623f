#!/usr/bin/env python3
"""A client of the `agent-safe serve` HTTP API, standard library only.

    python3 client.py demo                       check, execute and verify end to end
    python3 client.py token AGENT [ROLE ...]     print an identity token (needs AGENT_SAFE_SIGNING_KEY)

Environment: AGENT_SAFE_URL (default http://127.0.0.1:8411); AGENT_SAFE_TOKEN, the calling
agent's identity token (`agent-safe identity issue deploy-bot --role deployer` mints one); or,
to mint tokens here the way an orchestrator written in Python would, AGENT_SAFE_SIGNING_KEY
(the HS256 `signing_key` of agent-safe.yaml). Agents themselves only hold their token.
"""

import base64
import hashlib
import hmac
import json
import os
import sys
import time
import urllib.error
import urllib.request

URL = os.environ.get("AGENT_SAFE_URL", "http://127.0.0.1:8411")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def mint_token(agent_id, roles=(), ttl=3600, issuer="agent-safe"):
    """An agent-safe identity token: an HS256 JWT with agent_id, roles, iss, iat, exp."""
    secret = os.environ.get("AGENT_SAFE_SIGNING_KEY")
    if not secret:
        sys.exit("set AGENT_SAFE_TOKEN to an identity token (agent-safe identity issue AGENT), "
                 "or AGENT_SAFE_SIGNING_KEY to the signing_key of agent-safe.yaml")
    now = int(time.time())
    header = {"alg": "HS256", "typ": "JWT"}
    claims = {"agent_id": agent_id, "agent_name": agent_id, "roles": list(roles), "groups": [],
              "iss": issuer, "iat": now, "exp": now + ttl}
    signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(signature)


class ApiError(Exception):
    def __init__(self, status, code, message):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


def call(method, path, token, body=None):
    """Calls the API; returns the JSON answer or raises ApiError with the error's code."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(URL + path, data=data, method=method)
    req.add_header("Authorization", "Bearer " + token)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as e:
        err = json.loads(e.read() or b"{}").get("error", {})
        raise ApiError(e.code, err.get("code"), err.get("message")) from None


def demo():
    token = os.environ.get("AGENT_SAFE_TOKEN") or mint_token("deploy-bot", ["deployer"])
    request = {"action": "restart-deployment", "target": "dev/test-app",
               "params": {"namespace": "dev", "deployment": "test-app"}}
    decision = call("POST", "/v1/check", token, request)
    print(f"check: {decision['result']} — {decision['reason']} (audit id {decision['audit_id']})")
    if decision["result"] != "allow":
        return 1
    ticket = decision["ticket"]["token"]
    outcome = call("POST", "/v1/execute", token, {"ticket": ticket})
    print(f"execute: {outcome['status']} ({outcome['executor_type']}): {outcome['output'] or outcome['error']}")
    if outcome["status"] not in ("success", "skipped"):
        return 1
    try:
        replay = call("POST", "/v1/execute", token, {"ticket": ticket})
    except ApiError as e:
        print("second execute refused:", e)
    else:
        print(f"second execute refused by the runner: {replay['status']}: {replay['error']}")
        if replay["status"] in ("success", "skipped"):
            return 1
    denied = call("POST", "/v1/check", token, dict(request, target="prod/api-server",
                                                    params={"namespace": "prod", "deployment": "api-server"}))
    print(f"prod check: {denied['result']} — {denied['reason']}")
    try:
        call("POST", "/v1/check", token, dict(request, caller="someone-else"))
    except ApiError as e:
        print("caller mismatch refused:", e)
    report = call("GET", "/v1/audit/verify", token)
    print(f"audit log: valid={report['valid']} entries={report['entries']}")
    return 0 if report["valid"] else 1


def main(argv):
    if len(argv) >= 2 and argv[0] == "token":
        print(mint_token(argv[1], argv[2:]))
        return 0
    if argv == ["demo"]:
        return demo()
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
