"""The model builder: stage layout, stems, names, layer and parameter counts."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nas.candidate import Candidate
from nas.models.blocks import Bypass
from nas.models.resnet import (
    BlockPosition,
    StageSpec,
    build_model,
    make_stages,
    parse_block_name,
)


@pytest.mark.parametrize(
    ("block", "per_stage", "layers"),
    [("basic", 3, 20), ("basic", 5, 32), ("basic", 9, 56), ("basic", 18, 110),
     ("bottleneck", 18, 164), ("preact", 18, 110), ("highway", 3, 20)],
)
def test_layer_count_follows_he_et_al(block: str, per_stage: int, layers: int) -> None:
    model = build_model(Candidate(block=block, blocks_per_stage=per_stage), 3, 10, 32)
    assert model.num_layers == layers
    assert len(model.blocks) == 3 * per_stage


def test_resnet20_has_the_papers_parameter_count() -> None:
    # He et al. (2015), Table 6: ResNet-20 with option A shortcuts has 0.27M parameters.
    model = build_model(Candidate(), 3, 10, 32)
    assert model.num_params == sum(p.numel() for p in model.parameters())
    assert 265_000 < model.num_params < 275_000


def test_make_stages_doubles_width_and_halves_resolution() -> None:
    stages = make_stages(Candidate(stages=4, blocks_per_stage=(1, 2, 3, 1), width=8))
    assert stages == (
        StageSpec(0, 1, 8, 1), StageSpec(1, 2, 16, 2), StageSpec(2, 3, 32, 2),
        StageSpec(3, 1, 64, 2),
    )


def test_blocks_are_named_in_forward_order() -> None:
    model = build_model(Candidate(blocks_per_stage=(2, 1, 3)), 1, 10, 16)
    names = list(model.blocks)
    assert names == ["stages.0.0", "stages.0.1", "stages.1.0", "stages.2.0", "stages.2.1",
                     "stages.2.2"]
    assert model.get_submodule("stages.1.0") is model.blocks["stages.1.0"]
    order: list[str] = []
    hooks = [b.register_forward_hook(lambda m, i, o, n=n: order.append(n))
             for n, b in model.blocks.items()]
    model(torch.randn(2, 1, 16, 16))
    for h in hooks:
        h.remove()
    assert order == names


def test_bottleneck_widths_expand_by_four() -> None:
    model = build_model(Candidate(block="bottleneck", width=16, blocks_per_stage=1), 3, 10, 32)
    assert [b.out_channels for b in model.blocks.values()] == [64, 128, 256]
    assert model.fc.in_features == 256


@pytest.mark.parametrize(("size", "stem_downsamples"), [(16, False), (32, False), (64, True),
                                                        (96, True)])
def test_stem_fits_the_image_size(size: int, stem_downsamples: bool) -> None:
    model = build_model(Candidate(blocks_per_stage=1), 3, 7, size)
    first = model.stem[0]
    assert first.kernel_size == ((7, 7) if stem_downsamples else (3, 3))
    assert any(isinstance(m, nn.MaxPool2d) for m in model.stem) == stem_downsamples
    features = model.stages(model.stem(torch.randn(2, 3, size, size)))
    expected = size // (4 if stem_downsamples else 1) // 4
    assert features.shape[-1] == expected
    assert model(torch.randn(2, 3, size, size)).shape == (2, 7)


def test_preact_network_ends_with_norm_and_relu() -> None:
    model = build_model(Candidate(block="preact", blocks_per_stage=1), 3, 10, 32)
    assert isinstance(model.head_norm[0], nn.BatchNorm2d)
    plain = build_model(Candidate(block="basic", blocks_per_stage=1), 3, 10, 32)
    assert isinstance(plain.head_norm, nn.Identity)


def test_plain_network_has_no_shortcut_parameters() -> None:
    plain = build_model(Candidate(shortcut="none", blocks_per_stage=9), 1, 10, 16)
    assert plain.num_layers == 56
    assert all(not b.has_shortcut for b in plain.blocks.values())
    assert not any("shortcut" in name for name, _ in plain.named_parameters())
    # only the two blocks that change shape cannot be removed
    assert [n for n, b in plain.blocks.items() if not b.removable] == ["stages.1.0", "stages.2.0"]


def test_forward_splits_into_features_and_head_with_checkpoint_names_kept() -> None:
    torch.manual_seed(0)
    model = build_model(Candidate(block="preact", blocks_per_stage=(2, 1)), 1, 10, 16).eval()
    x = torch.randn(3, 1, 16, 16)
    assert torch.equal(model.forward_head(model.forward_features(x)), model(x))
    assert model.stage_modules() == list(model.blocks.values())
    keys = set(model.state_dict())
    assert {"stem.0.weight", "stages.0.0.branch.0.weight", "stages.1.0.branch.2.weight",
            "head_norm.0.weight", "fc.weight", "fc.bias"} <= keys
    assert {k.split(".")[0] for k in keys} == {"stem", "stages", "head_norm", "fc"}


def test_block_names_parse_into_stage_and_index() -> None:
    assert parse_block_name("stages.1.4") == BlockPosition(stage=1, index=4)
    assert parse_block_name("stages.12.0").name == "stages.12.0"
    for name in ("fc", "stem", "stages.x.1", "stages.1", "stages.1.2.branch", "stages.-1.0",
                 " stages.0.0", "stages.0.0.", "blocks.0.0"):
        with pytest.raises(ValueError, match="not a block name"):
            parse_block_name(name)


def test_the_model_says_where_its_blocks_sit() -> None:
    model = build_model(Candidate(blocks_per_stage=(2, 1, 3)), 1, 10, 16)
    positions = [(p.stage, p.index, p.name) for p, _ in model.named_blocks()]
    assert positions == [(0, 0, "stages.0.0"), (0, 1, "stages.0.1"), (1, 0, "stages.1.0"),
                         (2, 0, "stages.2.0"), (2, 1, "stages.2.1"), (2, 2, "stages.2.2")]
    assert [b for _, b in model.named_blocks()] == list(model.blocks.values())
    assert model.stage_depths() == (2, 1, 3)
    assert model.stage_of("stages.2.1") == 2
    with pytest.raises(ValueError, match="no residual block"):
        model.stage_of("stages.3.0")
    # A removed block leaves a Bypass: the others keep their index and name.
    model.remove_blocks(["stages.2.0"])
    assert isinstance(model.stages[2][0], Bypass)
    assert [p.name for p, _ in model.named_blocks()] == list(model.blocks)
    assert model.stage_depths() == (2, 1, 2)
    with pytest.raises(ValueError, match="no residual block"):
        model.stage_of("stages.2.0")
