"""Check that the four packages share one version and pin their siblings to exactly it."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["s3w-storage", "s3w-thumbs", "s3w-tasks", "s3w-cli"]


def main() -> int:
    problems: list[str] = []
    versions: dict[str, str] = {}
    projects = {}
    for name in PACKAGES:
        project = tomllib.loads((ROOT / "packages" / name / "pyproject.toml").read_text())[
            "project"
        ]
        projects[name] = project
        versions[name] = project["version"]
        module = name.replace("-", "_")
        init = (ROOT / "packages" / name / "src" / module / "__init__.py").read_text()
        match = re.search(r'^__version__ = "([^"]+)"', init, re.MULTILINE)
        if not match or match.group(1) != project["version"]:
            problems.append(f"{module}.__version__ does not match {name} {project['version']}")
    if len(set(versions.values())) != 1:
        problems.append("versions differ: " + ", ".join(f"{n} {v}" for n, v in versions.items()))
    version = versions[PACKAGES[0]]
    for name, project in projects.items():
        for requirement in project.get("dependencies", []):
            sibling = re.match(r"(s3w-[a-z]+)\s*(.*)", requirement)
            if sibling and sibling.group(1) in PACKAGES and sibling.group(2) != f"=={version}":
                problems.append(
                    f"{name} requires {requirement!r}; siblings must be pinned =={version}"
                )
    for problem in problems:
        print(f"version check: {problem}", file=sys.stderr)
    if not problems:
        print(f"version check: all {len(PACKAGES)} packages at {version}, sibling pins exact")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
