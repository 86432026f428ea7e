"""What each command-line command does; ``__main__`` parses the flags and calls one of these."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from router.catalog import Catalog, CatalogError, Provider, load_catalog
from router.catalog.schema import BudgetSpec
from router.catalog.vertex import PROJECT_ENV, REGION_ENV, VertexAccess
from router.settings import Settings
from router.telemetry.logging import configure_logging
from router.telemetry.tracing_env import tracing_problem, tracing_summary

EXIT_BAD_CONFIG = 2
EXIT_PORT_BUSY = 3
# Where each wire kind lives on the simulated providers' server.
MOCK_PREFIX = {
    "openai": "/openai/v1",
    "anthropic": "/anthropic",
    "gemini": "/gemini/v1beta",
    "azure": "/azure",  # the resource endpoint: the adapter adds /openai/v1 or /openai/deployments
    "bedrock": "/bedrock",  # the runtime endpoint: the adapter adds /model/{id}/converse
    "vertex": "/vertex",  # the host: the adapter adds /v1/projects/{project}/locations/{region}/...
}
DEMO_KEY = "demo-key-not-secret"
DEMO_PROJECT = "demo-project"


def _load(settings: Settings) -> Catalog | None:
    try:
        return load_catalog(settings.catalog_path, settings.environ)
    except CatalogError as exc:
        print(f"router: {exc}", file=sys.stderr)
        return None


def check(settings: Settings) -> int:
    catalog = _load(settings)
    if catalog is None:
        return EXIT_BAD_CONFIG
    print(f"{settings.catalog_path}: OK")
    print(
        f"  {len(catalog.providers)} providers, {len(catalog.models)} models, {len(catalog.aliases)} aliases"
    )
    for provider in catalog.providers.values():
        count = sum(1 for m in catalog.models.values() for v in m.views() if v.provider == provider.name)
        where = provider.base_url or (
            "(endpoint from AWS_REGION)"
            if provider.aws is not None
            else f"(endpoint from {provider.base_url_env})"
        )
        print(
            f"  provider {provider.name:<10} {provider.kind:<9} {where}  {count} models, "
            f"{_provider_state(provider)}"
        )
    several = [
        f"{m.id} ({', '.join(v.provider for v in m.deployments)})"
        for m in catalog.models.values()
        if m.deployments
    ]
    if several:
        print(f"  deployments: {'; '.join(several)}")
    cached = [
        f"{m.id} ({m.auto_cache.ttl}, from {m.auto_cache.min_tokens} tokens)"
        for m in catalog.models.values()
        if m.auto_cache is not None
    ]
    if cached:
        print(f"  auto_cache: {', '.join(cached)}")
    print(f"  {_access_summary(settings, catalog)}")
    print(f"  {_budget_summary(catalog)}")
    print(f"  {_cache_summary(settings, catalog)}")
    return 0


def _budget_summary(catalog: Catalog) -> str:
    access = catalog.access
    budgets = [
        *((f"key {key.name}", key.budget) for key in access.keys),
        ("every other key", access.defaults.budget),
        ("the router", access.global_.budget),
        *((f"model {name}", spec.budget) for name, spec in access.model_limits.items()),
    ]
    shown = [f"{who} {_amounts(budget)}" for who, budget in budgets if budget is not None]
    if not shown:
        return (
            "budgets: none (access: budget: {daily_usd, monthly_usd} on keys, defaults, global, model_limits)"
        )
    return "budgets (UTC days and months): " + "; ".join(shown)


def _amounts(budget: BudgetSpec) -> str:
    amounts = ((budget.daily_usd, "day"), (budget.monthly_usd, "month"))
    return ", ".join(f"${amount:g}/{per}" for amount, per in amounts if amount is not None)


def _cache_summary(settings: Settings, catalog: Catalog) -> str:
    spec = catalog.cache
    ttl_s = settings.cache_ttl_s or (spec.ttl_s if spec.enabled else 0)  # the environment wins
    if not ttl_s:
        return "response cache: off (cache.enabled: true or ROUTER_CACHE_TTL_S turns it on)"
    where = "in Redis" if settings.redis_url else f"in memory, at most {spec.max_entries} answers"
    return f"response cache: on, answers kept {ttl_s}s {where}, each up to {spec.max_entry_bytes} bytes"


def _provider_state(provider: Provider) -> str:
    """What a provider lacks before it can be called (each variable not set), or that it has it all."""
    if provider.missing:
        state = f"not configured: {provider.remedy()}"
    elif provider.vertex is not None:
        state = "ready"
    elif provider.api_key_env is None:
        state = "no key needed"
    else:
        state = f"key set ({provider.api_key_env})"
    if provider.aws is not None:
        return _aws_state(provider, state)
    if provider.vertex is not None:
        return f"{_vertex_summary(provider.vertex)}; {state}"
    access = provider.azure
    if access is None:
        return state
    version = f" {access.api_version}" if access.api_version else ""
    return f"api {access.api}{version}, credential as {access.auth}; {state}"


def _aws_state(provider: Provider, state: str) -> str:
    """A Bedrock provider's region and where its credentials come from (never their values)."""
    aws = provider.aws
    assert aws is not None
    region = f"region {aws.region}" if aws.region else "no region"
    source = aws.source or "no AWS credentials found"
    if provider.missing:
        return f"{region}, {source}; {state}"
    if aws.kind == "chain":
        from router.providers._aws import chain_method  # needs router[aws], which is installed here

        found, how = chain_method(aws)
        if not found:
            return f"{region}, {source}, {how}; not usable until the AWS chain gives credentials"
        source = f"{source}, {how}"
    return f"{region}, {source}; ready"


