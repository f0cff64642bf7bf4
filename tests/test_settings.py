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
