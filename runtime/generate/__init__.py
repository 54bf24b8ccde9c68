"""Decoding sequences from trained language models and encoder-decoders (`dlc generate`)."""
