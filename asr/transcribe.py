"""Transcription: audio in, text with time-stamped words out; the Python API behind `asr transcribe`.

Files of any length are read block by block and cut at pauses (asr/segmenter.py); segments from one or many
files are batched through the network, decoded (greedy or beam search), and their words timed from the CTC
alignment, so memory stays bounded by the batch, not by the length of the audio.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from .alignment import word_timings
from .audio import AudioSource
from .decoding import DecodeConfig, Decoder, Decoders, ids_to_text
from .errors import AudioError, CheckpointError, ConfigError
from .network import BATCH_SECONDS, Network, batched_outputs, outputs_of_files
from .release import PRETRAINED_DIR, RELEASE_ONNX, is_release, read_release_config, release_decoding
from .segmenter import AudioSegment, SegmenterConfig, segment_audio
from .text import Vocabulary
from .transcript import Segment, Transcript

Source = AudioSource | np.ndarray


@dataclass
class _Pending:
    """A source being transcribed: its finished segments, and whether reading it is over."""

    name: str
    segments: list[Segment] = field(default_factory=list)
    queued: int = 0  # segments waiting in the batch
    duration: float = 0.0
    read: bool = False
    error: AudioError | None = None


class Transcriber:
    """A network (PyTorch or onnxruntime: asr.network) and its decoders, ready to turn audio into text.

    Every transcribing method takes the decoding settings of that call (`decoding=`; default: the `decoding` given
    at construction, greedy unless set), so one Transcriber can serve callers that decode differently, from several
    threads at once. The decoders of the last few settings stay built (asr.decoding.Decoders).
    """

    def __init__(self, network: Network, vocab: Vocabulary, decoding: DecodeConfig | None = None,
                 segmenter: SegmenterConfig | None = None) -> None:
        self.network = network
        self.vocab = vocab
        self.sample_rate = network.sample_rate
        self.frame_s = network.frame_s  # seconds per network output frame
        self.segmenter = segmenter or SegmenterConfig()
        self.decoding = decoding or DecodeConfig()  # for calls that give none
        self.decoders = Decoders(vocab)
        # Beam search with the language model a release ships and the weights tuned for it (see load_model).
        self.recommended_decoding: DecodeConfig | None = None
        self.metadata: dict = {}  # what the model says about itself (asr.checkpoint.TrainedModel.metadata)

    def with_network(self, network: Network) -> "Transcriber":
        """A Transcriber for another network of this model's vocabulary (an adapted copy) that shares this one's
        decoders and decoding settings: beam search's LM and lexicon trie take hundreds of MB and do not depend
        on the network."""
        other = Transcriber(network, self.vocab, self.decoding, self.segmenter)
        other.decoders, other.recommended_decoding = self.decoders, self.recommended_decoding
        return other

    def decoder(self, decoding: DecodeConfig | None = None) -> Decoder:
        """The decoder for these settings (default: self.decoding); the first use of beam settings builds it."""
        return self.decoders.get(decoding or self.decoding)

    def log_probs(self, waveforms: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Per-frame log-probabilities (batch, frames, vocab) and valid frame counts for 16 kHz waveforms."""
        return self.network(waveforms)

    def _batched_log_probs(self, waveforms: Sequence[np.ndarray], batch_seconds: float) -> list[np.ndarray]:
        """Valid log-probs (frames, vocab) of each waveform, batching similar lengths; input order kept."""
        return batched_outputs(self.network, waveforms, batch_seconds * self.sample_rate)

    @staticmethod
    def _ids(decoder: Decoder, log_probs: np.ndarray) -> list[int]:
        return decoder.decode_ids(log_probs[None], [len(log_probs)])[0]

    def log_probs_of_files(self, sources: Sequence[AudioSource], batch_seconds: float = BATCH_SECONDS,
                           files_per_group: int = 256) -> list[np.ndarray]:
        """Valid log-probs of each file (or span of one) decoded whole, reading a group of files at a time."""
        return outputs_of_files(self.network, sources, batch_seconds * self.sample_rate, files_per_group)

    def transcribe_files(self, sources: Sequence[AudioSource], batch_seconds: float = BATCH_SECONDS,
                         decoding: DecodeConfig | None = None) -> list[str]:
        """Text of each (short) file or span decoded whole, without segmentation: what `asr evaluate` scores."""
        decoder = self.decoder(decoding)
        return [ids_to_text(self.vocab, self._ids(decoder, lp))
                for lp in self.log_probs_of_files(sources, batch_seconds)]

    def transcribe(self, source: Source, sample_rate: int | None = None,
                   decoding: DecodeConfig | None = None) -> Transcript:
        """Transcribe a file (any length) or a numpy array with its sample_rate: text, segments, timed words."""
        result = next(self.transcribe_many([source], sample_rate=sample_rate, decoding=decoding))
        if isinstance(result, AudioError):
            raise result
        return result

    def transcribe_many(self, sources: Iterable[Source], batch_seconds: float = BATCH_SECONDS,
                        sample_rate: int | None = None, decoding: DecodeConfig | None = None
                        ) -> Iterator[Transcript | AudioError]:
        """Transcripts of many sources, in input order; an unreadable source yields its AudioError instead, and
        the others go on. Segments of consecutive sources share batches, so short files run as fast as long ones."""
        decoder = self.decoder(decoding)
        pending: dict[int, _Pending] = {}
        batch: list[tuple[int, AudioSegment]] = []
        next_out = 0
        for index, source in enumerate(sources):
            state = pending[index] = _Pending("" if isinstance(source, np.ndarray) else str(source))
            try:
                segments = segment_audio(source, sample_rate, self.segmenter)
                for segment in segments:
                    batch.append((index, segment))
                    state.queued += 1
                    if sum(len(s.audio) for _, s in batch) >= batch_seconds * self.sample_rate:
                        self._run(batch, pending, batch_seconds, decoder)
                        batch = []
                state.duration = segments.duration
            except AudioError as err:
                state.error = err
            state.read = True
            while next_out in pending and pending[next_out].read and not pending[next_out].queued:
                yield self._finish(pending.pop(next_out))
                next_out += 1
        self._run(batch, pending, batch_seconds, decoder)
        while next_out in pending:
            yield self._finish(pending.pop(next_out))
            next_out += 1

    def decode_segments(self, segments: Sequence[AudioSegment], batch_seconds: float = BATCH_SECONDS,
                        decoding: DecodeConfig | None = None) -> list[Segment | None]:
        """Decode speech segments (from asr.segmenter) into timed Segments, keeping the words in each one's own
        region; None for a segment with no word of its own."""
        return self._decode_segments(segments, batch_seconds, self.decoder(decoding))

    def _decode_segments(self, segments: Sequence[AudioSegment], batch_seconds: float, decoder: Decoder
                         ) -> list[Segment | None]:
        results: list[Segment | None] = []
        for segment, log_probs in zip(segments, self._batched_log_probs([s.audio for s in segments], batch_seconds)):
            words = word_timings(log_probs, self._ids(decoder, log_probs), self.vocab, self.frame_s, segment.start)
            # A forced cut overlaps its neighbour: each word belongs to the segment whose region holds its middle.
            words = [w for w in words if segment.own_start <= (w.start + w.end) / 2 < segment.own_end]
            text = " ".join(w.word for w in words)
            results.append(Segment(words[0].start, words[-1].end, text, words) if words else None)
        return results

    def _run(self, batch: list[tuple[int, AudioSegment]], pending: dict[int, _Pending], batch_seconds: float,
             decoder: Decoder) -> None:
        """Decode a batch of segments and file them by source."""
        for (index, _), segment in zip(batch, self._decode_segments([s for _, s in batch], batch_seconds, decoder)):
            state = pending[index]
            state.queued -= 1
            if state.error is None and segment is not None:
                state.segments.append(segment)

    @staticmethod
    def _finish(state: _Pending) -> Transcript | AudioError:
        if state.error is not None:
            return state.error
        segments = sorted(state.segments, key=lambda s: s.start)
        return Transcript(" ".join(s.text for s in segments), segments, round(state.duration, 3), state.name)


