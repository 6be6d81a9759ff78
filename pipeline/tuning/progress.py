"""Live tuning progress, and the time budget, as a MetaSchedule measure callback."""

import signal
import sys
import threading
import time
from contextlib import contextmanager

from tvm.ir.utils import derived_object
from tvm.s_tir.meta_schedule.measure_callback import PyMeasureCallback

from .measure import device_gone, mean_seconds


def format_seconds(seconds):
    minutes, secs = divmod(round(seconds), 60)  # whole seconds first: 59.6 s is 1m00s, not 0m60s
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class TuneStopped(Exception):
    """Ends a tune from a measure callback (time budget, device gone); records stay saved."""


@derived_object
class TuningProgress(PyMeasureCallback):
    """Prints one line per measured batch: trials done/total, task, best latency, ETA. Stops the
    search (terminating every task) once ``deadline`` (a ``time.monotonic()`` value) passes, or
    when a whole batch failed because the measuring device is gone: records measured so far are
    in the database already, and the same command resumes once the device is back."""

    def __init__(self, task_names, total_trials, deadline=None, stream=sys.stderr):
        self.task_names, self.total, self.deadline, self.stream = task_names, total_trials, deadline, stream
        self.start = time.monotonic()
        self.done = 0
        self.failed = 0
        self.best_ms = {}
        self.trials_by_task = {}
        self.stopped_for_time = False
        self.device_lost = False
        self.interrupted = False
        self.stop_reason = None
        self.lost = 0  # trials that failed because the device was gone: not spent budget
        self.wave_tasks = None  # the current wave's indices into task_names (see tune.covering_waves)

    def past_deadline(self) -> bool:
        if self.deadline is None or time.monotonic() <= self.deadline:
            return False
        if not self.stopped_for_time:
            self.stopped_for_time = True
            print("[tune] time budget reached: stopping before the next wave of tasks", file=self.stream, flush=True)
        return True

    def apply(self, task_scheduler, task_id, measure_candidates, builder_results, runner_results):
        if self.wave_tasks is not None:  # MetaSchedule numbers the tasks of the wave it is tuning
            task_id = self.wave_tasks[task_id]
        self.done += len(runner_results)
        self.trials_by_task[task_id] = self.trials_by_task.get(task_id, 0) + len(runner_results)
        for build, run in zip(builder_results, runner_results):
            if build.error_msg or run.error_msg or not run.run_secs:
                self.failed += 1
                self.lost += device_gone(run.error_msg)
                continue
            ms = 1e3 * mean_seconds(run.run_secs)
            self.best_ms[task_id] = min(ms, self.best_ms.get(task_id, float("inf")))
        elapsed = time.monotonic() - self.start
        eta = elapsed / self.done * max(0, self.total - self.done) if self.done else 0
        width = 24
        filled = int(width * min(1.0, self.done / max(1, self.total)))
        best = self.best_ms.get(task_id)
        best_text = f"{best:.3f} ms" if best is not None else "-"
        print(f"[tune] [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} trials "
              f"({self.failed} failed)  task {task_id + 1}/{len(self.task_names)} {self.task_names[task_id][:40]}  "
              f"best {best_text}  elapsed {format_seconds(elapsed)}  ETA {format_seconds(eta)}", file=self.stream, flush=True)
        if self.deadline is not None and time.monotonic() > self.deadline and not self.stopped_for_time:
            self.stopped_for_time = True
            self._stop("time budget reached: stopping after the trials in flight")
        if self.interrupted and self.stop_reason is None:
            self._stop("interrupted: stopping after the trials in flight; run the same command again to resume")
        if runner_results and all(device_gone(run.error_msg) for run in runner_results) and not self.device_lost:
            self.device_lost = True
            self._stop("the device stopped answering (" + runner_results[0].error_msg.strip()
                       .splitlines()[0][:160] + "): stopping. Every trial measured so far is saved; run the "
                       "same command again once the device is back to resume")

    def stopping_on_interrupt(self):
        """Around the whole tune: the first Ctrl-C (SIGINT) ends it at the next measured batch, as
        the time budget does (what was measured stays saved, the meta too)."""
        def first_interrupt():
            self.interrupted = True
            print("[tune] interrupt: stopping after the trials in flight (interrupt again to abort now)",
                  file=self.stream, flush=True)

        return deferring_interrupt(first_interrupt)

    @contextmanager
    def catching_stop(self):
        """Around tune_tasks: a stop we raised ends the tune normally (it reaches us wrapped by
        TVM's FFI, so it is recognised by our own record of it, not by its type)."""
        try:
            yield
        except Exception:
            if self.stop_reason is None:
                raise

    def _stop(self, why):
        # Raised, not terminate_task(): MetaSchedule also terminates a task that just reached its
        # budget, and terminating one twice aborts the whole tune. tune() catches this.
        self.stop_reason = why
        print(f"[tune] {why}", file=self.stream, flush=True)
        raise TuneStopped(why)


@contextmanager
def deferring_interrupt(on_first):
    """The first Ctrl-C (SIGINT) calls ``on_first`` and the work stops where it checks for it; a
    second interrupts at once, the usual way. Python's default raises KeyboardInterrupt inside
    MetaSchedule's C++ loops and builder pools, which swallow it: the work went on."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def interrupt(_signum, _frame):
        signal.signal(signal.SIGINT, previous)
        on_first()

    signal.signal(signal.SIGINT, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
