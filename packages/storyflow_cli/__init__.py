"""The `storyflow` CLI: an HTTP client for the jobs API (`client`) and the typer commands on top (`commands`).

Never deployed: it runs on a developer's machine against a deployed stack or the local cloud.
"""
