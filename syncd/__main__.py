from syncd.app.cli.main import main

raise SystemExit(main())
