#!/usr/bin/env bash
# The LJSpeech recipe from a copy on disk (nothing is downloaded): install what is missing, write the
# deterministic train/dev/test manifests, train, score the test split.
#   bash recipes/ljspeech/run.sh /data/LJSpeech-1.1                # the folder holding metadata.csv and wavs/
#   bash recipes/ljspeech/run.sh /data/LJSpeech-1.1 train.epochs=10   # extra arguments are config overrides
set -euo pipefail
if [ $# -lt 1 ]; then echo "usage: $0 LJSPEECH_ROOT [section.key=value ...]" >&2; exit 2; fi
root=$(realpath -m "$1"); shift
cd "$(dirname "$0")/../.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"

data=${DATA:-data/ljspeech}
exp=${EXP:-exp/ljspeech}
python recipes/ljspeech/prepare.py "$root" --out "$data" --dev-size 500 --test-size 500 --jobs "$(nproc)"
asr train recipes/ljspeech/config.yaml "train.train_manifest=$data/train.jsonl" \
  "train.dev_manifest=$data/dev.jsonl" "train.out_dir=$exp" "$@"
asr evaluate --model "$exp" --manifest "$data/test.jsonl" --report "$exp/test.report.jsonl" \
  --device "${DEVICE:-cpu}" --worst 5
