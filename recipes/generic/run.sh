#!/usr/bin/env bash
# Your own recordings (a folder of audio files with same-named .txt transcripts, or a CSV of path,text): install
# what is missing, write manifests with 5 % dev and 5 % test held out, train, score the test split.
#   bash recipes/generic/run.sh my_recordings/                 # or my_recordings/list.csv
#   bash recipes/generic/run.sh my_recordings/ train.epochs=40   # extra arguments are config overrides
set -euo pipefail
if [ $# -lt 1 ]; then echo "usage: $0 FOLDER_OR_CSV [section.key=value ...]" >&2; exit 2; fi
src=$(realpath -m "$1"); shift
cd "$(dirname "$0")/../.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"

data=${DATA:-data/generic}
exp=${EXP:-exp/generic}
python recipes/generic/prepare.py "$src" --out "$data" --dev-fraction 0.05 --test-fraction 0.05 --jobs "$(nproc)"
asr train recipes/generic/config.yaml "train.train_manifest=$data/train.jsonl" \
  "train.dev_manifest=$data/dev.jsonl" "train.out_dir=$exp" "$@"
asr evaluate --model "$exp" --manifest "$data/test.jsonl" --report "$exp/test.report.jsonl" --worst 5
