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


README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_role_table_is_the_code_table():
    from teams.roles import LEAST_ROLE, RANK, Action, Role

    text = README.read_text()
    table = text.split("<!-- roles table:", 1)[1].split("<!-- end roles table -->", 1)[0]
    rows = [line.strip().strip("|").split("|") for line in table.splitlines() if line.startswith("| ")]
    header, *body = ([cell.strip() for cell in row] for row in rows)
    roles = [Role(label.lower()) for label in header[1:]]
    documented = {
        label: {role for role, cell in zip(roles, cells, strict=True) if cell == "yes"}
        for label, *cells in body
    }
    expected = {
        Action(action).label: {role for role in Role if RANK[role] >= RANK[least]}
        for action, least in LEAST_ROLE.items()
    }
    assert documented == expected
