"""Issue 14: what a user's first hour needs to go right — runs kept, resumed, reported truly;
classes by name; checkpoints or run folders wherever a checkpoint is asked for."""
import json
import os
import shutil

import numpy as np
import pytest

from cli_workspace import SMALL, _colour_folder, _png, run_cli, ws  # noqa: F401  (ws is a fixture)
from convnet.cli import main
from convnet.errors import ConfigError, NonFiniteError, PathError

TINY = "INPUT[8x8x1] -> CONV3-4 -> RELU -> FC-10"


def test_each_run_gets_its_own_folder_and_latest_follows(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = run_cli(["train", "--arch", TINY, "--epochs", "1", "--quiet"], capsys)
    assert code == 0 and "runs/001/" in out
    first = (tmp_path / "runs/001/best.safetensors").read_bytes()
    code, out, _ = run_cli(["train", "--arch", TINY, "--epochs", "1", "--lr", "0.0001", "--quiet"], capsys)
    assert code == 0 and "runs/002/" in out
    assert (tmp_path / "runs/001/best.safetensors").read_bytes() == first  # the earlier run is kept
    assert os.readlink(tmp_path / "runs/latest") == "002"
    # the final line lists exactly the files that exist
    listed = out.strip().split("wrote runs/002/: ")[1].split(", ")
    assert sorted(listed) == sorted(p.name for p in (tmp_path / "runs/002").iterdir())


def test_overwrite_replaces_and_resume_without_out_continues_latest(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run_cli(["train", "--arch", TINY, "--epochs", "1", "--quiet", "--out", "a"], capsys)[0] == 0
    (tmp_path / "a" / "best.safetensors").unlink()
    code, _, _ = run_cli(["train", "--arch", TINY, "--epochs", "1", "--quiet", "--out", "a", "--max-steps", "2",
                          "--overwrite"], capsys)
    assert code == 0
    assert not (tmp_path / "a" / "best.safetensors").exists() and not (tmp_path / "a" / "history.json").exists()
    assert run_cli(["train", "--arch", TINY, "--epochs", "1", "--quiet"], capsys)[0] == 0
    code, _, err = run_cli(["train", "--arch", TINY, "--epochs", "2", "--quiet", "--resume"], capsys)
    assert code == 0 and "resuming run" in err and "runs/001" in err


def test_a_run_stopped_inside_its_first_epoch_reports_no_placeholders(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = run_cli(["train", "--arch", TINY, "--epochs", "1", "--max-steps", "3", "--quiet", "--out", "r"],
                           capsys)
    assert code == 0
    assert "-1" not in out and "no epoch completed" in out
    assert "best.safetensors" not in out and "curves.png" not in out  # neither exists
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["best_epoch"] is None and metrics["best_val_accuracy"] is None


def test_resume_may_extend_epochs_and_ignores_options_that_do_not_change_the_numbers(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run_cli(["train", "--arch", TINY, "--epochs", "1", "--quiet", "--out", "r"], capsys)[0] == 0
    code, out, err = run_cli(["train", "--arch", TINY, "--epochs", "2", "--patience", "4", "--max-steps", "999",
                              "--quiet", "--out", "r", "--resume"], capsys)
    assert code == 0, err
    assert "resuming run r at epoch 2 of 2 (extended from 1 epochs), step 41" in err
    assert json.loads((tmp_path / "r" / "history.json").read_text())[-1]["epoch"] == 2
    code, _, err = run_cli(["train", "--arch", TINY, "--epochs", "3", "--batch", "64", "--quiet", "--out", "r",
                            "--resume"], capsys)
    assert code == 7
    changed = err.split("Changed: ")[1]
    assert "batch: 32 -> 64" in changed and "epochs" not in changed and "patience" not in changed


def test_interrupt_names_the_checkpoint_and_the_command_that_resumes(tmp_path, capsys, monkeypatch):
    import convnet.train.trainer as trainer

    monkeypatch.chdir(tmp_path)
    original = trainer.Trainer._end_epoch

    def end_epoch(self, *args):
        original(self, *args)
        if self.epoch == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(trainer.Trainer, "_end_epoch", end_epoch)
    code, _, err = run_cli(["train", "--arch", TINY, "--epochs", "2", "--quiet"], capsys)
    assert code == 130
    assert "runs/001/last.safetensors (saved at the end of epoch 1" in err
    command = err.split("Continue with: ")[1].strip()
    assert command.endswith("--out runs/001 --resume")
    monkeypatch.setattr(trainer.Trainer, "_end_epoch", original)
    import shlex

    code, _, err = run_cli(shlex.split(command)[1:], capsys)
    assert code == 0 and "resuming run runs/001 at epoch 2 of 2" in err


def test_python_train_refuses_a_folder_holding_a_run(tmp_path):
    from convnet.train.config import TrainConfig
    from convnet.train.run import train

    metrics = train(TrainConfig(arch=TINY, epochs=1, max_steps=2), tmp_path / "r", quiet=True)
    assert metrics["out_dir"] == str(tmp_path / "r")
    with pytest.raises(PathError, match=r"`resume=True`.*`overwrite=True`"):  # Python's words, not the CLI's
        train(TrainConfig(arch=TINY, epochs=1, max_steps=2), tmp_path / "r", quiet=True)


def test_evaluate_takes_a_run_folder_and_matches_classes_by_name(ws, capsys, monkeypatch):
    monkeypatch.chdir(ws)
    code, out, _ = run_cli(["evaluate", "crun", "--data", "folder:colours", "--json"], capsys)
    report = json.loads(out)
    assert code == 0 and report["checkpoint"].endswith("crun/best.safetensors")
    assert report["classes"] == ["blue", "green", "red"]
    from convnet.data import load
    from convnet.data.dataset import Dataset
    from convnet.train.run import TrainedNet

    trained = TrainedNet(ws / "crun")
    _, test = load("folder:" + str(ws / "colours"))
    order = [2, 0, 1]  # the same classes in another order: labels follow the names
    shuffled = Dataset(test.x, np.array([order.index(c) for c in test.y]), tuple(test.classes[i] for i in order),
                       "shuffled", "")
    np.testing.assert_array_equal(trained.labels_of(shuffled), test.y)
    with pytest.raises(ConfigError, match=r"missing blue.*not in the checkpoint: purple"):
        trained.labels_of(Dataset(test.x, test.y, ("purple", "green", "red"), "renamed", ""))


def test_confusion_headers_are_never_cut():
    from convnet.commands.evaluate import confusion_table

    text = confusion_table(["blue_whale", "green", "r"], [[12, 0, 1], [0, 3, 0], [1000, 0, 2]])
    head, *rows = text.splitlines()
    assert head.split() == ["blue_whale", "green", "r"]
    assert [r.split()[0] for r in rows] == ["blue_whale", "green", "r"]
    assert len({len(line) for line in text.splitlines()}) == 1  # aligned


def test_nonfinite_scores_name_the_first_layer_in_python(ws):
    from convnet.train.run import TrainedNet

    trained = TrainedNet(ws / "flipped.safetensors")
    with pytest.raises(NonFiniteError, match=r"fc1 \(Dense\)"):
        trained.scores(np.random.default_rng(0).random((2, 8, 8, 1), np.float32))


def test_predict_a_folder_and_warn_when_shrinking_a_photo(ws, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ws)
    images = tmp_path / "imgs"
    images.mkdir()
    shutil.copy(ws / "digit.png", images / "a.png")
    shutil.copy(ws / "photo.png", images / "b.png")
    (images / "notes.txt").write_text("not an image, skipped by extension")
    code, out, err = run_cli(["predict", "run", str(images), "--top", "2"], capsys)
    assert code == 0
    assert [line.split(":")[0].rsplit("/", 1)[1] for line in out.splitlines()] == ["a.png", "b.png"]
    assert "warning" in err and "240x320" in err and "40x smaller" in err


def test_predict_show_and_dense_class(ws, tmp_path, capsys, monkeypatch):
    from PIL import Image

    monkeypatch.chdir(ws)
    code, out, _ = run_cli(["predict", "run", "digit.png", "--show", str(tmp_path / "maps")], capsys)
    assert code == 0 and (tmp_path / "maps" / "digit_activations.png").is_file()
    fcn = tmp_path / "fcn.safetensors"
    assert run_cli(["convert", "run", "--to-fully-conv", "--out", str(fcn)], capsys)[0] == 0
    wide = np.concatenate([np.asarray(Image.open(ws / "digit.png"))] * 3, axis=1) / 255.0
    _png(tmp_path / "wide.png", wide)
    code, out, _ = run_cli(["predict", str(fcn), str(tmp_path / "wide.png"), "--dense", str(tmp_path / "h.png"),
                            "--class", "7"], capsys)
    assert code == 0 and (tmp_path / "h.png").is_file()
    code, _, err = run_cli(["predict", str(fcn), str(tmp_path / "wide.png"), "--dense", str(tmp_path / "h2.png"),
                            "--class", "cat"], capsys)
    assert code == 2 and "cat" in err


def test_image_size_trains_on_mixed_sizes(ws, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(["train", "--data", f"folder:{ws / 'mixed'}", "--image-size", "12x12", "--epochs", "1",
                            "--batch", "4", "--val-fraction", "0.2", "--quiet", "--out", "m"], capsys)
    assert code == 0, err
    from convnet.train.run import TrainedNet

    assert TrainedNet(tmp_path / "m").input_shape == (12, 12, 3)


def test_summary_of_a_checkpoint_and_of_any_case_name(ws, capsys, monkeypatch):
    monkeypatch.chdir(ws)
    code, out, _ = run_cli(["summary", "run"], capsys)
    assert code == 0 and "conv1" in out and "8×8×1" in out
    code, out, _ = run_cli(["summary", "nan.safetensors"], capsys)  # the architecture only: weights unread
    assert code == 0
    code, out, _ = run_cli(["summary", "LeNet5", "--no-lint"], capsys)
    assert code == 0 and "lenet5" in out
    assert main(["summary", "VGG16", "--format", "json"]) == 0
