"""Search, in three rooms that import only downward: `spec` (what the user wrote and what it means), below
`results` (what a study holds) and `run` (what runs); `results` never imports `run` (tests/test_layers.py)."""
