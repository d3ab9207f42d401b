"""The scripted model server: pure planning, the HTTP/SSE protocol, and the real CLI on top."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from claude_agent_sdk import (
    AssistantMessage,
    ClaudeAgentOptions,
    ResultMessage,
    TextBlock,
    query,
)

from app.devtools.model_server import ModelServer
from app.devtools.scenario import (
    END_OF_SCENARIO,
    SCENARIOS_DIR,
    SIDE_RULE,
    Scenario,
    find_cwd,
    load_scenario,
    plan_reply,
)

CWD = "/work/space"
REMINDER = (
    "<system-reminder>\n# Environment\nYou have been invoked in the following environment: \n"
    f" - Primary working directory: {CWD}\n - Is a git repository: false\n</system-reminder>"
)
TOOLS = [{"name": "Write", "input_schema": {"type": "object"}}]


# --------------------------------------------------------------------------- request builders


def prompt(text: str, *, first: bool = True) -> dict[str, Any]:
    """A user prompt shaped like the CLI's: reminders first, the user's words last."""
    blocks = [{"type": "text", "text": REMINDER}] if first else []
    blocks.append({"type": "text", "text": text})
    return {"role": "user", "content": blocks}


def tool_use(name: str = "Write", tool_id: str = "toolu_1") -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": tool_id, "name": name, "input": {}}],
    }


def tool_result(
    content: Any, *, is_error: bool = False, tool_id: str = "toolu_1"
) -> dict[str, Any]:
    block = {"type": "tool_result", "tool_use_id": tool_id, "content": content}
    if is_error:
        block["is_error"] = True
    return {"role": "user", "content": [block]}


def text_reply(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": [{"type": "text", "text": text}]}


def request(*messages: dict[str, Any], tools: bool = True, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "claude-test", "messages": list(messages), **extra}
    if tools:
        body["tools"] = TOOLS
    return body


# --------------------------------------------------------------------------- plan_reply


def test_first_matching_rule_is_played(test_scenario: Scenario) -> None:
    reply = plan_reply(test_scenario, request(prompt("Echo hello there")))
    assert (reply.rule, reply.step, reply.text) == ("echo", 0, "You said: hello there")
    assert reply.stop_reason == "end_turn"


def test_rules_are_tried_in_order(test_scenario: Scenario) -> None:
    # "write" comes before "echo" in test.json, and both match.
    assert plan_reply(test_scenario, request(prompt("echo write x.txt"))).rule == "write"


def test_default_rule_renders_the_prompt(test_scenario: Scenario) -> None:
    reply = plan_reply(test_scenario, request(prompt("  what now?  ")))
    assert (reply.rule, reply.text) == ("default", "OK: what now?")


def test_tool_step_renders_cwd_and_named_groups(test_scenario: Scenario) -> None:
    reply = plan_reply(test_scenario, request(prompt("please write notes.txt")))
    (block,) = reply.blocks
    assert (block.type, block.name, reply.stop_reason) == ("tool_use", "Write", "tool_use")
    assert json.loads(block.content) == {
        "file_path": f"{CWD}/notes.txt",
        "content": "scripted content\n",
    }


def test_step_index_is_the_number_of_assistant_turns_since_the_prompt(
    test_scenario: Scenario,
) -> None:
    result = (
        "File created\n\n<system-reminder>\n<total_tokens>9 left</total_tokens>\n</system-reminder>"
    )
    reply = plan_reply(
        test_scenario, request(prompt("write a.txt"), tool_use(), tool_result(result))
    )
    assert (reply.rule, reply.step, reply.text) == ("write", 1, "Write result: File created")


def test_a_reply_split_into_consecutive_assistant_messages_counts_once(
    test_scenario: Scenario,
) -> None:
    body = request(prompt("write a.txt"), text_reply("ok"), tool_use(), tool_result("done"))
    assert plan_reply(test_scenario, body).step == 1


def test_exhausted_rule_ends_the_scenario(test_scenario: Scenario) -> None:
    body = request(prompt("echo hi"), text_reply("You said: hi"), tool_result("late"))
    reply = plan_reply(test_scenario, body)
    assert (reply.rule, reply.step, reply.text) == ("echo", 1, END_OF_SCENARIO)
    assert reply.stop_reason == "end_turn"


def test_a_new_prompt_starts_its_rule_from_the_first_step(test_scenario: Scenario) -> None:
    body = request(
        prompt("write a.txt"),
        tool_use(),
        tool_result("done"),
        text_reply("Write result: done"),
        prompt("echo again", first=False),
    )
    reply = plan_reply(test_scenario, body)
    assert (reply.rule, reply.step, reply.text) == ("echo", 0, "You said: again")


def test_reminder_only_text_is_not_a_prompt(test_scenario: Scenario) -> None:
    result = tool_result("out")
    result["content"].append({"type": "text", "text": "<system-reminder>note</system-reminder>"})
    body = request(prompt("run bash ls -la"), tool_use("Bash"), result)
    reply = plan_reply(test_scenario, body)
    assert (reply.rule, reply.step, reply.text) == ("bash", 1, "Output: out")


def test_interrupt_markers_are_not_part_of_the_prompt(test_scenario: Scenario) -> None:
    interrupted = prompt("[Request interrupted by user]", first=False)
    interrupted["content"].append({"type": "text", "text": "what now"})
    body = request(prompt("tell me a long story"), text_reply("w1 w2"), interrupted)
    reply = plan_reply(test_scenario, body)
    assert (reply.rule, reply.step, reply.text) == ("default", 0, "OK: what now")


def test_tool_result_text_blocks_are_joined_and_errors_flagged() -> None:
    scenario = load_scenario(
        {
            "rules": [
                {
                    "name": "r",
                    "when": "go",
                    "steps": [{"tool": "T"}, {"text": "{tool_error}:{tool_result}"}],
                }
            ]
        }
    )
    content = [{"type": "text", "text": "line 1"}, {"type": "text", "text": "line 2"}]
    body = request(prompt("go"), tool_use("T"), tool_result(content, is_error=True))
    assert plan_reply(scenario, body).text == "true:line 1\nline 2"
    body = request(prompt("go"), tool_use("T"), tool_result("fine"))
    assert plan_reply(scenario, body).text == "false:fine"


def test_templating_leaves_literal_braces_and_unknown_names_alone() -> None:
    tool_input = {
        "code": "def f():\n    return {'a': {1}}\n",
        "nested": [{"deep": "{prompt} in {cwd}"}, 3, None],
        "unknown": "{nope} {0} {}",
    }
    scenario = load_scenario(
        {"rules": [{"name": "r", "when": "go", "steps": [{"tool": "T", "input": tool_input}]}]}
    )
    rendered = json.loads(plan_reply(scenario, request(prompt("go {cwd}"))).blocks[0].content)
    assert rendered["code"] == tool_input["code"]
    assert rendered["unknown"] == "{nope} {0} {}"
    # Substituted values are not expanded again: the prompt's own "{cwd}" stays literal.
    assert rendered["nested"] == [{"deep": f"go {{cwd}} in {CWD}"}, 3, None]


def test_cwd_is_the_latest_announcement_without_the_cli_note() -> None:
    later = prompt(
        "<system-reminder>\n - Primary working directory: /moved (was /work/space)\n"
        "</system-reminder>",
        first=False,
    )
    assert find_cwd(request(prompt("hi"), text_reply("ok"), later)) == "/moved"
    legacy = request(prompt("hi", first=False), system="Env\nWorking directory: /old/style\n")
    assert find_cwd(legacy) == "/old/style"
    assert find_cwd(request(prompt("hi", first=False))) == ""


def test_text_and_generated_tokens_stream_as_words() -> None:
    scenario = load_scenario(
        {"rules": [{"name": "r", "when": "go", "steps": [{"text": "Hi  there\n", "tokens": 3}]}]}
    )
    (block,) = plan_reply(scenario, request(prompt("go"))).blocks
    assert block.chunks == ("Hi  ", "there\n", "w1 ", "w2 ", "w3")


def test_output_tokens_count_every_streamed_delta(test_scenario: Scenario) -> None:
    reply = plan_reply(test_scenario, request(prompt("think hard")))
    assert [b.type for b in reply.blocks] == ["thinking", "text"]
    assert reply.output_tokens == sum(len(b.chunks) for b in reply.blocks) > 2
    assert reply.input_tokens >= 1


def test_long_rule_streams_400_slow_tokens(test_scenario: Scenario) -> None:
    reply = plan_reply(test_scenario, request(prompt("tell me a long story")))
    assert (reply.output_tokens, reply.delay_ms) == (400, 25)


def test_http_error_step(test_scenario: Scenario) -> None:
    error = plan_reply(test_scenario, request(prompt("cause a model error"))).http_error
    assert error is not None
    assert (error.status, error.type) == (529, "overloaded_error")


def test_side_requests_get_a_title_and_never_match_rules(test_scenario: Scenario) -> None:
    side = request(prompt("<session>\nwrite notes.txt\n</session>\n\nWrite the title"), tools=False)
    reply = plan_reply(test_scenario, side)
    assert (reply.rule, reply.text, reply.stop_reason) == (SIDE_RULE, "Write notes.txt", "end_turn")


def test_side_requests_with_a_json_schema_get_matching_json(test_scenario: Scenario) -> None:
    schema = {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}
    side = request(
        prompt("echo a b c d e f g h"),
        tools=False,
        output_config={"format": {"type": "json_schema", "schema": schema}},
    )
    assert json.loads(plan_reply(test_scenario, side).text) == {"title": "Echo a b c d"}


def test_bundled_demo_scenario_writes_into_the_cwd() -> None:
    demo = load_scenario(SCENARIOS_DIR / "demo.json")
    reply = plan_reply(demo, request(prompt("Please write a file")))
    tool = next(b for b in reply.blocks if b.type == "tool_use")
    assert json.loads(tool.content)["file_path"] == f"{CWD}/hello.py"
    assert plan_reply(demo, request(prompt("hello"))).rule == "greet"
    assert "ANTHROPIC_API_KEY" in plan_reply(demo, request(prompt("xyz"))).text


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"rules": [{"name": "r", "when": "(", "steps": [{"text": "x"}]}]}, "bad regex"),
        ({"rules": [{"name": "r", "when": "x", "steps": [{"txt": "x"}]}]}, "unknown key(s) txt"),
        ({"rules": [{"name": "r", "when": "x", "steps": []}]}, "must not be empty"),
        ({"rules": [{"name": "r", "when": "x", "steps": [{}]}]}, "step needs"),
        ({"rules": [{"when": "x", "steps": [{"text": "x"}]}]}, "'name'"),
        ({"rules": [{"name": "r", "when": "(?P<cwd>x)", "steps": [{"text": "x"}]}]}, "reserved"),
        ({"rules": [{"name": "r", "when": "x", "steps": [{"input": {}}]}]}, "'input' needs"),
        ({"rules": [{"name": "r", "when": "x", "steps": [{"tokens": -1}]}]}, "non-negative"),
        (
            {
                "rules": [
                    {
                        "name": "r",
                        "when": "x",
                        "steps": [{"text": "x", "http_error": {"status": 529}}],
                    }
                ]
            },
            "cannot be combined",
        ),
        (
            {"rules": [{"name": "r", "when": "x", "steps": [{"http_error": {"status": 200}}]}]},
            "400-599",
        ),
        (
            {"rules": [{"name": "r", "when": "x", "steps": [{"text": "x"}]}] * 2},
            "duplicate rule names: r",
        ),
        ({"rule": []}, "unknown key(s) rule"),
    ],
)
def test_load_scenario_rejects_bad_input(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_scenario(data)


def test_load_scenario_rejects_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read scenario"):
        load_scenario(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="cannot read scenario"):
        load_scenario(str(broken))


# --------------------------------------------------------------------------- HTTP protocol


def parse_sse(raw: str) -> list[tuple[str, dict[str, Any]]]:
    """Split a raw SSE body, insisting on the exact `event:`/`data:` framing of the real API."""
    events = []
    for frame in raw.split("\n\n"):
        if not frame:
            continue
        event_line, data_line = frame.split("\n")
        assert event_line.startswith("event: ") and data_line.startswith("data: ")
        event, data = (
            event_line.removeprefix("event: "),
            json.loads(data_line.removeprefix("data: ")),
        )
        assert data["type"] == event
        events.append((event, data))
    return events


def stream(server: ModelServer, text: str) -> list[tuple[str, dict[str, Any]]]:
    body = request(prompt(text), stream=True)
    with httpx.Client(base_url=server.base_url) as client:
        response = client.post("/v1/messages?beta=true", json=body)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    return parse_sse(response.text)


def test_text_reply_streams_the_standard_event_sequence(model_server: ModelServer) -> None:
    events = stream(model_server, "echo hello there")
    names = [name for name, _ in events]
    deltas = [data["delta"] for name, data in events if name == "content_block_delta"]
    assert names == [
        "message_start",
        "ping",
        "content_block_start",
        *["content_block_delta"] * len(deltas),
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    message = events[0][1]["message"]
    assert message["id"].startswith("msg_") and message["model"] == "claude-test"
    assert message["usage"]["input_tokens"] > 0
    assert events[2][1]["content_block"] == {"type": "text", "text": ""}
    assert {d["type"] for d in deltas} == {"text_delta"}
    assert "".join(d["text"] for d in deltas) == "You said: hello there"
    end = events[-2][1]
    assert end["delta"]["stop_reason"] == "end_turn"
    assert end["usage"]["output_tokens"] == len(deltas) > 1


def test_tool_use_streams_input_json_deltas(model_server: ModelServer) -> None:
    events = stream(model_server, "write notes.txt")
    start = next(d["content_block"] for n, d in events if n == "content_block_start")
    assert start["type"] == "tool_use" and start["name"] == "Write" and start["input"] == {}
    assert start["id"].startswith("toolu_")
    deltas = [d["delta"] for n, d in events if n == "content_block_delta"]
    assert len(deltas) > 1 and {d["type"] for d in deltas} == {"input_json_delta"}
    assert json.loads("".join(d["partial_json"] for d in deltas)) == {
        "file_path": f"{CWD}/notes.txt",
        "content": "scripted content\n",
    }
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


def test_thinking_streams_before_text_with_a_signature(model_server: ModelServer) -> None:
    events = stream(model_server, "think about it")
    blocks = [
        (d["index"], d["content_block"]["type"]) for n, d in events if n == "content_block_start"
    ]
    assert blocks == [(0, "thinking"), (1, "text")]
    thinking = [d["delta"] for n, d in events if n == "content_block_delta" and d["index"] == 0]
    assert {d["type"] for d in thinking[:-1]} == {"thinking_delta"}
    assert thinking[-1]["type"] == "signature_delta" and thinking[-1]["signature"]


def test_delay_ms_paces_the_stream(model_server: ModelServer) -> None:
    model_server.set_scenario(
        load_scenario({"default": {"steps": [{"tokens": 5, "delay_ms": 30}]}})
    )
    started = time.monotonic()
    events = stream(model_server, "anything")
    assert time.monotonic() - started >= 0.15
    assert sum(1 for n, _ in events if n == "content_block_delta") == 5


def test_non_streaming_requests_get_a_full_message(model_server: ModelServer) -> None:
    body = request(prompt("write notes.txt"))
    response = httpx.post(f"{model_server.base_url}/v1/messages", json=body)
    message = response.json()
    assert response.status_code == 200
    assert (message["type"], message["role"], message["stop_reason"]) == (
        "message",
        "assistant",
        "tool_use",
    )
    (block,) = message["content"]
    assert block["input"]["file_path"] == f"{CWD}/notes.txt"
    assert message["usage"]["output_tokens"] > 0


def test_count_tokens(model_server: ModelServer) -> None:
    body = request(prompt("echo hi"))
    response = httpx.post(f"{model_server.base_url}/v1/messages/count_tokens", json=body)
    assert response.status_code == 200
    assert response.json()["input_tokens"] == plan_reply(load_scenario({}), body).input_tokens


def test_http_error_step_answers_in_the_anthropic_error_shape(model_server: ModelServer) -> None:
    body = request(prompt("model error please"), stream=True)
    response = httpx.post(f"{model_server.base_url}/v1/messages", json=body)
    assert response.status_code == 529
    payload = response.json()
    assert payload["type"] == "error"
    assert payload["error"] == {"type": "overloaded_error", "message": "Overloaded (scripted)"}


def test_unknown_routes_and_bad_bodies_get_anthropic_errors(model_server: ModelServer) -> None:
    with httpx.Client(base_url=model_server.base_url) as client:
        missing = client.get("/v1/models")
        bad = client.post("/v1/messages", content=b"{nope")
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "not_found_error"
    assert bad.status_code == 400
    assert bad.json()["error"]["type"] == "invalid_request_error"


def test_requests_are_logged_and_scenarios_can_be_swapped(model_server: ModelServer) -> None:
    stream(model_server, "echo one")
    model_server.set_scenario(load_scenario({"default": {"steps": [{"text": "swapped"}]}}))
    events = stream(model_server, "echo two")
    text = "".join(d["delta"]["text"] for n, d in events if n == "content_block_delta")
    assert text == "swapped"
    assert [r["messages"][0]["content"][-1]["text"] for r in model_server.requests] == [
        "echo one",
        "echo two",
    ]


def test_stop_cancels_a_slow_stream_in_flight(test_scenario: Scenario) -> None:
    server = ModelServer(test_scenario)
    server.start()
    body = request(prompt("long story"), stream=True)
    with (
        httpx.Client(base_url=server.base_url) as client,
        client.stream("POST", "/v1/messages", json=body) as response,
    ):
        lines = response.iter_lines()  # kept open: the connection must stay in flight
        assert next(lines).startswith("event: message_start")
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 3  # the full reply would take 10 s
        with pytest.raises(httpx.RemoteProtocolError):
            list(lines)
    with pytest.raises(RuntimeError, match="not started"):
        _ = server.base_url


def test_standalone_module_serves_a_scenario() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    scenario = str(SCENARIOS_DIR / "test.json")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app.devtools.model_server",
            "--scenario",
            scenario,
            "--port",
            str(port),
        ],
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                response = httpx.post(
                    f"http://127.0.0.1:{port}/v1/messages", json=request(prompt("echo standalone"))
                )
                break
            except httpx.ConnectError:
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        assert response.json()["content"] == [{"type": "text", "text": "You said: standalone"}]
    finally:
        process.terminate()
        process.wait(10)


# --------------------------------------------------------------------------- real CLI


async def run_cli(prompt_text: str, cwd: Path, env: dict[str, str]) -> list[Any]:
    options = ClaudeAgentOptions(
        cwd=cwd,
        env=env,
        model="claude-sonnet-4-5",
        include_partial_messages=True,
        permission_mode="bypassPermissions",
        setting_sources=[],
    )
    return [message async for message in query(prompt=prompt_text, options=options)]


def texts(messages: list[Any]) -> list[str]:
    return [
        block.text
        for message in messages
        if isinstance(message, AssistantMessage)
        for block in message.content
        if isinstance(block, TextBlock)
    ]


async def test_cli_streams_a_scripted_text_reply(tmp_path: Path, cli_env: dict[str, str]) -> None:
    messages = await run_cli("echo hello there", tmp_path, cli_env)
    assert texts(messages) == ["You said: hello there"]
    result = messages[-1]
    assert isinstance(result, ResultMessage) and not result.is_error
    assert result.usage is not None
    assert result.usage["input_tokens"] > 0 and result.usage["output_tokens"] > 0


async def test_cli_runs_a_scripted_write_and_sends_back_the_result(
    tmp_path: Path, cli_env: dict[str, str], model_server: ModelServer
) -> None:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    messages = await run_cli("write notes.txt", workspace, cli_env)

    assert (workspace / "notes.txt").read_text() == "scripted content\n"
    (final,) = texts(messages)
    assert final.startswith("Write result: ")
    assert str(workspace / "notes.txt") in final

    first, second = model_server.requests
    assert find_cwd(first) == str(workspace)
    results = [
        block for block in second["messages"][-1]["content"] if block.get("type") == "tool_result"
    ]
    assert len(results) == 1 and str(workspace / "notes.txt") in json.dumps(results[0])
    assert final.removeprefix("Write result: ") in json.dumps(results[0], ensure_ascii=False)
