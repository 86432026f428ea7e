"""deploy/: the Prometheus config and alert rules (checked and unit-tested with promtool), the Grafana
dashboard, the compose stack, the Kubernetes manifests and the Dockerfile, checked against each other
and against the metrics the router exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from router.catalog import parse_catalog

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
GRAFANA = DEPLOY / "grafana"
K8S = DEPLOY / "k8s"

# What the router's /metrics exposes: each name with its labels. Counters carry the `_total` suffix;
# histograms are named without `_bucket`/`_sum`/`_count` (and also have `le` on their buckets).
COUNTERS: dict[str, frozenset[str]] = {
    "router_requests_total": frozenset(
        {"route", "model_asked", "model", "provider", "strategy", "status", "key"}
    ),
    "router_tokens_total": frozenset({"model", "kind"}),
    "router_cost_usd_total": frozenset({"model", "key"}),
    "router_attempts_total": frozenset({"model", "outcome"}),
    "router_retries_total": frozenset({"model"}),
    "router_fallbacks_total": frozenset({"reason"}),
    "router_breaker_transitions_total": frozenset({"model", "to"}),
    "router_rate_limit_rejections_total": frozenset({"key", "limit"}),
    "router_upstream_errors_total": frozenset({"provider", "kind"}),
    "router_catalog_reloads_total": frozenset({"result"}),
}
HISTOGRAMS: dict[str, frozenset[str]] = {
    "router_request_duration_seconds": frozenset({"route"}),
    "router_upstream_duration_seconds": frozenset({"provider", "model"}),
    "router_time_to_first_token_seconds": frozenset({"model"}),
    "router_overhead_seconds": frozenset({"route"}),
}
GAUGES: dict[str, frozenset[str]] = {
    "router_breaker_state": frozenset({"model"}),
    "router_in_flight_requests": frozenset(),
    "router_models_routable": frozenset(),
}
EXPORTED: dict[str, frozenset[str]] = {**COUNTERS, **HISTOGRAMS, **GAUGES}
# Labels Prometheus adds to every scraped series (target labels of deploy/prometheus/prometheus.yml).
TARGET_LABELS = frozenset({"job", "instance", "service"})
# Series Prometheus makes itself, which rules may use besides the router's.
PROMETHEUS_SERIES = frozenset({"up"})

# Environment variables the router reads in a deployment.
ROUTER_ENV = (
    "ROUTER_CATALOG",
    "ROUTER_HOST",
    "ROUTER_PORT",
    "ROUTER_WORKERS",
    "ROUTER_LOG_LEVEL",
    "ROUTER_LOG_FORMAT",
    "ROUTER_API_KEY",
    "ROUTER_OPS_KEY",
    "ROUTER_REDIS_URL",
    "ROUTER_REDIS_PREFIX",
)
PROVIDER_KEYS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY")
REDIS_URL = "redis://redis:6379/0"

METRIC_NAME = re.compile(r"\brouter_[a-z_]+")
HISTOGRAM_SUFFIX = re.compile(r"_(bucket|sum|count)$")
SELECTOR = re.compile(r"\{([^{}]*)\}")
MATCHER_LABEL = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
}


# ------------------------------------------------------------------------------------------ helpers


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def metric_names(expr: str) -> set[str]:
    """Router metric names in a PromQL expression, histogram series folded into their base name."""
    names = set()
    for name in METRIC_NAME.findall(expr):
        base = HISTOGRAM_SUFFIX.sub("", name)
        names.add(base if base in HISTOGRAMS else name)
    return names


def label_names(expr: str) -> set[str]:
    """Label names used in selectors and in by/without clauses (not those of template variables)."""
    found: set[str] = set()
    for body in SELECTOR.findall(expr):
        found.update(MATCHER_LABEL.findall(body))
    for body in GROUPING.findall(expr):
        found.update(part.strip() for part in body.split(",") if part.strip())
    return found


def check_expr(expr: str, where: str) -> None:
    """Every router metric in ``expr`` is exported, and every label it names exists on one of them."""
    names = metric_names(expr)
    unknown = {name for name in names if name not in EXPORTED}
    assert not unknown, f"{where}: not exported by the router: {sorted(unknown)} in {expr!r}"
    allowed = set(TARGET_LABELS)
    for name in names:
        allowed |= EXPORTED[name]
    if any(name in HISTOGRAMS for name in names):
        allowed.add("le")
    used = label_names(expr) - {"__name__"}
    assert used <= allowed, f"{where}: labels {sorted(used - allowed)} are on none of {sorted(names)}"


def substitute_grafana_variables(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    # Dashboard variables ($job, ${model}, ...) stand inside =~ matchers: any regex will do.
    return re.sub(r"\$\{?[a-zA-Z_]+\}?", ".*", expr)


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is not installed: apt-get install prometheus (.ci/run does)")
    return path


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def assert_ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, f"{' '.join(result.args)}\n{result.stdout}\n{result.stderr}"


# ------------------------------------------------------------------------------------------ Prometheus


def alert_rules() -> list[dict[str, Any]]:
    groups = load_yaml(PROMETHEUS / "alerts.yml")["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_prometheus_config_syntax() -> None:
    assert_ok(run([promtool(), "check", "config", "--syntax-only", str(PROMETHEUS / "prometheus.yml")], ROOT))


def test_prometheus_config_with_its_rule_file_and_credentials(tmp_path: Path) -> None:
    """The full check also loads alerts.yml and needs the scrape's credentials file to exist; in the
    compose stack the prometheus service writes it at start, here a temporary file stands in."""
    config = load_yaml(PROMETHEUS / "prometheus.yml")
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "router"]
    job["authorization"]["credentials_file"] = str(tmp_path / "ops-key")
    (tmp_path / "ops-key").write_text("", encoding="utf-8")
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    shutil.copy(PROMETHEUS / "alerts.yml", tmp_path / "alerts.yml")
    result = run([promtool(), "check", "config", str(tmp_path / "prometheus.yml")], tmp_path)
    assert_ok(result)
    assert "1 rule files found" in result.stdout


def test_prometheus_scrapes_the_router() -> None:
    config = load_yaml(PROMETHEUS / "prometheus.yml")
    assert config["rule_files"] == ["alerts.yml"]
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "router"]
    assert job["metrics_path"] == "/metrics"
    assert job["scrape_interval"] == "15s"
    assert job["authorization"]["type"] == "Bearer"
    assert job["authorization"]["credentials_file"] == "/etc/prometheus/ops-key"
    targets = [target for static in job["static_configs"] for target in static["targets"]]
    assert targets == ["router:8080"]


def test_alert_rules_check() -> None:
    result = run([promtool(), "check", "rules", "alerts.yml"], PROMETHEUS)
    assert_ok(result)
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_alert_rules_unit_tests() -> None:
    result = run([promtool(), "test", "rules", "alerts_test.yml"], PROMETHEUS)
    assert_ok(result)
    assert "SUCCESS" in result.stdout


def test_alert_rules_are_complete_and_use_exported_metrics() -> None:
    rules = alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    assert {
        "RouterBreakerOpen",
        "RouterHighErrorRate",
        "RouterOverheadP99High",
        "RouterAllModelsDown",
        "RouterRateLimitRejections",
    } <= set(names)
    for rule in rules:
        where = f"alerts.yml {rule['alert']}"
        assert re.fullmatch(r"\d+[smh]", str(rule.get("for", ""))), f"{where}: no `for`"
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, where
        assert rule["annotations"]["summary"].strip(), where
        assert rule["annotations"]["description"].strip(), where
        expr = rule["expr"]
        assert metric_names(expr) or set(re.findall(r"\b\w+\b", expr)) & PROMETHEUS_SERIES, where
        check_expr(expr, where)


def test_alert_rules_pin_the_requested_conditions() -> None:
    rules = {rule["alert"]: rule for rule in alert_rules()}
    breaker = rules["RouterBreakerOpen"]
    assert "router_breaker_state" in breaker["expr"]
    assert "== 2" in breaker["expr"]
    assert breaker["for"] == "2m"
    assert "router_models_routable" in rules["RouterAllModelsDown"]["expr"]
    assert "router_breaker_state" in rules["RouterAllModelsDown"]["expr"]
    errors = rules["RouterHighErrorRate"]["expr"]
    assert 'status=~"5.."' in errors
    assert "[5m]" in errors
    assert "0.05" in errors
    overhead = rules["RouterOverheadP99High"]["expr"]
    assert "histogram_quantile(0.99" in overhead
    assert "router_overhead_seconds_bucket" in overhead
    assert "[5m]" in overhead
    assert "0.05" in overhead
    assert rules["RouterRateLimitRejections"]["labels"]["severity"] == "warning"


def test_every_alert_is_unit_tested_firing_and_quiet() -> None:
    tests = load_yaml(PROMETHEUS / "alerts_test.yml")
    assert tests["rule_files"] == ["alerts.yml"]
    fired: set[str] = set()
    quiet: set[str] = set()
    for case in tests["tests"]:
        for check in case.get("alert_rule_test", []):
            (fired if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in alert_rules()}
    assert names <= fired, f"never shown firing: {sorted(names - fired)}"
    assert names <= quiet, f"never shown quiet: {sorted(names - quiet)}"
    assert fired | quiet <= names


# ------------------------------------------------------------------------------------------ Grafana


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((GRAFANA / "dashboards" / "router.json").read_text(encoding="utf-8"))
    return data


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])


def dashboard_exprs(board: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (f"panel {panel['id']} {panel['title']!r} {target['refId']}", target["expr"])
        for panel in panels(board)
        for target in panel.get("targets", [])
    ]


def test_dashboard_identity_and_datasource_variable() -> None:
    board = dashboard()
    assert board["uid"] == "router"
    assert board["title"] == "Router"
    assert 36 <= board["schemaVersion"] <= 41
    variables = {variable["name"]: variable for variable in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in panels(board):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"]["uid"] == "${datasource}"
            check_expr(variable["definition"], f"variable {variable['name']}")
            assert metric_names(variable["definition"]), variable["name"]


def test_dashboard_uses_only_exported_metrics() -> None:
    board = dashboard()
    used: set[str] = set()
    for where, expr in dashboard_exprs(board):
        check_expr(expr, where)
        used |= metric_names(expr)
    # Every family the brief asks to see has a panel.
    assert {
        "router_requests_total",
        "router_request_duration_seconds",
        "router_overhead_seconds",
        "router_time_to_first_token_seconds",
        "router_tokens_total",
        "router_cost_usd_total",
        "router_breaker_state",
        "router_breaker_transitions_total",
        "router_rate_limit_rejections_total",
        "router_fallbacks_total",
        "router_retries_total",
        "router_upstream_errors_total",
        "router_in_flight_requests",
    } <= used


def test_dashboard_queries_parse(tmp_path: Path) -> None:
    """Each panel's PromQL, Grafana's variables substituted, parses: promtool checks it as a rule."""
    rules = [
        {"record": f"dashboard:query_{i}", "expr": substitute_grafana_variables(expr)}
        for i, (_, expr) in enumerate(dashboard_exprs(dashboard()))
    ]
    (tmp_path / "dashboard_rules.yml").write_text(
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}), encoding="utf-8"
    )
    result = run([promtool(), "check", "rules", "dashboard_rules.yml"], tmp_path)
    assert_ok(result)
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


def test_dashboard_panels_cover_the_requested_views() -> None:
    board = dashboard()
    by_title = {panel["title"]: panel for panel in panels(board)}
    exprs = " ".join(expr for _, expr in dashboard_exprs(board))
    for quantile in ("0.5", "0.95", "0.99"):
        assert f"histogram_quantile({quantile}, sum by (le) (rate(router_request_duration" in exprs
    assert "histogram_quantile(0.99, sum by (route, le) (rate(router_overhead_seconds_bucket" in exprs
    assert "histogram_quantile(0.95, sum by (model, le) (rate(router_time_to_first_token" in exprs
    assert "sum by (model, kind) (rate(router_tokens_total" in exprs
    assert "sum by (model, key) (rate(router_cost_usd_total" in exprs
    assert "* 3600" in exprs
    for grouping in ("by (model) (rate(router_requests_total", "by (status) (rate(router_requests_total"):
        assert grouping in exprs
    for grouping in ("(key, limit)", "(reason)", "(provider, kind)", "(model, to)"):
        assert f"sum by {grouping}" in exprs
    breakers = by_title["Breaker state per model"]
    assert breakers["type"] in {"state-timeline", "table"}
    (mapping,) = breakers["fieldConfig"]["defaults"]["mappings"]
    assert mapping["type"] == "value"
    texts = {value: option["text"] for value, option in mapping["options"].items()}
    assert texts == {"0": "closed", "1": "half_open", "2": "open"}


def test_dashboard_layout_ids_are_unique_and_panels_do_not_overlap() -> None:
    board = dashboard()
    ids = [panel["id"] for panel in panels(board)]
    assert len(ids) == len(set(ids))
    taken: set[tuple[int, int]] = set()
    for panel in panels(board):
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & taken, f"{panel['title']!r} overlaps another panel"
        taken |= cells


def test_grafana_provisioning_points_at_the_dashboard_and_prometheus() -> None:
    compose = load_yaml(DEPLOY / "compose.yaml")
    datasources = load_yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")
    (source,) = datasources["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    assert "prometheus" in compose["services"]
    providers = load_yaml(GRAFANA / "provisioning" / "dashboards" / "router.yml")["providers"]
    (provider,) = providers
    assert provider["type"] == "file"
    mounts = {target: source for source, target in map(volume, compose["services"]["grafana"]["volumes"])}
    assert mounts[provider["options"]["path"]] == "./grafana/dashboards"
    assert mounts["/etc/grafana/provisioning"] == "./grafana/provisioning"


# ------------------------------------------------------------------------------------------ compose


def compose_services() -> dict[str, Any]:
    services: dict[str, Any] = load_yaml(DEPLOY / "compose.yaml")["services"]
    return services


def env_default(value: str) -> str:
    """``value`` with each ``${NAME:-default}`` as compose resolves it when NAME is unset."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def volume(spec: str) -> tuple[str, str]:
    """A short-syntax volume's source and target."""
    source, target, *_ = env_default(spec).split(":")
    return source, target


