from storyflow_tts.cli import main

raise SystemExit(main())
