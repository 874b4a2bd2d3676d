"""CPU cost of waveform augmentation: milliseconds of CPU per audio second, each augmentation alone and a mix.

A GPU that trains on 20,000 audio seconds per second with 14 loader workers leaves each worker 0.7 ms of CPU per
audio second for reading, augmenting and collating; this script says which augmentations fit in that.

Runs on one thread (numpy, BLAS and FFT limited before they load), on real speech: the utterances of --manifest, or
without one, sentences spoken by espeak-ng voices into a temporary folder (converted to 16 kHz, as corpora are).
Each row augments every utterance --passes times, each time with the generator a training epoch would use
(seed, epoch, index), and divides the CPU time it took (this process plus its ffmpeg children) by the audio
seconds it augmented. "read" is load_audio alone, which every loader pays before augmenting.
"""
from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_variable] = "1"  # before numpy, librosa and soxr load: one worker is one thread

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import soundfile  # noqa: E402
import yaml  # noqa: E402

from asr.audio import SAMPLE_RATE, load_audio  # noqa: E402
from asr.augment import CODECS, AugmentConfig, WaveformAugment  # noqa: E402
from asr.config import load_config  # noqa: E402
from asr.errors import exit_status  # noqa: E402
from asr.manifest import read_manifest  # noqa: E402

from common import argument_parser, facts_block, run_facts, software, table  # noqa: E402

SENTENCES = [
    "the quick brown fox jumps over the lazy dog while the farmer watches from the gate",
    "she sells sea shells by the sea shore, and the shells she sells are surely sea shells",
    "time flies like an arrow, but fruit flies like a banana, or so the old joke goes",
    "actions speak louder than words, yet a kind word costs nothing and is remembered for years",
    "every cloud has a silver lining, even on the greyest of afternoons in late november",
    "knowledge is power, said the teacher, and practice makes perfect in everything you do",
]
VOICES = ["en-us", "en-gb-x-rp", "en-us+f3", "en-gb-scotland+m3"]
# The bundled config's augmentation (recipes/synthetic/bundled.yaml), and the mix suggested on top of it for the
# next GPU run: the towards-people augmentations that fit the 14-worker budget on the machine this was tuned on.
BUNDLED = {"speed_factors": [0.9, 1.0, 1.1], "reverb_prob": 0.3, "noise_prob": 0.4, "snr_db": [5.0, 35.0]}
SUGGESTED = {**BUNDLED, "formant_prob": 0.2, "eq_prob": 0.15, "babble_prob": 0.03, "telephone_prob": 0.02}


@dataclasses.dataclass
class Row:
    name: str
    settings: str
    ms_per_audio_s: float
    ffmpeg_ms_per_audio_s: float


