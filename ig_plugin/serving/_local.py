"""A local ``mlserver start`` for examples, tests and benchmarks: free ports, bounded waits, stop.

Not for production: it writes the folder's ``settings.json`` (127.0.0.1, free ports) and runs
MLServer as a child process in its own process group, so that stopping it stops its workers too.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

#: Seconds between two looks at the server while waiting for it.
POLL_S = 0.25


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def model_names(repository: Path) -> list[str]:
    """The names in every model-settings.json below ``repository``."""
    names = []
    for path in sorted(repository.rglob("model-settings.json")):
        names.append(json.loads(path.read_text())["name"])
    return names


def _status(url: str) -> int | None:
    """The HTTP status of GET ``url``, or None if nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError:  # refused, reset, timed out: not up yet
        return None


def _mlserver_command() -> list[str]:
    """The ``mlserver`` command of this Python: its script, or the CLI's entry point."""
    script = Path(sys.executable).with_name("mlserver")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from mlserver.cli.main import main; main()"]


class LocalServer:
    """``mlserver start`` on a model repository, on 127.0.0.1 and free ports.

    Use it as a context manager: entering starts the server and waits until every model in the
    repository is ready; leaving stops it (also when the block raises)::

        with LocalServer("models/") as server:
            requests.post(f"{server.url}/v2/models/digits-ig/infer", json=request)

    Parameters
    ----------
    repository
        A folder with one sub-folder (or more) holding a model-settings.json each. Its
        ``settings.json`` is written by :meth:`start`.
    parallel_workers
        MLServer's ``parallel_workers``: 0 runs the models in the server process; N runs them in
        N worker processes (each loads every model).
    ready_timeout
        Most seconds to wait for the server and its models.
    log_path
        Where the server's output goes; default ``mlserver.log`` in ``repository``.
    settings
        More server settings for ``settings.json`` (they override the defaults above).
    """

    def __init__(
        self,
        repository: str | os.PathLike,
        *,
        parallel_workers: int = 0,
        ready_timeout: float = 300.0,
        log_path: str | os.PathLike | None = None,
        settings: dict[str, Any] | None = None,
    ) -> None:
        self.repository = Path(repository).resolve()
        self.parallel_workers = parallel_workers
        self.ready_timeout = ready_timeout
        self.log_path = Path(log_path) if log_path else self.repository / "mlserver.log"
        self.extra_settings = dict(settings or {})
        self.http_port = self.grpc_port = 0
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """The server's HTTP address, e.g. ``http://127.0.0.1:41234``."""
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_target(self) -> str:
        """The server's gRPC address, e.g. ``127.0.0.1:41235``."""
        return f"127.0.0.1:{self.grpc_port}"

    def log_tail(self, lines: int = 40) -> str:
        """The last lines the server wrote."""
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def _write_settings(self) -> None:
        settings = {
            "host": "127.0.0.1",
            "http_port": free_port(),
            "grpc_port": free_port(),
            "metrics_port": free_port(),
            "metrics_dir": str(self.repository / ".metrics"),
            "parallel_workers": self.parallel_workers,
            "debug": False,
            **self.extra_settings,
        }
        self.http_port, self.grpc_port = int(settings["http_port"]), int(settings["grpc_port"])
        (self.repository / "settings.json").write_text(json.dumps(settings, indent=2) + "\n")

    def start(self) -> LocalServer:
        """Start the server and wait until it and every model in the repository are ready.

        Raises
        ------
        RuntimeError
            The server stopped, or was not ready within ``ready_timeout`` seconds; it is stopped
            and the message ends with its last log lines.
        """
        self._write_settings()
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [*_mlserver_command(), "start", str(self.repository)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # its own process group: stop() reaches the workers
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        pending = ["/v2/health/ready"] + [
            f"/v2/models/{name}/ready" for name in model_names(self.repository)
        ]
        while pending:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"mlserver exited with code {self.process.returncode} before it was ready:\n"
                    f"{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"mlserver was not ready within {self.ready_timeout:g} s (waiting for "
                    f"{pending[0]}):\n{self.log_tail()}"
                )
            if _status(self.url + pending[0]) == 200:
                pending.pop(0)
            else:
                time.sleep(POLL_S)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the server's process group: SIGTERM, then SIGKILL after ``timeout`` seconds."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        except ProcessLookupError:
            return
        # Whatever is left of the group (a worker that outlived the server, or all of it after
        # the timeout) is killed.
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        process.wait(timeout=10.0)

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
