"""``python -m storyflow_stereo`` is the same as the ``storyflow-stereo`` console script."""

from storyflow_stereo.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
