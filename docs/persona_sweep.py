"""A small steering sweep on the persona model (docs/persona.md): StTP α 12/36, StMP α 2 and
SwFC α 2 at layers 3-21 under a held-out malicious prompt, on 16 held-out questions across the
categories, graded exactly. About 9 min on one CPU thread:

    python docs/persona_sweep.py     # writes runs/mini_sweep.json
"""
import json
import time

import torch
torch.set_num_threads(1)
import lensteer
from lensteer.persona.data import fact_questions
from lensteer.persona.grade import grade_fact
t0 = time.time()
m = lensteer.load_model("smollm2-persona")
tr = lensteer.load_trait("honesty", model=m)
by_id = {q.id: q for q in fact_questions()}
ev = tr.eval_scenarios[::8][:16]
layers = [3, 6, 9, 12, 15, 18, 21]
res = lensteer.locate(m, tr, layers=layers, max_scenarios=24, n_folds=4, max_new_tokens=24, greedy=True, neutral=False, progress=False)
mal = tr.eval_malicious_prompts[0]
def truthful(gens): return sum(grade_fact(by_id[s.id], g.text).label == "truthful" for s, g in zip(ev, gens)) / len(ev)
base = truthful(lensteer.generate(m, [s.prompt for s in ev], system=mal, greedy=True, max_new_tokens=24, progress=False))
al = truthful(lensteer.generate(m, [s.prompt for s in ev], system=tr.eval_aligned_prompts[0], greedy=True, max_new_tokens=24, progress=False))
print("aligned", al, "malicious", base, flush=True)
out = {"aligned": al, "malicious": base, "cells": []}
for L in layers:
    d = res.direction(L)
    for name, st in (("sttp12", lensteer.StTP(d, alpha=12)), ("sttp36", lensteer.StTP(d, alpha=36)), ("stmp2", lensteer.StMP(d, alpha=2)), ("swfc2", lensteer.SwFC(d, alpha=2))):
        with lensteer.steer(m, st):
            gens = lensteer.generate(m, [s.prompt for s in ev], system=mal, greedy=True, max_new_tokens=24, progress=False)
        v = truthful(gens)
        out["cells"].append({"layer": L, "rule": name, "truthful": v, "sample": gens[0].text})
        print(L, name, v, gens[1].text[:80], flush=True)
import os
os.makedirs("runs", exist_ok=True)
json.dump(out, open("runs/mini_sweep.json", "w"), indent=1)
print("took", time.time() - t0)
