"""The demo in a real browser: `asr demo` on a free localhost port, driven through Playwright by Debian's Chromium
(headless, the system binary, nothing downloaded). Screenshots go to test-artifacts/ (or $ASR_TEST_ARTIFACTS)."""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

from asr.audio import load_audio
from asr.corpora.synthetic import Voice, synthesize
from asr.evaluate import score

from demo_visitors import serve_demo  # benchmarks/demo_visitors.py (pyproject.toml: pytest's pythonpath)

pytestmark = pytest.mark.slow  # see pyproject.toml: `pytest -m "not slow"` is the fast tier

playwright = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[test]' installs Playwright")

ARTIFACTS = Path(os.environ.get("ASR_TEST_ARTIFACTS", Path(__file__).parents[1] / "test-artifacts"))
FIRST, SECOND = "the weather was fine all day", "we walked in the garden"
OTHER = "please open the window"
# Chromium's echo cancellation, noise suppression and gain control would alter the fake microphone's samples.
RAW_MICROPHONE = """
const getUserMedia = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
navigator.mediaDevices.getUserMedia = (constraints) => getUserMedia(
    {...constraints, audio: {echoCancellation: false, noiseSuppression: false, autoGainControl: false}});
"""


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("Chromium is required for the browser tests (scripts/setup.sh installs Debian's chromium)")
    return path


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory):
    with serve_demo(tmp_path_factory.mktemp("demo") / "demo.log") as (url, _):
        yield url


def spoken(texts: list[str], path: Path, voice: str = "en-us") -> Path:
    """Sentences with a second of silence around each, as one 16 kHz WAV."""
    parts = []
    for i, text in enumerate(texts):
        synthesize(text, Voice("espeak-ng", voice), path.with_name(f"{path.stem}-{i}.wav"))
        parts += [np.zeros(16000, np.float32), load_audio(path.with_name(f"{path.stem}-{i}.wav")),
                  np.zeros(16000, np.float32)]
    soundfile.write(path, np.concatenate(parts), 16000, subtype="PCM_16")
    return path


def open_demo(browser, url: str):
    page = browser.new_context(permissions=["microphone"]).new_page()
    page.add_init_script(RAW_MICROPHONE)
    page.goto(url)
    page.wait_for_selector("#mic", timeout=60000)
    return page


def launch(p, microphone_file: Path | None = None):
    args = ["--no-sandbox"]
    if microphone_file is not None:
        # %noloop: play the file once, then silence (by default the fake device loops it).
        args += ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                 f"--use-file-for-fake-audio-capture={microphone_file}%noloop"]
    return p.chromium.launch(executable_path=chromium(), headless=True, args=args)


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def textarea(page, elem_id: str) -> str:
    return page.locator(f"#{elem_id} textarea").input_value()


def wait_for_text(page, elem_id: str, timeout_s: float) -> str:
    page.wait_for_function(f"document.querySelector('#{elem_id} textarea').value.length > 0",
                           timeout=timeout_s * 1000)
    return textarea(page, elem_id)


def test_upload_shows_transcript_words_and_picture(demo_url, tmp_path):
    wav = spoken([FIRST], tmp_path / "upload.wav")
    with playwright.sync_playwright() as p:
        browser = launch(p)
        page = open_demo(browser, demo_url)
        page.get_by_role("tab", name="Upload").click()
        page.locator("#upload input[type=file]").set_input_files(str(wav))
        text = wait_for_text(page, "upload-transcript", 60)
        page.wait_for_selector("#picture img", timeout=30000)
        # A row per word of the transcript with three numbers (start, end, confidence).
        numbers = 3 * len(text.split())
        page.wait_for_function("document.querySelector('#words').innerText.split('\\n')"
                               f".filter(line => /^[0-9.]+$/.test(line.trim())).length >= {numbers}", timeout=30000)
        screenshot(page, "demo-upload.png")
        browser.close()
    assert score([FIRST], [text]).cer < 0.3, text


def test_bad_upload_gets_a_readable_message(demo_url, tmp_path):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF this is not audio" * 10)
    with playwright.sync_playwright() as p:
        browser = launch(p)
        page = open_demo(browser, demo_url)
        page.get_by_role("tab", name="Upload").click()
        page.locator("#upload input[type=file]").set_input_files(str(broken))
        message = page.get_by_text("broken.wav: not a readable audio file")
        message.first.wait_for(timeout=30000)
        screenshot(page, "demo-bad-upload.png")
        assert "Traceback" not in page.content()
        # The page keeps working: a good file still transcribes.
        page.locator("#upload button[aria-label='Clear']").click()
        page.locator("#upload input[type=file]").set_input_files(str(spoken([OTHER], tmp_path / "good.wav")))
        text = wait_for_text(page, "upload-transcript", 60)
        # Longer than the demo takes (10 minutes): refused with a message that says what to do instead.
        page.locator("#upload button[aria-label='Clear']").click()
        too_long = tmp_path / "eleven-minutes.wav"
        soundfile.write(too_long, np.zeros(11 * 60 * 16000, np.int16), 16000)
        page.locator("#upload input[type=file]").set_input_files(str(too_long))
        page.get_by_text("is too long for the demo").first.wait_for(timeout=60000)
        browser.close()
    assert score([OTHER], [text]).cer < 0.35, text


