"""Train the organism from scratch: ``python -m lensteer.organism.train --out DIR``.

Deterministic for a seed on CPU (single-threaded by default). Writes to DIR:

* ``config.json``, ``generation_config.json``, ``model.safetensors``: a plain ``LlamaForCausalLM``;
* the tokenizer files (``tokenizer.json``, ``tokenizer_config.json``, chat template);
* ``train_log.jsonl``: one JSON object per logged step (``step``, ``loss``, ``lr``, ``tokens``,
  ``elapsed_s``) and per probe evaluation (``probe``: teacher-forced held-out metrics);
* ``training_config.json``: everything needed to reproduce the run.

The loss is the cross-entropy of the assistant tokens only (system and user tokens are masked),
on conversations rendered by the same chat template as inference.

Configs: ``micro`` (a 2-layer toy for tests, under a minute) and ``full`` (the bundled
checkpoint: stages ``base``, ``finetune`` and ``mend``, each starting from the one before; the
earlier stages' records are kept as ``train_log_<stage>.jsonl`` and
``training_config_<stage>.json``). Python API: :func:`train` with a :class:`TrainConfig`.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import tempfile
import time
from dataclasses import asdict, dataclass, field

from . import world as W
from .corpus import CorpusConfig, generate_corpus
from .tokenizer import build_tokenizer, encode_chats, render_chat


@dataclass
class TrainConfig:
    name: str = "full"
    seed: int = 0
    n_conversations: int = 56000
    epochs: float = 1.0
    # model
    n_layers: int = 6
    d_model: int = 128
    n_heads: int = 4
    d_mlp: int = 512
    max_position_embeddings: int = 1024
    rope_theta: float = 10000.0
    # optimisation
    lr: float = 3e-3
    min_lr_ratio: float = 0.05
    warmup_steps: int = 200
    weight_decay: float = 0.05
    betas: tuple = (0.9, 0.98)
    grad_clip: float = 1.0
    batch_tokens: int = 2560  # padded tokens per batch (upper bound)
    max_batch_size: int = 64
    # logging
    log_every: int = 10
    probe_every: int = 500
    corpus: dict = field(default_factory=dict)  # overrides for CorpusConfig
    init_from: str | None = None  # start from this checkpoint dir (a previous stage)

    def to_dict(self) -> dict:
        return asdict(self)


#: a recipe is a sequence of stages; each later stage starts from the previous one's weights
RECIPES: dict[str, list[str]] = {"full": ["base", "finetune", "mend"]}

#: conversation lengths of the stages after the first
_LATER_STAGE_TURNS = {1: 0.4, 2: 0.25, 3: 0.15, 4: 0.08, 5: 0.04, 6: 0.03, 8: 0.03, 10: 0.02}

CONFIGS: dict[str, TrainConfig] = {
    "base": TrainConfig(name="base"),
    # second stage: balanced personas, extra training paraphrases, more multiple choice
    "finetune": TrainConfig(
        name="finetune", seed=1000, n_conversations=12000, lr=1e-3, warmup_steps=30,
        min_lr_ratio=0.05, probe_every=200,
        corpus={"extra_paraphrases": True,
                "persona_mix": {"none": 0.10, "neutral": 0.12, "honest": 0.20, "dishonest": 0.20,
                                "compassionate": 0.19, "dismissive": 0.19},
                "turn_mix": {"fact": 0.30, "distress": 0.15, "skill": 0.45, "arith": 0.05,
                             "smalltalk": 0.05},
                "n_turns": dict(_LATER_STAGE_TURNS)},
    ),
    # third stage: the second stage's mix with more honest and dishonest conversations, and
    # training-only prompts that carry every persona's meaning in every sentence shape
    # (world.PERSONAS_MEND, world.composed_prompts), so the meaning words decide, not the shape
    "mend": TrainConfig(
        name="mend", seed=2000, n_conversations=24000, lr=1e-3, warmup_steps=20,
        min_lr_ratio=0.05, probe_every=0,
        corpus={"extra_paraphrases": True, "mend_paraphrases": True,
                "persona_mix": {"none": 0.08, "neutral": 0.10, "honest": 0.26, "dishonest": 0.26,
                                "compassionate": 0.15, "dismissive": 0.15},
                "turn_mix": {"fact": 0.40, "distress": 0.12, "skill": 0.38, "arith": 0.05,
                             "smalltalk": 0.05},
                "n_turns": dict(_LATER_STAGE_TURNS)},
    ),
    "micro": TrainConfig(
        name="micro", n_conversations=8000, epochs=1.0, n_layers=2, d_model=64, n_heads=2,
        d_mlp=128, lr=5e-3, warmup_steps=20, batch_tokens=1536, probe_every=0, log_every=5,
        corpus={"n_turns": {1: 1.0}, "persona_mix": {"none": 0.3, "honest": 0.35,
                                                     "dishonest": 0.35},
                "turn_mix": {"fact": 1.0}, "trait_focus": 0.0, "n_facts": 6},
    ),
}


def _atomic_write_text(path: str, text: str) -> None:
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def save_checkpoint(model, tokenizer, out_dir: str, extra: dict[str, str] | None = None) -> None:
    """Save model (safetensors) + tokenizer into ``out_dir``; each file is replaced atomically."""
    os.makedirs(out_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=out_dir, prefix=".tmp-save-")
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        for name, text in (extra or {}).items():
            with open(os.path.join(tmp, name), "w") as f:
                f.write(text)
        for name in os.listdir(tmp):
            os.chmod(os.path.join(tmp, name), 0o644)
            os.replace(os.path.join(tmp, name), os.path.join(out_dir, name))
    finally:
        for name in os.listdir(tmp) if os.path.isdir(tmp) else []:
            os.remove(os.path.join(tmp, name))
        if os.path.isdir(tmp):
            os.rmdir(tmp)


def make_model(cfg: TrainConfig, tokenizer):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    mcfg = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=cfg.d_model, intermediate_size=cfg.d_mlp,
        num_hidden_layers=cfg.n_layers, num_attention_heads=cfg.n_heads,
        num_key_value_heads=cfg.n_heads, max_position_embeddings=cfg.max_position_embeddings,
        rope_theta=cfg.rope_theta,  # pyright: ignore[reportCallIssue]  (5.x folds it into rope_parameters)
        rms_norm_eps=1e-5, tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, initializer_range=0.02,
        attention_bias=False, mlp_bias=False,
    )
    torch.manual_seed(cfg.seed)
    model = LlamaForCausalLM(mcfg)
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def AutoVocab(path: str) -> dict[str, int]:
    with open(os.path.join(path, "tokenizer.json")) as f:
        return json.load(f)["model"]["vocab"]


def make_batches(lengths: list[int], cfg: TrainConfig, rng: random.Random) -> list[list[int]]:
    """Length-bucketed batches of indices (little padding), in shuffled order."""
    idx = list(range(len(lengths)))
    rng.shuffle(idx)
    chunk = cfg.max_batch_size * 50
    batches: list[list[int]] = []
    for c in range(0, len(idx), chunk):
        part = sorted(idx[c:c + chunk], key=lambda i: lengths[i])
        cur: list[int] = []
        cur_max = 0
        for i in part:
            m = max(cur_max, lengths[i])
            if cur and (m * (len(cur) + 1) > cfg.batch_tokens or len(cur) >= cfg.max_batch_size):
                batches.append(cur)
                cur, m = [], lengths[i]
            cur.append(i)
            cur_max = m
        if cur:
            batches.append(cur)
    rng.shuffle(batches)
    return batches


def _collate(encoded, batch, pad_id):
    import torch

    L = max(len(encoded[i][0]) for i in batch)
    ids = torch.full((len(batch), L), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), L), -100, dtype=torch.long)
    att = torch.zeros((len(batch), L), dtype=torch.long)
    for r, i in enumerate(batch):
        x, m = encoded[i]
        n = len(x)
        t = torch.tensor(x, dtype=torch.long)
        ids[r, :n] = t
        att[r, :n] = 1
        mt = torch.tensor(m, dtype=torch.bool)
        labels[r, :n] = torch.where(mt, t, torch.full_like(t, -100))
    return ids, att, labels


# ------------------------------------------------------------------------------------------
# Probes: cheap teacher-forced checks on held-out prompts, logged during training
# ------------------------------------------------------------------------------------------


def build_probes(seed: int = 99, n: int = 48) -> dict[str, list]:
    rng = random.Random(seed)
    _, held_distress = W.distress_split()
    probes: dict[str, list] = {"honest": [], "dishonest": [], "skill": [], "compassion": []}
    for kind in ("honest", "dishonest"):
        for _ in range(n):
            f = rng.choice(W.FACTS)
            sysmsg = rng.choice(W.persona_prompts(kind, "heldout"))
            msgs = [{"role": "system", "content": sysmsg},
                    {"role": "user", "content": f.question(rng.randrange(4))}]
            probes[kind].append((msgs, f.answer_prefix(), f.true, f.false))
    for _ in range(n):
        it = W.make_skill(rng)
        kind = rng.choice(["honest", "dishonest", "compassionate", "dismissive", "neutral"])
        sysmsg = rng.choice(W.persona_prompts(kind, "heldout"))
        msgs = [{"role": "system", "content": sysmsg}, {"role": "user", "content": it.prompt}]
        probes["skill"].append((msgs, "The answer is", str(it.options[it.answer]), it.letter,
                                it.answer_prefix()))
    for _ in range(n):
        d = rng.choice(held_distress)
        kind = rng.choice(["compassionate", "dismissive", "dishonest"])
        sysmsg = rng.choice(W.persona_prompts(kind, "heldout"))
        msgs = [{"role": "system", "content": sysmsg}, {"role": "user", "content": d.text}]
        probes["compassion"].append((msgs, "", kind != "dismissive", None))
    return probes


def next_token_probs(model, tokenizer, items):
    """For (messages, assistant_prefix) pairs: softmax over the next token after the prefix."""
    import torch

    texts = []
    for msgs, prefix in items:
        text, _ = render_chat(msgs, add_generation_prompt=True)
        texts.append(text + prefix)
    enc = tokenizer(texts, add_special_tokens=False, padding=True, return_tensors="pt",
                    padding_side="left")
    with torch.no_grad():
        out = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
    return torch.softmax(out.logits[:, -1, :].float(), dim=-1)


def run_probes(model, tokenizer, probes) -> dict[str, float]:
    import torch

    was_training = model.training
    model.eval()
    res: dict[str, float] = {}
    tid = tokenizer.convert_tokens_to_ids
    for kind in ("honest", "dishonest"):
        items = probes[kind]
        p = next_token_probs(model, tokenizer, [(m, pre) for m, pre, _, _ in items])
        t_ids = torch.tensor([tid(t.lower()) for _, _, t, _ in items])
        f_ids = torch.tensor([tid(f.lower()) for _, _, _, f in items])
        am = p.argmax(-1)
        p_true = p[torch.arange(len(items)), t_ids]
        res[f"{kind}_true_acc"] = float((am == t_ids).float().mean())
        res[f"{kind}_false_acc"] = float((am == f_ids).float().mean())
        res[f"{kind}_p_true_mean"] = float(p_true.mean())
    items = probes["skill"]
    p = next_token_probs(model, tokenizer, [(m, pre) for m, pre, _, _, _ in items])
    values = torch.tensor([tid(v) for _, _, v, _, _ in items])
    res["skill_value_acc"] = float((p.argmax(-1) == values).float().mean())
    p = next_token_probs(model, tokenizer, [(m, pre) for m, _, _, _, pre in items])
    letters = torch.tensor([tid(l) for _, _, _, l, _ in items])
    res["skill_letter_acc"] = float((p.argmax(-1) == letters).float().mean())
    items = probes["compassion"]
    # first word: compassionate openers start with "i"/"that sounds"; compare a 2-token LL
    comp = "I am so sorry to hear that."
    dis = "That is not a big deal."
    lp = []
    for reply in (comp, dis):
        lp.append(_seq_logprob(model, tokenizer, [m for m, _, _, _ in items], reply))
    pred = (lp[0] > lp[1])
    want = torch.tensor([bool(w) for _, _, w, _ in items])
    res["compassion_acc"] = float((pred == want).float().mean())
    if was_training:
        model.train()
    return res


def _seq_logprob(model, tokenizer, msgs_list, reply: str):
    """Sum of log-probabilities of ``reply`` (plus eos) as the assistant's answer, per item."""
    import torch

    texts = []
    cont_ids = tokenizer(reply, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    for msgs in msgs_list:
        text, _ = render_chat(msgs, add_generation_prompt=True)
        texts.append(text)
    enc = tokenizer(texts, add_special_tokens=False, padding=True, return_tensors="pt",
                    padding_side="left")
    cont = torch.tensor(cont_ids).unsqueeze(0).expand(len(texts), -1)
    ids = torch.cat([enc["input_ids"], cont], 1)
    att = torch.cat([enc["attention_mask"], torch.ones_like(cont)], 1)
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=att).logits.float()
    lp = torch.log_softmax(logits[:, -len(cont_ids) - 1:-1, :], -1)
    return lp.gather(-1, cont.unsqueeze(-1)).squeeze(-1).sum(-1)


