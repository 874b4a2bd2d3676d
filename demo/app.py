"""The browser demo (`asr demo`): live dictation from the microphone, and transcription of uploaded files with
word times and a picture of the CTC output. Gradio 6; each browser session keeps its own stream state."""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import gradio as gr
import numpy as np

from asr.audio import SAMPLE_RATE, load_audio
from asr.decoding import DecodeConfig
from asr.dictation import Dictation
from asr.errors import ASRError
from asr.transcribe import Transcriber, load_model
from asr.written import written, written_text

from .adaptation import AdaptedModels
from .crowd import STOP, Busy, Crowd, limit_malloc_arenas
from .picture import picture_features, spectrogram_with_spikes
from .voice_tab import BUNDLED, MAX_ADAPTED, MINE, VoiceTab

EXAMPLES_DIR = Path(__file__).parent / "examples"
MAX_UPLOAD_MB = int(os.environ.get("ASR_DEMO_MAX_UPLOAD_MB", 50))  # tests/test_demo_load.py lowers it to 1
MAX_UPLOAD_S = 600.0  # 10 minutes: an upload is transcribed in one go while the visitor waits
MAX_RECORDING_S = 300.0
STREAM_EVERY_S = 0.5  # partial text twice a second; each update re-decodes at most one live segment (12 s)
# While others wait for the model, a dictation's partial text is re-decoded only once it lags this much audio
# behind (asr.dictation.Dictation.push with partial=False in between): under load, text still comes at every
# pause and at least this often, and the updates stay fast.
PARTIAL_LAG_S = 2.0
GREEDY, BEAM = "greedy (fastest)", "beam search + language model"
# Gradio keeps every upload, microphone chunk and picture in its cache (a minute of dictation leaves about 6 MB of
# 48 kHz chunks): every 5 minutes, delete those over 10 minutes old, or a busy demo fills its disk (16 people
# dictating leave about 6 GB an hour). sweep_cache does it, not Gradio's delete_cache (see there).
CACHE_SWEEP_S, CACHE_MAX_AGE_S = 300, 600


