"""Compression (docs/method.md section 4): the student's K latent steps, the teacher paths, training,
the student checkpoint, the CLI, the latency benchmark and incremental reruns of the K list."""

import copy
import csv
import json
import math
import shutil
from dataclasses import fields

import pytest
import torch
import yaml

from interlat import load_receiver, load_student
from interlat.compress.data import emit, make_batch, split, teacher_prompt_ids
from interlat.compress.objective import CompressionLoss
from interlat.compress.reference import ReferenceCache
from interlat.compress.student import Student
from interlat.compress.trainer import CompressConfig, CompressTrainer
from interlat.conversations import read_conversations
from interlat.shards import load_messages
from interlat.train.samples import build_samples
from tests.helpers import REPO, assert_clean_error, run_cli, tiny_lm

K = 3


def small_lm(seed: int = 0):
    return tiny_lm(vocab_size=40, max_positions=128, seed=seed)


def left_padded_batch():
    """Two prompts of lengths 7 and 4, left-padded."""
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(2, 40, (2, 7), generator=g)
    mask = torch.ones_like(ids)
    mask[1, :3] = 0
    ids[1, :3] = 0
    return ids, mask


def recomputed_latents(student, ids, mask, k):
    """Reference: every latent step as a full forward pass over everything so far (no cache)."""
    body = student.lm.get_decoder()
    x = torch.cat([student.lm.get_input_embeddings()(ids), student.lat_bos.expand(ids.shape[0], 1, -1)], 1)
    zs = []
    for step in range(k):
        m = torch.cat([mask, torch.ones(ids.shape[0], step + 1, dtype=torch.long)], 1)
        z = body(inputs_embeds=x, attention_mask=m, position_ids=(m.cumsum(-1) - 1).clamp(min=0)).last_hidden_state[:, -1]
        zs.append(z)
        x = torch.cat([x, student.h2e(z)[:, None]], 1)
    return torch.stack(zs, 1)


def gradients(student, ids, mask):
    student.zero_grad(set_to_none=True)
    Z = student.generate_latents(ids, mask, K)
    (Z[:, -1].square().sum() + 0.1 * Z.sum()).backward()
    return {n: p.grad.clone() for n, p in student.named_parameters() if p.grad is not None}


# ---------------------------------------------------------------------------- student
def test_gradients_through_all_k_steps_with_and_without_checkpointing():
    torch.manual_seed(0)
    plain = Student(small_lm()).train()
    ckpt = copy.deepcopy(plain)
    ckpt.enable_gradient_checkpointing()
    ckpt.train()
    ids, mask = left_padded_batch()
    g_plain = gradients(plain, ids, mask)
    mlp = ckpt.lm.get_decoder().layers[0].mlp
    calls, forward = [], mlp.forward
    mlp.forward = lambda *a, **k: calls.append(1) or forward(*a, **k)
    g_ckpt = gradients(ckpt, ids, mask)
    del mlp.forward
    assert len(calls) == 2 * K, "checkpointing did not recompute the layers in backward"
    assert set(g_plain) == set(g_ckpt)
    first_step = ["lat_bos", "lm.model.layers.0.self_attn.q_proj.weight", "lm.model.embed_tokens.weight", "h2e.1.weight"]
    for name in first_step:
        assert g_plain[name].abs().sum() > 0, name
    for name, g in g_plain.items():
        torch.testing.assert_close(g_ckpt[name], g, rtol=1e-4, atol=1e-6, msg=name)
    # z_K alone reaches lat_bos (step 1's input): through every step's input and cached states
    plain.zero_grad(set_to_none=True)
    plain.generate_latents(ids, mask, K)[:, -1].sum().backward()
    assert plain.lat_bos.grad.abs().sum() > 0


def test_latent_steps_equal_a_full_recompute_and_left_padding_is_invisible():
    student = Student(small_lm()).eval()
    ids, mask = left_padded_batch()
    with torch.no_grad():
        Z = student.generate_latents(ids, mask, K)
        torch.testing.assert_close(Z, recomputed_latents(student, ids, mask, K), rtol=1e-4, atol=1e-5)
        alone = student.generate_latents(ids[1:, 3:], mask[1:, 3:], K)
    torch.testing.assert_close(alone[0], Z[1], rtol=1e-4, atol=1e-5)
    assert Z.shape == (2, K, 32)


