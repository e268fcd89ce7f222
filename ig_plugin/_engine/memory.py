"""How many path points a gradient batch holds: a fixed count, or as many as a memory budget fits.

``internal_batch_size="auto"`` chooses the chunk from a budget in bytes (``memory_budget``, or by
default :data:`DEFAULT_BUDGET_FRACTION` of the memory available to the device) and from the
memory one path point costs, estimated from the model before any gradient runs:

- **activations**: every floating-point tensor of the model's traced forward pass, per row (the
  batch axis left out), summed: the layers' outputs and every intermediate tensor of their
  calls, so more than the tensors a backward pass keeps;
- a gradient batch holds the activations of the forward pass and, while a backward pass runs,
  gradients of about the same size: :data:`BACKWARD_FACTOR` times the activations;
- plus, per target, the gradient of the point itself, and the point, its start, its end and its
  factor: ``(K + 3)`` times the size of a point;
- all times :data:`SAFETY_FACTOR`, for what the estimate leaves out (the allocator's rounding,
  temporary buffers of fused kernels).

The points per batch are the budget over that cost, at most :data:`MAX_AUTO_POINTS`, and on a
CPU at most as many as keep the batch's activations within :data:`CPU_BATCH_ACTIVATION_BYTES`
(larger batches run slower there, not faster).

The estimate reads the traced graph, so it is the same on every run of the same model and input
shapes, and costs no gradient. Nothing of a result depends on the chunk size (the compiled loop
sums each sample in float64 across chunks), so "auto" changes how fast and how much memory, never
the attributions beyond float rounding.

With a fixed ``internal_batch_size`` and K targets, a chunk holds as many points as fit in the
memory of ``internal_batch_size`` one-target points (the activations are shared by the K targets;
only their gradients multiply).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import tensorflow as tf

#: The part of the memory available to the device that "auto" uses when no ``memory_budget``
#: is given: what the rest of the process (the model, its inputs and attributions, other
#: threads' explains) can live beside.
DEFAULT_BUDGET_FRACTION = 0.25

#: With a GPU and no ``memory_budget``: TensorFlow reports how much of a GPU it uses, not how
#: much the GPU has, so "auto" assumes 1 GiB, which every current GPU has beside a model.
GPU_DEFAULT_BUDGET = 1 << 30

#: A backward pass holds gradients about as large as the activations it runs through.
BACKWARD_FACTOR = 2.0

#: Headroom over the estimate (allocator rounding, kernels' temporary buffers).
SAFETY_FACTOR = 1.5

#: The most points per gradient batch that "auto" chooses: past a few thousand points a larger
#: batch runs no faster on a CPU, and only holds more memory.
MAX_AUTO_POINTS = 4096

#: On a CPU, "auto" also keeps a gradient batch's activations within this many bytes: in a sweep
#: of fixed sizes (``benchmarks/batch_size.py``, 2 cores) the small CNN was fastest at 128 to
#: 256 points (20 to 40 MiB of activations) and 25 % slower at 4,096, the text model fastest at
#: 256; larger batches than this spill out of the caches and run slower, not faster. A GPU has
#: no such cap: it runs a large batch no slower per point.
CPU_BATCH_ACTIVATION_BYTES = 64 * 1024 * 1024


def has_gpu() -> bool:
    return bool(tf.config.list_logical_devices("GPU"))


def available_bytes() -> int:
    """The memory available to the explain: with a GPU, :data:`GPU_DEFAULT_BUDGET` divided by
    :data:`DEFAULT_BUDGET_FRACTION` (so the default budget is that budget); otherwise the host's
    ``MemAvailable`` (``/proc/meminfo``), or, where there is none, ``os.sysconf``'s available
    physical pages."""
    if has_gpu():
        return int(GPU_DEFAULT_BUDGET / DEFAULT_BUDGET_FRACTION)
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def default_budget() -> int:
    """The budget of "auto" when no ``memory_budget`` is given, in bytes."""
    return int(available_bytes() * DEFAULT_BUDGET_FRACTION)


def row_bytes(graph: tf.Graph) -> int:
    """Bytes of every floating-point tensor of ``graph`` per row: tensors whose first axis is
    the (open) batch axis, with every other axis known."""
    total = 0
    for operation in graph.get_operations():
        for tensor in operation.outputs:
            shape = tensor.shape
            if not tensor.dtype.is_floating or shape.rank is None or shape.rank == 0:
                continue
            dims = shape.as_list()
            if dims[0] is not None or any(d is None for d in dims[1:]):
                continue  # weights and constants (no batch axis), or sizes unknown
            total += math.prod(dims[1:]) * tensor.dtype.size
    return total


@dataclass(frozen=True)
class PointCost:
    """What one path point costs in memory, in bytes (see the module docstring).

    Attributes
    ----------
    activation_bytes
        Every floating-point tensor of one row's forward pass.
    point_bytes
        One path point: one row of every attributed tensor.
    """

    activation_bytes: int
    point_bytes: int

    def gradient_bytes(self, n_targets: int = 1) -> int:
        """One point of a gradient batch with ``n_targets`` targets."""
        held = BACKWARD_FACTOR * self.activation_bytes + (n_targets + 3) * self.point_bytes
        return max(1, math.ceil(SAFETY_FACTOR * held))

    def forward_bytes(self) -> int:
        """One row of a forward pass (no gradient)."""
        return max(1, math.ceil(SAFETY_FACTOR * (self.activation_bytes + self.point_bytes)))


@dataclass(frozen=True)
class BatchSize:
    """``internal_batch_size`` and ``memory_budget`` as the passes use them.

    Attributes
    ----------
    points
        A fixed count of one-target path points per gradient batch (and rows per forward pass),
        or None for "auto".
    memory_budget
        With "auto": the budget in bytes, or None for :func:`default_budget`.
    """

    points: int | None
    memory_budget: int | None = None

    @property
    def is_auto(self) -> bool:
        return self.points is None

    def budget(self) -> int:
        """The budget in bytes ("auto" only)."""
        return default_budget() if self.memory_budget is None else self.memory_budget

    def gradient_points(self, cost: PointCost | None, n_targets: int = 1) -> int:
        """Path points per gradient batch, each with ``n_targets`` targets.

        Raises
        ------
        ValueError
            With "auto", the budget holds not even one point.
        """
        if self.points is not None:
            if n_targets == 1 or cost is None:
                return self.points
            # As many K-target points as the memory of `points` one-target points holds.
            scale = cost.gradient_bytes(1) / cost.gradient_bytes(n_targets)
            return max(1, int(self.points * scale))
        assert cost is not None  # "auto" always measures the cost first
        what = "path point" if n_targets == 1 else f"path point with {n_targets} targets"
        fitting = self._fitting(cost.gradient_bytes(n_targets), what)
        if has_gpu():
            return fitting
        fast = CPU_BATCH_ACTIVATION_BYTES // max(1, cost.activation_bytes)
        return max(1, min(fitting, fast))

    def forward_rows(self, cost: PointCost | None) -> int:
        """Rows per forward pass (X, the baselines, the path starts)."""
        if self.points is not None:
            return self.points
        assert cost is not None
        self.gradient_points(cost)  # a budget that holds no path point is an error at once
        return self.scoring_rows(cost)

    def scoring_rows(self, cost: PointCost | None, fixed_name: str = "internal_batch_size") -> int:
        """Rows per forward pass when no gradient batch follows (the evaluation metrics score
        perturbed inputs this way); ``fixed_name`` is the argument that sets a fixed size, for
        the error's message."""
        if self.points is not None:
            return self.points
        assert cost is not None
        return self._fitting(cost.forward_bytes(), "row of a forward pass", fixed_name)

    def _fitting(self, each: int, what: str, fixed_name: str = "internal_batch_size") -> int:
        budget = self.budget()
        if budget < each:
            raise ValueError(
                f"`memory_budget` is {budget:,} bytes, less than one {what} costs (about "
                f"{each:,} bytes, estimated from the model's activations): give a larger "
                f"memory_budget, or a fixed {fixed_name}."
            )
        return min(MAX_AUTO_POINTS, budget // each)
