"""Typed errors of the toolkit: one base class, one subclass per kind of bad input."""
from __future__ import annotations


class ASRError(Exception):
    """Base class of every error the library raises on purpose (bad input, bad files)."""


class AudioError(ASRError):
    """An audio file or array cannot be used: missing, corrupt, empty, non-finite, unsupported."""


class ManifestError(ASRError):
    """A JSONL manifest is malformed or points at audio that does not exist."""


class CheckpointError(ASRError):
    """A checkpoint or released model is missing, corrupt or incompatible."""


class ConfigError(ASRError):
    """A configuration file or a key=value override is invalid."""
