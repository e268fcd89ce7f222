"""A local ``mlserver start`` for examples, tests and benchmarks: free ports, bounded waits, stop.

Not for production. It leaves the repository as it is: its server settings (the repository's own
``settings.json``, with 127.0.0.1 and free ports) and its log go to a folder of its own, and it
runs MLServer as a child process in its own process group, so that stopping it stops its workers
too.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

#: Seconds between two looks at the server while waiting for it.
POLL_S = 0.25

#: The server settings that are LocalServer's whatever the repository's settings.json says:
#: where it listens (127.0.0.1, free ports).
OWN_SETTINGS = ("host", "http_port", "grpc_port", "metrics_port")


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


def repository_settings(repository: Path) -> dict[str, Any]:
    """The repository's own ``settings.json`` as a dict (empty if it has none).

    Raises
    ------
    ValueError
        The file is not a JSON object.
    """
    path = repository / "settings.json"
    if not path.is_file():
        return {}
    try:
        settings = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(settings, dict):
        raise ValueError(f"{path} must hold a JSON object. Received: {type(settings).__name__}.")
    return settings


def server_settings(
    repository: Path,
    work_folder: Path,
    parallel_workers: int | None,
    extra: dict[str, Any],
) -> dict[str, Any]:
    """The settings LocalServer starts MLServer with.

    The repository's ``settings.json`` (its ``server_name``, ``gzip_enabled``...), then
    127.0.0.1 and free ports over it (:data:`OWN_SETTINGS`), then ``extra`` over everything.
    ``parallel_workers`` is the argument if given, else the repository's, else 0. Metrics go to
    ``work_folder`` unless the repository's settings say where.
    """
    settings = repository_settings(repository)
    settings.update(
        host="127.0.0.1",
        http_port=free_port(),
        grpc_port=free_port(),
        metrics_port=free_port(),
    )
    settings.setdefault("metrics_dir", str(work_folder / "metrics"))
    settings.setdefault("debug", False)
    if parallel_workers is not None:
        settings["parallel_workers"] = parallel_workers
    settings.setdefault("parallel_workers", 0)
    settings.update(extra)
    return settings


def _launch_command(repository: Path, settings_file: Path) -> list[str]:
    """``mlserver start repository``, with the server settings read from ``settings_file``."""
    return [
        sys.executable,
        "-m",
        "ig_plugin.serving._launch",
        str(repository),
        str(settings_file),
    ]


class LocalServer:
    """``mlserver start`` on a model repository, on 127.0.0.1 and free ports.

    Use it as a context manager: entering starts the server and waits until every model in the
    repository is ready; leaving stops it (also when the block raises)::

        with LocalServer("models/") as server:
            requests.post(f"{server.url}/v2/models/digits-ig/infer", json=request)

    Nothing is written into ``repository``. The server's settings are the repository's own
    ``settings.json`` (``server_name``, ``gzip_enabled``...) with LocalServer's host and ports
    over it; they are written to a new temporary folder, with the server's metrics and, by
    default, its log.

    Parameters
    ----------
    repository
        A folder with one sub-folder (or more) holding a model-settings.json each, and
        optionally MLServer's ``settings.json``, which is read and left as it is.
    parallel_workers
        MLServer's ``parallel_workers``: 0 runs the models in the server process; N runs them in
        N worker processes (each loads every model). Default: the repository's
        ``settings.json``, else 0.
    ready_timeout
        Most seconds to wait for the server and its models.
    log_path
        Where the server's output goes; default ``mlserver.log`` in the temporary folder, which
        is then kept after :meth:`stop` so that the log can be read (else it is removed).
    settings
        More server settings; they override the repository's and LocalServer's.
    """

    def __init__(
        self,
        repository: str | os.PathLike,
        *,
        parallel_workers: int | None = None,
        ready_timeout: float = 300.0,
        log_path: str | os.PathLike | None = None,
        settings: dict[str, Any] | None = None,
    ) -> None:
        self.repository = Path(repository).resolve()
        self.parallel_workers = parallel_workers
        self.ready_timeout = ready_timeout
        # The log given, else (from start on) mlserver.log in the work folder.
        self._log_given = bool(log_path)
        self.log_path: Path | None = Path(log_path) if log_path else None
        self.extra_settings = dict(settings or {})
        self.http_port = self.grpc_port = 0
        self.work_folder: Path | None = None
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
        log_path = self.log_path
        if log_path is None or not log_path.exists():
            return ""
        return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])

    def _write_settings(self, work_folder: Path) -> Path:
        settings = server_settings(
            self.repository, work_folder, self.parallel_workers, self.extra_settings
        )
        self.http_port, self.grpc_port = int(settings["http_port"]), int(settings["grpc_port"])
        path = work_folder / "settings.json"
        path.write_text(json.dumps(settings, indent=2) + "\n")
        return path

    def start(self) -> LocalServer:
        """Start the server and wait until it and every model in the repository are ready.

        Raises
        ------
        RuntimeError
            The server stopped, or was not ready within ``ready_timeout`` seconds; it is stopped
            and the message ends with its last log lines.
        ValueError
            The repository's ``settings.json`` is not a JSON object.
        """
        self.work_folder = Path(tempfile.mkdtemp(prefix="ig_plugin-mlserver-"))
        try:
            settings_file = self._write_settings(self.work_folder)
        except BaseException:
            shutil.rmtree(self.work_folder, ignore_errors=True)
            self.work_folder = None
            raise
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
        if self.log_path is None or not self._log_given:
            self.log_path = self.work_folder / "mlserver.log"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                _launch_command(self.repository, settings_file),
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
        """Stop the server's process group: SIGTERM, then SIGKILL after ``timeout`` seconds.

        The temporary folder is removed, unless the log is in it.
        """
        process, self.process = self.process, None
        try:
            self._stop(process, timeout)
        finally:
            if self.work_folder is not None and self._log_given:
                shutil.rmtree(self.work_folder, ignore_errors=True)

    @staticmethod
    def _stop(process: subprocess.Popen | None, timeout: float) -> None:
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
