"""The layer library, generative pieces and more normalization: groupnorm,
stochastic_depth, gaussian_sample.
"""

from __future__ import annotations
