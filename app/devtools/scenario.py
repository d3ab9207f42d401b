"""Scripted model behaviour: which canned reply a Messages API request gets.

The Claude Code CLI is restarted and resumed freely by the app, so the model server keeps no
conversation state. Everything is derived from the request itself: the last real user prompt
picks a rule, and the number of assistant turns since that prompt picks the step to play. That
makes `plan_reply` a pure function, easy to test and safe across CLI restarts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

SCENARIOS_DIR = Path(__file__).parent / "scenarios"
"""Where the bundled scenarios (`demo.json`, `test.json`) live."""

END_OF_SCENARIO = "(end of scenario)"
"""Text played once a rule has no steps left, so a chatty client still gets a valid turn."""

SIDE_RULE = "side-request"
"""Rule name reported for requests that offer no tools (titles and other CLI side jobs)."""

DEFAULT_RULE = "default"

_TEMPLATE_KEYS = frozenset({"cwd", "prompt", "tool_result", "tool_error"})
_STEP_KEYS = frozenset(
    {"text", "tokens", "delay_ms", "thinking", "tool", "input", "tools", "http_error"}
)
_RULE_KEYS = frozenset({"name", "when", "steps", "description"})
_TOP_KEYS = frozenset({"rules", "default", "description"})
_REMINDER = re.compile(r"<system-reminder>.*?</system-reminder>", re.DOTALL)
# Markers the CLI records in user messages after an interrupt; the user did not type them.
_INTERRUPT_MARKER = re.compile(r"^\[Request interrupted by user[^\]]*\]$")
_CWD_LINE = re.compile(
    r"^[ \t]*(?:-[ \t]*)?(?:primary )?working directory:[ \t]*(\S.*?)[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)
# The CLI appends a note when it re-announces a changed directory; it is not part of the path.
_CWD_NOTE = re.compile(r" \((?:was |the shell stands here now).*\)$")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_WORD = re.compile(r"\S+\s*|\s+")
_JSON_CHUNK = 16
_TITLE_WORDS = 5
_TAGGED = re.compile(r"<(\w+)>(.*?)</\1>", re.DOTALL)

Json = dict[str, Any]


@dataclass(frozen=True)
class ToolCall:
    """One tool_use block a step asks the CLI to run."""

    name: str
    input: Json


@dataclass(frozen=True)
class HttpError:
    """An API failure to answer with instead of a message (e.g. 529 overloaded)."""

    status: int
    type: str
    message: str


@dataclass(frozen=True)
class Step:
    """One assistant turn of a rule, as written in the scenario (templates unrendered)."""

    text: str | None = None
    tokens: int = 0
    delay_ms: int = 0
    thinking: str | None = None
    tools: tuple[ToolCall, ...] = ()
    http_error: HttpError | None = None


@dataclass(frozen=True)
class Rule:
    """Steps to play when `when` is found in the last real user prompt."""

    name: str
    when: re.Pattern[str]
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class Scenario:
    """Rules tried in order; `default` plays when none matches."""

    rules: tuple[Rule, ...]
    default: Rule


@dataclass(frozen=True)
class Block:
    """One rendered content block, already cut into the deltas the server streams."""

    type: Literal["thinking", "text", "tool_use"]
    chunks: tuple[str, ...]
    name: str = ""

    @property
    def content(self) -> str:
        """Text, thinking, or (for tool_use) the JSON-encoded input."""
        return "".join(self.chunks)


@dataclass(frozen=True)
class Reply:
    """What the model says to one request; ids are left to the server."""

    rule: str
    step: int
    blocks: tuple[Block, ...]
    input_tokens: int
    delay_ms: int = 0
    http_error: HttpError | None = None

    @property
    def stop_reason(self) -> Literal["end_turn", "tool_use"]:
        return "tool_use" if any(b.type == "tool_use" for b in self.blocks) else "end_turn"

    @property
    def output_tokens(self) -> int:
        """Number of deltas streamed, the closest thing a script has to tokens."""
        return sum(len(b.chunks) for b in self.blocks)

    @property
    def text(self) -> str:
        return "".join(b.content for b in self.blocks if b.type == "text")


# --------------------------------------------------------------------------- loading


def load_scenario(source: str | Path | Mapping[str, Any]) -> Scenario:
    """Parse a scenario from a JSON file path or an already-decoded dict.

    Everything is validated up front (regexes compiled, step keys checked) so a typo in a
    scenario fails loudly at load time instead of as a confusing reply mid-conversation.
    """
    if isinstance(source, Mapping):
        data: Any = source
    else:
        try:
            data = json.loads(Path(source).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot read scenario {source}: {exc}") from exc
    if not isinstance(data, Mapping):
        raise ValueError("scenario must be a JSON object")
    _check_keys(data, _TOP_KEYS, "scenario")
    raw_rules = data.get("rules", [])
    if not isinstance(raw_rules, list):
        raise ValueError("scenario 'rules' must be a list")
    rules = tuple(_parse_rule(raw, f"rules[{i}]") for i, raw in enumerate(raw_rules))
    names = [r.name for r in rules]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"duplicate rule names: {', '.join(duplicates)}")
    raw_default = data.get("default", {"steps": []})
    if not isinstance(raw_default, Mapping):
        raise ValueError("scenario 'default' must be an object with 'steps'")
    _check_keys(raw_default, frozenset({"steps", "description"}), "default")
    default = Rule(DEFAULT_RULE, re.compile(""), _parse_steps(raw_default.get("steps"), "default"))
    return Scenario(rules=rules, default=default)


def _check_keys(raw: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ValueError(
            f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
        )


def _parse_rule(raw: Any, where: str) -> Rule:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: a rule must be an object")
    _check_keys(raw, _RULE_KEYS, where)
    name, when = raw.get("name"), raw.get("when")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{where}: 'name' must be a non-empty string")
    if not isinstance(when, str) or not when:
        raise ValueError(f"{where} ({name}): 'when' must be a non-empty regex string")
    try:
        pattern = re.compile(when, re.IGNORECASE)
    except re.error as exc:
        raise ValueError(f"{where} ({name}): bad regex {when!r}: {exc}") from exc
    clashes = sorted(set(pattern.groupindex) & _TEMPLATE_KEYS)
    if clashes:
        raise ValueError(f"{where} ({name}): group names reserved for templating: {clashes}")
    steps = _parse_steps(raw.get("steps"), f"{where} ({name})")
    if not steps:
        raise ValueError(f"{where} ({name}): 'steps' must not be empty")
    return Rule(name=name, when=pattern, steps=steps)


def _parse_steps(raw: Any, where: str) -> tuple[Step, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ValueError(f"{where}: 'steps' must be a list")
    return tuple(_parse_step(s, f"{where} steps[{i}]") for i, s in enumerate(raw))


def _parse_step(raw: Any, where: str) -> Step:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: a step must be an object")
    _check_keys(raw, _STEP_KEYS, where)
    step = Step(
        text=_optional_str(raw, "text", where),
        tokens=_non_negative_int(raw, "tokens", where),
        delay_ms=_non_negative_int(raw, "delay_ms", where),
        thinking=_optional_str(raw, "thinking", where),
        tools=_parse_tools(raw, where),
        http_error=_parse_http_error(raw.get("http_error"), where),
    )
    has_content = bool(step.text or step.tokens or step.thinking or step.tools)
    if step.http_error is not None and has_content:
        raise ValueError(f"{where}: 'http_error' cannot be combined with message content")
    if step.http_error is None and not has_content:
        raise ValueError(f"{where}: step needs text, tokens, thinking, tool(s) or http_error")
    return step


def _optional_str(raw: Mapping[str, Any], key: str, where: str) -> str | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{where}: '{key}' must be a string")
    return value


def _non_negative_int(raw: Mapping[str, Any], key: str, where: str) -> int:
    value = raw.get(key, 0)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{where}: '{key}' must be a non-negative integer")
    return value


def _parse_tools(raw: Mapping[str, Any], where: str) -> tuple[ToolCall, ...]:
    calls: list[ToolCall] = []
    if "tool" in raw:
        calls.append(_tool_call(raw, where))
    elif "input" in raw:
        raise ValueError(f"{where}: 'input' needs 'tool'")
    extra = raw.get("tools", [])
    if not isinstance(extra, list):
        raise ValueError(f"{where}: 'tools' must be a list of {{tool, input}} objects")
    for i, item in enumerate(extra):
        if not isinstance(item, Mapping):
            raise ValueError(f"{where}: tools[{i}] must be an object")
        _check_keys(item, frozenset({"tool", "input"}), f"{where} tools[{i}]")
        calls.append(_tool_call(item, f"{where} tools[{i}]"))
    return tuple(calls)


def _tool_call(raw: Mapping[str, Any], where: str) -> ToolCall:
    name, tool_input = raw.get("tool"), raw.get("input", {})
    if not isinstance(name, str) or not name:
        raise ValueError(f"{where}: 'tool' must be a non-empty string")
    if not isinstance(tool_input, dict):
        raise ValueError(f"{where}: 'input' must be an object")
    try:
        # A private deep copy: the frozen scenario must not change with the caller's dict.
        copied = json.loads(json.dumps(tool_input))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: 'input' must be JSON-encodable: {exc}") from exc
    return ToolCall(name=name, input=copied)


def _parse_http_error(raw: Any, where: str) -> HttpError | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: 'http_error' must be an object")
    _check_keys(raw, frozenset({"status", "type", "message"}), f"{where} http_error")
    status = raw.get("status")
    if not isinstance(status, int) or not 400 <= status <= 599:
        raise ValueError(f"{where}: http_error 'status' must be an HTTP error code (400-599)")
    error_type = raw.get("type", "api_error")
    message = raw.get("message", "scripted error")
    if not isinstance(error_type, str) or not isinstance(message, str):
        raise ValueError(f"{where}: http_error 'type' and 'message' must be strings")
    return HttpError(status=status, type=error_type, message=message)


# --------------------------------------------------------------------------- planning


def plan_reply(scenario: Scenario, request: Mapping[str, Any]) -> Reply:
    """Decide and render the reply to one Messages API request, without side effects."""
    messages = _messages(request)
    input_tokens = estimate_input_tokens(request)
    found = _last_prompt(messages)
    prompt_index, prompt = found if found else (len(messages), "")
    if not request.get("tools"):
        return Reply(SIDE_RULE, 0, (_text_block(_side_answer(request, prompt)),), input_tokens)
    rule, match = _pick_rule(scenario, prompt)
    after = messages[prompt_index + 1 :]
    index = _assistant_turns(after)
    if index >= len(rule.steps):
        return Reply(rule.name, index, (_text_block(END_OF_SCENARIO),), input_tokens)
    step = rule.steps[index]
    values = _template_values(request, after, prompt, match)
    return Reply(
        rule=rule.name,
        step=index,
        blocks=_render(step, values),
        input_tokens=input_tokens,
        delay_ms=step.delay_ms,
        http_error=step.http_error,
    )


def estimate_input_tokens(request: Mapping[str, Any]) -> int:
    """About four characters per token over everything the model would read."""
    payload = [request.get("system"), request.get("messages"), request.get("tools")]
    return max(1, len(json.dumps(payload, ensure_ascii=False)) // 4)


def _messages(request: Mapping[str, Any]) -> list[Json]:
    messages = request.get("messages")
    if not isinstance(messages, list):
        return []
    return [m for m in messages if isinstance(m, dict)]


def _content_blocks(message: Mapping[str, Any]) -> list[Json]:
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list):
        return [b for b in content if isinstance(b, dict)]
    return []


def _prompt_of(message: Mapping[str, Any]) -> str | None:
    """The user's own words in a message, or None for tool results and CLI-made text."""
    if message.get("role") != "user":
        return None
    parts = []
    for block in _content_blocks(message):
        if block.get("type") == "text" and isinstance(block.get("text"), str):
            text = _REMINDER.sub("", block["text"]).strip()
            if text and not _INTERRUPT_MARKER.match(text):
                parts.append(text)
    return "\n".join(parts) or None


