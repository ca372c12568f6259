#!/usr/bin/env bash
# The rollout rehearsal (scripts/rollout_rehearsal.py): the backend and the host on loopback,
# stages at 10%, 50% and 100% with shadows, each injected fault, and a rollback. Arguments go to
# the script, e.g. --runs 8 --out /tmp/rehearsal.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python scripts/rollout_rehearsal.py "$@"
