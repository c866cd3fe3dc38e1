"""storyflow-serving: the SageMaker inference serving contract shared by storyflow's model containers.

A container supplies a *service* (``name``, ``load()``, ``ready``, ``invoke(request) -> manifest``,
optionally ``validate(request)``); this library serves it: ``GET /ping`` (200 only once loaded),
``POST /invocations`` (JSON ``{input_uri, output_uri, params}``), extra GET routes, typed errors ->
HTTP status + ``{"error", "cause"}``, S3 I/O, SIGTERM drain, one JSON log object per line.
Stdlib + boto3 only; it never imports ``storyflow`` (the Lambda layer) or an engine.
"""

__version__ = "0.1.0"
