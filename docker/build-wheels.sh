#!/bin/sh
# Build everything the image installs, from the lock file: the four s3w wheels and a
# wheelhouse of their locked dependencies (hashes checked), plus the requirements it came from,
# and in tools/ the wheel of the pip that installs them (so the image's Python needs no pip).
# The Dockerfile's build stage and `nox -s image-smoke` both run this script.
#
#   docker/build-wheels.sh OUT_DIR
#
# Needs uv and a Python with pip (PYTHON, default python3) of the same version and platform
# as the interpreter that will run the wheels: binary dependencies are picked for it. The set
# of wheels follows uv.lock, so a dependency added there is in the next build.
#
# MARKER_ENV (optional) names a JSON file with the environment markers of the interpreter that
# will run the wheels, when that is not PYTHON (a base image's python3 of another patch release:
# a pin like `async-timeout; python_full_version < '3.11.3'` must follow the image, not PYTHON).
# The locked pins are then chosen by those markers; PYTHON needs the `packaging` module.
set -eu

out=${1:?usage: build-wheels.sh OUT_DIR}
python=${PYTHON:-python3}
root=$(CDPATH='' cd -- "$(dirname -- "$0")/.." && pwd)

mkdir -p "$out"
out=$(CDPATH='' cd -- "$out" && pwd)
cd "$root"

# The four packages, each a wheel built from its own source tree.
uv build --all-packages --wheel --no-create-gitignore --out-dir "$out"

# Their third-party dependencies exactly as locked (s3w-cli pulls in the other three).
uv export --frozen --package s3w-cli --no-dev --no-emit-workspace \
    --format requirements.txt --output-file "$out/requirements.txt" --quiet

if [ -n "${MARKER_ENV:-}" ]; then
    "$python" - "$out/requirements.txt" "$MARKER_ENV" <<'PY'
import json
import sys
from pathlib import Path

from packaging.markers import Marker

path, environment = Path(sys.argv[1]), json.loads(Path(sys.argv[2]).read_text())
logical = path.read_text().replace("\\\n", " ").splitlines()
kept = []
for line in logical:
    if not line.strip() or line.lstrip().startswith("#"):
        continue
    requirement, _, hashes = line.partition(" --hash")
    name, _, marker = requirement.partition(";")
    if not marker.strip() or Marker(marker.strip()).evaluate(environment):
        kept.append(name.strip() + (f" --hash{hashes}" if hashes else ""))
path.write_text("\n".join(kept) + "\n")
PY
fi

# Wheels for those pins: binary ones are downloaded, any sdist-only one is built here.
"$python" -m pip wheel --quiet --no-deps --require-hashes \
    --wheel-dir "$out" -r "$out/requirements.txt"

# The installer: this pip's own version as a wheel, run from the wheel file by install-wheels.sh.
pip_version=$("$python" -m pip --version | cut -d' ' -f2)
"$python" -m pip download --quiet --no-deps --only-binary=:all: \
    --dest "$out/tools" "pip==$pip_version"
