"""docs/security.md names tests that exist: a safeguard row cannot point at nothing."""

from __future__ import annotations

import re

from services.settings import REPO_ROOT

DOC = REPO_ROOT / "docs" / "security.md"
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)((?:::\w+)?)`|`::(\w+)`")


def test_every_test_the_security_doc_names_exists() -> None:
    missing = []
    current = ""
    for line in DOC.read_text().splitlines():
        for path, function, bare in REFERENCE.findall(line):
            if path:
                current = path
                assert (REPO_ROOT / path).is_file(), path
            name = (function or "").removeprefix("::") or bare
            if name and f"def {name}(" not in (REPO_ROOT / current).read_text():
                missing.append(f"{current}::{name}")
    assert missing == []


def test_every_hipaa_safeguard_and_owasp_item_has_a_row() -> None:
    text = DOC.read_text()
    for safeguard in ("(a)(1)", "(a)(2)(i)", "(a)(2)(ii)", "(a)(2)(iii)", "(a)(2)(iv)", "(b)"):
        assert f"| {safeguard} " in text, safeguard
    for safeguard in ("(c)(1)", "(d)", "(e)(1)"):
        assert f"| {safeguard} " in text, safeguard
    for item in range(1, 11):
        assert f"| API{item} " in text, item
