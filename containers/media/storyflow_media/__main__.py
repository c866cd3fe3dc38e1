from storyflow_media.cli import main

raise SystemExit(main())
