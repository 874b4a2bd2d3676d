"""The network as transcription sees it: waveforms in, per-frame log-probabilities out, whichever runtime runs it
(PyTorch: asr.model.TorchNetwork; onnxruntime: asr.onnx_network.OnnxNetwork), and how audio is batched through it.

Outputs are numpy arrays, so that decoding, word timing and everything after them need no PyTorch.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from .audio import AudioSource, load_audio
from .batching import length_buckets

# Audio seconds (padded) per network batch when transcribing or scoring, unless the caller says otherwise.
BATCH_SECONDS = 120.0


class Network(Protocol):
    sample_rate: int  # of the waveforms it takes
    frame_s: float  # seconds per output frame

    def __call__(self, waveforms: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Mono float waveforms -> log-probabilities (batch, frames, vocab) float32 and valid frame counts (batch,),
        run as one zero-padded batch."""


def batched_outputs(network: Network, waveforms: Sequence[np.ndarray], max_batch_samples: float) -> list[np.ndarray]:
    """The valid log-probabilities (frames, vocab) of each waveform, in input order, batching similar lengths so
    that each padded batch holds at most max_batch_samples (a longer waveform goes alone)."""
    outputs: list[np.ndarray] = [np.empty((0, 0), np.float32)] * len(waveforms)
    for chunk in length_buckets([len(w) for w in waveforms], max_batch_samples):
        log_probs, lengths = network([waveforms[i] for i in chunk])
        for row, i in enumerate(chunk):
            outputs[i] = log_probs[row, : int(lengths[row])]
    return outputs


def outputs_of_files(network: Network, sources: Sequence[AudioSource], max_batch_samples: float,
                     files_per_group: int = 256) -> list[np.ndarray]:
    """batched_outputs of audio files (or spans of them), each decoded whole, reading a group of files at a time
    (bounded memory)."""
    outputs: list[np.ndarray] = []
    for start in range(0, len(sources), files_per_group):
        waveforms = [load_audio(source, target_rate=network.sample_rate)
                     for source in sources[start : start + files_per_group]]
        outputs.extend(batched_outputs(network, waveforms, max_batch_samples))
    return outputs
