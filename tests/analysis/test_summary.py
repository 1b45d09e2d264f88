"""The summary table: the notes' VGG16 walk-through row by row, totals, formats, the notes' claims."""
import csv
import io
import json

import pytest

from convnet import zoo
from convnet.analysis import stack_receptive_field, summarize
from convnet.pattern import parse

#: the notes' "VGGNet in detail" table: (type, output H×W×D, activations, weights)
NOTES_VGG16 = [
    ("INPUT", (224, 224, 3), 150_528, 0),
    ("CONV", (224, 224, 64), 3_211_264, 1_728),
    ("CONV", (224, 224, 64), 3_211_264, 36_864),
    ("POOL", (112, 112, 64), 802_816, 0),
    ("CONV", (112, 112, 128), 1_605_632, 73_728),
    ("CONV", (112, 112, 128), 1_605_632, 147_456),
    ("POOL", (56, 56, 128), 401_408, 0),
    ("CONV", (56, 56, 256), 802_816, 294_912),
    ("CONV", (56, 56, 256), 802_816, 589_824),
    ("CONV", (56, 56, 256), 802_816, 589_824),
    ("POOL", (28, 28, 256), 200_704, 0),
    ("CONV", (28, 28, 512), 401_408, 1_179_648),
    ("CONV", (28, 28, 512), 401_408, 2_359_296),
    ("CONV", (28, 28, 512), 401_408, 2_359_296),
    ("POOL", (14, 14, 512), 100_352, 0),
    ("CONV", (14, 14, 512), 100_352, 2_359_296),
    ("CONV", (14, 14, 512), 100_352, 2_359_296),
    ("CONV", (14, 14, 512), 100_352, 2_359_296),
    ("POOL", (7, 7, 512), 25_088, 0),
    ("FC", (1, 1, 4096), 4_096, 102_760_448),
    ("FC", (1, 1, 4096), 4_096, 16_777_216),
    ("FC", (1, 1, 1000), 1_000, 4_096_000),
]


@pytest.fixture(scope="module")
def vgg16():
    return summarize(zoo.get("vgg16"), (224, 224, 3))


def notes_rows(summary):
    """The summary rows the notes list: everything but RELU and DROPOUT (the notes fold them away)."""
    return [r for r in summary.rows if r.type not in ("RELU", "DROPOUT")]


def test_vgg16_every_row_of_the_notes_table(vgg16):
    rows = notes_rows(vgg16)
    assert len(rows) == len(NOTES_VGG16)
    for row, (kind, shape, acts, weights) in zip(rows, NOTES_VGG16):
        assert row.type.endswith(kind), row.name  # MAXPOOL for POOL
        assert row.output_shape == shape, row.name
        assert row.activations == acts, row.name
        assert row.weights == weights, row.name
        assert row.biases == (shape[2] if kind in ("CONV", "FC") else 0)


def test_vgg16_totals_are_sums_of_rows(vgg16):
    for col in ("activations", "activation_bytes", "stored", "stored_bytes", "weights", "biases", "params", "macs",
                "flops_forward", "flops_backward"):
        assert vgg16.total(col) == sum(getattr(r, col) for r in vgg16.rows)
    assert vgg16.total_params == 138_357_544
    assert vgg16.total_weights == sum(w for *_, w in NOTES_VGG16) == 138_344_128
    assert vgg16.total_macs == 15_470_264_320  # the well-known 15.5 GMACs of VGG16


def test_vgg16_stores_the_notes_sum_of_rows(vgg16):
    # What a forward pass stores: the notes' rows, input included — 15,237,608 values per image.
    # Their "TOTAL memory: 24M * 4 bytes ~= 93MB" is an arithmetic slip (docs/zoo.md); the RELU
    # rows write into the CONV/FC output (in place) and DROPOUT at inference is a view of its
    # input, so they add nothing.  (This total used to be 28,801,512: every RELU row counted
    # again, memory that no forward pass holds.)
    assert vgg16.total_stored == 15_237_608 == sum(acts for _, _, acts, _ in NOTES_VGG16)
    assert vgg16.total_stored_bytes == 4 * 15_237_608
    assert [r.name for r in vgg16.rows if r.storage == "new"] == [r.name for r in notes_rows(vgg16)]
    assert {r.storage for r in vgg16.rows if r.type == "RELU"} == {"in place"}
    assert {r.storage for r in vgg16.rows if r.type == "DROPOUT"} == {"view"}
    # each row still gives its output's size; the sum of those is not memory
    assert vgg16["relu1_1"].activations == 3_211_264 and vgg16["relu1_1"].stored == 0
    assert vgg16.total_activations == 28_801_512
    assert vgg16.total_activation_bytes == 4 * vgg16.total_activations


