"""The README's "Where things live" map lists exactly the folders of the tracked tree."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path, PurePosixPath

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
HEADING = "## Where things live"
# A map line: "- `events/domain/` — what is in it", indented or not.
ENTRY = re.compile(r"^\s*- `(?P<folder>[^`]+/)` — \S")


def mapped_folders(readme: str) -> list[str]:
    """The folders the map lists, in order, without their trailing slash."""
    assert HEADING in readme, f"README.md has no {HEADING!r} section"
    section = readme.split(HEADING, 1)[1].split("\n## ", 1)[0]
    return [m["folder"].rstrip("/") for m in map(ENTRY.match, section.splitlines()) if m]


def tracked_folders() -> set[str]:
    """Every folder below the root that holds a tracked file, directly or deeper."""
    try:
        listing = subprocess.run(
            ["git", "ls-files", "-z"],
            cwd=REPO_ROOT,
            capture_output=True,
            check=True,
            text=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"not a git checkout: {exc}")
    folders: set[str] = set()
    for name in filter(None, listing.split("\0")):
        folders.update(str(parent) for parent in PurePosixPath(name).parents)
    folders.discard(".")
    return folders


def test_the_readme_map_lists_every_tracked_folder_once_and_nothing_else() -> None:
    listed = mapped_folders((REPO_ROOT / "README.md").read_text())
    tracked = tracked_folders()

    duplicated = sorted({f for f in listed if listed.count(f) > 1})
    missing = sorted(tracked - set(listed))
    extra = sorted(set(listed) - tracked)
    assert not (duplicated or missing or extra), (
        f"README.md {HEADING!r} is out of date with `git ls-files`:\n"
        f"  folders with tracked files but no map line: {missing}\n"
        f"  map lines for folders with no tracked file: {extra}\n"
        f"  folders listed more than once: {duplicated}\n"
        "Each folder gets one line like: - `events/domain/` — what is in it"
    )
