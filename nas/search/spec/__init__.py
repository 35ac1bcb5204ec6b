"""What the user wrote and what it means: study files and their reader, search spaces and space files, the TOML
helpers, the objective registry, the early-stopping rules (pure functions over `Evidence`, no Optuna) and the
samplers. It imports nothing of `nas.search.results` or `nas.search.run` (only arch, data, train and the root
modules), so a study file can be read and checked without opening a study."""
