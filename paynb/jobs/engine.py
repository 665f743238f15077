"""Execution plumbing: a kernel from the current environment and a papermill engine that keeps hold of
the executed notebook even when execution ends in a timeout or a dead kernel.

papermill picks the kernel from the notebook's ``kernelspec`` metadata, which fails with NoSuchKernel
when the author's kernel name (``conda-env-x-py``) is not installed here (docs/jobs.md#execution-and-failure). paynb
instead starts ``sys.executable -m ipykernel_launcher``: the interpreter running paynb, so the kernel sees
the same packages. A named kernelspec is used only when asked for.

The kernel client waits for messages in one-second slices. A cell that displays ipywidgets can make
zmq's asyncio poll miss the wake-up for the cell's reply, so nbclient then sees the reply only when its
wait times out: at the cell timeout, or never when there is none (nbclient issue #312; measured here
as a 180 s stall of the PAD triage picker cell, and as a CI run that hung for 90 minutes). Each slice
polls afresh and finds a message that is already waiting, so a missed wake-up costs at most a slice.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Mapping
from queue import Empty
from typing import Any

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.channels import AsyncZMQSocketChannel
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from papermill.engines import NBClientEngine, papermill_engines
from traitlets import Type

ENGINE_NAME = "paynb"
CURRENT_ENV_KERNEL = "paynb-current-env"
POLL_SLICE_S = 1.0


class SlicedWaits:
    """``get_msg`` that waits in slices of ``POLL_SLICE_S`` seconds, honouring the caller's timeout."""

    async def get_msg(self, timeout: float | None = None) -> dict[str, Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            step = POLL_SLICE_S if left is None else max(0.0, min(POLL_SLICE_S, left))
            try:
                return await super().get_msg(timeout=step)  # type: ignore[misc]
            except Empty:
                if left is not None and left <= POLL_SLICE_S:
                    raise


class SlicedChannel(SlicedWaits, AsyncZMQSocketChannel):
    pass


class SlicedKernelClient(AsyncKernelClient):
    """nbclient's async kernel client whose shell and IOPub waits are sliced (see the module doc)."""

    shell_channel_class = Type(SlicedChannel)  # type: ignore[assignment]
    iopub_channel_class = Type(SlicedChannel)  # type: ignore[assignment]


class RunKernelManager(AsyncKernelManager):
    """nbclient's default (async) kernel manager with a fixed kernelspec and the sliced client. nbclient
    builds it from ``kernel_manager_class`` and so owns it: it shuts the kernel down when the run ends."""

    client_factory = Type(SlicedKernelClient, klass=AsyncKernelClient)
    fixed_spec: KernelSpec
    #: names removed from the environment the kernel inherits (the writer URL in report kernels)
    dropped_env: frozenset[str] = frozenset()

    async def _async_pre_start_kernel(self, **kw: Any):  # type: ignore[no-untyped-def]
        env = dict(kw.pop("env", None) or os.environ)
        for name in self.dropped_env:
            env.pop(name, None)
        kw["env"] = env
        return await super()._async_pre_start_kernel(**kw)

    @property
    def kernel_spec(self) -> KernelSpec:  # type: ignore[override]
        return self.fixed_spec


def kernel_manager_class(
    env: Mapping[str, str], kernel_name: str | None = None, drop: Iterable[str] = ()
) -> tuple[type[RunKernelManager], str]:
    """A kernel manager class whose kernels get ``env`` added and the names in ``drop`` removed from what
    they inherit, and the kernel name to record."""
    if kernel_name:
        spec = KernelSpecManager().get_kernel_spec(kernel_name)  # NoSuchKernel if it is not installed
        spec.env = {**(spec.env or {}), **env}
        name = kernel_name
    else:
        spec = KernelSpec(
            # log_level: the kernel listens on loopback only; its "TCP without encryption" warning is noise
            argv=[
                sys.executable,
                "-m",
                "ipykernel_launcher",
                "-f",
                "{connection_file}",
                "--IPKernelApp.log_level=ERROR",
            ],
            display_name="Python 3 (paynb environment)",
            language="python",
            env=dict(env),
        )
        name = CURRENT_ENV_KERNEL
    attrs = {"fixed_spec": spec, "dropped_env": frozenset(drop) - set(env)}
    return type("RunKernelManager", (RunKernelManager,), attrs), name


class CapturingEngine(NBClientEngine):
    """papermill's nbclient engine, plus: hand the live notebook to the caller before executing, so a
    CellTimeoutError or DeadKernelError (which papermill lets escape without returning the notebook
    when output_path is None) still leaves the partial outputs in our hands."""

    @classmethod
    def execute_managed_notebook(cls, nb_man, kernel_name, **kwargs):  # type: ignore[no-untyped-def]
        capture = kwargs.pop("paynb_capture", None)
        if capture is not None:
            capture["nb"] = nb_man.nb
        return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)


# installed paynb registers the engine through the `papermill.engine` entry point (pyproject.toml); this
# covers a source tree on PYTHONPATH, where there is no entry point
papermill_engines.register(ENGINE_NAME, CapturingEngine)