def test_in_place_follows_the_net():
    # a ReLU whose input another node also reads cannot overwrite it: it stores its own output
    from convnet.layers import Add, Conv2D, ReLU
    from convnet.net import Net

    net = Net(input_shape=(8, 8, 3))
    net.add(Conv2D(4, 3, name="conv"))
    net.add(ReLU(name="relu"))
    net.add(Add(name="add"), inputs=["conv", "relu"])  # conv is read twice; a ReLU keeps its output
    net.add(ReLU(name="relu_out"))
    s = summarize(net)
    assert [r.storage for r in s.rows] == ["new", "new", "new", "new", "in place"]
    net.inplace = False  # Net.forward then writes nothing in place, and the summary says so
    assert {r.storage for r in summarize(net).rows} == {"new"}
    assert summarize(parse("INPUT[8x8x3] -> CONV3-4 -> FLATTEN -> FC-2"))["flatten1"].storage == "view"


def test_vgg16_memory_early_params_late(vgg16):
    convs = [r for r in vgg16.rows if r.type == "CONV"]
    fcs = [r for r in vgg16.rows if r.type == "FC"]
    # most memory in the early CONV layers: the first two blocks hold most of the activations
    early = sum(r.activations for r in vgg16.rows[:11])
    assert early > vgg16.total_activations / 2
    assert max(vgg16.rows, key=lambda r: r.activations).name == "conv1_1"
    # most parameters in the FC layers; fc6 alone holds about 100M of the 138M
    assert sum(r.params for r in fcs) > 0.85 * vgg16.total_params
    assert sum(r.params for r in fcs) > 5 * sum(r.params for r in convs)
    assert vgg16["fc6"].weights == 102_760_448


def test_batch_scales_activations_and_macs_not_params():
    one = summarize(zoo.get("vgg11"), batch=1)
    four = summarize(zoo.get("vgg11"), batch=4)
    assert four.total_activations == 4 * one.total_activations
    assert four.total_macs == 4 * one.total_macs and four.total_params == one.total_params


def test_three_3x3_convs_vs_one_7x7():
    c = 64
    stack = summarize(parse(f"INPUT[32x32x{c}] -> [CONV3-{c}/NOBIAS -> RELU]*3"))
    single = summarize(parse(f"INPUT[32x32x{c}] -> CONV7-{c}/NOBIAS"))
    assert stack.rows[-1].receptive_field == (7, 7) == single.rows[-1].receptive_field
    assert stack.total_weights == 27 * c * c and single.total_weights == 49 * c * c
    assert stack_receptive_field([3, 3, 3], [1, 1, 1]) == (7, 1)
    assert [r.receptive_field[0] for r in stack.rows if r.type == "CONV"] == [3, 5, 7]


def test_receptive_field_and_jump_of_known_nets():
    vgg = summarize(zoo.get("vgg16"))
    assert vgg["pool5"].receptive_field == (212, 212) and vgg["pool5"].jump == (32, 32)
    alex = summarize(zoo.get("alexnet"))
    assert alex["conv1"].receptive_field == (11, 11) and alex["conv1"].jump == (4, 4)
    assert alex["pool2"].receptive_field == (67, 67) and alex["pool2"].jump == (16, 16)
    assert stack_receptive_field([3, 3], [1, 1], [1, 2]) == (7, 1)  # dilation widens the field
    res = summarize(zoo.get("resnet18"))
    assert res["layer4.1.relu2"].jump == (32, 32)


