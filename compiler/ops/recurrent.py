"""The layer library, recurrent nets: rnn, gru, lstm."""

from __future__ import annotations
