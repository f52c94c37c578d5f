"""What makes two timing rows the same configuration: one frozen value of every field that
changes what is measured.

Rows carry each field as a column; :meth:`ConfigIdentity.from_row` reads those columns (with
the defaults older folders left implicit), so ``compare``, ``merge``, scaling, plots and the
report match and group rows without parsing key strings. Two rows pair only when every field is
equal: a compiled-step row never meets an API-step row, nor whole-network training a head-only
one.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from castbench import backbones
from castbench.errors import UsageError

# What a row from before a field existed measured: the defaults castbench has always used.
_IMPLICIT = {
    "head": "gap",
    "weights": "none",
    "trainable": "all",
    "precision": "float32",
    "jit_compile": None,
    "step": "compiled",
    "runtime": "keras",
    "threads": None,
    "strategy": "default",
}


# Groups of fields that differ together: another framework runs another runtime, with its own
# step and its own notion of compiling.
ALIASES = {"framework": ("runtime", "step", "jit_compile")}


def _jit(value: Any) -> bool | None:
    """``jit_compile`` as written to JSON (bool / None) or to CSV (text)."""
    if isinstance(value, str):
        return {"true": True, "false": False}.get(value.strip().lower())
    return None if value is None else bool(value)


def _canonical(name: str) -> str:
    """The registry's spelling of a backbone ('mobilenetv2' -> 'MobileNetV2'); a name the
    registry does not hold (a peer's) as written."""
    try:
        return backbones.get(name).name
    except UsageError:
        return name


def _whole(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True, order=True)
class ConfigIdentity:
    """Every field that changes what a timing row measures."""

    backbone: str
    input_size: int
    batch_size: int
    mode: str
    precision: str = "float32"
    head: str = "gap"
    weights: str = "none"
    trainable: str = "all"
    jit_compile: bool | None = None
    step: str = "compiled"
    runtime: str = "keras"
    threads: int | None = None
    strategy: str = "default"
    replicas: int = 1

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ConfigIdentity:
        """The identity of a results row (timing.json, timing.csv or pytest-benchmark)."""

        def field_value(name: str) -> Any:
            value = row.get(name)
            return _IMPLICIT[name] if value is None or value == "" else value

        strategy = field_value("strategy")
        runtime = field_value("runtime")
        return cls(
            backbone=_canonical(str(row["backbone"])),
            input_size=int(row["input_size"]),
            batch_size=int(row["batch_size"]),
            mode=str(row["mode"]),
            precision=str(field_value("precision")),
            head=str(field_value("head")),
            weights=str(field_value("weights")),
            trainable=str(field_value("trainable")),
            jit_compile=_jit(row.get("jit_compile")),
            # a serving runtime has one step kind: its session's run call
            step="runtime" if runtime != "keras" else str(field_value("step")),
            runtime=str(runtime),
            threads=_whole(row.get("threads")),
            strategy=str(strategy),
            # one replica by definition outside tf.distribute; inside it, what ran
            replicas=1 if strategy == "default" else (_whole(row.get("replicas")) or 1),
        )

    def without(self, names: tuple[str, ...]) -> ConfigIdentity:
        """The identity with ``names`` blanked, to match rows that differ in them on purpose.
        An unknown field name is a usage error."""
        names = tuple(n for name in names for n in ALIASES.get(name, (name,)))
        known = {f.name for f in fields(self)}
        unknown = [name for name in names if name not in known]
        if unknown:
            raise UsageError(f"unknown identity field(s) {', '.join(unknown)}; choose from: "
                             f"{', '.join(sorted(known | set(ALIASES)))}")  # fmt: skip
        return replace(self, **dict.fromkeys(names)) if names else self

    def series(self) -> ConfigIdentity:
        """The identity with the batch size left out: one curve of a time-versus-batch plot."""
        return replace(self, batch_size=0)

    def differences(self) -> dict[str, Any]:
        """The fields that differ from castbench's defaults (beyond the four every row names)."""
        defaults = ConfigIdentity(self.backbone, self.input_size, self.batch_size, self.mode)
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if getattr(self, f.name) != getattr(defaults, f.name)
        }

    def variant(self, with_precision: bool = True) -> str:
        """The non-default fields, as words: '' for the default configuration."""
        words = []
        for name, value in self.differences().items():
            if value is None and name != "jit_compile":  # a field left out on purpose
                continue
            if name == "precision":
                if with_precision:
                    words.append(str(value))
            elif name == "jit_compile":
                words.append("jit" if value else "no-jit")
            elif name == "runtime":
                words.append(value)
            elif name == "step" and self.runtime == "keras":
                words.append(f"{value} step")
            elif name == "threads":
                words.append(f"{value} threads")
            elif name == "replicas":
                words.append(f"x{value}")
            elif name != "step":
                words.append(f"{name} {value}")
        return " ".join(words)

    @property
    def label(self) -> str:
        """A readable name that tells this configuration from any other."""
        base = (
            f"{self.backbone} {self.input_size}px bs {self.batch_size} {self.mode} {self.precision}"
        )
        variant = self.variant(with_precision=False)  # the base names it
        return f"{base} {variant}" if variant else base
