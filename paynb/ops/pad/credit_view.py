"""Old name of :mod:`paynb.ops.pad.view` (the PAD area's tables and notebook flow), kept for old imports."""

from __future__ import annotations

from paynb.ops.pad.view import *  # noqa: F403
from paynb.ops.pad.view import __all__  # noqa: F401
