"""castbench train end to end on a tiny synthetic set, checked against counts computed here."""

import csv
import datetime as dt
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from castbench.cli import main


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    from castbench.data.synth import generate

    root = tmp_path_factory.mktemp("tiny")
    saved = os.environ.get("CASTBENCH_CACHE")
    os.environ["CASTBENCH_CACHE"] = str(root / "cache")
    try:
        yield generate(root / "data", n_train=40, n_test=16, seed=3)
    finally:
        if saved is None:
            os.environ.pop("CASTBENCH_CACHE", None)
        else:
            os.environ["CASTBENCH_CACHE"] = saved


def _read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_train_cli_end_to_end_matches_independent_counts(tiny_set, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--backbone", "MobileNetV2", "--size", "32", "--epochs", "1",
            "--batch", "8", "--data", str(tiny_set), "--out", str(out)]  # fmt: skip
    called = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    assert main(argv) == 0
    written = dt.datetime.fromtimestamp((out / "run.json").stat().st_mtime, dt.timezone.utc)
    printed = capsys.readouterr().out
    assert "epoch 1/1" in printed and "test at 0.5" in printed
    for name in ("metrics.csv", "metrics.json", "confusion.json", "confusion.csv",
                 "history.csv", "curves.png", "predictions.csv", "run.json",
                 "best.weights.h5"):  # fmt: skip
        assert (out / name).is_file(), name

    # Predict the test split ourselves with the saved best weights and count.
    import keras

    from castbench.backbones import get
    from castbench.data import load_casting
    from castbench.data.pipeline import make_dataset
    from castbench.models import build_model
    from castbench.spec import ModelSpec

    model = build_model(ModelSpec("MobileNetV2", size=32))
    model.load_weights(str(out / "best.weights.h5"))
    test = load_casting(tiny_set).test
    dataset = make_dataset(test, 32, 8, preprocess=get("MobileNetV2").preprocess_fn())
    scores = np.concatenate([model.predict_on_batch(x).reshape(-1) for x, _ in dataset])
    labels = np.array([s.label for s in test])
    keras.backend.clear_session()

    saved_scores = np.array([float(r["score"]) for r in _read_csv(out / "predictions.csv")])
    np.testing.assert_allclose(saved_scores, scores, rtol=1e-4, atol=1e-5)

    rows = _read_csv(out / "metrics.csv")
    assert [float(r["threshold"]) for r in rows] == pytest.approx(
        [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    )
    for row in rows:
        t = float(row["threshold"])
        predicted = scores > t
        tp = int(np.sum(predicted & (labels == 1)))
        fp = int(np.sum(predicted & (labels == 0)))
        tn = int(np.sum(~predicted & (labels == 0)))
        fn = int(np.sum(~predicted & (labels == 1)))
        assert (int(row["tp"]), int(row["fp"]), int(row["tn"]), int(row["fn"])) == (tp, fp, tn, fn)
        assert float(row["accuracy_pct"]) == pytest.approx(100 * (tp + tn) / len(labels))
        recall = 100 * tp / (tp + fn) if tp + fn else 0.0
        precision = 100 * tp / (tp + fp) if tp + fp else 0.0
        f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
        assert float(row["recall_pct"]) == pytest.approx(recall)
        assert float(row["precision_pct"]) == pytest.approx(precision)
        assert float(row["f1"]) == pytest.approx(f1)
        assert "nan" not in ",".join(row.values()).lower()

    half = next(r for r in rows if float(r["threshold"]) == 0.5)
    confusion = json.loads((out / "confusion.json").read_text())
    assert confusion["matrix"] == [[int(half["tn"]), int(half["fp"])],
                                   [int(half["fn"]), int(half["tp"])]]  # fmt: skip

    history = _read_csv(out / "history.csv")
    assert len(history) == 1 and float(history[0]["epoch_s"]) > 0
    assert {"loss", "val_loss", "accuracy"} <= set(history[0])
    run = json.loads((out / "run.json").read_text())
    assert run["timing"]["train_s"] > 0 and len(run["timing"]["epoch_s"]) == 1
    assert run["counts"]["n_test"] == len(test) == 16
    assert run["config"]["spec"]["input_size"] == 32 and run["best_epoch"] == 1
    assert run["params_total"] > 0
    # the environment is the run's start, not the moment its results were written
    started = dt.datetime.fromisoformat(run["environment"]["started_at"])
    assert called <= started <= written - dt.timedelta(seconds=run["timing"]["train_s"])
    assert run["environment"]["load_avg_1m_at_end"] >= 0
    # random weights, whole network trained: the scratch recipe, and precise BN on by default
    assert run["config"]["recipe"] == "scratch" and run["config"]["schedule"] == "cosine"
    assert run["config"]["precise_bn"] > 0 and float(history[0]["precise_bn_s"]) > 0


def test_a_model_that_scores_every_image_alike_is_flagged(tmp_path):
    from castbench.data.loader import Sample
    from castbench.spec import ModelSpec
    from castbench.training import Fitted, Splits, TrainConfig, evaluate

    class SameScore:
        def predict_on_batch(self, images):
            return np.full((len(images), 1), 0.559, np.float32)

    labels = [1, 1, 0, 1]
    test = [Sample(tmp_path / f"{i}.png", label) for i, label in enumerate(labels)]
    column = np.array(labels, np.float32)[:, None]
    batches = [(np.zeros((2, 8, 8, 3), np.float32), column[i : i + 2]) for i in (0, 2)]
    splits = Splits(tmp_path, [], [], test, 0)
    fitted = Fitted(history=[], epoch_times=[1.0], best_epoch=1, train_s=1.0)
    lines: list[str] = []
    config = TrainConfig(spec=ModelSpec("MobileNetV2", size=32))
    result, scores = evaluate(
        SameScore(), batches, splits, config, fitted, 1, tmp_path, lines.append
    )
    assert scores == pytest.approx([0.559] * 4)
    assert any(line.startswith("warning: every test score is 0.5590") for line in lines)
    assert result.at(0.5)["accuracy_pct"] == pytest.approx(75.0)  # the defect share, nothing more


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--backbone", "resnet9000"], "unknown backbone"),
        (["--backbone", "mobilenetv2", "--batch", "0"], "batch size"),
        (["--backbone", "mobilenetv2", "--epochs", "0"], "epochs"),
        (["--backbone", "mobilenetv2", "--data", "/no/such/folder"], "data folder not found"),
        (["--backbone", "mobilenetv2", "--aug", "sideways"], "augmentation preset"),
        (["--backbone", "xception", "--size", "40"], "at least 71x71"),
        (["--backbone", "mobilenetv2", "--trainable", "head", "--precise-bn", "5"], "frozen"),
    ],
)
def test_train_bad_input_is_one_line_exit_2(args, message, capsys):
    assert main(["train", *args]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and message in err[0] and err[0].startswith("castbench: error:")


def test_train_bad_data_layout_is_exit_2(tmp_path, capsys):
    (tmp_path / "junk").mkdir()
    assert main(["train", "--backbone", "mobilenetv2", "--data", str(tmp_path)]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "Traceback" not in err[0]


def test_train_error_in_a_fresh_process_has_no_traceback():
    result = subprocess.run(
        [sys.executable, "-m", "castbench", "train", "--backbone", "vgg16", "--epochs", "-1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == ["castbench: error: epochs must be a positive integer, got -1"]


def test_an_interrupted_run_goes_on_from_its_last_finished_epoch(tiny_set, tmp_path):
    from castbench.checkpoint import STATE_FILE
    from castbench.spec import ModelSpec
    from castbench.training import TrainConfig, train

    config = TrainConfig(spec=ModelSpec("MobileNetV2", size=32), data=str(tiny_set),
                         batch_size=8, epochs=2)  # fmt: skip
    out = tmp_path / "run"

    def interrupt_after_epoch_1(line):
        if line.startswith("epoch 1/2"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config, out, log=interrupt_after_epoch_1)
    state = json.loads((out / STATE_FILE).read_text())
    assert state["epoch"] == 1 and len(state["state"]["history"]) == 1
    assert state["state"]["passes"] >= 1  # the training pipeline's passes drawn so far

    lines = []
    result = train(config, out, log=lines.append, resume=True)
    assert any(line.startswith("resuming after epoch 1/2") for line in lines)
    assert not any(line.startswith("epoch 1/2") for line in lines)  # epoch 1 was not rerun
    assert [row["epoch"] for row in result.history] == [1, 2]
    assert result.history[0] == state["state"]["history"][0]
    assert result.timing["resumed_after_epoch"] == 1 and result.timing["epochs"] == 2
    assert not list(out.glob("checkpoint*"))  # a finished run leaves no checkpoint behind
    assert json.loads((out / "run.json").read_text())["timing"]["resumed_after_epoch"] == 1
