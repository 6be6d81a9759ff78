"""Stage 2, compression: structured pruning, recovery by distillation."""
