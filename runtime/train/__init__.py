"""`dlc train`: a spec's `training:` section run on the fx module of its model.

In pipeline order: command.py (the command: a new, resumed or distributed run) ->
options.py (the plan's options with their defaults) -> data.py, datasets.py, feeds.py
(the data as tensors) -> loop.py (the Trainer, with losses.py, optimizers.py,
schedules.py, devices.py, distributed.py, progress.py) -> runs.py (the run folder).
"""
