"""PyTorch and ONNX models: exported, converted by ``python -m vissearch convert``, checked against
the original, searched. The converter's tests need onnx, onnxruntime and onnx2keras (the dev
extra); those that export need torch too (``[torch]``), resnet18's torchvision. Without them
they skip, saying why. torch is imported only by the tests that export (tests/models/torchnets.py),
torchvision only in a process of its own."""

import importlib.util
import subprocess
import sys

import numpy as np
import pytest

for _module in ("onnx", "onnxruntime", "onnx2keras"):
    pytest.importorskip(_module, reason=f"{_module} is not installed (pip install -e '.[dev]')")

import keras  # noqa: E402
import onnx  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402

from vissearch import runconfig, runner  # noqa: E402
from vissearch.cli import main  # noqa: E402
from vissearch.engine.render import render  # noqa: E402
from vissearch.errors import UserError  # noqa: E402
from vissearch.models import onnxconvert  # noqa: E402
from vissearch.models import resolve as models  # noqa: E402
from vissearch.settings.config import ModelSpec, RenderSettings, TargetSpec  # noqa: E402

# torch's legacy (TorchScript) exporter warns that it is deprecated (it is what onnx2keras
# reads), and that a traced shape is a constant (the export's size, as intended)
pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore:Converting a tensor to a Python integer"),
              pytest.mark.filterwarnings("ignore:Constant folding")]
MATCH = 1e-4  # largest |Keras - torch| accepted on a logit of these float32 networks


def torchnets():
    """The PyTorch networks, or a skip that says torch is missing."""
    pytest.importorskip("torch", reason="torch is not installed (pip install -e '.[torch]')")
    import torchnets as nets

    return nets


def probe(side: int) -> np.ndarray:
    return np.random.default_rng(7).standard_normal((2, 3, side, side), dtype=np.float32)


def keras_logits(model, side: int) -> np.ndarray:
    return np.asarray(model(np.transpose(probe(side), (0, 2, 3, 1)), training=False))


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    nets = torchnets()
    path = tmp_path_factory.mktemp("onnx") / "small.onnx"
    return path, nets.export(nets.Small(), path, probe(32))


