"""Waveform augmentation for training: moves clean synthetic speech towards people, microphones and rooms.

Applied per utterance in the data-loading workers, before features (SpecAugment, on the features, lives in
features.py), in the order a recording meets these things:

1. speaker: speed (tempo and pitch together), pitch and formants (vocal tract length), tempo alone;
2. room: reverberation;
3. noise and babble (other training utterances talking at once);
4. microphone: a random smooth equalization with a high-pass;
5. channel: a band limit (what a source sampled at 8-14 kHz keeps), a telephone line (300-3400 Hz at 8 kHz,
   G.711), then a codec round trip through ffmpeg.

Each step is a pure function with explicit parameters; WaveformAugment draws the parameters. Every random choice
comes from a generator the caller seeds with (seed, epoch, utterance), so a resumed run sees exactly the augmented
audio an uninterrupted one would have seen.
"""
from __future__ import annotations

import functools
import logging
import math
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from .audio import AUDIO_SUFFIXES, AudioSource, load_audio, resample
from .errors import AudioError, ConfigError

logger = logging.getLogger(__name__)

NOISE_BANK_S = 30.0  # seconds of each generated noise colour; utterances take a random stretch of it
WSOLA_FRAME_S = 0.032  # WSOLA frames: long enough to hold two periods of a low voice, short enough for phones
WSOLA_TOLERANCE_S = 0.008  # how far WSOLA may shift a frame to match: over half the period of an 80 Hz voice
ENVELOPE_N_FFT, ENVELOPE_HOP = 512, 128  # STFT of the formant warp (32 ms frames, 75 % overlap, at 16 kHz)
# Cepstral coefficients below this quefrency make the spectral envelope. The harmonics of voices up to 400 Hz lie
# above it, so the warp leaves the pitch alone; on espeak-ng speech, formant tracks then move by the factor asked
# as closely as after plain resampling (all-pole envelopes did worse, cepstra cut at 1.2-1.8 ms smooth too much).
ENVELOPE_LIFTER_S = 0.0025
ENVELOPE_FLOOR_DB = -80.0  # bins far below the utterance's loudest are floored, so silence gets no huge gains
TELEPHONE_RATE, TELEPHONE_BAND_HZ = 8000, (300.0, 3400.0)  # narrowband telephony (ITU-T G.712)
G711_LAWS, MU_LAW, A_LAW = ("none", "mulaw", "alaw"), 255.0, 87.6  # "none": band limit only
EQ_POINTS_HZ = np.geomspace(100.0, 7000.0, 8)  # where the random microphone curve takes its random gains
CODEC_MAX_DELAY_S = 0.25  # codec delays (MP3's encoder padding, Opus pre-skip) are searched up to this


