"""Where a job runs: the machine's name for captions (device, process group and dtype choice grow here)."""

import platform


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one), for captions."""
    try:
        with open("/proc/cpuinfo") as f:
            names = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")]
    except OSError:
        names = []
    return names[0] if names else platform.processor() or "cpu"
