#!/bin/sh
# Install the wheels that build-wheels.sh made into a fresh virtual environment, with no
# package index: nothing but the files in WHEEL_DIR can be installed.
# The Dockerfile's runtime stage and `nox -s image-smoke` both run this script.
#
#   docker/install-wheels.sh WHEEL_DIR VENV_DIR
#
# PYTHON (default python3) creates the environment and runs pip; the environment itself gets
# no pip, setuptools or build tools.
set -eu

wheels=${1:?usage: install-wheels.sh WHEEL_DIR VENV_DIR}
venv=${2:?usage: install-wheels.sh WHEEL_DIR VENV_DIR}
python=${PYTHON:-python3}

"$python" -m venv --without-pip "$venv"
# Every wheel in the directory is one locked pin, so no resolver is needed: install them all
# without dependencies, then let pip confirm that every requirement is met.
"$python" -m pip --python "$venv/bin/python" install --quiet --no-index --no-deps \
    --no-cache-dir --find-links "$wheels" "$wheels"/*.whl
"$python" -m pip --python "$venv/bin/python" check
