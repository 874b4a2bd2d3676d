"""asr: a train-your-own speech recognizer (log-mel features, BiLSTM-CTC, greedy and beam search decoding, WER evaluation)."""
from .errors import ASRError, AudioError, CheckpointError, ConfigError, ManifestError

__all__ = ["ASRError", "AudioError", "CheckpointError", "ConfigError", "DecodeConfig", "ManifestError", "load_model",
           "written"]
__version__ = "0.1.0"


def load_model(path=None, device: str = "cpu", decoding=None, int8: bool = False, runtime: str = "auto",
               threads=None):
    """Load a trained model for transcription (see asr.transcribe.load_model)."""
    from .transcribe import load_model as _load_model

    return _load_model(path, device=device, decoding=decoding, int8=int8, runtime=runtime, threads=threads)


def written(transcript, punctuate: bool = True):  # noqa: ANN001, ANN201 - Transcript in and out, lazily imported
    """The transcript as people write it: numbers, years and times as digits, capitals and punctuation (unless
    punctuate=False), word times kept (see asr.written)."""
    from .written import written as _written

    return _written(transcript, punctuate)


def __getattr__(name: str):  # noqa: ANN202 - a lazily imported class
    """asr.DecodeConfig without importing torch when only the errors are needed (keeps `asr --help` fast)."""
    if name == "DecodeConfig":
        from .decoding import DecodeConfig

        return DecodeConfig
    raise AttributeError(f"module 'asr' has no attribute {name!r}")
