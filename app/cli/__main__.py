"""`python -m app.cli …` runs the `cowlab` command from a checkout without installing it."""

from app.cli.main import main

raise SystemExit(main())