def test_compose_has_the_four_services_and_router_depends_on_redis() -> None:
    services = compose_services()
    assert {"router", "redis", "prometheus", "grafana"} <= set(services)
    router = services["router"]
    assert "redis" in router["depends_on"]
    if isinstance(router["depends_on"], dict):
        assert router["depends_on"]["redis"]["condition"] == "service_healthy"
        assert "healthcheck" in services["redis"]
    assert router["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
    assert (DEPLOY / router["build"]["context"] / router["build"]["dockerfile"]).resolve() == (
        DEPLOY / "Dockerfile"
    )


def test_compose_router_environment() -> None:
    router = compose_services()["router"]
    env = router["environment"]
    assert set(ROUTER_ENV) | set(PROVIDER_KEYS) <= set(env)
    assert env["ROUTER_REDIS_URL"] == REDIS_URL
    assert str(env["ROUTER_WORKERS"]) == "2"
    assert env["ROUTER_HOST"] == "0.0.0.0"
    assert str(env["ROUTER_PORT"]) == "8080"
    # Keys come from the operator's environment, never from this file.
    for name in ("ROUTER_API_KEY", "ROUTER_OPS_KEY", *PROVIDER_KEYS):
        assert env[name] == f"${{{name}:-}}", name
    (catalog,) = [
        source for source, target in map(volume, router["volumes"]) if target == env["ROUTER_CATALOG"]
    ]
    assert (DEPLOY / catalog).resolve() == ROOT / "catalog.yaml"
    assert "/health/live" in " ".join(router["healthcheck"]["test"])
    assert router["read_only"] is True
    assert "/tmp" in router["tmpfs"]


def test_compose_redis_keeps_nothing() -> None:
    redis = compose_services()["redis"]
    assert redis["image"] == "redis:7-alpine"
    command = redis["command"]
    assert command[command.index("--save") + 1] == ""
    assert command[command.index("--appendonly") + 1] == "no"
    assert "volumes" not in redis


def test_compose_prometheus_writes_the_credentials_file_its_scrape_reads() -> None:
    prometheus = compose_services()["prometheus"]
    targets = {target: source for source, target in map(volume, prometheus["volumes"])}
    assert targets["/etc/prometheus/prometheus.yml"] == "./prometheus/prometheus.yml"
    assert targets["/etc/prometheus/alerts.yml"] == "./prometheus/alerts.yml"
    script = prometheus["entrypoint"][-1]
    config = load_yaml(PROMETHEUS / "prometheus.yml")
    (job,) = config["scrape_configs"]
    assert f'"$$ROUTER_OPS_KEY" > {job["authorization"]["credentials_file"]}' in script
    assert "--config.file=/etc/prometheus/prometheus.yml" in script
    assert prometheus["environment"]["ROUTER_OPS_KEY"] == "${ROUTER_OPS_KEY:-}"


def test_compose_grafana_allows_anonymous_viewers() -> None:
    env = compose_services()["grafana"]["environment"]
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"


def test_compose_bind_mounts_exist() -> None:
    for name, service in compose_services().items():
        for spec in service.get("volumes", []):
            source, _ = volume(spec)
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name}: {source} does not exist"


