"""JSONL manifests: read_manifest / write_manifest round trips, path resolution, and ManifestError for bad lines."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from asr import ASRError, ManifestError
from asr.manifest import read_manifest, write_manifest


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF")  # content is never read: only existence is checked
    return path


def write_lines(path: Path, lines: list) -> Path:
    """Write raw lines; dicts and lists are JSON-encoded, strings written as they are."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((json.dumps(x) if not isinstance(x, str) else x) + "\n" for x in lines), encoding="utf-8")
    return path


def entry(audio="a.wav", duration=1.5, text="hello world", **extra):
    return {"audio_filepath": audio, "duration": duration, "text": text, **extra}


@pytest.fixture
def data(tmp_path):
    """tmp/data/{a.wav, clips/b.wav} and an unrelated working directory tmp/elsewhere."""
    root = tmp_path / "data"
    touch(root / "a.wav")
    touch(root / "clips" / "b.wav")
    (tmp_path / "elsewhere").mkdir()
    return root


def test_manifest_error_is_an_asr_error():
    assert issubclass(ManifestError, ASRError)


# -- reading and writing ----------------------------------------------------------------------------------------

def test_round_trip_keeps_extra_keys(data):
    entries = [
        entry(data / "a.wav", 1.5, "hello world", speaker="spk1", offset=0.25),
        entry(data / "clips" / "b.wav", 2, "ça va — naïve", speaker="spk2", offset=0, lang="fr"),
    ]
    manifest = data / "train.jsonl"
    assert write_manifest(manifest, entries) == 2
    back = read_manifest(manifest)
    assert len(back) == 2
    for original, read in zip(entries, back):
        assert Path(read["audio_filepath"]) == Path(original["audio_filepath"]).resolve()
        assert read["duration"] == original["duration"]
        assert read["text"] == original["text"]
        for key in ("speaker", "offset"):
            assert read[key] == original[key]
    assert back[1]["lang"] == "fr"
    assert set(back[0]) == {"audio_filepath", "duration", "text", "speaker", "offset"}
    assert "ça va — naïve" in manifest.read_text(encoding="utf-8")  # stored as UTF-8, not \u escapes


def test_write_manifest_does_not_modify_the_entries(data):
    original = entry(str(data / "a.wav"))
    write_manifest(data / "m.jsonl", [original])
    assert original["audio_filepath"] == str(data / "a.wav")


def test_write_stores_paths_relative_to_the_manifest_folder(data):
    write_manifest(data / "m.jsonl", [entry(data / "a.wav"), entry(data / "clips" / "b.wav")])
    stored = [json.loads(line)["audio_filepath"] for line in (data / "m.jsonl").read_text().splitlines()]
    assert stored == ["a.wav", "clips/b.wav"]


def test_write_keeps_absolute_paths_outside_the_folder(tmp_path, data):
    outside = touch(tmp_path / "other" / "c.wav")
    manifest = data / "lists" / "m.jsonl"  # write_manifest creates the folder
    write_manifest(manifest, [entry(str(outside))])
    stored = json.loads(manifest.read_text())["audio_filepath"]
    assert Path(stored).is_absolute() and Path(stored) == outside.resolve()
    assert Path(read_manifest(manifest)[0]["audio_filepath"]) == outside.resolve()


def test_write_with_cwd_relative_path_outside_the_folder_round_trips(tmp_path, monkeypatch):
    touch(tmp_path / "audio" / "a.wav")
    monkeypatch.chdir(tmp_path)
    write_manifest(tmp_path / "lists" / "m.jsonl", [entry("audio/a.wav")])
    back = read_manifest(tmp_path / "lists" / "m.jsonl")
    assert Path(back[0]["audio_filepath"]).resolve() == (tmp_path / "audio" / "a.wav").resolve()


def test_write_accepts_path_objects_outside_the_folder(tmp_path, data):
    outside = touch(tmp_path / "other" / "c.wav")
    write_manifest(data / "m.jsonl", [entry(outside)])
    assert Path(read_manifest(data / "m.jsonl")[0]["audio_filepath"]) == outside.resolve()


