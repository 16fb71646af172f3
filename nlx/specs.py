"""Experiment specifications: pydantic v2 models, strict (unknown keys are errors).

A `RunSpec` is one fully resolved run (one grid cell, one seed); it is what gets stored with
every run and what `nlx rerun` replays. An `ExperimentSpec` is an entry of `experiments.yaml`:
a base spec plus an optional `grid` of dotted keys and a list of `seeds`.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from nlx.data.noise import ALL_NOISE_TYPES, file_noise_label, noise_label
from nlx.errors import NestedFieldErrors


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class TrustedSpec(Strict):
    """A small set with true labels carved out of the training pool before noise (for L2R, IEG):
    `per_class` samples of every class, or a stratified `fraction` of the pool. Give one."""

    per_class: int | None = Field(None, ge=1, description="trusted samples per class")
    fraction: float | None = Field(None, gt=0, lt=1, description="share of the training pool, stratified by class")

    @model_validator(mode="after")
    def _exactly_one(self) -> "TrustedSpec":
        if (self.per_class is None) == (self.fraction is None):
            raise ValueError("give exactly one of per_class or fraction")
        return self


class DataSpec(Strict):
    name: str = Field("digits", description="registered dataset name (see `nlx datasets`)")
    root: str | None = Field(None, description="folder of disk datasets (mnist, cifar10, cifar100); None = $NLX_DATA, else ./data")
    path: str | None = Field(None, validate_default=True, description="the .npz file of the npz dataset")
    views: list[int | str] | None = Field(None, description="subset of views by index or name; None = all")
    standardize: bool | None = Field(
        None, description="standardise each view with training-split statistics (per feature, or per channel for images); None = feature views only"
    )
    val: Literal["noisy", "clean", "trusted"] = Field(
        "noisy", description="validation labels: carved from the noisy training set, clean, or the trusted set itself"
    )
    val_fraction: float = Field(0.1, gt=0, lt=1, description="share of the training pool held out for validation")
    test_fraction: float = Field(0.2, gt=0, lt=1, description="share held out for test when the dataset has no given test split")
    augment: str = Field("none", description="augmentation for methods that use one: none | crop_flip | gaussian | dropout (see nlx.augment)")
    trusted: TrustedSpec | None = Field(None, description="clean set carved out before noise; the only clean data a method may use")

    @field_validator("name")
    @classmethod
    def _known_dataset(cls, name: str) -> str:
        from nlx.data.registry import dataset_names

        if name not in dataset_names():
            raise ValueError(f"unknown dataset {name!r}; known: {', '.join(dataset_names())}")
        return name

    @property
    def label(self) -> str:
        """How runs name their data in listings and tables: the dataset, the npz file's stem, and
        a view subset, e.g. 'mfeat[fou,mor]' or 'npz:reuters[0,1]', so that different data never
        pool into one table cell."""
        from pathlib import PurePath

        label = f"npz:{PurePath(self.path).stem}" if self.name == "npz" and self.path else self.name
        if self.views is not None:
            label += "[" + ",".join(str(v) for v in self.views) + "]"
        return label[:100]

    @field_validator("path")
    @classmethod
    def _path_for_npz_only(cls, path: str | None, info: ValidationInfo) -> str | None:
        name = info.data.get("name")
        if name == "npz" and not path:
            raise ValueError("required for the npz dataset (an .npz file)")
        if name not in (None, "npz") and path:
            raise ValueError(f"only the npz dataset reads a file, not {name}")
        return path

    @field_validator("augment")
    @classmethod
    def _known_augmentation(cls, name: str) -> str:
        from nlx.augment import augmentation_names

        if name not in augmentation_names():
            raise ValueError(f"unknown augmentation {name!r}; known: {', '.join(augmentation_names())}")
        return name

    @model_validator(mode="after")
    def _trusted_validation_needs_a_trusted_set(self) -> "DataSpec":
        if self.val == "trusted" and self.trusted is None:
            raise ValueError("val: trusted needs a trusted set (data.trusted.per_class or data.trusted.fraction)")
        return self


class NoiseSpec(Strict):
    type: Literal[ALL_NOISE_TYPES + ("file",)] = Field("sym", description="none | sym | usym | asym | classmap | inst (instance-dependent) | file (labels read from noise.path)")  # type: ignore[valid-type]
    rate: float = Field(0.0, ge=0, lt=1, description="target noise rate r in [0, 1); unused (0) for file noise")
    seed: int | None = Field(None, description="noise seed; None = the run's seed")
    class_map: dict[int, int] | None = Field(None, description="classmap noise: true class -> noisy class; None = the dataset's default map")
    path: str | None = Field(None, validate_default=True, description="file noise: a .npy label vector or a torch-saved dict of them (CIFAR-10N/100N)")
    key: str | None = Field(None, description="file noise: which entry of a dict file, e.g. worse_label")

    @field_validator("rate")
    @classmethod
    def _no_rate_for_file(cls, rate: float, info: ValidationInfo) -> float:
        if info.data.get("type") == "file" and rate:
            raise ValueError("must be 0 for noise type file (the file gives the noisy labels)")
        return rate

    @field_validator("path", "key")
    @classmethod
    def _file_fields(cls, value: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("type")
        if kind == "file" and info.field_name == "path" and not value:
            raise ValueError("required for noise type file")
        if kind not in (None, "file") and value:
            raise ValueError(f"only used by noise type file, not {kind}")
        return value

    @property
    def label(self) -> str:
        """Short name as used on the command line, e.g. 'sym0.4'; any rate-0 noise is 'none';
        file noise is 'file:' and the dict key or the file's stem, e.g. 'file:worse_label'."""
        if self.type == "file":
            return file_noise_label(self.path, self.key)[:40]
        return noise_label(self.type, self.rate) if self.rate > 0 else "none"


