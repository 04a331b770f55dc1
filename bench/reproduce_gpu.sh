#!/usr/bin/env bash
# One command for the GPU reproductions (docs/reproductions.md): AD-epsilon's Dark Room setting,
# DPT's Dark Room 10x10 and bandit settings, and AD at DICP's scale, 3 training runs each, every
# result written to its suite's run directory and submitted to the run directory's own
# leaderboard (ready to submit to leaderboards/ with `icrl-bench submit`).
#
# Usage: bench/reproduce_gpu.sh [--tiny] [run-suite options, e.g. --workers 4 --executor ray]
#   --tiny  every job at the smallest size (smoke data, 20 updates): checks the whole path on a
#           CPU in minutes (too long for tests/test_bench.py, which runs every other script)
set -euo pipefail
tiny=()
if [[ "${1:-}" == "--tiny" ]]; then
  tiny=(--tiny)
  shift
fi
for suite in reproduce-ad-eps reproduce-dpt reproduce-dicp; do
  echo "+ icrl-bench run-suite $suite ${tiny[*]} $*"
  icrl-bench run-suite "$suite" "${tiny[@]}" "$@"
done
