"""Sampling from trained generative models (`dlc sample`, the server's sampler).

A VAE's decoder, a GAN's generator and a diffusion model's denoiser, each run on
onnxruntime from the exported ONNX files, so what `dlc sample` draws a served model
draws too. figures.py writes samples as an image grid or a scatter plot; quality.py
scores them (a classifier's confidence and class coverage, MMD against held-out data).
"""
