"""``python -m ig_plugin``: the ``ig-plugin`` command."""

from ig_plugin.cli import main

raise SystemExit(main())