def cpu_seconds() -> tuple[float, float]:
    """CPU seconds used so far by this process, and by its finished children (the ffmpeg runs)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time(), children.ru_utime + children.ru_stime


def timed(run: Callable[[int, int], np.ndarray], count: int, passes: int, audio_s: float) -> tuple[float, float]:
    """Milliseconds of CPU per audio second for run(pass, index) over every utterance and pass (own, ffmpeg's)."""
    run(0, 0)  # warm-up: imports, caches, ffmpeg's encoder list
    own, children = cpu_seconds()
    for epoch in range(passes):
        for index in range(count):
            run(epoch, index)
    own_after, children_after = cpu_seconds()
    total = audio_s * passes
    return 1000 * (own_after - own + children_after - children) / total, 1000 * (children_after - children) / total


def speak(folder: Path) -> list[Path]:
    """SENTENCES in every voice of VOICES, as 16 kHz WAV files."""
    paths = []
    for v, voice in enumerate(VOICES):
        for s, sentence in enumerate(SENTENCES):
            raw, path = folder / f"{v}_{s}.raw.wav", folder / f"{v}_{s}.wav"
            subprocess.run(["espeak-ng", "-v", voice, "-w", str(raw), sentence], check=True, capture_output=True)
            soundfile.write(path, load_audio(raw), SAMPLE_RATE)
            paths.append(path)
    return paths


def augment_config(keys: dict) -> AugmentConfig:
    """An AugmentConfig from keys, checked as a config file's would be (the mix's key=value changes)."""
    return load_config(AugmentConfig, None, [f"{key}={json.dumps(value)}" for key, value in keys.items()])


def single_rows() -> list[tuple[str, dict]]:
    """(name, AugmentConfig keys) of each augmentation alone, at probability 1 (the codecs where ffmpeg is)."""
    rows = [
        ("speed 0.9 / 1.1", {"speed_factors": [0.9, 1.1]}),
        ("pitch ±3 semitones", {"pitch_prob": 1.0}),
        ("formants ×0.9-1.12", {"formant_prob": 1.0}),
        ("pitch and formants", {"pitch_prob": 1.0, "formant_prob": 1.0}),
        ("tempo ×0.85-1.15 (WSOLA)", {"tempo_prob": 1.0}),
        ("reverberation (synthetic room)", {"reverb_prob": 1.0}),
        ("noise (generated bank)", {"noise_prob": 1.0}),
        ("babble, 3-6 talkers", {"babble_prob": 1.0}),
        ("microphone EQ + high-pass", {"eq_prob": 1.0}),
        ("band limit 3.5-7 kHz", {"bandlimit_prob": 1.0}),
        ("telephone band", {"telephone_prob": 1.0, "telephone_companding": ["none"]}),
        ("telephone band + G.711 mu-law", {"telephone_prob": 1.0, "telephone_companding": ["mulaw"]}),
    ]
    return rows + [(f"codec {name} ({', '.join(spec.bitrates) or 'fixed rate'})", {"codec_prob": 1.0, "codecs": [name]})
                   for name, spec in CODECS.items() if shutil.which("ffmpeg")]


def measure(paths: list[Path], passes: int, mix_passes: int, mix: tuple[str, dict]) -> tuple[list[Row], float]:
    """Each single row, then the bundled and the (name, keys) mix, on the utterances in `paths`; also their duration.
    The mixes take mix_passes, so that their rare expensive draws (a codec at a few percent) average out."""
    audio = [load_audio(path) for path in paths]
    audio_s = sum(len(a) for a in audio) / SAMPLE_RATE
    read_ms, _ = timed(lambda epoch, index: load_audio(paths[index]), len(paths), passes, audio_s)
    rows = [Row("read (load_audio)", "", read_ms, 0.0)]
    runs = [(name, keys, passes) for name, keys in single_rows()]
    runs += [("bundled config's mix", BUNDLED, mix_passes), (*mix, mix_passes)]
    for name, keys, count in runs:
        augment = WaveformAugment(augment_config(keys), SAMPLE_RATE, babble_pool=paths)
        ms, ffmpeg_ms = timed(lambda epoch, index: augment(audio[index], np.random.default_rng([0, epoch, index])),
                              len(paths), count, audio_s)
        rows.append(Row(name, ", ".join(f"{k}={v}" for k, v in keys.items()), ms, ffmpeg_ms))
        print(f"{name}: {ms:.3f} ms CPU per audio s", file=sys.stderr)
    return rows, audio_s


def tools() -> str:
    """Python, numpy and ffmpeg versions (ffmpeg runs the codec round trips)."""
    ffmpeg = "no ffmpeg"
    if shutil.which("ffmpeg"):
        ffmpeg = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.split(" Copyright")[0]
    return f"{software('numpy')}, {ffmpeg}"


def render(facts: list[tuple[str, str]], rows: list[Row], budget: list[str], markdown: bool) -> str:
    """The facts, the table and the budget lines, as Markdown or as aligned text."""
    cells = [[r.name, f"{r.ms_per_audio_s:.3f}", f"{r.ffmpeg_ms_per_audio_s:.3f}" if r.ffmpeg_ms_per_audio_s else "",
              r.settings] for r in rows]
    return "\n\n".join([facts_block(facts, markdown),
                         table(["augmentation", "ms CPU / audio s", "of which ffmpeg", "settings"], cells, "lrrl",
                               markdown),
                         "\n".join(budget)])


def budget_lines(rows: list[Row], workers: int, gpu_rate: float) -> list[str]:
    """Whether reading plus each mix fits the CPU the loader workers have per audio second the GPU consumes."""
    allowed = 1000 * workers / gpu_rate
    read = rows[0].ms_per_audio_s
    lines = [f"Budget: {workers} workers feeding {gpu_rate:,.0f} audio s/s have {allowed:.3f} ms of CPU per audio s."]
    for row in rows[-2:]:
        cost = read + row.ms_per_audio_s
        lines.append(f"read + {row.name}: {cost:.3f} ms per audio s -> {workers} workers feed at most "
                     f"{1000 * workers / cost:,.0f} audio s/s ({'fits' if cost <= allowed else 'does not fit'}).")
    return lines


def parse_args() -> argparse.Namespace:
    parser = argument_parser(__doc__, markdown=True)
    parser.add_argument("mix", nargs="*", help="key=value changes to the suggested mix, e.g. codec_prob=0.1")
    parser.add_argument("--manifest", type=Path, help="measure on these utterances instead of espeak-ng sentences")
    parser.add_argument("--limit", type=int, default=48, help="utterances taken from --manifest (default 48)")
    parser.add_argument("--passes", type=int, default=2, help="times each row augments every utterance (default 2)")
    parser.add_argument("--mix-passes", type=int, default=8, help="passes of the two mixes (default 8)")
    parser.add_argument("--workers", type=int, default=14, help="loader workers of the GPU run (default 14)")
    parser.add_argument("--gpu-rate", type=float, default=20000.0, help="audio s/s the GPU consumes (default 20000)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    changes = {key: yaml.safe_load(value) for key, _, value in (kv.partition("=") for kv in args.mix)}
    mix = ("suggested mix" + (f" with {' '.join(args.mix)}" if changes else ""), {**SUGGESTED, **changes})
    augment_config(mix[1])  # a bad change fails now, not after minutes of measuring
    with tempfile.TemporaryDirectory() as tmp:
        if args.manifest:
            paths = [Path(e["audio_filepath"]) for e in read_manifest(args.manifest)[: args.limit]]
            source = f"{args.manifest}, first {len(paths)} utterances"
        else:
            paths = speak(Path(tmp))
            source = f"espeak-ng, {len(SENTENCES)} sentences x {len(VOICES)} voices ({', '.join(VOICES)}), 16 kHz"
        rows, audio_s = measure(paths, args.passes, args.mix_passes, mix)
    facts = [*run_facts("; measured on 1 thread"),
             ("load average", "%.1f %.1f %.1f (1, 5, 15 min) at the end" % os.getloadavg()), ("software", tools()),
             ("audio", f"{source}: {audio_s:.1f} s, {audio_s / len(paths):.1f} s per utterance; "
                       f"{args.passes} passes per row, {args.mix_passes} for the mixes")]
    print(render(facts, rows, budget_lines(rows, args.workers, args.gpu_rate), args.markdown))


if __name__ == "__main__":
    sys.exit(exit_status(sys.argv[0], main))
