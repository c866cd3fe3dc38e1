"""storyflow media container: keyframe-aligned chunking and reassembly of stereo jobs.

Pure media code (`chunk`, `reassemble`) works on local files with PyAV only; `cli` adds S3 IO.
This package ships in its own image and never imports `storyflow`.
"""

__version__ = "0.1.0"
