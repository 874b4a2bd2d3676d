#!/usr/bin/env bash
# A word language model of everyday English, all from Debian and PyPI packages: download the Debian packages with
# apt-get (no install), extract them, write data/lm/lm_text.txt and data/lm/vocab.txt, and measure the vocabulary's
# out-of-vocabulary rate on two held-out texts (GNOME Help, the Debian Administrator's Handbook); then build the
# 3-gram data/lm/lm.arpa.gz over that vocabulary and its KenLM binary data/lm/lm.bin (the bundled model's LM, with
# vocab.txt as its lexicon). Installs g++ and zlib1g-dev to compile KenLM's build_binary (recipes/lm/build_binary.sh).
#   bash recipes/lm/run.sh
#   DEBS=/data/lm-debs DATA=/data/lm bash recipes/lm/run.sh
#   bash recipes/lm/run.sh --vocab-size 200000      # extra arguments go to prepare.py
set -euo pipefail
source "$(dirname "$0")/../common.sh"
recipe_start  # scripts/setup.sh: fortunes, fortunes-min, wordnet-base (the synthetic corpus's text), wordfreq

debs=${DEBS:-data/lm-debs}
data=${DATA:-data/lm}
realspeech_debs=${REALSPEECH_DEBS:-data/realspeech-debs}  # shared with recipes/realspeech/run.sh
fetch_deb "$debs" sword-text-web dict-gcide dict-jargon dict-devil dict-foldoc r-cran-janeaustenr python3.11-doc \
  gnome-user-docs debian-handbook
fetch_deb "$realspeech_debs" warzone2100-data  # its tutorial lines are a dev set: kept out of the LM text
exclude=()
[ -f data/realspeech/dev.jsonl ] && exclude=(--exclude data/realspeech/dev.jsonl)
python recipes/lm/prepare.py --debs "$debs" --out "$data" --realspeech-debs "$realspeech_debs" "${exclude[@]}" \
    --held-out gnome-user-docs debian-handbook "$@"
asr lm "$data/lm_text.txt" --order 3 --vocab "$data/vocab.txt" --max-ngrams 1500000 --out "$data/lm.arpa.gz"
bash scripts/apt_install.sh g++ zlib1g-dev  # to compile KenLM's build_binary
bash recipes/lm/build_binary.sh data/kenlm
# A trie with 8-bit quantized probabilities and back-offs: 10.6 MB, memory-mapped when loaded.
data/kenlm/build_binary -q 8 -b 8 trie "$data/lm.arpa.gz" "$data/lm.bin"
