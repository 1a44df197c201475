"""The container files agree with each other and with docs/docker.md.

No Docker engine runs here, so what `docker build` and `docker compose up` would catch is
checked from the files: the compose file against the compose specification's JSON schema
(vendored by check-jsonschema, no network), its start order and volumes, the variables it
interpolates against .env.example, the Dockerfile's paths against the build context filter,
the logging YAML by loading it, and the page that documents all of it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from tests.support import services
from tests.support.services import find_binary

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE_FILE = DOCKER / "compose.yaml"
DOCS = (ROOT / "docs" / "docker.md").read_text()

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}; $$ is a literal $.
INTERPOLATION = re.compile(r"(?<!\$)\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?])?")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return data


def env_example() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in (DOCKER / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", (DOCKER / "Dockerfile").read_text())
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, args = line.partition(" ")
            pairs.append((instruction.upper(), args.strip()))
    return pairs


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction, args in dockerfile_instructions():
        if instruction == "ENV":
            env.update(dict(re.findall(r"([A-Z_][A-Z0-9_]*)=(\S+)", args)))
    return env


def copies_from_context() -> dict[str, str]:
    """Source -> destination of every COPY that reads the build context."""
    copies = {}
    for instruction, args in dockerfile_instructions():
        if instruction == "COPY" and "--from=" not in args:
            words = [w for w in args.split() if not w.startswith("--")]
            for source in words[:-1]:
                copies[source] = words[-1]
    return copies


def code_blocks() -> list[str]:
    return re.findall(r"```console\n(.*?)```", DOCS, flags=re.DOTALL)


# --------------------------------------------------------------------------- compose file


def test_compose_file_matches_the_compose_specification() -> None:
    result = subprocess.run(
        [
            find_binary("check-jsonschema"),
            "--builtin-schema",
            "vendor.compose-spec",
            str(COMPOSE_FILE),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_docker_compose_config_when_the_plugin_is_installed(tmp_path: Path) -> None:
    docker = shutil.which("docker")
    probe = (
        subprocess.run([docker, "compose", "version"], capture_output=True, check=False)
        if docker
        else None
    )
    if probe is None or probe.returncode != 0:
        pytest.skip("the docker compose plugin is not installed; the schema test covers the file")
    env_file = tmp_path / ".env"
    env_file.write_text((DOCKER / ".env.example").read_text())
    result = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE_FILE), "--env-file", str(env_file), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_start_order_waits_for_health_and_the_bucket(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "s3", "createbucket", "worker"}
    assert services["worker"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
        "createbucket": {"condition": "service_completed_successfully"},
    }
    assert services["createbucket"]["depends_on"] == {"s3": {"condition": "service_healthy"}}
    assert services["createbucket"]["restart"] == "no", "a one-shot must not be restarted"
    for name, service in services.items():
        for dependency, rule in service.get("depends_on", {}).items():
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], f"{name} waits on {dependency}"


def test_volumes_are_named_and_declared(compose: dict[str, Any]) -> None:
    used = set()
    for service in compose["services"].values():
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            assert not source.startswith((".", "/")), f"bind mount {mount}; use a named volume"
            used.add(source)
    assert used == set(compose["volumes"]) == {"pgdata", "redisdata", "s3data", "media"}


def test_worker_is_built_from_the_dockerfile(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    context = (COMPOSE_FILE.parent / worker["build"]["context"]).resolve()
    assert context == ROOT
    assert (context / worker["build"]["dockerfile"]).resolve() == DOCKER / "Dockerfile"


def test_worker_environment_points_at_the_stack(compose: dict[str, Any]) -> None:
    env = compose["services"]["worker"]["environment"]
    assert env["PM_S3_ENDPOINT_URL"] == "http://s3:8333"
    assert env["PM_REDIS_URL"] == "redis://redis:6379/0"
    assert "@postgres:5432/" in env["PM_DB_URL"]
    assert env["STORAGE_BACKEND"] == "aws"
    # The identity SeaweedFS is configured with is the one the worker signs with.
    identities = compose["configs"]["s3_identities"]["content"]
    assert env["AWS_ACCESS_KEY_ID"] in identities
    assert env["AWS_SECRET_ACCESS_KEY"] in identities
    # The bucket created is the bucket used.
    assert compose["services"]["createbucket"]["environment"]["BUCKET"] == env["PM_S3_BUCKET_NAME"]


def test_interpolated_variables_are_in_env_example() -> None:
    text = COMPOSE_FILE.read_text()
    used = {m["name"] for m in INTERPOLATION.finditer(text)}
    required = {m["name"] for m in INTERPOLATION.finditer(text) if m["op"] in (":?", "?")}
    example = env_example()
    assert used == set(example), f"compose uses {sorted(used)}, .env.example has {sorted(example)}"
    for name in required:
        assert example[name], f"{name} is required by compose but empty in .env.example"


def test_media_volume_is_the_images_media_root(compose: dict[str, Any]) -> None:
    media_root = dockerfile_env()["PM_MEDIA_ROOT"]
    assert f"media:{media_root}" in compose["services"]["worker"]["volumes"]
    assert ("VOLUME", f'["{media_root}"]') in dockerfile_instructions()


def seconds(duration: str) -> int:
    """A compose duration such as ``12m`` or ``1m30s`` in seconds."""
    parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", duration)
    assert duration, "empty duration"
    assert parts, f"unexpected duration {duration!r}"
    hours, minutes, secs = (int(p or 0) for p in parts.groups())
    return hours * 3600 + minutes * 60 + secs


def task_time_limit() -> int:
    """The worker's default hard task time limit, read from s3w-tasks' settings source."""
    source = ROOT / "packages" / "s3w-tasks" / "src" / "s3w_tasks" / "settings.py"
    found = re.search(r"^\s+time_limit: int = Field\(\s*(\d+)", source.read_text(), re.MULTILINE)
    assert found, f"no `time_limit: int = Field(<seconds>` in {source}"
    return int(found[1])


def test_stop_grace_period_outlasts_a_task_and_is_documented(compose: dict[str, Any]) -> None:
    # SIGTERM is a warm shutdown: running tasks finish, each within its hard time limit.
    grace = compose["services"]["worker"]["stop_grace_period"]
    assert seconds(grace) > task_time_limit(), (grace, task_time_limit())
    assert f"stop_grace_period: {grace}" in DOCS
    assert f"`{grace}`" in DOCS
    assert f"terminationGracePeriodSeconds: {seconds(grace)}" in DOCS
    assert f"({task_time_limit()} s by default)" in DOCS
    runs = [run for block in code_blocks() for run in re.findall(r"docker run -d .*", block)]
    assert runs
    for run in runs:
        assert f"--stop-timeout {seconds(grace)}" in run, run


# ---------------------------------------------------------------------------- Dockerfile


def test_dockerfile_copies_only_what_the_context_filter_lets_through() -> None:
    ignore = (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    for source in copies_from_context():
        assert source.rstrip("/") in allowed, f"COPY {source} is excluded from the context"
        assert (ROOT / source).exists(), f"COPY {source}: no such file"
    mounted = re.findall(r"--mount=type=bind,source=([^,\s]+)", (DOCKER / "Dockerfile").read_text())
    for source in mounted:
        assert source in allowed, f"mounted {source} is excluded from the context"
        assert (ROOT / source).exists(), f"mounted {source}: no such file"


def test_runtime_paths_exist_in_the_image() -> None:
    copies = copies_from_context()
    env = dockerfile_env()
    instructions = dict(dockerfile_instructions())
    assert copies["docker/log_config.yaml"] == env["PM_LOG_CONFIG"]
    assert instructions["ENTRYPOINT"] == f'["{copies["docker/entrypoint.sh"]}"]'
    assert copies["docker/healthcheck.sh"] in instructions["HEALTHCHECK"]
    assert "celery inspect ping" not in instructions["HEALTHCHECK"]  # it is the script's job
    assert instructions["CMD"] == '["worker"]'
    assert instructions["STOPSIGNAL"] == "SIGTERM"
    assert instructions["USER"] == "10001:10001"


def test_image_smoke_uses_the_images_python() -> None:
    # Binary dependency wheels are chosen for the interpreter that builds the wheelhouse.
    image = re.search(r"^ARG PYTHON_VERSION=(\S+)$", (DOCKER / "Dockerfile").read_text(), re.M)
    smoke = re.search(
        r'@nox\.session\(name="image-smoke", python="([^"]+)"\)', (ROOT / "noxfile.py").read_text()
    )
    assert image, "Dockerfile: no ARG PYTHON_VERSION=<version>"
    assert smoke, "noxfile.py: no image-smoke session with a fixed python"
    assert image[1] == smoke[1]
    assert f"python:{image[1]}-slim-bookworm" in DOCS


def test_log_config_is_a_working_dictconfig(tmp_path: Path) -> None:
    # A separate interpreter, so the suite's own logging is left alone.
    code = (
        "import logging, logging.config, sys, yaml\n"
        "logging.config.dictConfig(yaml.safe_load(open(sys.argv[1])))\n"
        "logging.getLogger('s3w_tasks.demo').info('hello')\n"
        "logging.getLogger('botocore.demo').info('hidden')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(DOCKER / "log_config.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stderr == ""
    assert re.fullmatch(r"\S+ \S+ INFO +MainProcess s3w_tasks\.demo: hello\n", result.stdout)


# ------------------------------------------------------------------------------ the docs


def test_docs_name_every_service_port_and_volume(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        assert f"`{name}`" in DOCS, f"service {name} is not in docs/docker.md"
        image = service.get("image", "")
        if "chrislusf/seaweedfs" in image:
            assert f"chrislusf/seaweedfs:{env_example()['SEAWEEDFS_VERSION']}" in DOCS
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
            host_port = env_example()["S3_PORT"]
            assert f"http://127.0.0.1:{host_port}" in DOCS, port
            assert f"`{host_port}`" in DOCS, port
    for volume in compose["volumes"]:
        assert f"`{volume}`" in DOCS, f"volume {volume} is not in docs/docker.md"


def test_docs_document_every_env_example_variable() -> None:
    for name in env_example():
        assert f"`{name}`" in DOCS, f"{name} from .env.example is not in docs/docker.md"


def test_docs_commands_use_the_real_paths(compose: dict[str, Any]) -> None:
    blocks = "\n".join(code_blocks())
    builds = re.findall(r"docker build (.*)", blocks)
    assert builds == ["-f docker/Dockerfile -t s3w:0.1.0 ."]
    tag = "s3w:0.1.0"
    runs = re.findall(r"docker run .*?(?:\n(?!  )|$)", blocks, flags=re.DOTALL)
    assert runs, "no docker run examples"
    media_root = dockerfile_env()["PM_MEDIA_ROOT"]
    for run in runs:
        assert tag in run, run
        for mount in re.findall(r"-v (\S+)", run):
            assert mount.endswith(f":{media_root}"), mount
    composes = re.findall(r"docker compose (.*)", blocks)
    assert composes
    for command in composes:
        assert command.startswith("-f docker/compose.yaml --env-file docker/.env "), command
    assert "cp docker/.env.example docker/.env" in blocks
    assert f"`{compose['services']['worker']['image'].split(':-')[1].rstrip('}')}`" in DOCS


def test_docs_run_examples_set_documented_variables() -> None:
    readme = (ROOT / "README.md").read_text() if (ROOT / "README.md").exists() else ""
    documented = readme + DOCS
    for block in code_blocks():
        for name in re.findall(r"-e ([A-Z][A-Z0-9_]*)", block):
            assert f"`{name}`" in documented, f"docker run passes undocumented {name}"


# ------------------------------------------------------- the stack's commands, for real


@pytest.fixture(scope="module")
def seaweedfs() -> Iterator[services.SeaweedS3]:
    server = services.start_seaweedfs(access_key="compose-test", secret_key="compose-test-secret")
    try:
        yield server
    finally:
        server.stop()


def test_s3_healthcheck_url_answers(compose: dict[str, Any], seaweedfs: services.SeaweedS3) -> None:
    test = compose["services"]["s3"]["healthcheck"]["test"]
    url = test[-1].replace("http://127.0.0.1:8333", seaweedfs.endpoint)
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback only
        assert response.status == 200


def test_createbucket_command_creates_the_bucket_once(
    compose: dict[str, Any], seaweedfs: services.SeaweedS3, tmp_path: Path
) -> None:
    service = compose["services"]["createbucket"]
    (script,) = service["command"]
    assert not INTERPOLATION.search(script), "the script's $ must be escaped as $$ for compose"
    master = f"127.0.0.1:{seaweedfs.ports['master']}"
    script = script.replace("$$", "$").replace("-master=s3:9333", f"-master={master}")
    weed_dir = Path(services.find_binary("weed")).parent
    env = {"PATH": f"{weed_dir}{os.pathsep}{os.environ['PATH']}", "BUCKET": "compose-bucket"}
    for attempt in ("creates", "finds"):  # a second `up` must succeed too
        result = subprocess.run(
            ["sh", "-c", script],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, (attempt, result.stdout, result.stderr)
        assert "bucket compose-bucket is ready" in result.stdout, (attempt, result.stdout)
