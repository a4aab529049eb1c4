"""``python -m fogverse`` is the ``fogverse`` command."""

from fogverse.cli import main

raise SystemExit(main())
