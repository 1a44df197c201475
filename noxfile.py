"""The one place the test matrix is declared.

`nox` runs the default sessions: every package's tests on every supported Python, each leg
with only that package and the packages below it installed; lint; type checks; the version
check. Heavy suites (benchmarks) are their own sessions and take `--quick` for a small size.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import nox

ROOT = Path(__file__).parent
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
nox.options.error_on_missing_interpreters = True
nox.options.download_python = "never"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["tests", "lint", "typecheck", "versions", "docker-lint", "image-smoke"]


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
    """ruff: lint and formatting."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


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
            session.run("python", "tests/reliability/report.py", str(results))
            if "--write-docs" in session.posargs:  # the generated blocks of the docs
                for doc in ("docs/reliability.md", "docs/security.md"):
                    session.run(
                        "python", "tests/reliability/report.py", "--write", doc, str(results)
                    )


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
    session.install(*nox.project.dependency_groups(PYPROJECT, "docker", "test"))
    session.run("hadolint", "docker/Dockerfile")
    session.run("shellcheck", *DOCKER_SCRIPTS)
    session.run(
        "pytest", "tests/docker", "--ignore=tests/docker/test_image_smoke.py", *session.posargs
    )


@nox.session(name="image-smoke", python="3.12")
def image_smoke(session: nox.Session) -> None:
    """The image's install steps outside Docker, then the installed s3w against real servers.

    Runs the two scripts the Dockerfile runs (wheels from the lock; a fresh venv installed
    with no index) on the image's Python version, then tests/docker/test_image_smoke.py.
    """
    # The test driver (not the image) needs pip for the scripts, boto3 and psycopg2 for fixtures.
    session.install(
        "pip", "boto3", "psycopg2-binary", *nox.project.dependency_groups(PYPROJECT, "test")
    )
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
