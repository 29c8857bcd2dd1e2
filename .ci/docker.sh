#!/usr/bin/env bash
# CI's Docker step (after the test suite): the image is built and run for real, and compose.yaml brings
# up the bot against PostgreSQL (tests/docker/test_compose.py). Nothing is pulled from Docker Hub: the
# base image is Debian bookworm with python3 made by mmdebstrap from Debian's packages, the database
# image Debian's PostgreSQL on that base. Every container and the build use the host's network, so the
# test's fake Upbit and Bot API on 127.0.0.1 are reached and no test traffic leaves loopback.
#
# Reruns reuse what they can: the base image is tagged by its recipe, the database image and the
# project's image by Docker's layer cache, pip's downloads by a BuildKit cache mount.
# No Docker engine that can start here fails this step with one line saying so: it never skips.
# Usage: bash .ci/docker.sh   (as root; AUTOTRADER_DOCKER_KEEP=1 keeps dockerd running afterwards)
set -euo pipefail
cd "$(dirname "$0")/.."
step_started=$(date +%s)
phase() { echo "docker step: $1 ($(( $(date +%s) - step_started )) s so far)"; }
fail() { echo "docker step FAILED: $*" >&2; exit 1; }

# Debian's docker.io: its client (20.10) drives BuildKit inside dockerd; a newer client elsewhere on
# PATH (/usr/local/bin/docker) would want the buildx plugin, which Debian bookworm does not package.
DOCKER=/usr/bin/docker
need=()
[ -x /usr/sbin/dockerd ] && [ -x "$DOCKER" ] || need+=(docker.io)
command -v docker-compose >/dev/null || need+=(docker-compose)
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
if [ ${#need[@]} -gt 0 ]; then
    phase "installing ${need[*]} (Debian packages)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null \
        || fail "could not install ${need[*]} with apt-get"
fi

dockerd_pid=""
pip_mirror_pid=""
work=$(mktemp -d /tmp/autotrader-docker.XXXXXX)
cleanup() {
    [ -n "$pip_mirror_pid" ] && kill "$pip_mirror_pid" 2>/dev/null || true
    if [ -n "$dockerd_pid" ] && [ -z "${AUTOTRADER_DOCKER_KEEP:-}" ]; then
        kill "$dockerd_pid" 2>/dev/null && timeout 30 tail --pid="$dockerd_pid" -f /dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 143' TERM INT
python=.venv/bin/python  # .ci/run's, with the test extras: the Docker test reuses the suite's fakes
[ -x "$python" ] || fail "no $python: run after .ci/run's install (python3 -m venv .venv && .venv/bin/pip install -e '.[test]')"
if ! "$DOCKER" info >/dev/null 2>&1; then
    phase "starting dockerd"
    log=/tmp/autotrader-dockerd.log
    # No iptables rules and no docker0 bridge on the host: every container here uses the host network.
    /usr/sbin/dockerd --iptables=false --ip6tables=false --bridge=none >"$log" 2>&1 &
    dockerd_pid=$!
    for _ in $(seq 60); do
        "$DOCKER" info >/dev/null 2>&1 && break
        kill -0 "$dockerd_pid" 2>/dev/null || break
        sleep 1
    done
    "$DOCKER" info >/dev/null 2>&1 || { tail -n 15 "$log" >&2; fail "dockerd did not start (its log: $log)"; }
fi

# The base: what python:3.11-slim-bookworm is, from Debian's packages (python3 is 3.11 on bookworm).
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
base_recipe=(mmdebstrap --variant=minbase --include=python3,python3-venv,ca-certificates
    --aptopt='Acquire::Check-Valid-Until "false"'
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*'
    bookworm - "deb $mirror bookworm main" "deb $mirror bookworm-updates main" "deb $security bookworm-security main")
base=autotrader-ci-base:bookworm-$(printf '%s\n' "${base_recipe[@]}" | sha256sum | cut -c1-12)
if ! "$DOCKER" image inspect "$base" >/dev/null 2>&1; then
    phase "building the base image $base (mmdebstrap)"
    timeout 600 "${base_recipe[@]}" 2>"$work/mmdebstrap.log" | "$DOCKER" import --change 'CMD ["python3"]' - "$base" >/dev/null \
        || { tail -n 20 "$work/mmdebstrap.log" >&2; fail "the base image could not be built"; }
fi

export DOCKER_BUILDKIT=1
phase "building the PostgreSQL image"
db_image=autotrader-ci-postgres:15
timeout 600 "$DOCKER" build -q --network host --build-arg BASE_IMAGE="$base" -t "$db_image" tests/docker/postgres >/dev/null \
    || fail "the PostgreSQL image could not be built"

# Pip in the build as on this machine: its indexes, find-links (the torch CPU wheel) and constraints
# served on 127.0.0.1 for the build's duration, its CA bundle as a secret.
python3 .ci/pip_mirror.py "$work/pip-args" 2>"$work/pip-mirror.log" &
pip_mirror_pid=$!
for _ in $(seq 100); do [ -s "$work/pip-args" ] && break; sleep 0.1; done
[ -s "$work/pip-args" ] || { cat "$work/pip-mirror.log" >&2; fail "could not serve pip's local indexes"; }
mapfile -t pip_args <"$work/pip-args"
app_image=autotrader:ci
phase "building the project's image $app_image"
build_started=$(date +%s)
timeout 1200 "$DOCKER" build --progress=plain --network host --build-arg BASE_IMAGE="$base" "${pip_args[@]}" \
    -t "$app_image" . >"$work/build.log" 2>&1 || { tail -n 40 "$work/build.log" >&2; fail "the project's image could not be built"; }
kill "$pip_mirror_pid" 2>/dev/null || true
pip_mirror_pid=""
size=$("$DOCKER" image inspect -f '{{.Size}}' "$app_image")
echo "docker step: image $app_image built in $(( $(date +%s) - build_started )) s, $(( size / 1000000 )) MB"

phase "running the Docker test"
test_started=$(date +%s)
AUTOTRADER_DOCKER_TEST=1 AUTOTRADER_IMAGE="$app_image" AUTOTRADER_DB_IMAGE="$db_image" DOCKER="$DOCKER" \
    timeout 900 "$python" -m pytest -p no:cacheprovider -q tests/docker \
    || fail "tests/docker failed (or ran past 900 s)"
echo "docker step: the Docker test took $(( $(date +%s) - test_started )) s; the whole step $(( $(date +%s) - step_started )) s"
