#!/usr/bin/env bash
# The real-speech dev set (human voices from Debian packages; a yardstick, never training data): download the
# packages with apt-get (no install), extract them, write data/realspeech/dev.jsonl, score the bundled model.
#   bash recipes/realspeech/run.sh                      # every package
#   DEBS=/data/debs DATA=/data/realspeech bash recipes/realspeech/run.sh
#   bash recipes/realspeech/run.sh --model exp/synthetic   # extra arguments go to both `asr evaluate` runs
#   EVALUATE=0 bash recipes/realspeech/run.sh              # the manifest only
set -euo pipefail
source "$(dirname "$0")/../common.sh"
recipe_start

debs=${DEBS:-data/realspeech-debs}
data=${DATA:-data/realspeech}
fetch_deb "$debs" codec2-examples warzone2100-data klettres-data ktuberling-data tuxpaint-stamps-default
python recipes/realspeech/prepare.py --debs "$debs" --out "$data"
[ "${EVALUATE:-1}" = 0 ] && exit 0
asr evaluate --manifest "$data/dev.jsonl" --report "$data/greedy.report.jsonl" --worst 5 "$@"
asr evaluate --manifest "$data/dev.jsonl" --decoder beam --report "$data/beam.report.jsonl" --worst 5 "$@"
