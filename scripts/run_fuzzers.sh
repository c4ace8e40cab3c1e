#!/usr/bin/env bash
# Kept for old command lines: scripts/run_fuzzers.sh [seconds per target, default 60] is
# scripts/fuzz.sh --seconds S (the CI smoke run of every target on temporary corpus copies).
exec bash "$(dirname "$0")/fuzz.sh" --seconds "${1:-60}"
