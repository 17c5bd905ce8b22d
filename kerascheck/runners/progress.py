"""The progress bar of a long run, on a terminal's stderr: files done, running, failed, from the
cache, elapsed and remaining time. The CLI shows it only when stderr is a terminal and the
report is text; it redraws one line in place and erases it before the report is written."""
from __future__ import annotations

import threading
import time

from kerascheck.runners import Listener

REDRAW_SECONDS = 0.5
BAR_WIDTH = 24


def clock(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class ProgressBar(Listener):
    def __init__(self, stream, slots: int = 1, now=time.monotonic):
        self.stream, self.slots, self.now = stream, max(1, slots), now
        self.total = self.done = self.failed = self.cached = self.sent = 0
        self.start = now()
        self.width = 0
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None

    def planned(self, total: int) -> None:
        self.total = total
        self.start = self.now()
        self.thread = threading.Thread(target=self._tick, name="kerascheck-progress", daemon=True)
        self.thread.start()

    def started(self, source: str) -> None:
        with self.lock:
            self.sent += 1
        self.draw()

    def finished(self, result, cached: bool) -> None:
        with self.lock:
            self.done += 1
            self.cached += bool(cached)
            self.failed += bool(result.errors)
        self.draw()

    def line(self) -> str:
        with self.lock:
            checked = self.done - self.cached
            running = min(max(self.sent - checked, 0), self.slots, self.total - self.done)
            elapsed = self.now() - self.start
            left = self.total - self.done
            filled = int(BAR_WIDTH * self.done / self.total) if self.total else BAR_WIDTH
            parts = [f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {self.done}/{self.total} files",
                     f"{running} running"]
            if self.failed:
                parts.append(f"{self.failed} failed")
            if self.cached:
                parts.append(f"{self.cached} cached")
            parts.append(f"{clock(elapsed)} elapsed")
            if checked and left:
                # The checks so far set the pace; cached results arrive at once and say nothing of it.
                parts.append(f"~{clock(elapsed / checked * left)} left")
        return "kerascheck: " + " · ".join(parts)

    def draw(self) -> None:
        text = self.line()
        with self.lock:
            self.stream.write("\r" + text.ljust(self.width))
            self.stream.flush()
            self.width = len(text)

    def close(self) -> None:
        self.stopped.set()
        if self.thread is not None:
            self.thread.join(timeout=2)
        with self.lock:
            if self.width:
                self.stream.write("\r" + " " * self.width + "\r")
                self.stream.flush()
                self.width = 0

    def _tick(self) -> None:
        # Elapsed time moves while a long probe sends no news.
        while not self.stopped.wait(REDRAW_SECONDS):
            self.draw()
