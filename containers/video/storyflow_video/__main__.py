from storyflow_video.cli import main

raise SystemExit(main())
