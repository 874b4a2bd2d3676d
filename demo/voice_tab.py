"""The demo's "Adapt to my voice" tab: read the built-in sentences aloud, adapt the model to that voice in the
background, then dictate and upload with it in this browser session, switch back, or download it as a zip that
`asr transcribe --model` and `asr demo --model` take. The server-side parts are demo/adaptation.py."""
from __future__ import annotations

import html
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from asr.adapt import AdaptConfig, Progress, prompts
from asr.errors import ASRError
from asr.transcribe import Transcriber

from .adaptation import (AdaptationQueue, AdaptedModels, Outcome, SessionFolders, Takes, load_adapted,
                         run_adaptation, scores_line)

BUNDLED, MINE = "the model the demo started with", "my adapted model"
# Threads of the adaptation's child process (which also runs at a lower priority): the rest of the CPU stays with
# dictation in the other sessions.
ADAPT_THREADS = int(os.environ.get("ASR_DEMO_ADAPT_THREADS", 1))
MAX_ADAPTED = int(os.environ.get("ASR_DEMO_MAX_ADAPTED", 4))  # adapted models kept in memory, one per session
ADAPT_TIME_LIMIT_S = 150.0  # training stops after this long with the best weights so far
DEFAULT_STEPS = AdaptConfig.steps
SUGGESTED_MINUTES = 3


