"""Readers of the two Debian adventure games' speech and dialogue text, used only by recipes/games/prepare.py."""
