"""``python -m storyflow_backend`` == the ``storyflow-backend`` console script."""

from storyflow_backend.cli import main

raise SystemExit(main())
