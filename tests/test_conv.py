"""The convolutional autoencoder: shapes on any image size, tied deconvolutions, images required."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import FAST

import autoencoders
from autoencoders import ConvAutoencoder, UserError
from autoencoders.training.layerwise import cache_features


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (1, 7, 7), (3, 10, 6)])
@pytest.mark.parametrize("kernel", [3, 4, 5])
def test_reconstructions_have_the_input_shape(shape, kernel):
    torch.manual_seed(0)
    model = ConvAutoencoder(shape, [4, 6], [int(np.prod(shape)), 5], kernel_size=kernel)
    x = torch.rand(3, int(np.prod(shape)))
    out = model(x)
    assert out.logits.shape == x.shape and out.code.shape == (3, 5)
    # stride-2 convolutions with padding k//2: ceil(n/2) for odd kernels, n//2 + 1 for even ones
    half = (lambda n: (n + 1) // 2) if kernel % 2 else (lambda n: n // 2 + 1)
    c, h, w = shape
    assert model.encoder[0].out_shape == (4, half(h), half(w))
    assert model.encoder[1].out_shape == (6, half(half(h)), half(half(w)))
    assert [d.out_shape for d in model.decoder[-2:]] == [model.encoder[1].in_shape, tuple(shape)]


def test_dense_part_between_convolutions_and_code():
    model = ConvAutoencoder((1, 8, 8), [4], [64, 12, 3])
    # 4 channels of 4×4 flattened, then 12, then the code of 3; mirrored back
    assert [m.out_features for m in model.encoder[1:]] == [12, 3]
    assert [m.out_features for m in model.decoder[:2]] == [12, 64]
    assert model.code_size == 3 and model.depth == 3


def test_tied_deconvolution_uses_the_convolution_weight():
    torch.manual_seed(0)
    tied = ConvAutoencoder((1, 8, 8), [4, 6], [64, 5], tied=True)
    for conv, deconv in zip(tied.encoder[:2], reversed(tied.decoder[-2:])):
        assert deconv.weight.data_ptr() == conv.weight.data_ptr()
    keys = set(tied.state_dict())
    assert not any(k.startswith("decoder.") and k.endswith("weight") and "deconv" in k for k in keys)
    # the tied transposed convolution is the adjoint of the convolution: <Cx, y> = <x, C^T y>
    conv, deconv = tied.encoder[0], tied.decoder[-1]
    x, y = torch.rand(2, 64), torch.rand(2, int(np.prod(conv.out_shape)))
    with torch.no_grad():
        cx = conv(x) - conv.conv.bias.repeat_interleave(16)
        cty = deconv(y) - deconv.bias.repeat_interleave(64)
    assert (cx * y).sum().item() == pytest.approx((x * cty).sum().item(), rel=1e-4)


def test_conv_needs_images(tmp_path):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((40, 16)).astype(np.float32))
    spec = f"npy:{tmp_path / 'x.npy'}"
    with pytest.raises(UserError, match="model conv needs images.*image_shape"):
        autoencoders.train(data=spec, model="conv", epochs=1, out=str(tmp_path / "a"), **FAST)
    with pytest.raises(UserError, match="image_shape 1,5,5 holds 25 values but each row has 16"):
        autoencoders.train(data=spec, model="conv", image_shape=[1, 5, 5], out=str(tmp_path / "b"), **FAST)
    run = autoencoders.train(
        data=spec, model="conv", image_shape=[4, 4], layers=[16, 3], channels=[4], epochs=1,
        out=str(tmp_path / "c"), **FAST,
    )  # fmt: skip
    assert run.model.input_shape == (1, 4, 4)


def test_greedy_conv_stages_cache_feature_maps():
    torch.manual_seed(0)
    model = ConvAutoencoder((1, 8, 8), [4, 6], [64, 5])
    pairs = model.layer_pairs()
    assert len(pairs) == 3  # two conv/deconv pairs and the dense code pair
    h = torch.rand(10, 64)
    for pair, width in zip(pairs, (4 * 4 * 4, 6 * 2 * 2, 5)):
        h = cache_features(pair, h, memory_budget=1 << 30)
        assert h.shape == (10, width) and pair.width == width
    # a stage reconstructs its own input: the mirror maps features back to the input's size
    with torch.no_grad():
        assert pairs[1](torch.rand(2, 64)).logits.shape == (2, 64)


def test_a_kernel_larger_than_its_maps_is_refused_for_new_runs_only(tmp_path):
    with pytest.raises(UserError, match="kernel_size 5 is larger than the 4×4 maps convolution 2 sees"):
        autoencoders.train(model="conv", kernel_size=5, channels=[4, 8], out=str(tmp_path / "r"), **FAST)
    assert not (tmp_path / "r").exists()
    # images a pixel high take no kernel (at least 2 wide): the fix named is one that works
    np.save(tmp_path / "line.npy", np.random.default_rng(0).random((30, 1, 20), dtype=np.float32))
    with pytest.raises(UserError, match=r"than the 1×20 images; give model dense \(no kernel fits\)$"):
        autoencoders.train(data=f"npy:{tmp_path / 'line.npy'}", model="conv", out=str(tmp_path / "r"), **FAST)
    # a model of such settings, as runs trained before the check hold, is still built
    assert ConvAutoencoder((1, 8, 8), [4], [64, 3], kernel_size=9)(torch.rand(2, 64)).logits.shape == (2, 64)
