"""storyflow-video: the text/image → video ECS task container (engines: wan, tiny, preview)."""

__version__ = "0.1.0"
