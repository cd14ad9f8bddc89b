"""Model cards in every saved folder (huggingface_hub ModelCard) and from_pretrained loaders."""

import pytest
import torch
from huggingface_hub import ModelCard
from transformers import AutoTokenizer

import interlat
from interlat.compress.student import Student
from interlat.model.card import CARD_NAME, model_card
from interlat.model.receiver import Receiver
from tests.helpers import run_cli


def card_of(folder):
    card = ModelCard.load(folder / CARD_NAME)
    return card, card.data.to_dict()


@pytest.fixture(scope="module")
def student(tiny, teacher, tmp_path_factory):
    root = tmp_path_factory.mktemp("card_student")
    run_cli("compress", "--teacher", teacher, "--student", tiny["sender"], "--conversations",
            tiny["convert"] / "train.jsonl", "--latents", tiny["latents"], "--K", 2, "--max-steps", 2,
            "--batch-size", 4, "--eval-every", 1, "--work-dir", root / "work", "--out", root / "K2")
    return root / "K2"


def test_built_models_have_cards(tiny):
    card, meta = card_of(tiny["sender"])
    assert meta["library_name"] == "transformers" and meta["license"] == "mit"
    assert meta["model_name"] == "sender" and "interlat" in meta["tags"]
    info = meta["interlat"]
    assert info["kind"] == "sender" and info["version"] == interlat.__version__
    assert info["settings"]["pretrain_steps"] == 20 and info["settings"]["hidden_size"] == 32
    assert info["data"]["pretrain_data"] == [str(tiny["data"])]
    assert info["metrics"]["final_pretrain_loss"] > 0
    assert "## Settings" in card.text and "`pretrain_steps`: `20`" in card.text
    _, fresh = card_of(tiny["llama"])
    assert fresh["interlat"]["kind"] == "model" and fresh["interlat"]["metrics"] == {}


def test_receiver_card_and_from_pretrained(tiny):
    folder = tiny["receiver_ckpt"]
    card, meta = card_of(folder)
    info = meta["interlat"]
    assert info["kind"] == "receiver" and info["base"] == str(tiny["receiver"])
    assert info["settings"]["steps"] == 2 and info["settings"]["mode"] == "interlat"
    assert info["data"]["latents"] == [str(tiny["latents"])]
    assert info["metrics"]["steps"] == 2 and info["metrics"]["final_loss"] > 0
    assert "Receiver.from_pretrained" in card.text
    receiver = Receiver.from_pretrained(folder)
    old, _ = interlat.load_receiver(folder)
    assert isinstance(receiver, Receiver) and not receiver.training
    for a, b in zip(receiver.state_dict().values(), old.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert AutoTokenizer.from_pretrained(folder).get_vocab() == _.get_vocab()


def test_student_card_and_from_pretrained(student, tiny):
    card, meta = card_of(student)
    info = meta["interlat"]
    assert info["kind"] == "student" and info["base"] == str(tiny["sender"])
    assert info["settings"]["K"] == 2 and info["metrics"]["best_step"] >= 1
    assert info["metrics"]["best_heldout_loss"] is None or info["metrics"]["best_heldout_loss"] > 0
    loaded = Student.from_pretrained(student)
    old, _ = interlat.load_student(student)
    assert isinstance(loaded, Student) and loaded.K == old.K == 2


def test_hub_base_model_is_carried_down_the_chain(tmp_path):
    base = tmp_path / "sender"
    base.mkdir()
    model_card("sender", name="sender", hub_base="Qwen/Qwen2.5-7B").save(base / CARD_NAME)
    meta = model_card("receiver", name="r", base=base).data.to_dict()
    assert meta["base_model"] == "Qwen/Qwen2.5-7B" and meta["interlat"]["base"] == str(base)
    assert model_card("receiver", name="r", base=tmp_path / "none").data.to_dict().get("base_model") is None


def test_hub_base_of_a_linked_download(tmp_path):
    snapshot = tmp_path / "resources/hub/models/Qwen/Qwen2.5-7B/a09a3545"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    sender = tmp_path / "results/run/models/sender"
    sender.mkdir(parents=True)
    (sender / "config.json").symlink_to(snapshot / "config.json")
    meta = model_card("receiver", name="r", base=sender).data.to_dict()
    assert meta["base_model"] == "Qwen/Qwen2.5-7B"
