from kd_trigger.cli import main

raise SystemExit(main())
