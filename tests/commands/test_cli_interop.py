"""Issue 16 item 5: the command line takes model files — checkpoints to ONNX and back, ONNX
models summarised, evaluated, predicted and fine-tuned."""
import json

import numpy as np
import pytest

from cli_workspace import run_cli, ws  # noqa: F401  (ws is a fixture)


@pytest.fixture(scope="module")
def exported(ws, tmp_path_factory):
    """The workspace's digits run as an ONNX model and that model as a checkpoint again."""
    from convnet.cli import main

    folder = tmp_path_factory.mktemp("onnx")
    assert main(["convert", str(ws / "run"), "--to-onnx", str(folder / "m.onnx")]) == 0
    assert main(["convert", str(folder / "m.onnx"), "--out", str(folder / "c.safetensors")]) == 0
    return folder


def test_the_exported_model_takes_raw_images_and_equals_convnet_in_onnx_runtime(ws, exported, ort):
    from convnet.data import load_digits
    from convnet.train.run import TrainedNet

    _, test = load_digits()
    ours = TrainedNet(ws / "run").scores(test.x[:64])
    session = ort.InferenceSession(str(exported / "m.onnx"), providers=["CPUExecutionProvider"])
    theirs = session.run(None, {"input": np.ascontiguousarray(test.x[:64].transpose(0, 3, 1, 2))})[0]
    assert np.abs(ours - theirs).max() <= 1e-4 * np.abs(ours).max()


def test_onnx_back_to_a_checkpoint_evaluates_the_same(ws, exported, capsys):
    code, out, _ = run_cli(["evaluate", str(ws / "run"), "--json"], capsys)
    original = json.loads(out)
    code, out, _ = run_cli(["evaluate", str(exported / "c.safetensors"), "--data", "digits", "--json"], capsys)
    assert code == 0 and json.loads(out)["accuracy"] == pytest.approx(original["accuracy"], abs=1e-9)
    code, out, _ = run_cli(["evaluate", str(exported / "m.onnx"), "--data", "digits", "--json"], capsys)
    assert code == 0 and json.loads(out)["accuracy"] == pytest.approx(original["accuracy"], abs=1e-9)
    code, _, err = run_cli(["evaluate", str(exported / "m.onnx")], capsys)
    assert code == 2 and "--data" in err


def test_summary_and_predict_take_an_onnx_model(ws, exported, capsys):
    code, out, _ = run_cli(["summary", str(exported / "m.onnx"), "--batch", "4"], capsys)
    assert code == 0 and "normalize" in out and "Memory at batch 4" in out
    code, out, _ = run_cli(["predict", str(exported / "m.onnx"), str(ws / "digit.png"), "--top", "1"], capsys)
    reference = run_cli(["predict", str(ws / "run"), str(ws / "digit.png"), "--top", "1"], capsys)[1]
    assert code == 0 and out.split(":")[-1].split("(")[0] == reference.split(":")[-1].split("(")[0]


def test_fine_tuning_an_onnx_model_trains_resumes_and_reloads(exported, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = str(exported / "m.onnx")
    code, out, err = run_cli(["train", "--init-from", model, "--epochs", "1", "--max-steps", "8", "--quiet",
                              "--out", "ft"], capsys)
    assert code == 0, err
    code, _, err = run_cli(["train", "--init-from", model, "--epochs", "1", "--quiet", "--out", "ft", "--resume"],
                           capsys)
    assert code == 0 and "resuming run ft" in err
    code, out, _ = run_cli(["evaluate", "ft", "--json"], capsys)  # the checkpoint rebuilds the imported net
    metrics = json.loads((tmp_path / "ft" / "metrics.json").read_text())
    assert code == 0 and json.loads(out)["accuracy"] == pytest.approx(metrics["test_accuracy"], abs=1e-9)


def test_convert_refuses_what_it_cannot_do(ws, exported, capsys, monkeypatch):
    monkeypatch.chdir(ws)
    cases = [
        (["convert", "run"], 2, "Give the output"),
        (["convert", "run", "--to-onnx", "a.onnx", "--out", "b.safetensors"], 2, "Give one output"),
        (["convert", str(exported / "m.onnx"), "--to-fully-conv", "--out", "x.safetensors"], 2, "ONNX model"),
        (["convert", "run", "--to-onnx", "file.txt"], 8, "--overwrite"),
        (["convert", "digit.png", "--model", "resnet18", "--out", "w.safetensors"], 7, "digit.png"),
        (["convert", "run", "--classes", "3", "--out", "w.safetensors"], 2, "--model"),
    ]
    for argv, status, phrase in cases:
        code, _, err = run_cli(argv, capsys)
        assert code == status and phrase in err and "Traceback" not in err, (argv, code, err)