class Engine:
    """The model shared by every session. Each request brings its own decoding settings (the transcriber keeps the
    decoders of the last few built: each hotword list has its own trie of the lexicon); requests take turns on the
    model and a crowd beyond the server's bounds is told it is busy (demo/crowd.py). The base model runs in either
    runtime (onnxruntime for the bundled one); adapted models run in PyTorch."""

    def __init__(self, transcriber: Transcriber, model_name: str, model_path: str | None = None,
                 crowd: Crowd | None = None) -> None:
        self.transcriber = transcriber
        self.model_name = model_name
        self.model_path = model_path  # what adaptation starts from (None: the bundled model)
        self.features = picture_features(transcriber, model_path)
        self.crowd = crowd or Crowd()
        self.adapted = AdaptedModels(MAX_ADAPTED)  # each session's adapted model (the "Adapt to my voice" tab)

    def transcriber_for(self, choice: str | None, session: str) -> tuple[Transcriber, str]:
        """The model a session chose, and a note when its adapted model is gone (dropped to make room)."""
        if choice != MINE:
            return self.transcriber, ""
        adapted = self.adapted.get(session)
        if adapted is not None:
            return adapted.transcriber, ""
        reason = (f"the server keeps at most {MAX_ADAPTED} adapted models and dropped the least recently used"
                  if self.adapted.was_dropped(session) else "there is none for this page")
        return self.transcriber, f" (your adapted model is gone: {reason}; using the other model; adapt again)"

    def decoding(self, method: str, hotwords: str) -> DecodeConfig:
        words = [w.strip() for w in (hotwords or "").split(",") if w.strip()]
        if method == GREEDY and not words:
            return DecodeConfig()
        base = self.transcriber.recommended_decoding or DecodeConfig(method="beam")
        return replace(base, hotwords=words)

    def ready(self, method: str, hotwords: str) -> DecodeConfig:
        """A request's decoding settings, their decoder built before the request takes the lock: a beam decoder's
        first build (about a second for the bundled lexicon) then holds up only those who asked for it, never the
        other visitors. Adapted models share these decoders (Transcriber.with_network)."""
        decoding = self.decoding(method, hotwords)
        self.transcriber.decoder(decoding)
        return decoding

    def warm_up(self) -> threading.Thread | None:
        """Build the model's recommended beam decoder in the background, so the first visitor to choose beam
        search finds it ready."""
        if self.transcriber.recommended_decoding is None:
            return None
        thread = threading.Thread(target=self.ready, args=(BEAM, ""), name="beam-warm-up", daemon=True)
        thread.start()
        return thread

    def start(self, state: Dictation | None, choice: str, request: gr.Request) -> tuple[Dictation, str, str]:
        """A new dictation, with the session's chosen model, when the microphone starts; refused while the server
        serves as many dictations as it can."""
        self._admit(request)
        transcriber, note = self.transcriber_for(choice, request.session_hash)
        return Dictation(transcriber, max_duration_s=MAX_RECORDING_S), "", f"Listening…{note}"

    def stream(self, chunk: tuple[int, np.ndarray] | None, state: Dictation | None, how: str, hot: str,
               request: gr.Request) -> tuple[str, Dictation, str]:
        """A microphone chunk: the text so far, decoded as the settings say (the partial text less often while
        others wait for the model)."""
        self._admit(request)
        state = state or Dictation(self.transcriber, max_duration_s=MAX_RECORDING_S)
        if chunk is None:
            return state.text, state, "Listening…"
        try:
            decoding = self.ready(how, hot)
            with self.crowd.turn():
                lagging = state.duration_s - state.partial_at_s >= PARTIAL_LAG_S
                text = state.push(*chunk, decoding=decoding, partial=lagging or not self.crowd.contended())
        except ASRError as err:
            raise gr.Error(str(err), print_exception=False) from None
        return written_text(text, complete=False), state, f"Listening: {state.duration_s:.1f} s heard"

    def stop(self, state: Dictation | None, how: str, hot: str, request: gr.Request) -> tuple[str, None, str]:
        """The microphone stopped: settle what is open and show the whole transcript."""
        self.crowd.done_dictating(request.session_hash)
        if state is None:
            return "", None, ""
        try:
            decoding = self.ready(how, hot)
            with self.crowd.turn(STOP):
                result = state.finish(decoding)
        except ASRError as err:
            raise gr.Error(str(err), print_exception=False) from None
        return written(result).text, None, f"Done: {result.duration:.1f} s transcribed"

    def _admit(self, request: gr.Request) -> None:
        try:
            self.crowd.dictating(request.session_hash)
        except Busy as err:
            raise gr.Error(str(err), duration=5, print_exception=False) from None

    def transcribe_upload(self, path: str | None, how: str, hot: str, choice: str | None = None,
                          request: gr.Request | None = None):  # noqa: ANN202 - three component values
        """An uploaded file, with the session's chosen model: its transcript, its words with times, the picture."""
        transcriber, note = self.transcriber_for(choice, request.session_hash if request else "")
        if note:
            gr.Warning(note.strip(" ()").capitalize())
        if not path:
            raise gr.Error("Choose or record an audio file first.", print_exception=False)
        try:
            audio = load_audio(path)
            if len(audio) > MAX_UPLOAD_S * SAMPLE_RATE:
                raise gr.Error(f"{Path(path).name}: {len(audio) / SAMPLE_RATE / 60:.1f} minutes is too long for the "
                               f"demo (at most {MAX_UPLOAD_S / 60:.0f}); use `asr transcribe` for long files.",
                               print_exception=False)
            decoding = self.ready(how, hot)
            with self.crowd.upload():
                result = transcriber.transcribe(audio, SAMPLE_RATE, decoding=decoding)
                image = spectrogram_with_spikes(transcriber, self.features, audio, px_per_second=150)
        except Busy as err:
            raise gr.Error(str(err), duration=5, print_exception=False) from None
        except ASRError as err:
            raise gr.Error(str(err).replace(path, Path(path).name), print_exception=False) from None
        result = written(result)
        rows = [[w.word, w.start, w.end, w.confidence] for s in result.segments for w in s.words]
        return result.text, rows, image

    def describe(self) -> str:
        """The model's name and what it says about itself (its release's description, or where it comes from)."""
        lm = self.transcriber.recommended_decoding
        return (f"**Model:** {self.model_name}. {model_summary(self.transcriber.metadata)}"
                + ("" if lm else " This model ships no language model: beam search runs without one."))


