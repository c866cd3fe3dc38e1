"""The one place that builds Logger, Tracer and Metrics.

The metric namespace lives here (the template's POWERTOOLS_METRICS_NAMESPACE and every alarm on a storyflow
metric must equal it: tests/template/test_contracts.py); each function's service name is its folder name
under functions/, set as POWERTOOLS_SERVICE_NAME in the template.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, overload

from aws_lambda_powertools import Logger, Metrics, Tracer

METRICS_NAMESPACE = "storyflow"

Handler = TypeVar("Handler", bound=Callable[..., Any])
PATCHED_MODULES = ("botocore",)


class LazyTracer:
    """Powertools' Tracer, built on first use, and only where tracing is on.

    `Tracer()` imports the X-Ray SDK and patches botocore whatever its `disabled` says, and outside Lambda
    the SDK's recorder builds its centralized sampler (two botocore X-Ray clients) at import: measured in
    bench/cold_start.py. Here nothing X-Ray is imported until a traced handler is first called, and then only
    when Powertools would trace (in Lambda, POWERTOOLS_TRACE_DISABLED unset, not SAM local): there the real
    Tracer is built as before (botocore patched, the `## handler` subsegment with ColdStart and Service
    annotations, response and error metadata). Where tracing is off the handler is called as it is, which is
    what the disabled Tracer amounts to. Any other attribute builds the real Tracer and delegates to it.
    """

    def __init__(self) -> None:
        self._tracer: Tracer | None = None
        self._enabled: bool | None = None

    @property
    def enabled(self) -> bool:
        if self._enabled is None:
            self._enabled = not Tracer._is_tracer_disabled()
        return self._enabled

    @property
    def real(self) -> Tracer:
        if self._tracer is None:
            # Only botocore is patched (every AWS call a subsegment, as before): patch_all also tries a dozen
            # libraries a Lambda layer of ours never has, and sqlite3, which no function uses.
            self._tracer = Tracer(patch_modules=PATCHED_MODULES)
        return self._tracer

    @overload
    def capture_lambda_handler(self, lambda_handler: Handler) -> Handler: ...

    @overload
    def capture_lambda_handler(
        self,
        lambda_handler: None = None,
        *,
        capture_response: bool | None = None,
        capture_error: bool | None = None,
    ) -> Callable[[Handler], Handler]: ...

    def capture_lambda_handler(
        self,
        lambda_handler: Handler | None = None,
        *,
        capture_response: bool | None = None,
        capture_error: bool | None = None,
    ) -> Handler | Callable[[Handler], Handler]:
        if lambda_handler is None:
            return functools.partial(
                self.capture_lambda_handler, capture_response=capture_response, capture_error=capture_error
            )
        undecorated = lambda_handler
        traced: list[Callable[..., Any]] = []

        @functools.wraps(undecorated)
        def handler(event: Any, context: Any, **kwargs: Any) -> Any:
            if not self.enabled:
                return undecorated(event, context, **kwargs)
            if not traced:
                traced.append(
                    self.real.capture_lambda_handler(
                        undecorated, capture_response=capture_response, capture_error=capture_error
                    )
                )
            return traced[0](event, context, **kwargs)

        return handler  # type: ignore[return-value]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.real, name)


logger = Logger()
tracer = LazyTracer()
metrics = Metrics(namespace=METRICS_NAMESPACE)
