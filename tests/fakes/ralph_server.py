"""Run Ralph's own LRS app (ralph.api:app) under uvicorn, on its file backend, appending.

Started by tests/fakes/ralph_lrs.py with the Python of `.venv-ralph` (Ralph's pins cannot share
our virtualenv). Ralph 5.1's file backend opens its file in CREATE mode by default and so
refuses to write to it a second time; the LRS must append, so we set
`FSLRSBackend.default_operation_type = BaseOperationType.APPEND` before the app starts.

    python ralph_server.py HOST PORT
"""

from __future__ import annotations

import sys

import uvicorn
from ralph.backends.data.base import BaseOperationType
from ralph.backends.lrs.fs import FSLRSBackend

FSLRSBackend.default_operation_type = BaseOperationType.APPEND

if __name__ == "__main__":
    uvicorn.run("ralph.api:app", host=sys.argv[1], port=int(sys.argv[2]), log_level="warning")
