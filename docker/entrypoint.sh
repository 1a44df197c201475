#!/bin/sh
# The s3w image's entrypoint, compatible with the earlier worker image.
#
#   worker [ARGS...]   (the default) exec the Celery worker on the Papermerge queues;
#                      ARGS are appended to the worker's arguments
#   -x ...             an argument list starting with an option is passed to `worker`
#   anything else      exec'd as given: `s3w sync`, `s3w doctor`, `sh`, ...
#
# Queues, when S3_WORKER_ARGS is unset or empty (Papermerge's naming rules):
#   s3 queue       PM_S3_QUEUE_NAME          else s3_{PM_PREFIX}_{NODE_NAME}         when NODE_NAME is set,
#                                            else {PM_PREFIX}_s3 (or s3 without a prefix)
#   preview queue  PM_S3_PREVIEW_QUEUE_NAME  else s3preview_{PM_PREFIX}_{NODE_NAME}  when NODE_NAME is set,
#                                            else {PM_PREFIX}_s3preview (or s3preview)
# An empty variable counts as unset. The chosen names are exported, so the worker's own
# routing agrees with the queues it consumes. S3_WORKER_ARGS, when set, replaces the default
# worker arguments (`-Q <s3>,<preview> -c 2`) word for word, as in the earlier image.
#
# The worker is started with `exec`, so it is PID 1's process and receives SIGTERM directly
# (Celery's warm shutdown: finish the running tasks, then exit).
set -eu

CELERY_APP=s3worker.celery_app

say() {
    printf 's3w-entrypoint: %s\n' "$*" >&2
}

die() {
    say "$*"
    exit 64 # EX_USAGE
}

prefixed() {
    if [ -n "${PM_PREFIX:-}" ]; then
        printf '%s_%s' "$PM_PREFIX" "$1"
    else
        printf '%s' "$1"
    fi
}

# Sets and exports PM_S3_QUEUE_NAME and PM_S3_PREVIEW_QUEUE_NAME.
choose_queues() {
    s3_queue=${PM_S3_QUEUE_NAME:-}
    preview_queue=${PM_S3_PREVIEW_QUEUE_NAME:-}
    if [ -n "${NODE_NAME:-}" ]; then
        # A Kubernetes DaemonSet gives each node its own queues (the earlier image's names).
        : "${s3_queue:=s3_${PM_PREFIX:-}_${NODE_NAME}}"
        : "${preview_queue:=s3preview_${PM_PREFIX:-}_${NODE_NAME}}"
    else
        : "${s3_queue:=$(prefixed s3)}"
        : "${preview_queue:=$(prefixed s3preview)}"
    fi
    PM_S3_QUEUE_NAME=$s3_queue
    PM_S3_PREVIEW_QUEUE_NAME=$preview_queue
    export PM_S3_QUEUE_NAME PM_S3_PREVIEW_QUEUE_NAME
}

# Refuses a -Q/--queues option whose value names no queue (Celery would consume nothing
# the core sends). Takes the worker's argument list.
check_queue_options() {
    while [ "$#" -gt 0 ]; do
        value=
        case $1 in
            -Q | --queues)
                [ "$#" -ge 2 ] || die "$1 needs a queue list"
                value=$2
                shift
                ;;
            -Q*) value=${1#-Q} ;;
            --queues=*) value=${1#--queues=} ;;
            *) shift && continue ;;
        esac
        case $value in
            *[!,\ ]*) ;;
            *) die "refusing to start the worker with an empty queue list ('$value')" ;;
        esac
        shift
    done
}

start_worker() {
    choose_queues
    if [ -n "${S3_WORKER_ARGS:-}" ]; then
        # Word splitting is the documented contract of S3_WORKER_ARGS; globbing is not.
        set -f
        # shellcheck disable=SC2086
        set -- $S3_WORKER_ARGS "$@"
        set +f
    else
        queues=$PM_S3_QUEUE_NAME
        if [ "$PM_S3_PREVIEW_QUEUE_NAME" != "$PM_S3_QUEUE_NAME" ]; then
            queues=$queues,$PM_S3_PREVIEW_QUEUE_NAME
        fi
        set -- -Q "$queues" -c 2 "$@"
    fi
    check_queue_options "$@"
    if [ -n "${S3_WORKER_ARGS:-}" ]; then
        say "starting the Celery worker with S3_WORKER_ARGS"
    else
        say "starting the Celery worker on queues $queues"
    fi
    if [ "${PM_LOG_FORMAT:-}" = json ]; then
        # No banner on stdout: every line the container prints is a JSON log record.
        exec celery --quiet -A "$CELERY_APP" worker "$@"
    fi
    exec celery -A "$CELERY_APP" worker "$@"
}

if [ "$#" -eq 0 ]; then
    set -- worker
fi
case $1 in
    -*) set -- worker "$@" ;;
esac

if [ "$1" = worker ]; then
    shift
    start_worker "$@"
fi
exec "$@"
