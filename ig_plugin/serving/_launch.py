"""``mlserver start`` with server settings read from a file outside the model repository.

``python -m ig_plugin.serving._launch REPOSITORY SETTINGS_FILE`` does what ``mlserver start
REPOSITORY`` does (the same models, the same custom-runtime import path, the same logging and
event loop), except that the server's settings come from ``SETTINGS_FILE``. :class:`LocalServer`
writes there the repository's own ``settings.json`` merged with its host and ports, so that it
never writes into the repository: ``mlserver start`` reads its settings from the repository's
``settings.json`` alone, where they win over ``MLSERVER_*`` variables, so neither a variable nor
a second folder can give it other ports.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from mlserver.cli.serve import load_settings
from mlserver.logging import configure_logger
from mlserver.server import MLServer
from mlserver.settings import Settings
from mlserver.utils import install_uvloop_event_loop


async def serve(repository: str, settings_file: str) -> None:
    """Serve the models of ``repository`` with the server settings in ``settings_file``."""
    # MLServer's own loading: it lists the repository's models and puts the repository on
    # sys.path (custom runtimes may live there). Only its server settings are replaced.
    _, models = await load_settings(repository)
    settings = Settings.model_validate(json.loads(Path(settings_file).read_text()))
    settings.model_repository_root = repository
    await MLServer(settings).start(models)


def main(argv: list[str] | None = None) -> None:
    arguments = sys.argv[1:] if argv is None else argv
    if len(arguments) != 2:
        raise SystemExit("usage: python -m ig_plugin.serving._launch REPOSITORY SETTINGS_FILE")
    # As mlserver's command line does before it starts a server.
    configure_logger()
    install_uvloop_event_loop()
    asyncio.run(serve(*arguments))


if __name__ == "__main__":
    main()
