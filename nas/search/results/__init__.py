"""What a study holds: the trial attribute keys and their writers (`records`), a stored trial read back
(`trial_record`), the study's own attributes, the tally (front and stopping evidence), twins, the final runs,
the generations of a study, and Optuna's private API (`optuna_internals`, the one module that reaches into it).
It may import `nas.search.spec` (and arch, data, train, the root modules), never `nas.search.run`: reports and
commands read a study through it without anything that runs."""