class VoiceTab:
    """The tab's event handlers; `adapted` is shared with the Engine, which transcribes with a session's model."""

    def __init__(self, base_model: str | None, base: Transcriber, adapted: AdaptedModels, root: Path) -> None:
        self.base_model = base_model  # what adaptation starts from (None: the bundled model)
        self.base = base
        self.adapted = adapted
        self.folders = SessionFolders(root)
        self.queue = AdaptationQueue()

    # -- recording ---------------------------------------------------------------------------------------------
    def session_takes(self, takes: Takes | None, request: gr.Request) -> Takes:
        """The session's recordings, started in its own folder on its first one."""
        return takes or Takes(self.folders.of(request.session_hash) / "takes")

    def view(self, takes: Takes | None) -> tuple[str, str]:
        """The sentence to read now, and what is collected so far."""
        sentences = prompts()
        index = takes.prompt if takes else 0
        prompt = (f"**Sentence {index + 1} of {len(sentences)}** — read it aloud:\n\n"
                  f"## {sentences[index % len(sentences)]}")
        count, seconds = (len(takes.texts), takes.total_s) if takes else (0, 0.0)
        minimum = AdaptConfig()
        need = (f" Adapt needs at least {minimum.min_recordings} sentences and {minimum.min_seconds:.0f} s; about "
                f"{SUGGESTED_MINUTES} minutes (two or three dozen sentences) works best."
                if count < minimum.min_recordings or seconds < minimum.min_seconds else "")
        return prompt, f"**Collected:** {count} sentences, {seconds / 60:.1f} minutes ({seconds:.0f} s).{need}"

    def keep(self, recording: tuple[int, Any] | None, takes: Takes | None, request: gr.Request):  # noqa: ANN201
        """Keep the recording of the current sentence and show the next one."""
        if recording is None:
            raise gr.Error("Record the sentence first (press Record, read it, press Stop).", print_exception=False)
        takes = self.session_takes(takes, request)
        try:
            takes.keep(*recording)
        except ASRError as err:
            raise gr.Error(str(err), print_exception=False) from None
        return takes, *self.view(takes), None

    def undo(self, takes: Takes | None):  # noqa: ANN201
        if takes:
            takes.undo()
        return takes, *self.view(takes)

    def skip(self, takes: Takes | None, request: gr.Request):  # noqa: ANN201
        takes = self.session_takes(takes, request)
        takes.skip()
        return takes, *self.view(takes)

    # -- adapting ----------------------------------------------------------------------------------------------
    def run(self, takes: Takes | None, steps: float, request: gr.Request) -> Iterator[tuple[Any, Any, Any]]:
        """Adapt to the session's recordings when its turn comes; yields (status, model choice, download)."""
        unchanged = (gr.update(), gr.update())
        minimum = AdaptConfig()
        if not takes or len(takes.texts) < minimum.min_recordings or takes.total_s < minimum.min_seconds:
            raise gr.Error(f"Record at least {minimum.min_recordings} sentences ({minimum.min_seconds:.0f} s) first; "
                           f"about {SUGGESTED_MINUTES} minutes works best.", print_exception=False)
        config = AdaptConfig(steps=int(steps), threads=ADAPT_THREADS, time_limit_s=ADAPT_TIME_LIMIT_S)
        ticket = self.queue.join()
        try:
            position = self.queue.position(ticket)
            while position:
                yield status_html(f"Waiting for the server's adaptation slot: {position} ahead of yours in the "
                                  f"queue (one adaptation runs at a time)."), *unchanged
                position = self.queue.wait(ticket, timeout=1.0)
            yield status_html("Starting (loading the model)…", 0, config.steps), *unchanged
            out = self.folders.of(request.session_hash) / "model"
            for update in run_adaptation(takes.folder, self.base_model, config, out):
                if isinstance(update, Progress):
                    yield progress_html(update), *unchanged
                else:
                    yield self.finish(update, request.session_hash)
        except ASRError as err:
            raise gr.Error(str(err), print_exception=False) from None
        finally:
            self.queue.leave(ticket)

    def finish(self, outcome: Outcome, session: str) -> tuple[Any, Any, Any]:
        """Keep the adapted model for this session and switch dictation and upload to it."""
        for dropped in self.adapted.put(session, load_adapted(outcome, self.base)):
            self.folders.remove_model(dropped)
        left_out = "".join(f"<li>left out {html.escape(Path(path).name)}: {html.escape(why)}</li>"
                           for path, why in outcome.left_out)
        message = (f"<b>Adapted</b> ({html.escape(outcome.summary.splitlines()[0])}). Word error rate on your "
                   f"held-out sentences: {html.escape(scores_line(outcome.before, outcome.after))}. Dictation and "
                   f"upload now use your adapted model (switch back above)." + (f"<ul>{left_out}</ul>" if left_out else ""))
        return (status_html(message, done=True), gr.update(value=MINE, visible=True),
                gr.update(value=str(outcome.zip_path), visible=True))

    # -- the page ----------------------------------------------------------------------------------------------
    def build(self, model_choice: gr.Radio) -> None:
        """The tab's components and events, inside the gr.Tab being built; `model_choice` is the switch between
        the bundled and the adapted model, shown above the tabs once there is an adapted one."""
        gr.Markdown("Read each sentence aloud (press **Record**, read, **Stop**; listen back and record again if you "
                    "like), then **Keep**. With a few minutes collected, press **Adapt**: the model is fine-tuned to "
                    "your voice and microphone on this server, then dictation and upload in this browser tab use it. "
                    "Your recordings and your adapted model stay in this session and are deleted when you close the "
                    "page; **Download my model** keeps it. What to expect: on voices the model had never heard, about 3 "
                    "minutes lowered its word error rate with the language model by 10-37 % (most for a real voice), "
                    "greedy by 1-6 %; it takes about a minute on a 2-core CPU when the server is idle.")
        takes = gr.State(None)
        prompt, collected = self.view(None)
        prompt_text = gr.Markdown(prompt, elem_id="adapt-prompt")
        recording = gr.Audio(sources=["microphone"], type="numpy", label="Your recording of the sentence",
                             elem_id="adapt-mic")
        with gr.Row():
            keep = gr.Button("Keep, next sentence", variant="primary", elem_id="adapt-keep")
            skip = gr.Button("Skip this sentence", elem_id="adapt-skip")
            undo = gr.Button("Undo the last kept one", elem_id="adapt-undo")
        collected_text = gr.Markdown(collected, elem_id="adapt-collected")
        with gr.Row():
            steps = gr.Slider(5, 300, value=DEFAULT_STEPS, step=5, label="Training steps at most (fewer when it "
                              "stops improving; about half a second each)", elem_id="adapt-steps")
            run = gr.Button("Adapt", variant="primary", elem_id="adapt-run")
        status = gr.HTML("", elem_id="adapt-status")
        download = gr.DownloadButton("Download my model", visible=False, elem_id="adapt-download")

        keep.click(self.keep, inputs=[recording, takes], outputs=[takes, prompt_text, collected_text, recording],
                   api_name="adapt_keep")
        skip.click(self.skip, inputs=[takes], outputs=[takes, prompt_text, collected_text], api_name="adapt_skip")
        undo.click(self.undo, inputs=[takes], outputs=[takes, prompt_text, collected_text], api_name="adapt_undo")
        # Any number may wait (the AdaptationQueue runs one at a time and tells the others their place).
        run.click(self.run, inputs=[takes, steps], outputs=[status, model_choice, download], concurrency_limit=None,
                  show_progress="hidden", api_name="adapt")

    def forget(self, request: gr.Request) -> None:
        """The session ended: its recordings and its adapted model go."""
        self.adapted.remove(request.session_hash)
        self.folders.remove(request.session_hash)


def status_html(message: str, step: int | None = None, steps: int | None = None, done: bool = False) -> str:
    bar = f'<progress value="{step}" max="{steps}"></progress> ' if step is not None else ""
    return f'<div class="adapt-status{" done" if done else ""}">{bar}{message}</div>'


def progress_html(update: Progress) -> str:
    held_out = update.held_out or update.best
    return status_html(f"Adapting: step {update.step} of {update.steps}, {update.elapsed_s:.0f} s; held-out word error "
                       f"rate {held_out.wer:.0%} (best so far {update.best.wer:.0%})", update.step, update.steps)