def _last_prompt(messages: list[Json]) -> tuple[int, str] | None:
    for index in range(len(messages) - 1, -1, -1):
        prompt = _prompt_of(messages[index])
        if prompt is not None:
            return index, prompt
    return None


def _pick_rule(scenario: Scenario, prompt: str) -> tuple[Rule, re.Match[str] | None]:
    for rule in scenario.rules:
        match = rule.when.search(prompt)
        if match:
            return rule, match
    return scenario.default, None


def _assistant_turns(messages: list[Json]) -> int:
    """Assistant turns, counting a run of consecutive assistant messages once.

    A client may split one streamed reply (thinking, text, tool_use) into several assistant
    messages; the script advances per reply, not per fragment.
    """
    turns, previous = 0, ""
    for message in messages:
        role = str(message.get("role", ""))
        if role == "assistant" and previous != "assistant":
            turns += 1
        previous = role
    return turns


def _template_values(
    request: Mapping[str, Any],
    after_prompt: list[Json],
    prompt: str,
    match: re.Match[str] | None,
) -> dict[str, str]:
    values = {k: v or "" for k, v in match.groupdict().items()} if match else {}
    result = _last_tool_result(after_prompt)
    values.update(
        cwd=find_cwd(request),
        prompt=prompt,
        tool_result=_tool_result_text(result) if result else "",
        tool_error="true" if result and result.get("is_error") else "false",
    )
    return values


