from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from fastmock.cli import UsageError, parser, read_flags
from fastmock.config import OPTIONS, Config, ConfigError, load


def test_defaults() -> None:
    c = load({}, environ={})
    assert (c.host, c.port, c.mode, c.strict_models) == ("127.0.0.1", 8080, "canned", False)


def test_every_option_is_a_typed_config_attribute() -> None:
    typed = Config.__annotations__
    for opt in OPTIONS:
        assert opt.name in typed and opt.name in Config.__slots__
        assert getattr(Config(), opt.name) == opt.default
        # One rule; a list option's flag is the singular, repeatable form (--api-key).
        expected = "--" + opt.name.replace("_", "-")
        assert opt.flag == (expected[:-1] if opt.type is list else expected)
        assert opt.env == "FASTMOCK_" + opt.name.upper()


def test_precedence_flag_over_env_over_file_over_default(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text('port = 1111\nitl_ms = 5\nmode = "lorem"\nresponse_text = "file"\n')
    env = {"FASTMOCK_PORT": "2222", "FASTMOCK_ITL_MS": "7"}
    c = load({"port": "3333"}, environ=env, config_file=str(f))
    assert c.port == 3333          # flag
    assert c.itl_ms == 7.0         # env beats file
    assert c.mode == "lorem"       # file beats default
    assert c.response_text == "file"
    assert c.ttft_ms == 0.0        # default


def test_config_file_from_env(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text("strict_models = true\n")
    assert load({}, environ={"FASTMOCK_CONFIG": str(f)}).strict_models is True


def test_per_model_tables(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text('[models."gpt-4o-mini"]\nitl_ms = 30\nresponse_text = "mini"\n'
                 '[models."my/custom"]\nowned_by = "me"\nmode = "echo"\n')
    c = load({}, environ={}, config_file=str(f))
    by_id = {m.id: m for m in c.models}
    assert by_id["gpt-4o-mini"].overrides == {"itl_ms": 30.0, "response_text": "mini"}
    assert by_id["gpt-4o-mini"].owned_by == "openai"   # preset identity kept
    assert by_id["my/custom"].owned_by == "me"
    assert c.model_setting(by_id["my/custom"], "mode") == "echo"
    assert c.model_setting(by_id["gpt-4o"], "mode") == "canned"


@pytest.mark.parametrize(("flags", "env", "text", "message"), [
    ({"port": "99999"}, {}, "", "--port must be at most 65535"),
    ({"port": "x"}, {}, "", "--port must be an integer"),
    ({}, {"FASTMOCK_ITL_MS": "-1"}, "", "FASTMOCK_ITL_MS must be at least 0"),
    ({}, {"FASTMOCK_STRICT_MODELS": "maybe"}, "", "must be true or false"),
    ({}, {"FASTMOCK_TTFT_MS": "nan"}, "", "must be a finite number"),
    ({}, {}, "mode = 'poetry'", "must be one of canned, echo, lorem"),
    ({}, {}, "prot = 1", "unknown option 'prot'"),
    ({}, {}, "port = 1.5", "must be an integer"),
    ({}, {}, "[models.x]\nspeed = 1", "unknown key 'speed'"),
    ({}, {}, "[models.x]\nkind = 'video'", "kind must be one of"),
    ({}, {}, "port = [", "not valid TOML"),
])
def test_bad_values_are_one_line_errors(tmp_path: Path, flags: dict[str, str],
                                        env: dict[str, str], text: str, message: str) -> None:
    path = None
    if text:
        path = tmp_path / "c.toml"
        path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")) as info:
        load(flags, environ=env, config_file=str(path) if path else None)
    assert "\n" not in str(info.value)


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load({}, environ={}, config_file="/nonexistent/fastmock.toml")


@pytest.mark.parametrize("argv", [
    ["--itl-ms", "3", "--strict-models"], ["--no-delay-nonstream"], ["--itl-ms=3"],
    ["--api-key", "a", "--api-key=b", "--mode", "lorem", "--config", "x.toml"],
    ["--port", "-5"], []])
def test_cli_flags_read_as_argparse_reads_them(argv: list[str]) -> None:
    assert read_flags(argv) == vars(parser().parse_args(argv))


def test_cli_flags_are_strings_booleans_and_lists() -> None:
    assert read_flags(["--itl-ms", "3", "--strict-models", "--api-key", "k"]) == {
        "itl_ms": "3", "strict_models": True, "api_keys": ["k"]}


@pytest.mark.parametrize(("argv", "says"), [
    (["--mode", "foo"], "argument --mode: invalid choice: 'foo' (choose from 'canned', "),
    (["--port"], "argument --port: expected one argument"),
    (["--bogus", "1"], "unrecognized arguments: --bogus"),
    (["--strict-models=yes"], "ignored explicit argument 'yes'")])
def test_cli_errors_are_one_line(argv: list[str], says: str) -> None:
    with pytest.raises(UsageError, match=re.escape(says)):
        read_flags(argv)
    proc = subprocess.run([sys.executable, "-m", "fastmock", *argv], capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and says in proc.stderr


def test_cli_help_lists_every_flag() -> None:
    proc = subprocess.run([sys.executable, "-m", "fastmock", "--help"], capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 0
    assert all(opt.flag in proc.stdout for opt in OPTIONS)


def test_cli_error_exits_2_without_traceback() -> None:
    proc = subprocess.run([sys.executable, "-m", "fastmock", "--port", "-5"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "fastmock: error: --port must be at least 0, not -5"
    assert "Traceback" not in proc.stderr


def test_http_date_format() -> None:
    from email.utils import formatdate

    from fastmock.frames import http_date

    for t in (0.0, 784111777.0, 1795344000.5, 951782400.0):   # incl. a leap day
        assert http_date(t) == formatdate(t, usegmt=True).encode()
