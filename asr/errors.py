"""Typed errors of the toolkit: one base class, one subclass per kind of bad input."""
from __future__ import annotations

import os
import sys
from collections.abc import Callable


class ASRError(Exception):
    """Base class of every error the library raises on purpose (bad input, bad files)."""


class AudioError(ASRError):
    """An audio file or array cannot be used: missing, corrupt, empty, non-finite, unsupported."""


class ManifestError(ASRError):
    """A JSONL manifest is malformed or points at audio that does not exist."""


class CheckpointError(ASRError):
    """A checkpoint or released model is missing, corrupt or incompatible."""


class ConfigError(ASRError, ValueError):
    """A configuration file, a key=value override or a config's value is invalid (also a ValueError, which is what
    Python code expects of a bad argument)."""


EXIT_ERROR = 1
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it


def exit_status(name: str, command: Callable[[], object]) -> int:
    """Run a command-line entry point and return its exit status: 0 when it finishes; for an ASRError one line
    "NAME: error: MESSAGE" on stderr (no traceback) and 1; for Ctrl-C "NAME: interrupted" and 130; when the reader
    of stdout went away (`asr transcribe ... | head`), 1 quietly."""
    try:
        command()
    except ASRError as err:
        print(f"{name}: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes stdout
        return EXIT_ERROR
    return 0
