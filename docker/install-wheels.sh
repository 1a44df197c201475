#!/bin/sh
# Install the wheels that build-wheels.sh made into a fresh virtual environment, with no
# package index: nothing but the files in WHEEL_DIR can be installed.
# The Dockerfile's runtime stage and `nox -s image-smoke` both run this script.
#
#   docker/install-wheels.sh WHEEL_DIR VENV_DIR
#
# PYTHON (default python3, >= 3.11, pip not needed) creates the environment; pip runs from the
# wheel build-wheels.sh put in WHEEL_DIR/tools. The environment gets no pip, setuptools or
# build tools.
set -eu

wheels=${1:?usage: install-wheels.sh WHEEL_DIR VENV_DIR}
venv=${2:?usage: install-wheels.sh WHEEL_DIR VENV_DIR}
python=${PYTHON:-python3}

pip=
for wheel in "$wheels"/tools/pip-*.whl; do
    pip=$wheel
done
if [ ! -f "$pip" ]; then
    echo "install-wheels.sh: no pip wheel in $wheels/tools; make WHEEL_DIR with build-wheels.sh" >&2
    exit 1
fi

"$python" -m venv --without-pip "$venv"
# Every wheel in the directory is one locked pin, so no resolver is needed: install them all
# without dependencies, then let pip confirm that every requirement is met. pip runs from its
# wheel inside the new environment, so it installs there and is not installed itself.
"$venv/bin/python" "$pip/pip" install --quiet --no-index --no-deps --no-cache-dir \
    --find-links "$wheels" "$wheels"/*.whl
"$venv/bin/python" "$pip/pip" check
