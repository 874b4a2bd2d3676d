"""Voice adaptation: how much `asr adapt` lowers the WER on *other* sentences of a voice, and how long it takes.

    python benchmarks/adapt_gain.py --out exp/adapt-gain                       # every voice below that can be made
    python benchmarks/adapt_gain.py --out exp/adapt-gain --voices kokoro-new piper-low

Each voice gets about 3 minutes (--adapt-seconds) of the built-in prompts (asr/adapt_prompts.txt, in order) to adapt
on, and is scored before and after on 40 other sentences: unseen sentences of the synthetic corpus's test split
(--test-manifest; every 4th of those lasting 2-6 s), spoken by the same voice.

  kokoro-new    a Kokoro style mix no training or dev/test voice is made of (key "adapt-a")          [tts extra]
  piper-low     Piper's joe voice outside its training ranges: lower (x0.86), slower (x0.92), calmer    [tts extra]
  kokoro-room   kokoro-new through one fixed room (RT60 0.45 s), microphone colouring (EQ within +-6 dB, high-pass
                150 Hz) and pink noise at 18 dB SNR: the same voice in a person's own set-up
  real-SPEAKER  speakers of the real-speech dev set (--realspeech) with the most audio: alternate recordings to adapt
                on and to score on; under a minute each, far less than 3 minutes

Adaptation runs with AdaptConfig's defaults (the `asr adapt` command's) on --threads threads. Prints a Markdown
table; the synthesized audio stays in OUT for reruns.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import soundfile
import torch

from asr.adapt import AdaptConfig, adapt, prompts
from asr.audio import load_audio
from asr.augment import EQ_POINTS_HZ, add_noise, coloured_noise, equalize, reverberate, synthetic_rir
from asr.checkpoint import build_model
from asr.corpora.synthetic import Voice, synthesize
from asr.decoding import ids_to_text
from asr.evaluate import score
from asr.manifest import read_manifest, write_manifest
from asr.model import TorchNetwork
from asr.text import normalize
from asr.transcribe import Transcriber, load_model

from common import argument_parser, facts_block, run_facts, software, table

SYNTHETIC = {
    "kokoro-new": (Voice("kokoro", "adapt-a"), {}),
    "piper-low": (Voice("piper", "en_US-joe-medium"), {"rate": 0.92, "pitch": 0.86, "noise_scale": 0.5,
                                                        "noise_w": 0.6}),
}
ROOM_OF = {"kokoro-room": "kokoro-new"}
REAL_SPEAKERS = ["klettres:en", "warzone2100:narrator", "ktuberling:en"]


def synthesize_voice(folder: Path, name: str, test_texts: list[str], adapt_seconds: float) -> None:
    """folder/adapt (WAV + .txt per prompt, until adapt_seconds) and folder/test.jsonl."""
    voice, settings = SYNTHETIC[name]
    (folder / "adapt").mkdir(parents=True, exist_ok=True)
    total = 0.0
    for index, text in enumerate(prompts()):
        if total >= adapt_seconds:
            break
        total += synthesize(text, voice, folder / "adapt" / f"{index:03d}.wav", **settings)
        (folder / "adapt" / f"{index:03d}.txt").write_text(text + "\n", encoding="utf-8")
    entries = []
    for index, text in enumerate(test_texts):
        path = folder / "test" / f"{index:03d}.wav"
        path.parent.mkdir(exist_ok=True)
        duration = synthesize(text, voice, path, **settings)
        entries.append({"audio_filepath": str(path), "duration": duration, "text": normalize(text), "speaker": name})
    write_manifest(folder / "test.jsonl", entries)


def through_room(source: Path, folder: Path) -> None:
    """Copy a voice's adapt and test audio through one fixed room, microphone and noise (seeded)."""
    rng = np.random.default_rng(7)
    rir = synthetic_rir(0.45, 16000, rng)
    gains = rng.uniform(-6, 6, len(EQ_POINTS_HZ))

    def room(path: Path, out: Path, seed: int) -> None:
        audio = equalize(reverberate(load_audio(path), rir), 16000, gains, 150.0)
        noise = coloured_noise(len(audio), 1.0, np.random.default_rng(seed))
        out.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(out, add_noise(audio, noise, 18.0).astype(np.float32), 16000, subtype="PCM_16")

    for index, wav in enumerate(sorted((source / "adapt").glob("*.wav"))):
        room(wav, folder / "adapt" / wav.name, index)
        (folder / "adapt" / wav.with_suffix(".txt").name).write_text(wav.with_suffix(".txt").read_text())
    entries = []
    for index, entry in enumerate(read_manifest(source / "test.jsonl")):
        out = folder / "test" / Path(entry["audio_filepath"]).name
        room(Path(entry["audio_filepath"]), out, 1000 + index)
        entries.append(dict(entry, audio_filepath=str(out)))
    write_manifest(folder / "test.jsonl", entries)


