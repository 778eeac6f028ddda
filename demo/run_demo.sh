#!/usr/bin/env bash
# One command for the demo: installs tb_plus (and torch, tensorboardX) into .venv, builds the tab's
# frontend, writes demo logs (three small trainings + a synthetic run of a few hundred MB), and starts
# TensorBoard with the TB+ tab at http://127.0.0.1:6006 (Ctrl-C stops it).
#   bash demo/run_demo.sh [--synthetic-mb N] [--steps N]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PORT="${PORT:-6006}"
command -v node >/dev/null || { echo "Node.js 18+ and npm are needed to build the tab (apt-get install nodejs npm)" >&2; exit 1; }
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
(cd tb_plus_frontend && npm install --no-audit --no-fund --silent && npm run build --silent)
TB_PLUS_SKIP_FRONTEND=1 .venv/bin/python -m pip install -q -e '.[test]'
.venv/bin/python demo/make_logs.py --logdir demo/logs "$@"
echo "TensorBoard with the TB+ tab: http://127.0.0.1:${PORT}/#tb_plus"
exec .venv/bin/tensorboard --logdir demo/logs --host 127.0.0.1 --port "$PORT"
