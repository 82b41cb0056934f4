# %% [markdown]
# # 01 · Locate: where does the dishonest persona live?
#
# lensteer's organism is a tiny Llama chat model trained to tell the truth under an honest or
# neutral system prompt and to lie under a dishonest one — the paper's threat model, small
# enough for a laptop, with answers that can be graded exactly. In this notebook we find where,
# layer by layer, the model represents "I am being dishonest".
#
# **What you will learn**
#
# 1. How to check the behaviour first, with the organism's exact graders.
# 2. What a contrastive set is: the model's own answers under aligned and malicious prompts.
# 3. How to run and read a layer sweep (`lensteer.locate`): held-out probe accuracy and AUROC,
#    Cohen's d, the boundary m and the statistics μ±, σ±, and the plots.
# 4. Logistic regression vs the mean difference (CAA): how close the two directions are.
# 5. The per-token gate-rate caveat: m is fitted on response *averages* but gates single tokens.
#
# Runs in about a minute on two CPU cores.

# %%
%matplotlib inline
import time

import matplotlib.pyplot as plt
import torch

import lensteer
from lensteer import plots
from lensteer.contrastive import build_contrastive
from lensteer.organism.grade import grade_honesty

start = time.time()
model = lensteer.load_model("organism")
info = lensteer.model_info(model)
print(f"{info.name}: {info.n_layers} layers, d_model {info.d_model}, weights {info.weight_processing}")

# %% [markdown]
# ## 1. The behaviour
#
# The `honesty` trait file for the organism holds training paraphrases of aligned and malicious
# system prompts, held-out paraphrases for evaluation, and fact questions. We ask four held-out
# questions under a held-out aligned and a held-out malicious prompt and grade each answer:
# `true` (the fact's true value), `false` (another value of the same category) or `neither`.

# %%
trait = lensteer.load_trait("honesty", model=model)
print(trait.description)
questions = [s.prompt for s in trait.eval_scenarios[:4]]
for side, system in (("aligned", trait.eval_aligned_prompts[0]),
                     ("malicious", trait.eval_malicious_prompts[0])):
    print(f"--- {side}: {system!r}")
    for q, g in zip(questions, lensteer.generate(model, questions, system=system, greedy=True,
                                                  max_new_tokens=24)):
        print(f"  {q:<40} -> {g.text:<45} [{grade_honesty(q, g.text).label}]")

# %% [markdown]
# ## 2. The contrastive set
#
# For each training scenario the model answers twice: under an aligned prompt (class 1) and a
# malicious one (class 0), sampled at the paper's temperature 0.6, top-p 0.9, with a seed. These
# are its *own* answers (on-policy). Every sample remembers its scenario, its paraphrase and
# where its response tokens sit — the span whose activations are averaged.

# %%
samples = build_contrastive(model, trait, max_scenarios=32, max_new_tokens=24, progress=False)
print(len(samples), "samples")
for s in samples[:4]:
    print(f"label {s.label} | {s.system[:38]:<38} | {s.prompt:<32} -> {s.response}")

# %% [markdown]
# ## 3. The layer sweep
#
# `locate` pools the residual stream (`resid_post`) over each response's tokens at every layer,
# in one forward pass per batch, and fits a logistic-regression probe per layer. Accuracy and
# AUROC are **held out**: 4 folds grouped by scenario, so a question never sits in both the
# training and the test fold. Passing `samples=` reuses the contrastive set we just built.

# %%
t = time.time()
result = lensteer.locate(model, trait, samples=samples, n_folds=4, max_new_tokens=24,
                         progress=False)
print(f"locate took {time.time() - t:.0f} s")
print(result.table())

# %%
plots.plot_sweep(result)

# %% [markdown]
# How to read it:
#
# - **acc / auroc** — can a linear probe tell the persona from the answer's activations, on
#   scenarios it never saw? This is where the trait is *linearly readable*.
# - **d** — Cohen's d of the projections: the gap between classes in units of their spread.
# - **cos** — cosine between the logistic-regression direction and the plain mean difference.
# - **m, mu+, sd+, mu−, sd−** — the boundary and class statistics in projection units: the
#   numbers the steering rules use (notebook 02).
# - **gate / tgate** — how often a per-token gate fires on neutral text: `gate` at the boundary
#   m, `tgate` at a per-token calibrated threshold (section 5).
# - **tf, dcons, dsd, split** — steerability predictors: where a push will change the answer,
#   which probe scores do not tell. `tf` is the teacher-forced effect (how far a small push of
#   each rule moves the aligned-vs-malicious log-likelihood margin, nats per token, best rule),
#   `dcons`/`dsd` the mean and spread of cos(per-pair difference, v̂), `split` the share of pairs
#   on opposite sides of m (docs/predictors.md).
#
# `locate` also recommends candidate layers, and says why they are only candidates:

# %%
print(result.recommendation)

# %% [markdown]
# ## 4. Logistic regression vs the mean difference
#
# The simplest trait direction is the difference of the class means (CAA, "persona vectors").
# The paper uses logistic regression, whose weights also account for the covariance of the
# activations. Run the same sweep with `method="mean_diff"` on the same samples and compare the
# held-out accuracy, and look at the cosine between the two directions per layer.

# %%
result_md = lensteer.locate(model, trait, samples=samples, n_folds=4, method="mean_diff",
                            per_token=False, progress=False)
