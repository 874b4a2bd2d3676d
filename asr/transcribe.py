"""Transcription: audio in, text out, with a trained model; the Python API behind `asr transcribe`."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .audio import load_audio
from .checkpoint import build_model, checkpoint_path, is_release, load_checkpoint, load_release
from .config import resolve_device
from .decoding import GreedyDecoder
from .errors import CheckpointError
from .features import LogMel
from .model import BiLSTMCTC
from .text import Vocabulary

PRETRAINED_DIR = Path(__file__).parent / "pretrained"


class Transcriber:
    """A model, its feature extractor and a decoder, ready to turn 16 kHz audio into text."""

    def __init__(self, model: BiLSTMCTC, features: LogMel, vocab: Vocabulary, device: str = "cpu") -> None:
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.features = features.to(self.device).eval()
        self.vocab = vocab
        self.decoder = GreedyDecoder(vocab)
        self.sample_rate = features.config.sample_rate

    @torch.inference_mode()
    def log_probs(self, waveforms: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-frame log-probabilities (batch, frames, vocab) and valid frame counts for 16 kHz waveforms."""
        lengths = torch.tensor([len(w) for w in waveforms])
        batch = torch.zeros(len(waveforms), int(lengths.max()))
        for i, w in enumerate(waveforms):
            batch[i, : len(w)] = torch.from_numpy(np.asarray(w, dtype=np.float32))
        feats, frames = self.features(batch.to(self.device), lengths.to(self.device))
        return self.model(feats, frames)

    def transcribe_waveforms(self, waveforms: Sequence[np.ndarray], batch_seconds: float = 120.0) -> list[str]:
        """Transcribe many waveforms, batching similar lengths together; results keep the input order."""
        order = sorted(range(len(waveforms)), key=lambda i: len(waveforms[i]))
        texts: list[str] = [""] * len(waveforms)
        start = 0
        while start < len(order):
            end = start + 1
            # Sorted ascending: the padded batch costs count x the newest (longest) item.
            while end < len(order) and (end - start + 1) * len(waveforms[order[end]]) <= batch_seconds * self.sample_rate:
                end += 1
            chunk = order[start:end]
            log_probs, lengths = self.log_probs([waveforms[i] for i in chunk])
            for i, text in zip(chunk, self.decoder.decode(log_probs, lengths)):
                texts[i] = text
            start = end
        return texts

    def transcribe(self, source: str | os.PathLike[str] | np.ndarray, sample_rate: int | None = None) -> str:
        """Transcribe one file path, or a numpy array with its sample_rate."""
        return self.transcribe_waveforms([load_audio(source, sample_rate, self.sample_rate)])[0]

    def transcribe_files(
        self, paths: Sequence[str | os.PathLike[str]], batch_seconds: float = 120.0, files_per_group: int = 256
    ) -> list[str]:
        """Transcribe files in groups, so memory holds one group's audio however long the list is."""
        texts: list[str] = []
        for start in range(0, len(paths), files_per_group):
            group = [load_audio(p, target_rate=self.sample_rate) for p in paths[start : start + files_per_group]]
            texts.extend(self.transcribe_waveforms(group, batch_seconds))
        return texts


def load_model(path: str | os.PathLike[str] | None = None, device: str = "cpu") -> Transcriber:
    """Load a model for transcription: a release folder (model.safetensors + config.json), a training run's
    checkpoint file, or a run folder (its best.pt). Without a path, the model bundled with the package."""
    if path is None:
        if not is_release(PRETRAINED_DIR):
            raise CheckpointError(f"no model given and no bundled model is installed in {PRETRAINED_DIR}")
        path = PRETRAINED_DIR
    path = Path(path)
    if is_release(path):
        checkpoint = load_release(path)
    else:
        path = checkpoint_path(path)
        checkpoint = load_checkpoint(path)
    model, features, vocab = build_model(checkpoint, str(path))
    return Transcriber(model, features, vocab, device)

