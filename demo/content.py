"""Text and tool results assembled from the corpus: prompts and responses with their
placeholders filled, ticket titles, cached MCP tool calls and sandbox query results.

The base seed fills placeholders in Python (``fill``); the bulk top-up passes the same
fragments to PostgreSQL as format() strings (``sql_template``).
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from demo.corpus import (
    BRANCHES,
    COMPANIES,
    EXCHANGES,
    FILES,
    FUNCS,
    MCP_TOOLS,
    PROJECTS,
    PROMPT_PREFIXES,
    PROMPT_SUFFIXES,
    RESPONSE_INTROS,
    RESPONSE_OUTROS,
    SANDBOX_QUERIES,
    SEARCH_TERMS,
    TABLES,
    WEB_URLS,
)

# The placeholders, in the order of their format() positions (%1$s is {func}, ...).
PLACEHOLDERS = ["func", "file", "module", "table", "n", "tests"]
# Seconds a tool's result stays cached (varied per entry among these).
CACHE_TTLS = [300, 900, 3600, 6 * 3600, 24 * 3600, 7 * 24 * 3600]


def fill(template: str, values: dict[str, str]) -> str:
    """Replace ``{name}`` placeholders; other braces (code in the text) stay as they are."""
    for name, value in values.items():
        template = template.replace("{" + name + "}", value)
    return template


def sql_template(text: str) -> str:
    """A fragment as a format() string: ``{func}`` becomes ``%1$s`` and so on."""
    text = text.replace("%", "%%")
    for position, name in enumerate(PLACEHOLDERS, start=1):
        text = text.replace("{" + name + "}", f"%{position}$s")
    return text


def fragment_values(rng: random.Random) -> dict[str, str]:
    file = rng.choice(FILES)
    return {
        "func": rng.choice(FUNCS),
        "file": file,
        "module": file.removesuffix(".py").replace("/", "."),
        "table": rng.choice(TABLES),
        "n": str(rng.randint(2, 6)),
        "tests": str(rng.randint(20, 400)),
    }


def exchange(rng: random.Random) -> tuple[str, str]:
    """One prompt and its response, assembled from the shared fragments."""
    prompt, response = EXCHANGES[rng.randrange(len(EXCHANGES))]
    values = fragment_values(rng)
    prompt = rng.choice(PROMPT_PREFIXES) + prompt + rng.choice(PROMPT_SUFFIXES)
    response = rng.choice(RESPONSE_INTROS) + response + rng.choice(RESPONSE_OUTROS)
    return fill(prompt, values), fill(response, values)


def sandbox_result(rng: random.Random, columns: list[str], now: datetime) -> dict[str, Any]:
    n_rows = 1 if columns == ["size"] else rng.randint(1, 8)
    rows = []
    for i in range(n_rows):
        row: list[Any] = []
        for col in columns:
            if col in {"n", "n_live_tup", "n_dead_tup", "pending", "subscribers", "items"}:
                row.append(rng.randint(0, 250_000))
            elif col in {"revenue", "avg_mrr"}:
                row.append(round(rng.uniform(40, 90_000), 2))
            elif col == "total_cents":
                row.append(rng.randint(1_000, 2_000_000))
            elif col == "day":
                row.append((now - timedelta(days=n_rows - i)).date().isoformat())
            elif col == "created_at":
                row.append((now - timedelta(minutes=rng.randint(1, 9000))).isoformat())
            elif col == "email":
                row.append(f"customer{rng.randint(1000, 99999)}@example.com")
            elif col == "id":
                row.append(rng.randint(1, 9_999_999))
            elif col == "size":
                row.append(f"{rng.randint(2, 900)} GB")
            else:
                row.append(
                    rng.choice(
                        {
                            "status": ["paid", "open", "void", "uncollectible", "draft"],
                            "relname": TABLES,
                            "country": ["DE", "FR", "NL", "GB", "PL", "ES", "IT", "SE"],
                            "plan": ["free", "starter", "pro", "enterprise"],
                        }.get(col, ["?"])
                    )
                )
        rows.append(row)
    return {"columns": columns, "rows": rows, "row_count": n_rows, "truncated": False}


def title(rng: random.Random) -> str:
    """A ticket or pull-request title: the first sentence of a prompt."""
    text = fill(rng.choice(EXCHANGES)[0], fragment_values(rng))
    return text.split(". ")[0].split("\n")[0].rstrip(".:")[:90]


def mcp_entry(rng: random.Random) -> tuple[str, dict[str, Any], dict[str, Any] | list]:
    """A tool name, its arguments and a plausible cached result."""
    tool = rng.choice(MCP_TOOLS)
    org = rng.choice(COMPANIES)[1].split(".")[0]
    repo = rng.choice(PROJECTS)[0]
    file = rng.choice(FILES)
    table = rng.choice(TABLES)
    if tool == "github.search_code":
        term = rng.choice(SEARCH_TERMS)
        args: dict[str, Any] = {"q": f"{term} repo:{org}/{repo}", "per_page": 30}
        n = rng.randint(0, 12)
        result: Any = {
            "total_count": n,
            "items": [
                {"path": rng.choice(FILES), "sha": f"{rng.getrandbits(160):040x}"}
                for _ in range(min(n, 3))
            ],
        }
    elif tool == "github.get_file_contents":
        args = {"owner": org, "repo": repo, "path": file, "ref": rng.choice(BRANCHES)}
        result = {
            "encoding": "utf-8",
            "size": rng.randint(400, 40_000),
            "sha": f"{rng.getrandbits(160):040x}",
            "content": f'"""{file}"""\n\nimport logging\n\nlog = logging.getLogger(__name__)\n',
        }
    elif tool == "github.list_pull_requests":
        args = {"owner": org, "repo": repo, "state": rng.choice(["open", "closed"])}
        result = [
            {"number": rng.randint(10, 4000), "title": title(rng)} for _ in range(rng.randint(0, 4))
        ]
    elif tool == "postgres.query":
        sql, columns = rng.choice(SANDBOX_QUERIES)
        args = {"sql": sql, "database": rng.choice(["analytics", "app", "warehouse"])}
        result = sandbox_result(rng, columns, timezone.now())
    elif tool == "postgres.describe_table":
        args = {"schema": "public", "table": table}
        result = {
            "columns": [
                {"name": "id", "type": "bigint", "nullable": False},
                {"name": "customer_id", "type": "bigint", "nullable": False},
                {"name": "status", "type": "text", "nullable": False},
                {"name": "amount_cents", "type": "integer", "nullable": True},
                {"name": "created_at", "type": "timestamp with time zone", "nullable": False},
            ][: rng.randint(3, 5)],
            "indexes": [f"{table}_pkey", f"{table}_created_at_idx"],
        }
    elif tool == "filesystem.read_file":
        args = {"path": f"/workspace/{repo}/{file}"}
        result = {"bytes": rng.randint(300, 60_000), "truncated": False, "content": "..."}
    elif tool == "filesystem.list_directory":
        folder = file.split("/")[0]
        args = {"path": f"/workspace/{repo}/{folder}"}
        result = {"entries": sorted({f.split("/")[-1] for f in rng.sample(FILES, 4)})}
    elif tool == "web.fetch":
        url = rng.choice(WEB_URLS)
        args = {"url": url, "max_length": rng.choice([5000, 20000])}
        result = {"status": 200, "content_type": "text/html; charset=utf-8", "chars": 18_000}
    elif tool == "web.search":
        query = rng.choice(
            [
                "postgres skip locked queue",
                "httpx retry transport",
                "django bulk_create ignore_conflicts returning",
                "cloud sql max_connections per vcpu",
                "stripe webhook signature tolerance",
            ]
        )
        args = {"query": query, "num_results": rng.choice([5, 10])}
        result = {"results": [{"title": query.title(), "url": rng.choice(WEB_URLS)}]}
    else:
        key = f"{rng.choice(['BILL', 'PLAT', 'DATA', 'OPS'])}-{rng.randint(100, 4999)}"
        args = {"key": key}
        result = {
            "key": key,
            "summary": title(rng),
            "status": rng.choice(["To Do", "In Progress", "In Review", "Done"]),
        }
    return tool, args, result
