"""``paynb lab``: JupyterLab on the project, with paynb's settings and paynb's Python as the kernel.

The command line is built here and run by the CLI. Three things a bare ``jupyter lab`` gets wrong for an
analyst: it refuses to start as root (containers, CI), it may pick a ``python3`` kernel from another
Python that has no paynb, and the settings a notebook needs must already be in the server's environment
(the kernel inherits it). So the server runs from this interpreter, a ``python3`` kernelspec pointing at
this interpreter is put first on ``JUPYTER_PATH``, and the settings are passed in the environment. The
server's kernel manager (:mod:`paynb.jobs.lab_kernels`) then gives the writer URL to data-fix notebooks'
kernels only, as ``paynb run`` does, and the admin URL to none.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path

from paynb.files import private_dir

KERNEL_NAME = "python3"  # the name every shipped notebook's metadata asks for


@dataclass(frozen=True)
class LabLaunch:
    """What to run: ``argv`` with ``env``; ``url`` (with its token) is where the analyst goes."""

    argv: list[str]
    env: dict[str, str] = field(repr=False)
    url: str = field(repr=False)
    root: Path = Path(".")
    port: int = 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_kernelspec(folder: Path) -> Path:
    """A ``python3`` kernelspec that starts this interpreter (where paynb is installed), under
    ``folder/kernels``; ``folder`` goes first on JUPYTER_PATH so it wins over any other ``python3``."""
    spec_dir = folder / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (paynb)",
        "language": "python",
        "metadata": {"debugger": True},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1) + "\n")
    return spec_dir


def lab_launch(
    *,
    root: str | os.PathLike = ".",
    settings_env: dict[str, str] | None = None,
    state_dir: str | os.PathLike,
    port: int | None = None,
    token: str | None = None,
    base_env: dict[str, str] | None = None,
) -> LabLaunch:
    """The JupyterLab command for the project at ``root``. ``settings_env`` (the sandbox's settings, say)
    is laid over ``base_env`` (default: this process's environment) for the server and its kernels."""
    from paynb.extras import require

    require("jupyterlab", "JupyterLab (paynb lab)")
    root_path = Path(root).resolve()
    port = port or free_port()
    token = token or secrets.token_hex(24)
    jupyter_dir = private_dir(Path(state_dir) / "lab")
    write_kernelspec(jupyter_dir)
    env = dict(os.environ if base_env is None else base_env)
    env.update(settings_env or {})
    env["JUPYTER_PATH"] = os.pathsep.join(p for p in (str(jupyter_dir), env.get("JUPYTER_PATH", "")) if p)
    argv = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={root_path}",
        f"--IdentityProvider.token={token}",
        f"--MappingKernelManager.default_kernel_name={KERNEL_NAME}",
        # report kernels get the reader only, as under `paynb run` (paynb/jobs/lab_kernels.py)
        "--ServerApp.kernel_manager_class=paynb.jobs.lab_kernels.PaynbKernelManager",
        # the announcement and the notices extension would try to reach the internet from the browser
        "--LabApp.news_url=",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        argv.append("--allow-root")  # Lab refuses root without it; containers and CI run as root
    url = f"http://127.0.0.1:{port}/lab?token={token}"
    return LabLaunch(argv=argv, env=env, url=url, root=root_path, port=port)


__all__ = ["KERNEL_NAME", "LabLaunch", "free_port", "lab_launch", "write_kernelspec"]