def find_cwd(request: Mapping[str, Any]) -> str:
    """The working directory the CLI announces, latest announcement first.

    Claude Code 2.x states it in a `<system-reminder>` of the first user message
    (" - Primary working directory: /path"); older versions put "Working directory: /path"
    in the system prompt. Both are searched; "" if neither is present.
    """
    texts = [_system_text(request.get("system"))]
    for message in _messages(request):
        texts.extend(b["text"] for b in _content_blocks(message) if isinstance(b.get("text"), str))
    found = [m.group(1) for text in texts for m in _CWD_LINE.finditer(text)]
    return _CWD_NOTE.sub("", found[-1]) if found else ""


def _system_text(system: Any) -> str:
    if isinstance(system, str):
        return system
    if isinstance(system, list):
        return "\n".join(
            b["text"] for b in system if isinstance(b, dict) and isinstance(b.get("text"), str)
        )
    return ""


def _last_tool_result(messages: list[Json]) -> Json | None:
    results = [
        block
        for message in messages
        if message.get("role") == "user"
        for block in _content_blocks(message)
        if block.get("type") == "tool_result"
    ]
    return results[-1] if results else None


def _tool_result_text(block: Mapping[str, Any]) -> str:
    """The tool's output without the reminders the CLI appends to it (token budget etc.)."""
    content = block.get("content")
    if isinstance(content, list):
        content = "\n".join(
            b["text"] for b in content if isinstance(b, dict) and isinstance(b.get("text"), str)
        )
    return _REMINDER.sub("", content).strip() if isinstance(content, str) else ""


