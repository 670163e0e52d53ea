from syncd.app.cli import main

raise SystemExit(main())