def test_projection_when_hidden_sizes_differ():
    student = Student(small_lm(), out_dim=24)
    ids, mask = left_padded_batch()
    assert student.generate_latents(ids, mask, 2).shape == (2, 2, 24)


# ---------------------------------------------------------------------------- teacher paths
@pytest.fixture()
def setup(tiny, teacher):
    torch.manual_seed(0)
    model, tok = load_receiver(teacher)
    messages = load_messages(tiny["latents"])
    rows = read_conversations(tiny["convert"] / "train.jsonl")
    samples = build_samples(rows, messages, tok, "interlat", "train.jsonl", model.prepended_length)
    from transformers import AutoModelForCausalLM

    student = Student(AutoModelForCausalLM.from_pretrained(tiny["sender"]), model.adapter.sender_dim)
    batch = make_batch(samples[:4], tok, student.lm.get_input_embeddings().weight.shape[0], "cpu")
    return model, tok, student, samples, batch


def test_teacher_is_frozen_and_deterministic_while_the_student_trains(setup, tmp_path):
    model, tok, student, samples, batch = setup
    train, held = split(samples, 0.1, 0)
    trainer = CompressTrainer(CompressConfig(K=K, max_steps=1), student, model, tok, train, held, tmp_path)
    trainer.setup()
    student.train()
    assert not any(m.training for m in model.modules())
    assert not any(p.requires_grad for p in model.parameters())
    loss = trainer.loss_fn
    with torch.no_grad():
        Z = torch.randn(batch["H"].shape[0], K, model.adapter.sender_dim)
        lengths = torch.full((Z.shape[0],), K)
        a = loss.teacher_logits(batch, model.adapt(Z, lengths), lengths)[0]
        b = loss.teacher_logits(batch, model.adapt(Z, lengths), lengths)[0]
    assert torch.equal(a, b)
    trainer.train()  # one step: the teacher stays in eval mode
    assert not any(m.training for m in model.modules())


def test_path_d_uses_the_full_message(setup):
    model, tok, student, samples, batch = setup
    adapted, lengths = CompressionLoss(student, model, K).full_message(batch)
    expected = [min(s.H.shape[0], model.prepended_length) for s in samples[:4]]
    assert lengths.tolist() == expected and max(expected) > K
    assert adapted.shape[:2] == (4, max(expected))


def test_path_b_has_no_message_and_no_delimiters(setup):
    model, tok, student, samples, batch = setup
    embeds, labels, mask, lengths = model.splice(batch, torch.zeros(4, 1, 32), torch.zeros(4, dtype=torch.long), delimiters=False)
    assert (lengths == batch["lengths"] - 1).all()  # only the marker is gone
    bop, eop = model.delimiters()
    for row, n in zip(embeds, lengths, strict=True):
        for d in (bop, eop):
            assert not (row[:n] == d).all(-1).any()


def test_loss_terms_are_finite_and_the_loss_falls(setup):
    model, tok, student, samples, batch = setup
    loss_fn = CompressionLoss(student, model, K)
    opt = torch.optim.Adam(student.parameters(), lr=1e-2)
    history = []
    for _ in range(6):
        out = loss_fn(batch)
        assert all(torch.isfinite(v) for v in out.values()), out
        assert out["l_kl"] >= 0 and 0 <= out["l_align"] <= 2
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        history.append(float(out["loss"].detach()))
    assert history[-1] < history[0], history


def test_cached_reference_paths_give_the_recomputed_loss_and_gradients(setup):
    """Paths D and B filled once (other batches, other padding) and read back for a step equal
    recomputing them in the step: the loss terms and the student's gradients."""
    model, tok, student, samples, batch = setup
    vocab = student.lm.get_input_embeddings().weight.shape[0]
    cache = ReferenceCache()
    fresh = CompressionLoss(student, model, K)
    cache.fill(fresh, samples[::-1], tok, vocab, "cpu", batch_size=3)  # other batches than `batch`
    assert len(cache.rows) == len(samples)
    cached = CompressionLoss(student, model, K, cache=cache)
    ids = [s.task_id for s in samples[:4]]
    runs = []
    for loss_fn in (fresh, cached):
        student.zero_grad(set_to_none=True)
        out = loss_fn(batch, task_ids=ids)
        out["loss"].backward()
        runs.append((out, {n: p.grad.clone() for n, p in student.named_parameters() if p.grad is not None}))
    (a, grads_a), (b, grads_b) = runs
    for k in ("loss", "ce", "l_kl", "l_align"):
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)
    assert grads_a.keys() == grads_b.keys()
    for n in grads_a:
        torch.testing.assert_close(grads_a[n], grads_b[n], rtol=1e-4, atol=1e-6)
    ref = fresh.reference_paths(batch)
    got = cache.batch(ids, ref[2].shape[1])
    assert torch.equal(got[1], ref[1]) and torch.equal(got[3], ref[3]) and torch.equal(got[5], ref[5])