RUNTIMES = ("auto", "torch", "onnx")


def load_model(path: str | os.PathLike[str] | None = None, device: str = "cpu",
               decoding: DecodeConfig | None = None, int8: bool = False, runtime: str = "auto",
               threads: int | None = None) -> Transcriber:
    """Load a model for transcription: a release folder (model.safetensors + config.json, maybe model.onnx), a
    training run's checkpoint file or run folder (its best.pt), or an exported .onnx file. Without a path, the
    model bundled with the package.

    runtime: "torch" (PyTorch: any device, int8 by dynamic quantization), "onnx" (onnxruntime on the CPU: the
    release's model.onnx or the .onnx file given, no PyTorch imported) or "auto" (onnx where the model has an ONNX
    form and the device is the CPU without int8 asked of PyTorch, else torch).
    int8: quantize PyTorch's LSTM and linear weights to 8 bits (CPU only; faster, slightly less accurate).
    threads: CPU threads for the network (PyTorch's setting is process-wide).
    """
    if runtime not in RUNTIMES:
        raise ConfigError(f"runtime must be one of {', '.join(RUNTIMES)}, not {runtime!r}")
    if int8 and device != "cpu":
        raise ConfigError(f"int8 quantization runs on the CPU only, not on {device}")
    if path is None:
        if not is_release(PRETRAINED_DIR):
            raise CheckpointError(f"no model given and no bundled model is installed in {PRETRAINED_DIR}")
        path = PRETRAINED_DIR
    onnx_file = _onnx_file(path)
    if runtime == "auto":
        runtime = "onnx" if onnx_file is not None and device == "cpu" and not int8 else "torch"
    if runtime == "onnx":
        if onnx_file is None:
            raise ConfigError(f"{path}: no ONNX form of this model (asr export --format onnx, or asr package --onnx)")
        if device != "cpu" or int8:
            raise ConfigError("the ONNX runtime runs on the CPU with the weights its file holds (export it with "
                              "--int8 for 8-bit weights); use --runtime torch for --device or --int8")
        return _load_onnx(path, onnx_file, decoding, threads)
    if str(path).endswith(".onnx"):
        raise ConfigError(f"{path}: an ONNX file runs with the onnx runtime, not PyTorch")
    return _load_torch(path, device, decoding, int8, threads)


