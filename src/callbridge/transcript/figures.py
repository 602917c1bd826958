"""Figures as an analyst writes them (placeholder until the normaliser lands)."""

from __future__ import annotations


def write_figures(text: str) -> str:
    """``text`` unchanged (for now)."""
    return text
