"""The container topology (docker-compose.yml, deploy/) is right by construction.

No Docker engine is needed: these tests read the files. They touch no database.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from config.settings.env import split_urls

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
POST_BOOTSTRAP_SCRIPT = ROOT / "deploy" / "patroni" / "post-bootstrap.sh"
PATRONI_CONFIG = ROOT / "deploy" / "patroni" / "patroni.yml"
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
GRAFANA_DASHBOARD_PROVIDER = (
    ROOT / "deploy" / "grafana" / "provisioning" / "dashboards" / "statelab.yml"
)

ETCD_MEMBERS = ("etcd1", "etcd2", "etcd3")
PATRONI_MEMBERS = ("patroni1", "patroni2", "patroni3")
SERVICES = (
    *ETCD_MEMBERS,
    *PATRONI_MEMBERS,
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
    """The URLs of a variable, split as the settings split them (a multi-host URL has commas
    of its own)."""
    return split_urls(value)


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


def test_every_database_named_in_the_urls_is_created_after_the_bootstrap(services: dict) -> None:
    created = set(re.findall(r"\bstatelab\w*", POST_BOOTSTRAP_SCRIPT.read_text()))

    named = {database_name(url) for url in database_urls(services["web"])}

    assert named <= created


def hosts_of(url: str) -> list[str]:
    """The hosts of a (multi-host) URL, in order."""
    netloc = urlsplit(url).netloc.rpartition("@")[2]
    return [item.rsplit(":", 1)[0] for item in netloc.split(",")]


def test_every_database_url_lists_the_three_patroni_members_for_the_leader(services: dict) -> None:
    env = environment(services["web"])

    leader_urls = [
        url for name in DATABASE_URL_VARIABLES if name != "REPLICA_URLS" for url in urls(env[name])
    ]

    assert {tuple(sorted(hosts_of(url))) for url in leader_urls} == {PATRONI_MEMBERS}
    assert all("target_session_attrs=read-write" in url for url in leader_urls)


def test_the_replica_urls_land_on_two_different_standbys_wherever_the_leader_is(services: dict):
    replica_urls = urls(environment(services["web"])["REPLICA_URLS"])

    first_standbys = [
        {next(host for host in hosts_of(url) if host != leader) for url in replica_urls}
        for leader in PATRONI_MEMBERS
    ]

    assert all("target_session_attrs=standby" in url for url in replica_urls)
    assert all(len(standbys) == 2 for standbys in first_standbys)


def test_the_patroni_members_run_one_image_with_their_own_names(services: dict) -> None:
    images = {services[name]["image"] for name in (*PATRONI_MEMBERS, *ETCD_MEMBERS)}
    names = [environment(services[name])["PATRONI_NAME"] for name in PATRONI_MEMBERS]

    assert images == {"statelab-patroni:local"}
    assert names == list(PATRONI_MEMBERS)


def test_the_etcd_members_form_one_cluster_with_its_corruption_checks(services: dict) -> None:
    commands = [
        [*services[name]["entrypoint"], *services[name]["command"]] for name in ETCD_MEMBERS
    ]

    for name, command in zip(ETCD_MEMBERS, commands, strict=True):
        cluster = next(arg for arg in command if arg.startswith("--initial-cluster="))
        assert f"--name={name}" in command
        assert {member.split("=")[0] for member in cluster.split("=", 1)[1].split(",")} == set(
            ETCD_MEMBERS
        )
        assert "--experimental-initial-corrupt-check" in command


def test_the_app_finds_every_patroni_api_and_etcd_member(services: dict) -> None:
    env = environment(services["web"])

    assert [urlsplit(url).hostname for url in urls(env["STATELAB_PATRONI_URLS"])] == list(
        PATRONI_MEMBERS
    )
    assert [urlsplit(url).hostname for url in urls(env["STATELAB_ETCD_URLS"])] == list(ETCD_MEMBERS)


def test_the_members_share_patronis_timings_within_its_rule() -> None:
    dcs = yaml.safe_load(PATRONI_CONFIG.read_text())["bootstrap"]["dcs"]

    assert dcs["loop_wait"] + 2 * dcs["retry_timeout"] <= dcs["ttl"]
    assert dcs["postgresql"]["use_pg_rewind"]


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


# ---- the quorum store's nodes and their link proxy --------------------------------------------


def _proxy_routes(services: dict) -> dict[str, object]:
    from devstack.linkproxy import parse_route

    command = [str(part) for part in services["quorum-proxy"]["command"]]
    routes = [parse_route(command[i + 1]) for i, part in enumerate(command) if part == "--route"]
    return {route.name: route for route in routes}


def test_the_quorum_store_has_at_least_four_storage_nodes(services: dict) -> None:
    nodes = [name for name in services if re.fullmatch(r"quorum-n\d+", name)]

    assert len(nodes) >= 4


def test_each_quorum_node_url_goes_through_its_own_proxy_route_to_its_own_node(
    services: dict,
) -> None:
    node_urls = urls(environment(services["web"])["QUORUM_NODE_URLS"])
    routes = _proxy_routes(services)
    by_port = {route.listen_port: route for route in routes.values()}

    targets = []
    for url in node_urls:
        parts = urlsplit(url)
        route = by_port[parts.port]
        targets.append((route.target_host, route.target_port))
        node_env = environment(services[route.target_host])
        assert parts.hostname == "quorum-proxy"
        assert database_name(url) == node_env["POSTGRES_DB"]

    assert len(set(targets)) == len(node_urls) >= 4
    assert {port for _host, port in targets} == {5432}


def test_the_services_switch_nodes_through_the_proxys_control_port(services: dict) -> None:
    command = [str(part) for part in services["quorum-proxy"]["command"]]
    control_port = command[command.index("--control-port") + 1]

    for name in APP_SERVICES:
        env = environment(services[name])
        assert env["QUORUM_PROXY_CONTROL"] == f"quorum-proxy:{control_port}"
        # Compose gives the service no hold on the nodes' processes: down is a cut route.
        assert env["QUORUM_NODE_CONTROL"] == "proxy"
    assert command[command.index("--listen-host") + 1] == "0.0.0.0"  # noqa: S104


# ---- the regions (architecture section 9) --------------------------------------------------------

REGION_SERVICES = ("region1", "region2", "region3")


def _command_settings(service: dict) -> dict[str, str]:
    parts = [interpolate(str(part)) for part in service["command"]]
    return dict(parts[index + 1].split("=", 1) for index, part in enumerate(parts) if part == "-c")


@pytest.mark.parametrize("service_name", REGION_SERVICES)
def test_each_region_publishes_by_logical_replication_with_a_bounded_slot(
    services: dict, service_name: str
) -> None:
    settings = _command_settings(services[service_name])

    assert settings["wal_level"] == "logical"
    assert settings["max_slot_wal_keep_size"] == "64MB"
    assert settings["wal_keep_size"] == "0"


def test_region_urls_name_the_three_region_services_and_the_database_they_create(
    services: dict,
) -> None:
    env = environment(services["web"])
    region_urls = urls(env["REGION_URLS"])
    created = {environment(services[name])["POSTGRES_DB"] for name in REGION_SERVICES}

    assert [urlsplit(url).hostname for url in region_urls] == list(REGION_SERVICES)
    assert {database_name(url) for url in region_urls} <= created


def test_the_link_proxy_routes_every_link_to_its_publisher(services: dict) -> None:
    from devstack.config import REGION_NAMES, region_routes

    proxy = services["region_net"]
    command = [str(part) for part in proxy["command"]]
    routes = dict(
        command[index + 1].split("=", 1) for index, part in enumerate(command) if part == "--route"
    )
    control = urlsplit(environment(services["web"])["REGION_LINKS_URL"])

    assert set(routes) == set(region_routes())
    for link, target in routes.items():
        publisher = link.split("->")[0]
        assert target.split(":")[1:] == [REGION_SERVICES[REGION_NAMES.index(publisher)], "5432"]
    assert (control.hostname, str(control.port)) == (
        "region_net",
        command[command.index("--control-port") + 1],
    )


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
