"""The bundled baselines (AD, DPT, DT, Meta-DT, T2MIR) on one shared transformer core."""
