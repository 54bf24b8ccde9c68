"""`dlc train`: a spec's `training:` section run on the fx module of its model.

In pipeline order: command.py (the command: a new, resumed or distributed run) ->
options.py (the plan's options with their defaults) -> data.py, datasets.py, feeds.py
(the data as tensors) -> loop.py (the Trainer: setup, the epochs, the report; with
losses.py, optimizers.py, schedules.py, stopping.py, devices.py, distributed.py,
progress.py) -> checkpoints.py, report.py and runs.py (the run folder).
"""
