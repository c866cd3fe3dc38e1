"""Per-request costs of moto's server that answer the same for every request: computed once.

moto's dispatcher finds the backend of every request under one process-wide lock, and for each host it
lists moto's package directory (about 200 `stat`s) and tries each backend's URL patterns. The answer
depends on the host alone (moto's modules and URL patterns never change while it runs), so it is
memoised per host: the same backend for the same request, found once, and no request waits behind
another's directory listing. Behaviour is unchanged; only the repeated work is gone.

moto reads a service's botocore model (for routing and serialising its answers) on the service's first
request with a new `Loader` each time, and a new Loader lists botocore's whole data directory first
(about 4,000 `stat`s and 600 directory listings: 0.3 s, under the GIL every handler needs) before it
opens the one file. Here one Loader serves moto's model reads (it caches the listing and the models it
read, the same read-only files), and the listing is read once in the background at deploy
(`warm_service_models`), so no request pays for it.

moto's Step Functions interpreter parses a state machine's definition with ANTLR when it is created and
again for every execution (0.1-0.3 s for the stereo workflow, under the GIL). The parse tree of a
definition is only ever read, so it is kept per definition text; each execution still gets its own
program (the interpreter's components, which hold per-execution state) built afresh from it by a new
`Preprocessor`, exactly as moto builds it. A definition with syntax errors is parsed (and refused) anew
each time.

Three more costs of every request (about a tenth of a DynamoDB call's CPU, client and server in this
process: 6.8 -> 6.1 ms for a GetItem, measured interleaved): moto lists a response class's methods with
`inspect.getmembers` to find the action's handler (the classes never change: listed once per class); it
draws a 52-character request id with 52 `random.choice` calls (one `choices` call of the same generator,
still seedable); and its serializer works out, for every attribute of every answer, which names to look the
attribute up by (the answer is the same for the same key, shape and class of object, unless the object
carries its own aliases in a `Meta`: those are always worked out anew).
"""

from __future__ import annotations

import functools
import string
import threading
from collections.abc import Callable, Iterable
from typing import Any

from storyflow_local.patching import Patches

_loader: Any = None
_loader_lock = threading.Lock()


def shared_loader() -> Any:
    """The one moto `Loader` (botocore's, with moto's extras) that moto's service model reads go through."""
    global _loader
    with _loader_lock:
        if _loader is None:
            from moto.core.loaders import create_loader

            _loader = create_loader()
        return _loader


def _load_service_model(service_name: str, model_name: str) -> dict[str, Any]:
    """`moto.core.utils._load_service_model` through the shared Loader (moto caches what it answers)."""
    model: dict[str, Any] = shared_loader().load_service_model(service_name, model_name)
    return model


def stack_services(resource_types: Iterable[str]) -> list[str]:
    """The botocore service names of a stack's resource types (`AWS::SNS::Topic` -> sns), and each one's
    `-runtime` service where botocore has one (`AWS::SageMaker::Endpoint` -> sagemaker-runtime)."""
    known = set(shared_loader().list_available_services("service-2"))
    names: list[str] = []
    for resource_type in resource_types:
        parts = resource_type.split("::")
        if len(parts) == 3 and parts[0] == "AWS":
            names += [n for n in (parts[1].lower(), parts[1].lower() + "-runtime") if n in known]
    return list(dict.fromkeys(names))


def warm_service_models(services: Iterable[str] = ()) -> threading.Thread:
    """In the background: the shared Loader's listing of the models moto reads (service and paginators),
    then moto's parsed model of each of `services` (what each one's first request would read)."""
    import moto.core.utils

    def run() -> None:
        loader = shared_loader()
        for type_name in ("service-2", "paginators-1"):
            loader.list_available_services(type_name)
        for name in stack_services(services):
            moto.core.utils.get_service_model(name)  # moto's own cache: the same model its requests get

    thread = threading.Thread(target=run, name="moto-models", daemon=True)
    thread.start()
    return thread


_TREES_KEPT = 64


