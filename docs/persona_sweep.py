"""A small steering sweep on the persona model (docs/persona.md): StTP α 12/36, StMP α 2 and
SwFC α 2 at layers 3-21 under a held-out malicious prompt, on 16 held-out questions across the
categories, graded exactly. About 5 min on one CPU thread:

    python docs/persona_sweep.py     # writes runs/mini_sweep.json
"""
import json
import os
import time

import torch

import lensteer
from lensteer.persona.data import fact_questions
from lensteer.persona.grade import grade_fact

torch.set_num_threads(1)
t0 = time.time()
m = lensteer.load_model("smollm2-persona")
tr = lensteer.load_trait("honesty", model=m)
by_id = {q.id: q for q in fact_questions()}
ev = tr.eval_scenarios[::8][:16]
layers = [3, 6, 9, 12, 15, 18, 21]
res = lensteer.locate(m, tr, layers=layers, max_scenarios=24, n_folds=4, max_new_tokens=24,
                      greedy=True, neutral=False, progress=False)
mal = tr.eval_malicious_prompts[0]


def truthful(gens):
    return sum(grade_fact(by_id[s.id], g.text).label == "truthful" for s, g in zip(ev, gens)) / len(ev)


def answers(system):
    return lensteer.generate(m, [s.prompt for s in ev], system=system, greedy=True,
                             max_new_tokens=24, progress=False)


base, al = truthful(answers(mal)), truthful(answers(tr.eval_aligned_prompts[0]))
print("aligned", al, "malicious", base, flush=True)
out = {"aligned": al, "malicious": base, "cells": []}
for layer in layers:
    d = res.direction(layer)
    for name, steerer in (("sttp12", lensteer.StTP(d, alpha=12)), ("sttp36", lensteer.StTP(d, alpha=36)),
                          ("stmp2", lensteer.StMP(d, alpha=2)), ("swfc2", lensteer.SwFC(d, alpha=2))):
        with lensteer.steer(m, steerer):
            gens = answers(mal)
        out["cells"].append({"layer": layer, "rule": name, "truthful": truthful(gens),
                             "sample": gens[0].text})
        print(layer, name, truthful(gens), gens[1].text[:80], flush=True)
os.makedirs("runs", exist_ok=True)
with open("runs/mini_sweep.json", "w") as f:
    json.dump(out, f, indent=1)
print("took", time.time() - t0)
