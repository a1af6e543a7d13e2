#!/usr/bin/env bash
# Wrapper that cron (or systemd, or any scheduler) calls: `caspio-sync.sh run`, `... reconcile`.
#
# Why a wrapper and not the bare command in crontab:
#  * cron starts with an empty environment and $HOME as cwd; dlt reads .dlt/config.toml and
#    .dlt/secrets.toml from the working directory, so we cd into the project first;
#  * two runs of one pipeline must never overlap (they share the pipeline's working dir and
#    state): flock makes a run that starts while the previous one is still going skip, loudly;
#  * the exit code of caspio-sync is kept, so cron's MAILTO / a log watcher sees failures.
#
# Settings (environment, all optional):
#   CASPIO_PROJECT_DIR  where .dlt/ lives (default: the checkout this script is in)
#   CASPIO_VENV         the virtualenv with caspio-dlt installed (default: $CASPIO_PROJECT_DIR/.venv)
#   CASPIO_LOCK_FILE    the lock shared by every job of one pipeline (default: /tmp/caspio-sync.lock)
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
project_dir="${CASPIO_PROJECT_DIR:-$(cd "$script_dir/../.." && pwd)}"
venv="${CASPIO_VENV:-$project_dir/.venv}"
lock_file="${CASPIO_LOCK_FILE:-/tmp/caspio-sync.lock}"

if [[ ! -x "$venv/bin/caspio-sync" ]]; then
    echo "caspio-sync.sh: $venv/bin/caspio-sync not found; install with: python3 -m venv $venv && $venv/bin/pip install -e $project_dir" >&2
    exit 1
fi

cd "$project_dir"
echo "caspio-sync.sh: $(date -u +%Y-%m-%dT%H:%M:%SZ) start: caspio-sync $*"
exec 9>"$lock_file"
if ! flock -n 9; then
    echo "caspio-sync.sh: another caspio-sync job holds $lock_file; skipping this run" >&2
    exit 75  # EX_TEMPFAIL: the next scheduled run picks up the work
fi
status=0
"$venv/bin/caspio-sync" "$@" || status=$?
echo "caspio-sync.sh: $(date -u +%Y-%m-%dT%H:%M:%SZ) end: exit $status"
exit "$status"