def _vertex_summary(access: VertexAccess) -> str:
    """A Vertex AI provider's project, region and where its credentials come from (never their value)."""
    project = f"project {access.project}" if access.project else "no project"
    region = f"region {access.region}" if access.region else "no region"
    return f"{access.describe()} for {project}, {region}"


def _access_summary(settings: Settings, catalog: Catalog) -> str:
    from router.access import build_keyring

    keys = build_keyring(catalog, settings.environ)
    if not keys.declared:
        line = "access: open (no API keys; set ROUTER_API_KEY or declare keys in access.keys)"
    else:
        active = ", ".join(keys.names) or "none"
        line = f"access: API keys required; active: {active}"
    if keys.ops_declared:
        line += "; ops routes need the ops key"
    for warning in keys.warnings:
        line += f"\n  warning: {warning}"
    return line


def explain(
    settings: Settings, model: str, prompt: str, max_tokens: int | None, tools: bool, stream: bool
) -> int:
    """Print the routing plan for a chat request built from the flags, as JSON; calls nothing."""
    import msgspec

    from router.clock import SystemClock
    from router.errors import RouterError
    from router.routing import Engine
    from router.routing.explain import explain as explain_plan
    from router.types import ChatRequest, Message, Tool

    catalog = _load(settings)
    if catalog is None:
        return EXIT_BAD_CONFIG
    request = ChatRequest(
        model=model,
        messages=[Message(role="user", content=prompt)],
        max_tokens=max_tokens,
        stream=stream,
        tools=[Tool(type="function")] if tools else None,
    )
    try:
        plan = explain_plan(Engine(catalog, {}, SystemClock()), request)
    except RouterError as exc:
        print(f"router: {exc.message}", file=sys.stderr)
        return 1
    print(msgspec.json.format(msgspec.json.encode(plan), indent=2).decode())
    return 0


