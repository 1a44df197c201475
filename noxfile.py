"""The one place the test matrix is declared.

`nox` runs the default sessions: every package's tests on every supported Python, each leg
with only that package and the packages below it installed; lint; type checks; the version
check. Heavy suites (benchmarks) are their own sessions and take `--quick` for a small size.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")
PYTHONS = ["3.11", "3.12", "3.13"]
# Tests marked `slow` (large transfers, fault injection, many tasks) run on this Python only;
# the other legs run everything else, so each interpreter is covered without tripling the
# slowest tests. `nox -s tests -- --all` (or S3W_TEST_ALL=1) runs them on every leg.
FULL_PYTHON = "3.12"

# Each package with the workspace packages it builds on (its leg installs exactly these).
LAYERS: dict[str, list[str]] = {
    "storage": ["s3w-storage"],
    "thumbs": ["s3w-thumbs"],
    "tasks": ["s3w-storage", "s3w-thumbs", "s3w-tasks"],
    "cli": ["s3w-storage", "s3w-thumbs", "s3w-tasks", "s3w-cli"],
}
# Test folders each leg runs; integration tests need every package, so they ride the cli leg.
TEST_DIRS: dict[str, list[str]] = {
    "storage": ["tests/storage"],
    "thumbs": ["tests/thumbs"],
    "tasks": ["tests/tasks"],
    "cli": ["tests/cli", "tests/integration"],
}

nox.options.default_venv_backend = "uv"
# A leg whose interpreter cannot be had fails the run: CI must never skip one silently.
nox.options.error_on_missing_interpreters = True
# uv downloads a missing interpreter, unless the environment forbids it: CI and offline
# machines export UV_PYTHON_DOWNLOADS=never and then need every interpreter installed.
nox.options.download_python = (
    "never" if os.environ.get("UV_PYTHON_DOWNLOADS", "").lower() in {"never", "manual"} else "auto"
)
nox.options.reuse_venv = "yes"
nox.options.sessions = ["tests", "lint", "typecheck", "versions", "docker-lint", "image-smoke"]


def _pyenv_root() -> Path | None:
    root = os.environ.get("PYENV_ROOT")
    if not root and shutil.which("pyenv"):
        found = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=False)
        root = found.stdout.strip() if found.returncode == 0 else ""
    path = Path(root) if root else Path.home() / ".pyenv"
    return path if (path / "versions").is_dir() else None


def _pyenv_interpreters() -> None:
    """Let nox find pyenv's interpreters without PYENV_VERSION: pyenv's shims answer only for
    the versions selected, so link the newest installed X.Y.Z of each matrix version that
    PATH does not already provide into a folder put in front of PATH."""
    root = _pyenv_root()
    if root is None:
        return
    shims = root / "shims"
    links = ROOT / ".nox" / "_pyenv"
    for version in PYTHONS:
        name = f"python{version}"
        on_path = shutil.which(name)
        if on_path and Path(on_path).parent != shims:
            continue
        patches = [
            (int(d.name.rsplit(".", 1)[1]), d / "bin" / name)
            for d in (root / "versions").glob(f"{version}.*")
            if d.name.rsplit(".", 1)[1].isdigit() and (d / "bin" / name).exists()
        ]
        if not patches:
            continue
        links.mkdir(parents=True, exist_ok=True)
        link = links / name
        link.unlink(missing_ok=True)
        link.symlink_to(max(patches)[1])
    if links.is_dir() and str(links) not in os.environ["PATH"].split(os.pathsep):
        os.environ["PATH"] = f"{links}{os.pathsep}{os.environ['PATH']}"


_pyenv_interpreters()


def _install(session: nox.Session, packages: list[str], *groups: str) -> None:
    args: list[str] = []
    for group in groups:
        args += nox.project.dependency_groups(PYPROJECT, group)
    for package in packages:
        args += ["-e", str(ROOT / "packages" / package)]
    session.install(*args)


@nox.session(python=PYTHONS)
@nox.parametrize("package", list(LAYERS))
def tests(session: nox.Session, package: str) -> None:
    """Run one package's tests with only it and the packages below it installed."""
    _install(session, LAYERS[package], "test")
    dirs = [d for d in TEST_DIRS[package] if any((ROOT / d).glob("**/test_*.py"))]
    args = list(session.posargs)
    run_all = "--all" in args or os.environ.get("S3W_TEST_ALL") == "1"
    args = [a for a in args if a != "--all"]
    if session.python != FULL_PYTHON and not run_all:
        args = ["-m", "not slow", *args]
    session.run("pytest", *dirs, *args, env={"S3W_TEST_LEG": package})


