"""What every benchmark shares: the facts a recorded figure names (date, command, machine, software), the tables it
prints, its command-line parser, and timing a fresh `asr` process.

Imports nothing heavy: lm_build.py measures its child's peak memory, and Linux counts the parent's resident memory
at the moment of exec into the child's peak.
"""
from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def argument_parser(doc: str, markdown: bool = False) -> argparse.ArgumentParser:
    """A parser whose --help prints the benchmark's whole docstring; with `markdown`, a --markdown flag too."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    if markdown:
        parser.add_argument("--markdown", action="store_true", help="print Markdown tables for docs/benchmarks.md")
    return parser


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what `platform` knows of it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    """CPU model, logical cores and the cores this process may use."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cpu_model()}, {os.cpu_count()} logical cores ({usable} usable)"


def software(*packages: str) -> str:
    """The Python version and each package's: the module's own where it is imported (torch's names its CUDA
    build), else the installed metadata's, without importing it."""
    def version(name: str) -> str:
        return getattr(sys.modules.get(name), "__version__", None) or importlib.metadata.version(name)

    return ", ".join([f"Python {platform.python_version()}", *(f"{name} {version(name)}" for name in packages)])


def run_facts(cpu_note: str = "") -> list[tuple[str, str]]:
    """The facts every recorded table starts with: today's date, the exact command line, the machine (with
    `cpu_note` after it, e.g. the threads used)."""
    return [("date", datetime.date.today().isoformat()), ("command", shlex.join(sys.orig_argv)),
            ("CPU", machine() + cpu_note)]


def facts_block(facts: list[tuple[str, str]], markdown: bool = True) -> str:
    """(name, value) facts as a two-column Markdown table without a header, or as `name: value` lines."""
    if markdown:
        return "\n".join(["| | |", "|---|---|", *(f"| {name} | {value} |" for name, value in facts)])
    return "\n".join(f"{name}: {value}" for name, value in facts)


def table(header: list[str], rows: list[list[str]], align: str = "", markdown: bool = True) -> str:
    """Rows of cells under a header, as a Markdown table or as columns padded with spaces; `align` holds an "l" or
    an "r" per column (default: all left), the Markdown alignment or the padding side."""
    align = align or "l" * len(header)
    if markdown:
        rule = "|" + "".join("---:|" if side == "r" else "---|" for side in align)
        return "\n".join([f"| {' | '.join(header)} |", rule, *(f"| {' | '.join(cells)} |" for cells in rows)])
    widths = [max(len(cells[i]) for cells in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(cell.rjust(width) if side == "r" else cell.ljust(width)
                               for cell, width, side in zip(cells, widths, align)).rstrip()
                     for cells in [header, *rows])


def run_asr(args: list[str], show_stderr: bool = False, cpus: set[int] | None = None) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MB, stdout) of one fresh `asr` process, reaped by wait4 for its own resource
    usage. Its stderr goes to ours with `show_stderr`, else into the message it exits with if it fails.
    cpus: the cores it may run on (pinned, as a side-by-side comparison with another program pins both)."""
    with tempfile.TemporaryFile() as errors:
        start = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-m", "asr.cli", *args], stdout=subprocess.PIPE,
                                   stderr=None if show_stderr else errors, text=True,
                                   preexec_fn=None if cpus is None else lambda: os.sched_setaffinity(0, cpus))
        with process.stdout:
            stdout = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait for it again
        if process.returncode != 0:
            errors.seek(0)
            raise SystemExit(f"asr {shlex.join(args)} failed" +
                             ("" if show_stderr else f":\n{errors.read().decode(errors='replace')}"))
    return wall, usage.ru_maxrss / 1024, stdout
