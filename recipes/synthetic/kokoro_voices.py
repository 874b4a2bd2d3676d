"""Fetch Kokoro's 28 English voice packs (npm's kokoro-js 1.2.1) into DIR/kokoro_en_voices.npz, for kokoro-en.

    python recipes/synthetic/kokoro_voices.py data/kokoro-js

Runs `npm pack` (npm only downloads the tarball; nothing is installed and no Node runs later), checks its SHA-256
and converts the packs. Running it again does nothing once the .npz is there; an interrupted download leaves no
tarball behind, so a rerun starts it afresh.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from asr.corpora.neural_tts import KOKORO_EN_PACKS, KOKORO_JS, KOKORO_JS_SHA256, kokoro_en_packs, \
    write_kokoro_en_packs
from asr.errors import ASRError

TARBALL = "kokoro-js-1.2.1.tgz"  # what `npm pack kokoro-js@1.2.1` names it
NPZ = "kokoro_en_voices.npz"


def fetch(folder: Path) -> Path:
    """DIR/NPZ, made from DIR/TARBALL, which is downloaded with npm if absent."""
    npz, tarball = folder / NPZ, folder / TARBALL
    if npz.is_file():
        kokoro_en_packs(str(npz))  # raises if damaged: delete it and run again
        return npz
    folder.mkdir(parents=True, exist_ok=True)
    if not tarball.is_file():
        if shutil.which("npm") is None:
            raise SystemExit("npm not found: apt install npm, or put the tarball at " + str(tarball))
        with tempfile.TemporaryDirectory(dir=folder) as tmp:
            subprocess.run(["npm", "pack", KOKORO_JS, "--pack-destination", tmp, "--loglevel", "error"],
                           check=True, stdout=subprocess.DEVNULL)
            (Path(tmp) / TARBALL).replace(tarball)
    return write_kokoro_en_packs(tarball, npz)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="cache folder for the tarball and the .npz")
    args = parser.parse_args(argv)
    try:
        npz = fetch(args.folder)
    except ASRError as err:
        sys.exit(f"kokoro_voices.py: error: {err}")
    print(f"{npz}: {len(KOKORO_EN_PACKS)} voice packs of {KOKORO_JS} (tarball SHA-256 {KOKORO_JS_SHA256})")


if __name__ == "__main__":
    main()
