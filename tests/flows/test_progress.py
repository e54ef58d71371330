"""The progress the monitor flow reports (flows/progress.py) and the display evaluate shows."""

from __future__ import annotations

import io
import threading
from concurrent.futures import Future

from rich.console import Console

from flows import progress
from flows.progress import ProgressDisplay, listening


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def planned(self, *, embed: int, measure: int) -> None:
        self.events.append(("planned", embed, measure))

    def finished(self, kind: str) -> None:
        self.events.append(("finished", kind))


def test_without_a_listener_every_call_is_a_no_op_and_reaches_no_later_listener():
    """Serve and the work-pool deployments register no listener: the flow's calls go nowhere.

    A future watched then never reports to a listener registered later, and a nested listener's
    exit restores the outer one.
    """
    future: Future = Future()
    progress.planned(embed=3, measure=3)
    progress.finished("embedded")
    progress.when_done(future, "embedded")  # no listener: no callback registered
    recorder, inner = Recorder(), Recorder()
    with listening(recorder):
        future.set_result(1)  # done while a listener is registered: still not reported
        with listening(inner):
            progress.finished("measured")
        progress.finished("embedded")  # the outer listener is back
    progress.finished("measured")  # none again
    assert recorder.events == [("finished", "embedded")]
    assert inner.events == [("finished", "measured")]


def test_listener_gets_the_plan_and_each_finished_future():
    recorder = Recorder()
    futures: list[Future[int]] = [Future() for _ in range(3)]
    with listening(recorder):
        progress.planned(embed=2, measure=3)
        progress.when_done(futures[0], "embedded")
        progress.when_done(futures[1], "measured")
        progress.when_done(futures[2], "measured")
    futures[0].set_result(1)
    futures[1].set_exception(RuntimeError("a failed task still counts as done"))
    threading.Thread(target=futures[2].set_result, args=(2,)).start()  # callbacks arrive on worker threads
    futures[2].result(timeout=5)
    assert recorder.events[0] == ("planned", 2, 3)
    assert sorted(recorder.events[1:]) == [("finished", "embedded"), ("finished", "measured"), ("finished", "measured")]
    progress.planned(embed=1, measure=1)  # outside: not recorded
    assert len(recorder.events) == 4


def test_display_counts_out_of_the_total_with_times():
    out = io.StringIO()
    console = Console(file=out, width=120, force_terminal=False, color_system=None)
    with ProgressDisplay(console) as display:
        display.planned(embed=4, measure=6)
        for _ in range(3):
            display.finished("embedded")
        for _ in range(6):
            display.finished("measured")
    text = out.getvalue()
    assert "checkpoints embedded" in text and "3/4" in text
    assert "checkpoints measured" in text and "6/6" in text
    assert "elapsed" in text and "left" in text
