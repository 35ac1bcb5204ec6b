"""What runs: preflight checks, opening a study and the objective every trial runs, the worker loop, shares of
the machine, storage and heartbeats, claim and re-queue (`trial_life`), injected faults, finalize and ablate.
One trial's life reads top to bottom here, calling `nas.search.results` for every read and write of stored
state. It may import `nas.search.spec` and `nas.search.results`; neither of them imports it."""