def test_a_cached_student_trains_like_a_recomputing_one(setup, tmp_path):
    model, tok, student, samples, batch = setup
    train, held = split(samples, 0.2, 0)
    logs = []
    for cache in (False, True):
        cfg = CompressConfig(K=K, max_steps=4, batch_size=4, eval_every=2, cache_reference=cache)
        trainer = CompressTrainer(cfg, copy.deepcopy(student), model, tok, train, held, tmp_path / str(cache))
        trainer.setup()
        assert (trainer.loss_fn.cache is not None) == cache
        trainer.train()
        logs.append([v for r in trainer.rows for v in (r["loss"], r["eval_loss"])])
    assert logs[0] == pytest.approx(logs[1], rel=1e-4, nan_ok=True)


def test_training_resumes_from_its_work_dir_and_discards_other_settings(setup, tmp_path):
    model, tok, student, samples, batch = setup
    train, held = split(samples, 0.1, 0)
    cfg = CompressConfig(K=K, max_steps=4, batch_size=4, checkpoint_every=2, eval_every=2)
    first = CompressTrainer(cfg, student, model, tok, train, held, tmp_path)
    first.setup()
    first.total = 3  # killed after step 3: the state of step 2 is on disk
    first.train()
    again = CompressTrainer(cfg, copy.deepcopy(student), model, tok, train, held, tmp_path)
    again.setup()
    assert again.step == 2 and len(again.rows) == 2
    again.train()
    assert again.step == 4 and [r["step"] for r in again.rows] == [0, 1, 2, 3]
    other = CompressTrainer(CompressConfig(K=K, max_steps=4, batch_size=4, lr=1e-4), student, model, tok, train, held, tmp_path)
    other.setup()
    assert other.step == 0 and not (tmp_path / "state").exists()


def test_answers_right_is_greedy_exact_match_of_the_reference_answer(setup):
    """Per task: every supervised answer token is the teacher's argmax given the student's latents,
    from full logits or from the chunked hidden rows alike."""
    model, tok, student, samples, batch = setup
    chunked, full = CompressionLoss(student, model, K), CompressionLoss(student, model, K, loss_chunk=None)
    with torch.no_grad():
        _, logits, target, mask = full.student_path(batch)
    assert mask.any(-1).all()
    hits = (logits.argmax(-1) == target) | ~mask
    assert torch.equal(full.answers_right(batch), hits.all(-1))
    assert torch.equal(chunked.answers_right(batch), hits.all(-1))


def test_select_answers_keeps_the_step_with_most_held_out_answers(setup, tmp_path):
    model, tok, student, samples, batch = setup
    train, held = split(samples, 0.3, 0)
    cfg = CompressConfig(K=K, max_steps=6, batch_size=4, eval_every=1, patience=10, lr=3e-2, select="answers")
    trainer = CompressTrainer(cfg, student, model, tok, train, held, tmp_path)
    trainer.setup()
    trainer.train()
    scored = [(r["eval_answers"], -r["eval_loss"], r["step"] + 1) for r in trainer.rows]
    assert all(0 <= a <= 1 for a, _, _ in scored)
    assert trainer.best_step == max(scored)[2] and trainer.best_eval == [-max(scored)[1], max(scored)[0]]
    with pytest.raises(Exception, match="compress.select"):
        CompressConfig(select="accuracy")


