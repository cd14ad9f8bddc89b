"""Progress reporting for long loops (pretraining, collection, training, evaluation chunks).

One helper, `progress(...)`, used by every loop: a tqdm bar on stderr. On a terminal it
redraws at most every `TTY_INTERVAL` seconds; when stderr is a file (Snakemake's `log:`, a
SLURM log, a pipe) it writes a plain ASCII line at most every `PLAIN_INTERVAL` seconds (and one
at the end) instead of carriage-return redraws, so a 1,500-step job leaves a few readable
lines, not 1,500 overwritten ones. `set_postfix` on the bar never forces a redraw (tqdm's
`set_postfix(refresh=True)` default bypassed `mininterval`). `INTERLAT_PROGRESS_INTERVAL`
(seconds) overrides either interval.
"""

import os
import sys
from collections.abc import Iterable

from tqdm import tqdm

TTY_INTERVAL = 1.0
PLAIN_INTERVAL = 30.0
ENV_INTERVAL = "INTERLAT_PROGRESS_INTERVAL"


class _Lines:
    """A file-like stream that turns tqdm's carriage-return redraws into whole lines."""

    def __init__(self, stream):
        self.stream = stream
        self.last = ""

    def write(self, text: str) -> int:
        for line in text.replace("\r", "\n").split("\n"):
            line = line.rstrip()
            if line.strip() and line != self.last:  # close() repeats the final state
                self.stream.write(line + "\n")
                self.last = line
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


class _Bar(tqdm):
    """tqdm whose postfix updates wait for the next timed redraw."""

    def set_postfix(self, ordered_dict=None, refresh=False, **kwargs):
        super().set_postfix(ordered_dict, refresh=refresh, **kwargs)


def is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or not a real file
        return False


def progress(iterable: Iterable | None = None, *, desc: str, total: int | None = None,
             initial: int = 0, disable: bool = False, stream=None) -> tqdm:
    """A progress bar over `iterable` (or updated by hand up to `total`) on `stream` (stderr).

    Use it like tqdm: iterate over it, or call `.update(n)`, `.set_postfix(...)`, `.close()`.
    """
    stream = sys.stderr if stream is None else stream
    terminal = is_terminal(stream)
    interval = float(os.environ.get(ENV_INTERVAL, TTY_INTERVAL if terminal else PLAIN_INTERVAL))
    return _Bar(iterable, desc=desc, total=total, initial=initial, disable=disable,
                file=stream if terminal else _Lines(stream), mininterval=interval,
                maxinterval=max(interval, 10.0), ascii=None if terminal else True,
                dynamic_ncols=terminal)
