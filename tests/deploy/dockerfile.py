"""Read the project's Dockerfile, so tests can run its steps as written.

Only what this Dockerfile uses: continuation lines, comments, ``ENV k=v ...`` without
quotes, ``RUN`` shell lines, and an exec-form ``CMD``.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

DOCKERFILE = Path(__file__).resolve().parents[2] / "Dockerfile"
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    result = []
    for line in re.sub(r"\\\n", " ", path.read_text()).splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), " ".join(rest.split())))
    return result


def final_stage(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """The instructions after the last FROM: what the running image is made of."""
    steps = instructions(path)
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from + 1 :]


def image_env(path: Path = DOCKERFILE) -> dict[str, str]:
    """The ENV values of the final stage."""
    env: dict[str, str] = {}
    for keyword, args in final_stage(path):
        if keyword == "ENV":
            for pair in shlex.split(args):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def cmd(path: Path = DOCKERFILE) -> list[str]:
    """The exec-form CMD of the final stage."""
    (args,) = [args for keyword, args in final_stage(path) if keyword == "CMD"]
    return json.loads(args)


@dataclass(frozen=True)
class Command:
    env: dict[str, str]  # VAR=value prefixes of the shell command
    argv: list[str]


def run_step(containing: str, path: Path = DOCKERFILE) -> Command:
    """The one ``&&``-joined command of a final-stage RUN line that contains a word."""
    found = [
        part.strip()
        for keyword, args in final_stage(path)
        if keyword == "RUN"
        for part in args.split("&&")
        if containing in part
    ]
    (command,) = found
    words = shlex.split(command)
    env = {}
    while words and _ASSIGNMENT.match(words[0]):
        key, _, value = words.pop(0).partition("=")
        env[key] = value
    return Command(env, words)
