"""storyflow-stereo: the SageMaker async inference container that turns 2D video into side-by-side 3D.

Engines (``ENGINE`` env): ``depthwarp`` (CPU, no weights: heuristic depth + depth-image-based rendering)
and ``stereocrafter`` (GPU: DepthCrafter depth -> forward splatting -> SVD inpainting, weights from
``MODEL_DIR``). This package ships in its own image and never imports ``storyflow``.
"""

__version__ = "0.1.0"
