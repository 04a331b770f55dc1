"""Shared parts of every baseline: embeddings, the causal transformer with its KV cache, the
trainer, the bridge from the dataset store to batches, configs and checkpoints."""
