"""The README is the package's long description: its links are absolute (they work on an
installed user's `pip show`, PyPI, or a copy), and each one names a file this checkout has."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[2]
REPOSITORY = "https://github.com/opsflow/opsflow/blob/main/"
README = (ROOT / "README.md").read_text()


def test_no_link_is_relative() -> None:
    relative = re.findall(r"\]\(((?!https?://|#|mailto:)[^)\s]+)\)", README)
    assert relative == [], f"make these absolute ({REPOSITORY}<path>): {relative}"


def test_every_link_into_the_repository_names_a_file_it_has() -> None:
    paths = re.findall(rf"\]\({re.escape(REPOSITORY)}([^)#?\s]+)", README)
    assert paths, "the README links into the repository"
    missing = [path for path in paths if not (ROOT / path).exists()]
    assert missing == []
