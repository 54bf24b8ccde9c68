"""The layer library, attention and transformers: self_attention, cross_attention,
transformer_encoder, transformer_decoder.
"""

from __future__ import annotations