def _onnx_file(path: str | os.PathLike[str]) -> Path | None:
    """The ONNX form of a model: the file itself, or a release folder's model.onnx."""
    path = Path(path)
    if path.suffix == ".onnx":
        return path
    return path / RELEASE_ONNX if is_release(path) and (path / RELEASE_ONNX).is_file() else None


def _load_onnx(path: str | os.PathLike[str], onnx_file: Path, decoding: DecodeConfig | None,
               threads: int | None) -> Transcriber:
    from .onnx_network import OnnxNetwork

    if not onnx_file.is_file():
        raise CheckpointError(f"{onnx_file}: no such model file")
    network = OnnxNetwork(onnx_file, threads)
    transcriber = Transcriber(network, network.vocab, decoding)
    if onnx_file != Path(path):  # a release folder: its description and recommended beam search
        release = read_release_config(path)
        transcriber.metadata = dict(release.get("metadata") or {})
        recommended = release_decoding(path, release)
        if recommended is not None:
            transcriber.recommended_decoding = DecodeConfig(method="beam", **recommended.settings())
    return transcriber


def _load_torch(path: str | os.PathLike[str], device: str, decoding: DecodeConfig | None, int8: bool,
                threads: int | None) -> Transcriber:
    import torch

    from .checkpoint import build_model, load_trained
    from .config import resolve_device
    from .model import TorchNetwork, quantize_int8

    if threads is not None:
        if threads < 1:
            raise ConfigError(f"threads must be at least 1, got {threads}")
        torch.set_num_threads(threads)
    where = resolve_device(device)
    trained = load_trained(path)
    model, features, vocab = build_model(trained)
    model = (quantize_int8(model) if int8 else model).to(where).eval()
    transcriber = Transcriber(TorchNetwork(features.to(where).eval(), model, where), vocab, decoding)
    transcriber.metadata = trained.metadata
    if trained.decoding is not None:
        transcriber.recommended_decoding = DecodeConfig(method="beam", **trained.decoding.settings())
    return transcriber
