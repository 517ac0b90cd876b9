"""Fixtures: a writable copy of the small `civic` course and its complete fr/ar catalogs."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@dataclass(frozen=True)
class Workspace:
    """A lessons directory and a locales directory that a test may break."""

    lessons: Path
    locales: Path

    @property
    def course(self) -> Path:
        """The `civic` course directory."""
        return self.lessons / "civic"

    def edit(self, name: str, old: str, new: str) -> Path:
        """Replace `old` (which must occur) by `new` in a course file."""
        path = self.course / name
        text = path.read_text(encoding="utf-8")
        assert old in text, f"{old!r} not in {path}"
        path.write_text(text.replace(old, new, 1), encoding="utf-8")
        return path


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    """A fresh copy of the fixture course and catalogs under tmp_path."""
    shutil.copytree(FIXTURES / "lessons", tmp_path / "lessons")
    shutil.copytree(FIXTURES / "locales", tmp_path / "locales")
    return Workspace(tmp_path / "lessons", tmp_path / "locales")
