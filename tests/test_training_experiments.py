"""The seed's experiment grids as data, and the resumable runner (with a stand-in trainer)."""

import json
from dataclasses import replace
from pathlib import Path

import pytest

from castbench import backbones, experiments, metrics
from castbench.cli import main
from castbench.errors import UsageError
from castbench.experiments import Settings
from castbench.training import TrainResult


def test_grids_follow_the_seed():
    arch = experiments.plan(experiments.get("architecture"), Settings())
    assert [row.key for row, _ in arch] == [
        "base", "base-bs8", "no-dense", "no-dropout", "default-aug", "aug", "aug-bs8",
    ]  # fmt: skip
    configs = {row.key: config for row, config in arch}
    assert all(
        c.spec.backbone == "EfficientNetB4" and c.spec.head == "dense" for c in configs.values()
    )
    assert configs["base"].batch_size == 4 and configs["base-bs8"].batch_size == 8
    assert configs["no-dense"].spec.head_label == "dense+no-dense"
    assert configs["no-dropout"].spec.head_label == "dense+no-dropout"
    assert configs["default-aug"].augment == "default"

    aug = experiments.plan(experiments.get("augmentation"), Settings(batch=2))
    assert [c.augment for _, c in aug] == list(experiments.AUGMENTATION_VARIANTS)
    assert len(aug) == 11 and {c.batch_size for _, c in aug} == {2}

    native = experiments.plan(experiments.get("backbone"), Settings())
    assert [c.spec.backbone for _, c in native] == backbones.names()
    assert {c.spec.head for _, c in native} == {"gap"}
    sizes = {c.spec.backbone: c.spec.input_size for _, c in native}
    assert sizes["NASNetMobile"] == 224 and sizes["EfficientNetB4"] == 380

    small = experiments.plan(experiments.get("backbone"), Settings(size=40))
    sizes = {c.spec.backbone: c.spec.input_size for _, c in small}
    assert sizes["Xception"] == 71 and sizes["InceptionV3"] == 75 and sizes["VGG16"] == 40

    runs = experiments.plan(experiments.get("threshold"), Settings(runs=3, seed=10))
    assert [c.seed for _, c in runs] == [10, 11, 12]
    assert {c.augment for _, c in runs} == {"no-rotation"}
    assert experiments.get("threshold").thresholds == (0.1, 0.2, 0.3, 0.4, 0.5)


def test_backbone_override_moves_every_row_and_its_label():
    moved = experiments.plan(
        experiments.get("threshold"), Settings(runs=2, size=48, backbone="mobilenetv2")
    )
    assert {c.spec.backbone for _, c in moved} == {"MobileNetV2"}
    assert {c.spec.input_size for _, c in moved} == {48}
    assert all(row.variant.startswith("MobileNetV2 +") for row, _ in moved)
    assert all(row.variant.endswith("Batch Size 4") for row, _ in moved)  # the seed's batch
    arch16 = dict(experiments.plan(experiments.get("architecture"), Settings(batch=16)))
    assert {r.key: r.variant for r in arch16}["aug-bs8"].endswith("+ Batch size 32")
    arch = experiments.plan(experiments.get("architecture"), Settings(backbone="ResNet50"))
    assert arch[0][0].variant == "Base Model (ResNet50)"
    gap = experiments.plan(
        experiments.get("threshold"), Settings(runs=1, head="gap", augment_override="flip")
    )
    assert [(c.spec.head, c.augment) for _, c in gap] == [("gap", "flip")]
    assert gap[0][0].variant.endswith("; run with gap head, augment flip")
    with pytest.raises(UsageError, match="compares augmentations"):
        Settings(augment_override="flip").validate(experiments.get("augmentation"))
    with pytest.raises(UsageError, match="compares heads"):
        Settings(head="gap").validate(experiments.get("architecture"))
    with pytest.raises(UsageError, match="compares all ten"):
        Settings(backbone="ResNet50").validate(experiments.get("backbone"))
    with pytest.raises(UsageError, match="unknown backbone"):
        Settings(backbone="ResNet5").validate(experiments.get("threshold"))


class FakeTrainer:
    """Stands in for castbench.training.train: fixed scores, no TensorFlow."""

    def __init__(self, fail=()):
        self.calls = []
        self.fail = set(fail)

    def __call__(self, config, out_dir, log=print, resume=False):
        key = Path(out_dir).name
        self.calls.append(key)
        self.resumed = resume
        if key in self.fail:
            raise RuntimeError("out of memory")
        labels = [1, 1, 1, 0, 0, 1, 0, 1]
        shift = 0.05 * config.seed
        scores = [0.9, 0.35 + shift, 0.6, 0.2, 0.45, 0.15 + shift, 0.05, 0.8]
        sweep = metrics.threshold_sweep(labels, scores, config.thresholds)
        return TrainResult(
            out_dir=Path(out_dir),
            config=config,
            sweep=sweep,
            confusion=metrics.confusion_counts(labels, scores, 0.5),
            history=[{"epoch": 1, "loss": 0.5, "epoch_s": 2.0}],
            timing={
                "train_s": 3.0,
                "s_per_epoch": 3.0,
                "epoch_s_first": 3.0,
                "epoch_s_median_after_first": None,
            },  # fmt: skip
            best_epoch=1,
            params_total=1000,
        )


