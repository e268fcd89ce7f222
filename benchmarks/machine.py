"""What the benchmark ran on, and how busy the machine was meanwhile.

Other people's processes share this machine, so every timing comes with the CPU time the rest of
the machine used during it, measured from /proc/stat minus this process and its children.
"""

from __future__ import annotations

import os
import platform
import time
from importlib import metadata


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo ("unknown" where there is none)."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def describe() -> dict[str, object]:
    """CPU, cores, memory and the versions that matter for the numbers."""
    import tensorflow as tf

    with open("/proc/meminfo") as meminfo:
        total_kib = int(meminfo.readline().split()[1])
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "gpus": len(tf.config.list_physical_devices("GPU")),
        "memory_gib": round(total_kib / 1024**2, 1),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": _version("keras"),
        "alibi": _version("alibi"),
        "numpy": _version("numpy"),
        "ig_plugin": _version("ig_plugin"),
    }


def _busy_seconds() -> float:
    """CPU seconds busy since boot: all processes (user, nice, system, irq, softirq) and steal.

    Steal is time the hypervisor gave this virtual machine's CPUs to someone else: on a shared
    cloud machine it slows a benchmark as much as a process here would.
    """
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


class LoadMeter:
    """Cores kept busy by other processes between :meth:`start` and :meth:`stop`.

    The same number as ``top`` shows for everything else, steal included: 0.0 is an idle
    machine, 2.0 means others took both cores of a two-core machine. Children count as this
    process, but only once they have been waited for (``subprocess.run`` does).
    """

    def __init__(self) -> None:
        self.start()

    def start(self) -> None:
        self._wall, self._busy, self._own = time.monotonic(), _busy_seconds(), _own_seconds()

    def stop(self) -> float:
        """Average number of cores other processes (or the hypervisor) took since :meth:`start`."""
        wall = time.monotonic() - self._wall
        others = (_busy_seconds() - self._busy) - (_own_seconds() - self._own)
        return max(others, 0.0) / max(wall, 1e-9)
