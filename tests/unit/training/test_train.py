"""Training one candidate for real on the bundled digits."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from helpers import THREADS

from nas.candidate import Candidate
from nas.errors import Diverged, NasError
from nas.space import load_candidate
from nas.training.checkpoint import load_checkpoint, save_checkpoint
from nas.training.device import available_cpus, default_threads
from nas.training.loop import evaluate, train

SMALL = Candidate(blocks_per_stage=1, width=8, epochs=2, batch_size=64, lr=0.1)


@pytest.mark.slow
def test_resnet20_reaches_97_percent_on_digits_in_10_epochs(digits) -> None:
    candidate = load_candidate("search_spaces/resnet20.yaml")
    assert (candidate.block, candidate.shortcut, candidate.width, candidate.stage_depths,
            candidate.epochs) == ("basic", "identity", 16, (3, 3, 3), 10)
    result = train(candidate, digits, threads=THREADS)
    assert result.layers == 20 and result.blocks == 9 and result.epochs == 10
    assert result.val_accuracy >= 0.97, result.history
    assert result.test_accuracy >= 0.95
    assert len(result.history) == 10
    assert [h["epoch"] for h in result.history] == list(range(1, 11))


@pytest.mark.slow
def test_plain_56_layer_network_trains_without_special_cases(digits) -> None:
    plain = Candidate(blocks_per_stage=9, shortcut="none", epochs=2, batch_size=64, lr=0.05)
    result = train(plain, digits, threads=THREADS)
    assert result.layers == 56 and result.epochs == 2
    assert all(math.isfinite(h["train_loss"]) for h in result.history)
    assert 0.0 <= result.val_accuracy <= 1.0


def test_same_seed_same_result_on_cpu(digits) -> None:
    a = train(SMALL, digits, threads=1)
    b = train(SMALL, digits, threads=1)
    assert a.val_accuracy == b.val_accuracy and a.test_accuracy == b.test_accuracy
    assert [h["train_loss"] for h in a.history] == [h["train_loss"] for h in b.history]
    other = train(dataclasses.replace(SMALL, seed=1), digits, threads=1)
    assert [h["train_loss"] for h in other.history] != [h["train_loss"] for h in a.history]


def test_report_callback_sees_every_epoch_and_can_stop(digits) -> None:
    seen: list[tuple[int, dict]] = []

    def report(epoch: int, metrics: dict) -> bool:
        seen.append((epoch, metrics))
        return epoch == 2

    result = train(dataclasses.replace(SMALL, epochs=5), digits, report=report)
    assert [e for e, _ in seen] == [1, 2]
    assert result.epochs == 2 and result.stopped_early
    for _, metrics in seen:
        assert {"train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr",
                "images_per_second"} <= metrics.keys()
        assert 0 <= metrics["val_accuracy"] <= 1 and metrics["lr"] > 0
    assert result.val_accuracy == seen[-1][1]["val_accuracy"]


def test_result_reports_its_figures(digits) -> None:
    result = train(SMALL, digits)
    d = result.to_dict()
    for key in ("val_accuracy", "test_accuracy", "epochs", "params", "layers", "blocks",
                "seconds", "images_per_second"):
        assert key in d
    assert d["params"] == result.model.num_params and d["layers"] == 8 and d["blocks"] == 3
    assert d["images_per_second"] > 0 and d["seconds"] > 0
    # test accuracy is measured on the test split with the trained network
    assert result.test_accuracy == pytest.approx(
        evaluate(result.model, digits.test_x, digits.test_y)[1])


def test_non_finite_loss_raises_diverged_naming_the_epoch(digits) -> None:
    wild = dataclasses.replace(SMALL, lr=1e12, schedule="constant", epochs=3)
    with pytest.raises(Diverged) as caught:
        train(wild, digits)
    assert caught.value.epoch in (1, 2, 3)
    assert f"epoch {caught.value.epoch}" in str(caught.value)


@pytest.mark.parametrize("options", [{"optimizer": "adamw", "lr": 0.003},
                                     {"schedule": "cosine"}, {"label_smoothing": 0.1}])
def test_other_training_settings_learn(options: dict, digits) -> None:
    result = train(dataclasses.replace(SMALL, epochs=4, batch_size=32, augment=False, **options),
                   digits)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert result.val_accuracy > 0.3


def test_thread_count_follows_the_cpus_given(digits) -> None:
    train(dataclasses.replace(SMALL, epochs=1), digits, threads=1)
    assert torch.get_num_threads() == 1


@pytest.mark.parametrize(("setting", "expected"), [("1", 1), ("3", 3), ("0", None), ("two", None),
                                                   (None, None)])
def test_default_threads_follow_omp_num_threads_when_it_is_a_count(
        monkeypatch, setting: str | None, expected: int | None) -> None:
    if setting is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", setting)
    assert default_threads() == (expected or available_cpus())


def test_training_without_a_thread_count_uses_the_default(monkeypatch, digits) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", str(THREADS + 1))  # not what the fixture set
    train(dataclasses.replace(SMALL, epochs=1), digits)
    assert torch.get_num_threads() == THREADS + 1


def test_checkpoint_round_trip(tmp_path, digits) -> None:
    result = train(SMALL, digits)
    path = save_checkpoint(tmp_path / "sub" / "net.pt", result.model, digits)
    model, meta = load_checkpoint(path)
    assert meta["candidate"] == SMALL.to_dict()
    assert meta["input"]["image_size"] == 16 and meta["input"]["num_classes"] == 10
    before = evaluate(result.model, digits.val_x, digits.val_y)
    after = evaluate(model, digits.val_x, digits.val_y)
    assert after == pytest.approx(before)
    # the checkpoint holds only tensors and plain values: weights-only loading is enough
    raw = torch.load(path, weights_only=True)
    assert set(raw) >= {"candidate", "input", "state_dict"}


def test_corrupt_or_foreign_checkpoint_is_refused(tmp_path) -> None:
    truncated = tmp_path / "bad.pt"
    truncated.write_bytes(b"PK\x03\x04 not really a checkpoint")
    with pytest.raises(NasError, match="not a resnas checkpoint"):
        load_checkpoint(truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(NasError, match="not a resnas checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(NasError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


@pytest.mark.parametrize("payload", [torch.zeros(3), torch.nn.Linear(2, 2), [1, 2]])
def test_files_that_are_not_resnas_checkpoints_are_one_line(tmp_path, payload) -> None:
    path = tmp_path / "other.pt"
    torch.save(payload, path)
    with pytest.raises(NasError, match="not a resnas checkpoint") as caught:
        load_checkpoint(path)
    assert "\n" not in str(caught.value) and "\x1b" not in str(caught.value)


@pytest.mark.parametrize("schedule", ["onecycle", "cosine", "constant"])
def test_resuming_from_a_saved_state_gives_the_uninterrupted_run(tmp_path, digits,
                                                                 schedule: str) -> None:
    """A trial restored on another node goes on as if it had never stopped."""
    candidate = dataclasses.replace(SMALL, epochs=4, schedule=schedule)
    states: dict[int, dict] = {}
    whole = train(candidate, digits, threads=1,
                  on_state=lambda state: states.setdefault(state["epoch"], state))
    assert sorted(states) == [1, 2, 3, 4]
    # Through a file, loaded weights-only, as a Ray checkpoint travels between nodes.
    torch.save(states[2], tmp_path / "state.pt")
    saved = torch.load(tmp_path / "state.pt", weights_only=True)
    seen: list[int] = []
    resumed = train(candidate, digits, threads=1, resume=saved,
                    report=lambda epoch, metrics: seen.append(epoch) or False)
    assert seen == [3, 4]
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4]
    assert resumed.val_accuracy == whole.val_accuracy
    assert resumed.test_accuracy == whole.test_accuracy
    for name, tensor in whole.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name
    done = train(candidate, digits, threads=1, resume=states[4])  # lost after its last epoch
    assert done.epochs == 4 and done.val_accuracy == whole.val_accuracy
