#!/usr/bin/env bash
# The bundled model's recipe: recordings of people (speechocean762, LJSpeech's first clips, the spoken digits, the
# voice acting of three Debian games) mixed with synthetic voices, fine-tuned from the previous bundled model on a
# CPU in nine stages; then the mean of the last stage's last 5 epochs is packaged with the LM, its weights tuned on
# the dev set of people, and scored.
#   bash recipes/people/run.sh ../shared/corpora        # the folder holding the three corpora
# Every step skips what exists, so the same command continues after a stop (training resumes exactly). Extra
# section.key=value arguments go to the last stage (J).
set -euo pipefail
if [ $# -lt 1 ]; then echo "usage: $0 CORPORA_DIR [section.key=value ...]" >&2; exit 2; fi
corpora=$(realpath "$1"); shift
source "$(dirname "$0")/../common.sh"
recipe_start

jobs=$(nproc)
# 1. The corpora and their held-out speakers.
[ -f data/speechocean762/train.jsonl ] || python recipes/speechocean762/prepare.py "$corpora/speechocean762" \
  --out data/speechocean762 --dev-speakers 20 --test-speakers 20 --jobs "$jobs"
[ -f data/ljspeech/train.jsonl ] || python recipes/ljspeech/prepare.py "$corpora/ljspeech-part" \
  --out data/ljspeech --dev-size 40 --test-size 40 --jobs "$jobs"
[ -f data/digits/train.jsonl ] || python recipes/digits/prepare.py "$corpora/free-spoken-digit-dataset/recordings" \
  --out data/digits --jobs "$jobs"
[ -f data/realspeech/dev.jsonl ] || EVALUATE=0 bash recipes/realspeech/run.sh
[ -f data/synthetic-neural/train.jsonl ] || python recipes/synthetic/prepare.py --out data/synthetic-neural \
  --hours 1.5 --dev-minutes 15 --test-minutes 20 --jobs "$jobs"
if [ ! -f data/synthetic-kokoro-en/train.jsonl ]; then
  python recipes/synthetic/kokoro_voices.py data/kokoro-js
  python recipes/synthetic/prepare.py --out data/synthetic-kokoro-en --engines kokoro-en \
    --kokoro-en-voices data/kokoro-js/kokoro_en_voices.npz --hours 0.3 --dev-minutes 5 --test-minutes 5 --jobs "$jobs"
fi

people_dev=(data/speechocean762/dev.jsonl data/ljspeech/dev.jsonl data/digits/dev.jsonl:60 data/realspeech/dev.jsonl)
people_test=(data/speechocean762/test.jsonl data/ljspeech/test.jsonl data/digits/test.jsonl:60)
real_train=(data/speechocean762/train.jsonl data/ljspeech/train.jsonl data/digits/train.jsonl)

# train OUT_DIR ARGS...: train into OUT_DIR unless it is finished (resuming exactly where it stopped).
train() {
  local out=$1; shift
  [ -f "$out/done" ] && return
  local resume=(); [ -f "$out/last.pt" ] && resume=(--resume)
  asr train recipes/people/finetune-cpu.yaml "train.out_dir=$out" "$@" "${resume[@]}"
  touch "$out/done"
}
mix() { # mix MANIFEST SHARE ...: the train.train_mix override
  local items=()
  while [ $# -gt 0 ]; do items+=("{manifest: $1, share: $2}"); shift 2; done
  local IFS=,; echo "train.train_mix=[${items[*]}]"
}
# checked GAMES PEOPLE CHECKER: the games' clips checked by the model CHECKER into data/GAMES, then the dev and test
# sets of people with their held-out characters into data/PEOPLE (each skipped where it exists).
checked() {
  local games=data/$1 people=data/$2
  [ -f "$games/train.jsonl" ] || DATA=$games bash recipes/games/run.sh --model "$3" \
    --held-out recipes/games/held_out.txt
  [ -f "$people/dev.jsonl" ] || python recipes/people/prepare.py --out "$people" \
    --dev "${people_dev[@]}" "$games/dev.jsonl" --test "${people_test[@]}" "$games/test.jsonl" \
    --train "${real_train[@]}" "$games/train.jsonl" data/synthetic-neural/train.jsonl \
    data/synthetic-kokoro-en/train.jsonl
}
all_mix() { # all_mix GAMES: everything, with the games' clips of data/GAMES (stages D to F)
  mix data/speechocean762/train.jsonl 0.28 "data/$1/train.jsonl" 0.35 data/ljspeech/train.jsonl 0.07 \
    data/digits/train.jsonl 0.03 data/synthetic-neural/train.jsonl 0.2 data/synthetic-kokoro-en/train.jsonl 0.07
}

# 2. Stages A and B: the readers, the digits and the synthetic voices, so that the games' clips can be checked by
#    a model that knows people better than the previous bundled model and has never heard the games.
[ -f data/people-a/dev.jsonl ] || python recipes/people/prepare.py --out data/people-a --dev "${people_dev[@]}" \
  --train "${real_train[@]}"
train exp/people/stageA train.init_from=bundled train.dev_manifest=data/people-a/dev.jsonl \
  "$(mix data/speechocean762/train.jsonl 0.6 data/ljspeech/train.jsonl 0.1 data/digits/train.jsonl 0.05 \
     data/synthetic-neural/train.jsonl 0.25)" train.epoch_hours=2 train.epochs=8 train.lr=6e-4 train.warmup_steps=100 \
  train.max_batch_seconds=240 augment.telephone_prob=0.05
train exp/people/stageB train.init_from=exp/people/stageA train.dev_manifest=data/people-a/dev.jsonl \
  "$(mix data/speechocean762/train.jsonl 0.55 data/ljspeech/train.jsonl 0.12 data/digits/train.jsonl 0.05 \
     data/synthetic-neural/train.jsonl 0.28)" train.epoch_hours=2 train.epochs=10 train.lr=5e-4 train.warmup_steps=100 \
  train.max_batch_seconds=160 augment.telephone_prob=0.1

# 3. The games' clips, checked by stage B; then the dev and test sets of people with their held-out characters.
checked games people exp/people/stageB

# 4. Stage C: everything (the mix of recipes/people/finetune-cpu.yaml), from stage B.
train exp/people/stageC train.init_from=exp/people/stageB

# 5. Stage D: the games' clips checked again, by stage C (which has never heard the held-out characters; it keeps
#    more clips than stage B), the dev and test sets of people rebuilt with them, and stage C's mix for 10 more
#    epochs from stage C.
checked games-d people-d exp/people/stageC
train exp/people/stageD train.init_from=exp/people/stageC train.dev_manifest=data/people-d/dev.jsonl \
  "$(all_mix games-d)" train.epochs=10 train.lr=6e-4 train.warmup_steps=30 train.seed=3

# 6. Stage E: stage D's mix for 12 more epochs from stage D, at a lower learning rate.
train exp/people/stageE train.init_from=exp/people/stageD train.dev_manifest=data/people-d/dev.jsonl \
  "$(all_mix games-d)" train.epochs=12 train.lr=5e-4 train.warmup_steps=30 train.seed=4

# 7. Stage F: the games' clips checked again, by stage E, the dev and test sets of people rebuilt with them, and
#    the same mix for 12 more epochs from stage E.
checked games-e people-e exp/people/stageE
train exp/people/stageF train.init_from=exp/people/stageE train.dev_manifest=data/people-e/dev.jsonl \
  "$(all_mix games-e)" train.epochs=12 train.lr=5e-4 train.warmup_steps=30 train.seed=5

# 8. Stage H: the games' clips, now with Drascula's, checked by stage F (which never heard Drascula nor the held-out
#    characters), the dev and test sets of people rebuilt with them, and the same mix for 12 more epochs from F.
#    (Stage G, F's mix again from F, was stopped after 4 epochs for this: RESULTS.md.)
checked games-f people-f exp/people/stageF
train exp/people/stageH train.init_from=exp/people/stageF train.dev_manifest=data/people-f/dev.jsonl \
  "$(all_mix games-f)" train.epochs=12 train.lr=5e-4 train.warmup_steps=30 train.seed=6

# 9. Stage I: stage H's mix for 12 more epochs from stage H.
train exp/people/stageI train.init_from=exp/people/stageH train.dev_manifest=data/people-f/dev.jsonl \
  "$(all_mix games-f)" train.epochs=12 train.lr=5e-4 train.warmup_steps=30 train.seed=7

# 10. Stage J: the same mix for 12 more epochs from stage I, at a lower learning rate; the release is the mean of
#     its last 5 epochs' weights (better on the dev set of people than its best epoch: RESULTS.md).
train exp/people/stageJ train.init_from=exp/people/stageI train.dev_manifest=data/people-f/dev.jsonl \
  "$(all_mix games-f)" train.epochs=12 train.lr=4e-4 train.warmup_steps=30 train.seed=8 "$@"
[ -f exp/people/stageJ/average-5.pt ] || asr average exp/people/stageJ --last 5

# 11. Package that mean with the LM, its weights tuned on the dev set of people, and its network for onnxruntime
#     (int8: what asr transcribe runs on CPUs), and score. (For stage C the mean of its last 3 epochs scored no
#     better than its best epoch; for stage J the mean of 5 did: RESULTS.md.)
asr tune-lm --model exp/people/stageJ/average-5.pt --manifest data/people-f/dev.jsonl --lm asr/pretrained/lm.bin \
  --lexicon asr/pretrained/lexicon.txt --beam-size 100 --lm-weights 1 1.5 2 --word-scores 0 1 \
  --json exp/people/tune-lm.json
asr package exp/people/stageJ/average-5.pt --out exp/people/release --lm asr/pretrained/lm.bin \
  --lexicon asr/pretrained/lexicon.txt --tuned exp/people/tune-lm.json --beam-size 100 --onnx int8 \
  --description "$(cat recipes/people/description.txt)"
for set in data/people-f/dev.jsonl data/people-f/test.jsonl data/synthetic-neural/test.jsonl data/realspeech/dev.jsonl; do
  name=$(basename "$(dirname "$set")")-$(basename "$set" .jsonl)
  # PyTorch's float32 figures, as the model card gives them (--runtime onnx would score the release's model.onnx).
  asr evaluate --model exp/people/release --runtime torch --manifest "$set" --report "exp/people/$name.greedy.jsonl" \
    --worst 0
  asr evaluate --model exp/people/release --runtime torch --manifest "$set" --decoder beam \
    --report "exp/people/$name.beam.jsonl" --worst 0
done
