"""Shared fixtures: tiny random Hugging Face models with locally built tokenizers, and SmolLM2.

Tiny models are written to disk and reloaded (a tokenizer built in memory crashes the Bridge,
docs/gotchas.md). They use a large init so that greedy decoding has clear argmaxes.
"""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(int(os.environ.get("LENSTEER_TEST_THREADS", "2")))

if os.environ.get("LENSTEER_TYPECHECK", "1") != "0":
    # jaxtyping shapes are checked at run time in every lensteer module imported from here on
    # (tests/typechecking.py; beartype comes with TransformerLens); LENSTEER_TYPECHECK=0 turns
    # it off.
    import importlib.util  # noqa: E402

    import jaxtyping  # noqa: E402

    if importlib.util.find_spec("beartype") is not None:
        jaxtyping.install_import_hook("lensteer", "typechecking.typechecked")


def _backend() -> str:
    from importlib.metadata import version

    return "bridge" if int(version("transformer-lens").split(".")[0]) >= 4 else "hooked"


#: The TransformerLens backend of this environment: "bridge" (TL 4) or "hooked" (TL 3.9, the
#: `make test-compat` environment). Fixtures load models with it.
BACKEND = _backend()

CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content']"
    " + '<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
    "{% endif %}"
)
LLAMA3 = (
    "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + "
    "'<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"
    "{% endif %}"
)
QWEN = (
    "{% if messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful "
    "assistant.<|im_end|>\n' }}{% endif %}" + CHATML
)
CORPUS = [
    "the capital of france is paris . what is two plus two ? it is four .",
    "hello there ! how are you today ? i am fine , thank you .",
    "you are a helpful assistant . be kind and honest . always lie .",
    "Hi there What is Name three colours red blue green answer in one word",
] * 20

TEMPLATES = {
    "chatml": dict(template=CHATML, bos=None, eos="<|im_end|>", specials=["<|im_start|>", "<|im_end|>"]),
    "llama3": dict(
        template=LLAMA3,
        bos="<|begin_of_text|>",
        eos="<|eot_id|>",
        specials=["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
    ),
    "qwen": dict(template=QWEN, bos=None, eos="<|im_end|>", specials=["<|im_start|>", "<|im_end|>"]),
}


def build_tokenizer(out: Path, style: str):
    """A byte-level BPE tokenizer with the given chat-template style, saved and reloaded."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    spec = TEMPLATES[style]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<pad>"] + spec["specials"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=spec["bos"], eos_token=spec["eos"], pad_token="<pad>"
    )
    fast.chat_template = spec["template"]
    fast.save_pretrained(out)
    return AutoTokenizer.from_pretrained(out)


def build_tiny_model(out: Path, style: str = "chatml", arch: str = "llama", n_layers: int = 3):
    """A random tiny causal LM directory (config + safetensors + tokenizer)."""
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    tokenizer = build_tokenizer(out, style)
    common = dict(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=n_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        initializer_range=0.4,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    if arch == "llama":
        model = LlamaForCausalLM(LlamaConfig(**common))
    else:
        model = Qwen2ForCausalLM(Qwen2Config(**common))
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory) -> dict[str, Path]:
    """Tiny model directories: 'llama' (ChatML), 'llama3' (Llama-3 template), 'qwen' (Qwen2)."""
    root = tmp_path_factory.mktemp("tiny")
    return {
        "llama": build_tiny_model(root / "tiny-chatml", "chatml", "llama"),
        "llama3": build_tiny_model(root / "tiny-l3", "llama3", "llama"),
        "qwen": build_tiny_model(root / "tiny-qwen", "qwen", "qwen"),
    }


@pytest.fixture(scope="session")
def tiny_model(tiny_dirs):
    """A TransformerBridge over the tiny ChatML Llama (3 layers, d_model 32)."""
    import lensteer

    return lensteer.load_model(tiny_dirs["llama"], backend=BACKEND)


@pytest.fixture(scope="session")
def smollm2():
    """SmolLM2-135M-Instruct real weights (converted from the bundled GGUF on first use)."""
    import lensteer

    return lensteer.load_model("smollm2-135m-instruct", backend=BACKEND)
