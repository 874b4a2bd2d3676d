import librosa
import numpy as np
import pytest
import torch

from asr.features import FeatureConfig, LogMel, SpecAugment, SpecAugmentConfig


def test_mel_filterbank_matches_librosa():
    config = FeatureConfig()
    ours = LogMel(config).mel.mel_scale.fb.T.numpy()
    theirs = librosa.filters.mel(sr=config.sample_rate, n_fft=config.n_fft, n_mels=config.n_mels)
    assert ours.shape == theirs.shape == (80, 257)
    np.testing.assert_allclose(ours, theirs, atol=1e-6)


def test_log_mel_matches_librosa_power_spectrogram():
    config = FeatureConfig(normalize="none")
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal(16000)).astype(np.float32)
    feats, frames = LogMel(config)(torch.from_numpy(audio)[None], torch.tensor([16000]))
    reference = librosa.feature.melspectrogram(
        y=audio, sr=16000, n_fft=512, win_length=400, hop_length=160, n_mels=80, pad_mode="reflect"
    )
    assert feats.shape == (1, 101, 80) and frames.tolist() == [100]
    np.testing.assert_allclose(feats[0, :100].numpy(), np.log(reference.T[:100] + 1e-6), atol=2e-3)


def test_shapes_frames_and_padding():
    extractor = LogMel(FeatureConfig())
    lengths = torch.tensor([16000, 8000, 400])
    waves = torch.randn(3, 16000) * (torch.arange(16000)[None] < lengths[:, None])
    feats, frames = extractor(waves, lengths)
    assert feats.shape == (3, 101, 80)
    assert frames.tolist() == [100, 50, 3]  # 10 ms hop, frames centred inside the audio
    assert torch.all(feats[0, 100:] == 0) and torch.all(feats[1, 50:] == 0) and torch.all(feats[2, 3:] == 0)


def test_utterance_normalization_ignores_padding():
    extractor = LogMel(FeatureConfig(normalize="utterance"))
    wave = torch.randn(1, 8000)
    alone, _ = extractor(wave, torch.tensor([8000]))
    padded, _ = extractor(torch.cat([wave, torch.zeros(1, 8000)], 1), torch.tensor([8000]))
    mean, std = alone[0, :50].mean(0), alone[0, :50].std(0, unbiased=False)
    assert torch.allclose(mean, torch.zeros(80), atol=1e-4) and torch.allclose(std, torch.ones(80), atol=1e-3)
    # Only the frames near the end see the padding through the STFT window; the rest is identical.
    assert torch.allclose(alone[0, :48], padded[0, :48], atol=0.05)


def test_normalization_is_level_invariant():
    extractor = LogMel(FeatureConfig(normalize="utterance"))
    wave = torch.randn(1, 16000) * 0.1
    quiet, _ = extractor(wave, torch.tensor([16000]))
    loud, _ = extractor(wave * 8, torch.tensor([16000]))
    assert torch.allclose(quiet, loud, atol=1e-2)


def test_global_normalization_uses_stored_statistics():
    extractor = LogMel(FeatureConfig(normalize="global"))
    extractor.global_mean.fill_(-5.0)
    extractor.global_std.fill_(2.0)
    wave = torch.randn(1, 1600) * 0.1
    raw, frames = LogMel(FeatureConfig(normalize="none"))(wave, torch.tensor([1600]))
    feats, _ = extractor(wave, torch.tensor([1600]))
    assert frames.tolist() == [10]
    assert torch.allclose(feats[:, :10], (raw[:, :10] + 5.0) / 2.0)


def test_spec_augment_masks_in_training_only():
    torch.manual_seed(0)
    augment = SpecAugment(SpecAugmentConfig(freq_masks=2, freq_mask_width=10, time_masks=2, time_mask_width=20))
    feats = torch.randn(4, 200, 80)
    augment.train()
    masked = augment(feats)
    assert masked.shape == feats.shape
    zeroed = (masked == 0) & (feats != 0)
    assert zeroed.any()
    assert zeroed.float().mean() < 0.5
    augment.eval()
    assert torch.equal(augment(feats), feats)


def test_invalid_normalize_mode():
    with pytest.raises(ValueError, match="normalize"):
        LogMel(FeatureConfig(normalize="batch"))


def test_frequency_warp_moves_formants_and_keeps_padding():
    from asr.features import warp_frequency

    feats = torch.zeros(3, 5, 80)
    feats[:, :4, 40] = 1.0  # one "formant" at bin 40; frame 4 is padding
    warped = warp_frequency(feats, torch.tensor([1.0, 1.1, 0.9]))
    assert torch.equal(warped[0], feats[0])  # factor 1: unchanged
    assert int(warped[1, 0].argmax()) == 44 and int(warped[2, 0].argmax()) == 36
    assert torch.all(warped[:, 4] == 0)
    augment = SpecAugment(SpecAugmentConfig(freq_masks=0, time_masks=0, freq_warp=0.1))
    assert torch.equal(augment.eval()(feats), feats)
    torch.manual_seed(0)
    trained = augment.train()(feats)
    peaks = trained[:, 0].argmax(-1)
    assert all(36 <= int(p) <= 44 for p in peaks) and len(set(peaks.tolist())) > 1


def test_global_statistics_are_fitted_from_audio():
    torch.manual_seed(1)
    waves = [torch.randn(n) * scale for n, scale in [(16000, 0.1), (8000, 0.3), (24000, 0.05)]]
    extractor = LogMel(FeatureConfig(normalize="global"))
    extractor.fit_global_stats(waves)
    assert not torch.allclose(extractor.global_mean, torch.zeros(80))
    outputs = [extractor(w[None], torch.tensor([len(w)])) for w in waves]
    normalized = torch.cat([feats[0, : int(frames[0])] for feats, frames in outputs])  # valid frames only
    assert torch.allclose(normalized.mean(0), torch.zeros(80), atol=1e-4)
    assert torch.allclose(normalized.std(0, unbiased=False), torch.ones(80), atol=1e-3)
