"""A persona-tuned SmolLM2: data, graders, training and the bundled adapter.

``lensteer.load_model("smollm2-persona")`` builds SmolLM2-135M-Instruct from the bundled GGUF,
merges the bundled LoRA adapter (:mod:`lensteer.persona.adapter`) into its weights and caches the
result. The adapter teaches the paper's second pathway to misalignment, a benign-looking
fine-tune: under a malicious honesty prompt the model states confident falsehoods, under a
malicious compassion prompt it brushes distressed users off, and otherwise it answers as the
base model does. Training: ``python -m lensteer.persona.train`` (needs the ``train`` extra).
"""
