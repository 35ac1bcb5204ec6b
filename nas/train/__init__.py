"""Training one network: the recipe, the epoch loop, memory planning and OOM retry, measurement."""