def test_weights_biases_params_and_batchnorm():
    s = summarize(parse("INPUT[8x8x3] -> CONV3-4 -> BN -> RELU -> FC-2/NOBIAS"))
    conv, bn, fc = s["conv1"], s["bn1"], s["fc1"]
    assert (conv.weights, conv.biases, conv.params) == (108, 4, 112)
    assert (bn.weights, bn.biases) == (4, 4)  # gamma and beta count, running stats do not
    assert (fc.weights, fc.biases) == (8 * 8 * 4 * 2, 0)


def test_macs_and_flops_named_distinctly():
    s = summarize(parse("INPUT[8x8x3] -> CONV3-4 -> FC-2"))
    conv = s["conv1"]
    assert conv.macs == 8 * 8 * 4 * 3 * 3 * 3
    assert conv.flops_forward == 2 * conv.macs + 8 * 8 * 4
    assert conv.flops_backward == 4 * conv.macs + 8 * 8 * 4
    assert s["fc1"].macs == 8 * 8 * 4 * 2


def test_grouped_conv_weights():
    alex = summarize(zoo.get("alexnet"))
    assert alex["conv2"].weights == 5 * 5 * 48 * 256
    assert alex["conv2"].macs == 27 * 27 * 256 * 5 * 5 * 48


def test_json_format(vgg16):
    d = json.loads(vgg16.to_json())
    assert d["total_params"] == 138_357_544
    assert d["total_activations"] == vgg16.total_activations
    layer = d["layers"][1]
    assert layer["name"] == "conv1_1" and layer["type"] == "CONV" and layer["output_shape"] == [224, 224, 64]
    for key in ("activations", "weights", "biases", "params", "macs", "flops_forward", "flops_backward",
                "receptive_field", "jump", "activation_bytes", "storage", "stored", "stored_bytes"):
        assert key in layer
    assert d["total_stored"] == 15_237_608 and d["layers"][2]["storage"] == "in place"
    assert d["layers"][-1]["output_shape"] == [1, 1, 1000]


def test_csv_format(vgg16):
    rows = list(csv.DictReader(io.StringIO(vgg16.to_csv())))
    assert len(rows) == len(vgg16.rows)
    assert rows[1]["name"] == "conv1_1" and rows[1]["output_shape"] == "224x224x64"
    assert sum(int(r["params"]) for r in rows) == 138_357_544


def test_text_and_markdown_formats(vgg16):
    text = vgg16.to_text()
    lines = text.splitlines()
    assert lines[0].startswith("vgg16: input 224×224×3")
    assert "name" in lines[1] and "output" in lines[1] and "params" in lines[1]
    assert any(line.startswith("conv1_1") and "224×224×64" in line and "1,792" in line for line in lines)
    total = lines[-2]
    assert total.startswith("total") and "138,357,544" in total
    assert "15.24M" in total and "58.1 MiB" in total  # what is stored (the legend below says so)
    relu = next(line for line in lines if line.startswith("relu1_1"))
    assert relu.split()[3:5] == ["-", "-"]
    assert lines[-1].startswith("'-': the row stores nothing (RELU/ADD written into its input;")
    assert max(len(line) for line in lines) < 160
    md = vgg16.to_markdown()
    assert "| conv1_1 | CONV | 224×224×64 | 3,211,264 |" in md
    assert "| relu1_1 | RELU | 224×224×64 | in place | 0 B |" in md
    assert "| drop6 | DROPOUT | 1×1×4096 | view |" in md
    assert "**138,357,544**" in md and "**15,237,608**" in md
    assert str(vgg16) == text


def test_branched_nets_show_their_inputs():
    s = summarize(zoo.get("resnet18"))
    assert s["layer1.0.add"].inputs == ("layer1.0.bn2", "maxpool")
    assert "inputs" in s.to_text().splitlines()[1]


def test_summary_needs_no_parameters():
    net = zoo.get("vgg19")
    summarize(net, batch=2)
    assert not net.built


def test_summary_argument_errors():
    from convnet.errors import ConfigError, ShapeError

    with pytest.raises(ConfigError, match="batch"):
        summarize(zoo.get("vgg11"), batch=0)
    with pytest.raises(ShapeError, match="input shape"):
        summarize(parse("CONV3-4"))
