"""Drives `agent-safe mcp` with the official MCP Python SDK (PyPI `mcp`), as an agent would.

    AGENT_SAFE_IDENTITY_TOKEN=… python mcp_client.py AGENT_SAFE_BINARY PROJECT_DIR

Initializes, lists the tools, checks an allowed and a denied action, executes the allowed one
on the dry-run executor. Prints one line per step; exits 1 on the first unexpected answer.
`cargo xtask ci` runs it, then `agent-safe audit verify` on the project's log.
"""

import asyncio
import json
import os
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

TOOLS = ["list_actions", "check_action", "execute_action", "request_approval_status"]


def restart(target):
    namespace, name = target.split("/")
    return {"action": "restart-deployment", "target": target,
            "params": {"namespace": namespace, "deployment": name}}


def fail(message):
    print(f"FAIL  {message}")
    sys.exit(1)


def structured(result):
    if result.structuredContent is not None:
        return result.structuredContent
    return json.loads(result.content[0].text)


async def main(binary, project, token):
    params = StdioServerParameters(command=binary, args=["mcp"], cwd=project,
                                   env={"AGENT_SAFE_IDENTITY_TOKEN": token, "PATH": "/usr/bin:/bin"})
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            if init.serverInfo.name != "agent-safe":
                fail(f"server name {init.serverInfo.name!r}")
            print(f"PASS  initialize: {init.serverInfo.name} {init.serverInfo.version}")
            tools = [t.name for t in (await session.list_tools()).tools]
            if tools != TOOLS:
                fail(f"tools {tools}")
            print(f"PASS  list tools: {tools}")
            allowed = structured(await session.call_tool("check_action", restart("dev/test-app")))
            if allowed.get("result") != "allow" or not allowed.get("ticket"):
                fail(f"allowed check: {allowed}")
            print(f"PASS  check dev/test-app: {allowed['result']} ({allowed['reason']})")
            # A pod is not a deployment: denied before any rule.
            denied = structured(await session.call_tool("check_action", {
                "action": "restart-deployment", "target": "dev/debug-pod",
                "params": {"namespace": "dev", "deployment": "debug-pod"}}))
            if denied.get("result") != "deny":
                fail(f"denied check: {denied}")
            print(f"PASS  check dev/debug-pod: {denied['result']} ({denied['reason']})")
            ran = await session.call_tool("execute_action", restart("dev/test-app"))
            execution = structured(ran).get("execution", {})
            if ran.isError or execution.get("status") != "skipped":
                fail(f"execute: {structured(ran)}")
            print(f"PASS  execute dev/test-app: {execution['status']} on {execution['executor_type']}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], os.environ["AGENT_SAFE_IDENTITY_TOKEN"]))