def serve(settings: Settings) -> int:
    configure_logging(settings.log_level, settings.log_format)
    catalog = _load(settings)
    if catalog is None:
        return EXIT_BAD_CONFIG
    problem = tracing_problem(settings.environ)
    if problem is not None:
        print(f"router: {problem}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    if port_in_use(settings.host, settings.port):
        print(busy_port_message(settings, "serve"), file=sys.stderr)
        return EXIT_PORT_BUSY
    _announce(settings, catalog)
    return _run_granian(settings)


def _announce(settings: Settings, catalog: Catalog) -> None:
    # Each provider still waiting for something, once, with what to do about it.
    missing = [f"{p.name} ({p.remedy()})" for p in catalog.providers.values() if p.missing]
    print(
        f"router: serving {len(catalog.models)} models on http://{settings.host}:{settings.port}/v1 "
        f"({settings.workers} worker{'s' if settings.workers != 1 else ''})",
        file=sys.stderr,
    )
    if missing:
        print(
            f"router: providers not configured (their models answer 503): {'; '.join(missing)}",
            file=sys.stderr,
        )
    for warning in startup_warnings(settings, catalog):
        print(f"router: warning: {warning}", file=sys.stderr)
    tracing = tracing_summary(settings.environ)
    if tracing is not None:
        print(f"router: {tracing}", file=sys.stderr)


def startup_warnings(settings: Settings, catalog: Catalog) -> list[str]:
    """What an operator must know before trusting this deployment's limits and its exposure."""
    from router.access import build_keyring
    from router.settings import redact_url
    from router.store.backend import PER_WORKER_NOTE

    warnings = []
    keys = build_keyring(catalog, settings.environ)
    if not keys.declared and settings.host not in ("127.0.0.1", "localhost", "::1"):
        warnings.append(
            f"no API keys are configured and the router listens on {settings.host}: anyone who can reach "
            "it may use it (set ROUTER_API_KEY or declare keys in the catalog's access section)"
        )
    if settings.workers > 1 and not settings.redis_url:
        warnings.append(PER_WORKER_NOTE.format(n=settings.workers))
    if settings.redis_url:
        print(f"router: shared state in Redis ({redact_url(settings.redis_url)})", file=sys.stderr)
    return warnings


def _server_class() -> type:
    """Granian's server, except that SIGHUP reloads the catalog inside each worker (keeping breaker
    state, refusing a bad file) instead of respawning the workers."""
    from granian.server import MPServer

    class RouterServer(MPServer):
        def _reload(self, spawn_target: object, target_loader: object) -> None:
            self.reload_signal = False
            self.main_loop_interrupt.clear()
            for worker in list(self.wrks):
                pid = getattr(getattr(worker, "inner", None), "pid", None)
                if pid:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGHUP)

    return RouterServer