def test_resume_skips_finished_rows_and_retries_failed(tmp_path):
    out = tmp_path / "exp"
    settings = Settings(size=32, epochs=1)
    first = FakeTrainer(fail={"vgg16"})
    rows = experiments.run_experiment(
        "backbone", out, settings, only=["mobilenetv2,vgg16"], log=lambda _: None, trainer=first
    )
    assert first.calls == ["vgg16", "mobilenetv2"]  # table order, not the order asked
    assert [(r["row"], r["status"]) for r in rows] == [("vgg16", "error"), ("mobilenetv2", "ok")]
    table = json.loads((out / "backbone.json").read_text())
    assert len(table["rows"]) == 2 and (out / "backbone.csv").is_file()
    assert not list(out.glob(".*.tmp"))  # atomic writes leave no temporary files

    with pytest.raises(UsageError, match="--resume"):
        experiments.run_experiment("backbone", out, settings, only=["mobilenetv2"], trainer=first)
    with pytest.raises(UsageError, match="settings differ"):
        experiments.run_experiment(
            "backbone", out, Settings(size=64, epochs=1), resume=True, trainer=first
        )

    second = FakeTrainer()
    rows = experiments.run_experiment(
        "backbone", out, settings, resume=True, only=["mobilenetv2,vgg16,resnet50"],
        log=lambda _: None, trainer=second,
    )  # fmt: skip
    assert second.calls == ["vgg16", "resnet50"]  # mobilenetv2 was done; vgg16 failed before
    assert second.resumed and not first.resumed  # a row cut short goes on from its checkpoint
    assert [r["row"] for r in rows] == ["vgg16", "resnet50", "mobilenetv2"]
    assert {r["status"] for r in rows} == {"ok"}
    row = rows[-1]
    assert row["accuracy_pct"] == pytest.approx(75.0) and row["train_s"] == 3.0
    assert row["s_per_epoch"] == 3.0 and row["precision_pct"] == pytest.approx(100.0)
    assert row["input_size"] == 32 and row["run_dir"] == "runs/mobilenetv2"

    third = FakeTrainer()
    experiments.run_experiment("backbone", out, settings, resume=True,
                               only=["mobilenetv2"], trainer=third)  # fmt: skip
    assert third.calls == []


def test_threshold_experiment_writes_runs_and_summary(tmp_path):
    trainer = FakeTrainer()
    rows = experiments.run_experiment(
        "threshold", tmp_path, Settings(runs=3, size=32, epochs=1), log=lambda _: None,
        trainer=trainer,
    )  # fmt: skip
    assert trainer.calls == ["run01", "run02", "run03"]
    assert len(rows) == 15 and {r["threshold"] for r in rows} == {0.1, 0.2, 0.3, 0.4, 0.5}
    summary = json.loads((tmp_path / "threshold_summary.json").read_text())["summary"]
    assert [s["threshold"] for s in summary] == [0.1, 0.2, 0.3, 0.4, 0.5]
    at = {s["threshold"]: s for s in summary}
    values = [r["accuracy_pct"] for r in rows if r["threshold"] == 0.3]
    mean, sd = metrics.mean_sd(values)
    assert at[0.3]["runs"] == 3
    assert at[0.3]["accuracy_pct_mean"] == pytest.approx(mean, abs=1e-6)
    assert at[0.3]["accuracy_pct_sd"] == pytest.approx(sd, abs=1e-6)
    assert "±" in (tmp_path / "threshold_summary.csv").read_text()


def test_runs_repeat_every_row_of_any_grid_with_consecutive_seeds(tmp_path):
    trainer = FakeTrainer()
    settings = Settings(runs=3, size=32, epochs=1, seed=7)
    rows = experiments.run_experiment(
        "backbone", tmp_path, settings, only=["mobilenetv2,vgg16"], log=lambda _: None,
        trainer=trainer,
    )  # fmt: skip
    assert trainer.calls == [f"{b}-run{r:02d}" for b in ("vgg16", "mobilenetv2") for r in (1, 2, 3)]
    assert [(r["backbone"], r["run"], r["seed"]) for r in rows] == [
        (b, r, 6 + r) for b in ("VGG16", "MobileNetV2") for r in (1, 2, 3)
    ]
    assert {r["run_dir"] for r in rows} == {f"runs/{k}" for k in trainer.calls}

    resumed = FakeTrainer()
    experiments.run_experiment(
        "backbone", tmp_path, settings, resume=True, only=["mobilenetv2-run02,resnet50"],
        log=lambda _: None, trainer=resumed,
    )  # fmt: skip
    assert resumed.calls == ["resnet50-run01", "resnet50-run02", "resnet50-run03"]
    architecture = experiments.plan(experiments.get("architecture"), Settings(runs=2))
    assert len(architecture) == 14 and architecture[1][0].key == "base-run02"


