"""On-demand backend container: an SQLite-backed app supervised with S3 snapshot sync.

The supervisor (``storyflow-backend``) restores the newest good version of the database from a
versioned S3 bucket, runs the app as a child process, uploads a consistent snapshot (SQLite backup
API) whenever the database changed, and takes a final snapshot when it is stopped.

This package ships in its own image: it must not import ``storyflow``.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