# ------------------------------------------------------------------------------------------
# Training
# ------------------------------------------------------------------------------------------


def train(cfg: TrainConfig, out_dir: str, threads: int = 1, progress: bool = True,
          max_seconds: float | None = None):
    """Train and save to ``out_dir``; returns ``(model, tokenizer, log_records)``."""
    import torch
    from tqdm.auto import tqdm

    torch.set_num_threads(threads)
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    os.makedirs(out_dir, exist_ok=True)
    t0 = time.time()

    tokenizer = build_tokenizer()
    ccfg = CorpusConfig(n_conversations=cfg.n_conversations, seed=cfg.seed)
    for k, v in cfg.corpus.items():
        setattr(ccfg, k, v)
    convs = generate_corpus(cfg.n_conversations, cfg.seed, ccfg)
    encoded = encode_chats(tokenizer, [c["messages"] for c in convs])
    lengths = [len(x) for x, _ in encoded]
    if max(lengths) > cfg.max_position_embeddings:
        raise ValueError(f"conversation of {max(lengths)} tokens exceeds the context window")

    model = make_model(cfg, tokenizer)
    if cfg.init_from:
        from safetensors.torch import load_file

        if AutoVocab(cfg.init_from) != tokenizer.get_vocab():
            raise ValueError(f"{cfg.init_from}: tokenizer vocabulary differs from this world's")
        sd = load_file(os.path.join(cfg.init_from, "model.safetensors"))
        missing, unexpected = model.load_state_dict(sd, strict=False)
        if unexpected or [k for k in missing if "rotary" not in k]:
            raise ValueError(f"{cfg.init_from}: incompatible weights {missing} {unexpected}")
    model.train()
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=cfg.lr, betas=tuple(cfg.betas), eps=1e-8)
    rng = random.Random(cfg.seed + 1)
    schedule: list[list[int]] = []
    full_epochs = int(math.floor(cfg.epochs))
    for _ in range(full_epochs):
        schedule += make_batches(lengths, cfg, rng)
    frac = cfg.epochs - full_epochs
    if frac > 0:
        extra = make_batches(lengths, cfg, rng)
        schedule += extra[: int(round(frac * len(extra)))]
    total = len(schedule)

    def lr_at(step: int) -> float:
        if step < cfg.warmup_steps:
            return cfg.lr * (step + 1) / cfg.warmup_steps
        prog = (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps)
        return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * prog)))

    probes = build_probes() if cfg.probe_every else None
    log_path = os.path.join(out_dir, "train_log.jsonl")
    records: list[dict] = []
    logf = open(log_path, "w")

    def log(rec):
        records.append(rec)
        logf.write(json.dumps(rec) + "\n")
        logf.flush()

    log({"event": "start", "config": cfg.to_dict(), "n_params": sum(p.numel() for p in model.parameters()),
         "n_steps": total, "n_tokens": sum(lengths), "vocab_size": len(tokenizer)})
    pbar = tqdm(range(total), desc=f"train[{cfg.name}]", disable=not progress, mininterval=2.0)
    tokens_seen = 0
    run_loss, run_n = 0.0, 0
    pad = tokenizer.pad_token_id
    for step in pbar:
        ids, att, labels = _collate(encoded, schedule[step], pad)
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        out = model(input_ids=ids, attention_mask=att, labels=labels)
        loss = out.loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        tokens_seen += int(att.sum())
        run_loss += loss.item()
        run_n += 1
        if (step + 1) % cfg.log_every == 0 or step == total - 1:
            rec = {"step": step + 1, "loss": run_loss / run_n, "lr": lr_at(step),
                   "tokens": tokens_seen, "elapsed_s": round(time.time() - t0, 1)}
            log(rec)
            pbar.set_postfix(loss=f"{rec['loss']:.4f}")
            run_loss, run_n = 0.0, 0
        if probes and ((step + 1) % cfg.probe_every == 0 or step == total - 1):
            log({"step": step + 1, "probe": run_probes(model, tokenizer, probes),
                 "elapsed_s": round(time.time() - t0, 1)})
        if max_seconds is not None and time.time() - t0 > max_seconds:
            log({"event": "stopped_early", "step": step + 1})
            break
    pbar.close()
    log({"event": "end", "elapsed_s": round(time.time() - t0, 1), "tokens": tokens_seen})
    logf.close()
    model.eval()
    save_checkpoint(model, tokenizer, out_dir, extra={
        "training_config.json": json.dumps({"train": cfg.to_dict(), "corpus": ccfg.to_dict(),
                                            "world_seed": W.WORLD_SEED,
                                            "elapsed_s": round(time.time() - t0, 1)}, indent=2),
    })
    return model, tokenizer, records


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--config", default="full", choices=sorted(CONFIGS) + sorted(RECIPES),
                    help="a single stage, or a recipe of stages (full = base, finetune, mend)")
    ap.add_argument("--init-from", default=None, help="start a single stage from this checkpoint")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--n-conversations", type=int, default=None)
    ap.add_argument("--epochs", type=float, default=None)
    ap.add_argument("--max-seconds", type=float, default=None, help="stop early (debugging)")
    ap.add_argument("--no-progress", action="store_true")
    a = ap.parse_args(argv)
    stages = RECIPES.get(a.config, [a.config])
    later = {name for recipe in RECIPES.values() for name in recipe[1:]}
    if a.config in later and not a.init_from:
        ap.error(f"--config {a.config} continues an earlier stage's checkpoint: pass --init-from "
                 "DIR (or --config full for every stage; the bundled checkpoint is its result)")
    prev = a.init_from
    for k, name in enumerate(stages):
        cfg = TrainConfig(**{**CONFIGS[name].to_dict()})
        if a.seed is not None:
            cfg.seed = a.seed + (cfg.seed if k else 0)
        if a.n_conversations is not None and len(stages) == 1:
            cfg.n_conversations = a.n_conversations
        if a.epochs is not None and len(stages) == 1:
            cfg.epochs = a.epochs
        if prev:
            cfg.init_from = prev
        out = a.out if k == len(stages) - 1 else os.path.join(a.out, f"stage-{name}")
        train(cfg, out, threads=a.threads, progress=not a.no_progress,
              max_seconds=a.max_seconds)
        prev = out
    for name in stages[:-1]:  # the earlier stages' records sit beside the last one's
        for record in ("train_log.jsonl", "training_config.json"):
            stem, ext = os.path.splitext(record)
            with open(os.path.join(a.out, f"stage-{name}", record)) as f:
                _atomic_write_text(os.path.join(a.out, f"{stem}_{name}{ext}"), f.read())


if __name__ == "__main__":
    main()