def test_write_is_atomic_and_overwrites(data):
    manifest = data / "m.jsonl"
    write_manifest(manifest, [entry(data / "a.wav"), entry(data / "a.wav")])
    assert write_manifest(manifest, [entry(data / "a.wav", text="only")]) == 1
    assert [e["text"] for e in read_manifest(manifest)] == ["only"]
    assert sorted(p.name for p in data.iterdir() if p.suffix != ".wav" and p.is_file()) == ["m.jsonl"]  # no .tmp


def test_relative_paths_resolve_against_the_manifest_folder_not_the_cwd(tmp_path, data, monkeypatch):
    write_lines(data / "m.jsonl", [entry("a.wav"), entry("clips/b.wav"), entry("./clips/../a.wav")])
    touch(tmp_path / "elsewhere" / "a.wav")  # a decoy next to the CWD
    monkeypatch.chdir(tmp_path / "elsewhere")
    back = read_manifest(data / "m.jsonl")
    paths = [Path(e["audio_filepath"]) for e in back]
    assert all(p.is_absolute() for p in paths)
    assert [p.resolve() for p in paths] == [(data / "a.wav").resolve(), (data / "clips" / "b.wav").resolve(),
                                            (data / "a.wav").resolve()]


def test_relative_manifest_path_still_gives_absolute_audio_paths(tmp_path, data, monkeypatch):
    write_lines(data / "m.jsonl", [entry("a.wav")])
    monkeypatch.chdir(tmp_path)
    back = read_manifest(Path("data") / "m.jsonl")
    assert Path(back[0]["audio_filepath"]).is_absolute()


def test_relative_manifest_path_resolves_audio_against_its_folder(tmp_path, data, monkeypatch):
    write_lines(data / "m.jsonl", [entry("clips/b.wav")])
    monkeypatch.chdir(tmp_path)
    back = read_manifest("data/m.jsonl")
    assert Path(back[0]["audio_filepath"]).resolve() == (data / "clips" / "b.wav").resolve()


def test_absolute_paths_are_kept(tmp_path, data, monkeypatch):
    outside = touch(tmp_path / "other" / "c.wav")
    write_lines(data / "m.jsonl", [entry(str(outside))])
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert read_manifest(data / "m.jsonl")[0]["audio_filepath"] == str(outside)


def test_blank_lines_are_ignored(data):
    manifest = data / "m.jsonl"
    manifest.write_text(
        "\n" + json.dumps(entry("a.wav", text="one")) + "\n\n   \n\t\n" + json.dumps(entry("a.wav", text="two")) + "\n\n"
    )
    assert [e["text"] for e in read_manifest(manifest)] == ["one", "two"]


def test_last_line_without_newline(data):
    (data / "m.jsonl").write_text(json.dumps(entry("a.wav")) + "\n" + json.dumps(entry("a.wav", text="last")))
    assert [e["text"] for e in read_manifest(data / "m.jsonl")] == ["hello world", "last"]


def test_integer_duration_and_empty_text_are_valid(data):
    back = read_manifest(write_lines(data / "m.jsonl", [entry("a.wav", duration=3, text="")]))
    assert back[0]["duration"] == 3 and back[0]["text"] == ""


def test_accepts_str_path(data):
    write_lines(data / "m.jsonl", [entry("a.wav")])
    assert len(read_manifest(str(data / "m.jsonl"))) == 1


# -- errors -------------------------------------------------------------------------------------------------------

def assert_manifest_error(manifest: Path, line_no: int | None, *fragments: str, check_audio: bool = True) -> str:
    with pytest.raises(ManifestError) as info:
        read_manifest(manifest, check_audio=check_audio)
    message = str(info.value)
    assert str(manifest) in message
    if line_no is not None:
        assert f"{manifest}:{line_no}:" in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


