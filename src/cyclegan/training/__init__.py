"""Training: one iteration (step), the loop around it, schedule and checkpoints."""
