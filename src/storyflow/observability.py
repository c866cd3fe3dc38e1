"""The one place that builds Logger, Tracer and Metrics.

The metric namespace lives here (the template's POWERTOOLS_METRICS_NAMESPACE and every alarm on a storyflow
metric must equal it: tests/template/test_contracts.py); each function's service name is its folder name
under functions/, set as POWERTOOLS_SERVICE_NAME in the template.
"""

from aws_lambda_powertools import Logger, Metrics, Tracer

METRICS_NAMESPACE = "storyflow"

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace=METRICS_NAMESPACE)
