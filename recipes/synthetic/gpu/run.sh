#!/usr/bin/env bash
# Runs ON the lent GPU machine, as one command (recipes/synthetic/GPU.md says how it is called and tested here):
# installs the packed wheels, measures training throughput, trains with the corpus held on the GPU for the
# minutes left, and packages the best checkpoint as a release. Everything it writes goes under $OUT.
#   OUT=... PACK=exp/gpu-pack MINUTES=7 bash recipes/synthetic/gpu/run.sh [config overrides...]
# Environment: PACK (from pack.py), OUT (the device tool's result folder), MINUTES (training time), CONFIG
# (default recipes/synthetic/gpu.yaml), DEVICE (default cuda), PYTHON (default python3), BENCH_ARGS (extra
# arguments for benchmarks/train_throughput.py, e.g. the tiny CPU test's).
set -euo pipefail
cd "$(dirname "$0")/../../.."
pack=${PACK:-exp/gpu-pack}
out=${OUT:?set OUT to the folder whose files come back}
minutes=${MINUTES:-7}
config=${CONFIG:-recipes/synthetic/gpu.yaml}
device=${DEVICE:-cuda}
python=${PYTHON:-python3}
mkdir -p "$out"
exec > >(tee -a "$out/run.log") 2>&1

deps=/tmp/asr-deps
if ! "$python" -c "import soundfile, soxr, jiwer, num2words" 2>/dev/null; then
  "$python" -m pip install -q --no-index --no-deps --target "$deps" "$pack"/wheels/*.whl
fi
export PYTHONPATH="$deps:$PWD${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi || true

# Throughput first (about a minute): it is worth recording even if training fails.
# shellcheck disable=SC2086
"$python" benchmarks/train_throughput.py "$config" train.data_on_device=true "$@" --manifest "$pack/train.jsonl" \
    --device "$device" --markdown --json "$out/throughput.json" ${BENCH_ARGS:-} > "$out/throughput.md"
tail -n 8 "$out/throughput.md"

# As many epochs as fit in the minutes left at the measured rate (the schedule then ends annealed), leaving a
# fifth of the time for the per-epoch dev evaluation and start-up.
epochs=$("$python" - "$out/throughput.json" "$pack/train.jsonl" "$minutes" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))
rate = [r["audio_s_per_s"] for r in rows if r["what"].startswith("train step + ")][-1]
seconds = sum(json.loads(line)["duration"] for line in open(sys.argv[2]))
print(max(1, int(0.8 * float(sys.argv[3]) * 60 * rate / seconds)))
PY
)
dev_every=$((epochs / 20 > 1 ? epochs / 20 : 1))  # about 20 dev scorings, whatever the epoch length
echo "training $epochs epochs, scoring dev every $dev_every"
status=0
timeout --preserve-status -s TERM "$((minutes * 60 + 60))" "$python" -m asr.cli train "$config" train.data_on_device=true \
    "train.train_manifest=$pack/train.jsonl" "train.dev_manifest=$pack/dev.jsonl" "train.out_dir=$out/run" \
    "train.device=$device" "train.epochs=$epochs" "train.dev_every_epochs=$dev_every" "$@" || status=$?
[ "$status" -eq 0 ] || [ "$status" -eq 143 ] || exit "$status"  # 143: stopped by the timeout, last.pt saved
"$python" -m asr.cli package "$out/run" --out "$out/release"
# What comes back from the device is at most 8 files of 16 MiB: the training log, and the release's weights in
# 15 MB parts (cat model.safetensors.part* > model.safetensors puts them together again).
mv "$out/run/log.jsonl" "$out/train-log.jsonl"
rm -rf "$out/run"
split -b 15000000 -d "$out/release/model.safetensors" "$out/release/model.safetensors.part"
rm "$out/release/model.safetensors"
ls -la "$out" "$out/release"
