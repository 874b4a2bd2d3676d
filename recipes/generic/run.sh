#!/usr/bin/env bash
# Your own recordings (a folder of audio files with same-named .txt transcripts, or a CSV of path,text): install
# what is missing, write manifests with 5 % dev and 5 % test held out, train, score the test split.
#   bash recipes/generic/run.sh my_recordings/                 # or my_recordings/list.csv
#   bash recipes/generic/run.sh my_recordings/ train.epochs=40   # extra arguments are config overrides
set -euo pipefail
if [ $# -lt 1 ]; then echo "usage: $0 FOLDER_OR_CSV [section.key=value ...]" >&2; exit 2; fi
src=$(realpath -m "$1"); shift
source "$(dirname "$0")/../common.sh"
recipe_start

data=${DATA:-data/generic}
exp=${EXP:-exp/generic}
python recipes/generic/prepare.py "$src" --out "$data" --dev-fraction 0.05 --test-fraction 0.05 --jobs "$(nproc)"
train_and_score recipes/generic/config.yaml "$data/train.jsonl" "$data/dev.jsonl" "$exp" "$data/test.jsonl" "$@"
