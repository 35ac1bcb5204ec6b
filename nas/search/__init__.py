"""Search: spaces and study files, trial records, the objective, studies, workers, storage, ablation."""
