"""DAFT fine-tuning core (Ha et al., AAAI 2024): BN conversion, integrated LP-FT and baselines.

Pure offline core (torch, no ROS): `bn_conversion` (statistics + conversion), `backbones`
(EfficientNet-Lite0 / tiny CNN + linear head), `methods` (lp, ft, lpft, daft and ablations on one
training path), `data` (MNIST ID, sklearn digits OOD, corrupted ID), `distortion` (cosine, CKA),
`checkpoint` (safetensors + JSON), `tune` (CLI), `bench` (methods x seeds).
"""
