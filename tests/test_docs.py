"""docs/providers.md is the reference normalize.py cites: its status table must be the code's."""

from __future__ import annotations

from pathlib import Path

from videos.normalize import STATUS_WORDS, TERMINAL

PROVIDERS = Path(__file__).resolve().parents[1] / "docs" / "providers.md"


def test_the_status_table_lists_exactly_the_words_normalize_knows():
    documented: dict[str, str] = {}
    for line in PROVIDERS.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0] in ("pending", "processing", *TERMINAL):
            documented.update(dict.fromkeys((word.strip() for word in cells[1].split(",")), cells[0]))
    assert documented == STATUS_WORDS
