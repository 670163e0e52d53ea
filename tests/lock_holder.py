"""Another process that is the writer of a state file (as ``syncd run`` would be) until released."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_HOLDER = """
import sys
from syncd.engine.state import StateStore
store = StateStore.open(sys.argv[1])
print("locked", flush=True)
sys.stdin.read()  # hold the lock until the test closes our stdin (or kills us)
store.close()
"""


@contextmanager
def holder_process(path: Path, *, expect_clean_exit: bool = False) -> Iterator[subprocess.Popen[str]]:
    """Yields once the child holds the lock; on exit closes its stdin (it then releases and exits).

    A test may kill the child itself; ``expect_clean_exit`` asserts it exited 0 on its own.
    """
    process = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "locked"  # EOF ("") if the child failed
        yield process
    finally:
        if process.poll() is None and process.stdin is not None:
            process.stdin.close()
        try:
            code = process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait(timeout=10)
        if expect_clean_exit and code != 0:
            raise AssertionError("the lock holder did not exit cleanly")