def port_in_use(host: str, port: int) -> bool:
    """Whether something listens on ``host:port`` already. Granian binds with SO_REUSEPORT, so a second
    router would otherwise share the port with the first and take half its connections."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # Connections of an earlier run waiting out TIME_WAIT do not make the port busy; a listener does.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def busy_port_message(settings: Settings, command: str) -> str:
    other = settings.port + 1
    make = {"demo": f"`PORT={other} make demo` or ", "serve": f"`PORT={other} make run` or "}.get(command, "")
    return (
        f"router: port {settings.port} on {settings.host} is already in use (another router or program "
        f"listens there); stop it, or pick another port: {make}`python -m router {command} --port {other}`"
    )


def _run_granian(settings: Settings) -> int:
    from granian.constants import HTTPModes, Interfaces, Loops
    from granian.http import HTTP1Settings

    # Worker processes rebuild their settings from the environment.
    os.environ.update({k: v for k, v in settings.to_env().items() if k.startswith("ROUTER_")})
    metrics_dir = settings.metrics_dir
    made_dir = settings.workers > 1 and not metrics_dir
    if made_dir:
        metrics_dir = tempfile.mkdtemp(prefix="router-metrics-")
    if metrics_dir:
        # Set before prometheus-client is imported (here or in a worker): it reads it once, at import.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        from router.telemetry.metrics import prepare_multiprocess_dir

        prepare_multiprocess_dir(metrics_dir)
    server = _server_class()(
        "router.app:app_from_env",
        factory=True,
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=settings.workers,
        loop=Loops.uvloop,
        # HTTP/1 only: in auto mode the server waits for a connection's first bytes to tell HTTP/2
        # from HTTP/1 with no time limit, so an idle connection would be held open forever.
        http=HTTPModes.http1,
        http1_settings=HTTP1Settings(header_read_timeout=int(settings.header_timeout_s * 1000)),
        log_enabled=True,
        log_access=False,
        backlog=2048,
    )
    try:
        server.serve()
    finally:
        if made_dir and metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def mock(settings: Settings) -> int:
    from router.mock.server import serve_forever

    if settings.port and port_in_use(settings.host, settings.port):
        print(busy_port_message(settings, "mock"), file=sys.stderr)
        return EXIT_PORT_BUSY
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_forever(settings.host, settings.port))
    return 0


def demo(settings: Settings) -> int:
    """Simulated providers on a free loopback port, and the router in front of them."""
    configure_logging(settings.log_level, settings.log_format)
    catalog = _load(settings)
    if catalog is None:
        return EXIT_BAD_CONFIG
    if port_in_use(settings.host, settings.port):
        print(busy_port_message(settings, "demo"), file=sys.stderr)
        return EXIT_PORT_BUSY
    mock_port = free_port()
    mock_process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "router", "mock", "--port", str(mock_port)],
        stdout=subprocess.DEVNULL,
    )
    try:
        if not wait_for_port("127.0.0.1", mock_port, timeout=15.0):
            print("router: the simulated providers did not start", file=sys.stderr)
            return 1
        env = demo_environment(catalog, f"http://127.0.0.1:{mock_port}")
        demo_settings = Settings.from_env(
            {**os.environ, **env},
            catalog_path=settings.catalog_path,
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
            log_format=settings.log_format,
        )
        os.environ.update(env)
        print(
            f"router: demo providers simulated on http://127.0.0.1:{mock_port} (Ctrl-C stops the demo)",
            file=sys.stderr,
        )
        body = '{"model":"gpt-mini","messages":[{"role":"user","content":"hi"}]}'
        print(
            f"router: try  curl http://{settings.host}:{settings.port}/v1/chat/completions "
            f"-H 'content-type: application/json' -d '{body}'",
            file=sys.stderr,
        )
        # Announced with the demo's environment: every provider has its placeholder key there.
        _announce(demo_settings, load_catalog(settings.catalog_path, {**os.environ, **env}))
        return _run_granian(demo_settings)
    finally:
        mock_process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            mock_process.wait(timeout=5)


def demo_environment(catalog: Catalog, mock_url: str) -> dict[str, str]:
    """Environment that points every provider at the simulated one, with a placeholder key."""
    env: dict[str, str] = {}
    for provider in catalog.providers.values():
        env[provider.base_url_env] = mock_url + MOCK_PREFIX[provider.kind]
        if provider.api_key_env:
            env[provider.api_key_env] = DEMO_KEY
        if provider.kind == "bedrock":
            from router.mock.bedrock_wire import ACCESS_KEY, SECRET_KEY

            # The simulated runtime checks SigV4 signatures made with its own key (the region is any).
            env.update(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY, AWS_SESSION_TOKEN="")
            env.setdefault(
                "AWS_REGION", provider.aws.region if provider.aws and provider.aws.region else "us-east-1"
            )
            env["AWS_BEARER_TOKEN_BEDROCK"] = ""  # a real Bedrock API key would be sent to the simulation
        access = provider.vertex
        if access is not None:
            # A static token the simulated Vertex AI accepts (no google-auth needed), and a project
            # and region where the catalog leaves them to the environment.
            env[access.token_env] = DEMO_KEY
            if not access.project:
                env[PROJECT_ENV] = DEMO_PROJECT
            if not access.region:
                env[REGION_ENV] = "global"
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return True
        time.sleep(0.05)
    return False
