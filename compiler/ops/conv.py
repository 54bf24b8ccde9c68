"""The layer library, convolution and pooling: conv1d, conv2d, conv_transpose2d, max/avg
pooling, global pooling, upsample.
"""

from __future__ import annotations
