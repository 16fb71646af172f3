"""Augmentations: shapes kept, randomness from the given generator only, what each one does, and
the spec/context checks that pick one."""

from __future__ import annotations

import pytest
import torch

from nlx.augment import augment_views, augmentation_names, check_augmentation, crop_flip, feature_dropout, gaussian
from nlx.errors import SpecError
from nlx.specs import RunSpec


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_crop_flip_outputs_shifted_or_mirrored_windows_of_the_padded_image():
    x = torch.arange(1, 2 * 64 + 1, dtype=torch.float32).reshape(2, 1, 8, 8).repeat(16, 1, 1, 1)  # 32 images
    out = crop_flip(x, gen())
    assert out.shape == x.shape
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1))
    flips = 0
    for image, source in zip(out, padded):
        windows = [source[:, i : i + 8, j : j + 8] for i in range(3) for j in range(3)]
        plain = any(torch.equal(image, w) for w in windows)
        mirrored = any(torch.equal(image, w.flip(-1)) for w in windows)
        assert plain or mirrored
        flips += mirrored and not plain
    assert 4 <= flips <= 28  # about half are flipped
    assert not torch.equal(out, x)


def test_same_generator_state_same_augmentation():
    x = torch.rand(8, 1, 8, 8)
    for name in augmentation_names():
        a = augment_views(name, [x], gen(3))[0]
        b = augment_views(name, [x], gen(3))[0]
        assert torch.equal(a, b), name
    assert not torch.equal(crop_flip(x, gen(1)), crop_flip(x, gen(2)))


def test_gaussian_noise_follows_each_features_scale():
    x = torch.randn(4000, 3) * torch.tensor([0.0, 1.0, 10.0])
    delta = gaussian(x, gen()) - x
    assert torch.equal(delta[:, 0], torch.zeros(4000))  # a constant feature stays constant
    assert delta[:, 1].std() == pytest.approx(0.1, rel=0.1)
    assert delta[:, 2].std() == pytest.approx(1.0, rel=0.1)


def test_feature_dropout_zeroes_a_tenth_and_keeps_the_mean():
    x = torch.ones(200, 100)
    out = feature_dropout(x, gen())
    assert (out == 0).float().mean() == pytest.approx(0.1, abs=0.02)
    assert out.mean() == pytest.approx(1.0, abs=0.03)


def test_image_augmentation_is_refused_for_feature_views():
    assert check_augmentation("crop_flip", [(1, 8, 8)]) is None
    assert "needs image views" in check_augmentation("crop_flip", [(64,)])
    assert check_augmentation("gaussian", [(64,)]) is None
    assert "unknown" in check_augmentation("blur", [(64,)])


def test_spec_validates_the_augmentation_name():
    assert RunSpec().data.augment == "none"
    assert RunSpec.model_validate({"data": {"augment": "crop_flip"}}).data.augment == "crop_flip"
    with pytest.raises(Exception, match="unknown augmentation"):
        RunSpec.model_validate({"data": {"augment": "blur"}})


def test_context_refuses_crop_flip_on_features():
    from nlx.context import MethodContext

    spec = RunSpec.model_validate({"data": {"augment": "crop_flip"}})
    with pytest.raises(SpecError, match="data.augment"):
        MethodContext(spec, torch.device("cpu"), [(64,)], 10, [torch.zeros(4, 64)], torch.zeros(4, dtype=torch.int64), gen())
