"""Packing sequences into decodes: pure planning, no model."""

from __future__ import annotations


def plan_batches(lengths: list[int], max_tokens: int, max_seqs: int) -> list[list[int]]:
    """Group sequence indices into decodes of at most ``max_tokens`` tokens and ``max_seqs`` sequences.

    Longest first, so similar lengths share a decode (less padding waste in attention) and a
    sequence longer than ``max_tokens`` travels alone. Every index appears exactly once.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    used = 0
    for i in order:
        n = lengths[i]
        if current and (used + n > max_tokens or len(current) >= max_seqs):
            batches.append(current)
            current, used = [], 0
        current.append(i)
        used += n
    if current:
        batches.append(current)
    return batches