class ModelSpec(Strict):
    arch: str = Field("mlp", description="network name: mlp | lenet | cnn1d | preact_resnet18 | multiview")
    hidden: list[int] = Field([256, 256], description="hidden widths of MLP layers (also of multiview's mlp encoders)")
    dropout: float = Field(0.0, ge=0, lt=1)
    encoder: str | list[str] = Field(
        "mlp", description="multiview: each view's encoder (mlp | lenet | cnn1d | preact_resnet18), or a list of one per view"
    )
    fusion: Literal["concat", "sum", "lowrank"] = Field("concat", description="multiview: how the views' embeddings are fused")
    rank: int = Field(4, ge=1, description="multiview with lowrank fusion: rank of the per-view factors")
    embed: int = Field(128, ge=1, description="multiview with sum or lowrank fusion: width of the fused embedding")

    def unused_fields(self) -> set[str]:
        """Multiview settings this network ignores. Left out of the spec's hash, so that a run of
        another network hashes as it did before they existed (`init_from: auto` still finds its
        CE run, benchmarks still reuse theirs) and a setting that changes nothing does not split
        runs apart. (`hidden` predates them and is hashed whatever the network.)"""
        if self.arch != "multiview":
            return {"encoder", "fusion", "rank", "embed"}
        return {"concat": {"rank", "embed"}, "sum": {"rank"}, "lowrank": set()}[self.fusion]

    @property
    def label(self) -> str:
        """The network as reports name it: the arch, and for multiview its fusion (and encoders
        unless MLPs), e.g. 'multiview-lowrank4', 'multiview[cnn1d]-concat'."""
        if self.arch != "multiview":
            return self.arch
        encoders = self.encoder if isinstance(self.encoder, str) else ",".join(self.encoder)
        fusion = f"lowrank{self.rank}" if self.fusion == "lowrank" else self.fusion
        return "multiview" + ("" if encoders == "mlp" else f"[{encoders}]") + f"-{fusion}"

    @field_validator("arch")
    @classmethod
    def _known_arch(cls, arch: str) -> str:
        from nlx.models import model_names

        if arch not in model_names():
            raise ValueError(f"unknown network {arch!r}; known: {', '.join(model_names())}")
        return arch

    @field_validator("encoder")
    @classmethod
    def _known_encoders(cls, encoder: str | list[str]) -> str | list[str]:
        from nlx.models import encoder_names

        names = [encoder] if isinstance(encoder, str) else encoder
        if not names:
            raise ValueError("give an encoder name, or one per view")
        for name in names:
            if name not in encoder_names():
                raise ValueError(f"unknown encoder {name!r}; known: {', '.join(encoder_names())}")
        return encoder

    @field_validator("hidden")
    @classmethod
    def _positive_widths(cls, hidden: list[int]) -> list[int]:
        if any(width < 1 for width in hidden):
            raise ValueError("hidden widths must be positive")
        return hidden


