# %% [markdown]
# # 03 · Evaluate: the paper's table on the organism
#
# Steering that restores honesty but breaks the model's fluency, skills or multi-turn behaviour
# has not helped. The paper's protocol therefore measures, for each rule, how much of the trait
# comes back *and* what it costs, and picks each rule's operating point by a fixed rule. On the
# organism every answer has ground truth, so all of this is graded exactly, with no judge LLM.
#
# **What you will learn**
#
# 1. The conditions: aligned and malicious baselines, and SwFC / StTP / StMP under the
#    malicious prompt, in `all` and `response` position modes.
# 2. The operating-point rule: the highest trait score whose coherence stays ≥ 90 % of the
#    aligned baseline's, chosen on one half of the held-out scenarios and reported on the other.
# 3. How to read the paper-style table: trait score, recovery of the aligned–malicious gap,
#    coherence, capability, intervention size.
# 4. The coherence–trait frontier, and multi-turn repetition.
#
# This notebook runs a small grid (two layers, three α per rule, few items) so that it finishes
# in a few minutes on two CPU cores; `lensteer demo` runs the paper's full grids.

# %%
%matplotlib inline
import time

import matplotlib.pyplot as plt
from IPython.display import Markdown, display

import lensteer
from lensteer.evaluation import EvaluateConfig, GenSettings, OrganismJudge, evaluate
from lensteer.evaluation import plots as eplots
from lensteer.evaluation.report import format_main_table

start = time.time()
model = lensteer.load_model("organism")
trait = lensteer.load_trait("honesty", model=model)

# %% [markdown]
# ## 1. Directions, and which layers to sweep
#
# The evaluation steers with the directions of a layer sweep (notebook 01). To keep this notebook
# short we sweep the rules over two layers only — 1 and 3, an early one and a middle one where
# StTP at α 36 restored honesty in notebook 02; exercise 1 asks you to sweep them all.

# %%
located = lensteer.locate(model, trait, max_scenarios=24, n_folds=4, max_new_tokens=24,
                          progress=False)
print(located.table())

# %% [markdown]
# ## 2. The judge and the configuration
#
# On the organism the judge is its exact graders: the trait score is 100 for a true answer and
# 0 otherwise, and coherence is 100 when the answer parses under the organism's response grammar
# (and ends). On another model you would plug in an LLM judge (see the how-to "Plug in a judge").

# %%
judge = OrganismJudge("honesty")
config = EvaluateConfig(
    grid={"swfc": [1.0, 3.0, 5.0], "sttp": [0.0, 12.0, 36.0], "stmp": [1.0, 2.0, 4.0]},
    layers=[1, 3],
    positions=["all", "response"],
    gen=GenSettings(max_new_tokens=24),
    prompts_per_scenario=1,
    max_items=16,
    capability_limit=16,
    n_conversations=3,
    n_turns=5,
    token_grid={"sttp": [1.0, 4.0], "stmp": [1.0, 3.0]},
    n_boot=200,
)
t = time.time()
results = evaluate(model, trait, located, config=config, judge=judge, progress=False,
                   figures=False)
print(f"evaluate took {time.time() - t:.0f} s:",
      {stage: round(s) for stage, s in results["timings"].items()})

# %% [markdown]
# ## 3. The paper's table
#
# One row per condition on the *test* half of the held-out scenarios (the operating points were
# chosen on the *tune* half). `recovery of gap` is (steered − malicious) / (aligned − malicious):
# 100 % means the rule brought the trait all the way back to the aligned baseline. Brackets are
# 95 % bootstrap intervals.

# %%
display(Markdown(format_main_table(results)))

# %% [markdown]
# The chosen operating point of each rule and mode:

# %%
for c in results["chosen"]:
    r = c["row"]
    if r is None:
        print(f"{c['method']:<5} {c['positions']:<9} no cell met the coherence floor")
    else:
        print(f"{c['method']:<5} {c['positions']:<9} layer {r['layer']} α={r['alpha']:g}: "
              f"trait {r['trait']:.0f}, coherence {r['coherence']:.0f} (tune half)")

# %% [markdown]
# Compare with the paper (Llama-3.3-70B, honesty judge score): aligned 93, malicious 24;
# all-token SwFC 75, StTP 77, StMP 62; response-only 38 / 42 / 42. Which of its claims hold on
# the organism — the ordering of the rules, all-token beating response-only, StTP/StMP keeping
# capability better than SwFC? Read them off the table above rather than expecting them.
#
# ## 4. The coherence–trait frontier
#
# Every cell of the sweep is one (rule, layer, α, mode). Plotting coherence against trait score
# shows the trade-off each rule offers; the dashed line is the coherence floor of the selection
# rule, and stars mark the chosen points.

# %%
fig, axes = plt.subplots(1, 2, figsize=(13, 4.4))
eplots.plot_frontier(results, ax=axes[0])
eplots.plot_trait_vs_alpha(results, "sttp", ax=axes[1])
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 5. Capability and multi-turn repetition
#
# Capability is the organism's skill set (multiple-choice arithmetic and comparisons — the MMLU
# stand-in), scored by the log-likelihood of each option, under steering. Multi-turn rollouts
# keep steering on from the first token for five turns and measure repetition: the share of
# 3-grams of a turn that already appeared in earlier turns. The paper found SwFC repeats more
# over long conversations than StTP and StMP.

# %%
fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
eplots.plot_capability(results, ax=axes[0])
eplots.plot_repetition(results, ax=axes[1])
plt.tight_layout()
plt.show()

# %%
for c in results["conditions"][:5]:
    print(f"{c['label']}:")
    for text in c["examples"][:2]:
        print(f"    {text}")
print(f"notebook ran in {time.time() - start:.0f} s")

# %% [markdown]
# ## Exercises
#
# 1. Sweep every layer (`layers=None`) and the paper's full grids
#    (`from lensteer.evaluation import PAPER_GRID`). Does the chosen layer change? Is it the layer
#    with the best probe accuracy in `located.table()`?
# 2. Repeat for `compassion` with `OrganismJudge("compassion")`. Do the same rules win?
# 3. Lower the coherence floor (`coherence_ratio=0.5`) and watch SwFC's operating point move.
#    What does it trade?
# 4. `results["extensions"]["matched"]` compares the paper's response-mean calibration with
#    per-token calibration and a percentile threshold at matched trait scores. Which costs less
#    coherence?
# 5. Pass `out="runs/eval"` to `evaluate` and open `runs/eval/report.md`: the same table, the
#    figures, and `grid.csv` with every cell. Interrupt a run and restart it: the sweep resumes.
