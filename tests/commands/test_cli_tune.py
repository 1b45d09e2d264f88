"""`convnet tune MODEL`: times the CONV layers' algorithms and writes the tuning cache."""
import argparse
import json

import pytest

from convnet.cli import main
from convnet.commands.tune import run
from convnet.errors import ConfigError
from convnet.ops.fast import clear_plans, tuning


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVNET_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("CONVNET_TUNE", raising=False)
    monkeypatch.setattr(tuning, "_loaded", {})
    clear_plans()
    yield tmp_path
    clear_plans()


def test_tune_resnet20_writes_the_cache_and_prints_the_winners(cache_dir, capsys):
    assert main(["tune", "resnet20_cifar", "--batch", "8", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    data = json.loads((cache_dir / "tuning.json").read_text())
    entries = data["machines"][tuning.machine_key()]
    assert data["format"] == tuning.FORMAT and len(entries) >= 4
    assert all(key.startswith("float32 x=8x") for key in entries)
    for entry in entries.values():
        assert entry["algorithm"] in entry["times_ms"] and entry["cost_model"] in entry["times_ms"]
    lines = out.splitlines()
    assert lines[0].startswith("Tuned convolution algorithms of resnet20_cifar (batch 8, float32)")
    assert lines[1].split()[:5] == ["layers", "in", "kernel", "cost", "model"]
    assert any(line.startswith("conv1 ") and "*" in line and " ms" not in line for line in lines)
    assert len([line for line in lines if "*" in line]) == len(entries) + 1  # + the title's legend
    assert f"Wrote {len(entries)} shapes to {cache_dir / 'tuning.json'}" in out
    # the summary's explain table now says the layers were tuned
    assert main(["summary", "resnet20_cifar", "--batch", "8", "--explain", "--no-lint"]) == 0
    assert " tuned " in capsys.readouterr().out


def test_tune_errors(monkeypatch, capsys):
    with pytest.raises(ConfigError, match="--batch"):
        run(argparse.Namespace(model="resnet20_cifar", batch=0, repeats=1, dtype="float32", input=None))
    monkeypatch.setenv("CONVNET_TUNE", "0")
    assert main(["tune", "resnet20_cifar"]) == ConfigError.exit_code
    assert "CONVNET_TUNE=0" in capsys.readouterr().err
