"""API Gateway (REST) on 127.0.0.1: the template's `Api` events, served with proxy events.

Routes come from the SAM template itself: every `AWS::Serverless::Function` event of `Type: Api`
(`Path`, `Method`, `RestApiId` or the implicit `ServerlessRestApi`). Each REST API gets its own port;
its URL is `http://127.0.0.1:<port>/<stage>` (requests without the stage prefix work too). A request
becomes the REST proxy event (`resource`, `path`, `httpMethod`, headers and multi-value headers,
query strings, `pathParameters` incl. `{proxy+}`, `body`, `isBase64Encoded`, `requestContext`), the
function's `{statusCode, headers, multiValueHeaders, body, isBase64Encoded}` becomes the response.
Authorizers are not enforced; a bearer JWT's claims are passed as `requestContext.authorizer.claims`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from storyflow_local import dashboard
from storyflow_local.context import LocalContext
from storyflow_local.deploy import Deployment
from storyflow_local.lambda_adapter import LambdaAdapter
from storyflow_local.server import HOST

log = logging.getLogger("storyflow_local.api")

IMPLICIT_API = "ServerlessRestApi"


@dataclass(frozen=True)
class Route:
    api: str  # logical id of the RestApi
    path: str  # e.g. /jobs/{job_id}
    method: str  # GET, POST, ..., ANY
    function: str  # logical id of the function

    @property
    def segments(self) -> list[str]:
        return [s for s in self.path.strip("/").split("/") if s]

    def match(self, parts: list[str]) -> dict[str, str] | None:
        params: dict[str, str] = {}
        segments = self.segments
        for index, segment in enumerate(segments):
            if segment.startswith("{") and segment.endswith("+}"):
                rest = parts[index:]
                if not rest:
                    return None
                params[segment[1:-2]] = "/".join(rest)
                return params
            if index >= len(parts):
                return None
            if segment.startswith("{") and segment.endswith("}"):
                params[segment[1:-1]] = unquote(parts[index])
            elif segment != parts[index]:
                return None
        return params if len(parts) == len(segments) else None

    def specificity(self) -> tuple[int, int]:
        literal = sum(1 for s in self.segments if not s.startswith("{"))
        greedy = any(s.endswith("+}") for s in self.segments)
        return (0 if greedy else 1, literal)


def api_routes(template: dict[str, Any]) -> list[Route]:
    routes = []
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        for event in ((resource.get("Properties") or {}).get("Events") or {}).values():
            if event.get("Type") != "Api":
                continue
            props = event.get("Properties") or {}
            api = props.get("RestApiId", IMPLICIT_API)
            if isinstance(api, dict):
                api = api.get("Ref", IMPLICIT_API)
            routes.append(Route(str(api), str(props["Path"]), str(props["Method"]).upper(), logical_id))
    return routes


def find_route(routes: list[Route], method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    """The most specific route for (method, path): literal segments beat parameters beat `{proxy+}`."""
    parts = [p for p in path.split("/") if p]
    matches = [
        (route, params)
        for route in routes
        if route.method in (method, "ANY") and (params := route.match(parts)) is not None
    ]
    if not matches:
        return None
    matches.sort(key=lambda m: (m[0].specificity(), m[0].method != "ANY"), reverse=True)
    return matches[0]


def path_exists(routes: list[Route], path: str) -> bool:
    parts = [p for p in path.split("/") if p]
    return any(route.match(parts) is not None for route in routes)


def _jwt_claims(headers: dict[str, str]) -> dict[str, Any] | None:
    token = headers.get("Authorization") or headers.get("authorization") or ""
    token = token.split(" ", 1)[-1]
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, binascii.Error):
        return None
    return claims if isinstance(claims, dict) else None


def proxy_event(
    route: Route,
    params: dict[str, str],
    method: str,
    path: str,
    query: str,
    headers: list[tuple[str, str]],
    body: bytes,
    stage: str,
    api_id: str,
    source_ip: str,
    account_id: str,
) -> dict[str, Any]:
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in headers:
        single[name] = value
        multi.setdefault(name, []).append(value)
    query_pairs = parse_qsl(query, keep_blank_values=True)
    query_single: dict[str, str] = {}
    query_multi: dict[str, list[str]] = {}
    for name, value in query_pairs:
        query_single[name] = value
        query_multi.setdefault(name, []).append(value)
    text: str | None
    encoded = False
    if not body:
        text = None
    else:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            text, encoded = base64.b64encode(body).decode(), True
    now = dt.datetime.now(dt.UTC)
    request_id = str(uuid.uuid4())
    context: dict[str, Any] = {
        "accountId": account_id,
        "apiId": api_id,
        "resourceId": route.function,
        "resourcePath": route.path,
        "httpMethod": method,
        "stage": stage,
        "path": f"/{stage}{path}",
        "protocol": "HTTP/1.1",
        "requestId": request_id,
        "extendedRequestId": request_id,
        "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "requestTimeEpoch": int(now.timestamp() * 1000),
        "domainName": single.get("Host", HOST),
        "identity": {
            "sourceIp": source_ip,
            "userAgent": single.get("User-Agent"),
            "accountId": None,
            "caller": None,
            "user": None,
            "userArn": None,
            "accessKey": None,
            "cognitoIdentityId": None,
            "cognitoIdentityPoolId": None,
            "cognitoAuthenticationType": None,
            "cognitoAuthenticationProvider": None,
            "apiKey": None,
            "apiKeyId": None,
        },
    }
    claims = _jwt_claims(single)
    if claims is not None:
        context["authorizer"] = {"claims": claims}
    return {
        "resource": route.path,
        "path": path,
        "httpMethod": method,
        "headers": single or None,
        "multiValueHeaders": multi or None,
        "queryStringParameters": query_single or None,
        "multiValueQueryStringParameters": query_multi or None,
        "pathParameters": params or None,
        "stageVariables": None,
        "requestContext": context,
        "body": text,
        "isBase64Encoded": encoded,
    }


class ApiServer:
    """One REST API on its own port."""

    def __init__(self, shim: HttpShim, api: str, stage: str, api_id: str, routes: list[Route]) -> None:
        self.shim = shim
        self.api = api
        self.stage = stage
        self.api_id = api_id
        self.routes = routes
        self.httpd = ThreadingHTTPServer((HOST, 0), self._handler())
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self.thread = threading.Thread(target=self.httpd.serve_forever, name=f"api-{api}", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/{self.stage}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _serve(self) -> None:
                server.serve(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve

        return Handler

    def serve(self, request: BaseHTTPRequestHandler) -> None:
        started = time.monotonic()
        url = urlsplit(request.path)
        path = url.path or "/"
        if dashboard.is_dashboard_path(path):  # the dashboard, on the API's own origin (no CORS, no sign-in)
            request.close_connection = request.command not in ("GET", "HEAD")  # a body is never read
            dist = dashboard.default_dist(self.shim.ctx.config.root)
            dashboard.serve(request, path, dist, self.stage, self.shim.ctx.endpoint_url)
            return
        if path == f"/{self.stage}" or path.startswith(f"/{self.stage}/"):
            path = path[len(self.stage) + 1 :] or "/"
        try:
            body = read_body(request)
        except ValueError as error:
            self._reply(request, 400, {"Content-Type": "application/json"}, _gateway_error(str(error)))
            return
        except OverflowError as error:
            self._reply(request, 413, {"Content-Type": "application/json"}, _gateway_error(str(error)))
            return
        method = request.command
        found = find_route(self.routes, method, path)
        if found is None:
            if method == "OPTIONS" and path_exists(self.routes, path):
                self._reply(
                    request,
                    200,
                    {
                        "Access-Control-Allow-Origin": "*",
                        "Access-Control-Allow-Methods": "*",
                        "Access-Control-Allow-Headers": "*",
                    },
                    b"",
                )
                return
            self._reply(
                request,
                403,
                {
                    "Content-Type": "application/json",
                    "x-amzn-ErrorType": "MissingAuthenticationTokenException",
                },
                b'{"message":"Missing Authentication Token"}',
            )
            return
        route, params = found
        event = proxy_event(
            route,
            params,
            method,
            path,
            url.query,
            list(request.headers.items()),
            body,
            self.stage,
            self.api_id,
            request.client_address[0],
            self.shim.ctx.account_id,
        )
        status, headers, payload = self.shim.call(route, event)
        self._reply(request, status, headers, payload)
        log.info(
            "%s %s → %s %d (%.0fms)",
            method,
            request.path,
            route.function,
            status,
            (time.monotonic() - started) * 1000,
        )

    @staticmethod
    def _reply(request: BaseHTTPRequestHandler, status: int, headers: dict[str, Any], body: bytes) -> None:
        request.send_response(status)
        for name, value in headers.items():
            for item in value if isinstance(value, list) else [value]:
                request.send_header(name, str(item))
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(body)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


class HttpShim:
    def __init__(self, ctx: LocalContext, lambdas: LambdaAdapter) -> None:
        self.ctx = ctx
        self.lambdas = lambdas
        self.servers: dict[str, ApiServer] = {}
        self.functions: dict[str, str] = {}  # function logical id -> physical name

    def install(self) -> None:
        return None

    def on_deployed(self, deployment: Deployment) -> None:
        routes = api_routes(deployment.template)
        by_api: dict[str, list[Route]] = {}
        for route in routes:
            by_api.setdefault(route.api, []).append(route)
            self.functions[route.function] = deployment.physical_id(route.function)
        for api, api_routes_ in by_api.items():
            stage = self._stage(deployment, api)
            api_id = deployment.resources[api].physical_id if api in deployment.resources else api
            server = ApiServer(self, api, stage, api_id, api_routes_)
            server.start()
            self.servers[api] = server
            log.info("API %s (%d routes) on %s", api, len(api_routes_), server.url)

    @staticmethod
    def _stage(deployment: Deployment, api: str) -> str:
        if api == IMPLICIT_API:
            return "Prod"
        props = deployment.template["Resources"].get(api, {}).get("Properties") or {}
        stage = props.get("StageName", "Prod")
        resolved = deployment.resolve(stage) if isinstance(stage, dict) else stage
        return str(resolved)

    @property
    def urls(self) -> dict[str, str]:
        return {api: server.url for api, server in self.servers.items()}

    def call(self, route: Route, event: dict[str, Any]) -> tuple[int, dict[str, Any], bytes]:
        from moto.awslambda.models import lambda_backends

        error = (502, {"Content-Type": "application/json"}, b'{"message": "Internal server error"}')
        try:
            fn = lambda_backends[self.ctx.account_id][self.ctx.region].get_function(
                self.functions[route.function]
            )
            result = self.lambdas.invoke(fn, event)
        except Exception:
            log.exception("API call to %s failed", route.function)
            return error
        if result.errored:
            return error
        try:
            response = json.loads(result.payload)
            status = int(response.get("statusCode", 200))
        except (ValueError, AttributeError, TypeError):
            log.warning("%s returned a malformed proxy response: %.200s", route.function, result.payload)
            return error
        headers: dict[str, Any] = dict(response.get("headers") or {})
        for name, values in (response.get("multiValueHeaders") or {}).items():
            headers[name] = list(values)
        body = response.get("body") or ""
        payload = base64.b64decode(body) if response.get("isBase64Encoded") else str(body).encode()
        return status, headers, payload

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()
        self.servers.clear()


# API Gateway's payload limit (REST APIs): a larger request never reaches the function.
MAX_REQUEST_BYTES = 10 * 1024 * 1024


def read_body(request: BaseHTTPRequestHandler) -> bytes:
    """The request's body, sized by Content-Length or sent with chunked transfer encoding (API Gateway
    accepts both). ValueError for a malformed body framing, OverflowError past MAX_REQUEST_BYTES."""
    if "chunked" in request.headers.get("Transfer-Encoding", "").lower():
        chunks: list[bytes] = []
        total = 0
        while True:
            line = request.rfile.readline(1026)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise ValueError(f"malformed chunk size line {line[:40]!r}") from None
            if size == 0:
                while request.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            total += size
            if total > MAX_REQUEST_BYTES:
                raise OverflowError(f"request body over {MAX_REQUEST_BYTES} bytes")
            chunks.append(request.rfile.read(size))
            request.rfile.readline(8)  # the CRLF after each chunk
    length = int(request.headers.get("Content-Length") or 0)
    if length > MAX_REQUEST_BYTES:
        raise OverflowError(f"request body over {MAX_REQUEST_BYTES} bytes")
    return request.rfile.read(length) if length > 0 else b""


def _gateway_error(message: str) -> bytes:
    """API Gateway's own error body (the function never ran)."""
    return json.dumps({"message": message}).encode()
