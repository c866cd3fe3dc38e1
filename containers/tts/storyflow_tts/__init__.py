"""storyflow-tts: text to narration with word-aligned subtitles, the SageMaker async container of storyflow.

Engines: ``kokoro`` (production, KPipeline + KModel from MODEL_DIR or /opt/ml/model, baked voice .pt files)
and ``espeak`` (CPU, no weights: espeak-ng through espeakng-loader, with its word events). Both give word
timings; the service writes narration.wav, narration.m4a, narration.srt, narration.vtt and words.json.
It never imports ``storyflow`` (the Lambda layer): it ships in its own image.
"""

__version__ = "0.1.0"