# ------------------------------------------------------------------------------------------ Kubernetes


def manifests() -> dict[str, list[dict[str, Any]]]:
    return {
        path.name: [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]
        for path in sorted(K8S.glob("*.yaml"))
        if path.name != "kustomization.yaml"
    }


def resources() -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for docs in manifests().values():
        for doc in docs:
            key = (doc["kind"], doc["metadata"]["name"])
            assert key not in found, f"{key} defined twice"
            found[key] = doc
    return found


def container(deployment: dict[str, Any], name: str) -> dict[str, Any]:
    containers: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"]
    (found,) = [c for c in containers if c["name"] == name]
    return found


def named_port(spec: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    (found,) = [p["containerPort"] for p in spec["ports"] if p["name"] == port]
    return int(found)


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def test_k8s_manifests_have_the_required_fields() -> None:
    docs = manifests()
    assert {
        "configmap.yaml",
        "secret.yaml",
        "deployment.yaml",
        "service.yaml",
        "hpa.yaml",
        "redis.yaml",
    } <= set(docs)
    for name, items in docs.items():
        assert items, f"{name} is empty"
        for doc in items:
            assert doc.get("apiVersion"), name
            assert doc.get("kind"), name
            assert doc.get("metadata", {}).get("name"), name


def test_kustomization_lists_files_that_exist() -> None:
    kustomization = load_yaml(K8S / "kustomization.yaml")
    assert kustomization["kind"] == "Kustomization"
    listed = kustomization["resources"]
    for resource in listed:
        assert (K8S / resource).is_file(), resource
    # Everything but the example Secret (whose placeholders must never overwrite the real one).
    assert set(listed) == set(manifests()) - {"secret.yaml"}
    assert [image["name"] for image in kustomization["images"]] == ["router"]


def test_kustomize_renders() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    result = run([kubectl, "kustomize", str(K8S)], ROOT)
    assert_ok(result)
    rendered = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    assert all(doc["metadata"].get("namespace") == "router" for doc in rendered if doc["kind"] != "Namespace")
    (deployment,) = [d for d in rendered if d["kind"] == "Deployment" and d["metadata"]["name"] == "router"]
    assert container(deployment, "router")["image"].endswith("/router:0.1.0")


def test_k8s_deployment() -> None:
    found = resources()
    deployment = found[("Deployment", "router")]
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    assert selects(spec["selector"]["matchLabels"], spec["template"]["metadata"]["labels"])
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    router = container(deployment, "router")
    assert router["securityContext"]["readOnlyRootFilesystem"] is True
    assert router["securityContext"]["allowPrivilegeEscalation"] is False
    assert router["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert named_port(router, "http") == 8080
    for probe in ("livenessProbe", "readinessProbe"):
        http = router[probe]["httpGet"]
        assert http["path"] == "/health/live", probe
        assert named_port(router, http["port"]) == 8080, probe
        assert "httpHeaders" not in http, f"{probe}: a probe header would hold the ops key in clear"
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(router["resources"][kind]), kind
    annotations = spec["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "8080"
    assert annotations["prometheus.io/path"] == "/metrics"


def test_k8s_deployment_environment_and_secret_references() -> None:
    found = resources()
    router = container(found[("Deployment", "router")], "router")
    env = {item["name"]: item for item in router["env"]}
    assert set(ROUTER_ENV) | set(PROVIDER_KEYS) <= set(env)
    assert env["ROUTER_REDIS_URL"]["value"] == REDIS_URL
    redis_service = found[("Service", "redis")]
    assert [port["port"] for port in redis_service["spec"]["ports"]] == [6379]
    secret = found[("Secret", "router-keys")]
    assert secret["metadata"]["annotations"]["example"] == "true"
    assert all("REPLACE-ME" in value for value in secret["stringData"].values())
    for name in ("ROUTER_API_KEY", "ROUTER_OPS_KEY", *PROVIDER_KEYS):
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == "router-keys", name
        assert ref["key"] in secret["stringData"], name
    for name in ("ROUTER_OPS_KEY", *PROVIDER_KEYS):
        assert env[name]["valueFrom"]["secretKeyRef"]["optional"] is True, name
    # The client key is required: a public router never starts open because the Secret is missing.
    assert env["ROUTER_API_KEY"]["valueFrom"]["secretKeyRef"].get("optional", False) is False


def test_k8s_catalog_volume_and_configmap() -> None:
    found = resources()
    deployment = found[("Deployment", "router")]
    router = container(deployment, "router")
    catalog_path = PurePosixPath(
        next(item["value"] for item in router["env"] if item["name"] == "ROUTER_CATALOG")
    )
    assert str(catalog_path) == "/etc/router/catalog.yaml"
    (mount,) = [m for m in router["volumeMounts"] if m["mountPath"] == str(catalog_path.parent)]
    # A whole-directory mount (no subPath), so ConfigMap updates reach the file.
    assert "subPath" not in mount
    assert mount["readOnly"] is True
    volumes = {volume["name"]: volume for volume in deployment["spec"]["template"]["spec"]["volumes"]}
    source = volumes[mount["name"]]["configMap"]
    configmap = found[("ConfigMap", source["name"])]
    assert {item["path"] for item in source.get("items", [])} <= {catalog_path.name}
    catalog = parse_catalog(configmap["data"]["catalog.yaml"], {}, source="deploy/k8s/configmap.yaml")
    assert catalog.models
    assert {provider.api_key_env for provider in catalog.providers.values()} <= set(PROVIDER_KEYS)
    # The read-only root filesystem leaves /tmp (per-worker metric files) to a writable volume.
    (tmp,) = [m for m in router["volumeMounts"] if m["mountPath"] == "/tmp"]
    assert "emptyDir" in volumes[tmp["name"]]


def test_k8s_services_select_their_pods() -> None:
    found = resources()
    router_pods = found[("Deployment", "router")]["spec"]["template"]["metadata"]["labels"]
    redis_pods = found[("Deployment", "redis")]["spec"]["template"]["metadata"]["labels"]
    service = found[("Service", "router")]["spec"]
    assert service["type"] == "ClusterIP"
    assert selects(service["selector"], router_pods)
    assert not selects(service["selector"], redis_pods)
    (port,) = service["ports"]
    assert port["port"] == 80
    assert named_port(container(found[("Deployment", "router")], "router"), port["targetPort"]) == 8080
    redis_service = found[("Service", "redis")]["spec"]
    assert selects(redis_service["selector"], redis_pods)
    assert not selects(redis_service["selector"], router_pods)


def test_k8s_hpa_targets_the_deployment() -> None:
    found = resources()
    hpa = found[("HorizontalPodAutoscaler", "router")]
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"]) == ("apps/v1", "Deployment")
    assert ("Deployment", target["name"]) in found
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 10)
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"] == {"type": "Utilization", "averageUtilization": 70}


def test_k8s_redis_keeps_nothing() -> None:
    found = resources()
    redis = container(found[("Deployment", "redis")], "redis")
    args = redis["args"]
    assert args[args.index("--save") + 1] == ""
    assert args[args.index("--appendonly") + 1] == "no"
    volumes = found[("Deployment", "redis")]["spec"]["template"]["spec"]["volumes"]
    assert all("persistentVolumeClaim" not in volume for volume in volumes)


# ------------------------------------------------------------------------------------------ Dockerfile


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    instructions = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def test_dockerfile() -> None:
    instructions = dockerfile_instructions()
    froms = [rest for keyword, rest in instructions if keyword == "FROM"]
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in [f"ARG {rest}" for k, rest in instructions if k == "ARG"]
    assert froms[-1] == "${PYTHON_IMAGE}"
    (user,) = [rest for keyword, rest in instructions if keyword == "USER"]
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "a numeric non-root USER (runAsNonRoot can verify it)"
    pod = resources()[("Deployment", "router")]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == int(uid)
    assert ("EXPOSE", "8080") in instructions
    (healthcheck,) = [rest for keyword, rest in instructions if keyword == "HEALTHCHECK"]
    assert "python" in healthcheck
    assert "http://127.0.0.1:8080/health/live" in healthcheck
    (cmd,) = [rest for keyword, rest in instructions if keyword == "CMD"]
    assert json.loads(cmd) == ["python", "-m", "router", "serve", "--host", "0.0.0.0", "--port", "8080"]


def test_dockerfile_copies_only_what_exists_and_the_context_filter_keeps() -> None:
    sources = []
    for keyword, rest in dockerfile_instructions():
        if keyword == "COPY" and not rest.startswith("--from"):
            *paths, _ = rest.split()
            sources += paths
    assert {PurePosixPath(s).parts[0] for s in sources} == {
        "pyproject.toml",
        "README.md",
        "router",
        "catalog.yaml",
    }
    for source in sources:
        assert (ROOT / source).exists(), source
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
    assert "*" in ignore
    for source in sources:
        top = PurePosixPath(source).parts[0]
        assert f"!{top}" in ignore or f"!{top}/" in ignore, f"{source} is filtered out of the build context"
