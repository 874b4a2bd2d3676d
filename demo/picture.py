"""The picture of what the network does: the log-mel spectrogram, and under it the characters the CTC output
fires on each frame (its "spikes") with the probability of the blank, drawn with Pillow (no plotting library)."""
from __future__ import annotations

import os

import numpy as np
import torch
from PIL import Image, ImageDraw

from asr.checkpoint import build_model, load_trained
from asr.features import LogMel
from asr.model import TorchNetwork
from asr.release import PRETRAINED_DIR
from asr.transcribe import Transcriber

# A dark-to-bright colour map (black, purple, orange, pale yellow) for the spectrogram.
_ANCHORS = np.array([[0, 0, 4], [81, 18, 124], [183, 55, 121], [252, 137, 97], [252, 253, 191]], np.float32)
MAX_SECONDS = 30.0  # the picture shows the start of longer recordings


def _colormap(values: np.ndarray) -> np.ndarray:
    """values in [0, 1] -> uint8 RGB by linear interpolation between the anchors."""
    position = np.clip(values, 0, 1) * (len(_ANCHORS) - 1)
    low = np.floor(position).astype(int).clip(max=len(_ANCHORS) - 2)
    weight = (position - low)[..., None]
    return ((1 - weight) * _ANCHORS[low] + weight * _ANCHORS[low + 1]).astype(np.uint8)


def picture_features(transcriber: Transcriber, model_path: str | os.PathLike[str] | None) -> LogMel:
    """The log-mel front end the picture draws: a PyTorch network's own, or for an onnxruntime model (whose
    features are inside its graph) the same features rebuilt from the model's weights (None: the bundled model)."""
    if isinstance(transcriber.network, TorchNetwork):
        return transcriber.network.features
    return build_model(load_trained(model_path or PRETRAINED_DIR))[1]


@torch.inference_mode()
def spectrogram_with_spikes(transcriber: Transcriber, features: LogMel, audio: np.ndarray, px_per_second: int = 100
                            ) -> Image.Image:
    """An RGB image: log-mel on top (low frequencies at the bottom), the CTC spikes strip underneath; `features`:
    picture_features of the model (an adapted model keeps its base model's features)."""
    audio = audio[: int(MAX_SECONDS * transcriber.sample_rate)]
    waveform = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None]
    lengths = torch.tensor([waveform.shape[1]])
    device = next(features.buffers()).device
    feats, frames, _ = features.log_mel(waveform.to(device), lengths.to(device))
    mel = feats[0, : int(frames[0])].cpu().numpy().T[::-1]  # (n_mels, frames), top row = highest band
    low, high = np.percentile(mel, [5, 99.5])
    rows = np.repeat(_colormap((mel - low) / max(high - low, 1e-6)), 2, axis=0)  # 2 px per mel band
    width = max(1, round(len(audio) / transcriber.sample_rate * px_per_second))
    top = Image.fromarray(np.ascontiguousarray(rows)).resize((width, rows.shape[0]), Image.NEAREST)

    log_probs, out_frames = transcriber.log_probs([audio])
    probs = np.exp(log_probs[0, : int(out_frames[0])])
    strip_height, margin = 70, 4
    image = Image.new("RGB", (width, top.height + strip_height), "white")
    image.paste(top, (0, 0))
    draw = ImageDraw.Draw(image)
    frame_px = transcriber.frame_s * px_per_second
    base = top.height + strip_height - margin
    blank = [(i * frame_px, base - p * (strip_height - 20)) for i, p in enumerate(probs[:, transcriber.vocab.blank_id])]
    if len(blank) > 1:
        draw.line(blank, fill=(170, 170, 170), width=1)  # grey: probability of "nothing new here"
    best = probs.argmax(axis=1)
    for i, token in enumerate(best):
        if token == transcriber.vocab.blank_id or (i and best[i - 1] == token):
            continue
        x = i * frame_px
        height = probs[i, token] * (strip_height - 20)
        draw.line([(x, base), (x, base - height)], fill=(30, 90, 200), width=2)
        label = transcriber.vocab.tokens[token]
        draw.text((x + 1, top.height + 2), "_" if label == " " else label, fill=(0, 0, 0))
    return image
