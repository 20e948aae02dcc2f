"""Model serving: the coder-model catalog, GPU sizing, the vLLM launcher and the one
OpenAI-compatible client the pipeline talks to (llama.cpp on the CPU by default).

A library: imports nothing from ``appliance`` or ``ui``. Built by the model-serving issue.
"""
