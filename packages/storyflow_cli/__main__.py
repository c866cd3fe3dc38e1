"""`python -m storyflow_cli ...` is `storyflow ...`."""

from storyflow_cli.commands import main

main()
