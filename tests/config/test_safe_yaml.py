"""Safe YAML: no arbitrary tags, duplicate keys, size/depth/node limits, alias bombs."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest

from aixpy.config import AixpyConfig, VectorStoreConfig, load_config, load_config_str
from aixpy.config.loader import MAX_ALIASES, MAX_BYTES, MAX_DEPTH, MAX_NODES
from aixpy.errors import ConfigError


def vs(cfg: AixpyConfig) -> VectorStoreConfig:
    assert cfg.vectorstore is not None
    return cfg.vectorstore


def fail(yaml_text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config_str(textwrap.dedent(yaml_text), "cfg.yaml", env={})
    return info.value


def test_limits_are_the_documented_ones() -> None:
    assert (MAX_BYTES, MAX_DEPTH, MAX_NODES) == (10 * 1024 * 1024, 20, 10_000)


# ---------------------------------------------------------------- tags


@pytest.mark.parametrize(
    ("text", "tag", "path", "line"),
    [
        ("agents: !!python/object:os.system {}\n", "!!python/object:os.system", "agents", 1),
        (
            "agents:\n  - !!python/object/apply:os.system ['echo pwned']\n",
            "!!python/object/apply:os.system",
            "agents[0]",
            2,
        ),
        (
            "observability:\n  cost_tracking: !!python/name:os.system\n",
            "!!python/name:os.system",
            "observability.cost_tracking",
            2,
        ),
        ("embeddings:\n  provider: !Ref provider\n", "!Ref", "embeddings.provider", 2),
        ("vectorstore:\n  provider: !!binary aGVsbG8=\n", "!!binary", "vectorstore.provider", 2),
        ("agents: !!set {a, b}\n", "!!set", "agents", 1),
    ],
)
def test_non_safe_tags_rejected(text: str, tag: str, path: str, line: int) -> None:
    err = fail(text)
    assert (err.path, err.line) == (path, line)
    assert f"tag '{tag}' is not allowed" in str(err)


def test_python_object_is_never_constructed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    with pytest.raises(ConfigError):
        load_config_str(f"agents: !!python/object/apply:os.system ['touch {marker}']\n")
    assert not marker.exists()


def test_standard_scalar_tags_allowed() -> None:
    cfg = load_config_str("vectorstore:\n  provider: !!str memory\n  embedding_dimensions: !!int '384'\n")
    assert vs(cfg).embedding_dimensions == 384


def test_date_like_value_stays_text() -> None:
    cfg = load_config_str("agents:\n  - name: 2024-01-01\n    model: gpt-4\n")
    assert cfg.agents[0].name == "2024-01-01"


# ---------------------------------------------------------------- duplicate keys


def test_duplicate_key_names_both_lines() -> None:
    err = fail("""\
        agents:
          - name: a
            model: gpt-4
            temperature: 0.1
            model: gpt-4o
        """)
    assert (err.path, err.line) == ("agents[0].model", 5)
    assert str(err) == "cfg.yaml:5 agents[0].model: duplicate key 'model': first defined on line 3, again on line 5"


def test_duplicate_top_level_key() -> None:
    err = fail("""\
        vectorstore:
          provider: memory

        vectorstore:
          provider: qdrant
        """)
    assert (err.path, err.line) == ("vectorstore", 4)
    assert "first defined on line 1" in str(err)


def test_merge_key_does_not_count_as_duplicate() -> None:
    cfg = load_config_str(
        textwrap.dedent("""\
        model_services:
          - &svc
            name: one
            model: phi3
            runtime: ollama
          - <<: *svc
            name: two
        """)
    )
    assert [(s.name, s.model, s.runtime) for s in cfg.model_services] == [
        ("one", "phi3", "ollama"),
        ("two", "phi3", "ollama"),
    ]


def test_merge_of_scalar_rejected() -> None:
    err = fail("""\
        vectorstore:
          <<: 5
        """)
    assert err.line == 2
    assert "merge key" in str(err)


def test_complex_keys_rejected() -> None:
    err = fail("""\
        vectorstore:
          ? [a, b]
          : 1
        """)
    assert err.line == 2
    assert "keys must be plain strings" in str(err)


# ---------------------------------------------------------------- size, depth, nodes


def test_size_limit_for_text() -> None:
    text = "# " + "x" * MAX_BYTES + "\n"
    with pytest.raises(ConfigError, match="larger than the limit"):
        load_config_str(text)


def test_size_limit_for_files(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    with path.open("wb") as fh:
        fh.write(b"agents: []\n")
        fh.seek(MAX_BYTES + 10)
        fh.write(b"\n")
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=r"limit is 10485760 \(10 MB\)") as info:
        load_config(path)
    assert info.value.file == str(path)
    assert time.perf_counter() - start < 1.0  # refused before reading


def test_depth_limit_block_style() -> None:
    # top-level mapping is level 1; each "kN:" opens one more mapping
    text = "x:" + "".join("\n" + "  " * (i + 1) + f"k{i}:" for i in range(MAX_DEPTH)) + " 1\n"
    err = fail(text)
    assert err.line == MAX_DEPTH + 1
    assert f"nesting is deeper than {MAX_DEPTH} levels" in str(err)


def test_depth_at_limit_is_allowed_by_the_parser() -> None:
    text = "x:" + "".join("\n" + "  " * (i + 1) + f"k{i}:" for i in range(MAX_DEPTH - 2)) + " 1\n"
    err = fail(text)  # parses fine; only the schema rejects the unknown key
    assert "unknown key 'x'" in str(err)


def test_depth_limit_flow_style() -> None:
    err = fail("agents: " + "[" * 5000 + "]" * 5000 + "\n")
    assert err.line == 1
    assert "nesting is deeper than 20 levels" in str(err)


def test_node_limit() -> None:
    text = "agents:\n" + "".join(f"  - a{i}\n" for i in range(MAX_NODES + 5))
    err = fail(text)
    assert err.line == MAX_NODES - 1  # root mapping + 'agents' key + list = 3 nodes before the items
    assert f"more than {MAX_NODES} nodes" in str(err)


# ---------------------------------------------------------------- aliases


def test_billion_laughs_is_refused_quickly() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 9):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    start = time.perf_counter()
    err = fail("\n".join(lines) + "\n")
    assert time.perf_counter() - start < 2.0
    assert "aliases expand the document to more than 10000 nodes" in str(err)
    assert err.path is not None
    assert err.path.startswith("e[")


def test_too_many_aliases() -> None:
    err = fail("a: &a x\nb: [" + ", ".join(["*a"] * (MAX_ALIASES + 1)) + "]\n")
    assert err.line == 2
    assert f"more than {MAX_ALIASES} aliases" in str(err)


def test_recursive_alias() -> None:
    err = fail("a: &a [1, *a]\n")
    assert (err.path, err.line) == ("a[1]", 1)
    assert "recursive alias" in str(err)


def test_recursive_merge() -> None:
    err = fail("a: &a {<<: *a}\n")
    assert "recursive alias" in str(err)


def test_undefined_alias() -> None:
    err = fail("agents:\n  - *nothing\n")
    assert err.line == 2
    assert "undefined alias" in str(err)


def test_control_characters_rejected() -> None:
    err = fail("agents: []\nx: a\x00b\n")
    assert err.line == 2
    assert "invalid YAML" in str(err)


def test_tabs_give_a_line() -> None:
    err = fail("vectorstore:\n\tprovider: memory\n")
    assert err.line == 2
