#!/usr/bin/env bash
# The whole synthetic recipe in one command: install what is missing, synthesize the corpus, train,
# score the test split (unseen sentences, unseen voices) greedy and with beam search + a 3-gram LM,
# and transcribe one test recording.
#   bash recipes/synthetic/run.sh                # 2 hours of speech, about 30 minutes of training on a CPU
#   HOURS=10 bash recipes/synthetic/run.sh train.epochs=40   # extra arguments are config overrides
set -euo pipefail
source "$(dirname "$0")/../common.sh"
recipe_start

data=${DATA:-data/synthetic}
exp=${EXP:-exp/synthetic}
python recipes/synthetic/prepare.py --out "$data" --hours "${HOURS:-2}" --dev-minutes 10 --test-minutes 10 \
  --jobs "$(nproc)"
asr train recipes/synthetic/config.yaml "train.train_manifest=$data/train.jsonl" \
  "train.dev_manifest=$data/dev.jsonl" "train.out_dir=$exp" "$@"
asr evaluate --model "$exp" --manifest "$data/test.jsonl" --report "$exp/test_report.jsonl" --worst 5
# Beam search with a 3-gram LM of the training sentences (none from dev or test), weights tuned on dev.
asr lm "$data/lm_text.txt" --order 3 --out "$exp/lm.arpa.gz"
asr tune-lm --model "$exp" --manifest "$data/dev.jsonl" --lm "$exp/lm.arpa.gz" --beam-size 100 \
  --json "$exp/tune-lm.json"
asr package "$exp" --out "$exp/release" --lm "$exp/lm.arpa.gz" --tuned "$exp/tune-lm.json" --beam-size 100
asr evaluate --model "$exp/release" --manifest "$data/test.jsonl" --report "$exp/test_report_beam.jsonl" --worst 0 \
  --decoder beam
first_test_file=$(python -c "import json,sys; print(json.loads(open(sys.argv[1]).readline())['audio_filepath'])" "$data/test.jsonl")
echo "transcribing $data/$first_test_file:"
asr transcribe --model "$exp" "$data/$first_test_file"
