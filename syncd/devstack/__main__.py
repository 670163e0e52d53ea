"""``python -m syncd.devstack``: the same as ``syncd devstack``."""

from syncd.devstack.cli import main

raise SystemExit(main())
