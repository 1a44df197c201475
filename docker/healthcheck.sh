#!/bin/sh
# The image's HEALTHCHECK: healthy only when this container's Celery worker answers a ping
# over the broker, not merely when a process exists.
#
#   S3W_WORKER_NODE          the worker's node name (default celery@<hostname>, Celery's own
#                            default; set it when S3_WORKER_ARGS passes -n/--hostname)
#   S3W_HEALTHCHECK_TIMEOUT  seconds to wait for the reply (default 10)
set -eu

node=${S3W_WORKER_NODE:-celery@$(uname -n)}
exec celery -A s3worker.celery_app inspect ping \
    --destination "$node" --timeout "${S3W_HEALTHCHECK_TIMEOUT:-10}"