@dataclass
class AugmentConfig:
    """Which waveform augmentations run during training; all off by default (see the module for their order)."""

    # One factor per utterance, chosen uniformly (0.9/1.0/1.1 is the Kaldi/ESPnet recipe). Changes tempo and pitch
    # together, like a tape played faster or slower, which also imitates shorter or longer vocal tracts.
    speed_factors: list[float] = field(default_factory=lambda: [1.0])
    pitch_prob: float = 0.0
    pitch_semitones: list[float] = field(default_factory=lambda: [-3.0, 3.0])  # f0 shift range, uniform
    formant_prob: float = 0.0
    formant_factor: list[float] = field(default_factory=lambda: [0.9, 1.12])  # spectral envelope scale, uniform
    tempo_prob: float = 0.0
    tempo_factor: list[float] = field(default_factory=lambda: [0.85, 1.15])  # >1 faster, pitch kept, uniform
    reverb_prob: float = 0.0
    rt60_s: list[float] = field(default_factory=lambda: [0.15, 0.7])  # reverberation time range, uniform
    rir_dir: str | None = None  # folder of real room impulse responses; None: exponentially decaying noise
    noise_prob: float = 0.0
    snr_db: list[float] = field(default_factory=lambda: [5.0, 30.0])  # signal-to-noise ratio range, uniform
    noise_dir: str | None = None  # folder of noise recordings; None: generated white/pink/brown noise
    babble_prob: float = 0.0
    babble_talkers: list[int] = field(default_factory=lambda: [3, 6])  # other utterances mixed, uniform count
    babble_snr_db: list[float] = field(default_factory=lambda: [5.0, 20.0])  # speech-to-babble ratio, uniform
    eq_prob: float = 0.0
    eq_gain_db: float = 6.0  # the random curve's gain at each of EQ_POINTS_HZ is uniform in ±eq_gain_db
    eq_highpass_hz: list[float] = field(default_factory=lambda: [20.0, 200.0])  # 12 dB/octave high-pass corner
    # Low-pass at a cutoff drawn from bandlimit_hz, as steep as resampling: full-band audio then sounds like the
    # 11 kHz and 8 kHz sources of a mixed corpus, so bandwidth tells the model nothing (a no-op on narrower audio).
    bandlimit_prob: float = 0.0
    bandlimit_hz: list[float] = field(default_factory=lambda: [3500.0, 7000.0])  # cutoff range, uniform
    telephone_prob: float = 0.0
    telephone_companding: list[str] = field(default_factory=lambda: ["none", "mulaw", "alaw"])  # G.711, uniform
    codec_prob: float = 0.0
    codecs: list[str] = field(default_factory=lambda: ["g722", "gsm", "mp3", "opus"])  # see CODECS, uniform

    def __post_init__(self) -> None:
        """ConfigError naming the first key whose value is out of range or unknown."""
        for key in (f.name for f in fields(self) if f.name.endswith("_prob")):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ConfigError(f"augment.{key} must be a probability in [0, 1], got {getattr(self, key)}")
        if not self.speed_factors or any(f <= 0 for f in self.speed_factors):
            raise ConfigError(f"augment.speed_factors must be positive numbers, got {self.speed_factors}")
        for name, (lowest, highest) in RANGE_BOUNDS.items():
            low_high = getattr(self, name)
            if len(low_high) != 2 or not lowest <= low_high[0] <= low_high[1] <= highest:
                raise ConfigError(f"augment.{name} must be [low, high] within [{lowest}, {highest}], got {low_high}")
        if not 0.0 <= self.eq_gain_db <= 40.0:
            raise ConfigError(f"augment.eq_gain_db must be within [0, 40], got {self.eq_gain_db}")
        for name, known in (("telephone_companding", G711_LAWS), ("codecs", tuple(CODECS))):
            chosen = getattr(self, name)
            if not chosen or not set(chosen) <= set(known):
                raise ConfigError(f"augment.{name} must be a non-empty list of {', '.join(known)}; got {chosen}")

    @property
    def enabled(self) -> bool:
        probabilities = (getattr(self, f.name) for f in fields(self) if f.name.endswith("_prob"))
        return self.speed_factors != [1.0] or any(p > 0 for p in probabilities)


def fit_length(audio: np.ndarray, num_samples: int) -> np.ndarray:
    """Cut or zero-pad at the end to exactly num_samples."""
    return audio[:num_samples] if len(audio) >= num_samples else np.pad(audio, (0, num_samples - len(audio)))


def speed_perturb(audio: np.ndarray, factor: float, sample_rate: int) -> np.ndarray:
    """Play the audio `factor` times faster: resample as if it had been recorded at sample_rate x factor."""
    if factor == 1.0:
        return audio
    return resample(audio, sample_rate * factor, sample_rate).astype(np.float32, copy=False)


