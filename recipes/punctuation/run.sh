#!/usr/bin/env bash
# The punctuation and capitalization model (asr/pretrained/punctuation.onnx): the LM recipe's Debian packages
# (downloaded with apt-get, nothing installed), their raw sentences tagged (prepare.py), the tagger trained on the
# CPU (train.py) and scored on held-out text and on the bundled recognizer's output for LJSpeech (score.py).
#   bash recipes/punctuation/run.sh [../shared/corpora]     # with the corpora folder: LJSpeech for the ASR scores
#   STEPS=4000 DEBS=data/lm-debs DATA=data/punctuation EXP=exp/punctuation bash recipes/punctuation/run.sh
# Training checkpoints EXP/last.pt as it goes: stopped, the same command continues it exactly.
# Then copy EXP/punctuation.onnx and its .json into asr/pretrained/.
set -euo pipefail
corpora=${1:+$(realpath "$1")}
source "$(dirname "$0")/../common.sh"
recipe_start

debs=${DEBS:-data/lm-debs}
data=${DATA:-data/punctuation}
exp=${EXP:-exp/punctuation}
fetch_deb "$debs" sword-text-web dict-gcide dict-jargon dict-devil dict-foldoc r-cran-janeaustenr python3.11-doc \
  gnome-user-docs debian-handbook
[ -f "$data/train.jsonl" ] || python recipes/punctuation/prepare.py --debs "$debs" --out "$data"
[ -f "$exp/punctuation.onnx" ] || python recipes/punctuation/train.py --data "$data" --out "$exp" \
  --steps "${STEPS:-4000}" --resume
asr_sets=()
if [ -n "$corpora" ]; then
  [ -f data/ljspeech/dev.jsonl ] || python recipes/ljspeech/prepare.py "$corpora/ljspeech-part" \
    --out data/ljspeech --dev-size 40 --test-size 40 --jobs "$(nproc)"
  asr_sets=(--asr data/ljspeech/dev.jsonl data/ljspeech/test.jsonl)
fi
python recipes/punctuation/score.py --model "$exp/punctuation.onnx" --text "$data/test.jsonl" "${asr_sets[@]}"
