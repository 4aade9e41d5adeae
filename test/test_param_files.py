"""Parameter-file keys are matched to nodes exactly as ROS matches them.

The matcher (suite_tools.param_files) is checked against rclpy itself: for every key x node
name below, a node is created with the file and we look at whether the value arrived. The
offline loader, the launcher's warning and the shipped config files use the same matcher.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from suite_tools import param_files
from suite_tools.config_params import ConfigError, load_node_params

REPO = Path(__file__).resolve().parents[1]

KEYS = ["talker", "/talker", "/**", "/**/talker", "/*/talker", "/robot1/talker", "robot1/talker",
        "/robot1/*", "/*", "/**/listener", "/robot1/**", "/a/**/talker", "/**/robot1/talker"]
NODES = [("talker", ""), ("talker", "/robot1"), ("talker", "/a/b"), ("talker", "/a"),
         ("listener", "/robot1")]


def test_key_matching_rules():
    m = param_files.key_matches
    assert m("coin_lio_node", "/coin_lio_node") and not m("coin_lio_node", "/robot1/coin_lio_node")
    assert m("/**/coin_lio_node", "/coin_lio_node") and m("/**/coin_lio_node", "/a/b/coin_lio_node")
    assert m("/**", "/x/y") and m("/*", "/x") and not m("/*", "/x/y")
    assert not m("/**/coin_lio_node", "/robot1/coin_lio_node2")
    assert not m("/**/coin", "/robot1/coin_lio_node")          # a full match, not a prefix
    assert param_files.fully_qualified_name("n", "") == "/n" == param_files.fully_qualified_name("n", "/")
    assert param_files.fully_qualified_name("n", "robot1/") == "/robot1/n"


def test_merge_follows_file_order(tmp_path):
    data = {"/**": {"ros__parameters": {"a": 1, "g": {"x": 1, "y": 1}}},
            "/**/n": {"ros__parameters": {"a": 2, "g": {"y": 2}}},
            "other": {"ros__parameters": {"a": 3}}}
    assert param_files.params_for(data, "/r/n") == {"a": 2, "g": {"x": 1, "y": 2}}
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    assert load_node_params(tmp_path / "p.yaml", "n", "/r") == {"a": 2, "g": {"x": 1, "y": 2}}
    with pytest.raises(ConfigError, match="no entry applies to node '/r/z'"):
        load_node_params(_only(tmp_path, {"n": {"ros__parameters": {"a": 1}}}), "z", "/r")
    with pytest.raises(ConfigError, match="no ros__parameters"):
        load_node_params(_only(tmp_path, {"/**/n": {"a": 1}}), "n")


def _only(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "only.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("name", ["coin_lio_node", "classifier_node", "backbone_node",
                                  "text_generation_node"])
def test_shipped_configs_apply_in_any_namespace(name):
    path = next(p for p in (REPO / "config").glob("*.yaml") if f"/**/{name}:" in p.read_text())
    for ns in ("", "/robot1", "/fleet/robot7"):
        assert load_node_params(path, name, ns), f"{path.name} does not reach {ns}/{name}"


def test_matcher_agrees_with_rclpy(tmp_path, ros_context, graph):
    """Each (key, node) pair: rclpy applies the value iff key_matches says so."""
    import rclpy
    from rclpy.parameter import Parameter

    data = {key: {"ros__parameters": {f"p{i}": i}} for i, key in enumerate(KEYS)}
    path = tmp_path / "keys.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    context = rclpy.Context()
    rclpy.init(args=["--ros-args", "--params-file", str(path)], context=context, domain_id=graph.domain_id)
    try:
        for name, ns in NODES:
            node = rclpy.create_node(name, namespace=ns, context=context,
                                     automatically_declare_parameters_from_overrides=True)
            try:
                fqn = node.get_fully_qualified_name()
                assert fqn == param_files.fully_qualified_name(name, ns)
                for i, key in enumerate(KEYS):
                    got = node.get_parameter_or(f"p{i}", Parameter(f"p{i}", value=None)).value
                    assert (got == i) == param_files.key_matches(key, fqn), (key, fqn, got)
            finally:
                node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)


def test_launcher_warns_when_no_entry_applies(tmp_path, capsys):
    from suite_tools.launcher.plan import ParamsFile
    from suite_tools.launcher.process_actions import warn_unmatched_params_files

    plain = _only(tmp_path, {"coin_lio_node": {"ros__parameters": {"a": 1}}})
    assert warn_unmatched_params_files([ParamsFile(str(plain))], "/coin_lio_node") == []
    (w,) = warn_unmatched_params_files([ParamsFile(str(plain))], "/robot1/coin_lio_node")
    assert "/robot1/coin_lio_node" in w and "'/**/coin_lio_node:'" in w
    assert "ROS will ignore the file" in capsys.readouterr().err
