"""Typed configuration values: what a task declares and what one trial runs.

These are the contract between the spec parser (YAML → these models), the runner (which executes
a :class:`Trial`) and the result store. All models are frozen and reject unknown fields, so a typo
in YAML is an error rather than a silently ignored setting.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, model_validator


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DataConfig(_Frozen):
    """Which registered task loader produces the data, and its parameters."""

    generator: str
    params: dict[str, Any] = Field(default_factory=dict)


#: The model fields that only one architecture uses.
MODEL_KIND_FIELDS = {"mlp": ("width", "depth"),
                     "cnn": ("channels", "kernel_size", "stride", "padding", "pool",
                             "global_pool", "head")}


class ModelConfig(_Frozen):
    """Architecture of the trained network (input/output sizes come from the data).

    ``kind: mlp`` uses ``width`` and ``depth`` (:class:`ntkbench.models.MLP`); ``kind: cnn``
    uses ``channels``, ``kernel_size``, ``stride``, ``padding``, ``pool``, ``global_pool`` and
    ``head`` (:class:`ntkbench.models.CNN`) and needs a task whose data declare an image
    ``input_shape``. The other fields apply to both.
    """

    kind: Literal["mlp", "cnn"] = "mlp"
    width: PositiveInt = 256
    depth: int = Field(2, ge=0)
    channels: tuple[PositiveInt, ...] = Field((16, 32), min_length=1)
    kernel_size: PositiveInt = 3
    stride: PositiveInt = 1
    padding: int | None = Field(None, ge=0)
    pool: PositiveInt = 1
    global_pool: bool = False
    head: tuple[PositiveInt, ...] = ()
    activation: Literal["relu", "tanh", "erf", "gelu", "sin", "linear"] = "relu"
    parameterization: Literal["standard", "ntk"] = "standard"
    w_std: PositiveFloat = 1.0
    b_std: float = Field(1.0, ge=0)
    bias: bool = True

    @model_validator(mode="after")
    def _fields_of_the_other_kind(self) -> ModelConfig:
        # Task files and suites are merged as whole dumps, so "set" means "not the default".
        other = MODEL_KIND_FIELDS["cnn" if self.kind == "mlp" else "mlp"]
        for name in other:
            if getattr(self, name) != type(self).model_fields[name].default:
                raise ValueError(
                    f"{name} applies to kind: {'cnn' if self.kind == 'mlp' else 'mlp'}, "
                    f"not to kind: {self.kind}"
                    + ("; a CNN's dense layers are set by head: [widths]"
                       if self.kind == "cnn" else ""))
        return self

    def dump(self) -> dict[str, Any]:
        """The fields as JSON values, without those of the other kind (a CNN has no
        ``width``): what records and trial hashes carry."""
        other = MODEL_KIND_FIELDS["cnn" if self.kind == "mlp" else "mlp"]
        return self.model_dump(mode="json", exclude=set(other))


class TrainingConfig(_Frozen):
    """Optimisation. ``gd`` is full-batch gradient descent (the NTK setting).

    The MSE objective is ``L = 1/(2n) Σ_i ‖f(x_i) − y_i‖²``; cross-entropy is the mean over
    samples. ``batch_size`` applies to ``sgd`` and ``adam`` (``None`` = full batch).
    A trial whose loss becomes NaN/inf or exceeds ``diverge_factor`` × the initial loss stops
    with status ``diverged``.

    ``tv_weight > 0`` adds ``tv_weight · TV(f(grid))`` to the objective for image tasks: the
    smoothed total variation (:func:`ntkbench.backends.training.total_variation`) of the
    network's prediction of the full image, every pixel, not only the training ones. The
    logged training loss stays the data term.
    """

    optimizer: Literal["gd", "sgd", "adam"] = "gd"
    lr: PositiveFloat = 0.1
    steps: PositiveInt = 1000
    batch_size: PositiveInt | None = None
    momentum: float = Field(0.0, ge=0, lt=1)
    loss: Literal["mse", "cross_entropy"] = "mse"
    dtype: Literal["float32", "float64"] = "float32"
    diverge_factor: float = Field(1e4, gt=1)
    tv_weight: float = Field(0.0, ge=0)


class MeasureConfig(_Frozen):
    """What is measured during a trial and how often.

    ``checkpoints`` log-spaced steps record train loss and the test metric; the empirical NTK on
    (at most ``ntk_max_n`` of) the training inputs is measured at ``ntk_checkpoints`` log-spaced
    steps, always including step 0 and the last step.

    ``linearized`` compares the network at every checkpoint with the outputs its linearization
    predicts (full-batch GD on MSE only; needs the NTK on all training inputs, so it is skipped
    above ``linearized_max_n`` of them). ``analytic`` measures the distance of the NTK at init
    from the infinite-width kernel with the same per-layer weight variances.
    """

    checkpoints: int = Field(25, ge=2)
    ntk_checkpoints: int = Field(4, ge=2)
    ntk_max_n: PositiveInt = 512
    linearized: bool = True
    linearized_max_n: PositiveInt = 2048
    analytic: bool = True


class TaskConfig(_Frozen):
    """A task family as declared in ``tasks/<name>.yaml``."""

    name: str
    description: str = ""
    data: DataConfig
    model: ModelConfig = ModelConfig()
    training: TrainingConfig = TrainingConfig()
    measure: MeasureConfig = MeasureConfig()
    metric: str = "test_mse"


class InitializerConfig(_Frozen):
    """An initializer as used by a trial: registered ``name`` or a plugin ``source``."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    source: str | None = None

    @property
    def label(self) -> str:
        """``name(k=v, ...)``: how the initializer appears on the leaderboard."""
        if not self.params:
            return self.name
        inner = ", ".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return f"{self.name}({inner})"


LABEL_FIELDS = {"suite", "sweep", "base_dir"}  # not part of a trial's identity


class Trial(_Frozen):
    """One cell of the grid: everything needed to run and reproduce one training run.

    ``trial_hash`` covers the computation only (task, data, model, training, measurement,
    initializer with a digest of a plugin's source, backend, device, seed and the measurement
    version), not labels such as the suite name or where a plugin file was found, nor the
    package version: see :mod:`ntkbench.identity` for the rule.
    """

    suite: str
    task: str
    data: DataConfig
    model: ModelConfig
    training: TrainingConfig
    measure: MeasureConfig = MeasureConfig()
    metric: str = "test_mse"
    initializer: InitializerConfig
    backend: str = "torch"
    device: str = "cpu"
    seed: int = 0
    sweep: dict[str, Any] = Field(default_factory=dict)
    base_dir: str | None = None  # directory that relative plugin sources resolve against

    @cached_property
    def trial_hash(self) -> str:
        from ntkbench.identity import trial_hash

        return trial_hash(self)

    def __hash__(self) -> int:
        return hash(self.trial_hash)

    @property
    def sweep_label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in sorted(self.sweep.items()))

    @property
    def source_dir(self) -> Path | None:
        return Path(self.base_dir) if self.base_dir else None

    def summary(self) -> str:
        """One line for ``--dry-run`` and progress messages."""
        parts = [self.task, self.initializer.label, self.backend, f"seed={self.seed}"]
        if self.sweep:
            parts.append(self.sweep_label)
        return " | ".join(parts)
