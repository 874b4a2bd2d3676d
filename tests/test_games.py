"""The games recipe around its readers: clips written once, the recognizer check (right texts pass, mismatched ones
do not), speaking-rate and spelling filters, and dev/test as whole characters that are never the leads. The readers
stand in here as a fake game made of espeak-ng clips (the readers' own tests are test_games_sky/queen.py)."""
from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "recipes" / "games"))

import prepare as games  # noqa: E402 (recipes/games/prepare.py)
from local.check import calibrate, text_gap, verdicts  # noqa: E402
from local.clips import Clip  # noqa: E402

import asr  # noqa: E402
from asr.audio import load_audio  # noqa: E402
from asr.corpora.synthetic import Voice, synthesize  # noqa: E402
from asr.manifest import read_manifest  # noqa: E402

from conftest import SENTENCES  # noqa: E402

pytestmark = pytest.mark.slow  # synthesizes clips and runs the bundled model over them


@pytest.fixture(scope="module")
def spoken(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, bytes]]:
    """(sentence, WAV bytes at 11,025 Hz as the games store them) for each test sentence, by espeak-ng."""
    folder = tmp_path_factory.mktemp("spoken")
    clips = []
    for i, sentence in enumerate(SENTENCES):
        synthesize(sentence, Voice("espeak-ng", "en-us"), folder / f"{i}.wav")
        buffer = io.BytesIO()
        soundfile.write(buffer, load_audio(folder / f"{i}.wav", target_rate=11025), 11025, format="WAV",
                        subtype="PCM_U8")
        clips.append((sentence, buffer.getvalue()))
    return clips


def fake_game(spoken: list[tuple[str, bytes]], wrong: set[int]):
    """A reader of a game whose clip i is spoken by character i % 4 (character 0, the lead, has most lines) and
    whose text is wrong for the clips in `wrong` (another clip's line)."""

    def read(data_dir: Path):
        for i, (sentence, audio) in enumerate(spoken * 2):
            text = spoken[(i + 5) % len(spoken)][0] if i in wrong else sentence
            character = 0 if i % 3 == 0 else 1 + i % 4
            yield Clip(f"toy/{i:03d}", f"toy:c{character}", text.capitalize() + ".", audio, ".wav")

    return read


def test_the_check_tells_right_texts_from_mismatched_ones(spoken, tmp_path):
    model = asr.load_model()
    entries = []
    for i, (sentence, audio) in enumerate(spoken):
        (tmp_path / f"{i}.wav").write_bytes(audio)
        entries.append({"audio_filepath": str(tmp_path / f"{i}.wav"), "text": sentence, "duration": 1.0})
    found = verdicts(model, entries)
    assert all(v.gap < v.mismatch_gap for v in found)
    calibration = calibrate(found, false_accept=0.0)
    assert calibration.kept_share >= 0.9 and calibration.false_accept == 0.0
    log_probs = model.log_probs_of_files([entries[0]["audio_filepath"]])[0]
    assert text_gap(log_probs, model.vocab, "x" * (len(log_probs) + 1)) == float("inf")  # cannot fit the frames


def test_prepare_keeps_confirmed_clips_and_holds_out_whole_minor_characters(spoken, tmp_path, monkeypatch, capsys):
    wrong = {1, 8, 14}
    monkeypatch.setattr(games, "GAMES", {"toy": ("toy-game", "data", fake_game(spoken, wrong))})
    monkeypatch.setattr(games, "HELD_OUT_MAX_SHARE", 0.25)  # the toy has few characters; c0 (a third) is the lead
    (tmp_path / "debs" / "toy-game" / "data").mkdir(parents=True)
    out = tmp_path / "games"
    args = ["--debs", str(tmp_path / "debs"), "--out", str(out), "--false-accept", "0.0", "--held-out-share", "0.1",
            "--jobs", "1"]
    games.main(args)
    printed = capsys.readouterr().out
    assert "toy: 24 clips with text" in printed and "check threshold" in printed
    checks = [json.loads(line) for line in (out / "checks.jsonl").read_text().splitlines()]
    assert len(checks) == 24
    rejected = {int(c["id"].split("/")[1]) for c in checks if not c["kept"]}
    assert wrong <= rejected and len(rejected) <= len(wrong) + 2
    splits = {name: read_manifest(out / f"{name}.jsonl") for name in ("train", "dev", "test")}
    assert sum(map(len, splits.values())) == 24 - len(rejected)
    characters = {name: {e["speaker"] for e in part} for name, part in splits.items()}
    assert "toy:c0" in characters["train"] and characters["dev"] and characters["test"]  # the lead is trained on
    assert not (characters["train"] & (characters["dev"] | characters["test"]))
    entry = splits["train"][0]
    assert entry["source"] == "toy" and entry["raw_text"].endswith(".") and entry["text"] == entry["raw_text"][:-1].lower()
    first = sorted((out / "audio" / "toy").iterdir())[0]
    stamp = first.stat().st_mtime_ns
    games.main(args)  # a second run reuses the clips written
    assert first.stat().st_mtime_ns == stamp and np.array_equal(load_audio(first), load_audio(first))


def test_missing_game_data_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(games, "GAMES", {"toy": ("toy-game", "data", fake_game([], set()))})
    with pytest.raises(games.ManifestError, match=r"toy-game/data: game data not found"):
        games.main(["--debs", str(tmp_path), "--out", str(tmp_path / "out")])


def test_a_held_out_file_fixes_the_characters_whatever_the_counts(tmp_path):
    entries = [{"source": "toy", "speaker": f"toy:c{i % 5}", "id": f"toy/{i}"} for i in range(50)]
    listed = tmp_path / "held_out.txt"
    listed.write_text("# the first run's split\ndev toy:c3\ntest toy:c1\n\ntest toy:c4  # the smallest\n")
    splits = games.split_by_character(entries, 0.1, games.read_held_out(listed))
    assert {e["speaker"] for e in splits["dev"]} == {"toy:c3"}
    assert {e["speaker"] for e in splits["test"]} == {"toy:c1", "toy:c4"}
    assert {e["speaker"] for e in splits["train"]} == {"toy:c0", "toy:c2"}
    listed.write_text("dev toy:c3\ntrain toy:c1\n")
    with pytest.raises(games.ManifestError, match=r"held_out.txt:2: expected `dev SPEAKER` or `test SPEAKER`"):
        games.read_held_out(listed)
