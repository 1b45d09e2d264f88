"""`convnet summary`: the terminal table, the machine formats, memory flags and exit codes."""
import csv
import io
import json

import pytest

from convnet.cli import build_parser, main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_summary_vgg16_table(capsys):
    code, out, err = run(capsys, "summary", "vgg16")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == "vgg16: input 224×224×3, batch 1, float32"
    header = lines[1].split()
    assert header[:3] == ["name", "type", "output"] and "params" in header and "MACs" in header
    assert set(lines[2]) <= {"-", " "}
    conv = next(line for line in lines if line.startswith("conv1_1 "))
    assert "224×224×64" in conv and "1,728" in conv and "1,792" in conv
    total = next(line for line in lines if line.startswith("total"))
    assert "138,357,544" in total
    assert "Memory at batch 1" in out and "optimizer sgd" in out
    assert max(len(line) for line in lines if not line.startswith("  [")) < 160


def test_summary_json_parses(capsys):
    code, out, _ = run(capsys, "summary", "vgg16", "--format", "json", "--batch", "2", "--optimizer", "adam")
    assert code == 0
    d = json.loads(out)
    assert d["total_params"] == 138_357_544 and d["batch"] == 2
    assert d["layers"][1]["name"] == "conv1_1" and d["layers"][1]["output_shape"] == [224, 224, 64]
    assert d["total_activations"] == sum(layer["activations"] for layer in d["layers"])
    assert d["memory"]["optimizer_state"] == 2 * d["memory"]["parameters"]
    assert d["warnings"] == []


def test_summary_csv_parses(capsys):
    code, out, _ = run(capsys, "summary", "resnet18", "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert sum(int(r["params"]) for r in rows) == 11_689_512
    assert rows[0]["name"] == "input" and rows[1]["name"] == "conv1"


def test_summary_markdown(capsys):
    code, out, _ = run(capsys, "summary", "lenet5", "--format", "markdown")
    assert code == 0 and "| name | type | output |" in out and "**61,706**" in out


def test_summary_of_a_pattern(capsys):
    code, out, _ = run(capsys, "summary", "INPUT[32x32x3] -> [CONV3-16 -> RELU -> POOL2]*2 -> FC-10", "--format", "json")
    assert code == 0
    d = json.loads(out)
    assert d["layers"][-1]["output_shape"] == [1, 1, 10]


def test_pattern_needs_an_input_shape(capsys):
    code, _, err = run(capsys, "summary", "CONV3-16 -> RELU")
    assert code == 2 and "INPUT" in err
    code, out, _ = run(capsys, "summary", "CONV3-16 -> RELU", "--input", "8x8x3")
    assert code == 0 and "8×8×16" in out


def test_bad_pattern_shows_the_caret(capsys):
    code, _, err = run(capsys, "summary", "INPUT[32x32x3] -> CONVV3-64 -> FC-10")
    assert code == 2
    assert "column 19" in err and err.rstrip().endswith("^") and "did you mean CONV3-64" in err


def test_unknown_model_suggests(capsys):
    code, _, err = run(capsys, "summary", "resnet05")
    assert code == 2 and "Unknown model" in err and "resnet50" in err


def test_zoo_options(capsys):
    code, out, _ = run(capsys, "summary", "resnet18", "--classes", "10", "--input", "64x64x3", "--format", "json")
    assert code == 0
    d = json.loads(out)
    assert d["input_shape"] == [64, 64, 3] and d["layers"][-1]["output_shape"] == [1, 1, 10]
    code, _, err = run(capsys, "summary", "FC-10", "--classes", "10", "--input", "4")
    assert code == 2 and "zoo models" in err


def test_budget_flags(capsys):
    code, out, _ = run(capsys, "summary", "alexnet", "--batch", "64", "--optimizer", "momentum", "--budget", "12GB")
    assert code == 0
    assert "Batch 64 fits in 12.0 GiB; largest batch that fits:" in out
    code, out, _ = run(capsys, "summary", "vgg16", "--batch", "64", "--budget", "1GB")
    assert code == 5 and "does NOT fit" in out
    code, out, _ = run(capsys, "summary", "vgg16", "--budget", "10MB", "--format", "json")
    assert code == 5 and json.loads(out)["budget"]["max_batch"] == 0
    code, _, err = run(capsys, "summary", "vgg16", "--budget", "lots")
    assert code == 2 and "budget" in err


def test_dtype_and_inference(capsys):
    code, out, _ = run(capsys, "summary", "lenet5", "--dtype", "float64", "--inference", "--format", "json")
    assert code == 0
    d = json.loads(out)
    assert d["dtype"] == "float64" and d["memory"]["gradients"] == 0 and d["memory"]["parameters"] == 61_706 * 8


def test_lint_warnings_printed(capsys):
    _, out, _ = run(capsys, "summary", "resnet18", "--input", "200x200x3")
    assert "Sizing warnings" in out and "input-divisibility" in out
    _, out, _ = run(capsys, "summary", "resnet18", "--input", "200x200x3", "--no-lint")
    assert "Sizing warnings" not in out
    _, out, err = run(capsys, "summary", "resnet18", "--input", "200x200x3", "--format", "csv")
    assert "input-divisibility" in err and "input-divisibility" not in out


def test_list(capsys):
    code, out, _ = run(capsys, "summary", "--list")
    assert code == 0 and out.splitlines()[0].startswith("alexnet") and "vgg16" in out


def test_help_reads_well(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "summary" in out and "exit status" in out and "5  does not fit the memory budget" in out
    with pytest.raises(SystemExit):
        main(["summary", "--help"])
    out = capsys.readouterr().out
    assert "--budget SIZE" in out and "convnet summary vgg16" in out


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "usage: convnet" in capsys.readouterr().out


def test_missing_model(capsys):
    code, _, err = run(capsys, "summary")
    assert code == 2 and "MODEL" in err


def test_parser_discovers_command_modules():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert "summary" in sub.choices
