# Sourced by the corpus recipes' run.sh (bash): the steps every recipe shares.

# recipe_start: from the repository root, install what is missing (scripts/setup.sh) and put `asr` on the PATH.
recipe_start() {
  cd "$(dirname "${BASH_SOURCE[0]}")/.."
  bash scripts/setup.sh
  export PATH="$PWD/.venv/bin:$PATH"
}

# fetch_deb FOLDER PACKAGE...: each Debian package downloaded with apt-get (nothing installed) and extracted into
# FOLDER/PACKAGE, once.
fetch_deb() {
  local folder=$1 package
  shift
  mkdir -p "$folder"
  for package in "$@"; do
    if [ ! -d "$folder/$package" ]; then
      (cd "$folder" && apt-get download "$package")
      dpkg-deb -x "$(ls "$folder/${package}"_*.deb | tail -n 1)" "$folder/$package"
    fi
  done
}

# train_and_score CONFIG TRAIN_MANIFEST DEV_MANIFEST OUT_DIR "TEST_MANIFEST ..." [section.key=value ...]
# Train (extra arguments are config overrides), then score each test manifest into OUT_DIR/NAME.report.jsonl
# (on $DEVICE, default cpu).
train_and_score() {
  local config=$1 train=$2 dev=$3 exp=$4 tests=$5 test
  shift 5
  asr train "$config" "train.train_manifest=$train" "train.dev_manifest=$dev" "train.out_dir=$exp" "$@"
  for test in $tests; do
    asr evaluate --model "$exp" --manifest "$test" --report "$exp/$(basename "$test" .jsonl).report.jsonl" \
      --device "${DEVICE:-cpu}" --worst 5
  done
}
