"""The cluster deployment files agree with each other and with the code (no cluster started):
deploy/docker-compose.cluster.yaml, deploy/nginx.conf, deploy/helm/weaviate-values.yaml and
deploy/kubernetes/citebot.yaml."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlparse

import pytest

from citebot.settings import Settings
from citebot.store import weaviate_nodes
from citebot.weaviate_server import WEAVIATE_VERSION

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _yaml(name: str) -> list:
    import yaml

    return list(yaml.safe_load_all((DEPLOY / name).read_text()))


def _env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


@pytest.fixture(scope="module")
def compose() -> dict:
    return _yaml("docker-compose.cluster.yaml")[0]


def _weaviate_services(compose: dict) -> dict[str, dict]:
    return {name: s for name, s in compose["services"].items() if "weaviate:" in str(s.get("image", ""))}


def _bot_services(compose: dict) -> dict[str, dict]:
    return {name: s for name, s in compose["services"].items() if s.get("image") == "citebot:latest"}


def _port_arg(service: dict) -> int:
    command = service["command"]
    return int(command[command.index("--port") + 1])


def test_compose_three_weaviate_nodes_form_one_cluster(compose: dict) -> None:
    nodes = _weaviate_services(compose)
    assert len(nodes) == 3
    envs = {name: _env(s) for name, s in nodes.items()}
    hostnames = [e["CLUSTER_HOSTNAME"] for e in envs.values()]
    assert sorted(hostnames) == sorted(nodes), "each node's CLUSTER_HOSTNAME is its service name (stable across restarts)"
    for name, service in nodes.items():
        env = envs[name]
        assert service["image"].endswith(f":{WEAVIATE_VERSION}")
        assert int(env["CLUSTER_DATA_BIND_PORT"]) == int(env["CLUSTER_GOSSIP_BIND_PORT"]) + 1
        joined = [j.split(":") for j in env["CLUSTER_JOIN"].split(",")]
        assert sorted(h for h, _ in joined) == sorted(nodes)
        assert all(int(p) == int(env["CLUSTER_GOSSIP_BIND_PORT"]) for _, p in joined)
        assert sorted(env["RAFT_JOIN"].split(",")) == sorted(hostnames)
        assert int(env["RAFT_BOOTSTRAP_EXPECT"]) == len(nodes)
        assert env["DEFAULT_VECTORIZER_MODULE"] == "none"
        assert {"8080", "50051"} <= {str(p) for p in service["expose"]}
        assert env["GRPC_PORT"] == "50051" and _port_arg(service) == 8080
    data = [next(v for v in s["volumes"] if v.endswith(":/var/lib/weaviate")) for s in nodes.values()]
    assert len(set(data)) == 3, "every node has its own data volume"
    declared = set(compose["volumes"])
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert source.startswith(".") or source in declared, volume


def test_compose_bot_replicas_use_every_node_with_replication(compose: dict) -> None:
    bots = _bot_services(compose)
    nodes = _weaviate_services(compose)
    assert len(bots) >= 2
    firsts = set()
    for name, bot in bots.items():
        env = _env(bot)
        assert set(env) <= set(Settings.env_names()), set(env) - set(Settings.env_names())
        settings = Settings.from_env(env)
        assert settings.replication_factor == 3 <= len(nodes)
        assert settings.slack_app_token == "", "behind a reverse proxy: HTTP mode"
        listed = weaviate_nodes(settings)
        assert sorted(urlparse(n.url).hostname for n in listed) == sorted(nodes), name
        for node in listed:
            service = nodes[urlparse(node.url).hostname]
            assert urlparse(node.url).port == _port_arg(service)
            assert node.grpc_port == int(_env(service)["GRPC_PORT"])
        firsts.add(urlparse(listed[0].url).hostname)
        assert set(bot["depends_on"]) == set(nodes)
        assert str(settings.http_port) in [str(p) for p in bot["expose"]]
        assert bot.get("build") and bot.get("env_file")
    assert len(firsts) == len(bots), "each replica starts on a different node"


def test_nginx_spreads_slack_requests_over_the_bot_replicas(compose: dict) -> None:
    conf = (DEPLOY / "nginx.conf").read_text()
    assert conf.count("{") == conf.count("}")
    proxy = compose["services"]["proxy"]
    assert any(v.startswith("./nginx.conf:/etc/nginx/nginx.conf") for v in proxy["volumes"])
    upstream = re.search(r"upstream (\w+) \{(.*?)\}", conf, re.S)
    assert upstream
    servers = re.findall(r"server ([\w.-]+):(\d+)", upstream.group(2))
    bots = _bot_services(compose)
    assert {(name, str(Settings.from_env(_env(b)).http_port)) for name, b in bots.items()} == set(servers)
    events = re.search(r"location = /slack/events \{(.*?)\}", conf, re.S)
    assert events
    body = events.group(1)
    assert f"proxy_pass http://{upstream.group(1)};" in body
    # Slack wants the ack within 3 s: a slower replica counts as dead and the other one is tried
    read_timeout = re.search(r"proxy_read_timeout (\d+)s;", body)
    assert read_timeout and int(read_timeout.group(1)) <= 3
    assert re.search(r"proxy_next_upstream [^;]*error[^;]*timeout[^;]*non_idempotent", body)
    listen = re.search(r"listen (\d+);", conf)
    assert listen and any(str(p).endswith(f":{listen.group(1)}") for p in proxy["ports"])
    assert set(proxy["depends_on"]) == set(bots)


def test_helm_values_and_kubernetes_manifest_agree() -> None:
    [values] = _yaml("helm/weaviate-values.yaml")
    assert str(values["image"]["tag"]) == WEAVIATE_VERSION
    assert values["replicas"] == 3
    assert int(values["env"]["RAFT_BOOTSTRAP_EXPECT"]) == values["replicas"]
    assert values["grpcService"]["enabled"] is True
    manifests = {doc["kind"]: doc for doc in _yaml("kubernetes/citebot.yaml")}
    deployment = manifests["Deployment"]
    assert deployment["spec"]["replicas"] >= 2
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: str(e["value"]) for e in container["env"]}
    assert set(env) <= set(Settings.env_names())
    settings = Settings.from_env(env)
    assert 1 < settings.replication_factor <= values["replicas"]
    [node] = weaviate_nodes(settings)
    http_service, grpc_service = values["service"], values["grpcService"]
    assert urlparse(node.url).hostname.split(".")[0] == http_service["name"]
    assert urlparse(node.url).port == http_service["ports"][0]["port"]
    assert node.grpc_host.split(".")[0] == grpc_service["name"]
    assert node.grpc_port == grpc_service["ports"][0]["port"]
    assert container["ports"][0]["containerPort"] == settings.http_port
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert manifests["Service"]["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert manifests["PodDisruptionBudget"]["spec"]["minAvailable"] >= 1


def test_weaviate_url_lists_nodes_with_their_own_grpc_endpoints() -> None:
    base = Settings.from_env({})
    nodes = weaviate_nodes(
        replace(base, weaviate_url="http://a:8080, http://b:8081?grpc_port=50052,https://c?grpc_host=c-grpc&grpc_port=443")
    )
    assert [(n.url, n.grpc_host, n.grpc_port) for n in nodes] == [
        ("http://a:8080", "a", 50051),
        ("http://b:8081", "b", 50052),
        ("https://c", "c-grpc", 443),
    ]
