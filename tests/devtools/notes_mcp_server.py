"""A stdio MCP server for tests (standard library only, so it runs in the agent's jail with
the system's python3): one tool, `add`, which appends its text to notes.txt in the folder it
was started in and says which user it ran as."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

TOOL = {
    "name": "add",
    "description": "Add a line to the notes.",
    "inputSchema": {
        "type": "object",
        "properties": {"text": {"type": "string"}},
        "required": ["text"],
    },
}


def answer(request: dict[str, Any]) -> dict[str, Any] | None:
    method, ident = request.get("method"), request.get("id")
    if ident is None:
        return None  # a notification
    if method == "initialize":
        result: dict[str, Any] = {
            "protocolVersion": request["params"].get("protocolVersion", "2025-06-18"),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "notes", "version": "1.0"},
        }
    elif method == "tools/list":
        result = {"tools": [TOOL]}
    elif method == "tools/call":
        text = str(request["params"]["arguments"]["text"])
        with open("notes.txt", "a") as notes:
            notes.write(text + "\n")
        said = f"noted {text} as uid {os.getuid()}"
        result = {"content": [{"type": "text", "text": said}]}
    elif method == "ping":
        result = {}
    else:
        return {"jsonrpc": "2.0", "id": ident, "error": {"code": -32601, "message": "unknown"}}
    return {"jsonrpc": "2.0", "id": ident, "result": result}


def main() -> None:
    for line in sys.stdin:
        if line.strip():
            reply = answer(json.loads(line))
            if reply is not None:
                sys.stdout.write(json.dumps(reply) + "\n")
                sys.stdout.flush()


if __name__ == "__main__":
    main()
