"""The README documents every option with its three spellings, and shows the two commands."""

from __future__ import annotations

from pathlib import Path

import pytest

from fastmock.config import OPTIONS, Option

README = (Path(__file__).parent.parent / "README.md").read_text()


@pytest.mark.parametrize("opt", OPTIONS, ids=lambda o: o.name)
def test_option_documented(opt: Option) -> None:
    rows = [line for line in README.splitlines() if line.startswith(f"| `{opt.name}` |")]
    assert rows, f"no README table row for {opt.name}"
    assert f"`{opt.flag}`" in rows[0] and f"`{opt.env}`" in rows[0]


def test_two_commands() -> None:
    assert "make run" in README and "make test" in README


def test_toml_example_loads(tmp_path: object) -> None:
    import re
    from pathlib import Path

    from fastmock.config import load
    from fastmock.state import App

    blocks = re.findall(r"```toml\n(.*?)```", README, re.S)
    assert len(blocks) >= 2
    apps = []
    for i, block in enumerate(blocks):   # every example loads
        path = Path(str(tmp_path)) / f"fastmock{i}.toml"
        path.write_text(block)
        apps.append(App(load({}, environ={}, config_file=str(path))))
    configured = next(a for a in apps if "slow-reasoner" in a.profiles)
    assert configured.profiles["slow-reasoner"].kind == "reasoning"
    assert configured.profiles["my-embedder"].embedding_dimensions == 768
    presets = next(a for a in apps if "gpt-oss-20b" in a.profiles)
    assert presets.profiles["gpt-4o-mini"].tool_call_probability == 0.3
    assert presets.profiles["gpt-4.1-mini"].parallel_tool_calls == 3
    assert presets.profiles["gpt-oss-20b"].reasoning_output == "text"
    assert presets.profiles["o3"].reasoning_output == "summary"
