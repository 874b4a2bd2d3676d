"""The demo under load: N visitors upload recordings and dictate at the same time for T seconds, on loopback.

    python benchmarks/demo_load.py --clients 4 --seconds 60          # starts `asr demo` on a free port
    python benchmarks/demo_load.py --url http://127.0.0.1:7860/      # or loads a demo that is already running
    python benchmarks/demo_load.py --clients 8 --dictate-only --adapt-prompts 24   # 8 dictate while a 9th adapts
    python benchmarks/demo_load.py --clients 32 --seconds 120 --adapt-prompts 24   # a crowd: some are told "busy"
    python benchmarks/demo_load.py --clients 8 --seconds 1800 --timeline 60         # a soak: memory and cache over time

What the visitors do and what is measured: benchmarks/demo_visitors.py. Prints a Markdown block (date, command,
machine, load, crosstalk, accuracy, server) and the table.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import time
from pathlib import Path

import common
from common import argument_parser, facts_block, run_facts, software
from demo_visitors import SENTENCES, run_load, serve_demo, table


def rss_mb(pid: int) -> float:
    """A process's resident memory now, in MB (nan where /proc does not say)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class ServerWatch:
    """A process's largest resident memory, sampled twice a second while in the with block; with every_s, also its
    memory and its cache folder's files every every_s seconds (the soak's timeline)."""

    def __init__(self, pid: int, cache: Path | None = None, every_s: float = 0.0) -> None:
        self.pid, self.cache, self.every_s = pid, cache, every_s
        self.peak, self.timeline = 0.0, []  # timeline: (seconds, RSS MB, files, MB)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        began = next_at = time.monotonic()
        while not self._done.wait(0.5):
            rss = rss_mb(self.pid)
            self.peak = max(self.peak, rss)
            if self.every_s and time.monotonic() >= next_at:
                files, megabytes = folder_mb(self.cache) if self.cache else (0, 0.0)
                self.timeline.append((time.monotonic() - began, rss, files, megabytes))
                next_at += self.every_s

    def __enter__(self) -> "ServerWatch":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()


def cpu_s(pid: int) -> float:
    """A process's CPU time so far (user and system), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def folder_mb(folder: Path) -> tuple[int, float]:
    """How many files a folder tree holds, and their size in MB (a file the server's cache sweep deletes meanwhile
    does not count)."""
    sizes = []
    for root, _, names in os.walk(folder):  # os.walk skips a folder that vanishes under it
        for name in names:
            try:
                sizes.append(os.stat(os.path.join(root, name)).st_size)
            except FileNotFoundError:
                continue
    return len(sizes), sum(sizes) / 2**20


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--clients", type=int, default=4, help=f"concurrent visitors (1 to {len(SENTENCES)})")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the visitors keep going")
    parser.add_argument("--url", help="a running demo to load (default: start `asr demo` on a free port)")
    parser.add_argument("--dictate-only", action="store_true", help="the visitors dictate and never upload")
    parser.add_argument("--adapt-prompts", type=int, default=0,
                        help="one more visitor keeps this many prompt recordings and adapts meanwhile; the others "
                             "stop when it is done")
    parser.add_argument("--adapt-steps", type=int, default=120, help="the adapting visitor's step budget")
    parser.add_argument("--timeline", type=float, default=0.0,
                        help="every this many seconds, note the server's memory and cache (a soak's timeline)")
    parser.add_argument("--settle", type=float, default=30.0,
                        help="seconds to wait after the visitors leave before measuring the server's memory again")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="demo-load-") as tmp:
        tmp = Path(tmp)
        with contextlib.ExitStack() as stack:
            server = None
            if args.url:
                url = args.url
            else:
                (tmp / "gradio").mkdir()
                url, server = stack.enter_context(serve_demo(tmp / "demo.log", temp_dir=tmp / "gradio"))
                rss_before, server_cpu = rss_mb(server.pid), cpu_s(server.pid)
            with ServerWatch(server.pid if server is not None else os.getpid(),
                             tmp / "gradio" if server is not None else None, args.timeline) as watch:
                results, adapter = run_load(url, args.clients, args.seconds, tmp, args.dictate_only,
                                            args.adapt_prompts, args.adapt_steps)
            if server is not None:
                rss_end, server_cpu = rss_mb(server.pid), cpu_s(server.pid) - server_cpu
                time.sleep(args.settle)
                rss_after, (files, megabytes) = rss_mb(server.pid), folder_mb(tmp / "gradio")
    crosstalk = results.crosstalk()
    load = (f"{args.clients} visitors {'dictating' if args.dictate_only else 'uploading and dictating'}"
            f"{f' while one adapts ({args.adapt_prompts} prompts, at most {args.adapt_steps} steps)' if adapter else ''}"
            f" for {args.seconds:.0f} s at most (all done after {results.wall_s:.1f} s), greedy decoding; "
            f"{results.audio_s:.0f} s of audio transcribed ({results.audio_s / results.wall_s:.2f} audio s per s)")
    facts = [*run_facts(f"; load average {load_before:.1f} at start (the clients run on the same machine)"),
             ("software", software("gradio", "gradio_client")), ("load", load),
             ("crosstalk", f"{len(crosstalk)} of {len(results.transcripts)} transcripts hold another visitor's words"),
             ("refused", f"{sum(map(len, results.refusals.values()))} requests told \"busy\", "
                         f"{sum(map(len, results.errors.values()))} errors"),
             ("accuracy", f"mean CER {results.final_cer('upload'):.3f} (uploads; nan: none), "
                          f"{results.final_cer('dictation'):.3f} (dictations) against each visitor's own sentence")]
    cpu = f"the visitors' processes took {results.visitors_cpu_s / results.wall_s:.2f} CPU s per s"
    if server is not None:
        cpu += f", the server {server_cpu / results.wall_s:.2f}"
    facts.append(("CPU", f"{cpu} (of {os.cpu_count()})"))
    if server is not None:
        facts.append(("server", f"RSS {rss_before:.0f} MB after start, peak {watch.peak:.0f} MB, {rss_end:.0f} MB "
                                f"when the visitors left, {rss_after:.0f} MB {args.settle:.0f} s later; {files} files "
                                f"({megabytes:.1f} MB) left in its Gradio cache"))
    if adapter is not None:
        facts.append(("adaptation", adapter.final_status or "failed (see below)"))
    print("\n" + facts_block(facts))
    print()
    print(table(results))
    if watch.timeline:
        print()
        print(common.table(["minutes", "server RSS (MB)", "cache files", "cache MB"],
                           [[f"{t / 60:.1f}", f"{rss:.0f}", str(files), f"{mb:.1f}"]
                            for t, rss, files, mb in watch.timeline], "rrrr"))
    for kind, messages in results.errors.items():
        for message in sorted(set(messages)):
            print(f"\n{kind} error ({messages.count(message)}x): {message}")
    for visitor, kind, text in crosstalk[:10]:
        print(f"\ncrosstalk: visitor {visitor} ({SENTENCES[visitor]!r}) got {kind} {text!r}")


if __name__ == "__main__":
    main()
