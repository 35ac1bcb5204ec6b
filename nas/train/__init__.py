"""Training one network, one module per concern (each imports only those listed above it).

- `recipe`: how a trial trains (typed, checked fields), the named recipes (RECIPES), and the optimizer
  (its parameter groups) and schedule it stands for.
- `results`: EpochMetrics, one attempt's AttemptResult, the trial's TrialResult, NonFiniteLoss.
- `measure`: device choice, autocast, latency, peak memory, environment.
- `progress`: a bar on a terminal, plain lines in logs.
- `checkpoint`: weights with their config and recipe, written atomically.
- `ema`: the moving average of the weights that validation, checkpoints and tests use (`ema_decay`).
- `memory`: the memory plan before training and the decision after an out-of-memory attempt.
- `sharing`: several trials training at once in one process, on one device (`--trials-per-gpu`).
- `graphs`: the whole training step, and validation's forward pass, captured as CUDA graphs (compile="graphs").
- `evaluate`: a model's loss and accuracy on one split (evaluate_split).
- `loop`: one attempt's epoch loop.
- `trainer`: train_trial: plan, attempts (one retry after out-of-memory), the trial's result.
"""
