"""The Bot API emulator in a process of its own (as Telegram is another machine), driven by
one-line JSON commands on its stdin; each benchmark script serves it with `--serve`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


class EmulatorProcess:
    def __init__(self, script: str, *args: object, cwd: Path, stop_timeout: float = 10) -> None:
        self.process = subprocess.Popen(
            [sys.executable, script, "--serve", *(str(a) for a in args)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=cwd,
        )
        self.stop_timeout = stop_timeout
        self.url = self._read()["url"]

    def _read(self) -> dict:
        assert self.process.stdout is not None
        return json.loads(self.process.stdout.readline())

    def command(self, line: str) -> dict:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        self.process.wait(self.stop_timeout)
