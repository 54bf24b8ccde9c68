"""`dlc search`: a hyperparameter search on Optuna over a spec's `search:` section."""
