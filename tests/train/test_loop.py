"""`interlat.train.loop.TrainLoop`'s saved state: each rank resumes its own random stream."""

import pytest
import torch

from interlat.errors import InterlatError
from interlat.train.loop import TrainLoop


class Loop(TrainLoop):
    """The smallest loop: one Linear, AdamW and the linear schedule."""

    def __init__(self, work_dir, rank: int):
        super().__init__(work_dir, rank=rank, world=1)  # world 1: no process group, no barriers
        self.module = torch.nn.Linear(3, 2)
        self.opt = torch.optim.AdamW(self.module.parameters(), lr=1e-2)
        self.sched = self.scheduler(self.opt, 0.1, 10)

    def state_module(self):
        return self.module


def test_each_rank_resumes_its_own_random_stream(tmp_path):
    """Ranks draw different dropout masks, so their generators part; a resumed rank 1 given rank
    0's generator (as before) would train on masks an uninterrupted run never drew."""
    streams = {}
    for rank in (0, 1):
        torch.manual_seed(0)
        torch.rand(3 + 4 * rank)  # the ranks have drawn differently by the save
        Loop(tmp_path, rank).engine_state(tmp_path)
        streams[rank] = torch.rand(5)  # what each rank draws next, uninterrupted
    assert not torch.equal(streams[0], streams[1])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rng-rank0.pt", "rng-rank1.pt", "state.pt"]
    for rank in (1, 0):
        torch.manual_seed(123)
        Loop(tmp_path, rank).load_engine_state(tmp_path)
        assert torch.equal(torch.rand(5), streams[rank])


def test_a_missing_rank_stream_is_one_line(tmp_path):
    Loop(tmp_path, 0).engine_state(tmp_path)
    with pytest.raises(InterlatError, match=r"no RNG state for rank 1 \(rng-rank1.pt\)"):
        Loop(tmp_path, 1).load_engine_state(tmp_path)