def render_template(template: str, values: Mapping[str, str]) -> str:
    """Replace `{name}` for known names only, in one pass.

    Unlike str.format, unknown placeholders and literal braces (JSON, code) are left alone and
    substituted values are never expanded again.
    """
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def _render_value(value: Any, values: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return render_template(value, values)
    if isinstance(value, list):
        return [_render_value(v, values) for v in value]
    if isinstance(value, dict):
        return {k: _render_value(v, values) for k, v in value.items()}
    return value


def _render(step: Step, values: Mapping[str, str]) -> tuple[Block, ...]:
    blocks: list[Block] = []
    if step.thinking:
        blocks.append(Block("thinking", split_words(render_template(step.thinking, values))))
    text_chunks = split_words(render_template(step.text or "", values))
    text_chunks += tuple(_generated_words(step.tokens, after=text_chunks))
    if text_chunks:
        blocks.append(Block("text", text_chunks))
    for call in step.tools:
        encoded = json.dumps(_render_value(call.input, values), ensure_ascii=False)
        chunks = tuple(encoded[i : i + _JSON_CHUNK] for i in range(0, len(encoded), _JSON_CHUNK))
        blocks.append(Block("tool_use", chunks, name=call.name))
    return tuple(blocks)


def split_words(text: str) -> tuple[str, ...]:
    """Word tokens that keep their trailing whitespace, so joining them restores the text."""
    return tuple(_WORD.findall(text))


def _generated_words(count: int, after: tuple[str, ...]) -> Iterator[str]:
    separator = " " if after and not after[-1][-1].isspace() else ""
    for i in range(1, count + 1):
        yield f"{separator if i == 1 else ''}w{i}{'' if i == count else ' '}"


def _text_block(text: str) -> Block:
    return Block("text", split_words(text))


def _side_answer(request: Mapping[str, Any], prompt: str) -> str:
    """A short title-like answer for CLI side jobs such as naming the session.

    Those calls offer no tools and may demand structured output (the session title request
    sends `output_config.format` = json_schema with a `title` property), so the title is
    wrapped in a matching JSON object when a schema is given.
    """
    output_config = request.get("output_config")
    output_format = output_config.get("format") if isinstance(output_config, dict) else None
    output_format = output_format or request.get("output_format")
    title = _title(prompt)
    if isinstance(output_format, dict) and output_format.get("type") == "json_schema":
        return json.dumps(_schema_example(output_format.get("schema"), title), ensure_ascii=False)
    return title


def _schema_example(schema: Any, text: str) -> Any:
    """A minimal value of a JSON schema, using `text` for every string."""
    if not isinstance(schema, dict):
        return None
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties")
        items = properties.items() if isinstance(properties, dict) else []
        return {name: _schema_example(sub, text) for name, sub in items}
    if kind == "array":
        return []
    examples: dict[str, Any] = {"string": text, "integer": 0, "number": 0, "boolean": False}
    return examples.get(str(kind))


def _title(prompt: str) -> str:
    """The first few words of the prompt, or of its first `<tag>` section if it has one."""
    section = _TAGGED.search(prompt)
    source = section.group(2) if section else prompt
    words = re.sub(r"[^\w\s.'-]", " ", source).split()[:_TITLE_WORDS]
    return " ".join(words).capitalize() if words else "Scripted session"
