#!/usr/bin/env bash
# The LibriSpeech recipe from a copy on disk (nothing is downloaded): install what is missing, write manifests,
# train on the 960 hours, score test-clean and test-other.
#   bash recipes/librispeech/run.sh /data/LibriSpeech               # the folder holding the subset folders
#   bash recipes/librispeech/run.sh /data/LibriSpeech train.epochs=10   # extra arguments are config overrides
#   SUBSETS="train-clean-100 dev-clean test-clean test-other" TRAIN=train-clean-100 \
#     bash recipes/librispeech/run.sh /data/LibriSpeech       # 100 hours only
set -euo pipefail
if [ $# -lt 1 ]; then echo "usage: $0 LIBRISPEECH_ROOT [section.key=value ...]" >&2; exit 2; fi
root=$(realpath -m "$1"); shift
source "$(dirname "$0")/../common.sh"
recipe_start

data=${DATA:-data/librispeech}
exp=${EXP:-exp/librispeech}
# shellcheck disable=SC2086  # SUBSETS is a list of words
python recipes/librispeech/prepare.py "$root" --out "$data" --jobs "$(nproc)" ${SUBSETS:+--subsets $SUBSETS}
train_and_score recipes/librispeech/config.yaml "$data/${TRAIN:-train-960}.jsonl" "$data/dev-clean.jsonl" "$exp" \
  "$data/test-clean.jsonl $data/test-other.jsonl" "$@"