@nox.session(python=PYTHONS[0])
def lint(session: nox.Session) -> None:
    """ruff (lint and formatting) and the house rules of CONTRIBUTING.md."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    # The house rules (CONTRIBUTING.md): arrows down, no circles, small modules, one door to S3.
    session.run("python", "scripts/house.py", "--check")


@nox.session(python=PYTHONS[0])
def typecheck(session: nox.Session) -> None:
    """mypy over every package (strict for s3w-storage, per pyproject)."""
    _install(session, list(LAYERS["cli"]), "lint")
    for package in LAYERS["cli"]:
        session.run("mypy", str(ROOT / "packages" / package / "src"))


@nox.session(python=False)
def versions(session: nox.Session) -> None:
    """Fail when the four packages' versions or their sibling pins drift apart."""
    session.run(sys.executable, str(ROOT / "scripts" / "check_versions.py"))


@nox.session(python=PYTHONS[0])
def bench(session: nox.Session) -> None:
    """Benchmarks side by side with the tools users would pick instead (`-- --quick` for CI)."""
    _install(session, LAYERS["cli"], "test", "bench")
    scripts = sorted((ROOT / "benchmarks").glob("bench_*.py"))
    only = os.environ.get("S3W_BENCH")
    for script in scripts:
        if only and only not in script.stem:
            continue
        session.run("python", str(script), *session.posargs)


@nox.session(python=PYTHONS[0])
def reliability(session: nox.Session) -> None:
    """Faults, load, hostile input and secrets (tests/reliability), small by default;
    `-- --full` for the sizes docs/reliability.md reports. Ends with the results table;
    `-- --write-docs` also writes the generated blocks of docs/reliability.md and security.md."""
    _install(session, LAYERS["cli"], "test")
    full = "--full" in session.posargs
    args = [a for a in session.posargs if a not in ("--full", "--write-docs")]
    results = Path(session.create_tmp()).resolve() / f"reliability-{'full' if full else 'ci'}.jsonl"
    results.unlink(missing_ok=True)
    env = {
        "S3W_TEST_RELIABILITY_FULL": "1" if full else "0",
        "S3W_TEST_RELIABILITY_RESULTS": str(results),
    }
    try:
        session.run("pytest", "tests/reliability", *args, env=env)
    finally:
        if results.exists():
            session.run("python", "tests/support/report.py", str(results))
            if "--write-docs" in session.posargs:  # the generated blocks of the docs
                for doc in ("docs/reliability.md", "docs/security.md"):
                    session.run("python", "tests/support/report.py", "--write", doc, str(results))


# The container files: no Docker engine is needed for either session.
DOCKER_SCRIPTS = [
    "docker/entrypoint.sh",
    "docker/healthcheck.sh",
    "docker/build-wheels.sh",
    "docker/install-wheels.sh",
]


@nox.session(name="docker-lint", python=PYTHONS[0])
def docker_lint(session: nox.Session) -> None:
    """hadolint, shellcheck, and tests/docker: entrypoint logic, compose file, docs."""
    # s3w-storage for the fixtures: the SeaweedFS launcher the tests share lives there.
    _install(session, LAYERS["storage"], "docker", "test")
    session.run("hadolint", "docker/Dockerfile")
    session.run("shellcheck", *DOCKER_SCRIPTS)
    session.run(
        "pytest",
        "tests/docker",
        "--ignore=tests/docker/test_image_smoke.py",
        "--ignore=tests/docker/test_image.py",
        *session.posargs,
    )


@nox.session(name="image-smoke", python="3.12")
def image_smoke(session: nox.Session) -> None:
    """The image's install steps outside Docker, then the installed s3w against real servers.

    Runs the two scripts the Dockerfile runs (wheels from the lock; a fresh venv installed
    with no index) on the image's Python version, then tests/docker/test_image_smoke.py.
    """
    # The test driver (not the image) needs pip for the scripts, psycopg2 and s3w-storage (the
    # SeaweedFS launcher, boto3) for the fixtures.
    session.install("pip", "psycopg2-binary")
    _install(session, LAYERS["storage"], "test")
    work = Path(session.create_tmp()).resolve() / "image"
    shutil.rmtree(work, ignore_errors=True)
    wheels, venv = work / "wheels", work / "venv"
    env = {"PYTHON": str(Path(session.bin) / "python")}
    session.run("sh", "docker/build-wheels.sh", str(wheels), env=env, external=True)
    session.run("sh", "docker/install-wheels.sh", str(wheels), str(venv), env=env, external=True)
    _log_sizes(session, wheels, venv)
    session.run(
        "pytest",
        "tests/docker/test_image_smoke.py",
        *session.posargs,
        env={"S3W_IMAGE_VENV": str(venv), "S3W_IMAGE_WHEELS": str(wheels)},
    )


