"""A real LRS for the tests: Ralph, in its own virtualenv, on a free port of 127.0.0.1.

    with RalphLrs(tmp_path) as lrs:            # credentials written by `ralph auth -w`
        settings = replace(settings, xapi_endpoint=lrs.endpoint, ...)
        lrs.statements()                       # read back through its xAPI API
        lrs.stop(); lrs.start()                # the same store, served again

Ralph runs `ralph.api:app` on its file backend set to append (see ralph_server.py). When
`.venv-ralph` is missing (`make test` creates it), the tests that need an LRS skip, saying so.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
RALPH_PYTHON = ROOT / ".venv-ralph" / "bin" / "python"
RALPH_CLI = ROOT / ".venv-ralph" / "bin" / "ralph"
SERVER = Path(__file__).with_name("ralph_server.py")
USERNAME = "learnbot"
PASSWORD = "lrs-test-password-1"
XAPI_HEADERS = {"X-Experience-API-Version": "1.0.3"}


def require_ralph() -> None:
    """Skip the calling test, with the reason, when Ralph is not installed."""
    if not RALPH_PYTHON.exists():
        pytest.skip("Ralph is not installed in .venv-ralph (make .venv-ralph/.installed)")


def free_port() -> int:
    """A TCP port of 127.0.0.1 nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RalphLrs:
    """One Ralph server and its store (a directory), started and stopped at will."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        require_ralph()
        self.directory = directory
        self.port = port or free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}/xAPI"
        self.username, self.password = USERNAME, PASSWORD
        self.store = directory / "lrs" / "fs_lrs.jsonl"
        self._process: subprocess.Popen[bytes] | None = None
        (directory / "lrs").mkdir(parents=True, exist_ok=True)
        self._env = {
            **os.environ,
            "RALPH_APP_DIR": str(directory / "app"),
            "RALPH_RUNSERVER_BACKEND": "fs",
            "RALPH_BACKENDS__LRS__FS__DEFAULT_DIRECTORY_PATH": str(directory / "lrs"),
        }
        if not (directory / "app" / "auth.json").exists():
            agent = ["-A", USERNAME, "http://127.0.0.1"]
            subprocess.run(
                [str(RALPH_CLI), "auth", "-u", USERNAME, "-p", PASSWORD, "-s", "all", "-w", *agent],
                env=self._env,
                check=True,
                capture_output=True,
            )

    def start(self, timeout: float = 30.0) -> None:
        """Serve, and wait until the LRS answers."""
        log = (self.directory / "ralph.log").open("ab")
        self._process = subprocess.Popen(
            [str(RALPH_PYTHON), str(SERVER), "127.0.0.1", str(self.port)],
            env=self._env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"Ralph exited: see {self.directory / 'ralph.log'}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/__heartbeat__").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("Ralph did not answer in time")

    def stop(self) -> None:
        """Stop serving (at once, as a crash would); the store stays."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    def __enter__(self) -> RalphLrs:
        self.start()
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self.stop()

    def statements(self, home_page: str | None = None) -> list[dict[str, Any]]:
        """Every statement the LRS holds (of one installation's learners), read from its API."""
        found: list[dict[str, Any]] = []
        url: str | None = f"{self.endpoint}/statements?limit=500"
        with httpx.Client(auth=(self.username, self.password), headers=XAPI_HEADERS) as client:
            while url:
                body = client.get(url, timeout=60).raise_for_status().json()
                found += body["statements"]
                more = body.get("more")
                url = f"http://127.0.0.1:{self.port}{more}" if more else None
        if home_page is None:
            return found
        return [s for s in found if s["actor"].get("account", {}).get("homePage") == home_page]

    def stored_lines(self) -> list[dict[str, Any]]:
        """The statements as the file backend wrote them (every write, duplicates included)."""
        if not self.store.exists():
            return []
        return [json.loads(line) for line in self.store.read_text().splitlines() if line]


def validate_with_ralph(statements: list[dict[str, Any]]) -> list[str]:
    """Errors Ralph's own xAPI models (BaseXapiStatement) find in `statements`, one per line."""
    require_ralph()
    script = (
        "import json, sys\n"
        "from ralph.models.xapi.base.statements import BaseXapiStatement\n"
        "for number, line in enumerate(sys.stdin):\n"
        "    try:\n"
        "        BaseXapiStatement.model_validate(json.loads(line))\n"
        "    except Exception as exc:\n"
        "        print(number, str(exc).replace(chr(10), ' '))\n"
    )
    done = subprocess.run(
        [str(RALPH_PYTHON), "-c", script],
        input="\n".join(json.dumps(s) for s in statements).encode(),
        capture_output=True,
        check=True,
    )
    return done.stdout.decode().splitlines()
