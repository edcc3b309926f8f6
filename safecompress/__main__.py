from safecompress.cli import main

raise SystemExit(main())