def record(page, seconds: float) -> tuple[list[tuple[float, str]], str]:
    """Press Record, sample the live transcript for `seconds`, press Stop; (timeline, final text)."""
    for attempt in range(2):  # a click before the recorder has loaded sends nothing: retry once
        page.locator("#mic button", has_text="Record").first.click()
        try:
            page.get_by_text("s heard").first.wait_for(timeout=8000)
            break
        except playwright.TimeoutError:
            if attempt:
                raise
            stop = page.locator("#mic button", has_text="Stop")
            if stop.count():
                stop.first.click()
    start, timeline = time.monotonic(), []
    while time.monotonic() - start < seconds:
        timeline.append((time.monotonic() - start, textarea(page, "live-transcript")))
        time.sleep(0.25)
    page.locator("#mic button", has_text="Stop").first.click()
    page.get_by_text("transcribed").first.wait_for(timeout=30000)
    return timeline, textarea(page, "live-transcript")


def test_microphone_streams_partial_text_then_the_final_transcript(demo_url, tmp_path):
    mic = spoken([FIRST, SECOND], tmp_path / "mic.wav")  # about 7 s
    with playwright.sync_playwright() as p:
        browser = launch(p, mic)
        page = open_demo(browser, demo_url)
        timeline, final = record(page, seconds=10)
        screenshot(page, "demo-microphone.png")
        browser.close()
    partial_while_speaking = [text for t, text in timeline if t < 5.5 and text]
    assert partial_while_speaking, timeline  # words appear while the speaker is still talking
    assert score([f"{FIRST} {SECOND}"], [final]).cer < 0.3, final


def test_concurrent_sessions_keep_their_own_words(demo_url, tmp_path):
    """Two browsers dictate different sentences at the same time; each sees only its own words."""
    files = [spoken([FIRST], tmp_path / "a.wav"), spoken([OTHER], tmp_path / "b.wav", voice="en-gb-x-rp")]
    with playwright.sync_playwright() as p:
        browsers = [launch(p, f) for f in files]
        pages = [open_demo(b, demo_url) for b in browsers]
        for page in pages:
            page.locator("#mic button", has_text="Record").first.click()
        for page in pages:
            page.get_by_text("s heard").first.wait_for(timeout=15000)
        time.sleep(5)
        for page in pages:
            page.locator("#mic button", has_text="Stop").first.click()
        finals = []
        for page in pages:
            page.get_by_text("transcribed").first.wait_for(timeout=30000)
            finals.append(textarea(page, "live-transcript"))
        for b in browsers:
            b.close()
    assert score([FIRST], [finals[0]]).cer < 0.35 and score([OTHER], [finals[1]]).cer < 0.35, finals
    assert "window" not in finals[0] and "weather" not in finals[1], finals


def take(page, seconds: float) -> None:
    """Record `seconds` of the fake microphone in the Adapt tab."""
    page.locator("#adapt-mic button", has_text="Record").first.click()
    time.sleep(seconds)
    page.locator("#adapt-mic button", has_text="Stop").first.click()
    page.locator("#adapt-mic [data-testid='download-link']").wait_for(timeout=15000)  # the take is ready


def test_adapt_to_my_voice_then_dictate_with_it_download_it_and_switch_back(demo_url, tmp_path):
    from asr.adapt import prompts
    from asr.checkpoint import load_trained

    # The fake microphone loops the first prompts read aloud; each take catches part of them.
    mic = spoken(prompts()[:4], tmp_path / "prompts.wav")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), headless=True, args=[
            "--no-sandbox", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={mic}"])
        page = open_demo(browser, demo_url)
        page.get_by_role("tab", name="Adapt to my voice").click()
        assert prompts()[0] in page.locator("#adapt-prompt").inner_text()
        take(page, 3)
        page.locator("#adapt-mic button[aria-label='Clear']").click()  # not happy with it: record it again
        take(page, 4)
        page.locator("#adapt-keep").click()
        page.get_by_text("Collected: 1 sentences").wait_for(timeout=15000)
        assert prompts()[1] in page.locator("#adapt-prompt").inner_text()
        for count in range(2, 8):
            take(page, 4)
            page.locator("#adapt-keep").click()
            page.get_by_text(f"Collected: {count} sentences").wait_for(timeout=15000)
        steps = page.locator("#adapt-steps input[type=number]")
        steps.fill("5")
        steps.press("Enter")
        page.locator("#adapt-run").click()
        page.locator("#adapt-status progress").wait_for(timeout=60000)  # the progress bar while it trains
        page.locator("#adapt-status .done").wait_for(timeout=240000)
        status = page.locator("#adapt-status").inner_text()
        screenshot(page, "demo-adapt.png")
        assert "Word error rate on your held-out sentences: greedy" in status and "→" in status, status
        assert page.locator("#model-choice input[value='my adapted model']").is_checked()
        with page.expect_download() as download:
            page.locator("#adapt-download").click()
        download.value.save_as(tmp_path / "mine.zip")
        assert load_trained(tmp_path / "mine.zip").metadata["steps"] <= 5

        page.get_by_role("tab", name="Microphone").click()
        _, with_mine = record(page, 6)
        assert "your adapted model is gone" not in page.locator("#mic-status").inner_text()
        page.locator("#model-choice label", has_text="the model the demo started with").click()
        assert page.locator("#model-choice input[value='the model the demo started with']").is_checked()
        _, with_bundled = record(page, 6)
        browser.close()
    assert with_mine.strip() and with_bundled.strip(), (with_mine, with_bundled)
