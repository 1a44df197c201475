#!/bin/sh
# Build everything the image installs, from the lock file: the four s3w wheels and a
# wheelhouse of their locked dependencies (hashes checked), plus the requirements it came from.
# The Dockerfile's build stage and `nox -s image-smoke` both run this script.
#
#   docker/build-wheels.sh OUT_DIR
#
# Needs uv and a Python with pip (PYTHON, default python3) of the same version and platform
# as the interpreter that will run the wheels: binary dependencies are picked for it.
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

# Wheels for those pins: binary ones are downloaded, any sdist-only one is built here.
"$python" -m pip wheel --quiet --no-deps --require-hashes \
    --wheel-dir "$out" -r "$out/requirements.txt"
