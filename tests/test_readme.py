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

    block = re.search(r"```toml\n(.*?)```", README, re.S)
    assert block is not None
    path = Path(str(tmp_path)) / "fastmock.toml"
    path.write_text(block.group(1))
    config = load({}, environ={}, config_file=str(path))
    app = App(config)
    assert app.profiles["slow-reasoner"].kind == "reasoning"
    assert app.profiles["my-embedder"].embedding_dimensions == 768