def _log_sizes(session: nox.Session, wheels: Path, venv: Path) -> None:
    """Wheel sizes and the installed footprint, for the record."""
    kib = {w.name: w.stat().st_size / 1024 for w in wheels.glob("*.whl")}
    ours = sorted(name for name in kib if name.startswith("s3w_"))
    for name in ours:
        session.log(f"{kib[name]:8.1f} KiB  {name}")
    deps = sorted((n for n in kib if n not in ours), key=kib.__getitem__, reverse=True)
    largest = ", ".join(f"{n.split('-')[0]} {kib[n] / 1024:.1f}" for n in deps[:5])
    session.log(
        f"{sum(kib[n] for n in deps) / 1024:8.1f} MiB  {len(deps)} dependency wheels"
        f" (largest, MiB: {largest})"
    )
    files = [f for f in venv.rglob("*") if f.is_file() and not f.is_symlink()]
    session.log(f"{sum(f.stat().st_size for f in files) / 2**20:8.1f} MiB  installed environment")


# ------------------------------------------------------------------------------------ image
# `nox -s image` builds docker/Dockerfile with podman from a Debian base made here (no image
# registry needed), with the wheels built on this machine, then runs tests/docker/test_image.py
# against the container. The base tarball is cached between runs under the user cache
# directory, keyed by what goes into it; pip's own cache keeps the dependency wheels.

IMAGE_BASE_SUITE = "bookworm"  # its python3 is 3.11: the session's Python must match
IMAGE_BASE_PACKAGES = ["python3", "ca-certificates", "poppler-utils"]
IMAGE_BASE_OPTIONS = [
    "--variant=minbase",
    "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-exclude=/usr/share/man/*",
    "--dpkgopt=path-exclude=/usr/share/locale/*",
]
IMAGE_TOOLS = {"podman": "podman", "runc": "runc", "mmdebstrap": "mmdebstrap"}
# runc and cgroupfs work on hosts without systemd (crun's cgroup setup needs more); explicit
# ulimits because some hosts refuse podman's defaults.
PODMAN = ["podman", "--runtime", "runc", "--cgroup-manager", "cgroupfs"]
PODMAN_LIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]
IMAGE_TAG = "localhost/s3w:test"

# The markers pip's `packaging` evaluates, as the base image's python3 reports them.
_MARKER_ENV_CODE = """
import json, os, platform, sys
print(json.dumps({
    "implementation_name": sys.implementation.name,
    "implementation_version": platform.python_version(),
    "os_name": os.name,
    "platform_machine": platform.machine(),
    "platform_python_implementation": platform.python_implementation(),
    "platform_release": platform.release(),
    "platform_system": platform.system(),
    "platform_version": platform.version(),
    "python_full_version": platform.python_version(),
    "python_version": ".".join(platform.python_version_tuple()[:2]),
    "sys_platform": sys.platform,
}))
"""


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    path = Path(base) / "s3w" / "image"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _image_tools(session: nox.Session) -> None:
    """podman, runc and mmdebstrap from apt when missing (CI runs as root on Debian)."""
    missing = [pkg for tool, pkg in IMAGE_TOOLS.items() if shutil.which(tool) is None]
    if not missing:
        return
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        session.error(f"install {', '.join(missing)} (apt-get install -y {' '.join(missing)})")
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    session.run("apt-get", "update", "-qq", external=True, env=env)
    session.run("apt-get", "install", "-y", "-qq", *missing, external=True, env=env)


def _podman_ok(*args: str) -> bool:
    return subprocess.run([*PODMAN, *args], capture_output=True, check=False).returncode == 0


def _image_id(tag: str) -> str:
    found = subprocess.run(
        [*PODMAN, "image", "inspect", "--format", "{{.Id}}", tag],
        capture_output=True,
        text=True,
        check=False,
    )
    return found.stdout.strip() if found.returncode == 0 else ""


def _dangling() -> set[str]:
    found = subprocess.run(
        [*PODMAN, "images", "--quiet", "--no-trunc", "--filter", "dangling=true"],
        capture_output=True,
        text=True,
        check=False,
    )
    return set(found.stdout.split())


