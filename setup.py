"""Python-only install of the suite: `pip install .` gives the offline tools without ROS.

On a robot the package is built with colcon (CMakeLists.txt), which installs the same Python
packages and wraps the node executables into lib/coin_lio_suite for `ros2 run`/`ros2 launch`.
"""
from setuptools import find_packages, setup

# Node executables: keep in step with SUITE_EXECUTABLES in CMakeLists.txt.
NODES = [
    "topic_monitor=suite_tools.topic_monitor:main",
    "bag_player=suite_tools.bag_player:main",
    "coin_lio_node=coin_lio.node:main",
    "classifier_node=learned_nodes.classifier_node:main",
    "backbone_node=learned_nodes.backbone_node:main",
    "suite_client=suite_tools.suite_client:main",
    "text_generation_node=learned_nodes.text_generation_node:main",
]
TOOLS = [
    "coin-lio-suite-launch=suite_tools.launcher.cli:main",
    "coin-lio-suite-play=suite_tools.bag_player:main",
    "coin-lio-suite-demo=suite_apps.demo:main",
    "coin-lio-sim=coin_lio.sim.cli:main",
    "coin-lio-bench=coin_lio.eval.bench_runner:main",
    "coin-lio-bench-sim=coin_lio.eval.bench_sim:main",
    "coin-lio-run=coin_lio.offline_runner:main",
    "cocoop-train=learned_nodes.cocoop.train:main",
    "cocoop-eval=learned_nodes.cocoop.evaluate:main",
    "cocoop-photo-check=learned_nodes.cocoop.photo_check:main",
    "lm-eval-ppl=learned_nodes.llm.perplexity:main",
    "lm-eval-instruct=learned_nodes.llm.instruction_eval:main",
    "loraprune=learned_nodes.loraprune.cli:main",
    "daft-tune=learned_nodes.daft.tune:main",
    "daft-eval=learned_nodes.daft.evaluate:main",
    "daft-bench=learned_nodes.daft.bench:main",
    "daft-export=learned_nodes.daft.export:main",
]

setup(
    # Not "coin_lio_suite": that distribution name belongs to the generated interface package.
    name="coin-lio-suite-python",
    version="0.1.0",
    description="COIN-LIO odometry and learned-model servers for ROS 2",
    packages=find_packages(include=["coin_lio*", "learned_nodes*", "suite_tools*", "suite_apps*"]),
    package_data={"learned_nodes": ["models/*/*"]},     # the shipped aligned encoder + prompt learner
    python_requires=">=3.10",
    install_requires=["numpy", "scipy", "pyyaml", "rosbags", "tqdm"],
    extras_require={"learned": ["torch", "safetensors", "transformers"]},
    entry_points={"console_scripts": NODES + TOOLS},
)