BAD_LINES = {
    "invalid_json": ('{"audio_filepath": "a.wav", "duration": 1.0, "text": "x"', "not valid JSON"),
    "trailing_garbage": ('{"audio_filepath": "a.wav", "duration": 1.0, "text": "x"} extra', "not valid JSON"),
    "json_array": (["a.wav", 1.0, "x"], "expected a JSON object"),
    "json_string": ('"a.wav"', "expected a JSON object"),
    "json_number": ("1.5", "expected a JSON object"),
    "json_null": ("null", "expected a JSON object"),
    "missing_text": ({"audio_filepath": "a.wav", "duration": 1.0}, "text"),
    "missing_duration": ({"audio_filepath": "a.wav", "text": "x"}, "duration"),
    "missing_audio_filepath": ({"duration": 1.0, "text": "x"}, "audio_filepath"),
    "missing_all": ({"speaker": "x"}, "missing key"),
    "zero_duration": (entry(duration=0), "duration"),
    "negative_duration": (entry(duration=-1.5), "duration"),
    "nan_duration": ('{"audio_filepath": "a.wav", "duration": NaN, "text": "x"}', "duration"),
    "inf_duration": ('{"audio_filepath": "a.wav", "duration": Infinity, "text": "x"}', "duration"),
    "string_duration": (entry(duration="1.5"), "duration"),
    "bool_duration": (entry(duration=True), "duration"),
    "null_duration": (entry(duration=None), "duration"),
    "text_not_string": (entry(text=123), "text"),
    "text_null": (entry(text=None), "text"),
    "audio_filepath_empty": (entry(audio=""), "audio_filepath"),
    "audio_filepath_not_string": (entry(audio=5), "audio_filepath"),
}


@pytest.mark.parametrize("case", list(BAD_LINES))
@pytest.mark.parametrize("position", [1, 3])
def test_bad_line_names_manifest_and_line(data, case, position):
    bad, fragment = BAD_LINES[case]
    lines = [entry("a.wav"), entry("clips/b.wav")][: position - 1] + [bad, entry("a.wav")]
    manifest = write_lines(data / "m.jsonl", lines)
    assert_manifest_error(manifest, position, fragment)
    assert_manifest_error(manifest, position, fragment, check_audio=False)  # a format error, not an audio check


def test_line_numbers_count_blank_lines(data):
    manifest = data / "m.jsonl"
    manifest.write_text(json.dumps(entry("a.wav")) + "\n\n\n" + '{"oops"\n')
    assert_manifest_error(manifest, 4, "not valid JSON")


def test_missing_audio_file_is_reported(data):
    manifest = write_lines(data / "m.jsonl", [entry("a.wav"), entry("clips/b.wav"), entry("gone.wav")])
    message = assert_manifest_error(manifest, 3, "not found", "gone.wav")
    assert str(data / "gone.wav") in message  # the resolved path that was looked for


def test_audio_path_that_is_a_folder_is_reported(data):
    manifest = write_lines(data / "m.jsonl", [entry("clips")])
    assert_manifest_error(manifest, 1, "clips")


def test_check_audio_false_skips_the_audio_check(data):
    manifest = write_lines(data / "m.jsonl", [entry("a.wav"), entry("gone.wav", speaker="s")])
    back = read_manifest(manifest, check_audio=False)
    assert len(back) == 2
    assert Path(back[1]["audio_filepath"]) == data / "gone.wav"  # still resolved against the manifest folder
    assert back[1]["speaker"] == "s"


@pytest.mark.parametrize("content", ["", "\n\n  \n"], ids=["empty", "only_blank_lines"])
def test_empty_manifest(data, content):
    manifest = data / "m.jsonl"
    manifest.write_text(content)
    assert_manifest_error(manifest, None, "no entries")


def test_missing_manifest(data):
    assert_manifest_error(data / "nope.jsonl", None, "not found")


def test_manifest_path_that_is_a_folder(data):
    assert_manifest_error(data / "clips", None)


def test_non_utf8_manifest_raises_manifest_error(data):
    manifest = data / "m.jsonl"
    manifest.write_bytes(json.dumps(entry("a.wav")).encode() + b"\n" + b'{"audio_filepath": "a.wav", "text": "caf\xe9"}\n')
    assert_manifest_error(manifest, None)


def test_error_messages_are_one_line(data):
    manifest = write_lines(data / "m.jsonl", ['{"audio_filepath": "a.wav",\n'])
    message = assert_manifest_error(manifest, 1, "not valid JSON")
    assert "\n" not in message
    assert os.linesep not in message
