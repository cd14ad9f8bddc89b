"""interlat.variants: the message variants of docs/method.md section 5 (and the section 4 baselines)."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from interlat import variants
from interlat.variants import MESSAGE_VARIANTS, is_message_variant, perturb

RANDOM_VARIANTS = [
    "covnoise_0.5",
    "covnoise_1.0",
    "whitenoise",
    "covgauss_0mu",
    "covgauss_mu",
    "randomrot",
]
SEEDS = st.integers(min_value=0, max_value=2**31 - 1)


def _message(T: int, D: int, seed: int, dtype=torch.float32) -> torch.Tensor:
    """A non-degenerate message: Gaussian rows with an offset mean and uneven scales."""
    g = torch.Generator().manual_seed(seed)
    scales = torch.linspace(0.5, 3.0, D, dtype=torch.float64)
    H = 2.0 + scales * torch.randn(T, D, dtype=torch.float64, generator=g)
    return H.to(dtype)


def _cov(H: torch.Tensor) -> torch.Tensor:
    return torch.cov(H.double().T, correction=1).reshape(H.shape[1], H.shape[1])


@settings(deadline=None, max_examples=30)
@given(T=st.integers(3, 12), D=st.integers(2, 8), data_seed=SEEDS, seed=SEEDS)
def test_randomrot_keeps_mean_and_covariance_but_changes_message(T, D, data_seed, seed):
    H = _message(T, D, data_seed, torch.float64)
    out = perturb("randomrot", H, seed=seed)
    torch.testing.assert_close(out.mean(0), H.mean(0), rtol=0, atol=1e-10)
    torch.testing.assert_close(_cov(out), _cov(H), rtol=1e-9, atol=1e-10)
    assert (out - H).abs().max() > 1e-6


def test_randomrot_keeps_mean_when_d_exceeds_t():
    # Thin SVD of S has a null column here that is not orthogonal to 1: must not leak in.
    H = _message(4, 50, 0, torch.float64)
    out = perturb("randomrot", H, seed=1)
    torch.testing.assert_close(out.mean(0), H.mean(0), rtol=0, atol=1e-10)
    torch.testing.assert_close(_cov(out), _cov(H), rtol=1e-9, atol=1e-10)


def test_haar_orthogonal_is_orthogonal_with_uniform_signs():
    g = torch.Generator().manual_seed(0)
    Qs = [variants.haar_orthogonal(3, g) for _ in range(400)]
    for Q in Qs[:5]:
        torch.testing.assert_close(Q @ Q.T, torch.eye(3, dtype=torch.float64))
    # Haar measure: E[Q] = 0 (a QR without the sign fix is biased towards +diagonal).
    assert torch.stack(Qs).mean(0).abs().max() < 0.15


@pytest.mark.parametrize(
    "name,cov_factor",
    [("covgauss_0mu", 1.0), ("covgauss_mu", 1.0), ("covnoise_0.5", 1.25), ("covnoise_1.0", 2.0)],
)
def test_covariance_variants_keep_covariance_in_expectation(name, cov_factor):
    H = _message(6, 3, 7, torch.float64)
    outs = torch.stack([perturb(name, H, seed=s) for s in range(3000)])
    mean_cov = torch.stack([_cov(o) for o in outs]).mean(0)
    scale = _cov(H).diagonal().max()
    assert (mean_cov - cov_factor * _cov(H)).abs().max() < 0.08 * cov_factor * scale
    want_mean = torch.zeros(3, dtype=torch.float64) if name == "covgauss_0mu" else H.mean(0)
    assert (outs.mean(dim=(0, 1)) - want_mean).abs().max() < 0.1 * scale.sqrt()


def test_whitenoise_has_the_mean_feature_variance():
    H = _message(400, 40, 8, torch.float64)
    noise = perturb("whitenoise", H, seed=3) - H
    sigma2 = H.var(dim=0, correction=1).mean()  # mean of diag(S^T S)
    assert noise.var().item() == pytest.approx(sigma2.item(), rel=0.03)
    assert noise.mean().abs().item() < 0.02 * sigma2.sqrt().item()


@settings(deadline=None, max_examples=30)
@given(T=st.integers(1, 10), D=st.integers(1, 6), data_seed=SEEDS)
def test_cross_task_never_returns_own_message(T, D, data_seed):
    H = _message(T, D, data_seed)
    for own in (H, H.clone(), H[:], H.double()):
        with pytest.raises(ValueError, match="own message"):
            perturb("cross_task", H, seed=0, other=own)
    other = _message(T + 1, D, data_seed + 1, torch.float64)
    out = perturb("cross_task", H, seed=0, other=other)
    assert out.dtype == H.dtype and torch.equal(out, other.to(H.dtype))


def test_cross_task_needs_a_compatible_other():
    H = _message(5, 4, 0)
    with pytest.raises(ValueError, match="needs `other`"):
        perturb("cross_task", H, seed=0)
    with pytest.raises(ValueError, match=r"\[T', 4\]"):
        perturb("cross_task", H, seed=0, other=torch.zeros(5, 3))


@settings(deadline=None, max_examples=30)
@given(
    name=st.sampled_from([*MESSAGE_VARIANTS, "truncated_50", "first_3"]),
    T=st.integers(1, 9),
    D=st.integers(1, 6),
    dtype=st.sampled_from([torch.float32, torch.bfloat16]),
    seed=SEEDS,
)
def test_shape_dtype_and_determinism(name, T, D, dtype, seed):
    H = _message(T, D, seed % 1000, dtype)
    other = _message(T + 2, D, seed % 1000 + 1, dtype) if name == "cross_task" else None
    out = perturb(name, H, seed=seed, other=other)
    assert out.dtype == dtype and out.device == H.device and out.shape[1] == D
    want_rows = {"cross_task": T + 2, "truncated_50": variants.truncated_length(50, T)}
    assert out.shape[0] == want_rows.get(name, min(T, 3) if name == "first_3" else T)
    assert torch.equal(out, perturb(name, H, seed=seed, other=other))
    assert torch.isfinite(out.float()).all()


@pytest.mark.parametrize("name", RANDOM_VARIANTS)
def test_seed_changes_the_draw(name):
    H = _message(8, 5, 0)
    assert not torch.equal(perturb(name, H, seed=1), perturb(name, H, seed=2))
    torch.testing.assert_close(perturb(name, H, seed=1), perturb(name, H, seed=1), rtol=0, atol=0)


@pytest.mark.parametrize(
    "p,T,rows",
    [(0, 10, 0), (5, 10, 1), (55, 10, 6), (90, 10, 9), (100, 10, 10), (10, 5, 1), (2.5, 20, 1)],
)
def test_truncated_keeps_round_p_percent_of_rows(p, T, rows):
    H = _message(T, 3, 0)
    out = perturb(f"truncated_{p}", H, seed=0)
    assert out.shape == (rows, 3)
    assert torch.equal(out, H[:rows])


def test_first_k_and_interlat():
    H = _message(10, 3, 0)
    assert torch.equal(perturb("first_4", H, seed=0), H[:4])
    assert torch.equal(perturb("first_64", H, seed=0), H)
    assert perturb("interlat", H, seed=0) is H


@pytest.mark.parametrize(
    "name", ["covnoise_0.5", "covnoise_1.0", "whitenoise", "covgauss_mu", "randomrot"]
)
def test_single_row_message_is_kept(name):
    H = _message(1, 4, 0)
    assert torch.equal(perturb(name, H, seed=5), H)


def test_single_row_covgauss_0mu_is_zero_and_empty_message_stays_empty():
    assert torch.equal(perturb("covgauss_0mu", _message(1, 4, 0), seed=5), torch.zeros(1, 4))
    empty = torch.zeros(0, 4)
    for name in [*RANDOM_VARIANTS, "interlat", "truncated_50", "first_2"]:
        assert perturb(name, empty, seed=0).shape == (0, 4)


def test_two_row_randomrot_keeps_or_swaps_rows():
    H = _message(2, 5, 0, torch.float64)
    seen = set()
    for seed in range(20):
        out = perturb("randomrot", H, seed=seed)
        if torch.allclose(out, H):
            seen.add("keep")
        else:
            torch.testing.assert_close(out, H.flip(0))
            seen.add("swap")
    assert seen == {"keep", "swap"}


@pytest.mark.parametrize(
    "name", ["bogus", "truncated_101", "truncated_-5", "first_0", "covnoise_2.0", "text"]
)
def test_unknown_names_raise_listing_valid_ones(name):
    assert not is_message_variant(name)
    with pytest.raises(ValueError, match="valid: interlat, cross_task"):
        perturb(name, _message(4, 2, 0), seed=0)


def test_is_message_variant_and_bad_messages():
    for name in [*MESSAGE_VARIANTS, "truncated_0", "truncated_100", "truncated_2.5", "first_8"]:
        assert is_message_variant(name)
    with pytest.raises(ValueError, match=r"\[T, D\]"):
        perturb("interlat", torch.zeros(3), seed=0)
    with pytest.raises(ValueError, match=r"\[T, D\]"):
        perturb("interlat", torch.zeros(3, 2, dtype=torch.long), seed=0)


def test_truncated_length_rounds_half_up_exactly():
    assert [variants.truncated_length(p, 10) for p in (5, 15, 25, 35)] == [1, 2, 3, 4]
    assert variants.truncated_length(10, 1000) == 100
    assert variants.truncated_length(100, 7) == 7
    assert all(
        variants.truncated_length(p, 37) == math.floor(p * 37 / 100 + 0.5)
        for p in range(0, 101, 10)
    )


# ---------------------------------------------------------------------------- the registry
def _configured_names() -> set[str]:
    """Every variant name a config file or the schema defaults mention (evaluated or timed)."""
    import yaml

    from tests.helpers import REPO

    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())["properties"]
    sections = [{"evaluate": {"variants": schema["evaluate"]["properties"]["variants"]["default"]},
                 "compress": {k: schema["compress"]["properties"][k]["default"] for k in ("k_list", "baselines")}}]
    for path in [*(REPO / "config").glob("*.yaml"), *(REPO / "config/paper").glob("*.yaml")]:
        sections.append(yaml.safe_load(path.read_text()) or {})
    names = set()
    for cfg in sections:
        names |= set(cfg.get("evaluate", {}).get("variants", []))
        names |= set(cfg.get("compress", {}).get("baselines", []))
        names |= {f"compressed_{k}" for k in cfg.get("compress", {}).get("k_list", [])}
    return names


def _registry_names() -> list[str]:
    """The fixed names and one or two members of each parametric family, from the registry."""
    samples = {"<K>": ["1", "8", "128"], "<p>": ["0", "12.5", "50", "100"]}
    family = [f.replace(slot, v) for f in variants.FAMILIES for slot in samples if slot in f for v in samples[slot]]
    return sorted({*variants.FIXED, *family, *_configured_names()})


@pytest.mark.parametrize("name", _registry_names())
def test_parse_round_trips(name):
    v = variants.parse(name)
    assert v.name == name and variants.parse(v.name) == v
    assert v.kind in variants.KINDS
    assert v.train_mode == variants.RECEIVERS[v.receiver][0]
    if v.family != name:  # a parametric family: its K or p rebuilds the name
        value = v.k if v.k is not None else v.p
        assert float(value) == float(name.rpartition("_")[2])
        assert variants.FAMILIES[v.family][0].fullmatch(name)
    else:
        assert v.k is None and v.p is None


def test_configured_variants_are_all_known():
    assert _configured_names() and all(variants.is_variant(n) for n in _configured_names())


@pytest.mark.parametrize(
    "name", ["compressed_0", "truncated_150", "truncated_100.5", "first_0", "first_08", "compressed_",
             "telepathy", "", "Interlat", "truncated_-5", "compressed_8x", "covnoise_2.0"],
)
def test_parse_rejects_unknown_names_in_one_line(name):
    from interlat.errors import InterlatError

    with pytest.raises(InterlatError) as e:
        variants.parse(name)
    msg = e.value.format_message()
    assert "\n" not in msg and repr(name) in msg
    assert not variants.is_variant(name) and not is_message_variant(name)


def test_registry_classifies_like_the_evaluation():
    from interlat.evaluate import messages

    for name in _registry_names():
        v = variants.parse(name)
        assert messages.is_latent(name) == (v.kind not in (variants.TEXT, variants.EMPTY, variants.PLAIN))
        assert (name in messages.TEXT_VARIANTS) == (v.kind == variants.TEXT)
        assert (name in messages.PLAIN_VARIANTS) == (v.receiver == "no_cot")
        if v.perturbation is not None:  # made from H by `perturb`
            assert is_message_variant(v.perturbation)
        assert is_message_variant(name) == (v.perturbation == name)
    assert variants.parse("compressed_8").k == 8 and variants.parse("cross_family").perturbation == "interlat"


@pytest.mark.parametrize("name", ["interlat", "truncated_0", "truncated_25", "truncated_100", "first_3", "first_50"])
def test_message_rows_match_perturb(name):
    H = _message(20, 4, seed=0)
    assert variants.parse(name).message_rows(20) == perturb(name, H, seed=0).shape[0]


@pytest.mark.parametrize(
    "override, needle",
    [("evaluate: {variants: [interlat, truncated_150]}", "'truncated_150'"),
     ("compress: {baselines: [text]}", "'text'"),
     ("models: {sender: {heads: 3, kv_heads: 2}}", "kv_heads"),
     ("data: {math: {source: hf, n_compress: 5}}", "n_compress")],
)
def test_workflow_refuses_bad_config_before_any_job(tmp_path, override, needle):
    from tests.helpers import REPO, smk

    (tmp_path / "bad.yaml").write_text(override + "\n")
    out = smk(REPO, "-n", "--configfile", "config/test.yaml", str(tmp_path / "bad.yaml"), check=False)
    text = out.stdout + out.stderr
    assert out.returncode != 0 and "Job stats" not in text
    assert any(line.startswith("config ") and needle in line for line in text.splitlines()), text[-2000:]
