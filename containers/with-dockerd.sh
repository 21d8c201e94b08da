#!/usr/bin/env bash
# Run a command with a Docker engine: the running one, or a dockerd started for the command
# and stopped after it (by its PID), whether the command succeeds or fails.
#
#   containers/with-dockerd.sh COMMAND [ARG...]
#
# DOCKERD_STORAGE_DRIVER: dockerd's --storage-driver (default: dockerd's own choice, overlay2
# where the kernel mounts overlayfs, else vfs, or the driver of the data root's existing images;
# vfs works everywhere but copies the whole file system per layer, several times slower),
# DOCKERD_LOG (default ${TMPDIR:-/tmp}/dare-dockerd.log), DOCKERD_WAIT (seconds, 60).
# Starting dockerd needs root. The exit status is the command's; 2 when no engine can be had.
set -euo pipefail

if [ $# -eq 0 ]; then
    echo "usage: with-dockerd.sh COMMAND [ARG...]" >&2
    exit 2
fi
if docker info >/dev/null 2>&1; then
    exec "$@"
fi
if ! command -v dockerd >/dev/null; then
    echo "with-dockerd.sh: no Docker engine answers and dockerd is not installed" \
         "(apt-get install docker.io docker-compose)" >&2
    exit 2
fi
if [ "$(id -u)" != 0 ]; then
    echo "with-dockerd.sh: no Docker engine answers, and starting dockerd needs root" >&2
    exit 2
fi

log="${DOCKERD_LOG:-${TMPDIR:-/tmp}/dare-dockerd.log}"
driver=()
if [ -n "${DOCKERD_STORAGE_DRIVER:-}" ]; then
    driver=(--storage-driver="$DOCKERD_STORAGE_DRIVER")
fi
dockerd "${driver[@]}" >"$log" 2>&1 &
pid=$!
# shellcheck disable=SC2317  # called by the EXIT trap
stop() {
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for _ in $(seq 30); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 1
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid"
        fi
        wait "$pid" 2>/dev/null || true
    fi
    echo "with-dockerd.sh: stopped dockerd (pid $pid)"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
waited=0
until docker info >/dev/null 2>&1; do
    if ! kill -0 "$pid" 2>/dev/null || [ "$waited" -ge "${DOCKERD_WAIT:-60}" ]; then
        echo "with-dockerd.sh: dockerd did not come up; the end of $log:" >&2
        tail -n 20 "$log" >&2
        exit 2
    fi
    sleep 1
    waited=$((waited + 1))
done
echo "with-dockerd.sh: started dockerd (pid $pid, storage driver" \
     "$(docker info --format '{{.Driver}}'), log $log) in ${waited} s"
status=0
"$@" || status=$?
exit "$status"
