"""Whether paynb runs as a batch job (``paynb run``, a scheduler) rather than in front of a person."""

from __future__ import annotations

import os


def is_headless() -> bool:
    """True under ``paynb run`` (it sets ``PAYNB_RUN_ID`` in the kernel) or when ``PAYNB_HEADLESS`` is set.

    Notebook helpers then build no widgets: nobody will click them, an archived run keeps only an empty
    widget view, and widget traffic is what can stall a plain nbclient wait (see paynb.jobs.engine)."""
    return bool(os.environ.get("PAYNB_RUN_ID") or os.environ.get("PAYNB_HEADLESS"))
