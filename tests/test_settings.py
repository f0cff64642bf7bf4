"""The settings table drives the environment, `/api/settings`, the CLI options and the README."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from hooklab.cli.main import cli
from hooklab.shared.settings import SETTINGS, SettingError, Settings, settings_markdown

README = Path(__file__).resolve().parents[1] / "README.md"


def test_defaults_then_environment_then_overrides():
    env = {"HOOKLAB_PORT": "9001", "HOOKLAB_RETRY_SCHEDULE": "1, 2,3"}
    settings = Settings({"port": 9002}, environ=env)
    assert settings.port == 9002
    assert Settings(environ=env).port == 9001
    assert Settings(environ=env).retry_schedule == (1.0, 2.0, 3.0)
    assert Settings(environ={}).max_body_bytes == 10 * 1024 * 1024


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"HOOKLAB_PORT": "eighty"}, "HOOKLAB_PORT"),
        ({"HOOKLAB_BLOCK_PRIVATE_TARGETS": "maybe"}, "HOOKLAB_BLOCK_PRIVATE_TARGETS"),
        ({"HOOKLAB_RETRY_SCHEDULE": "5,soon"}, "HOOKLAB_RETRY_SCHEDULE"),
        ({"HOOKLAB_DB": " "}, "HOOKLAB_DB: give the path"),
    ],
)
def test_bad_environment_value_names_the_variable(env, message):
    with pytest.raises(SettingError, match=message):
        Settings(environ=env)


def test_api_settings_lists_every_setting_and_hides_the_token(tmp_path):
    from hooklab.app.factory import create_app

    app = create_app(Settings({"db": str(tmp_path / "x.db"), "token": "s3cret"}, environ={}))
    body = app.test_client().get("/api/settings", headers={"Authorization": "Bearer s3cret"}).json
    assert list(body["settings"]) == [s.name for s in SETTINGS]
    assert body["settings"]["token"]["value"] is True
    assert "s3cret" not in str(body)


def test_every_setting_is_a_serve_option():
    result = CliRunner().invoke(cli, ["serve", "--help"])
    assert result.exit_code == 0
    for setting in SETTINGS:
        assert setting.option in result.output


def test_readme_settings_table_is_generated_from_the_table():
    text = README.read_text()
    start = text.index("<!-- settings:start -->\n") + len("<!-- settings:start -->\n")
    end = text.index("\n<!-- settings:end -->")
    assert text[start:end] == settings_markdown()


def test_bad_cli_value_is_one_line_not_a_traceback():
    result = CliRunner().invoke(cli, ["serve", "--port", "eighty", "--db", "/nonexistent/x.db"])
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert "--port" in result.output


def test_settings_travel_through_the_environment_unchanged():
    # app/launcher.py hands a child server its settings as HOOKLAB_* variables.
    from hooklab.shared.settings import as_environ

    chosen = Settings(
        {"allow_host": "hooks.test, other.test:8080", "retry_schedule": "0.5,2", "token": "t"},
        environ={},
    )
    again = Settings(environ=as_environ(chosen))
    assert again.values() == chosen.values()
    assert again.allow_host == ("hooks.test", "other.test:8080")


NUMBERS = [s for s in SETTINGS if s.type in (int, float) or s.name == "retry_schedule"]


def test_every_number_setting_has_a_range():
    assert {s.name for s in NUMBERS} >= {"port", "threads", "max_body_bytes", "retry_schedule"}
    for setting in NUMBERS:
        assert setting.low is not None and setting.high is not None, setting.name
        assert setting.low <= _default(setting) <= setting.high, setting.name


def _default(setting):
    default = setting.type(setting.default) if setting.name == "retry_schedule" else setting.default
    return max(default) if isinstance(default, tuple) else default


def _outside(setting) -> list[str]:
    high = int(setting.high) if float(setting.high).is_integer() else setting.high
    out = [str(setting.low - 1), str(high + 1), str(2**64), str(-(2**63)), "-1e308"]
    if setting.type is not int:
        out += ["nan", "inf", "-inf"]
    return out


@pytest.mark.parametrize("setting", NUMBERS, ids=lambda s: s.name)
def test_numbers_outside_the_range_are_refused_naming_where_they_came_from(setting):
    for text in _outside(setting):
        if setting.type is int and "e" in text:
            continue  # not an int: refused by the type already (another test)
        with pytest.raises(SettingError, match=f"^{setting.env}: must be from "):
            Settings(environ={setting.env: text})
        with pytest.raises(SettingError, match=f"^{setting.option}: must be from "):
            Settings({setting.name: text}, environ={})


@pytest.mark.parametrize("setting", NUMBERS, ids=lambda s: s.name)
def test_the_ends_of_a_range_are_accepted(setting):
    for end in (setting.low, setting.high):
        text = str(int(end)) if float(end).is_integer() else str(end)
        value = getattr(Settings(environ={setting.env: text}), setting.name)
        assert (value[0] if isinstance(value, tuple) else value) == end


def test_an_out_of_range_option_is_one_line_before_anything_starts(tmp_path):
    db = tmp_path / "x.db"
    for args, named in (
        (["serve", "--threads", "0"], "--threads: must be from 1 to 1000, not 0"),
        (["serve", "--max-body-bytes", "-5"], "--max-body-bytes: must be from 0 to"),
        (["serve", "--retry-schedule", "5,nan"], "--retry-schedule: must be from 0 to"),
        (["worker", "--delivery-workers", "0"], "`hooklab worker` needs at least 1"),
    ):
        result = CliRunner().invoke(cli, [*args, "--db", str(db)])
        assert result.exit_code == 2, result.output
        assert named in result.output
        assert "Traceback" not in result.output
    assert not db.exists()  # refused before the store was opened


def test_help_gives_each_number_its_range():
    result = CliRunner().invoke(cli, ["serve", "--help"], terminal_width=500)
    assert "default 64; 1 to 1000]" in " ".join(result.output.split())


@pytest.mark.parametrize(
    ("args", "blocked", "indexed"),
    [
        (["--block-private-targets"], True, True),  # alone, as the README's table shows it
        (["--block-private-targets", "false", "--search-index", "off"], False, False),
        (["--search-index", "--block-private-targets", "yes"], True, True),
        ([], False, True),
    ],
)
def test_true_false_settings_take_a_value_or_none(args, blocked, indexed):
    from hooklab.cli.main import load_settings

    command = cli.commands["serve"]
    params = command.make_context("serve", list(args)).params
    chosen = load_settings({k: v for k, v in params.items() if k in {s.name for s in SETTINGS}})
    assert (chosen.block_private_targets, chosen.search_index) == (blocked, indexed)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"port": "abc"}, "--port: expected a whole number, got 'abc'"),
        ({"port": "\u0661\u0662"}, "--port: expected a whole number, got '\u0661\u0662'"),
        ({"threads": "1_0"}, "--threads: expected a whole number, got '1_0'"),
        ({"max_delay_ms": "1e3"}, "--max-delay-ms: expected a whole number, got '1e3'"),
        (
            {"retry_schedule": "a,b"},
            "--retry-schedule: expected seconds separated by commas (such as 1,5,30), got 'a,b'",
        ),
    ],
)
def test_a_number_that_is_not_one_is_said_in_plain_words(overrides, message):
    # Python's words came through: "invalid literal for int() with base 10: 'abc'".
    with pytest.raises(SettingError) as caught:
        Settings(overrides, environ={})
    assert str(caught.value) == message


def test_a_variable_that_is_not_a_number_is_said_in_plain_words():
    with pytest.raises(SettingError) as caught:
        Settings(environ={"HOOKLAB_PORT": "eighty"})
    assert str(caught.value) == "HOOKLAB_PORT: expected a whole number, got 'eighty'"
    assert Settings(environ={"HOOKLAB_PORT": " 8080 "}).port == 8080
