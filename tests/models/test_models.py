"""ResNet family, registry and model card."""

from __future__ import annotations

import pytest
import torch
import torchvision

from tests.conftest import tiny_card
from zoomplan.errors import CheckpointError
from zoomplan.models import create_model, list_models
from zoomplan.models.card import ModelCard


def test_width64_imagenet_stem_matches_torchvision_resnet18() -> None:
    ours = create_model("resnet18", num_outputs=10, width=64, stem="imagenet")
    ref = torchvision.models.resnet18(num_classes=10)
    ours_shapes = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    ref_shapes = {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    assert ours_shapes == ref_shapes
    ours.load_state_dict(ref.state_dict())
    ours.eval(), ref.eval()
    x = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(ours(x), ref(x))


@pytest.mark.parametrize(
    "name,stem,size",
    [("resnet8", "small", 8), ("resnet14", "small", 8), ("resnet18", "medium", 32), ("resnet50", "imagenet", 96)],
)
def test_models_accept_their_input_sizes(name: str, stem: str, size: int) -> None:
    m = create_model(name, num_outputs=16, width=8, stem=stem).eval()
    assert m(torch.randn(3, 3, size, size)).shape == (3, 16)


def test_width_scales_parameters() -> None:
    n = lambda w: sum(p.numel() for p in create_model("resnet18", num_outputs=21, width=w).parameters())  # noqa: E731
    assert 3.5 < n(64) / n(32) < 4.1


def test_registry_rejects_unknown_names() -> None:
    assert {"resnet8", "resnet18", "resnet34", "resnet50"} <= set(list_models())
    with pytest.raises(KeyError, match="unknown model"):
        create_model("vgg16", num_outputs=2)


def test_card_round_trips_and_validates() -> None:
    card = tiny_card()
    again = ModelCard.from_dict(card.to_dict())
    assert again == card
    assert card.num_patches == 16 and card.patch_ground_m == (20.0, 20.0)
    assert card.sensor("sentinel2_toa").scale == pytest.approx(1e-4)
    with pytest.raises(CheckpointError, match="no LR sensor mapping"):
        card.sensor("landsat")
    with pytest.raises(CheckpointError, match="patch_grid"):
        tiny_card(hr_size_px=30)
    with pytest.raises(CheckpointError, match="combine"):
        tiny_card(combine="max")


def test_patch_head_scores_each_patch_from_what_lies_under_it() -> None:
    torch.manual_seed(0)
    m = create_model(
        "resnet8", num_outputs=16, width=8, stem="small", head="patch", grid=[4, 4], padding="reflect"
    ).eval()
    assert {k for k in m.state_dict() if k.startswith("fc.")} == {
        "fc.patch.weight",
        "fc.patch.bias",
        "fc.tile.weight",
        "fc.tile.bias",
    }
    with torch.no_grad():
        # Uniform ground: one score for every patch (no position is preferred).
        flat = m(torch.full((2, 3, 16, 16), 0.3))
        assert flat.shape == (2, 16)
        torch.testing.assert_close(flat, flat[:, :1].expand(-1, 16))
        # Change the ground under patch (row 1, col 2) only: its score moves most. A 1x1 head over the
        # patch's own feature cell puts the change there first; neighbours see it through the receptive field.
        x = torch.full((1, 3, 16, 16), 0.3)
        x[:, :, 4:8, 8:12] = torch.rand(1, 3, 4, 4)
        delta = (m(x) - m(torch.full((1, 3, 16, 16), 0.3))).abs()[0]
        m.fc.patch.weight.data.zero_()  # the tile-wide term alone shifts every patch alike
        shift = m(x) - m(torch.full((1, 3, 16, 16), 0.3))
    assert int(delta.argmax()) == 4 * 1 + 2 and float(delta.max()) > 0
    torch.testing.assert_close(shift, shift[:, :1].expand(-1, 16))


def test_zero_padding_tells_the_edge_from_the_middle() -> None:
    # Why policies use reflect padding: with torchvision's zero padding a uniform image already scores
    # edge patches apart from middle ones, so a patch head could learn positions (a fixed mask).
    torch.manual_seed(0)
    m = create_model("resnet8", num_outputs=16, width=8, stem="small", head="patch", grid=[4, 4]).eval()
    with torch.no_grad():
        s = m(torch.full((1, 3, 16, 16), 0.3))[0]
    assert float(s.max() - s.min()) > 1e-3


def test_patch_head_and_padding_are_checked() -> None:
    with pytest.raises(ValueError, match="rows \\* cols = 16"):
        create_model("resnet8", num_outputs=16, width=8, stem="small", head="patch", grid=[3, 3])
    with pytest.raises(ValueError, match="head must be one of"):
        create_model("resnet8", num_outputs=16, width=8, head="conv")
    with pytest.raises(ValueError, match="padding must be one of"):
        create_model("resnet8", num_outputs=16, width=8, padding="circular")
