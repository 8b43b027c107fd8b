from webcare.cli import main

raise SystemExit(main())
