# %% [markdown]
# # 02 · Steer: the three rules, token by token
#
# Notebook 01 found where the organism's dishonest persona is linearly readable and fitted a
# direction per layer. Here we use those directions to push the model back to honesty while it
# generates — and, with the sign flipped, to make it lie.
#
# **What you will learn**
#
# 1. The three rules of the paper — SwFC, StTP, StMP — as pictures: each token's projection
#    before and after steering, for every rule, on the same tokens.
# 2. How to steer generation with `lensteer.steer(...)` and grade the result.
# 3. How to read telemetry and token strips: which tokens the gate selected, by how much they
#    moved.
# 4. Position modes (`all`, `response`, `prompt`) under the KV cache, and why cached and
#    uncached generation agree.
# 5. The negative sign: inducing the trait under an aligned prompt, a causal check of the
#    direction.
#
# Runs in about two minutes on two CPU cores.

# %%
%matplotlib inline
import time

import matplotlib.pyplot as plt
import torch
from IPython.display import HTML, display

import lensteer
from lensteer.organism.grade import grade_honesty

start = time.time()
model = lensteer.load_model("organism")
trait = lensteer.load_trait("honesty", model=model)
n_layers = model.cfg.n_layers

# %% [markdown]
# We fit directions at every layer with a small sweep (as in notebook 01), then pick the
# steering layer the way the paper says to: by steering, not by probe accuracy. For each layer
# we steer with StTP under a held-out malicious prompt and count true answers on a few
# held-out questions.

# %%
result = lensteer.locate(model, trait, max_scenarios=24, n_folds=4, max_new_tokens=24,
                         progress=False)
print(result.table())

liar = trait.eval_malicious_prompts[0]
honest = trait.eval_aligned_prompts[0]
questions = [s.prompt for s in trait.eval_scenarios[:12]]


def honesty_rate(system, steerer=None, qs=questions):
    """Share of true answers (greedy), with an optional steerer active."""
    with lensteer.steer(model, steerer):  # steerer=None steers nothing
        gens = lensteer.generate(model, qs, system=system, greedy=True, max_new_tokens=20,
                                 progress=False)
    return sum(grade_honesty(q, g.text).label == "true" for q, g in zip(qs, gens)) / len(qs)


print(f"unsteered: aligned prompt {honesty_rate(honest):.0%}, malicious prompt {honesty_rate(liar):.0%}")
by_layer = {layer: honesty_rate(liar, lensteer.StTP(result.direction(layer), alpha=36))
            for layer in range(n_layers)}
for layer, rate in by_layer.items():
    print(f"StTP at layer {layer}: {rate:.0%} true under the malicious prompt "
          f"(probe accuracy {result.row(layer).accuracy:.2f})")
layer = max(by_layer, key=lambda k: (by_layer[k], -k))
direction = result.direction(layer)
print(f"steering layer: {layer}")

# %% [markdown]
# (α = 36 is the top of the paper's StTP grid: σ⁺ is the spread of *response-averaged*
# projections, which is small, so the target μ⁺ + α·σ⁺ needs a large α. Exercise 2 compares
# per-token calibration.)
#
# ## 1. The rules as pictures
#
# Take one malicious-prompt conversation with the model's own (lying) answer, read the residual
# stream at the steering layer, and apply each rule to the *same* tokens with `steerer.apply`.
# Each panel plots every token's projection ρ = ⟨h, v̂⟩ before (grey) and after (colour);
# gated tokens are marked.

# %%
[g] = lensteer.generate(model, [questions[0]], system=liar, greedy=True, max_new_tokens=20)
tokens = torch.tensor([g.input_ids])
_, cache = model.run_with_cache(tokens, names_filter=lambda name: name == direction.hook)
h = cache[direction.hook]
labels = [model.tokenizer.decode([t]) for t in g.input_ids]
rules = {
    "SwFC α=5": lensteer.SwFC(direction, alpha=5),
    "StTP α=36": lensteer.StTP(direction, alpha=36),
    "StMP α=1": lensteer.StMP(direction, alpha=1),
}
fig, axes = plt.subplots(len(rules), 1, figsize=(11, 7), sharex=True)
for ax, (name, steerer) in zip(axes, rules.items()):
    out = steerer.apply(h)
    before, after, gated = out.rho_before[0], out.rho_after[0], out.gated[0]
    x = torch.arange(len(before))
    ax.plot(x, before, "o", color="grey", ms=4, label="ρ before")
    ax.plot(x, after, ".", color="tab:blue", ms=6, label="ρ after")
    ax.plot(x[gated], after[gated], "x", color="tab:red", label="changed (gated)")
    ax.axhline(direction.boundary, color="black", lw=0.8, label="m")
    ax.axvspan(g.response_span[0] - 0.5, len(x) - 0.5, color="tab:orange", alpha=0.08)
    ax.set_ylabel(name)
axes[0].legend(fontsize=7, ncol=4, loc="upper left")
axes[-1].set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
axes[0].set_title(f"layer {layer}: projection per token (shaded: the response)")
plt.tight_layout()
plt.show()

