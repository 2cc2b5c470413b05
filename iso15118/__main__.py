from iso15118.cli import main

raise SystemExit(main())