def model_summary(metadata: dict) -> str:
    """A sentence about a model from its metadata (asr.checkpoint.TrainedModel.metadata): its description when it has one
    (asr package --description), else what adapted or trained it."""
    if metadata.get("description"):
        return str(metadata["description"])
    if "adapted_from" in metadata:
        before, after = metadata.get("held_out_before", {}), metadata.get("held_out_after", {})
        scores = (f": held-out WER {before['wer']:.0%} before, {after['wer']:.0%} after"
                  if "wer" in before and "wer" in after else "")
        return f"Adapted from {metadata['adapted_from']} on {metadata.get('recordings', '?')} recordings{scores}."
    if "step" in metadata:
        dev = metadata.get("best_dev_wer")
        return (f"A training checkpoint ({metadata.get('checkpoint', '')}, step {metadata['step']}"
                + (f", best dev WER {dev:.1%}" if isinstance(dev, float) and dev < float("inf") else "") + ").")
    return "It carries no description."


def sweep_cache(app: gr.Blocks, max_age_s: float) -> int:
    """Delete the app's cached files older than max_age_s (by ctime, as Gradio ages them) but those its components
    keep (the examples); returns how many. What Gradio's delete_cache does, over copies of its sets of files:
    Gradio 6.31 iterates the live sets, which a busy server's uploads change meanwhile, and its sweeping task dies
    at the first such change ("Set changed size during iteration"), after which nothing is ever deleted (a
    30-minute soak of 8 visitors left 25,000 files, 1.2 GB)."""
    keep = set().union(*(getattr(block, "keep_in_cache", set()) for block in list(app.blocks.values())))
    now, deleted = time.time(), 0
    for files in list(app.temp_file_sets):
        for name in list(files):
            try:
                if name not in keep and now - os.lstat(name).st_ctime > max_age_s:
                    os.remove(name)
                    deleted += 1
                    files.discard(name)
            except FileNotFoundError:
                files.discard(name)
    return deleted


def start_cache_sweeps(app: gr.Blocks) -> threading.Thread:
    """sweep_cache every CACHE_SWEEP_S in a daemon thread, for files over CACHE_MAX_AGE_S old."""
    def sweep() -> None:
        while True:
            time.sleep(CACHE_SWEEP_S)
            sweep_cache(app, CACHE_MAX_AGE_S)

    thread = threading.Thread(target=sweep, name="cache-sweep", daemon=True)
    thread.start()
    atexit.register(sweep_cache, app, -1.0)  # and all of them at exit, as Gradio's delete_cache would
    return thread


