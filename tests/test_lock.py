"""The tests run on exactly the lock, and the lock covers every dependency pyproject names."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)", re.MULTILINE)


def pins(lock: str) -> dict[str, str]:
    text = (ROOT / "requirements" / lock).read_text(encoding="utf-8")
    return {canonicalize_name(name): version for name, version in PIN.findall(text)}


def test_every_locked_package_is_installed_at_its_locked_version() -> None:
    installed = {
        canonicalize_name(dist.metadata["Name"]): dist.version for dist in metadata.distributions()
    }
    wrong = {
        name: (version, installed.get(name))
        for name, version in pins("dev.txt").items()
        if installed.get(name) != version
    }
    assert wrong == {}, "installed versions differ from the lock (run `make test` to reinstall)"


def test_the_lock_names_every_dependency_of_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["postgres"]]
    runtime, dev = pins("runtime.txt"), pins("dev.txt")
    missing = [req for req in wanted if canonicalize_name(Requirement(req).name) not in runtime]
    missing += [
        req
        for req in project["optional-dependencies"]["test"]
        if canonicalize_name(Requirement(req).name) not in dev
    ]
    assert missing == [], "pyproject.toml changed since the lock: run `make lock`"


def test_runtime_and_dev_locks_agree_on_every_shared_package() -> None:
    runtime, dev = pins("runtime.txt"), pins("dev.txt")
    assert {name: v for name, v in runtime.items() if dev.get(name) != v} == {}


def test_every_pin_carries_a_hash() -> None:
    for lock in ("runtime.txt", "dev.txt", "ralph.txt"):
        entries = re.split(r"\n(?=[A-Za-z0-9])", (ROOT / "requirements" / lock).read_text())
        unhashed = [e.split()[0] for e in entries if "==" in e.split()[0] and "--hash=" not in e]
        assert unhashed == [], lock


def test_ralph_has_a_lock_of_its_own_that_names_it() -> None:
    assert pins("ralph.txt").get("ralph-malph") == "5.1.0"
    assert "requests" in pins("ralph.txt")
