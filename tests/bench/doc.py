"""Where the benches write their tables: docs/benchmarks.md, each table between its own
pair of HTML-comment markers, replaced on every run (the prose around it is kept)."""

from __future__ import annotations

from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "benchmarks.md"


def write_block(start: str, end: str, text: str, heading: str | None) -> None:
    """Put ``text`` between the ``start`` and ``end`` markers of the doc. A doc without
    them gets the block at its end under ``heading``; with no heading, that is refused
    (a bench whose section must be written by hand first)."""
    doc = DOC.read_text()
    block = f"{start}\n{text}\n{end}"
    if start in doc and end in doc:
        head, rest = doc.split(start, 1)
        _, tail = rest.split(end, 1)
        doc = f"{head}{block}{tail}"
    elif heading is None:
        raise SystemExit(f"bench: {DOC} has no {start} ... {end} block")
    else:
        doc = doc.rstrip("\n") + f"\n\n{heading}\n\n{block}\n"
    DOC.write_text(doc)
