#!/usr/bin/env bash
# The real-speech dev set (human voices from Debian packages; a yardstick, never training data): download the
# packages with apt-get (no install), extract them, write data/realspeech/dev.jsonl, score the bundled model.
#   bash recipes/realspeech/run.sh                      # every package
#   DEBS=/data/debs DATA=/data/realspeech bash recipes/realspeech/run.sh
#   bash recipes/realspeech/run.sh --model exp/synthetic   # extra arguments go to both `asr evaluate` runs
#   EVALUATE=0 bash recipes/realspeech/run.sh              # the manifest only
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"

debs=${DEBS:-data/realspeech-debs}
data=${DATA:-data/realspeech}
mkdir -p "$debs"
for package in codec2-examples warzone2100-data klettres-data ktuberling-data tuxpaint-stamps-default; do
  if [ ! -d "$debs/$package" ]; then
    (cd "$debs" && apt-get download "$package")
    dpkg-deb -x "$(ls "$debs/${package}"_*.deb | tail -n 1)" "$debs/$package"
  fi
done
python recipes/realspeech/prepare.py --debs "$debs" --out "$data"
[ "${EVALUATE:-1}" = 0 ] && exit 0
asr evaluate --manifest "$data/dev.jsonl" --report "$data/greedy.report.jsonl" --worst 5 "$@"
asr evaluate --manifest "$data/dev.jsonl" --decoder beam --report "$data/beam.report.jsonl" --worst 5 "$@"