# ---------------------------------------------------------------------------- checkpoint and CLI
@pytest.fixture(scope="module")
def student_dir(tiny, teacher, tmp_path_factory):
    root = tmp_path_factory.mktemp("student")
    run_cli("compress", "--teacher", teacher, "--student", tiny["sender"], "--conversations",
            tiny["convert"] / "train.jsonl", "--latents", tiny["latents"], "--K", K, "--max-steps", 3,
            "--batch-size", 4, "--eval-every", 2, "--checkpoint-every", 1, "--work-dir", root / "work",
            "--out", root / "K3")
    return root / "K3"


def test_compress_writes_exactly_the_checkpoint_files_and_drops_its_state(student_dir):
    names = {p.name for p in student_dir.iterdir()}
    assert {"config.json", "model.safetensors", "student.safetensors", "student.json", "log.csv",
            "tokenizer.json", "tokenizer_config.json", "README.md"} <= names  # README.md: the model card
    assert names <= {"config.json", "model.safetensors", "student.safetensors", "student.json", "log.csv", "README.md",
                     "tokenizer.json", "tokenizer_config.json", "generation_config.json", "chat_template.jinja"}
    with open(student_dir / "log.csv") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [0, 1, 2]
    assert not (student_dir.parent / "work").exists()


def test_compress_trains_on_every_conversations_file_and_refuses_a_task_in_two(tiny, teacher, tmp_path):
    """`--conversations` repeats (train.jsonl + compress.jsonl, `data.math.n_compress`): the
    student's tasks are all files' rows; one task in two files is a one-line error."""
    rows = (tiny["convert"] / "train.jsonl").read_text().splitlines(keepends=True)
    (tmp_path / "a.jsonl").write_text("".join(rows[:8]))
    (tmp_path / "b.jsonl").write_text("".join(rows[8:]))
    (tmp_path / "again.jsonl").write_text("".join(rows[8:] + rows[:1]))

    def steps(*files, expect=0):
        out = tmp_path / f"out{len(list(tmp_path.iterdir()))}"
        r = run_cli("compress", "--teacher", teacher, "--student", tiny["sender"],
                    *[x for f in files for x in ("--conversations", tmp_path / f)], "--latents", tiny["latents"],
                    "--K", K, "--epochs", 1, "--batch-size", 4, "--eval-fraction", 0, "--work-dir", tmp_path / "w",
                    "--out", out, expect=expect)
        return r if expect else json.loads((out / "student.json").read_text())["steps_run"]

    assert steps("a.jsonl") == 2 and steps("a.jsonl", "b.jsonl") == math.ceil(len(rows) / 4)
    line = assert_clean_error(steps("a.jsonl", "again.jsonl", expect=2), "again.jsonl: row", "already in")
    assert json.loads(rows[0])["id"] in line


def test_load_student_round_trip_emits_k_latents(student_dir):
    student, tok = load_student(student_dir)
    assert student.K == K and not student.training
    ids = [teacher_prompt_ids(tok, "Solve 3x + 2 = 11."), teacher_prompt_ids(tok, "Solve 5x - 1 = 9.")]
    first = emit(student, tok, ids, student.K)
    again = emit(student, tok, ids[:1], student.K)
    assert [z.shape for z in first] == [(K, student.out_dim)] * 2
    torch.testing.assert_close(again[0], first[0], rtol=1e-4, atol=1e-5)


def test_compress_cli_exits_2_on_a_checkpoint_missing_files(tiny, teacher, student_dir, tmp_path):
    broken = tmp_path / "teacher"
    shutil.copytree(teacher, broken)
    (broken / "adapter.safetensors").unlink()
    r = run_cli("compress", "--teacher", broken, "--student", tiny["sender"], "--conversations",
                tiny["convert"] / "train.jsonl", "--latents", tiny["latents"], "--K", K,
                "--work-dir", tmp_path / "w", "--out", tmp_path / "o", expect=2)
    assert "adapter.safetensors" in r.output and not (tmp_path / "o").exists()
    bad_student = tmp_path / "student"
    shutil.copytree(student_dir, bad_student)
    (bad_student / "student.safetensors").unlink()
    r = run_cli("evaluate", "--receiver", teacher, "--conversations", tiny["convert"] / "test.jsonl",
                "--latents", tiny["latents"], "--student", bad_student, "--variant", f"compressed_{K}",
                "--work-dir", tmp_path / "w2", "--out", tmp_path / "o.parquet", expect=2)
    assert "student.safetensors" in r.output and not (tmp_path / "o.parquet").exists()
    r = run_cli("evaluate", "--receiver", teacher, "--conversations", tiny["convert"] / "test.jsonl",
                "--latents", tiny["latents"], "--student", student_dir, "--variant", "compressed_5",
                "--work-dir", tmp_path / "w3", "--out", tmp_path / "o.parquet", expect=2)
    assert 'field "K": 3, expected 5' in r.output


