from deconflict.cli import main

raise SystemExit(main())
