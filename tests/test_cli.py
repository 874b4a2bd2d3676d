"""The `asr` command's error handling, run as a separate process: every bad input gives exit code 1 and exactly one
readable line on stderr (naming the file at fault), never a traceback; a malicious checkpoint never runs code.

Each command imports torch (about 3 s of a fresh interpreter), so most runs go through `cli`: one helper interpreter
that imports the heavy modules once, then forks a child per run that executes `asr.cli` as `__main__` exactly as
`python -m asr.cli ARGS` would (own cwd, stdout/stderr on their own files, uncaught exceptions printed as tracebacks
with exit 1). test_forked_runs_match_a_fresh_interpreter checks that it gives the same result as a fresh
`[sys.executable, "-m", "asr.cli", ...]`, which the --help tests and that check use directly.
None of these needs a trained model: the model-dependent CLI tests live elsewhere.
"""
from __future__ import annotations

import atexit
import json
import select
import shutil
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.adapt import AdaptConfig
from asr.cli import main
from asr.decoding import DecodeConfig
from asr.network import BATCH_SECONDS

FRESH_CMD = [sys.executable, "-m", "asr.cli"]

RUNNER = textwrap.dedent(
    r"""
    import json, os, runpy, sys, traceback
    import asr.config, asr.evaluate, asr.manifest, asr.train, asr.transcribe  # what the commands import lazily
    import torch
    assert "asr.cli" not in sys.modules  # run_module must execute it fresh, as `python -m` does
    proto = os.fdopen(os.dup(1), "w")
    proto.write("ready\n"); proto.flush()
    for line in sys.stdin:
        req = json.loads(line)
        sys.stdout.flush(); sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.chdir(req["cwd"])
                for fd, name in ((1, "stdout"), (2, "stderr")):
                    os.dup2(os.open(req[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
                if "exec" in req:  # a helper snippet (e.g. writing a checkpoint with torch.save)
                    exec(req["exec"], {"__name__": "__exec__"})
                    code = 0
                else:
                    sys.argv = ["asr"] + req["args"]
                    try:
                        runpy.run_module("asr.cli", run_name="__main__", alter_sys=True)
                        code = 0
                    except SystemExit as exit:  # what the interpreter does with sys.exit(x)
                        if exit.code is None or isinstance(exit.code, int):
                            code = exit.code or 0
                        else:
                            print(exit.code, file=sys.stderr)
                            code = 1
            except BaseException:
                sys.excepthook(*sys.exc_info())  # the interpreter's own traceback printout
                code = 1
            finally:
                try:
                    sys.stdout.flush(); sys.stderr.flush()
                finally:
                    os._exit(code)
        _, status = os.waitpid(pid, 0)
        proto.write(json.dumps({"rc": os.waitstatus_to_exitcode(status)}) + "\n"); proto.flush()
    """
)


@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return self.stderr.splitlines()


class Runner:
    def __init__(self, workdir: Path) -> None:
        """Start the helper interpreter (not waiting for it: see wait_ready)."""
        self.workdir = workdir
        self.count = 0
        self.stderr_file = open(workdir / "runner.stderr", "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", RUNNER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr_file,
            text=True, cwd=workdir,
        )
        self.ready = False

    def wait_ready(self) -> "Runner":
        if not self.ready:
            if self.proc.stdout.readline().strip() != "ready":
                raise RuntimeError(f"CLI runner failed to start: {(self.workdir / 'runner.stderr').read_text()}")
            self.ready = True
        return self

    def _request(self, cwd: Path, **req) -> Result:
        self.count += 1
        out, err = self.workdir / f"{self.count}.out", self.workdir / f"{self.count}.err"
        self.proc.stdin.write(json.dumps({"cwd": str(cwd), "stdout": str(out), "stderr": str(err), **req}) + "\n")
        self.proc.stdin.flush()
        if not select.select([self.proc.stdout], [], [], 300)[0]:  # a hung child must fail the test, not CI
            self.proc.kill()
            raise RuntimeError(f"CLI runner timed out on {req}")
        reply = self.proc.stdout.readline()
        if not reply:
            raise RuntimeError(f"CLI runner died: {(self.workdir / 'runner.stderr').read_text()}")
        return Result(json.loads(reply)["rc"], out.read_text(), err.read_text())

    def __call__(self, *args: str, cwd: Path) -> Result:
        """`python -m asr.cli ARGS` in cwd."""
        return self._request(cwd, args=[str(a) for a in args])

    def exec(self, code: str, cwd: Path) -> Result:
        return self._request(cwd, exec=code)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self.stderr_file.close()


