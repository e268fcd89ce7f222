"""The benchmark's results as reStructuredText, for the performance page of the docs.

``run.py`` writes ``results/latest.rst`` next to ``results/latest.json``; the docs include it, so
the page always shows the latest run and the machine it ran on. ``python benchmarks/report.py
[results.json]`` renders a saved run again.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def write_report(report: dict[str, Any], output: Path, render: Callable[..., str]) -> None:
    """Write ``report`` as JSON to ``output`` and, rendered, as RST next to it; print the RST."""
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n")
    rst = render(report)
    output.with_suffix(".rst").write_text(rst)
    print(rst)


def measured_on(report: dict[str, Any]) -> str:
    """The sentence under a table whose rows each hold the other processes' ``load``: the CPU,
    its cores, TensorFlow's version and the least and most load."""
    machine = report["machine"]
    loads = [row["load"] for row in report["rows"]]
    return (
        f"Measured on {machine['cpu']} ({machine['cores']} cores), TensorFlow "
        f"{machine['tensorflow']}; other processes kept {min(loads):.2f} to {max(loads):.2f} "
        "cores busy during the timed runs."
    )


def _list_table(title: str, header: list[str], rows: list[list[str]]) -> list[str]:
    lines = [f".. list-table:: {title}", "   :header-rows: 1", ""]
    for row in [header, *rows]:
        lines.append(f"   * - {row[0]}")
        lines.extend(f"     - {cell}" for cell in row[1:])
    return [*lines, ""]


def _speed(report: dict[str, Any]) -> list[str]:
    header = ["workload", "N", "ig_plugin (s)", "alibi (s)", "floor (s)"]
    header += ["ig_plugin / floor", "ig_plugin / alibi", "speed-up over alibi", "targets"]
    rows = []
    for row in report["speed"]:
        times = {kind: row["times"][kind]["median_s"] for kind in ("ig_plugin", "alibi", "floor")}
        met = row["floor_target_met"] and row["alibi_target_met"]
        rows.append(
            [
                # "1. small CNN" would open an enumerated list in a table cell.
                row["title"].replace(".", "\\.", 1),
                f"{row['n_samples']:,}",
                f"{times['ig_plugin']:.3f}",
                f"{times['alibi']:.3f}",
                f"{times['floor']:.3f}",
                f"{row['ig_plugin_over_floor']:.2f}",
                f"{row['ig_plugin_over_alibi']:.2f}",
                f"{row['alibi_over_ig_plugin']:.1f}x",
                f"met (<= {report['settings']['floor_target']}, >= {row['alibi_target']})"
                if met
                else f"missed (<= {report['settings']['floor_target']}, >= {row['alibi_target']})",
            ]
        )
    return _list_table("Speed: medians, seconds per explain", header, rows)


def _memory(report: dict[str, Any]) -> list[str]:
    header = ["explainer", "N", "peak RSS (MiB)", "growth (MiB)"]
    header += ["explanation arrays (MiB)", "growth beyond the arrays (MiB)"]
    rows = [
        [
            row["explainer"],
            f"{row['n_samples']:,}",
            f"{row['peak_mib']:.0f}",
            f"{row['growth_mib']:.0f}",
            f"{row['explanation_arrays_mib']:.1f}",
            f"{row['growth_beyond_arrays_mib']:.0f}",
        ]
        for row in report["memory"]
    ]
    return _list_table("Memory: peak resident memory of explain, workload 2", header, rows)


def render(report: dict[str, Any]) -> str:
    """The run's machine, command and tables, as reStructuredText."""
    machine, settings = report["machine"], report["settings"]
    gpus = machine.get("gpus", 0)
    lines = [
        f"Measured on {machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB, "
        f"{gpus or 'no'} GPU{'s' if gpus > 1 else ''} visible to TensorFlow; Python "
        f"{machine['python']}, TensorFlow {machine['tensorflow']}, Keras "
        f"{machine['keras']}, alibi {machine['alibi']}, numpy {machine['numpy']}. Command: "
        f"``{report['command']}``. Method {settings['method']}, {settings['n_steps']} steps, "
        f"``internal_batch_size={settings['internal_batch_size']}``; medians of "
        f"{settings['repeats']} runs ({settings['alibi_repeats']} for alibi where a run takes "
        f"over {settings['quick_run_s']:g} s). Other processes "
        f"(and the hypervisor) kept {report['other_load_cores']:.2f} cores busy on average during "
        "the run.",
        "",
    ]
    if "speed" in report:
        lines += _speed(report)
    if "memory" in report:
        lines += _memory(report)
    return "\n".join(lines)


def main() -> None:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS / "latest.json"
    print(render(json.loads(source.read_text())))


if __name__ == "__main__":
    main()
