#!/usr/bin/env bash
# The LJSpeech recipe from a copy on disk (nothing is downloaded): install what is missing, write the
# deterministic train/dev/test manifests, train, score the test split.
#   bash recipes/ljspeech/run.sh /data/LJSpeech-1.1                # the folder holding metadata.csv and wavs/
#   bash recipes/ljspeech/run.sh /data/LJSpeech-1.1 train.epochs=10   # extra arguments are config overrides
set -euo pipefail
if [ $# -lt 1 ]; then echo "usage: $0 LJSPEECH_ROOT [section.key=value ...]" >&2; exit 2; fi
root=$(realpath -m "$1"); shift
source "$(dirname "$0")/../common.sh"
recipe_start

data=${DATA:-data/ljspeech}
exp=${EXP:-exp/ljspeech}
python recipes/ljspeech/prepare.py "$root" --out "$data" --dev-size 500 --test-size 500 --jobs "$(nproc)"
train_and_score recipes/ljspeech/config.yaml "$data/train.jsonl" "$data/dev.jsonl" "$exp" "$data/test.jsonl" "$@"
