"""The kernel client's sliced waits (paynb.jobs.engine): a missed wake-up costs one slice, not the timeout.

A missed zmq wake-up cannot be provoked on demand with a real kernel (it shows up now and then when a
cell displays widgets), so the first test stands a scripted channel in for the zmq one. The last test
runs a real widget notebook through the real client.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from queue import Empty

import nbformat
import pytest

from paynb.jobs import engine
from paynb.jobs.engine import SlicedKernelClient, SlicedWaits, kernel_manager_class
from tests.notebook_runner import run_headless


class MissesFirstWakeUp:
    """A channel whose message is already waiting, but whose first poll never notices it: it sleeps
    for its whole timeout (forever when there is none) and reports nothing, as a missed wake-up does."""

    def __init__(self) -> None:
        self.polls: list[float | None] = []

    async def get_msg(self, timeout: float | None = None) -> dict:
        self.polls.append(timeout)
        if len(self.polls) == 1:
            await asyncio.sleep(3600 if timeout is None else timeout)
            raise Empty
        return {"msg_type": "execute_reply"}


class Sliced(SlicedWaits, MissesFirstWakeUp):
    pass


@pytest.fixture
def short_slices(monkeypatch: pytest.MonkeyPatch) -> float:
    monkeypatch.setattr(engine, "POLL_SLICE_S", 0.05)
    return 0.05


def test_a_missed_wake_up_costs_one_slice(short_slices: float) -> None:
    channel = Sliced()
    started = time.monotonic()
    assert asyncio.run(channel.get_msg(timeout=None))["msg_type"] == "execute_reply"
    assert channel.polls == [short_slices, short_slices]
    assert time.monotonic() - started < 60  # without slices: the hour-long sleep, i.e. a hang


def test_the_callers_timeout_still_holds(short_slices: float) -> None:
    class NothingComes:
        async def get_msg(self, timeout: float | None = None) -> dict:
            await asyncio.sleep(timeout or 0)
            raise Empty

    class SlicedNothing(SlicedWaits, NothingComes):
        pass

    with pytest.raises(Empty):
        asyncio.run(SlicedNothing().get_msg(timeout=0.2))
    with pytest.raises(Empty):
        asyncio.run(SlicedNothing().get_msg(timeout=0))  # a zero timeout is one immediate poll


def test_runs_use_the_sliced_client() -> None:
    km_class, _ = kernel_manager_class({}, None)
    client = km_class().client()
    assert isinstance(client, SlicedKernelClient)
    assert issubclass(client.shell_channel_class, SlicedWaits)
    assert issubclass(client.iopub_channel_class, SlicedWaits)


@pytest.mark.notebook
def test_widget_cells_finish_under_papermill(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "import ipywidgets as widgets\n"
            "out = widgets.Output()\n"
            "with out:\n"
            "    print('inside the widget')\n"
            "widgets.VBox([widgets.Dropdown(options=['a', 'b']), out])"
        ),
        nbformat.v4.new_code_cell("print('after the widget')"),
    ]
    path = tmp_path / "widgets.ipynb"
    nbformat.write(nb, path)
    for attempt in range(5):  # the stall was intermittent; five runs make a stall visible if it is back
        done = run_headless(path, tmp_path / f"out{attempt}.ipynb")
        assert [c.metadata.papermill.duration < 30 for c in done.cells] == [True, True]
        assert done.cells[1].outputs[0]["text"] == "after the widget\n"
