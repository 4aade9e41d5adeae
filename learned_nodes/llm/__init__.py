"""Language-model core of learned_nodes (no rclpy): model loading (model_io), text corpora with a
fixed split (corpus), sliding-window perplexity (perplexity), a streaming, cancellable generation
core (generation) and tiny random models in the real formats for tests (tiny_models).

text_generation_node.py is the thin ROS 2 adapter on top; learned_nodes.loraprune prunes models.
"""
