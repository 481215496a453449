"""A run folder's files: the checkpoint round trip, and starting weights loaded through the zoo."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from sdr2hdr.errors import WeightsError
from sdr2hdr.training import TrainConfig, load_checkpoint
from sdr2hdr.training.checkpoint import load_init, write_checkpoint


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    lin = nn.Linear(3, 2)
    opt = torch.optim.Adam(lin.parameters())
    lin(torch.ones(1, 3)).sum().backward()
    opt.step()
    cfg = TrainConfig(data=["d"], stage="jsinet", real_share=0.5)
    path = write_checkpoint(tmp_path, cfg, stage="jsinet", step=3, total=5, best={"jsinet": 12.5, "jsigan": None},
                            done_steps={"jsinet": 3}, models={"generator": lin}, opts={"opt_g": opt})
    ck = load_checkpoint(tmp_path)
    assert path == tmp_path / "checkpoint.pt" and (ck["stage"], ck["step"], ck["total"]) == ("jsinet", 3, 5)
    assert ck["best"] == {"jsinet": 12.5, "jsigan": None} and ck["done_steps"] == {"jsinet": 3}
    assert torch.equal(ck["generator"]["weight"], lin.weight.detach())
    assert torch.equal(ck["opt_g"]["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    assert '"real_share": 0.5' in ck["config"]


def test_init_weights_go_through_the_zoo(tmp_path: Path) -> None:
    from sdr2hdr.models import JSInet
    from sdr2hdr.zoo import save_weights

    torch.manual_seed(5)
    src = JSInet(scale=2)
    path = tmp_path / "w.safetensors"
    save_weights(src, path, architecture="jsinet", scale=2, variant="jsinet")
    g = JSInet(scale=2)
    rng = torch.get_rng_state()
    load_init(g, path, 2)
    assert torch.equal(torch.get_rng_state(), rng)  # loading does not move the run's random numbers
    assert all(torch.equal(a, b) for a, b in zip(g.state_dict().values(), src.state_dict().values()))
    with pytest.raises(WeightsError, match="is x2, but --scale 4"):
        load_init(JSInet(scale=4), path, 4)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not weights")
    with pytest.raises(WeightsError, match="not a valid safetensors file"):
        load_init(g, bad, 2)
