"""Model cards: the README.md (Hugging Face metadata + text) of every saved model folder.

Senders and other built models (`interlat models`), receivers (`interlat train`) and compression
students (`interlat compress`) each get a card written with `huggingface_hub`'s
`ModelCard`/`ModelCardData`: YAML metadata the Hub and `ModelCard.load` read (library,
license, tags, `base_model` when the chain ends at a Hub model, and an `interlat` block with
the kind, package version, data, settings and metrics), then a short text saying what the
folder is, how to load it and what it was trained on. Cards are written inside the folder's
atomic write, so a finished folder always has one.
"""

import json
import re
from pathlib import Path

CARD_NAME = "README.md"

TEMPLATE = """---
{{ card_data }}
---

# {{ model_name }}

{{ summary }}

Made by [interlat](https://arxiv.org/abs/2511.09149) {{ version }}: latent-space communication
between LLM agents (Interlat, arXiv 2511.09149).

## Load

```python
{{ load }}
```

## Base

{{ base }}

## Data

{{ data }}

## Settings

{{ settings }}

## Metrics

{{ metrics }}
"""

SUMMARIES = {
    "sender": "A sender: a causal LM pretrained on (task -> plan) pairs; its last-layer hidden "
              "states while it writes a plan are the latent message (docs/method.md section 2).",
    "model": "A causal LM built by `interlat models` (random initialisation unless pretraining "
             "steps are listed below).",
    "receiver": "A receiver: a causal LM plus the latent adapter (`adapter.safetensors`, "
                "`interlat.json`) that splices a sender's message into its input embeddings "
                "(docs/method.md section 3).",
    "student": "A compression student: a causal LM plus the bridge and start vector "
               "(`student.safetensors`, `student.json`) that emit K latent vectors in place of a "
               "full message (docs/method.md section 4).",
}

LOADERS = {
    "sender": "from transformers import AutoModelForCausalLM, AutoTokenizer\n"
              "model = AutoModelForCausalLM.from_pretrained(\"{path}\")\n"
              "tokenizer = AutoTokenizer.from_pretrained(\"{path}\")",
    "receiver": "from interlat.model.receiver import Receiver\n"
                "receiver = Receiver.from_pretrained(\"{path}\")  # or interlat.load_receiver(path)",
    "student": "from interlat.compress.student import Student\n"
               "student = Student.from_pretrained(\"{path}\")  # or interlat.load_student(path)",
}
LOADERS["model"] = LOADERS["sender"]


def _hub_base(base) -> str | None:
    """The Hub model a local base folder is or descends from: a snapshot linked from the download
    cache (resources/hub/models/<org>/<name>/<revision>/, interlat.hub), else its own card's
    `base_model`, if any."""
    if base is None:
        return None
    config = Path(base) / "config.json"
    if config.exists():
        linked = re.search(r"/hub/models/([^/]+/[^/]+)/[^/]+/config\.json$", str(config.resolve()))
        if linked:
            return linked[1]
    card = Path(base) / CARD_NAME
    if card.is_file():
        from huggingface_hub import ModelCard

        return ModelCard.load(card).data.to_dict().get("base_model")
    return None


def _plain(mapping: dict) -> dict:
    """JSON/YAML-safe values (paths and tuples become strings and lists)."""
    return json.loads(json.dumps(mapping, default=str))


def _bullets(mapping: dict) -> str:
    if not mapping:
        return "Not recorded."
    return "\n".join(f"- `{k}`: `{json.dumps(v)}`" for k, v in mapping.items())


def model_card(kind: str, *, name: str, base=None, hub_base: str | None = None, data: dict | None = None,
               settings: dict | None = None, metrics: dict | None = None):
    """A `huggingface_hub.ModelCard` for a folder of `kind` (sender, model, receiver, student)."""
    from huggingface_hub import ModelCard, ModelCardData

    import interlat

    data = _plain({k: v for k, v in (data or {}).items() if v not in (None, [], "")})
    metrics = _plain({k: v for k, v in (metrics or {}).items() if v is not None})
    settings = _plain(settings or {})
    hub_base = hub_base or _hub_base(base)
    card_data = ModelCardData(
        model_name=name, library_name="transformers", license="mit", pipeline_tag="text-generation",
        base_model=hub_base, tags=["interlat", "latent-communication", kind],
        interlat={"kind": kind, "version": interlat.__version__, "base": None if base is None else str(base),
                  "data": data, "settings": settings, "metrics": metrics},
    )
    base_text = f"Starts from `{base}`" + (f" (Hub model `{hub_base}`)." if hub_base else ".") if base else \
        "Built from scratch (no base model)."
    return ModelCard.from_template(
        card_data, template_str=TEMPLATE, model_name=name, summary=SUMMARIES[kind], version=interlat.__version__,
        load=LOADERS[kind].format(path="path/to/this/folder"), base=base_text, data=_bullets(data),
        settings=_bullets(settings), metrics=_bullets(metrics),
    )


def write_card(folder, kind: str, **fields) -> Path:
    """Write `model_card(kind, name=..., ...)` to `<folder>/README.md` (inside the folder's atomic
    write: pass the final folder's `name`, not the temporary one's)."""
    path = Path(folder) / CARD_NAME
    model_card(kind, **fields).save(path)
    return path