def test_experiment_cli_records_recipe_and_precise_bn(tmp_path):
    from castbench.commands.training import _resolved

    class Args:
        recipe, precise_bn, epochs, batch, lr = "auto", None, None, None, 5e-3
        schedule = warmup = weight_decay = size = aug = None

    chosen = _resolved(Args)
    assert chosen.name == "scratch" and chosen.precise_bn > 0
    assert chosen.schedule_fields()["augment"] == "flip"
    assert chosen.recipe.learning_rate == 5e-3  # a flag overrides one value of the recipe
    Args.recipe, Args.precise_bn = "seed", 0
    assert _resolved(Args).recipe.schedule == "constant" and _resolved(Args).precise_bn == 0
    trainer = FakeTrainer()
    rows = experiments.run_experiment(
        "backbone", tmp_path, Settings(size=32, epochs=1, recipe="scratch", precise_bn=50),
        only=["mobilenetv2"], log=lambda _: None, trainer=trainer,
    )  # fmt: skip
    assert rows[0]["precise_bn"] == 50 and rows[0]["recipe"] == "scratch"
    settings = json.loads((tmp_path / "backbone.json").read_text())["settings"]
    assert settings["precise_bn"] == 50


def test_recipe_augmentation_fills_rows_without_their_own():
    arch = dict(experiments.plan(experiments.get("architecture"), Settings(augment="flip")))
    augments = {row.key: config.augment for row, config in arch.items()}
    assert augments["base"] == augments["no-dense"] == "flip"
    assert augments["default-aug"] == "default" and augments["aug"] == "additional"


def test_resume_reads_tables_written_before_backbone_and_augment_were_recorded(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    settings = Settings(size=32, epochs=1)
    experiments.run_experiment(
        "threshold", tmp_path, replace(settings, runs=2), only=["run01"],
        log=lambda _: None, trainer=FakeTrainer(),
    )  # fmt: skip
    table = tmp_path / "threshold.json"
    payload = json.loads(table.read_text())
    assert payload["rows"][0]["backend"] == "tensorflow"
    for added_later in ("backbone", "head", "augment", "augment_override", "backend"):
        del payload["settings"][added_later]
    table.write_text(json.dumps(payload))
    rows = experiments.run_experiment(
        "threshold", tmp_path, replace(settings, runs=2), resume=True,
        log=lambda _: None, trainer=FakeTrainer(),
    )  # fmt: skip
    assert sorted({r["row"] for r in rows}) == ["run01", "run02"]
    with pytest.raises(UsageError, match="augment 'none' there, 'flip' now"):
        experiments.run_experiment(
            "threshold", tmp_path, replace(settings, runs=3, augment="flip"), resume=True,
            log=lambda _: None, trainer=FakeTrainer(),
        )  # fmt: skip
    monkeypatch.setenv("KERAS_BACKEND", "jax")  # rows of another backend are not resumed
    with pytest.raises(UsageError, match="backend 'tensorflow' there, 'jax' now"):
        experiments.run_experiment(
            "threshold", tmp_path, replace(settings, runs=3), resume=True,
            log=lambda _: None, trainer=FakeTrainer(),
        )  # fmt: skip


def test_seed_reference_tables_share_the_layout():
    seed = Path(__file__).resolve().parents[1] / "results" / "seed"
    for name in experiments.EXPERIMENTS:
        payload = json.loads((seed / f"{name}.json").read_text())
        assert payload["schema"] == experiments.SCHEMA
        assert all(list(r) == list(experiments.COLUMNS) for r in payload["rows"])
        assert {r["source"] for r in payload["rows"]} == {"seed"}
        header = (seed / f"{name}.csv").read_text().splitlines()[0]
        assert header == ",".join(experiments.COLUMNS)
    backbone = json.loads((seed / "backbone.json").read_text())["rows"]
    assert {r["backbone"]: r["accuracy_pct"] for r in backbone}["InceptionV3"] == 83.52
    assert len(json.loads((seed / "threshold.json").read_text())["rows"]) == 50


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["backbone", "--batch", "0"], "batch size"),
        (["backbone", "--epochs", "0"], "epochs"),
        (["backbone", "--runs", "-1"], "runs must be"),
        (["backbone", "--precise-bn", "-2"], "--precise-bn"),
        (["threshold", "--runs", "0"], "runs must be"),
        (["backbone", "--data", "/no/such/folder"], "data folder not found"),
        (["backbone", "--only", "resnet9000"], "unknown row"),
    ],
)
def test_experiment_bad_input_is_one_line_exit_2(args, message, tmp_path, capsys):
    assert main(["experiment", *args, "--out", str(tmp_path / "x")]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and message in err[0]
