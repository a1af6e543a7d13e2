#!/usr/bin/env bash
# Create (or reuse) .venv-airflow: Apache Airflow, pinned, with this project installed editable.
#
#   deploy/airflow/install_airflow.sh            # prints the venv's path on its last line
#
# Reused only when its install key matches: a hash of the Python version, the requirement and
# constraint files, pyproject.toml and this script. Any change, or a venv that no longer runs
# `airflow version` or imports the project, is a fresh install. CI machines start empty, so
# there the install always runs (.ci/run calls this script before the tests).
# Settings: CASPIO_AIRFLOW_VENV (default <repo>/.venv-airflow), PYTHON (default python3),
# CASPIO_AIRFLOW_UNPINNED=1 (ignore constraints-airflow.txt, to regenerate it).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VENV="${CASPIO_AIRFLOW_VENV:-$ROOT/.venv-airflow}"
PYTHON="${PYTHON:-python3}"
REQUIREMENTS="$HERE/requirements-airflow.txt"
CONSTRAINTS="$HERE/constraints-airflow.txt"

key="$({
  "$PYTHON" -c 'import sys; print(sys.version)'
  echo "unpinned=${CASPIO_AIRFLOW_UNPINNED:-0}"
  cat "$REQUIREMENTS" "$CONSTRAINTS" "$ROOT/pyproject.toml" "$0"
} | sha256sum | cut -d' ' -f1)"

# `airflow version` writes an airflow.cfg into AIRFLOW_HOME: a scratch one inside the venv
airflow() { AIRFLOW_HOME="$VENV/.airflow-home" "$VENV/bin/airflow" "$@" 2>/dev/null; }

works() {
  [ -f "$VENV/.install-key" ] && [ "$(cat "$VENV/.install-key")" = "$key" ] &&
    airflow version >/dev/null &&
    (cd / && "$VENV/bin/python" -c 'import pipelines.caspio_pipeline, sources.caspio') 2>/dev/null
}

if works; then
  echo "install_airflow: reusing $VENV (install key unchanged)" >&2
  echo "$VENV"
  exit 0
fi

start=$SECONDS
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
pins=(-c "$CONSTRAINTS")
[ "${CASPIO_AIRFLOW_UNPINNED:-0}" = 1 ] && pins=()
"$VENV/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}" \
  -r "$REQUIREMENTS" -e "$ROOT[postgres]"
echo "$key" >"$VENV/.install-key"
if ! works; then
  echo "install_airflow: $VENV was installed but does not run airflow or import the project" >&2
  exit 1
fi
echo "install_airflow: installed Airflow $(airflow version | tail -n1) into $VENV in $((SECONDS - start)) s" >&2
echo "$VENV"
