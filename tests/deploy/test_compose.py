"""docker-compose.yml names only commands and targets that exist in this project."""
import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
BUILT = {name: svc for name, svc in COMPOSE["services"].items() if svc.get("build")}


def test_the_production_shape_is_all_there():
    assert {"postgres", "redis", "web", "worker", "flower", "peers"} <= set(COMPOSE["services"])
    assert "pgdata" in COMPOSE["volumes"]
    for name, service in COMPOSE["services"].items():
        assert service.get("restart") == "unless-stopped", name
    for name in ("postgres", "redis", "web", "worker", "peers"):
        assert "healthcheck" in COMPOSE["services"][name], name


def test_redis_keeps_its_queue_across_a_restart():
    """An append-only file flushed every second, in a named volume mounted where redis-server writes it."""
    redis = COMPOSE["services"]["redis"]
    command = redis["command"]
    options = dict(zip(command[1::2], command[2::2]))
    assert command[0] == "redis-server"
    assert options["--appendonly"] == "yes" and options["--appendfsync"] == "everysec"
    volume, mount = next(entry.split(":") for entry in redis["volumes"])
    assert volume in COMPOSE["volumes"] and mount == "/data"  # the image's working directory


@pytest.mark.parametrize("name", sorted(BUILT))
def test_each_command_exists_and_its_target_imports(name):
    command = BUILT[name]["command"]
    assert (Path(sys.executable).parent / command[0]).exists(), command[0]
    for arg in command:
        if arg.endswith(":create_app()"):
            module = importlib.import_module(arg.split(":")[0])
            assert callable(module.create_app)
        if arg.startswith("python:"):
            importlib.import_module(arg.removeprefix("python:"))
    if command[0] == "celery":
        assert command[1:3] == ["-A", "tasks"]
        importlib.import_module("tasks")


def test_docker_compose_itself_accepts_the_file():
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (.ci/run installs it)")
    result = subprocess.run([binary, "config", "-q"], cwd=ROOT, capture_output=True, text=True,
                            env={"POSTGRES_PASSWORD": "check", "FLOWER_BASIC_AUTH": "ops:check", "JWT_SECRET": "c" * 32, "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr


def test_the_tracing_profile_runs_a_collector_that_sends_to_a_trace_viewer():
    """The services' OTLP endpoint is the collector's, whose traces pipeline exports to Jaeger."""
    services = COMPOSE["services"]
    collector, jaeger = services["otel-collector"], services["jaeger"]
    assert collector["profiles"] == ["tracing"] and jaeger["profiles"] == ["tracing"]
    source, target = collector["volumes"][0].split(":")[:2]
    assert collector["command"] == [f"--config={target}"]
    config = yaml.safe_load((ROOT / source).read_text())
    assert config["service"]["pipelines"]["traces"]["exporters"] == ["otlp"]
    assert config["exporters"]["otlp"]["endpoint"].split(":")[0] == "jaeger"
    http = config["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    assert services["web"]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"].endswith(
        f"otel-collector:{http.split(':')[1]}}}")


def test_the_cluster_profile_is_three_nodes_that_find_each_other_with_one_cookie():
    nodes = {name: svc for name, svc in COMPOSE["services"].items() if "rabbitmq-cluster" in svc.get("profiles", [])}
    assert sorted(nodes) == ["rabbitmq1", "rabbitmq2", "rabbitmq3"]
    config = (ROOT / "rabbitmq" / "cluster.conf").read_text()
    assert "cluster_formation.peer_discovery_backend = classic_config" in config
    for name, node in nodes.items():
        assert node["hostname"] == name
        assert f"= rabbit@{name}\n" in config  # each node is in the discovery list under its node name
        assert node["environment"]["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"] == "-setcookie ${RABBITMQ_ERLANG_COOKIE:-}"
        assert node["environment"]["RABBITMQ_CTL_ERL_ARGS"] == "-setcookie ${RABBITMQ_ERLANG_COOKIE:-}"
        data, mount = next(v.split(":")[:2] for v in node["volumes"] if v.endswith("/var/lib/rabbitmq"))
        assert data == f"{name}data" and data in COMPOSE["volumes"]  # each node keeps its own data
        assert "./rabbitmq/cluster.conf:/etc/rabbitmq/conf.d/20-cluster.conf:ro" in node["volumes"]