def split_real_speaker(manifest: Path, speaker: str, folder: Path) -> None:
    """A real-speech dev speaker's recordings: even ones to adapt on (adapt.jsonl), odd ones to score on."""
    entries = [e for e in read_manifest(manifest) if e.get("speaker") == speaker]
    folder.mkdir(parents=True, exist_ok=True)
    write_manifest(folder / "adapt.jsonl", entries[0::2])
    write_manifest(folder / "test.jsonl", entries[1::2])


def wers(transcriber: Transcriber, entries: list[dict]) -> tuple[float, float]:
    """Greedy and beam + LM WER; the network runs once."""
    outputs = transcriber.log_probs_of_files([e["audio_filepath"] for e in entries])
    references = [e["text"] for e in entries]
    result = []
    for decoding in (None, transcriber.recommended_decoding):
        decoder = transcriber.decoder(decoding)
        hypotheses = [ids_to_text(transcriber.vocab, decoder.decode_ids(lp[None], [len(lp)])[0])
                      for lp in outputs]
        result.append(score(references, hypotheses).wer)
    return result[0], result[1]


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--out", required=True, help="folder for the voices' audio")
    parser.add_argument("--voices", nargs="+", help="default: all of " + ", ".join(
        [*SYNTHETIC, *ROOM_OF, *(f"real-{s.replace(':', '-')}" for s in REAL_SPEAKERS)]))
    parser.add_argument("--test-manifest", default="data/synthetic-neural/test.jsonl")
    parser.add_argument("--realspeech", default="data/realspeech/dev.jsonl")
    parser.add_argument("--adapt-seconds", type=float, default=200.0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    out = Path(args.out)
    real = {f"real-{s.replace(':', '-')}": s for s in REAL_SPEAKERS}
    names = args.voices or [*SYNTHETIC, *ROOM_OF, *(real if Path(args.realspeech).is_file() else [])]
    torch.set_num_threads(args.threads)
    base = load_model(runtime="torch")  # adapted models are PyTorch ones: compare like with like
    rows = []
    for name in names:
        folder = out / name
        if not (folder / "test.jsonl").is_file():
            if name in SYNTHETIC:
                tests = [e for e in read_manifest(args.test_manifest) if 2.0 <= e["duration"] <= 6.0][::4][:40]
                synthesize_voice(folder, name, [e.get("raw_text", e["text"]) for e in tests], args.adapt_seconds)
            elif name in ROOM_OF:
                through_room(out / ROOM_OF[name], folder)
            else:
                split_real_speaker(Path(args.realspeech), real[name], folder)
        recordings = folder / "adapt" if (folder / "adapt").is_dir() else folder / "adapt.jsonl"
        test = read_manifest(folder / "test.jsonl")
        before = wers(base, test)
        began = time.perf_counter()
        result = adapt(recordings, None, AdaptConfig(threads=args.threads), log=lambda line: None)
        wall = time.perf_counter() - began
        model, features, _ = build_model(result.trained)
        after = wers(base.with_network(TorchNetwork(features, model)), test)
        rows.append([name, f"{result.trained_on} + {result.held_out} held out ({result.trained_seconds:.0f} s "
                           f"trained on)",
                     f"{len(test)} ({sum(e['duration'] for e in test):.0f} s)",
                     f"{before[0]:.1%} → {after[0]:.1%} ({after[0] / before[0] - 1:+.0%})",
                     f"{before[1]:.1%} → {after[1]:.1%} ({after[1] / before[1] - 1:+.0%})",
                     f"{result.steps} (kept {result.best_step})", f"{wall:.0f} s"])
        print(f"| {' | '.join(rows[-1])} |", flush=True)  # each voice as it is done: a run takes minutes
    settings = {k: v for k, v in vars(AdaptConfig()).items() if k in ("steps", "lr", "layers")}
    print("\n" + facts_block([*run_facts(f"; {args.threads} threads"), ("software", software("torch")),
                               ("AdaptConfig", json.dumps(settings))]) + "\n")
    print(table(["voice", "adapted on (recordings)", "scored on", "WER greedy", "WER beam + LM", "steps", "wall"],
                rows))


if __name__ == "__main__":
    main()