# %% [markdown]
# - **SwFC** lifts *every* token by the same α·Δμ, including tokens already on the aligned side.
# - **StTP** only moves tokens below m, and puts each of them exactly at the target μ⁺ + α·σ⁺;
#   the others are untouched (bit-identical activations).
# - **StMP** reflects gated tokens across m (α = 1): a token far on the malicious side lands as
#   far on the aligned side.
#
# All three change only the component along v̂. The same rules steering actual generation:

# %%
for name, steerer in rules.items():
    print(f"{name:<10} honesty under the malicious prompt: {honesty_rate(liar, steerer):.0%}")

# %% [markdown]
# ## 2. Telemetry and token strips
#
# With `telemetry=True`, every hook call records per token: ρ before and after, and whether the
# gate fired. The summary gives the gate rate per phase (prompt during prefill, response while
# decoding) and the size of the intervention.

# %%
steerer = lensteer.StTP(direction, alpha=36)
with lensteer.steer(model, steerer, telemetry=True) as run:
    gens = lensteer.generate(model, questions[:4], system=liar, greedy=True, max_new_tokens=20)
for q, g in zip(questions, gens):
    print(f"{q:<40} -> {g.text} [{grade_honesty(q, g.text).label}]")
print()
print(run.telemetry.summary_text())

# %%
display(HTML(run.telemetry.strip_html(gens[0], model.tokenizer, include_prompt=True)))
run.telemetry.strip_figure(gens[0], model.tokenizer, sequence=0, per_line=14);

# %% [markdown]
# ## 3. Position modes under the KV cache
#
# `positions="all"` (the paper's headline) steers the prompt during prefill and every generated
# token; `"response"` only generated tokens; `"prompt"` only the prefill. With the KV cache the
# first forward call carries the whole prompt and each later call one new token; lensteer counts
# calls so that the modes mean the same with and without the cache. Telemetry sees every token;
# the gated counts per phase show which phases each mode was allowed to touch. Greedy outputs with
# and without the cache are identical.

# %%
for positions in ("all", "response", "prompt"):
    s = lensteer.StTP(direction, alpha=36, positions=positions)
    outputs = {}
    for cache in (True, False):
        with lensteer.steer(model, s, telemetry=True) as run:
            outputs[cache] = lensteer.generate(model, questions[:4], system=liar, greedy=True,
                                               max_new_tokens=20, use_kv_cache=cache)
    gated = {r["phase"]: r["gated"] for r in run.telemetry.summary()}
    same = [a.response_ids for a in outputs[True]] == [b.response_ids for b in outputs[False]]
    rate = sum(grade_honesty(q, g.text).label == "true" for q, g in zip(questions, outputs[True])) / 4
    print(f"{positions:<9} gated tokens per phase {gated}; cached == uncached: {same}; "
          f"true answers {rate:.0%}")

# %% [markdown]
# ## 4. The negative sign induces the trait
#
# `sign="negative"` mirrors a rule: gate ρ > m and push toward μ⁻ − α·σ⁻. Under an **aligned**
# prompt, a model steered this way should start lying — if the direction really carries the
# persona. This is the causal check that probe accuracy alone cannot give.

# %%
print(f"aligned prompt, unsteered: {honesty_rate(honest):.0%} true")
for alpha in (12, 36):
    s = lensteer.StTP(direction, alpha=alpha, sign="negative")
    print(f"aligned prompt, StTP negative α={alpha}: {honesty_rate(honest, s):.0%} true")
with lensteer.steer(model, lensteer.StTP(direction, alpha=36, sign="negative")):
    for q, g in zip(questions[:3], lensteer.generate(model, questions[:3], system=honest,
                                                      greedy=True, max_new_tokens=20)):
        print(f"  {q:<40} -> {g.text} [{grade_honesty(q, g.text).label}]")
print(f"notebook ran in {time.time() - start:.0f} s")

# %% [markdown]
# ## Exercises
#
# 1. Steer at the layer with the best *probe* accuracy instead of the layer chosen by steering.
#    How much honesty does each rule restore there? (docs/concepts.md: on a 4-layer
#    prototype, probes were perfect at layers where no rule changed behaviour.)
# 2. Compare `calibration="response"` (the paper's) with `calibration="token"` for StTP.
#    Print `steerer.rules[0].target` for both at α = 36: how far apart are the targets? Which α
#    of the token-calibrated rule restores as much honesty as the paper's α = 36?
# 3. Replace the gate threshold with `threshold="p10"` and compare the prompt-phase gate rate in
#    the telemetry summary with the boundary's.
# 4. Sweep SwFC's α from 1 to 8 at the steering layer and look at the answers: when does the text
#    stop being well formed? (`lensteer.organism.grade.grade_wellformed` grades it.)
# 5. Steer two layers at once (`lensteer.StTP([result.direction(a), result.direction(b)], ...)`).
#    Does a smaller α per layer do as well as one layer with a large α?
# 6. How often does the negative sign make the organism lie at the steering layer? Find the
#    layer and α at which it lies most while its answers stay well formed.
