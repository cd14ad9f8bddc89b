"""Devices, precision and threads, chosen in one place (interlat/runtime.py), and sampling that
stays on the logits' device (interlat/model/decode.py)."""

import subprocess
import sys
import warnings

import torch
import yaml

from interlat import runtime
from interlat.model.decode import draw, inverse_cdf
from tests.helpers import REPO


def test_device_is_this_ranks_gpu_or_the_cpu(monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert runtime.local_device(cuda=True) == "cuda:3"
    assert runtime.local_device(cuda=False) == "cpu"
    monkeypatch.delenv("LOCAL_RANK")
    assert runtime.local_device(cuda=True) == "cuda:0"
    assert runtime.local_device() == ("cuda:0" if torch.cuda.is_available() else "cpu")


def test_forward_models_are_bf16_on_gpus_and_fp32_on_cpus():
    assert runtime.compute_dtype("cuda:1") == torch.bfloat16
    assert runtime.compute_dtype(torch.device("cuda", 0)) == torch.bfloat16
    assert runtime.compute_dtype("cpu") == torch.float32
    assert runtime.bf16_enabled("cuda:0") and not runtime.bf16_enabled("cpu")
    assert runtime.MASTER_DTYPE == "float32"


def test_autocast_is_bf16_on_gpus_and_nothing_on_cpus():
    a = torch.randn(4, 4)
    with runtime.autocast("cpu"):
        assert not torch.is_autocast_enabled("cpu")
        assert (a @ a).dtype == torch.float32
    with warnings.catch_warnings():  # torch warns that CUDA autocast is off without a GPU
        warnings.simplefilter("ignore", UserWarning)
        ctx = runtime.autocast("cuda:0")
    assert isinstance(ctx, torch.autocast) and ctx.fast_dtype == torch.bfloat16 and ctx.device == "cuda"


def test_threads_split_over_the_ranks_on_the_node(monkeypatch):
    assert runtime.rank_threads(8, 4) == 2
    assert runtime.rank_threads(3, 4) == 1
    assert runtime.rank_threads(8, 1) == 8
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert runtime.rank_threads(8) == 4


def test_cli_threads_set_torch_threads_per_rank():
    """`interlat --threads 6` under torchrun's LOCAL_WORLD_SIZE=3 gives each rank 2 threads."""
    code = ("import torch; from click.testing import CliRunner; from interlat.cli import main; "
            "r = CliRunner().invoke(main, ['--threads', '6', 'data', '--help']); "
            "print(r.exit_code, torch.get_num_threads())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"LOCAL_WORLD_SIZE": "3", "PATH": "/usr/bin:/bin"}, cwd=REPO)
    assert out.stdout.split() == ["0", "2"], out.stderr[-2000:]


def test_evaluation_loads_the_receiver_through_the_one_choice(tiny):
    """load_receiver/load_student take the dtype of runtime.compute_dtype for their device."""
    import interlat

    model, _ = interlat.load_receiver(tiny["receiver_ckpt"], device="cpu")
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    half, _ = interlat.load_receiver(tiny["receiver_ckpt"], device="cpu", dtype=torch.bfloat16)
    assert {p.dtype for p in half.parameters()} == {torch.bfloat16}  # the adapter follows the LM


def test_slurm_profile_threads_follow_the_cores_each_gpu_job_books():
    """profiles/slurm: every rule with set-resources cpus_per_task has set-threads equal to it,
    so `interlat --threads {threads}` uses the cores the job books."""
    profile = yaml.safe_load((REPO / "profiles/slurm/profile.yaml").read_text())
    threads = profile.get("set-threads", {})
    booked = {rule: res["cpus_per_task"] for rule, res in profile["set-resources"].items() if "cpus_per_task" in res}
    assert {"collect", "train", "compress", "evaluate", "latency"} <= set(booked)
    assert {rule: threads.get(rule) for rule in booked} == booked


def test_inverse_cdf_draws_in_proportion_and_never_a_zero_probability_entry():
    probs = torch.tensor([[0.0, 0.5, 0.0, 0.25, 0.25, 0.0]]).repeat(20000, 1)
    u = torch.rand(20000, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    idx = inverse_cdf(probs, u).flatten()
    counts = torch.bincount(idx, minlength=6).double() / len(idx)
    assert counts[[0, 2, 5]].sum() == 0
    assert torch.allclose(counts[[1, 3, 4]], torch.tensor([0.5, 0.25, 0.25], dtype=torch.float64), atol=0.015)
    edges = inverse_cdf(probs[:3], torch.tensor([[0.0], [0.5], [1.0 - 1e-17]], dtype=torch.float64)).flatten()
    assert edges.tolist() == [1, 3, 4]  # u=0: the first real entry; u->1: the last real one, never a trailing zero


def test_draw_on_the_generators_device_is_torch_multinomial():
    """Same device as the generator (the CPU path): exactly torch.multinomial's draws."""
    probs = torch.softmax(torch.randn(5, 100, generator=torch.Generator().manual_seed(1)), -1)
    a = draw(probs, torch.Generator().manual_seed(7))
    b = torch.multinomial(probs, 1, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)


def test_decode_source_has_no_host_copy_of_the_vocabulary():
    """No `.cpu()` / `.tolist()` of probabilities or logits inside the decode loop's sampling."""
    import inspect

    from interlat.model import decode

    for fn in (decode.sample_next, decode.draw, decode.inverse_cdf):
        src = inspect.getsource(fn)
        assert ".cpu()" not in src and ".tolist()" not in src and ".numpy()" not in src, fn.__name__


def test_dtype_choice_is_written_once():
    """Stage code asks interlat.runtime; no other module picks bf16 from torch.cuda.is_available()."""
    offenders = []
    for path in (REPO / "interlat").rglob("*.py"):
        if path.name in ("runtime.py",) or "bench" in path.parts:
            continue
        text = path.read_text()
        if "torch.bfloat16 if" in text and "cuda" in text.split("torch.bfloat16 if", 1)[1][:80]:
            offenders.append(str(path.relative_to(REPO)))
        if '"cuda" if torch.cuda.is_available()' in text:  # the device, too, comes from local_device()
            offenders.append(str(path.relative_to(REPO)))
    assert not offenders, offenders