def cached_asl_parse() -> Any:
    """`AmazonStateLanguageParser.parse` with the ANTLR parse tree kept per definition text."""
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

    original = AmazonStateLanguageParser.parse
    trees: dict[str, Any] = {}
    lock = threading.Lock()

    def parse(definition: str) -> tuple[Any, Any]:
        tree = trees.get(definition)
        if tree is None:
            program, tree = original(definition)  # raises ASLParserException on syntax errors
            with lock:
                if len(trees) >= _TREES_KEPT:
                    trees.pop(next(iter(trees)))
                trees[definition] = tree
            return program, tree
        return Preprocessor().visit(tree), tree  # a fresh program: nothing of another execution's

    return staticmethod(parse)


def listed_once(original: Callable[[Any], list[str]]) -> Callable[[Any], list[str]]:
    """`method_names_from_class` answered once per class (a copy each time: callers may change theirs)."""
    names: dict[Any, list[str]] = {}

    def method_names_from_class(clazz: Any) -> list[str]:
        found = names.get(clazz)
        if found is None:
            found = names[clazz] = original(clazz)
        return list(found)

    return method_names_from_class


_REQUEST_ID_CHARACTERS = string.ascii_letters + string.digits


def request_id(headerdict: dict[str, Any] | None = None) -> str:
    """`gen_amzn_requestid_long`: 52 letters and digits from moto's (seedable) generator, in one call."""
    from moto.moto_api._internal import mock_random

    req_id = "".join(mock_random.choices(_REQUEST_ID_CHARACTERS, k=52))
    if isinstance(headerdict, dict):
        headerdict["x-amzn-requestid"] = req_id
    return req_id


def remembered_keys(original: Callable[[Any, Any], Iterable[str]]) -> Callable[[Any, Any], Iterable[str]]:
    """`XFormedAttributePicker.get_possible_keys`, remembered per (class of object, key, shape, its parent)
    for moto's default alias providers and objects without a `Meta` of aliases."""
    from moto.core.serialize import DEFAULT_ALIAS_PROVIDERS

    known: dict[tuple[type, str, int, int], tuple[Any, Any, tuple[str, ...]]] = {}

    @functools.wraps(original)
    def get_possible_keys(picker: Any, context: Any) -> Iterable[str]:
        obj, shape = context.obj, context.shape
        if picker.alias_providers is not DEFAULT_ALIAS_PROVIDERS or hasattr(obj, "Meta"):
            return original(picker, context)
        parent = getattr(shape, "parent", None)
        key = (type(obj), context.key, id(shape), id(parent))
        entry = known.get(key)
        if entry is None or entry[0] is not shape or entry[1] is not parent:
            # the shapes are kept with the answer, so their ids are never another shape's
            entry = known[key] = (shape, parent, tuple(original(picker, context)))
        return entry[2]

    return get_possible_keys


def install(patches: Patches) -> None:
    import moto.core.responses
    import moto.core.utils
    from moto.core.serialize import XFormedAttributePicker
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    patches.set(moto.core.utils, "_load_service_model", _load_service_model)
    patches.set(AmazonStateLanguageParser, "parse", cached_asl_parse())
    patches.set(
        moto.core.responses, "method_names_from_class", listed_once(moto.core.utils.method_names_from_class)
    )
    patches.set(moto.core.responses, "gen_amzn_requestid_long", request_id)
    patches.set(
        XFormedAttributePicker,
        "get_possible_keys",
        remembered_keys(XFormedAttributePicker.get_possible_keys),
    )

    original = DomainDispatcherApplication.get_backend_for_host
    cache: dict[tuple[int, str | None], tuple[Any, Any]] = {}  # (id(app), host) -> (app, backend)
    lock = threading.Lock()

    def get_backend_for_host(app: Any, host: str | None) -> Any:
        key = (id(app), host)
        entry = cache.get(key)
        if entry is not None and entry[0] is app:
            return entry[1]
        found = original(app, host)
        with lock:
            cache[key] = (app, found)  # the app is kept, so its id is never another app's
        return found

    patches.set(DomainDispatcherApplication, "get_backend_for_host", get_backend_for_host)
