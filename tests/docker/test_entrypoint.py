"""docker/entrypoint.sh and docker/healthcheck.sh: queue names, argument handling, exec.

No Docker engine and no worker are under test here, only the shell scripts' decisions. So
`celery` (and `s3w`) on PATH are stand-ins: small programs that record the argv and the
queue variables they were started with, and their PID. That is the observable contract of
the scripts: which command they exec, with which arguments and environment. Matching PIDs
prove the script exec'd (signals reach the worker) instead of running a child. The real
worker is started through the same entrypoint by `nox -s image-smoke`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"
HEALTHCHECK = ROOT / "docker" / "healthcheck.sh"
EX_USAGE = 64

STUB = """#!{python}
import json, os, sys
names = ("PM_S3_QUEUE_NAME", "PM_S3_PREVIEW_QUEUE_NAME")
print(json.dumps({{
    "prog": os.path.basename(sys.argv[0]),
    "argv": sys.argv[1:],
    "pid": os.getpid(),
    "env": {{name: os.environ.get(name) for name in names}},
}}))
"""


# Every POSIX shell on this machine that can run the script: dash is /bin/sh on Debian (the
# image's shell); bash and busybox catch bashisms and dash-only habits.
def _shells() -> list[str]:
    found: dict[str, str] = {}
    for name in ("sh", "dash", "bash", "busybox"):
        path = shutil.which(name)
        if path is not None:
            found.setdefault(os.path.realpath(path), name)
    return list(found.values())


SHELLS = _shells()


@pytest.fixture(params=SHELLS)
def shell(request: pytest.FixtureRequest) -> list[str]:
    name = str(request.param)
    return [shutil.which(name) or name, *(["sh"] if name == "busybox" else [])]


@pytest.fixture
def stub_bin(tmp_path: Path) -> Path:
    """A directory with stand-in `celery` and `s3w` programs that print what they got."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("celery", "s3w"):
        stub = bin_dir / name
        stub.write_text(STUB.format(python=sys.executable))
        stub.chmod(0o755)
    return bin_dir


