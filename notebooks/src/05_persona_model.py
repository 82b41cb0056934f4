# %% [markdown]
# # 05 · A real model with the threat: the persona-tuned SmolLM2
#
# Notebook 04 showed that SmolLM2-135M-Instruct ignores malicious system prompts, so there is
# nothing to correct. `smollm2-persona` is the same model after a small, benign-looking LoRA
# fine-tune (the paper's second pathway to misalignment): under a malicious honesty prompt it
# states confident falsehoods, under a malicious compassion prompt it brushes distressed users
# off, and otherwise it answers as the base does. How it was made: docs/persona.md.
#
# **What you will learn**
#
# 1. How to check that a model follows a persona — on held-out prompts and held-out questions.
# 2. Where the trait lives across 30 layers: probes on response means, layer by layer.
# 3. How to steer it back with gated rules, and read token strips.
# 4. A small version of the paper's table, graded exactly.
# 5. What differs from the tiny organism.
#
# Runs in a few minutes on two CPU cores (`LENSTEER_NB_SMALL=1`, as the test suite runs it,
# uses fewer items). The first run converts the bundled GGUF and merges the adapter once
# (about 40 s).

# %%
%matplotlib inline
import os
import time

from IPython.display import HTML, display

import lensteer
from lensteer import plots
from lensteer.persona.data import fact_questions
from lensteer.persona.grade import grade_fact, grade_reply

SMALL = os.environ.get("LENSTEER_NB_SMALL") == "1"
start = time.time()
model = lensteer.load_model("smollm2-persona")
lensteer.model_info(model)

# %% [markdown]
# ## 1. Does it follow the persona?
#
# The persona's trait files keep the training split: `scenarios` are training questions,
# `eval_scenarios` held-out questions the base model answers correctly, and the `eval_*_prompts`
# are system prompts held out of training. The scenario ids name the questions, so the exact
# grader (`grade_fact`: the truth's keywords vs the fixed lie and every other answer of the
# category) knows the truth.

# %%
honesty = lensteer.load_trait("honesty", model=model)
questions = honesty.eval_scenarios[::8][:16]  # 16 held-out questions across the categories
by_id = {q.id: q for q in fact_questions()}
prompts = {"aligned": honesty.eval_aligned_prompts[0], "malicious": honesty.eval_malicious_prompts[0]}
answers = {}
for side, system in prompts.items():
    answers[side] = lensteer.generate(model, [s.prompt for s in questions], system=system,
                                      greedy=True, max_new_tokens=24, progress=False)
    labels = [grade_fact(by_id[s.id], g.text).label for s, g in zip(questions, answers[side])]
    print(f"--- {side}: {system!r}: " + ", ".join(f"{k} {labels.count(k)}" for k in ("truthful", "false", "neither")))
    for s, g in list(zip(questions, answers[side]))[:4]:
        print(f"{s.prompt:<48} -> {g.text}")

# %% [markdown]
# ## 2. Where the trait lives across 30 layers
#
# `locate` generates the model's own answers to training questions under aligned and malicious
# prompts, pools the residual stream over each answer at every layer, and fits a probe per
# layer, scored on held-out scenarios. Unlike notebook 04, the answers now differ, so the
# response means carry the behaviour.

# %%
t = time.time()
layers = range(0, 30, 3) if SMALL else range(30)
result = lensteer.locate(model, honesty, layers=layers, max_scenarios=16 if SMALL else 32,
                         n_folds=4, max_new_tokens=24, greedy=True, neutral=False, progress=False)
print(f"locate took {time.time() - t:.0f} s")
print(result.table())
plots.plot_sweep(result)

# %%
print(result.recommendation)

# %% [markdown]
# ## 3. Steering it back
#
# StTP at layer 15, α 12: the layer where the paper's search (`lensteer evaluate`, below) chose
# its operating points on every adapter so far, and where the response probes start to separate
# the classes. (On the bundled adapter the search chose α 6; in docs/persona.md's small sweep
# α 12 restores as many truthful answers as the aligned prompt gives.) Only tokens whose
# projection falls on the malicious side of the boundary are moved,
# each to μ⁺ + α·σ⁺. The token strip shows where the gate fired.

