"""storyflow: serverless GPU media-generation pipelines on AWS."""

__version__ = "0.1.0"