def build_app(engine: Engine, voices_root: Path | None = None) -> gr.Blocks:
    """The page. voices_root: where sessions keep their recordings and adapted models (default: a temporary folder
    deleted at exit)."""
    if voices_root is None:
        voices_root = Path(tempfile.mkdtemp(prefix="asr-demo-voices-", dir=os.environ.get("ASR_DEMO_VOICES_DIR")))
        atexit.register(shutil.rmtree, voices_root, True)
    voice = VoiceTab(engine.model_path, engine.transcriber, engine.adapted, voices_root)
    with gr.Blocks(title="asr: live dictation") as app:
        gr.Markdown("# asr — live dictation\nPress **Record**, speak, and watch the words appear. "
                    "Or upload a recording in the second tab, or teach the model your voice in the third.")
        gr.Markdown(engine.describe(), elem_id="model-info")
        model_choice = gr.Radio([BUNDLED, MINE], value=BUNDLED, label="Model for dictation and upload",
                                visible=False, elem_id="model-choice")
        with gr.Accordion("Settings", open=False):
            method = gr.Radio([GREEDY, BEAM], value=GREEDY, label="Decoding", elem_id="decoding")
            hotwords = gr.Textbox(label="Hotwords (comma-separated names or words to favour; uses beam search)",
                                  elem_id="hotwords")
        with gr.Tab("Microphone"):
            mic = gr.Audio(sources=["microphone"], streaming=True, type="numpy", label="Microphone",
                           elem_id="mic")
            status = gr.Markdown("", elem_id="mic-status")
            live = gr.Textbox(label="Transcript", lines=6, elem_id="live-transcript", interactive=False)
            session = gr.State(None)
        with gr.Tab("Upload"):
            upload = gr.Audio(sources=["upload"], type="filepath", label="Audio file", elem_id="upload")
            run = gr.Button("Transcribe", variant="primary", elem_id="transcribe")
            examples = sorted(EXAMPLES_DIR.glob("*.wav"))
            if examples:
                gr.Examples([[str(p)] for p in examples], inputs=[upload], label="Examples (unseen synthetic voices)")
                # The cache sweep would delete the examples' cached copies too.
                upload.keep_in_cache.update(upload.temp_files)
            text = gr.Textbox(label="Transcript", lines=4, elem_id="upload-transcript", interactive=False)
            words = gr.Dataframe(headers=["word", "start (s)", "end (s)", "confidence"], label="Words",
                                 elem_id="words", interactive=False)
            picture = gr.Image(label="Log-mel spectrogram, and the characters the network fires on (blue spikes; "
                                     "grey: probability of blank)", type="pil", elem_id="picture", interactive=False)
        with gr.Tab("Adapt to my voice"):
            voice.build(model_choice)

        # API names for gradio_client (benchmarks/demo_load.py, tests/test_demo_load.py); the browser calls by index.
        mic.start_recording(engine.start, inputs=[session, model_choice], outputs=[session, live, status],
                            api_name="dictation_start")
        mic.stream(engine.stream, inputs=[mic, session, method, hotwords], outputs=[live, session, status],
                   stream_every=STREAM_EVERY_S, time_limit=int(MAX_RECORDING_S) + 30, concurrency_limit=None,
                   show_progress="hidden", api_name="dictation_stream")
        mic.stop_recording(engine.stop, inputs=[session, method, hotwords], outputs=[live, session, status],
                           api_name="dictation_stop")
        run.click(engine.transcribe_upload, inputs=[upload, method, hotwords, model_choice],
                  outputs=[text, words, picture], api_name="transcribe")
        upload.upload(engine.transcribe_upload, inputs=[upload, method, hotwords, model_choice],
                      outputs=[text, words, picture], api_name="transcribe_on_upload", api_visibility="undocumented")

        def forget(request: gr.Request) -> None:
            """The tab closed: its place among the dictations frees, its recordings and adapted model go."""
            engine.crowd.done_dictating(request.session_hash)
            voice.forget(request)

        app.unload(forget)
    start_cache_sweeps(app)
    return app


def launch(model: str | None = None, host: str = "127.0.0.1", port: int = 7860, share: bool = False) -> None:
    """Serve the demo; blocks until interrupted."""
    limit_malloc_arenas()
    engine = Engine(load_model(model), model or "the bundled model (asr/pretrained)", model)
    engine.warm_up()
    engine.crowd.trim_when_idle()
    build_app(engine).queue(default_concurrency_limit=8).launch(
        server_name=host, server_port=port, share=share, max_file_size=f"{MAX_UPLOAD_MB}mb", show_error=True,
        footer_links=[])
