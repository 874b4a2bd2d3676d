#!/usr/bin/env bash
# The games' speech corpus: download the three Debian packages with apt-get (nothing is installed), extract them,
# read clips and dialogue text, keep the clips a recognizer confirms, write data/games/{train,dev,test}.jsonl.
#   bash recipes/games/run.sh                                  # checked by the bundled model
#   bash recipes/games/run.sh --model exp/people/stageA        # checked by a model that never heard the games
#   DEBS=/data/debs DATA=/data/games bash recipes/games/run.sh
set -euo pipefail
source "$(dirname "$0")/../common.sh"
recipe_start

debs=${DEBS:-data/games-debs}
data=${DATA:-data/games}
fetch_deb "$debs" beneath-a-steel-sky flight-of-the-amazon-queen drascula
python recipes/games/prepare.py --debs "$debs" --out "$data" "$@"