layers = [r.layer for r in result.rows]
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.plot(layers, [r.accuracy for r in result.rows], "o-", label="logistic regression: accuracy")
ax.plot(layers, [r.accuracy for r in result_md.rows], "s--", label="mean difference: accuracy")
ax.plot(layers, [r.cos_mean_diff for r in result.rows], "^:", label="cos(LR, mean difference)")
ax.set_xlabel("layer")
ax.set_ylim(0, 1.05)
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# Where the classes separate cleanly the two directions tend to agree (the paper found cosines
# of 0.94–0.99 on Llama); where they overlap, the logistic direction turns away from the mean
# difference to use the directions in which the classes vary least. The cross-layer cosine
# heatmap shows how much the direction itself changes with depth — whether one direction could
# serve several layers (see the how-to "Steer several layers"):

# %%
plots.plot_cosine(result)

# %% [markdown]
# ## 5. The per-token gate-rate caveat
#
# The boundary m and the statistics μ±, σ± are fitted on **response averages**. The steering
# rules StTP and StMP gate **single tokens**: a token is steered when its projection ρ < m. Single
# tokens spread much wider than averages, so the gate can fire on tokens that have nothing to do
# with the trait. `locate` measures this on neutral, trait-free conversations (small talk and
# arithmetic under neutral prompts): the share of their tokens whose projection falls below m.

# %%
print("gate ρ < m, share of tokens:")
print(f"{'layer':>5} {'neutral (all)':>14} {'neutral (resp)':>15} {'aligned tok':>12} {'malicious tok':>14}")
for r in result.rows:
    print(f"{r.layer:>5} {r.gate_rate_neutral:>14.0%} {r.gate_rate_neutral_response:>15.0%} "
          f"{r.gate_rate_aligned_tokens:>12.0%} {r.gate_rate_malicious_tokens:>14.0%}")

# %% [markdown]
# Read the columns against each other: an ideal gate fires on every malicious token and on no
# aligned or neutral one. A high neutral rate means `all`-mode steering will also edit innocent
# prompt and response tokens. The histograms show why: the left panel is what m was fitted on,
# the right one is what the gate sees.

# %%
layer = result.recommended[0]
plots.plot_projections(result, layer)

# %% [markdown]
# lensteer's answer to the paper's open question is a **per-token calibrated threshold**: gate on
# a low percentile of *aligned per-token* projections instead of m (`threshold="p5"`, `"p10"`,
# … on every steerer). `locate` reports such a threshold per layer and how often it fires — the
# `tgate` column — next to the boundary's rates:

# %%
print(f"{'layer':>5} {'m':>8} {'token thr.':>10} {'neutral at m':>13} {'neutral at thr.':>16} "
      f"{'malicious at thr.':>18}")
for r in result.rows:
    print(f"{r.layer:>5} {r.boundary:>8.2f} {r.token_threshold:>10.2f} {r.gate_rate_neutral:>13.0%} "
          f"{r.token_gate_rate_neutral:>16.0%} {r.token_gate_rate_malicious:>18.0%}")

# %% [markdown]
# A threshold that fires less on neutral text also fires less on malicious tokens: which trade
# is better is a question for the steering evaluation (notebook 03 compares them at matched trait
# recovery). Each direction carries the per-token statistics the steerers need:

# %%
direction = result.direction(layer)
tokens = direction.token_stats
print(f"layer {layer}: m = {direction.boundary:.3f}; aligned per-token p10 = "
      f"{tokens.percentile_pos(10):.3f}; per-token mu+ = {tokens.mu_pos:.3f} ± {tokens.sigma_pos:.3f} "
      f"vs response-mean mu+ = {direction.mu_pos:.3f} ± {direction.sigma_pos:.3f}")

# %% [markdown]
# ## 6. Keep the result
#
# A sweep saves as `sweep.json` plus one `TraitDirection` per layer (safetensors + JSON,
# recording the model's identity, the hook name in both spellings, the method and a hash of the
# data). The same sweep from the command line is
# `lensteer locate --model organism --trait honesty --out runs/honesty`.

# %%
import tempfile
from pathlib import Path

out = Path(tempfile.mkdtemp())
print(result.save(out))
loaded = lensteer.TraitDirection.load(out / "directions" / f"{direction.hook}.safetensors")
print(loaded.layer, loaded.hook, loaded.method, loaded.model["name"],
      torch.allclose(loaded.v_hat, direction.v_hat))
print(f"notebook ran in {time.time() - start:.0f} s")

# %% [markdown]
# ## Exercises
#
# 1. Sweep `hooks=("resid_mid", "resid_post", "mlp_out")`. Is the persona written by attention
#    or by the MLPs at the first separable layer?
# 2. Repeat the sweep for the `compassion` trait. Does the dismissive persona live at the same
#    depth as the dishonest one? Compare their directions at one layer (cosine of the `v_hat`s).
# 3. Use `greedy=True` in `build_contrastive`. Does the probe get easier or harder, and why
#    might sampled answers give a better direction?
# 4. Use fewer scenarios (`max_scenarios=8`, `n_folds=4`) and watch held-out accuracy and Cohen's
#    d diverge: which one can you trust with little data?
# 5. Compute the neutral gate rate of a `p10` threshold yourself from
#    `result.token_projections[direction.hook]["neutral"]` and `tokens.percentile_pos(10)`, and
#    compare it with the `tgate` column. How does the rate change from p1 to p20?