def fresh(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([*FRESH_CMD, *map(str, args)], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def finish(proc: subprocess.Popen) -> Result:
    stdout, stderr = proc.communicate(timeout=120)
    return Result(proc.returncode, stdout, stderr)


# Both interpreters start while this module is being collected, so their torch imports (seconds each) overlap
# with the other test modules instead of adding to the run time.
_WORKDIR = Path(tempfile.mkdtemp(prefix="asr-test-cli-"))
atexit.register(shutil.rmtree, _WORKDIR, True)
_RUNNER = Runner(_WORKDIR)
_FRESH_MISSING_MODEL = fresh("transcribe", "missing.wav", "--model", "nope.pt", cwd=_WORKDIR)


@pytest.fixture(scope="module")
def workdir():
    return _WORKDIR


@pytest.fixture(scope="module")
def fresh_missing_model():
    return _FRESH_MISSING_MODEL


@pytest.fixture(scope="module")
def cli(workdir):
    yield _RUNNER.wait_ready()
    _RUNNER.close()


def assert_one_line_error(result: Result, *fragments: str, command: str | None = None) -> str:
    """Exit code 1, nothing on stdout, exactly one line on stderr, no traceback, the fragments in it."""
    assert "Traceback" not in result.stderr, result.stderr
    assert result.rc == 1, result
    assert len(result.lines) == 1, f"expected one line on stderr, got {len(result.lines)}:\n{result.stderr}"
    line = result.lines[0]
    if command:
        assert line.startswith(f"asr {command}: error: "), line
    for fragment in fragments:
        assert fragment in line, line
    assert result.stdout == ""
    return line


def write_sine(path: Path) -> Path:
    t = np.arange(16000) / 16000
    sf.write(path, 0.5 * np.sin(2 * np.pi * 440 * t), 16000)
    return path


# -- fresh interpreters: help, usage, and the check that the forked runs behave the same -------------------------

HELP = {
    "--help": (["--help"], ["usage: asr", "train", "evaluate", "transcribe"]),
    "train": (["train", "--help"], ["usage: asr train", "config", "overrides", "--resume"]),
    "evaluate": (["evaluate", "--help"], ["usage: asr evaluate", "--model", "--manifest"]),
    "transcribe": (["transcribe", "--help"], ["usage: asr transcribe", "inputs", "--model", "--output-format",
                                              "--decoder", "--lm", "--hotword", "--int8"]),
    "lm": (["lm", "--help"], ["usage: asr lm", "text", "--order", "--min-counts", "--chars"]),
    "tune-lm": (["tune-lm", "--help"], ["usage: asr tune-lm", "--lm-weights", "--word-scores"]),
    "export": (["export", "--help"], ["usage: asr export", "--out", "--int8"]),
    "demo": (["demo", "--help"], ["usage: asr demo", "--host", "--port", "--model", "--share"]),
}


def assert_help(result: Result, expected: list[str]) -> None:
    assert result.rc == 0, result
    for fragment in expected:
        assert fragment in result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("case", ["--help", "train"])
def test_help_exits_zero(tmp_path, case):
    args, expected = HELP[case]
    assert_help(finish(fresh(*args, cwd=tmp_path)), expected)


@pytest.mark.parametrize("case", list(HELP))
def test_help_exits_zero_forked(cli, tmp_path, case):
    args, expected = HELP[case]
    assert_help(cli(*args, cwd=tmp_path), expected)


@pytest.mark.parametrize(("command", "expected"), [
    ("adapt", [f"optimizer steps at most, fewer when the held-out loss stops improving (default: "
                f"{AdaptConfig.steps})", f"(default: {AdaptConfig.minutes_max})", "(default: PyTorch's choice)"]),
    ("package", [f"with --lm: the beam size to use (default: {DecodeConfig.beam_size})"]),
    ("transcribe", [f"(default: the model's, else {DecodeConfig.beam_size})",
                    f"padded audio seconds per network batch (default: {BATCH_SECONDS})"]),
])
def test_help_shows_the_defaults_where_they_are_defined(capsys, monkeypatch, command, expected):
    """Each option's default in --help is the one the library uses (asr.adapt.AdaptConfig, DecodeConfig, ...)."""
    monkeypatch.setenv("COLUMNS", "300")  # one line per option
    with pytest.raises(SystemExit):
        main([command, "--help"])
    shown = capsys.readouterr().out
    for fragment in expected:
        assert fragment in shown
    assert "(default: None)" not in shown and "(default: False)" not in shown


def test_usage_error_exits_non_zero_without_traceback(tmp_path):
    result = finish(fresh(cwd=tmp_path))
    assert result.rc == 2, result  # argparse's usage error
    assert "usage: asr" in result.stderr and "error:" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("args", [[], ["frobnicate"], ["transcribe"], ["evaluate", "--model", "m.pt"]],
                         ids=["no_command", "unknown_command", "no_files", "no_manifest"])
def test_usage_errors_forked(cli, tmp_path, args):
    result = cli(*args, cwd=tmp_path)
    assert result.rc == 2, result
    assert "usage: asr" in result.stderr and "error:" in result.stderr
    assert "Traceback" not in result.stderr


def test_forked_runs_match_a_fresh_interpreter(cli, workdir, fresh_missing_model):
    expected = finish(fresh_missing_model)
    assert_one_line_error(expected, "nope.pt", "not found", command="transcribe")
    assert cli("transcribe", "missing.wav", "--model", "nope.pt", cwd=workdir) == expected


def test_runner_reports_uncaught_exceptions_like_the_interpreter(cli, tmp_path):
    """The harness itself: a crash must show up as a traceback and exit 1, or the tests below would prove nothing."""
    result = cli.exec("raise KeyError('boom')", cwd=tmp_path)
    assert result.rc == 1 and "Traceback" in result.stderr and "KeyError: 'boom'" in result.stderr


# -- transcribe / evaluate: models ---------------------------------------------------------------------------------

def test_transcribe_missing_model(cli, tmp_path):
    write_sine(tmp_path / "some.wav")
    line = assert_one_line_error(cli("transcribe", "some.wav", "--model", "missing_model.pt", cwd=tmp_path),
                                 command="transcribe")
    assert "missing_model.pt" in line and "not found" in line


def test_transcribe_missing_audio_and_missing_model(cli, tmp_path):
    assert_one_line_error(cli("transcribe", "missing.wav", "--model", "M.pt", cwd=tmp_path), "M.pt", "not found",
                          command="transcribe")


def test_transcribe_model_folder_without_best_pt(cli, tmp_path):
    (tmp_path / "run").mkdir()
    assert_one_line_error(cli("transcribe", "x.wav", "--model", "run", cwd=tmp_path), "best.pt", "not found")


def test_transcribe_without_model_uses_the_bundled_one(cli, tmp_path):
    # The bundled model loads, so the error is about the audio file, not the model.
    assert_one_line_error(cli("transcribe", "x.wav", cwd=tmp_path), "x.wav: file not found")


def _corrupt(kind: str) -> bytes:
    rng = np.random.default_rng(0)
    return {
        "random_bytes": rng.bytes(5000),
        "empty": b"",
        "text": b"hello, I am not a checkpoint\n",
        "json": b'{"format": "asr-checkpoint-v1"}\n',
        "zip_not_torch": None,  # written below
        "pickle_opcode_a": b"a" + rng.bytes(200),
        "pickle_opcode_c": b"c" + rng.bytes(200),
        "pickle_protocol_86": b"\x80\x56" + rng.bytes(200),
    }[kind]


@pytest.mark.parametrize("kind", ["random_bytes", "empty", "text", "json", "zip_not_torch", "pickle_opcode_a",
                                  "pickle_opcode_c", "pickle_protocol_86"])
def test_transcribe_corrupt_checkpoint(cli, tmp_path, kind):
    write_sine(tmp_path / "some.wav")
    model = tmp_path / "model.pt"
    if kind == "zip_not_torch":
        import zipfile

        with zipfile.ZipFile(model, "w") as z:
            z.writestr("model/data.pkl", b"junk")
    else:
        model.write_bytes(_corrupt(kind))
    line = assert_one_line_error(cli("transcribe", "some.wav", "--model", "model.pt", cwd=tmp_path),
                                 "model.pt", command="transcribe")
    assert "checkpoint" in line


def test_transcribe_torch_file_that_is_not_an_asr_checkpoint(cli, tmp_path):
    write_sine(tmp_path / "some.wav")
    made = cli.exec(
        "import torch\n"
        "torch.save(torch.zeros(3), 'tensor.pt')\n"
        "torch.save({'weights': torch.zeros(3)}, 'dict.pt')\n"
        "torch.save({'format': 'asr-checkpoint-v1', 'model': {}}, 'old.pt')\n",
        cwd=tmp_path,
    )
    assert made.rc == 0, made
    for name in ("tensor.pt", "dict.pt"):
        assert_one_line_error(cli("transcribe", "some.wav", "--model", name, cwd=tmp_path), name,
                              "not an asr checkpoint")
    assert_one_line_error(cli("transcribe", "some.wav", "--model", "old.pt", cwd=tmp_path), "old.pt",
                          "does not match")


EVIL = """
import os, pathlib, torch

class Payload:
    def __reduce__(self):  # unpickling this calls pathlib.Path.touch(MARKER)
        return (pathlib.Path.touch, (pathlib.Path(os.path.abspath({marker!r})),))

checkpoint = {{"format": "asr-checkpoint-v1", "config": {{}}, "model": Payload()}}
torch.save(checkpoint, {name!r}, _use_new_zipfile_serialization={zip})
"""


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_malicious_checkpoint_runs_no_code(cli, tmp_path, zip_format):
    write_sine(tmp_path / "some.wav")
    made = cli.exec(EVIL.format(marker="MARKER", name="evil.pt", zip=zip_format) +
                    EVIL.format(marker="CONTROL", name="control.pt", zip=zip_format) +
                    "torch.load('control.pt', weights_only=False)\n",  # proves the payload does run when trusted
                    cwd=tmp_path)
    assert made.rc == 0, made
    assert (tmp_path / "CONTROL").exists(), "the payload is not live: this test would prove nothing"
    if zip_format:
        import zipfile

        assert zipfile.is_zipfile(tmp_path / "evil.pt")  # a genuine torch zip checkpoint
    assert not (tmp_path / "MARKER").exists()

    line = assert_one_line_error(cli("transcribe", "some.wav", "--model", "evil.pt", cwd=tmp_path), "evil.pt",
                                 command="transcribe")
    assert "checkpoint" in line
    assert not (tmp_path / "MARKER").exists(), "loading the checkpoint ran code from it"
    assert_one_line_error(cli("evaluate", "--model", "evil.pt", "--manifest", "m.jsonl", cwd=tmp_path), "evil.pt")
    assert not (tmp_path / "MARKER").exists(), "loading the checkpoint ran code from it"


def test_evaluate_missing_model_and_manifest(cli, tmp_path):
    line = assert_one_line_error(cli("evaluate", "--model", "X.pt", "--manifest", "missing.jsonl", cwd=tmp_path),
                                 command="evaluate")
    assert "X.pt" in line or "missing.jsonl" in line
    assert "not found" in line


def test_evaluate_without_model(cli, tmp_path):
    assert_one_line_error(cli("evaluate", "--manifest", "missing.jsonl", cwd=tmp_path), command="evaluate")


# -- train: configs and overrides ------------------------------------------------------------------------------------

def _train(cli, tmp_path, config_text: str | bytes | None, *overrides: str) -> Result:
    if config_text is not None:
        path = tmp_path / "config.yaml"
        if isinstance(config_text, bytes):
            path.write_bytes(config_text)
        else:
            path.write_text(config_text)
    return cli("train", "config.yaml", *overrides, cwd=tmp_path)


def test_train_missing_config(cli, tmp_path):
    assert_one_line_error(_train(cli, tmp_path, None), "config.yaml", "not found", command="train")


def test_train_config_with_unknown_key(cli, tmp_path):
    assert_one_line_error(_train(cli, tmp_path, "train:\n  epocs: 3\n"), "unknown key", "epocs", command="train")


def test_train_unknown_section(cli, tmp_path):
    assert_one_line_error(_train(cli, tmp_path, "trian:\n  epochs: 3\n"), "unknown key", "trian")


@pytest.mark.parametrize("override", ["train.epochs", "=3"])
def test_train_override_without_key_value(cli, tmp_path, override):
    assert_one_line_error(_train(cli, tmp_path, "train:\n  epochs: 3\n", override), override, "key=value",
                          command="train")


@pytest.mark.parametrize(
    ("override", "fragment"),
    [("train.epochs=abc", "train.epochs"), ("train.lr=fast", "train.lr"), ("model.hidden_size=[1, 2]", "hidden_size"),
     ("train.epochs=true", "train.epochs"), ("model=3", "model"), ("train.epochs.x=1", "epochs")],
)
def test_train_override_of_the_wrong_type(cli, tmp_path, override, fragment):
    assert_one_line_error(_train(cli, tmp_path, "train:\n  epochs: 3\n", override), fragment, command="train")


def test_train_config_that_is_not_a_mapping(cli, tmp_path):
    assert_one_line_error(_train(cli, tmp_path, "- a\n- b\n"), "expected a mapping")


def test_train_without_train_manifest(cli, tmp_path):
    assert_one_line_error(_train(cli, tmp_path, "train:\n  epochs: 1\n"), "train_manifest")


def test_train_missing_train_manifest(cli, tmp_path):
    result = _train(cli, tmp_path, "train:\n  epochs: 1\n", "train.train_manifest=missing.jsonl")
    assert_one_line_error(result, "missing.jsonl", "not found")


def test_train_invalid_yaml_is_one_line(cli, tmp_path):
    assert_one_line_error(_train(cli, tmp_path, "train: {epochs: 2\n"), "config.yaml", "invalid YAML")


def test_train_invalid_yaml_is_reported_without_traceback(cli, tmp_path):
    result = _train(cli, tmp_path, "train: {epochs: 2\n")
    assert result.rc == 1 and "Traceback" not in result.stderr
    assert "config.yaml" in result.lines[0] and "invalid YAML" in result.lines[0]


@pytest.mark.parametrize("override", ["train.lr=[", "train.out_dir=: x"])
def test_train_override_with_invalid_yaml_value(cli, tmp_path, override):
    assert_one_line_error(_train(cli, tmp_path, "train:\n  epochs: 3\n", override), override.split("=")[0])


def test_train_non_mapping_config_with_override(cli, tmp_path):
    assert_one_line_error(_train(cli, tmp_path, "- a\n- b\n", "train.epochs=1"), "config.yaml")


def test_train_config_not_utf8(cli, tmp_path):
    assert_one_line_error(_train(cli, tmp_path, b"train:\n  out_dir: caf\xe9\n"), "config.yaml")


def test_the_asr_package_installs_from_a_distribution_of_its_own_name():
    """PyPI's `asr` is another project: this one's distribution has a name of its own, which the install, the
    project file and the README agree on."""
    import importlib.metadata
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    name = tomllib.loads((root / "pyproject.toml").read_text())["project"]["name"]
    assert name != "asr"
    assert name in importlib.metadata.packages_distributions()["asr"]
    assert f"`{name}`" in (root / "README.md").read_text()
