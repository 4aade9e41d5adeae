"""DAFT fine-tuning core (Ha et al., AAAI 2024): BN conversion, integrated LP-FT and baselines.

Pure offline core (torch, no ROS): `bn_conversion` (statistics + conversion), `backbones`
(EfficientNet-Lite0/1/2, Hugging Face ResNet folders, tiny CNN + linear head), `methods` (lp, ft,
lpft, daft and ablations on one training path), `probe` (logistic-regression probe, C sweep), `data`
(MNIST ID with a validation split, sklearn digits OOD, corrupted ID), `folder_data` (your own
images: class subfolders or .npz), `distortion` (cosine, CKA), `shot` (SHOT source-free
adaptation), `checkpoint` (safetensors + JSON, fp16 ok),
`tune` (daft-tune), `evaluate` (daft-eval), `sweep` + `bench` + `report` (lr selection on
validation, methods x seeds, SHOT, table + plot), `export` (fp16 export with an accuracy check),
`serve` (inference wrapper of backbone_node).
"""