def test_convert_matches_torch_names_layers_and_reloads_safely(small, tmp_path, capsys):
    path, want = small
    out = tmp_path / "small.keras"
    assert main(["convert", str(path), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "largest difference from onnxruntime" in text and "/conv2/Conv" in text
    model = keras.saving.load_model(out, compile=False)  # safe mode: no Lambda layers
    names = [layer.name for layer in model.layers]
    assert {"conv1", "bn1", "pool", "conv2", "fc"} - {"bn1"} <= set(names)
    assert model.input_shape == (None, None, None, 3)  # NHWC, any size
    assert np.abs(keras_logits(model, 32) - want).max() < MATCH
    loaded = models.load(ModelSpec(path=str(out), preprocess="torch"))
    result = render(loaded, TargetSpec(kind="filter", layer="conv2", indices=[0, 1]),
                    RenderSettings(size=32, steps=8, lr=0.5))
    assert (result.activations > result.curves[0]).all()


def refused(args: list[str], capsys) -> str:
    assert main(args) != 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    return lines[0]


def test_past_the_tolerance_it_is_refused_with_the_figure(small, tmp_path, capsys):
    path, _ = small
    out = tmp_path / "m.keras"
    line = refused(["convert", str(path), "--out", str(out), "--tolerance", "1e-12"], capsys)
    assert "differs from onnxruntime by up to" in line and "1e-12" in line
    assert list(tmp_path.iterdir()) == []


def graph_file(path, nodes, inputs, outputs, inits=()) -> str:
    model = helper.make_model(helper.make_graph(nodes, "g", inputs, outputs, list(inits)),
                              opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(model, str(path))
    return str(path)


def value(name, dims):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, dims)


def weight(name, shape):
    data = np.ones(shape, np.float32).ravel().tolist()
    return helper.make_tensor(name, TensorProto.FLOAT, shape, data)


def bad_files(tmp_path) -> dict[str, tuple[str, str]]:
    conv = helper.make_node("Conv", ["x", "w"], ["c"], name="/conv/Conv")
    w = weight("w", [4, 3, 3, 3])
    return {
        "not onnx": (str((tmp_path / "a.onnx").write_text("hello") and tmp_path / "a.onnx"),
                     "is not an ONNX model"),
        "operator": (graph_file(tmp_path / "b.onnx", [conv, helper.make_node(
            "Erf", ["c"], ["y"], name="/erf/Erf")], [value("x", [1, 3, 8, 8])],
            [value("y", [1, 4, 6, 6])], [w]), "operator Erf (node '/erf/Erf')"),
        "dynamic": (graph_file(tmp_path / "c.onnx", [conv], [value("x", ["N", 3, "H", "W"])],
                               [value("c", ["N", 4, "h", "w"])], [w]), "--size"),
        "no spatial": (graph_file(tmp_path / "d.onnx", [
            helper.make_node("GlobalAveragePool", ["x"], ["p"], name="/pool/GAP"),
            helper.make_node("Flatten", ["p"], ["y"], name="/flat/Flatten")],
            [value("x", [1, 3, 8, 8])], [value("y", [1, 3])]), "no spatial layer"),
        "missing": (str(tmp_path / "none.onnx"), "no such file"),
    }


@pytest.mark.parametrize("case", ["not onnx", "operator", "dynamic", "no spatial", "missing"])
def test_bad_files_are_one_line_and_leave_nothing(case, tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    path, expected = bad_files(src)[case]
    out = tmp_path / "out" / "m.keras"
    assert expected in refused(["convert", path, "--out", str(out)], capsys)
    assert not (tmp_path / "out").exists()


def test_a_dynamic_file_converts_at_the_size_given(tmp_path):
    nets = torchnets()
    path = tmp_path / "dyn.onnx"
    nets.torch.onnx.export(nets.Small().eval(), nets.torch.zeros(1, 3, 32, 32), str(path),
                           dynamo=False, input_names=["image"],
                           dynamic_axes={"image": {0: "n", 2: "h", 3: "w"}})
    done = onnxconvert.checked(path, size=40)
    assert done.size == 40 and done.difference < MATCH


def test_the_config_form_converts_once_beside_the_file(small, tmp_path, capsys):
    path, _ = small
    copy = tmp_path / "small.onnx"
    copy.write_bytes(path.read_bytes())
    spec = ModelSpec(onnx=str(copy), preprocess="torch")
    first = models.load(spec)
    cached = sorted(tmp_path.glob("small.onnx.*.keras"))
    assert len(cached) == 1 and onnxconvert.source_hash(copy) in cached[0].name
    stamp = cached[0].stat().st_mtime_ns
    again = models.load(spec)
    assert cached[0].stat().st_mtime_ns == stamp  # not converted again
    assert first.label == again.label == "small.onnx"
    assert first.preprocess.mode == "torch"
    assert main(["layers", str(copy)]) == 0 and "conv2" in capsys.readouterr().out
    assert sorted(tmp_path.glob("small.onnx.*.keras")) == cached  # the same cache


def test_a_study_of_an_onnx_model_runs_and_reproduces_identical_bytes(small, tmp_path):
    from vissearch.reproduce import reproduce

    path, _ = small
    copy = tmp_path / "small.onnx"
    copy.write_bytes(path.read_bytes())
    cfg = runconfig.from_mapping({
        "study": {"name": "small-onnx", "seed": 5, "n_trials": 2, "results": str(tmp_path)},
        "model": {"onnx": str(copy), "preprocess": "torch"},
        "target": {"kind": "filter", "layer": "conv2", "indices": [0, 1]},
        "render": {"size": 32, "steps": 6},
        "search": {"lr": {"log_uniform": [0.05, 1.0]}}})
    study = runner.run(cfg, progress=False)
    assert [t.state.name for t in study.get_trials()] == ["COMPLETE"] * 2
    for cache in tmp_path.glob("small.onnx.*.keras"):
        cache.unlink()  # converted again for the reproduction: the same model, the same bytes
    trial, _, same = reproduce(study, "best", tmp_path / "again")
    assert same and all(same.values()), same


# torchvision loads triton, which crashes a process that has TensorFlow loaded: the export runs
# in its own process, as a user's would
RESNET18 = """
import sys
import numpy as np, torch, torchvision
torch.manual_seed(0)
model = torchvision.models.resnet18(weights=None).eval()
x = torch.from_numpy(np.load(sys.argv[2]))
torch.onnx.export(model, x, sys.argv[1], input_names=["image"], output_names=["logits"],
                  dynamo=False)
with torch.no_grad():
    np.save(sys.argv[3], model(x).numpy())
"""


@pytest.fixture(scope="module")
def resnet18(tmp_path_factory):
    """torchvision's resnet18, random weights (no download), exported at 64 px."""
    if importlib.util.find_spec("torchvision") is None:
        pytest.skip("torchvision is not installed (pip install torchvision; 5.5 GB with torch)")
    folder = tmp_path_factory.mktemp("resnet")
    path, x, y = folder / "resnet18.onnx", folder / "x.npy", folder / "y.npy"
    np.save(x, probe(64))
    subprocess.run([sys.executable, "-W", "ignore", "-c", RESNET18, str(path), str(x), str(y)],
                   check=True, capture_output=True)
    return path, np.load(y)


def test_resnet18_converts_and_matches_torch(resnet18):
    path, want = resnet18
    done = onnxconvert.checked(path)
    assert done.fixed_size is None and done.difference < MATCH
    assert np.abs(keras_logits(done.model, 64) - want).max() < MATCH
    names = {layer.name for layer in done.model.layers}
    assert {"conv1", "layer1", "layer1.0", "layer2", "layer4", "fc"} <= names


def test_resnet18_is_searched_on_layer1_and_its_classes_render(resnet18, tmp_path):
    path, _ = resnet18
    cfg = runconfig.from_mapping({
        "study": {"name": "resnet18", "seed": 3, "n_trials": 2, "results": str(tmp_path)},
        "model": {"onnx": str(path), "preprocess": "torch"},
        "target": {"kind": "filter", "layer": "layer1", "indices": [0, 1]},
        "render": {"size": 32, "steps": 6},
        "search": {"lr": {"log_uniform": [0.05, 1.0]}}})
    study = runner.run(cfg, progress=False)
    assert [t.state.name for t in study.get_trials()] == ["COMPLETE"] * 2
    loaded = models.load(ModelSpec(onnx=str(path), preprocess="torch"))
    assert loaded.class_names is not None and len(loaded.class_names) == 1000  # ImageNet's
    for target in (TargetSpec(kind="filter", layer="layer1", indices=[0, 1]),
                   TargetSpec(kind="class", indices=[1, 2])):
        result = render(loaded, target, RenderSettings(size=64, steps=8, lr=0.5))
        assert (result.activations > result.curves[0]).all(), target.kind


def test_lite0_from_its_pytorch_weights_agrees_with_the_zoo_model(tmp_path):
    """Two independent paths from one checkpoint: torch -> ONNX -> Keras, and the zoo's own
    Keras network filled by the project's checkpoint reader. Same photo, same logits."""
    from skimage import data as photos

    from vissearch.models.zoo import efficientnet

    nets = torchnets()
    net = nets.Lite0().eval()
    state = nets.torch.load(efficientnet.checkpoint("efficientnet-lite0"), weights_only=True)
    net.load_state_dict(state)
    path = tmp_path / "lite0.onnx"
    nets.torch.onnx.export(net, nets.torch.zeros(1, 3, 224, 224), str(path), dynamo=False,
                           input_names=["image"], output_names=["logits"])
    converted = onnxconvert.checked(path)
    zoo = models.load(ModelSpec(name="zoo/efficientnet-lite0"))
    photo = photos.chelsea()[:, 75:375].astype(np.float32)  # 300 x 300 around the cat
    x = zoo.preprocess.to_input(keras.ops.image.resize(photo[None], (224, 224)))
    want = np.asarray(zoo.model(x, training=False))
    got = np.asarray(converted.model(x, training=False))
    # float32 through two different graphs: 1e-4 of the largest logit (measured: 5e-6)
    assert np.abs(got - want).max() < 1e-4 * np.abs(want).max()
    assert got.argmax() == want.argmax() and want.argmax() in (281, 282, 285)  # a cat


def test_class_names_come_from_a_file_and_must_match_the_outputs(small, tmp_path):
    path, _ = small
    names = tmp_path / "classes.txt"
    names.write_text("cat\ndog\nfox\nowl\nbee\n", encoding="utf-8")
    loaded = models.load(ModelSpec(onnx=str(path), preprocess="torch", classes=str(names)))
    assert loaded.class_names == ("cat", "dog", "fox", "owl", "bee")
    cfg = runconfig.from_mapping({
        "study": {"name": "named", "results": str(tmp_path)},
        "model": {"onnx": str(path), "preprocess": "torch", "classes": str(names)},
        "target": {"kind": "class", "indices": ["owl", 1]}, "render": {"size": 32}})
    assert cfg.target.indices == [3, 1]
    short = tmp_path / "three.txt"
    short.write_text("a\nb\nc\n", encoding="utf-8")
    with pytest.raises(UserError, match="names 3 classes; the model has 5 outputs"):
        models.load(ModelSpec(onnx=str(path), classes=str(short)))


def test_an_out_that_cannot_be_written_is_one_line_and_leaves_nothing(small, tmp_path, capsys):
    path, _ = small
    blocker = tmp_path / "file"
    blocker.write_text("x")
    line = refused(["convert", str(path), "--out", str(blocker / "sub" / "m.keras")], capsys)
    assert "cannot write it" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
