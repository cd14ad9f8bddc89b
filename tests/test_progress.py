"""Progress bars: timed redraws on a terminal, a few plain lines in a log file (interlat/progress.py)."""

import fcntl
import io
import os
import select
import struct
import termios
import time

from interlat.models import plan_conversations, pretrain
from interlat.progress import ENV_INTERVAL, progress
from tests.test_models import RECORDS, setup


def test_a_log_file_gets_a_few_plain_lines_not_one_redraw_per_step(monkeypatch):
    monkeypatch.setenv(ENV_INTERVAL, "0.2")
    log = io.StringIO()  # not a terminal, like Snakemake's log: file
    bar = progress(total=3000, desc="train interlat", stream=log)
    for step in range(3000):  # about 0.6 s: 3 to 4 timed lines plus the first and the last
        time.sleep(0.0002)
        bar.update(1)
        bar.set_postfix(loss=f"{1 / (step + 1):.3f}")  # tqdm's default refresh=True redrew every step
    bar.close()
    text = log.getvalue()
    lines = text.splitlines()
    assert "\r" not in text and "\x1b" not in text
    assert 2 <= len(lines) <= 12, lines
    assert lines[0].startswith("train interlat:   0%") and "3000/3000" in lines[-1]
    assert "loss=" in lines[-1] and all(line.isascii() for line in lines)


def test_a_terminal_gets_a_redrawn_bar():
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a 100-column terminal
    with os.fdopen(slave, "w") as tty:
        assert tty.isatty()
        for _ in progress(range(50), desc="chunks", stream=tty):
            pass
        tty.flush()
        text = ""
        while select.select([master], [], [], 0.5)[0]:
            text += os.read(master, 65536).decode()
    os.close(master)
    assert "\r" in text and "50/50" in text


def test_pretraining_log_holds_a_few_progress_lines(capfd):
    model, tok = setup()
    losses = pretrain(model, tok, plan_conversations(RECORDS, "math"), steps=60, batch_size=4, lr=3e-3, seed=0)
    assert len(losses) == 60
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("pretrain")]
    assert "\r" not in err
    assert 2 <= len(lines) <= 4, lines  # start, (a 30-second tick at most), end; not 60 redraws
    assert "60/60" in lines[-1] and "loss=" in lines[-1]
