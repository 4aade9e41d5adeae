"""learned_nodes: model servers (CoCoOp, LoRAPrune LM, DAFT backbone) and their offline tools.

Heavy imports (torch, transformers) happen inside the modules that need them, never here.
Never imports coin_lio.
"""
__version__ = "0.1.0"