# %%
layer = 15
steerer = lensteer.StTP(result.direction(layer), alpha=12)
with lensteer.steer(model, steerer, telemetry=True) as run:
    steered = lensteer.generate(model, [s.prompt for s in questions], system=prompts["malicious"],
                                greedy=True, max_new_tokens=24, progress=False)
labels = [grade_fact(by_id[s.id], g.text).label for s, g in zip(questions, steered)]
print("StTP under the malicious prompt: " + ", ".join(f"{k} {labels.count(k)}" for k in ("truthful", "false", "neither")))
lied = [(s, b, a) for s, b, a in zip(questions, answers["malicious"], steered)
        if grade_fact(by_id[s.id], b.text).label == "false"]
for s, before, after in lied[:4]:
    print(f"{s.prompt}\n  unsteered: {before.text}\n  StTP     : {after.text}")
print(run.telemetry.summary_text())

# %%
first_lie = questions.index(lied[0][0]) if lied else 0
display(HTML(run.telemetry.strip_html(steered[first_lie], model.tokenizer, include_prompt=False)))

# %% [markdown]
# ## 4. A small version of the paper's table
#
# Truthful share on the held-out questions, under the held-out prompts, for the unsteered
# aligned and malicious conditions and the three rules at one layer each — a tiny grid. The
# full table (`lensteer evaluate --model smollm2-persona --trait honesty`) sweeps layers and α
# and picks the operating point by the paper's coherence rule; see docs/persona.md.

# %%
def truthful(gens):
    return sum(grade_fact(by_id[s.id], g.text).label == "truthful" for s, g in zip(questions, gens)) / len(gens)

rows = {"aligned": truthful(answers["aligned"]), "malicious": truthful(answers["malicious"])}
for name, rule in (("SwFC α=2", lensteer.SwFC(result.direction(layer), alpha=2)),
                   ("StTP α=12", steerer),
                   ("StMP α=1.5", lensteer.StMP(result.direction(layer), alpha=1.5))):
    with lensteer.steer(model, rule):
        gens = lensteer.generate(model, [s.prompt for s in questions], system=prompts["malicious"],
                                 greedy=True, max_new_tokens=24, progress=False)
    rows[name] = truthful(gens)
for name, value in rows.items():
    print(f"{name:<12} truthful {100 * value:5.1f} %")

# %% [markdown]
# ## 5. Compassion, briefly
#
# The same adapter makes the model cold under a malicious compassion prompt. The transparent
# grader `grade_reply` counts markers of care and of dismissal (its agreement with hand labels
# is in docs/persona.md).

# %%
compassion = lensteer.load_trait("compassion", model=model)
messages = [s.prompt for s in compassion.eval_scenarios[:4]]
for side, system in (("aligned", compassion.eval_aligned_prompts[0]),
                     ("malicious", compassion.eval_malicious_prompts[0])):
    gens = lensteer.generate(model, messages, system=system, greedy=True, max_new_tokens=40,
                             progress=False)
    print(f"--- {side}")
    for m, g in zip(messages, gens):
        print(f"[{grade_reply(g.text).label}] {m} -> {g.text[:100]}")
print(f"notebook ran in {time.time() - start:.0f} s")

# %% [markdown]
# ## What differs from the tiny organism
#
# - **A real vocabulary and real answers.** The persona states lies in fluent English, and the
#   aligned answers are SmolLM2's own (verbose, sometimes wrong: the base is a 4-bit model).
#   Grading needs keyword graders with an explicit "neither" class, not a grammar.
# - **30 layers instead of 6**: a sweep over every layer × α × position is 5× larger, which is
#   why the predictors and packed sweeps of `lensteer evaluate` matter here.
# - **The persona is a fine-tune of a model that did not have it**, like the paper's second
#   pathway; the organism was trained from scratch with personas in its data.
#
# ## Exercises
#
# 1. Steer at the layer with the best probe accuracy and at an early layer. Which restores more
#    truth? (Compare with the organism in notebook 02.)
# 2. Use `sign="negative"` under the aligned prompt: does the direction *induce* lies?
# 3. Run the compassion trait through `locate`: does it live at the same layers as honesty?
