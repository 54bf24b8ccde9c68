"""`dlc train`: a spec's `training:` section run on the fx module of its model.

The front end's `TrainingPlan` (compiler/training.py) brings the checked calls and the
typed options with their defaults. In pipeline order: command.py (the command: a new,
resumed or distributed run) -> data.py, datasets.py, feeds.py (the data as tensors) ->
loop.py (the Trainer: setup, the epochs, the report; with losses.py, optimizers.py,
schedules.py, stopping.py, devices.py, distributed.py, progress.py) -> checkpoints.py,
report.py and runs.py (the run folder).
"""
