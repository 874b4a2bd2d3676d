#!/usr/bin/env bash
# The Common Voice recipe from a language folder on disk (nothing is downloaded): install what is missing, write
# manifests from the official train/dev/test split files, train, score the test split.
#   bash recipes/commonvoice/run.sh /data/cv-corpus-17.0-2024-03-15/en      # the folder holding clips/ and *.tsv
#   bash recipes/commonvoice/run.sh /data/cv-corpus-17.0-2024-03-15/en train.epochs=10   # config overrides
set -euo pipefail
if [ $# -lt 1 ]; then echo "usage: $0 COMMONVOICE_LANGUAGE_FOLDER [section.key=value ...]" >&2; exit 2; fi
root=$(realpath -m "$1"); shift
source "$(dirname "$0")/../common.sh"
recipe_start

data=${DATA:-data/commonvoice}
exp=${EXP:-exp/commonvoice}
python recipes/commonvoice/prepare.py "$root" --out "$data" --splits train dev test --jobs "$(nproc)"
train_and_score recipes/commonvoice/config.yaml "$data/train.jsonl" "$data/dev.jsonl" "$exp" "$data/test.jsonl" "$@"