class MethodSpec(Strict):
    name: str = Field("ce", description="registered method name (see `nlx methods`)")
    params: dict[str, Any] = Field(default_factory=dict, description="the method's hyperparameters")

    @model_validator(mode="after")
    def _validate_params(self) -> "MethodSpec":
        # Each method owns its hyperparameters: validate them with its Params model and store
        # the result with defaults filled in, so the saved spec says exactly what ran.
        from nlx.methods import get_method, method_names

        if self.name not in method_names():
            raise ValueError(f"unknown method {self.name!r}; known: {', '.join(method_names())}")
        try:
            params = get_method(self.name).Params.model_validate(self.params)
        except ValidationError as error:
            raise NestedFieldErrors(error, "params") from None
        self.__dict__["params"] = params.model_dump()
        return self


class TrainSpec(Strict):
    optimizer: Literal["sgd", "adam", "adamw"] = "sgd"
    lr: float = Field(0.05, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(5e-4, ge=0)
    scheduler: Literal["none", "cosine", "step"] = "none"
    step_size: int = Field(10, ge=1, description="epochs between lr decays for the step scheduler")
    gamma: float = Field(0.1, gt=0, le=1, description="lr decay factor for the step scheduler")
    warmup_epochs: int = Field(0, ge=0, description="linear learning-rate warm-up over the first N epochs, then the scheduler (IEG's official cosine_warmup)")
    epochs: int = Field(20, ge=1)
    batch_size: int = Field(64, ge=1)
    eval_batch_size: int = Field(1024, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: bool = Field(False, description="mixed precision (CUDA only)")
    compile: bool = Field(False, description="torch.compile the networks (in place: checkpoints keep their keys); the first steps pay for compilation")
    keep_checkpoints: int = Field(
        0, ge=0, description="also keep the state of every N-th epoch (0, N, 2N, ...) as checkpoint 'epochK', e.g. for `nlx estimate-t`; 0 = none"
    )
    checkpoint_every_s: float = Field(
        60.0, ge=0, description="seconds between `last` checkpoints (0 = every epoch); the final epoch always writes one"
    )


# (section, field) -> the value that means "as before the field existed"; see RunSpec.content.
ADDED_FIELDS: dict[tuple[str, str], Any] = {
    ("data", "root"): None, ("data", "path"): None, ("data", "standardize"): None, ("data", "trusted"): None,
    ("noise", "path"): None, ("noise", "key"): None,
    ("train", "compile"): False, ("train", "warmup_epochs"): 0,
}


class RunSpec(Strict):
    """One run: everything that determines its result."""

    experiment: str = "adhoc"
    data: DataSpec = Field(default_factory=DataSpec)
    noise: NoiseSpec = Field(default_factory=NoiseSpec)
    model: ModelSpec = Field(default_factory=ModelSpec)
    method: MethodSpec = Field(default_factory=MethodSpec)
    train: TrainSpec = Field(default_factory=TrainSpec)
    seed: int = 0

    def content(self) -> dict[str, Any]:
        """The spec minus its experiment name and the multiview settings its network ignores:
        what makes two runs the same run."""
        content = self.model_dump(mode="json", exclude={"experiment": True, "model": self.model.unused_fields()})
        # Fields added after runs were stored are left out while they hold their neutral value,
        # so every spec stored before they existed hashes as it did (run reuse, seed grouping).
        for (section, name), neutral in ADDED_FIELDS.items():
            if content[section].get(name, neutral) == neutral:
                content[section].pop(name, None)
        return content

    def spec_hash(self) -> str:
        return _hash(self.content())

    def config_hash(self) -> str:
        """Hash without the seed: runs that differ only by seed share it."""
        content = self.content()
        content.pop("seed")
        return _hash(content)


class _RangeDistribution(Strict):
    """A numeric range low < high; `nlx validate` tries both ends."""

    def _check_order(self) -> None:
        if self.low >= self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")

    def values(self) -> list[Any]:
        return [self.low, self.high]


class FloatDistribution(_RangeDistribution):
    type: Literal["float"]
    low: float
    high: float
    log: bool = Field(False, description="sample log-uniformly (low must be > 0)")
    step: float | None = Field(None, gt=0, description="discretisation step; None = continuous")

    @model_validator(mode="after")
    def _ordered(self) -> "FloatDistribution":
        self._check_order()
        if self.log and self.low <= 0:
            raise ValueError("log scale needs low > 0")
        if self.log and self.step is not None:
            raise ValueError("log and step cannot be combined")
        return self


class IntDistribution(_RangeDistribution):
    type: Literal["int"]
    low: int
    high: int
    step: int = Field(1, ge=1)
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> "IntDistribution":
        self._check_order()
        if self.log and (self.low < 1 or self.step != 1):
            raise ValueError("log scale needs low >= 1 and step 1")
        return self


class CategoricalDistribution(Strict):
    type: Literal["categorical"]
    choices: list[None | bool | int | float | str] = Field(min_length=1, description="scalars, as Optuna stores them")

    def values(self) -> list[Any]:
        return list(self.choices)


Distribution = Annotated[Union[FloatDistribution, IntDistribution, CategoricalDistribution], Field(discriminator="type")]

# Per-run summary fields an objective may name (columns of the runs table).
SUMMARY_FIELDS = ("best_val_acc", "best_val_test_acc", "last_test_acc", "best_val_epoch")


class SamplerSpec(Strict):
    name: Literal["tpe", "random"] = "tpe"
    seed: int | None = Field(0, description="sampler seed; None = unseeded")
    n_startup_trials: int = Field(5, ge=0, description="TPE: random trials before the model is used")


class PrunerSpec(Strict):
    name: Literal["median", "hyperband", "none"] = "median"
    n_startup_trials: int = Field(3, ge=0, description="median: trials that are never pruned")
    n_warmup_steps: int = Field(2, ge=0, description="median: epochs before a trial may be pruned")
    min_resource: int = Field(1, ge=1, description="hyperband: epochs before the first rung")
    reduction_factor: int = Field(3, ge=2, description="hyperband: reduction factor")


class SweepSpec(Strict):
    """An Optuna search over dotted fields of the experiment's base spec."""

    params: dict[str, Distribution] = Field(min_length=1, description="dotted field -> distribution")
    objective: str = Field("best_val_acc", description=f"summary field to optimise: {', '.join(SUMMARY_FIELDS)}")
    direction: Literal["maximize", "minimize"] = "maximize"
    report: str = Field("val/acc", description="per-epoch metric reported to the pruner")
    sampler: SamplerSpec = Field(default_factory=SamplerSpec)
    pruner: PrunerSpec = Field(default_factory=PrunerSpec)

    @field_validator("objective")
    @classmethod
    def _summary_field(cls, objective: str) -> str:
        if objective not in SUMMARY_FIELDS:
            raise ValueError(f"unknown objective {objective!r}; expected one of {', '.join(SUMMARY_FIELDS)}")
        return objective

    @field_validator("params")
    @classmethod
    def _dotted_fields(cls, params: dict[str, Any]) -> dict[str, Any]:
        for key in params:
            if key.split(".")[0] not in ("data", "noise", "model", "method", "train") or "." not in key:
                raise ValueError(f"{key!r}: expected a dotted field such as train.lr or method.params.alpha")
        return params


class ExperimentSpec(Strict):
    """An entry of experiments.yaml: a base spec, a grid over dotted keys, and seeds."""

    description: str = ""
    data: dict[str, Any] = Field(default_factory=dict)
    noise: dict[str, Any] = Field(default_factory=dict)
    model: dict[str, Any] = Field(default_factory=dict)
    method: dict[str, Any] = Field(default_factory=dict)
    train: dict[str, Any] = Field(default_factory=dict)
    grid: dict[str, list[Any]] = Field(default_factory=dict, description="dotted key -> values (or 'key1, key2' -> rows of values set together); runs the Cartesian product")
    seeds: list[int] = Field([0], description="a list of seeds, or a count n meaning seeds 0..n-1")
    sweep: SweepSpec | None = Field(None, description="search space, objective, sampler and pruner for `nlx sweep`")

    @field_validator("seeds", mode="before")
    @classmethod
    def _count_means_range(cls, seeds: Any) -> Any:
        if isinstance(seeds, int) and not isinstance(seeds, bool):
            if seeds < 1:
                raise ValueError("seed count must be at least 1")
            return list(range(seeds))
        return seeds

    @field_validator("grid")
    @classmethod
    def _non_empty_axes(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in grid.items():
            if not values:
                raise ValueError(f"grid axis {key!r} has no values")
            width = len(key.split(","))
            if width > 1 and any(not isinstance(row, list) or len(row) != width for row in values):
                raise ValueError(f"grid axis {key!r} zips {width} keys: each value must be a list of {width}")
        return grid

    def base(self) -> dict[str, Any]:
        return self.model_dump(include={"data", "noise", "model", "method", "train"})


def _hash(content: dict[str, Any]) -> str:
    text = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
