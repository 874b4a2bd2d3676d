"""Pack what a lent GPU machine needs to train, within the 64 MiB that travel with the working tree.

Runs here, before the device call (recipes/synthetic/GPU.md): each manifest's audio is encoded as Ogg/Opus at about
18 kbit/s (8 MB per hour of speech, by libsndfile through soundfile) into OUT/audio/<split>/, with a manifest
OUT/<split>.jsonl whose paths are relative; and the wheels of the Python packages asr needs and the device image
lacks (Python 3.12, manylinux) are downloaded into OUT/wheels. The device has no network: what is not packed is
not there.

    python recipes/synthetic/gpu/pack.py --out exp/gpu-pack train=data/synthetic-neural/train.jsonl \\
        dev=exp/dev-combined.jsonl
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import soundfile

from asr.atomic import atomic_path
from asr.audio import load_audio
from asr.errors import ConfigError, exit_status
from asr.manifest import read_manifest, write_manifest

SAMPLE_RATE = 16000
# libsndfile maps its compression level to Opus's bit rate: 0.95 gives about 18 kbit/s on 16 kHz speech (0.9: 28,
# 1.0: 8 kbit/s, audibly worse). Lengths are kept to the sample.
OPUS_LEVEL = 0.95
# Imported by asr for training and evaluation and missing from the device image (its KINDS.md lists the rest);
# --no-deps: their other dependencies (numpy, click) are there.
WHEELS = ["soundfile", "cffi", "pycparser", "soxr", "jiwer", "rapidfuzz", "num2words"]
DEVICE_PYTHON, DEVICE_PLATFORMS = "3.12", ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"]


def pack_split(name: str, manifest: Path, out: Path) -> tuple[int, float]:
    """Encode one manifest's audio; returns (utterances, hours)."""
    entries, seconds = [], 0.0
    for i, entry in enumerate(read_manifest(manifest)):
        audio = load_audio(entry["audio_filepath"], target_rate=SAMPLE_RATE)
        path = out / "audio" / name / f"{i:06d}.opus"
        if not path.exists():
            with atomic_path(path) as tmp:
                soundfile.write(tmp, audio, SAMPLE_RATE, format="OGG", subtype="OPUS", compression_level=OPUS_LEVEL)
        entries.append({**entry, "audio_filepath": str(path)})
        seconds += len(audio) / SAMPLE_RATE
    write_manifest(out / f"{name}.jsonl", entries)
    return len(entries), seconds / 3600


def download_wheels(out: Path) -> None:
    """The WHEELS at the versions installed here, so that the device runs what was tested here."""
    platforms = [arg for platform in DEVICE_PLATFORMS for arg in ("--platform", platform)]
    pinned = [f"{name}=={version(name)}" for name in WHEELS]
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                    "--python-version", DEVICE_PYTHON, "--implementation", "cp", *platforms, "-d", str(out / "wheels"),
                    *pinned], check=True, stderr=subprocess.DEVNULL)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("splits", nargs="+", help="NAME=MANIFEST, e.g. train=data/synthetic-neural/train.jsonl")
    parser.add_argument("--out", type=Path, default=Path("exp/gpu-pack"), help="folder to fill (default %(default)s)")
    parser.add_argument("--no-wheels", action="store_true", help="skip the wheel download (tests, repeated packs)")
    args = parser.parse_args(argv)
    for split in args.splits:
        name, _, manifest = split.partition("=")
        if not name or not manifest:
            raise ConfigError(f"{split!r}: expected NAME=MANIFEST, e.g. train=data/train.jsonl")
        count, hours = pack_split(name, Path(manifest), args.out)
        print(f"{name}: {count} utterances, {hours:.2f} h")
    if not args.no_wheels:
        download_wheels(args.out)
    size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f"{args.out}: {size / 2**20:.1f} MiB (at most 64 MiB travel with the working tree)")


if __name__ == "__main__":
    sys.exit(exit_status(sys.argv[0], main))
