"""The text the demo rows are made of, read once (at import) from the files beside this.

Shared by the base seed (Python) and the bulk top-up (SQL arrays), so both write the
same kinds of text. Records come back as tuples in the order the builders unpack them.
Fragments may hold the placeholders {func} {file} {module} {table} {n} {tests}
(demo.content fills them); any other braces are code in the text.

- placeholders.json: values for {func}, {file} and {table};
- framing.json: what may come before or after a prompt and a response;
- exchanges.txt: prompt/response pairs (index i of one belongs to index i of the other);
- sandbox.json: SQL the sandbox ran, with its result columns or its error;
- tools.json: MCP tool names, code-search terms and documentation URLs;
- gateway.json: models, final statuses, clients, sandbox images, branches and service
  callers of agent sessions (``[value, weight]`` pairs where a share matters);
- companies.json, people.json, projects.json: the tenants, their people and projects;
- user_agents.json: browsers and CLI clients;
- metrics.json: system metrics (base, amplitude over the day, noise, tags);
- statements.json: normalised statements as pg_stat_statements shows them (share of
  calls, mean ms, rows per call).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PROMPT_MARKER = "\n=== prompt\n"
RESPONSE_MARKER = "\n=== response\n"


def _json(name: str) -> Any:
    return json.loads((HERE / name).read_text(encoding="utf-8"))


def _records(items: list[dict[str, Any]], *keys: str) -> list[tuple]:
    return [tuple(item[key] for key in keys) for item in items]


def _pairs(items: list[list[Any]]) -> list[tuple[Any, int]]:
    return [(value, weight) for value, weight in items]


def _exchanges(name: str) -> list[tuple[str, str]]:
    """The pairs of a file of "=== prompt" / "=== response" sections (see its header)."""
    text = (HERE / name).read_text(encoding="utf-8").removesuffix("\n")
    exchanges = []
    for section in text.split(PROMPT_MARKER)[1:]:  # [0] is the header
        prompt, response = section.split(RESPONSE_MARKER)
        exchanges.append((prompt, response))
    return exchanges


_placeholders = _json("placeholders.json")
FUNCS: list[str] = _placeholders["func"]
FILES: list[str] = _placeholders["file"]
TABLES: list[str] = _placeholders["table"]

_framing = _json("framing.json")
PROMPT_PREFIXES: list[str] = _framing["prompt_prefixes"]
PROMPT_SUFFIXES: list[str] = _framing["prompt_suffixes"]
RESPONSE_INTROS: list[str] = _framing["response_intros"]
RESPONSE_OUTROS: list[str] = _framing["response_outros"]

EXCHANGES: list[tuple[str, str]] = _exchanges("exchanges.txt")

_sandbox = _json("sandbox.json")
SANDBOX_QUERIES: list[tuple[str, list[str]]] = _records(_sandbox["queries"], "sql", "columns")
SANDBOX_ERRORS: list[tuple[str, str]] = _records(_sandbox["errors"], "sql", "error")

_tools = _json("tools.json")
MCP_TOOLS: list[str] = _tools["mcp_tools"]
SEARCH_TERMS: list[str] = _tools["search_terms"]
WEB_URLS: list[str] = _tools["web_urls"]

_gateway = _json("gateway.json")
MODELS_WEIGHTED: list[tuple[str, int]] = _pairs(_gateway["models"])
FINAL_STATUSES_WEIGHTED: list[tuple[str, int]] = _pairs(_gateway["final_statuses"])
CLIENT_VERSIONS: list[str] = _gateway["client_versions"]
CLIENT_OS: list[str] = _gateway["client_os"]
SANDBOX_IMAGES: list[str] = _gateway["sandbox_images"]
BRANCHES: list[str] = _gateway["branches"]
SERVICE_CALLERS: list[str] = _gateway["service_callers"]

# (name, domain, subscription plan value, max users, active, number of users)
COMPANIES: list[tuple[str, str, str, int, bool, int]] = _records(
    _json("companies.json"), "name", "domain", "plan", "max_users", "active", "users"
)
_people = _json("people.json")
FIRST_NAMES: list[str] = _people["first_names"]
LAST_NAMES: list[str] = _people["last_names"]
DEPARTMENTS_WEIGHTED: list[tuple[str, int]] = _pairs(_people["departments"])
TECH_DEPARTMENTS: frozenset[str] = frozenset(_people["tech_departments"])
PROJECTS: list[tuple[str, str]] = _records(_json("projects.json"), "name", "description")

USER_AGENTS: list[str] = _json("user_agents.json")
METRICS: list[tuple[str, float, float, float, dict[str, str]]] = _records(
    _json("metrics.json"), "name", "base", "amplitude", "noise", "tags"
)
DEMO_STATEMENTS: list[tuple[str, float, float, float]] = _records(
    _json("statements.json"), "query", "share", "mean_ms", "rows_per_call"
)