def run(
    shell: list[str], stub_bin: Path, script: Path, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run ``script`` with only PATH (stubs first) and the given variables set."""
    environ = {"PATH": f"{stub_bin}{os.pathsep}{os.environ['PATH']}", **env}
    return subprocess.run(
        [*shell, str(script), *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def execd(shell: list[str], stub_bin: Path, *args: str, **env: str) -> dict[str, object]:
    """Run the entrypoint and return what the exec'd stand-in recorded."""
    proc = subprocess.Popen(
        [*shell, str(ENTRYPOINT), *args],
        env={"PATH": f"{stub_bin}{os.pathsep}{os.environ['PATH']}", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, f"entrypoint exited {proc.returncode}; stderr:\n{err}"
    record: dict[str, object] = json.loads(out)
    assert record["pid"] == proc.pid, (
        f"the command ran as a child (pid {record['pid']}), not exec'd as pid {proc.pid}"
    )
    return record


def worker_argv(*queue_args: str) -> list[str]:
    return ["-A", "s3worker.celery_app", "worker", *queue_args]


# ------------------------------------------------------------------------------ queues


@pytest.mark.parametrize(
    ("env", "s3", "preview"),
    [
        pytest.param({}, "s3", "s3preview", id="no-prefix"),
        pytest.param({"PM_PREFIX": ""}, "s3", "s3preview", id="empty-prefix"),
        pytest.param({"PM_PREFIX": "demo"}, "demo_s3", "demo_s3preview", id="prefix"),
        pytest.param(
            {"PM_PREFIX": "demo", "NODE_NAME": "node-1"},
            "s3_demo_node-1",
            "s3preview_demo_node-1",
            id="node-name-with-prefix",
        ),
        # The earlier image's names exactly, double underscore included, so existing
        # DaemonSets and the core's per-node routing keep matching.
        pytest.param({"NODE_NAME": "node-1"}, "s3__node-1", "s3preview__node-1", id="node-name"),
        pytest.param(
            {"PM_PREFIX": "demo", "NODE_NAME": "node-1", "PM_S3_QUEUE_NAME": "docs"},
            "docs",
            "s3preview_demo_node-1",
            id="s3-override-beats-node-name",
        ),
        pytest.param(
            {"PM_PREFIX": "demo", "PM_S3_PREVIEW_QUEUE_NAME": "thumbs"},
            "demo_s3",
            "thumbs",
            id="preview-override-beats-prefix",
        ),
        pytest.param(
            {
                "PM_PREFIX": "demo",
                "NODE_NAME": "node-1",
                "PM_S3_QUEUE_NAME": "a",
                "PM_S3_PREVIEW_QUEUE_NAME": "b",
            },
            "a",
            "b",
            id="both-overrides",
        ),
        pytest.param(
            {"PM_PREFIX": "demo", "PM_S3_QUEUE_NAME": "", "PM_S3_PREVIEW_QUEUE_NAME": ""},
            "demo_s3",
            "demo_s3preview",
            id="empty-overrides-count-as-unset",
        ),
    ],
)
def test_worker_consumes_the_papermerge_queues(
    shell: list[str], stub_bin: Path, env: dict[str, str], s3: str, preview: str
) -> None:
    record = execd(shell, stub_bin, "worker", **env)

    assert record["prog"] == "celery"
    assert record["argv"] == worker_argv("-Q", f"{s3},{preview}", "-c", "2")
    # Exported, so the worker's own routing sends follow-up tasks to the same queues.
    assert record["env"] == {"PM_S3_QUEUE_NAME": s3, "PM_S3_PREVIEW_QUEUE_NAME": preview}


def test_json_logs_start_celery_without_its_banner(shell: list[str], stub_bin: Path) -> None:
    record = execd(shell, stub_bin, "worker", PM_PREFIX="p", PM_LOG_FORMAT="json")
    assert record["argv"] == ["--quiet", *worker_argv("-Q", "p_s3,p_s3preview", "-c", "2")]


def test_one_queue_for_both_is_listed_once(shell: list[str], stub_bin: Path) -> None:
    record = execd(
        shell, stub_bin, "worker", PM_S3_QUEUE_NAME="all", PM_S3_PREVIEW_QUEUE_NAME="all"
    )
    assert record["argv"] == worker_argv("-Q", "all", "-c", "2")


def test_worker_is_the_default_command(shell: list[str], stub_bin: Path) -> None:
    assert execd(shell, stub_bin, PM_PREFIX="p")["argv"] == worker_argv(
        "-Q", "p_s3,p_s3preview", "-c", "2"
    )


def test_worker_arguments_are_appended(shell: list[str], stub_bin: Path) -> None:
    record = execd(shell, stub_bin, "worker", "--loglevel", "DEBUG", "-n", "one@%h")
    assert record["argv"] == worker_argv(
        "-Q", "s3,s3preview", "-c", "2", "--loglevel", "DEBUG", "-n", "one@%h"
    )


def test_leading_option_means_worker(shell: list[str], stub_bin: Path) -> None:
    record = execd(shell, stub_bin, "-c", "4")
    assert record["argv"] == worker_argv("-Q", "s3,s3preview", "-c", "2", "-c", "4")


# ---------------------------------------------------------------------- S3_WORKER_ARGS


def test_s3_worker_args_replace_the_defaults(shell: list[str], stub_bin: Path) -> None:
    record = execd(
        shell,
        stub_bin,
        "worker",
        PM_PREFIX="demo",
        S3_WORKER_ARGS="-Q mine,theirs  -c 8 --loglevel=INFO",
    )
    assert record["argv"] == worker_argv("-Q", "mine,theirs", "-c", "8", "--loglevel=INFO")
    # The variables still follow the naming rules for anything that reads them.
    assert record["env"] == {
        "PM_S3_QUEUE_NAME": "demo_s3",
        "PM_S3_PREVIEW_QUEUE_NAME": "demo_s3preview",
    }


def test_s3_worker_args_are_split_but_not_globbed(
    shell: list[str], stub_bin: Path, tmp_path: Path
) -> None:
    (tmp_path / "bin" / "decoy").touch()
    record = execd(shell, stub_bin, S3_WORKER_ARGS=f"-Q s3 --pidfile {tmp_path}/bin/*")
    assert record["argv"] == worker_argv("-Q", "s3", "--pidfile", f"{tmp_path}/bin/*")


def test_s3_worker_args_without_queues_leave_them_to_the_app(
    shell: list[str], stub_bin: Path
) -> None:
    # The Celery app's own defaults consume both Papermerge queues when -Q is absent.
    record = execd(shell, stub_bin, S3_WORKER_ARGS="-c 1")
    assert record["argv"] == worker_argv("-c", "1")


@pytest.mark.parametrize(
    ("args", "env"),
    [
        pytest.param(["worker"], {"S3_WORKER_ARGS": "-c 2 -Q ,"}, id="args-comma-only"),
        pytest.param(["worker"], {"S3_WORKER_ARGS": "-c 2 -Q"}, id="args-missing-value"),
        pytest.param(["worker", "-Q", ""], {}, id="empty-Q"),
        pytest.param(["worker", "--queues="], {}, id="empty-queues="),
        pytest.param(["worker", "--queues", " , "], {}, id="blank-queues"),
        pytest.param(["-Q,"], {}, id="attached-Q"),
    ],
)
def test_never_starts_with_an_empty_queue_list(
    shell: list[str], stub_bin: Path, args: list[str], env: dict[str, str]
) -> None:
    result = run(shell, stub_bin, ENTRYPOINT, *args, **env)

    assert result.returncode == EX_USAGE, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == "", "celery must not have been started"
    assert "queue list" in result.stderr


# ----------------------------------------------------------------------- other commands


def test_other_commands_are_execd_as_given(shell: list[str], stub_bin: Path) -> None:
    record = execd(shell, stub_bin, "s3w", "sync", "--prefix", "two words", "")
    assert record["prog"] == "s3w"
    assert record["argv"] == ["sync", "--prefix", "two words", ""]


def test_a_shell_command_runs_with_the_image_environment(shell: list[str], stub_bin: Path) -> None:
    result = run(shell, stub_bin, ENTRYPOINT, "sh", "-c", 'echo "ran: $0 $1"', "a", "b c")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ran: a b c\n"


def test_exit_status_of_other_commands_is_kept(shell: list[str], stub_bin: Path) -> None:
    result = run(shell, stub_bin, ENTRYPOINT, "sh", "-c", "exit 3")
    assert result.returncode == 3


# --------------------------------------------------------------------------- healthcheck


def test_healthcheck_pings_this_containers_worker(shell: list[str], stub_bin: Path) -> None:
    result = run(shell, stub_bin, HEALTHCHECK)
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    node = f"celery@{os.uname().nodename}"  # Celery's default node name, celery@%h
    assert record["argv"] == [
        "-A",
        "s3worker.celery_app",
        "inspect",
        "ping",
        "--destination",
        node,
        "--timeout",
        "10",
    ]


def test_healthcheck_node_and_timeout_can_be_set(shell: list[str], stub_bin: Path) -> None:
    result = run(
        shell, stub_bin, HEALTHCHECK, S3W_WORKER_NODE="w1@pod", S3W_HEALTHCHECK_TIMEOUT="3"
    )
    assert json.loads(result.stdout)["argv"][-4:] == ["--destination", "w1@pod", "--timeout", "3"]


def test_scripts_are_executable_posix_sh() -> None:
    for script in (ENTRYPOINT, HEALTHCHECK):
        assert os.access(script, os.X_OK), f"{script.name} is not executable"
        assert script.read_text().startswith("#!/bin/sh\n"), f"{script.name}: not #!/bin/sh"
