"""The layer library, embeddings and sequence plumbing: embedding (and dense's tie=),
positional_encoding, patch_embed, cls_token, take, mean.
"""

from __future__ import annotations
