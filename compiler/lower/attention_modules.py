"""The torch modules and functions of attention and transformers.

Like torch_modules.py, this file imports only torch and math: `dlc compile --emit torch`
copies it, verbatim after its imports, into the standalone model.py it writes.
"""

from __future__ import annotations

import math  # noqa: F401

import torch  # noqa: F401
from torch import nn  # noqa: F401
from torch.nn import functional as F  # noqa: F401