def test_evaluate_compressed_variant_gives_k_row_messages(tiny, teacher, student_dir, tmp_path):
    import polars as pl

    run_cli("evaluate", "--receiver", teacher, "--conversations", tiny["convert"] / "test.jsonl",
            "--latents", tiny["latents"], "--student", student_dir, "--variant", f"compressed_{K}",
            "--max-new-tokens", 2, "--work-dir", tmp_path / "w", "--out", tmp_path / "o.parquet")
    df = pl.read_parquet(tmp_path / "o.parquet")
    assert df.height > 0 and (df["message_rows"] == K).all() and (df["variant"] == f"compressed_{K}").all()


@pytest.mark.parametrize("args", [["compress"], ["latency"], ["bench", "latency"]], ids=["compress", "latency", "bench-latency"])
def test_help_has_an_example(args):
    out = run_cli(*args, "--help").output
    assert "Example" in out and "interlat " + " ".join(args) in out and "--out" in out


def test_latency_times_full_message_and_students(tiny, teacher, student_dir, tmp_path):
    out = tmp_path / "lat.csv"
    run_cli("latency", "--sender", tiny["sender"], "--receiver", teacher, "--student", student_dir,
            "--conversations", tiny["convert"] / "test.jsonl", "--latents", tiny["latents"],
            "--variants", "truncated_50,first_2", "--tasks", 1, "--repeats", 1, "--warmup", 0, "--out", out)
    with open(out) as f:
        rows = list(csv.DictReader(f))
    assert [r["variant"] for r in rows] == ["interlat", "truncated_50", "first_2", f"compressed_{K}"]
    assert float(rows[-1]["message_rows"]) == K and float(rows[2]["message_rows"]) == 2
    assert all(float(r["total_s"]) > 0 for r in rows) and float(rows[0]["speedup_total"]) == 1.0
    r = run_cli("bench", "latency", "--random-shape", "default", "--sender", tiny["sender"], "--out", out, expect=2)
    assert "--sender" in r.output  # `bench latency` is random-shape only; the pipeline's is `interlat latency`


def test_schema_defaults_equal_compress_config_defaults():
    props = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())["properties"]["compress"]["properties"]
    shared = [f for f in fields(CompressConfig) if f.name in props]
    assert len(shared) >= 5, [f.name for f in shared]  # the loop below checks something
    for f in shared:
        assert props[f.name]["default"] == f.default, f.name


# ---------------------------------------------------------------------------- workflow
@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.timeout(2400)  # may be the test that runs the shared workflow
def test_changing_the_k_list_reruns_only_the_new_k(tmp_path_factory, tmp_path):
    from tests.helpers import finished_workflow, planned_jobs, smk

    work = finished_workflow(tmp_path_factory)
    test_cfg = yaml.safe_load((REPO / "config/test.yaml").read_text())["compress"]
    assert (work / f"results/test/compress/math/replicate0/K{test_cfg['k_list'][0]}/student.safetensors").is_file()
    assert (work / "results/test/tables/table3_compression.md").is_file()
    new_k = max(test_cfg["k_list"]) + 1
    override = tmp_path / "override.yaml"
    override.write_text(yaml.safe_dump({"compress": {"k_list": [*test_cfg["k_list"], new_k]}}))
    out = smk(work, "-n", "--configfile", "config/test.yaml", str(override))
    n = 2  # one student, evaluation and latency per benchmark (MATH and ALFWorld both have Table 3)
    assert planned_jobs(out) == {"compress": n, "evaluate": n, "latency": n, "tables": 1, "all": 1}
    text = out.stdout + out.stderr
    for benchmark in ("math", "alfworld"):
        assert f"compress/{benchmark}/replicate0/K{new_k}" in text and f"latency/{benchmark}/K{new_k}.csv" in text
    assert f"compressed_{new_k}.parquet" in text
