"""The repository stands on its own: no file points outside it, and the README links the
architecture document that contributors need."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Spelled in pieces, so this file does not match itself.
OUTSIDE = re.compile(re.escape("..") + r"/shared\b|" + "shared" + re.escape("/DESIGN"))


def _tracked_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, check=True
    ).stdout.decode()
    return [ROOT / name for name in listed.split("\0") if name]


def test_no_tracked_file_refers_to_a_design_outside_the_repository() -> None:
    offenders = []
    for path in _tracked_files():
        if not path.is_file():
            continue
        text = path.read_bytes().decode("utf-8", errors="replace")
        offenders += [
            f"{path.relative_to(ROOT)}:{number}"
            for number, line in enumerate(text.splitlines(), 1)
            if OUTSIDE.search(line)
        ]
    assert not offenders, f"references to files outside the repository: {offenders}"


def test_the_readme_links_the_architecture_document() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "(docs/architecture.md)" in readme
    architecture = (ROOT / "docs" / "architecture.md").read_text()
    for heading in ("## The flow", "## Folder layout", "## Import rules", "## Decisions"):
        assert heading in architecture
    assert "## How to extend" in architecture