def time_stretch(audio: np.ndarray, rate: float, sample_rate: int) -> np.ndarray:
    """Play `rate` times faster without changing pitch or formants: WSOLA (Verhelst & Roelands 1993).

    Hann frames are overlap-added at half-frame steps of the output while the input is read `rate` times as fast;
    each frame is taken where, within ±WSOLA_TOLERANCE_S of its nominal place, it best continues the previous
    one (cross-correlation), so the periods of the voice join up without phasiness. Length: len(audio) / rate.
    """
    n = int(WSOLA_FRAME_S * sample_rate) // 2 * 2
    hop, tolerance = n // 2, int(WSOLA_TOLERANCE_S * sample_rate)
    out_len = round(len(audio) / rate)
    count = -(-out_len // hop) + 2
    # Output sample j stands for input sample n + (j - n) x rate; one frame of zeros in front gives the first
    # frame's rising half window something to fade in from.
    nominal = np.maximum(0, np.round(n + (np.arange(count) * hop - n) * rate).astype(int))
    padded = np.zeros(int(nominal[-1]) + tolerance + n + hop + 1, np.float32)
    padded[n : n + len(audio)] = audio
    starts = np.empty(count, int)
    starts[0] = nominal[0]
    for k in range(1, count):  # sequential: each choice depends on the previous one
        natural = padded[starts[k - 1] + hop : starts[k - 1] + hop + n]
        low = max(int(nominal[k]) - tolerance, 0)
        similarity = np.correlate(padded[low : nominal[k] + tolerance + n], natural, "valid")
        starts[k] = low + int(np.argmax(similarity))
    frames = padded[starts[:, None] + np.arange(n)] * np.hanning(n + 1)[:n].astype(np.float32)
    out = np.zeros((count + 1) * hop, np.float32)  # periodic Hann at 50 % overlap sums to one
    out[: count * hop] = frames[:, :hop].ravel()
    out[hop:] += frames[:, hop:].ravel()
    return out[n : n + out_len]


def warp_envelope(audio: np.ndarray, factor: float, sample_rate: int) -> np.ndarray:
    """Move the formants `factor` times higher while keeping the harmonics (pitch) and the duration.

    Per STFT frame, the spectral envelope is the real cepstrum's low quefrencies (below ENVELOPE_LIFTER_S); each bin
    is multiplied by envelope(f / factor) / envelope(f). The envelope is a cosine series in frequency, so it is
    evaluated at f / factor exactly, and analysis and evaluation are two small matrix products.
    """
    import librosa

    spectrum = librosa.stft(audio, n_fft=ENVELOPE_N_FFT, hop_length=ENVELOPE_HOP)  # (bins, frames)
    bins = np.arange(spectrum.shape[0])
    quefrencies = np.arange(int(ENVELOPE_LIFTER_S * sample_rate))
    # c[q] = irfft(log|X|)[q] for the quefrencies kept: inner bins count twice (positive and negative frequencies).
    bin_weights = np.where((bins == 0) | (bins == bins[-1]), 1.0, 2.0) / ENVELOPE_N_FFT
    to_cepstrum = bin_weights[:, None] * np.cos(2 * np.pi * np.outer(bins, quefrencies) / ENVELOPE_N_FFT)
    # log envelope(f) = sum_q w_q c[q] cos(2 pi f q / N) with w_0 = 1, else 2; the log gain is the warped one minus
    # the original. Beyond Nyquist the top of the envelope carries on.
    source_bins = np.minimum(bins / factor, bins[-1])
    cosines = np.cos(2 * np.pi * np.outer(quefrencies, source_bins) / ENVELOPE_N_FFT)
    cosines -= np.cos(2 * np.pi * np.outer(quefrencies, bins) / ENVELOPE_N_FFT)
    to_log_gain = np.where(quefrencies == 0, 1.0, 2.0)[:, None] * cosines
    magnitude = np.abs(spectrum)
    log_magnitude = np.log(np.maximum(magnitude, magnitude.max() * 10 ** (ENVELOPE_FLOOR_DB / 20) + 1e-12))
    log_gain = (log_magnitude.T @ to_cepstrum.astype(np.float32)) @ to_log_gain.astype(np.float32)
    spectrum *= np.exp(log_gain.T)
    return librosa.istft(spectrum, hop_length=ENVELOPE_HOP, n_fft=ENVELOPE_N_FFT, length=len(audio))


def shift_voice(audio: np.ndarray, pitch_factor: float, formant_factor: float, sample_rate: int) -> np.ndarray:
    """Scale the voice's pitch (f0) and its formants (as a shorter or longer vocal tract) independently.

    Pitch: resampling scales every frequency, and WSOLA restores the duration; the envelope warp by
    formant_factor / pitch_factor then puts the formants where they are asked to be. Keeps the length.
    """
    if pitch_factor != 1.0:
        raised = speed_perturb(audio, pitch_factor, sample_rate)
        audio = fit_length(time_stretch(raised, 1 / pitch_factor, sample_rate), len(audio))
    if formant_factor != pitch_factor:
        audio = warp_envelope(audio, formant_factor / pitch_factor, sample_rate)
    return audio.astype(np.float32, copy=False)


def coloured_noise(num_samples: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Noise with power spectral density ~ 1/f**exponent (0 white, 1 pink, 2 brown), unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(num_samples))
    freqs = np.arange(len(spectrum), dtype=np.float64)
    freqs[0] = 1.0  # leave DC as drawn rather than divide by zero
    noise = np.fft.irfft(spectrum / freqs ** (exponent / 2), n=num_samples)
    return (noise / (np.sqrt(np.mean(noise**2)) + 1e-12)).astype(np.float32)


def add_noise(audio: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """Mix noise (tiled or cut to length) into audio at the given signal-to-noise ratio in dB."""
    if len(noise) < len(audio):
        noise = np.tile(noise, math.ceil(len(audio) / len(noise)))
    noise = noise[: len(audio)]
    signal_power = float(np.dot(audio, audio)) / len(audio)
    noise_power = float(np.dot(noise, noise)) / len(noise)
    if signal_power == 0 or noise_power == 0:
        return audio
    scale = math.sqrt(signal_power / (noise_power * 10 ** (snr_db / 10)))
    return (audio + scale * noise).astype(np.float32)


def babble(talkers: Sequence[np.ndarray], starts: Sequence[int], num_samples: int) -> np.ndarray:
    """Several people talking at once: each utterance at unit RMS, looped from its `start` to num_samples, summed."""
    mix = np.zeros(num_samples, np.float32)
    for talker, start in zip(talkers, starts):
        rms = np.sqrt(np.mean(talker.astype(np.float64) ** 2))
        if rms > 0:
            mix += np.resize(np.roll(talker, -start), num_samples) / np.float32(rms)  # resize repeats
    return mix


def synthetic_rir(rt60_s: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """A room impulse response: the direct sound, then a diffuse tail of noise decaying 60 dB in rt60_s.

    Exponentially decaying Gaussian noise is the statistical model of late reverberation (Polack); the tail
    starts after a few milliseconds and its level relative to the direct sound varies from room to room.
    """
    length = max(1, int(rt60_s * sample_rate))
    t = np.arange(length) / sample_rate
    tail = rng.standard_normal(length) * np.exp(-math.log(1000.0) * t / rt60_s)
    tail[: int(rng.uniform(0.002, 0.01) * sample_rate)] = 0.0  # initial time gap before the first reflections
    tail *= rng.uniform(0.3, 1.0) / (np.sqrt(np.sum(tail**2)) + 1e-12)  # tail energy below the direct sound's
    tail[0] = 1.0
    return tail.astype(np.float32)


def _fft_size(num_samples: int) -> int:
    """The smallest FFT size of at least num_samples (so filtering is linear, not circular) made of the factors 2, 3
    and 5, which numpy's FFT computes fast: up to half the work of the next power of two. (Pure Python: importing
    scipy.fft for this in the trainer made DDP processes abort at exit.)"""
    best = 1 << max(num_samples - 1, 0).bit_length()
    power5 = 1
    while power5 < best:
        power35 = power5
        while power35 < best:
            size = power35
            while size < num_samples:
                size *= 2
            best = min(best, size)
            power35 *= 3
        power5 *= 5
    return best


def reverberate(audio: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """Convolve with an impulse response, keeping the original length and alignment (the tail past the end is cut)."""
    peak = int(np.argmax(np.abs(rir)))  # align the direct path with the dry signal, as in a recorded RIR
    rir = rir[peak:]
    n_fft = _fft_size(len(audio) + len(rir) - 1)
    wet = np.fft.irfft(np.fft.rfft(audio, n_fft) * np.fft.rfft(rir, n_fft), n_fft)[: len(audio)]
    # Keep the level of the dry signal so the augmentation changes the room, not the loudness.
    dry_rms, wet_rms = np.sqrt(np.mean(audio**2)), np.sqrt(np.mean(wet**2))
    if wet_rms > 0:
        wet *= dry_rms / wet_rms
    return wet.astype(np.float32)


def filter_response(audio: np.ndarray, sample_rate: int, response: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Zero-phase filtering by a magnitude response, given as a function of frequency in Hz, in one FFT.

    The padding (0.1 s) holds the smooth responses' short impulse responses, so nothing wraps around.
    """
    n_fft = _fft_size(len(audio) + sample_rate // 10)
    gains = response(np.fft.rfftfreq(n_fft, 1 / sample_rate))
    return np.fft.irfft(np.fft.rfft(audio, n_fft) * gains, n_fft)[: len(audio)].astype(np.float32)


def butterworth_gain(freqs_hz: np.ndarray, low_hz: float, high_hz: float | None, order: int) -> np.ndarray:
    """Magnitude of a Butterworth band-pass (6 x order dB per octave beyond each edge); high_hz None: a high-pass."""
    f = np.maximum(freqs_hz, 1e-6)
    gain = 1 / np.sqrt(1 + (low_hz / f) ** (2 * order))
    return gain if high_hz is None else gain / np.sqrt(1 + (f / high_hz) ** (2 * order))


def eq_response(freqs_hz: np.ndarray, gains_db: np.ndarray, highpass_hz: float) -> np.ndarray:
    """A microphone's colouring as a magnitude response: a smooth curve through gains_db at EQ_POINTS_HZ (straight
    in dB over log frequency, flat beyond the ends) and a second-order high-pass at highpass_hz (0: none)."""
    curve_db = np.interp(np.log(np.maximum(freqs_hz, 1.0)), np.log(EQ_POINTS_HZ), gains_db)
    return 10 ** (curve_db / 20) * butterworth_gain(freqs_hz, highpass_hz, None, order=2)


def equalize(audio: np.ndarray, sample_rate: int, gains_db: np.ndarray, highpass_hz: float) -> np.ndarray:
    """Filter audio by eq_response."""
    return filter_response(audio, sample_rate, lambda freqs: eq_response(freqs, gains_db, highpass_hz))


def g711(audio: np.ndarray, law: str) -> np.ndarray:
    """Compress to 8 bits with G.711 mu-law (mu = 255) or A-law (A = 87.6) and expand again; full scale is ±1.

    The continuous companding curves with 8-bit quantization, which the standard's segmented tables approximate.
    """
    x = np.abs(np.clip(audio, -1.0, 1.0)).astype(np.float64)
    a_scale = 1 + np.log(A_LAW)  # A-law is linear below 1/A, logarithmic above
    if law == "mulaw":
        y = np.log1p(MU_LAW * x) / np.log1p(MU_LAW)
    else:
        y = np.where(x < 1 / A_LAW, A_LAW * x, 1 + np.log(np.maximum(A_LAW * x, 1.0))) / a_scale
    y = np.round(y * 127) / 127  # a sign bit and 7 bits of magnitude
    if law == "mulaw":
        x = np.expm1(y * np.log1p(MU_LAW)) / MU_LAW
    else:
        x = np.where(y < 1 / a_scale, y * a_scale / A_LAW, np.exp(y * a_scale - 1) / A_LAW)
    return (np.sign(audio) * x).astype(np.float32)


def band_limit(audio: np.ndarray, sample_rate: int, cutoff_hz: float) -> np.ndarray:
    """Keep what a recording sampled at 2 x cutoff_hz holds: down to that rate and back (soxr's steep filter)."""
    if 2 * cutoff_hz >= sample_rate:
        return audio
    narrow = resample(audio, sample_rate, 2 * cutoff_hz)
    return fit_length(resample(narrow, 2 * cutoff_hz, sample_rate), len(audio)).astype(np.float32, copy=False)


def telephone(audio: np.ndarray, sample_rate: int, companding: str) -> np.ndarray:
    """A narrowband phone line: 8 kHz, 300-3400 Hz (4th-order edges), G.711 `mulaw`/`alaw` or `none`; same length."""
    narrow = resample(audio, sample_rate, TELEPHONE_RATE)
    narrow = filter_response(narrow, TELEPHONE_RATE, lambda f: butterworth_gain(f, *TELEPHONE_BAND_HZ, order=4))
    if companding != "none":
        narrow = g711(narrow, companding)
    return fit_length(resample(narrow, TELEPHONE_RATE, sample_rate), len(audio)).astype(np.float32, copy=False)


@dataclass(frozen=True)
class Codec:
    """How ffmpeg encodes one codec into a stream it can pipe, and the bit rates drawn for it."""

    encoder: str
    muxer: str  # format written to and read back from the pipe
    sample_rate: int  # the rate the codec runs at
    bitrates: tuple[str, ...] = ()  # one is drawn per use; empty: the codec has a fixed rate
    options: tuple[str, ...] = ()


CODECS = {
    "g722": Codec("g722", "g722", 16000),  # wideband ADPCM at 64 kbit/s: HD voice, DECT
    "gsm": Codec("libgsm", "gsm", 8000),  # GSM 06.10 full rate, 13 kbit/s: mobile phones of the 1990s
    "mp3": Codec("libmp3lame", "mp3", 16000, ("16k", "24k", "32k")),  # MPEG-2 layer III at low rates
    "opus": Codec("libopus", "ogg", 16000, ("6k", "8k", "12k", "16k"), ("-application", "voip")),  # VoIP calls
}


@functools.lru_cache(maxsize=None)
def ffmpeg_encoders(ffmpeg: str) -> frozenset[str]:
    """The encoder names `ffmpeg -encoders` lists (builds differ: Debian's has libgsm, libopus, libmp3lame)."""
    try:
        listing = subprocess.run([ffmpeg, "-hide_banner", "-encoders"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise ConfigError(f"{ffmpeg}: cannot list its encoders ({err})") from None
    rows = (line.split() for line in listing.stdout.splitlines())
    return frozenset(row[1] for row in rows if len(row) >= 2 and len(row[0]) == 6 and row[0][0] in "AVS")


def _run_ffmpeg(ffmpeg: str, args: list[str], data: bytes, what: str, timeout_s: float) -> bytes:
    """Run ffmpeg on `data` through stdin and stdout; AudioError with ffmpeg's own message if it fails."""
    command = [ffmpeg, "-hide_banner", "-loglevel", "error", *args]
    try:
        done = subprocess.run(command, input=data, capture_output=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise AudioError(f"<array>: ffmpeg {what} took over {timeout_s:.0f} s and was stopped") from None
    except OSError as err:
        raise AudioError(f"<array>: cannot run {ffmpeg} for {what} ({err})") from None
    if done.returncode != 0 or not done.stdout:
        message = done.stderr.decode(errors="replace").strip().splitlines()
        raise AudioError(f"<array>: ffmpeg {what} failed ({message[-1] if message else f'status {done.returncode}'})")
    return done.stdout


def align(signal: np.ndarray, reference: np.ndarray, max_lag: int) -> np.ndarray:
    """`signal` shifted by the lag (|lag| <= max_lag) that best matches `reference`, cut or padded to its length."""
    n_fft = _fft_size(len(signal) + len(reference))
    xcorr = np.fft.irfft(np.fft.rfft(signal, n_fft) * np.conj(np.fft.rfft(reference, n_fft)), n_fft)
    # xcorr[lag] = sum_t signal[t + lag] reference[t]; negative lags wrap around to the end.
    lags = np.arange(-min(max_lag, len(reference) - 1), min(max_lag, len(signal) - 1) + 1)
    lag = int(lags[np.argmax(xcorr[lags])])
    shifted = signal[lag:] if lag >= 0 else np.pad(signal, (-lag, 0))
    return fit_length(shifted, len(reference))


def codec_round_trip(audio: np.ndarray, codec: str, bitrate: str | None, sample_rate: int,
                     ffmpeg: str = "ffmpeg") -> np.ndarray:
    """Encode with one of CODECS and decode again (two ffmpeg processes, pipes only): the codec's band limit,
    quantization and artefacts, at the input's rate, length and alignment (its delay found by cross-correlation)."""
    spec = CODECS[codec]
    raw = ["-f", "f32le", "-ar", str(sample_rate), "-ac", "1"]
    rate = ["-b:a", bitrate] if bitrate else []
    encode = [*raw, "-i", "pipe:0", "-c:a", spec.encoder, "-ar", str(spec.sample_rate), *rate, *spec.options,
              "-f", spec.muxer, "pipe:1"]
    timeout_s = 30.0 + 2 * len(audio) / sample_rate
    encoded = _run_ffmpeg(ffmpeg, encode, audio.astype("<f4").tobytes(), f"{codec} encoding", timeout_s)
    decoded = _run_ffmpeg(ffmpeg, ["-f", spec.muxer, "-i", "pipe:0", *raw, "pipe:1"], encoded, f"{codec} decoding",
                          timeout_s)
    samples = np.frombuffer(decoded[: len(decoded) // 4 * 4], "<f4").astype(np.float32)
    return align(samples, audio, int(CODEC_MAX_DELAY_S * sample_rate))


def _audio_files(folder: str, what: str) -> list[Path]:
    path = Path(folder)
    if not path.is_dir():
        raise ConfigError(f"{folder}: {what} folder not found")
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise ConfigError(f"{folder}: no audio files ({', '.join(sorted(AUDIO_SUFFIXES))}) in the {what} folder")
    return files


# [low, high] keys and the bounds within which their methods behave (and sound) as intended.
RANGE_BOUNDS = {
    "pitch_semitones": (-12.0, 12.0),
    "formant_factor": (0.5, 2.0),
    "tempo_factor": (0.5, 2.0),
    "rt60_s": (0.01, 10.0),
    "snr_db": (-math.inf, math.inf),
    "babble_talkers": (1, 50),
    "babble_snr_db": (-math.inf, math.inf),
    "eq_highpass_hz": (0.0, 1000.0),
    "bandlimit_hz": (1000.0, 8000.0),
}


def find_ffmpeg(codecs: Sequence[str]) -> str:
    """The path of an ffmpeg that has the encoders `codecs` need, or ConfigError saying what is missing."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise ConfigError("augment.codec_prob > 0 needs ffmpeg on the PATH (Debian/Ubuntu: apt install ffmpeg)")
    missing = sorted({CODECS[c].encoder for c in codecs} - ffmpeg_encoders(ffmpeg))
    if missing:
        raise ConfigError(f"augment.codecs: {ffmpeg} has no encoder {', '.join(missing)} (see `ffmpeg -encoders`)")
    return ffmpeg


def happens(rng: np.random.Generator, probability: float) -> bool:
    """A draw with this probability; none at all when it is 0, so switched-off steps leave the stream alone."""
    return probability > 0 and rng.random() < probability


class WaveformAugment:
    """Draws the configured augmentations' parameters per utterance and applies them in the module's order.

    Babble mixes other training utterances: `babble_pool` lists their audio (files or spans; the trainer passes its
    manifest's); a few, drawn by the generator, are read per use, so the result is as reproducible as the rest.
    """

    def __init__(
        self, config: AugmentConfig, sample_rate: int, babble_pool: Sequence[AudioSource] = ()
    ) -> None:
        if config.babble_prob > 0 and not babble_pool:
            raise ConfigError("augment.babble_prob > 0 needs the training utterances to mix (babble_pool is empty)")
        self.config = config
        self.sample_rate = sample_rate
        self.babble_pool = list(babble_pool)
        self.ffmpeg = find_ffmpeg(config.codecs) if config.codec_prob > 0 else "ffmpeg"
        self.noise_files = _audio_files(config.noise_dir, "noise") if config.noise_dir else []
        # Generating noise per utterance costs more than all the other augmentations together; stationary noise
        # loses nothing by being cut from a fixed bank at a random offset.
        bank_rng = np.random.default_rng(0)
        self.noise_bank = [] if self.noise_files or not config.noise_prob else [
            coloured_noise(int(NOISE_BANK_S * sample_rate), exponent, bank_rng) for exponent in (0.0, 1.0, 2.0)]
        self.rir_files = _audio_files(config.rir_dir, "impulse response") if config.rir_dir else []

    def __call__(self, audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        cfg, rate = self.config, self.sample_rate
        audio = speed_perturb(audio, float(rng.choice(cfg.speed_factors)), rate)
        pitch = 2 ** (rng.uniform(*cfg.pitch_semitones) / 12) if happens(rng, cfg.pitch_prob) else 1.0
        formant = rng.uniform(*cfg.formant_factor) if happens(rng, cfg.formant_prob) else 1.0
        audio = shift_voice(audio, pitch, formant, rate)
        if happens(rng, cfg.tempo_prob):
            audio = time_stretch(audio, rng.uniform(*cfg.tempo_factor), rate)
        if happens(rng, cfg.reverb_prob):
            audio = reverberate(audio, self._rir(rng))
        if happens(rng, cfg.noise_prob):
            audio = add_noise(audio, self._noise(len(audio), rng), float(rng.uniform(*cfg.snr_db)))
        if happens(rng, cfg.babble_prob):
            audio = add_noise(audio, self._babble(len(audio), rng), float(rng.uniform(*cfg.babble_snr_db)))
        if happens(rng, cfg.eq_prob):
            gains_db = rng.uniform(-cfg.eq_gain_db, cfg.eq_gain_db, len(EQ_POINTS_HZ))
            audio = equalize(audio, rate, gains_db, float(rng.uniform(*cfg.eq_highpass_hz)))
        if happens(rng, cfg.bandlimit_prob):
            audio = band_limit(audio, rate, float(rng.uniform(*cfg.bandlimit_hz)))
        if happens(rng, cfg.telephone_prob):
            audio = telephone(audio, rate, cfg.telephone_companding[rng.integers(len(cfg.telephone_companding))])
        if happens(rng, cfg.codec_prob):
            codec = cfg.codecs[rng.integers(len(cfg.codecs))]
            bitrates = CODECS[codec].bitrates
            bitrate = bitrates[rng.integers(len(bitrates))] if bitrates else None
            try:
                audio = codec_round_trip(audio, codec, bitrate, rate, self.ffmpeg)
            except AudioError as err:
                # One augmentation is not worth a training run: ffmpeg failing or stopped as too slow (a loaded or
                # paused machine) leaves this clip without the codec. Its encoders were checked when built.
                logger.warning("codec augmentation skipped for one clip: %s", err)
        peak = float(np.max(np.abs(audio))) if audio.size else 0.0
        return audio / peak if peak > 1.0 else audio

    def _rir(self, rng: np.random.Generator) -> np.ndarray:
        if self.rir_files:
            return load_audio(self.rir_files[rng.integers(len(self.rir_files))], target_rate=self.sample_rate)
        return synthetic_rir(float(rng.uniform(*self.config.rt60_s)), self.sample_rate, rng)

    def _noise(self, num_samples: int, rng: np.random.Generator) -> np.ndarray:
        if self.noise_files:
            noise = load_audio(self.noise_files[rng.integers(len(self.noise_files))], target_rate=self.sample_rate)
        else:
            noise = self.noise_bank[rng.integers(len(self.noise_bank))]  # white, pink or brown
        start = int(rng.integers(max(1, len(noise) - num_samples + 1)))
        return noise[start : start + num_samples]

    def _babble(self, num_samples: int, rng: np.random.Generator) -> np.ndarray:
        low, high = self.config.babble_talkers
        picks = rng.integers(len(self.babble_pool), size=int(rng.integers(low, high + 1)))
        talkers = [load_audio(self.babble_pool[i], target_rate=self.sample_rate) for i in picks]
        return babble(talkers, [int(rng.integers(len(t))) for t in talkers], num_samples)