def _base_image(session: nox.Session) -> str:
    """A Debian image with python3 and pdftoppm, made with mmdebstrap once per inputs."""
    recipe = json.dumps([IMAGE_BASE_SUITE, IMAGE_BASE_PACKAGES, IMAGE_BASE_OPTIONS])
    key = hashlib.sha256(recipe.encode()).hexdigest()[:12]
    tag = f"localhost/s3w-base:{IMAGE_BASE_SUITE}-{key}"
    if _podman_ok("image", "exists", tag):
        session.log(f"base image {tag} (cached)")
        return tag
    tarball = _cache_dir() / f"base-{IMAGE_BASE_SUITE}-{key}.tar"
    if not tarball.exists():
        # mmdebstrap picks the output format from the name: keep `.tar` at the end.
        partial = tarball.with_name(f"{tarball.stem}.partial.tar")
        partial.unlink(missing_ok=True)
        started = time.monotonic()
        session.run(
            "mmdebstrap",
            "--quiet",
            *IMAGE_BASE_OPTIONS,
            f"--include={','.join(IMAGE_BASE_PACKAGES)}",
            IMAGE_BASE_SUITE,
            str(partial),
            external=True,
        )
        partial.rename(tarball)
        session.log(f"base tarball made in {time.monotonic() - started:.0f} s: {tarball}")
    session.run(*PODMAN, "import", "--quiet", str(tarball), tag, external=True, silent=True)
    return tag


@nox.session(python="3.11")
def image(session: nox.Session) -> None:
    """Build docker/Dockerfile with podman (no registry, no index during the build) and run
    the container against real PostgreSQL, Redis and SeaweedFS: tests/docker/test_image.py."""
    _image_tools(session)
    session.install(
        "pip", "packaging", "celery[redis]", "psycopg2-binary", "Pillow", "podman-compose"
    )
    _install(session, LAYERS["storage"], "test")  # the fixtures' SeaweedFS launcher, boto3
    base = _base_image(session)
    work = Path(session.create_tmp()).resolve() / "image"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)

    # The wheels are picked for the base image's python3, not this session's patch release.
    markers = work / "markers.json"
    found = subprocess.run(
        [
            *PODMAN,
            "run",
            "--rm",
            *PODMAN_LIMITS,
            "--network",
            "none",
            base,
            "python3",
            "-c",
            _MARKER_ENV_CODE,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    markers.write_text(found)
    base_python = json.loads(found)["python_version"]
    if base_python != session.python:
        session.error(
            f"the base image has Python {base_python}; this session runs {session.python}"
        )
    wheels = work / "wheels"
    env = {"PYTHON": str(Path(session.bin) / "python"), "MARKER_ENV": str(markers)}
    session.run("sh", "docker/build-wheels.sh", str(wheels), env=env, external=True)

    previous = _image_id(IMAGE_TAG)
    dangling = _dangling()
    started = time.monotonic()
    session.run(
        *PODMAN,
        "build",
        # Docker's format keeps HEALTHCHECK (OCI has no field for it).
        "--format",
        "docker",
        # Every step again: the layer cache does not see a change in the mounted wheels.
        "--no-cache",
        *PODMAN_LIMITS,
        # No network at all: the base has everything, the wheels come from the context.
        "--network",
        "none",
        "--file",
        "docker/Dockerfile",
        "--ignorefile",
        "docker/Dockerfile.dockerignore",
        "--build-arg",
        f"BASE_IMAGE={base}",
        "--build-arg",
        "WHEELS=context",
        "--build-context",
        f"s3w-wheels={wheels}",
        "--tag",
        IMAGE_TAG,
        ".",
        external=True,
        silent=True,
    )
    built = time.monotonic() - started
    # The last run's image (now untagged) and this build's stage images: nothing piles up.
    leftovers = _dangling() - dangling
    if previous and previous != _image_id(IMAGE_TAG):
        leftovers.add(previous)
    if leftovers:
        _podman_ok("rmi", *sorted(leftovers))
    size = subprocess.run(
        [*PODMAN, "image", "inspect", "--format", "{{.Size}}", IMAGE_TAG],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    session.log(
        f"image {IMAGE_TAG}: built in {built:.0f} s, {int(size) / 2**20:.0f} MiB (base {base})"
    )
    session.run(
        "pytest",
        "tests/docker/test_image.py",
        "-s",
        *session.posargs,
        env={
            "S3W_IMAGE": IMAGE_TAG,
            "S3W_PODMAN": " ".join(PODMAN),
            "S3W_PODMAN_RUN": " ".join(PODMAN_LIMITS),
        },
    )
    # The compose stack's other services are registry images: where no registry is reachable,
    # podman-compose can only read and interpolate the file, which it must do without error.
    session.run(
        "podman-compose",
        "--file",
        "docker/compose.yaml",
        "--env-file",
        "docker/.env.example",
        "config",
        silent=True,
    )
